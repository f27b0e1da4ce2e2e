"""``python -m app.realtime``: serve the notification stream on ``REALTIME_BIND``."""

from __future__ import annotations

import asyncio

from app import create_app
from app.realtime.server import run


def main() -> None:
    app = create_app()
    host, _, port = app.settings.realtime_bind.rpartition(":")
    asyncio.run(run(app, host or "0.0.0.0", int(port)))  # noqa: S104 - a container's bind


if __name__ == "__main__":
    main()
