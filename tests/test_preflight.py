"""A run with a required server missing stops at once, with one line naming it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run_suite_with(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "--no-cov",
            "-p",
            "no:cacheprovider",
            "tests/test_health.py",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_missing_redis_stops_the_run_before_any_test() -> None:
    url = f"redis://127.0.0.1:{closed_port()}/15"
    result = run_suite_with(TEST_REDIS_URL=url)
    assert result.returncode == 3
    [line] = [line for line in result.stdout.splitlines() if "unreachable" in line]
    assert f"Redis at {url} is unreachable" in line
    assert "start it with `docker compose -f compose.test.yaml up -d --wait`" in line
    assert " passed" not in result.stdout


def test_missing_mysql_stops_the_run_before_any_test() -> None:
    port = closed_port()
    result = run_suite_with(TEST_MYSQL_URL=f"mysql+pymysql://root@127.0.0.1:{port}/test")
    assert result.returncode == 3
    [line] = [line for line in result.stdout.splitlines() if "unreachable" in line]
    assert f"MariaDB/MySQL at 127.0.0.1:{port} is unreachable" in line
    assert " passed" not in result.stdout
