"""``bench.realtime``'s publisher: ``RATE`` notifications a second, round robin
over users 1 to ``USERS``, each through the app's own path (written in a
transaction, published by the ``notifications`` commit effect), its
``article_title`` the time it was written, in nanoseconds.

    python -m bench.realtime_publish RATE USERS
"""

from __future__ import annotations

import sys
import time

from app import create_app
from app.extensions.database import get_database, stage_for_commit
from app.services import notifications


def main() -> None:
    rate, users = int(sys.argv[1]), int(sys.argv[2])
    app = create_app()
    interval = 1.0 / rate
    sequence = 0
    next_at = time.monotonic()
    with app.app_context():
        session = get_database().session()
        while True:
            user_id = sequence % users + 1
            data = {"article_id": sequence + 1, "article_title": str(time.time_ns())}
            sent = notifications.write(session.connection(), user_id, "article.published", data)
            stage_for_commit(session, notifications.EFFECT, [sent])
            session.commit()
            sequence += 1
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))


if __name__ == "__main__":
    main()
