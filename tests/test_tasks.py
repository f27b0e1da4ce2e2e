"""Background tasks: configuration, inline mode, and real workers on the real
Redis broker (in-process for most; subprocesses for the SIGKILL test)."""

from __future__ import annotations

import os
import runpy
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import worker_support
from celery import Celery
from celery.contrib.testing.worker import start_worker
from conftest import BROKER_URL, REDIS_URL, SettingsFactory
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app import create_app
from app.core.application import APIFlask
from app.core.settings import SettingsError
from app.extensions.background import FlaskTask, beat_schedule, get_celery, redis_transport_options
from app.models import RefreshToken, User
from app.tasks.maintenance import purge_expired_refresh_tokens, purge_expired_stream_tickets

ROOT = Path(__file__).resolve().parent.parent


def wait_for(condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def _celery(app: APIFlask) -> Celery:
    with app.app_context():
        return get_celery()


def _add_tokens(session: Session) -> None:
    user = User(email="t@example.com", name="T", password_hash="x")
    session.add(user)
    session.flush()
    now = datetime.now(UTC)
    for n, expires in enumerate([now - timedelta(days=1), now + timedelta(days=1)]):
        session.add(
            RefreshToken(user_id=user.id, token_hash=f"{n:064d}", family_id="f", expires_at=expires)
        )
    session.commit()


# -- configuration ----------------------------------------------------------------


def test_delivery_settings(app: APIFlask) -> None:
    conf = _celery(app).conf
    assert conf.accept_content == ["json"]
    assert conf.task_serializer == "json"
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert {queue.name for queue in conf.task_queues} == {"default", "search"}
    assert conf.task_default_queue == "default"
    assert conf.task_routes == {"app.tasks.search.*": {"queue": "search"}}
    assert FlaskTask.retry_backoff is True
    assert FlaskTask.retry_jitter is True
    assert FlaskTask.retry_backoff_max == 600


def test_beat_runs_the_purge_every_hour(app: APIFlask) -> None:
    schedule = _celery(app).conf.beat_schedule
    assert schedule == beat_schedule(app.settings)
    entry = schedule["purge-expired-refresh-tokens"]
    assert entry["task"] == purge_expired_refresh_tokens.name
    assert entry["schedule"] == timedelta(hours=1)
    assert entry["task"] in _celery(app).tasks
    tickets = schedule["purge-expired-stream-tickets"]
    assert tickets["task"] == purge_expired_stream_tickets.name
    assert tickets["schedule"] == timedelta(hours=1)
    assert tickets["task"] in _celery(app).tasks


# -- inline (no broker) -----------------------------------------------------------


def test_without_a_broker_tasks_run_inline_in_the_app_context(
    make_settings: SettingsFactory, db_engine: Engine, db_session: Session
) -> None:
    app = create_app(make_settings(database_url=db_engine.url.render_as_string(False)))
    assert _celery(app).conf.task_always_eager is True
    _add_tokens(db_session)
    result = purge_expired_refresh_tokens.delay()
    assert result.get() == 1
    assert db_session.scalar(select(func.count()).select_from(RefreshToken)) == 1


# -- a real worker on the Redis broker --------------------------------------------


@pytest.fixture
def worker_app(
    make_settings: SettingsFactory, db_engine: Engine, broker: redis.Redis
) -> Iterator[APIFlask]:
    app = create_app(
        make_settings(
            database_url=db_engine.url.render_as_string(False), celery_broker_url=BROKER_URL
        )
    )
    celery = _celery(app)
    assert celery.conf.task_always_eager is False
    with start_worker(celery, pool="solo", perform_ping_check=False, shutdown_timeout=5):
        yield app


def test_a_worker_runs_a_task_in_app_context_and_writes_to_the_database(
    worker_app: APIFlask, db_session: Session
) -> None:
    _add_tokens(db_session)
    purge_expired_refresh_tokens.delay()

    def purged() -> bool:
        db_session.rollback()  # a new transaction each time: MariaDB reads a snapshot
        return db_session.scalar(select(func.count()).select_from(RefreshToken)) == 1

    wait_for(purged)


def test_the_request_id_travels_into_the_task(
    worker_app: APIFlask, redis_client: redis.Redis
) -> None:
    with worker_app.test_request_context(headers={"X-Request-ID": "req-42"}):
        worker_support.record_context.delay("seen")
    wait_for(lambda: redis_client.get("seen"))
    assert redis_client.get("seen") == b"req-42|1"


def test_a_worker_refuses_pickled_messages(worker_app: APIFlask, redis_client: redis.Redis) -> None:
    worker_support.record_context.apply_async(("pickled",), serializer="pickle")
    worker_support.record_context.delay("json")
    wait_for(lambda: redis_client.get("json"))
    assert redis_client.get("pickled") is None


def test_a_failing_task_is_retried_with_backoff(
    worker_app: APIFlask, redis_client: redis.Redis
) -> None:
    worker_support.flaky.delay("attempts", 2)
    wait_for(lambda: redis_client.get("attempts:done"), timeout=30)
    times = [float(t) for t in redis_client.lrange("attempts", 0, -1)]
    assert len(times) == 3
    # Full jitter draws each delay from [0, cap]; the cap is 1 s, then 2 s.
    assert times[1] - times[0] <= 1.5
    assert times[2] - times[1] <= 2.5


def _start_worker_process(env: dict[str, str], name: str = "celery") -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "worker_support",
            "worker",
            "--pool",
            "solo",
            "--queues",
            "default",
            "--hostname",
            f"{name}@%h",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _worker_env(tmp_path: Path, *, visibility: int) -> dict[str, str]:
    """The environment of a worker subprocess on the test broker."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
        "WORKER_SUPPORT_APP": "1",
        "APP_ENV": "testing",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_VISIBILITY_TIMEOUT": str(visibility),
        "TEST_REDIS_URL": REDIS_URL,
    }


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def test_a_task_whose_worker_is_killed_completes_on_another_worker(
    make_settings: SettingsFactory,
    tmp_path: Path,
    broker: redis.Redis,
    redis_client: redis.Redis,
) -> None:
    env = _worker_env(tmp_path, visibility=2)
    sender = create_app(make_settings(celery_broker_url=BROKER_URL))
    assert _celery(sender).conf.task_acks_late is True

    first = _start_worker_process(env)
    try:
        worker_support.slow.delay("job", 30)
        wait_for(lambda: redis_client.get("job:started"), timeout=30)
        _kill(first)  # SIGKILL mid-task: nothing acknowledged the message
    finally:
        _kill(first)
    assert redis_client.get("job:done") is None

    time.sleep(2.5)  # past the visibility timeout, the message is handed out again
    second = _start_worker_process(env)
    try:
        wait_for(lambda: redis_client.get("job:done"), timeout=30)
    finally:
        _kill(second)
    assert redis_client.get("job:started") == b"2"  # started twice, finished once


def test_a_running_worker_takes_a_dead_workers_task_soon_after_the_visibility_timeout(
    make_settings: SettingsFactory,
    tmp_path: Path,
    broker: redis.Redis,
    redis_client: redis.Redis,
) -> None:
    """With kombu's defaults a live worker scanned for unacknowledged messages
    only every 10 x 10 s, and redelivery took about 96 s past a 10 s timeout."""
    visibility = 10
    env = _worker_env(tmp_path, visibility=visibility)
    control = _celery(create_app(make_settings(celery_broker_url=BROKER_URL))).control
    workers = {name: _start_worker_process(env, name) for name in ("one", "two")}

    def answering() -> set[str]:
        return {
            name.partition("@")[0] for reply in control.ping(timeout=0.5) or [] for name in reply
        }

    try:
        wait_for(lambda: answering() == {"one", "two"}, timeout=30)
        worker_support.slow.delay("job", 120)
        wait_for(lambda: redis_client.get("job:started"), timeout=30)
        # A solo pool busy with the task answers no ping: the other one is idle.
        # (A reply can miss one 0.5 s window on a loaded machine: ask again.)
        replies: list[set[str]] = []

        def one_answers() -> bool:
            replies.append(answering())
            return len(replies[-1]) == 1

        wait_for(one_answers, timeout=5)
        idle = replies[-1]
        busy = ({"one", "two"} - idle).pop()
        _kill(workers[busy])
        killed = time.monotonic()
        assert redis_client.get("job:done") is None  # killed mid-task
        wait_for(lambda: redis_client.get("job:done"), timeout=60)
        waited = time.monotonic() - killed
    finally:
        for worker in workers.values():
            _kill(worker)
    # The visibility timeout, then at most one sweep interval (the timeout
    # itself, being under 10 s), then the task's second run, which is instant.
    assert waited < visibility + visibility + 3, f"redelivered {waited:.1f} s after the kill"
    assert redis_client.get("job:started") == b"2"


# -- entry points and health ------------------------------------------------------


def test_the_worker_entry_point_exposes_the_apps_celery(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "testing")
    monkeypatch.setenv("CELERY_BROKER_URL", BROKER_URL)
    namespace = runpy.run_path(str(ROOT / "app" / "worker.py"))
    celery = namespace["celery"]
    assert isinstance(celery, Celery)
    assert celery.conf.broker_url == BROKER_URL
    assert purge_expired_refresh_tokens.name in celery.tasks


def test_flower_refuses_to_start_without_basic_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    config = str(ROOT / "app" / "flowerconfig.py")
    with pytest.raises(SettingsError, match="FLOWER_BASIC_AUTH"):
        runpy.run_path(config)
    monkeypatch.setenv("FLOWER_BASIC_AUTH", "admin:")
    with pytest.raises(SettingsError):
        runpy.run_path(config)
    monkeypatch.setenv("FLOWER_BASIC_AUTH", "admin:s3cret")
    assert runpy.run_path(config)["basic_auth"] == ["admin:s3cret"]


@pytest.mark.usefixtures("broker")
def test_readiness_reports_the_broker(make_settings: SettingsFactory) -> None:
    up = create_app(make_settings(celery_broker_url=BROKER_URL)).test_client()
    body = up.get("/api/v1/health/ready").json
    assert body is not None
    assert body["checks"]["broker"]["status"] == "ok"
    down = create_app(make_settings(celery_broker_url="redis://127.0.0.1:1/0")).test_client()
    response = down.get("/api/v1/health/ready")
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["checks"]["broker"]["status"] == "down"
    inline = create_app(make_settings()).test_client().get("/api/v1/health/ready").json
    assert inline is not None
    assert inline["checks"]["broker"] == {"status": "disabled", "latency_ms": None}


def test_the_redis_transport_sweeps_for_dead_workers_messages_every_ten_seconds_at_most(
    make_settings: SettingsFactory,
) -> None:
    assert redis_transport_options(make_settings(celery_visibility_timeout=3600)) == {
        "visibility_timeout": 3600,
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
        "socket_connect_timeout": 1.0,
    }
    short = redis_transport_options(make_settings(celery_visibility_timeout=4))
    assert short["unacked_restore_interval"] == 4
