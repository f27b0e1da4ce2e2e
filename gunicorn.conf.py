"""gunicorn's configuration: ``gunicorn --config gunicorn.conf.py app.wsgi:app``.

Workers, threads, bind address and timeout come from the app's settings, and
gunicorn logs through the app's own logging config (its access log is replaced
by the app's, which knows the request id). What gunicorn refuses before the
app sees it (414, 431, 400) is answered in the error envelope too.
"""

import gunicorn.util

from app.core import access_batch, gunicorn_errors
from app.core.logging import logging_config
from app.core.settings import load_settings

_settings = load_settings()

bind = _settings.gunicorn_bind
workers = _settings.gunicorn_workers
threads = _settings.gunicorn_threads
# gunicorn's gthread worker, accepting only while a thread is free, so that
# connections arriving together spread over the workers (app/core/gunicorn_worker.py).
worker_class = "app.core.gunicorn_worker.Worker"
timeout = _settings.gunicorn_timeout
graceful_timeout = _settings.gunicorn_timeout
keepalive = 5
# Restart workers now and then so a slow leak cannot grow without bound.
max_requests = 10_000
max_requests_jitter = 1_000
# What a request may bring before the app sees it (docs/deployment.md, "Request
# limits"). nginx's large_client_header_buffers (8k) agrees: tests/test_compose.py.
limit_request_line = 8190  # bytes of the request line, else 414 (gunicorn's maximum)
limit_request_field_size = 8190  # bytes of one header line, else 431
limit_request_fields = 100  # headers, else 431
# gunicorn writes those refusals with this one function, as HTML: the envelope instead.
gunicorn.util.write_error = gunicorn_errors.write_error
# gunicorn 25.1+ opens a control socket (for gunicornc) under $HOME, which the
# image's user does not have; nothing here uses it.
control_socket_disable = True
accesslog = None
logconfig_dict = logging_config(_settings)
# With logconfig_dict, gunicorn would build an access record per request for
# gunicorn.access to drop: this logger skips them (app/core/gunicorn_logger.py).
logger_class = "app.core.gunicorn_logger.Logger"
# A forwarded-for header is trusted only as configured by PROXY_FIX_HOPS in the app.
forwarded_allow_ips = "127.0.0.1"


def worker_exit(server: object, worker: object) -> None:
    """The access lines still waiting for their batch (app/core/access_batch.py)
    are written before the worker goes."""
    access_batch.batch.flush()
