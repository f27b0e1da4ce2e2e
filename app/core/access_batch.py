"""Access lines written in batches, as nginx's ``access_log ... buffer= flush=``.

With one ``write`` per line under the handler's lock, a threaded gunicorn
worker's threads queue on that lock while one of them is in the system call:
4 threads spent 2.5x the CPU per line that batches cost (``bench/access_log.py``,
docs/performance.md). So
the direct access line (:func:`app.core.logging.log_access`) waits here and
reaches its stream:

* at most :data:`FLUSH_SECONDS` later, written by a daemon thread of this
  process that starts with the first line;
* at once when :data:`MAX_PENDING` characters are waiting;
* at exit (``atexit``, and gunicorn's ``worker_exit`` hook in ``gunicorn.conf.py``).

A process killed outright (``SIGKILL``) loses at most the last
:data:`FLUSH_SECONDS` of access lines; other records are written at once, as
before, so an error can reach the stream before the access lines of the same
moment. A forked child starts with no lines: its parent writes its own.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from typing import Any

#: The longest an access line waits before it is written.
FLUSH_SECONDS = 0.2
#: Characters waiting that are written at once, without waiting for the flush.
MAX_PENDING = 64 * 1024


class LineBatch:
    """Lines for one stream handler, written under its lock in one ``write``."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._size = 0
        self._handler: logging.StreamHandler[Any] | None = None
        self._flusher: threading.Thread | None = None

    def add(self, handler: logging.StreamHandler[Any], line: str) -> None:
        """Queue ``line`` (ending with its terminator) for ``handler``'s stream."""
        with self._lock:
            if handler is not self._handler:
                self._write_out()  # what an earlier handler was sent goes to it first
                self._handler = handler
            self._lines.append(line)
            self._size += len(line)
            if self._size >= MAX_PENDING:
                self._write_out()
            elif self._flusher is None:
                self._flusher = threading.Thread(
                    target=self._flush_forever, name="access-log-flush", daemon=True
                )
                self._flusher.start()

    def flush(self) -> None:
        """Write every waiting line now."""
        with self._lock:
            self._write_out()

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()

    def _write_out(self) -> None:
        handler = self._handler
        if handler is None or not self._lines:
            return
        text = "".join(self._lines)
        self._lines.clear()
        self._size = 0
        handler.acquire()
        try:
            handler.stream.write(text)
            handler.stream.flush()
        except Exception:  # noqa: BLE001 - as StreamHandler.emit: reported, never raised
            handler.handleError(
                logging.LogRecord("app.access", logging.INFO, __file__, 0, text, None, None)
            )
        finally:
            handler.release()


#: The process's batch: the one the access log writes to.
batch = LineBatch()
atexit.register(batch.flush)
# A child of fork() must neither write its parent's lines nor wait on a lock or
# a thread that only the parent has.
os.register_at_fork(after_in_child=batch._reset)  # pyright: ignore[reportPrivateUsage]
