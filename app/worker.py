"""The Celery entry point: the worker, beat and Flower all load the app from here.

    celery -A app.worker worker --queues default,search --loglevel INFO
    celery -A app.worker beat --loglevel INFO
    celery -A app.worker flower --conf=app/flowerconfig.py

Settings come from the environment, as for the web app (``CELERY_BROKER_URL``...).
"""

from __future__ import annotations

from app import create_app
from app.extensions.background import get_celery

flask_app = create_app()
with flask_app.app_context():
    celery = get_celery()
