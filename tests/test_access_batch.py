"""The access log's batches (app/core/access_batch.py): every line written,
whole and in order, in few writes, within the flush window, at exit, and once
after a fork."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.core import access_batch
from app.core.access_batch import FLUSH_SECONDS, MAX_PENDING, LineBatch


class CountingStream(io.StringIO):
    """A stream that counts its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _handler(stream: Any) -> logging.StreamHandler[Any]:
    return logging.StreamHandler(stream)


def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_many_lines_arrive_whole_and_in_order_in_a_few_writes() -> None:
    stream = CountingStream()
    handler = _handler(stream)
    batch = LineBatch()
    lines = [f"line {n}\n" for n in range(2_000)]
    for line in lines:
        batch.add(handler, line)
    batch.flush()
    assert stream.getvalue() == "".join(lines)
    assert stream.writes <= 10  # one per flush window or per MAX_PENDING, not per line


def test_a_lone_line_is_written_within_the_flush_window_without_more_traffic() -> None:
    stream = CountingStream()
    batch = LineBatch()
    started = time.monotonic()
    batch.add(_handler(stream), "alone\n")
    assert _wait_for(lambda: stream.getvalue() == "alone\n")
    assert time.monotonic() - started < FLUSH_SECONDS + 1.0


def test_past_max_pending_the_lines_are_written_at_once() -> None:
    stream = CountingStream()
    handler = _handler(stream)
    batch = LineBatch()
    line = "x" * 1023 + "\n"
    count = MAX_PENDING // len(line)
    for _ in range(count):
        batch.add(handler, line)
    # The last add reached MAX_PENDING and wrote everything in that call.
    assert stream.getvalue() == line * count


def test_lines_for_an_earlier_handler_go_to_it_when_another_takes_over() -> None:
    first, second = io.StringIO(), io.StringIO()
    batch = LineBatch()
    batch.add(_handler(first), "to the first\n")
    batch.add(_handler(second), "to the second\n")
    batch.flush()
    assert (first.getvalue(), second.getvalue()) == ("to the first\n", "to the second\n")


class BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("disk full")


def test_a_failing_stream_is_reported_not_raised(capsys: pytest.CaptureFixture[str]) -> None:
    batch = LineBatch()
    batch.add(_handler(BrokenStream()), "lost\n")
    batch.flush()  # no exception: as StreamHandler.emit, logging's handleError reports it
    assert "disk full" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX only")
def test_a_forked_child_writes_only_its_own_lines(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    with path.open("a", encoding="utf-8") as stream:
        handler = _handler(stream)
        access_batch.batch.add(handler, "parent\n")  # waiting in the parent at the fork
        pid = os.fork()
        if pid == 0:  # the child
            access_batch.batch.add(handler, "child\n")
            access_batch.batch.flush()
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        access_batch.batch.flush()
    assert sorted(path.read_text().splitlines()) == ["child", "parent"]


def test_the_lines_still_waiting_are_written_at_exit() -> None:
    """A process that logs and exits at once still writes its access line
    (atexit), well before the flush window would have."""
    script = (
        "from app.core.logging import configure_logging, log_access\n"
        "from app.core.settings import Settings\n"
        "configure_logging(Settings(_env_file=None, app_env='production', secret_key='s' * 40))\n"
        "log_access('GET', '/exit', 200, duration_ms=1.0, size=2, remote='127.0.0.1')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert '"message":"GET /exit 200 1.00ms 2B 127.0.0.1"' in result.stderr
