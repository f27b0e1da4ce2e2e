"""The application package. :func:`create_app` is the factory; read it as the
table of contents of the app: settings, logging, extensions, services, error
handlers, blueprints, commands.

The layers import downwards only (``docs/architecture.md``; import-linter
checks it): ``api``, ``commands`` and ``tasks`` → ``services`` → ``schemas``,
``cache``, ``models``, ``extensions``, ``auth`` → ``core``. This package, at
the top, wires them together.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from werkzeug.middleware.proxy_fix import ProxyFix

from app import extensions, tasks
from app.api import register_blueprints
from app.cache import EvictOnCommit
from app.commands import register_commands
from app.core import logging as app_logging
from app.core import request_id, security_headers
from app.core.application import APIFlask
from app.core.errors import register_error_handlers
from app.core.settings import Settings, SettingsError, load_settings
from app.extensions.database import Database
from app.extensions.search import is_enabled as search_is_enabled
from app.realtime import dev as realtime_dev
from app.services import article_pages, indexing, notifications

__all__ = ["create_app"]

log = logging.getLogger("app")


def create_app(settings: Settings | None = None) -> APIFlask:
    """Build the app from ``settings`` (by default, read from the environment)."""
    settings = settings or load_settings()
    app_logging.configure_logging(settings)
    instance_path = _make_instance_folder(settings)

    app = APIFlask(
        __name__,
        settings=settings,
        instance_path=str(instance_path),
        instance_relative_config=False,
    )
    app.config.from_mapping(
        SECRET_KEY=settings.secret_key.get_secret_value(),
        DEBUG=settings.debug,
        TESTING=settings.app_env == "testing",
        MAX_CONTENT_LENGTH=settings.max_content_length,
        # Errors always leave as the JSON envelope, in tests and debug too.
        PROPAGATE_EXCEPTIONS=False,
    )
    if settings.proxy_fix_hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.proxy_fix_hops, x_proto=settings.proxy_fix_hops
        )

    request_id.init_app(app)
    app_logging.init_app(app)
    security_headers.init_app(app)
    _init_extensions(app)
    _init_services(app)
    register_error_handlers(app)
    register_blueprints(app)
    realtime_dev.init_app(app)
    register_commands(app)
    return app


def _init_services(app: APIFlask) -> None:
    """The services' wiring: the background tasks, and every side effect of a
    commit, all registered here (``docs/architecture.md`` has them as one table)."""
    database: Database = app.extensions["database"]
    cache = app.extensions["cache"]
    tasks.register(app.extensions["celery"])

    evict = EvictOnCommit(cache, article_pages.nodes_changed_by)
    database.on_commit(
        "cache",
        collect_before_flush=article_pages.nodes_deleted_with_authors,
        collect=evict.collect,
        act=evict.act,
    )
    if search_is_enabled(app.settings):
        outbox = indexing.Outbox(app)
        database.on_commit(
            "search outbox",
            collect_before_flush=outbox.record_deleted_authors,
            collect=outbox.record,
            act=outbox.send,
        )
    notifier = notifications.Notifier(
        app.extensions["fanout"], announce_on_publish=not search_is_enabled(app.settings)
    )
    database.on_commit(notifications.EFFECT, collect=notifier.record, act=notifier.publish)


def _make_instance_folder(settings: Settings) -> Path:
    path = settings.instance_path.resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(
            f"Refusing to start: invalid setting INSTANCE_PATH: cannot create {path} ({exc.strerror})"
        ) from None
    return path


def _init_extensions(app: APIFlask) -> None:
    for module in extensions.EXTENSIONS:
        name = module.__name__.rpartition(".")[2]
        if not extensions.is_enabled(module, app.settings):
            log.debug("extension %s disabled", name)
            continue
        started = time.perf_counter()
        extensions.init_app_function(module)(app)
        log.debug("extension %s ready in %.1fms", name, (time.perf_counter() - started) * 1000)
