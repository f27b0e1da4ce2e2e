"""gunicorn's gthread worker, taking a new connection only while a thread is free.

The stock worker accepts every connection it sees, up to ``worker_connections``
(1,000). Connections that arrive together (a load balancer's keep-alive pool, a
burst of clients) then often all land on whichever worker woke first, and a
worker that holds the GIL serves them on one core while its siblings idle: with
8 keep-alive connections on 2 workers, ``bench/api.py`` saw 8/0 splits in most
rounds, and those rounds served about half as much.

This worker stops accepting while each of its threads has a request, so the
next connection waits in the kernel's queue for whichever worker is free first,
as it would for gunicorn's sync workers. Connections it already holds between
requests (kept alive, or not yet sent their request) take no thread and do not
count. ``worker_class`` in ``gunicorn.conf.py``; gunicorn is pinned in
``pdm.lock``, and ``tests/test_gunicorn.py`` checks the split on the real server.
"""

from __future__ import annotations

from collections.abc import Sized

from gunicorn.workers.gthread import ThreadWorker  # pyright: ignore[reportMissingTypeStubs]


class Worker(ThreadWorker):  # pyright: ignore[reportUntypedBaseClass]
    """gunicorn's ``ThreadWorker``, whose accept limit counts busy threads."""

    _connection_limit: int = 0

    # ThreadWorker sets this attribute once, in __init__, and reads it before each
    # poll; a property makes that read count the busy threads.
    @property
    def worker_connections(self) -> int:
        """The limit ``ThreadWorker.run`` checks ``nr_conns`` against before each
        poll: the configured one, and no more than the idle connections plus
        the threads, so that it accepts only while a thread is free."""
        kept: Sized = self.keepalived_conns  # pyright: ignore[reportUnknownMemberType]
        waiting: Sized = self.pending_conns  # pyright: ignore[reportUnknownMemberType]
        threads: int = self.cfg.threads  # pyright: ignore[reportUnknownMemberType]
        return min(self._connection_limit, len(kept) + len(waiting) + threads)

    @worker_connections.setter
    def worker_connections(  # pyright: ignore[reportIncompatibleVariableOverride]
        self, limit: int
    ) -> None:
        self._connection_limit = limit
