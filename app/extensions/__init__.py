"""Every external system, one module each, wired in order by the app factory.

Each module exposes ``init_app(app)`` and may expose ``is_enabled(settings)``;
the factory skips a disabled one and logs how long each took to start. To add a
system, write ``app/extensions/<name>.py`` and list it here.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, cast

from app.extensions import (
    background,
    cache,
    cors,
    database,
    fanout,
    messaging,
    rate_limit,
    redis,
    search,
    sms,
    sms_codes,
)

if TYPE_CHECKING:
    from app.core.application import APIFlask
    from app.core.settings import Settings

#: Start-up order: a later extension may use an earlier one.
EXTENSIONS: tuple[ModuleType, ...] = (
    database,
    redis,
    cache,
    rate_limit,
    cors,
    background,
    messaging,
    sms,
    sms_codes,
    search,
    fanout,
)


def init_app_function(module: ModuleType) -> Callable[[APIFlask], None]:
    return cast("Callable[[APIFlask], None]", module.init_app)


def is_enabled(module: ModuleType, settings: Settings) -> bool:
    check = cast("Callable[[Settings], bool] | None", getattr(module, "is_enabled", None))
    return True if check is None else check(settings)
