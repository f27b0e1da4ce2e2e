"""Liveness and readiness, against the real database and Redis."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from conftest import REDIS_URL, SettingsFactory

from app import create_app


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A port that accepts connections and never answers: a hung dependency."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


def test_liveness_does_no_io(make_settings: SettingsFactory) -> None:
    # Nothing listens on these ports; liveness must not notice.
    app = create_app(
        make_settings(
            database_url=f"mysql+pymysql://root@127.0.0.1:{closed_port()}/x",
            redis_url=f"redis://127.0.0.1:{closed_port()}/0",
        )
    )
    response = app.test_client().get("/api/v1/health")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_ready_with_every_dependency_up(make_settings: SettingsFactory, database_url: str) -> None:
    app = create_app(make_settings(database_url=database_url, redis_url=REDIS_URL))
    response = app.test_client().get("/api/v1/health/ready")
    body = response.get_json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "search", "broker"}
    for name in ("database", "redis"):
        assert body["checks"][name]["status"] == "ok"
        assert body["checks"][name]["latency_ms"] >= 0
    assert body["checks"]["search"] == {"status": "disabled", "latency_ms": None}
    assert body["checks"]["broker"] == {"status": "disabled", "latency_ms": None}


def test_redis_not_configured_is_disabled_not_down(make_settings: SettingsFactory) -> None:
    response = create_app(make_settings()).test_client().get("/api/v1/health/ready")
    assert response.status_code == 200
    assert response.get_json()["checks"]["redis"] == {"status": "disabled", "latency_ms": None}


def test_redis_refusing_connections_is_503(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(redis_url=f"redis://127.0.0.1:{closed_port()}/0"))
    response = app.test_client().get("/api/v1/health/ready")
    body = response.get_json()
    assert response.status_code == 503
    assert body["status"] == "down"
    assert body["checks"]["redis"]["status"] == "down"
    assert body["checks"]["database"]["status"] == "ok"


def test_database_down_is_503(make_settings: SettingsFactory) -> None:
    app = create_app(
        make_settings(database_url=f"mysql+pymysql://root@127.0.0.1:{closed_port()}/test")
    )
    response = app.test_client().get("/api/v1/health/ready")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"]["status"] == "down"


def test_a_hung_dependency_answers_within_the_bound(
    make_settings: SettingsFactory, blackhole: int, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(
        make_settings(
            redis_url=f"redis://127.0.0.1:{blackhole}/0",
            redis_socket_timeout=5.0,
            health_check_timeout=0.3,
        )
    )
    started = time.perf_counter()
    response = app.test_client().get("/api/v1/health/ready")
    elapsed = time.perf_counter() - started
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"] == {"status": "down", "latency_ms": 300.0}
    assert elapsed < 2.0
    assert any("redis timed out" in r.getMessage() for r in caplog.records)


def test_a_hung_dependency_never_makes_a_healthy_one_look_down(
    make_settings: SettingsFactory, blackhole: int
) -> None:
    app = create_app(
        make_settings(
            redis_url=f"redis://127.0.0.1:{blackhole}/0",
            redis_socket_timeout=3.0,
            health_check_timeout=0.3,
        )
    )
    results: list[str] = []

    def probe() -> None:
        body = app.test_client().get("/api/v1/health/ready").get_json()
        results.append(body["checks"]["database"]["status"])

    threads = [threading.Thread(target=probe) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == ["ok"] * 12


def test_check_failures_are_logged_with_the_request_id(
    make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(make_settings(redis_url=f"redis://127.0.0.1:{closed_port()}/0"))
    app.test_client().get("/api/v1/health/ready", headers={"X-Request-ID": "ready-1"})
    [record] = [r for r in caplog.records if r.name == "app.health"]
    assert "readiness check redis is down" in record.getMessage()
    assert record.__dict__["request_id"] == "ready-1"
