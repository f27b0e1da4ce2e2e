"""gunicorn's logger, minus the access-log records that nothing reads.

``gunicorn.conf.py`` hands gunicorn the app's logging config
(``logconfig_dict``), and gunicorn reads any such config as "access logging
is on": on every request it builds the access line's atoms and a log record,
which ``gunicorn.access`` (level WARNING, no handler: the app writes its own
access line, with the request id) then drops. This logger turns gunicorn's
access logging off whenever ``gunicorn.access`` would drop an INFO record, so
each request skips that work; a config that raises ``gunicorn.access`` to INFO
turns it back on.
"""

from __future__ import annotations

import logging
from typing import Any

from gunicorn import glogging  # pyright: ignore[reportMissingTypeStubs]


class Logger(glogging.Logger):  # pyright: ignore[reportUntypedBaseClass]
    """``logger_class`` in ``gunicorn.conf.py``."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)  # pyright: ignore[reportUnknownMemberType]
        access: logging.Logger = self.access_log  # pyright: ignore[reportUnknownMemberType]
        self._access_log_enabled: bool = bool(
            self._access_log_enabled  # pyright: ignore[reportUnknownMemberType]
            and access.isEnabledFor(logging.INFO)
        )
