"""gunicorn's configuration: ``gunicorn --config gunicorn.conf.py app.wsgi:app``.

Workers, threads, bind address and timeout come from the app's settings, and
gunicorn logs through the app's own logging config (its access log is replaced
by the app's, which knows the request id).
"""

from app.core.logging import logging_config
from app.core.settings import load_settings

_settings = load_settings()

bind = _settings.gunicorn_bind
workers = _settings.gunicorn_workers
threads = _settings.gunicorn_threads
worker_class = "gthread"
timeout = _settings.gunicorn_timeout
graceful_timeout = _settings.gunicorn_timeout
keepalive = 5
# Restart workers now and then so a slow leak cannot grow without bound.
max_requests = 10_000
max_requests_jitter = 1_000
accesslog = None
logconfig_dict = logging_config(_settings)
# A forwarded-for header is trusted only as configured by PROXY_FIX_HOPS in the app.
forwarded_allow_ips = "127.0.0.1"
