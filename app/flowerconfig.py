"""Flower's configuration (``--conf=app/flowerconfig.py``): basic auth from the
settings. Flower refuses to start without ``FLOWER_BASIC_AUTH``: its pages can
revoke tasks and shut workers down."""

from __future__ import annotations

from app.core.settings import SettingsError, load_settings

_credentials = load_settings().flower_basic_auth.get_secret_value()
if ":" not in _credentials or _credentials.startswith(":") or _credentials.endswith(":"):
    raise SettingsError("Refusing to start Flower: set FLOWER_BASIC_AUTH to user:password")

basic_auth = [_credentials]
