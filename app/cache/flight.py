"""In-process single flight: one caller loads a key, the others wait for its result."""

from __future__ import annotations

import threading
from typing import Any


class Flight:
    """The outcome of one load, shared by everyone who asked for the key meanwhile."""

    __slots__ = ("_done", "_error", "_value")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def succeed(self, value: Any) -> None:
        self._value = value
        self._done.set()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._done.set()

    def wait(self) -> Any:
        """The leader's value, or its exception raised here too."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


class Flights:
    """The loads under way in this process, by key."""

    def __init__(self) -> None:
        self._flights: dict[str, Flight] = {}
        self._lock = threading.Lock()

    def join(self, key: str) -> tuple[Flight, bool]:
        """The key's flight, and whether the caller leads it (must load and finish it)."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                return flight, False
            flight = self._flights[key] = Flight()
            return flight, True

    def forget(self, key: str) -> None:
        """Let the next caller for ``key`` start a new load: the one under way may
        have read data that was just invalidated. Its own waiters still get it."""
        with self._lock:
            self._flights.pop(key, None)

    def finish(self, key: str, flight: Flight) -> None:
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]

    def reset_after_fork(self) -> None:
        """Forget the parent's flights: their leaders do not exist in this process."""
        self._flights = {}
        self._lock = threading.Lock()
