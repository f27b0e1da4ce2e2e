"""The stream across real processes, on MariaDB and Redis: two stream
processes (``python -m app.realtime``), a web process (gunicorn) and a Celery
worker, started here; a real WebSocket client. A client that reconnects with
the last id it saw never misses and never doubles a notification: across
processes, across ``kill -9`` of its stream process, across a Redis restart."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from conftest import BROKER_URL, MYSQL_URL, REDIS_URL
from meili_fake import FakeMeilisearch
from realtime_support import (
    Http,
    Stack,
    frames_until_ready,
    next_notification,
    nothing_more,
    open_stream,
    private_redis,
    stack,
)
from serving_support import free_port, wait_for
from sqlalchemy import Engine
from test_nginx import NGINX, local_conf
from websockets.exceptions import ConnectionClosed

# One database that every process shares: MariaDB (migrated and emptied by db_engine).
pytestmark = pytest.mark.parametrize("db_engine", ["mysql"], indirect=True)


@pytest.fixture
def processes(tmp_path: Path, db_engine: Engine, redis_client: redis.Redis) -> Iterator[Stack]:
    with stack(tmp_path, database_url=MYSQL_URL, redis_url=REDIS_URL) as running:
        yield running


def test_a_comment_through_the_web_reaches_a_socket_on_another_stream_process(
    processes: Stack,
) -> None:
    one, two = processes.stream("stream-1"), processes.stream("stream-2")
    http = Http(processes.web().port)
    author, reader = http.user("Ada"), http.user("Grace")
    article = http.article(author)
    with open_stream(two.port, ticket=http.ticket(author), after=0) as ws:
        [published] = frames_until_ready(ws)
        assert published["type"] == "article.published"
        made = http.comment(reader, article["id"], "across processes")
        note = next_notification(ws)
        assert note["data"]["comment_id"] == made["id"]

    # Away, two comments; back on the other process with after: exactly the two, then live.
    last_seen = note["id"]
    first, second = (http.comment(reader, article["id"], f"away {n}") for n in range(2))
    with open_stream(one.port, token=author.token, after=last_seen) as ws:
        replayed = frames_until_ready(ws)
        assert [n["data"]["comment_id"] for n in replayed] == [first["id"], second["id"]]
        live = http.comment(reader, article["id"], "live again")
        assert next_notification(ws)["data"]["comment_id"] == live["id"]
        assert nothing_more(ws, 1.0)
    status, listed = http.call("GET", "/notifications?per_page=100", token=author.token)
    assert status == 200
    assert len(listed["items"]) == 5  # published + 4 comments, each sent once above


def test_kill_9_of_a_stream_process_loses_and_doubles_nothing(processes: Stack) -> None:
    one, two = processes.stream("stream-1"), processes.stream("stream-2")
    http = Http(processes.web().port)
    author, reader = http.user("Ada"), http.user("Grace")
    article = http.article(author)
    seen: list[int] = []
    with open_stream(one.port, token=author.token, after=0) as ws:
        seen += [n["id"] for n in frames_until_ready(ws)]
        http.comment(reader, article["id"], "before the kill")
        seen.append(next_notification(ws)["id"])
        one.kill()
        with pytest.raises(ConnectionClosed):
            ws.recv(10)
    for n in range(3):  # while the client is away
        http.comment(reader, article["id"], f"during {n}")
    with open_stream(two.port, token=author.token, after=seen[-1]) as ws:
        seen += [n["id"] for n in frames_until_ready(ws)]
        http.comment(reader, article["id"], "after")
        seen.append(next_notification(ws)["id"])
    _status, listed = http.call("GET", "/notifications?per_page=100", token=author.token)
    assert seen == sorted(item["id"] for item in listed["items"])  # all, once, in order


def test_a_redis_restart_loses_and_doubles_nothing(
    tmp_path: Path, db_engine: Engine, redis_client: redis.Redis
) -> None:
    with (
        private_redis(tmp_path / "redis") as private,
        stack(tmp_path, database_url=MYSQL_URL, redis_url=private.url) as processes,
    ):
        one = processes.stream("stream-1")
        http = Http(processes.web().port)
        author, reader = http.user("Ada"), http.user("Grace")
        article = http.article(author)
        with open_stream(one.port, token=author.token, after=0) as ws:
            seen = [n["id"] for n in frames_until_ready(ws)]
            private.kill()
            missed = http.comment(reader, article["id"], "while Redis is down")  # still 201
            private.start()  # same port, empty: the message above was never published
            # The stream resubscribes and reads the table: the missed one arrives, once.
            note = next_notification(ws, timeout=20)
            assert note["data"]["comment_id"] == missed["id"]
            seen.append(note["id"])
            live = http.comment(reader, article["id"], "after the restart")
            note = next_notification(ws, timeout=20)
            assert note["data"]["comment_id"] == live["id"]
            seen.append(note["id"])
            assert nothing_more(ws, 1.0)
        _status, listed = http.call("GET", "/notifications?per_page=100", token=author.token)
        assert seen == sorted(item["id"] for item in listed["items"])
        assert "lost Redis" in one.output()


def test_a_celery_workers_publish_reaches_the_socket(
    tmp_path: Path,
    db_engine: Engine,
    redis_client: redis.Redis,
    broker: redis.Redis,
    meili: FakeMeilisearch,
) -> None:
    """With Meilisearch, ``article.published`` is written and published by the
    worker that indexed the article, not by the web process."""
    env = {"meili_url": meili.url, "celery_broker_url": BROKER_URL}
    with stack(
        tmp_path,
        database_url=MYSQL_URL,
        redis_url=REDIS_URL,
        MEILI_URL=env["meili_url"],
        MEILI_MASTER_KEY="k" * 16,
        CELERY_BROKER_URL=env["celery_broker_url"],
    ) as processes:
        one = processes.stream("stream-1")
        http = Http(processes.web().port)
        worker = processes.worker()
        author = http.user("Ada")
        with open_stream(one.port, token=author.token, after=0) as ws:
            assert frames_until_ready(ws) == []
            article = http.article(author, title="Indexed by the worker")
            note = next_notification(ws, timeout=30)
        assert note["type"] == "article.published"
        assert note["data"] == {
            "article_id": article["id"],
            "article_title": "Indexed by the worker",
        }
        assert article["id"] in meili.docs
        assert "index_articles" in worker.output()


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed here (.ci/run installs it)")
def test_through_nginx_the_stream_upgrades_and_the_ticket_stays_out_of_the_log(
    processes: Stack, tmp_path: Path
) -> None:
    """compose/nginx/nginx.conf, in a real nginx, in front of gunicorn and a stream process."""
    stream, web = processes.stream("stream-1"), processes.web()
    port = free_port()
    conf = local_conf(tmp_path, port, web.port)
    text = conf.read_text()
    upstream = "set $realtime_upstream http://realtime:8001;"
    assert upstream in text
    conf.write_text(
        text.replace(upstream, f"set $realtime_upstream http://127.0.0.1:{stream.port};")
    )
    assert NGINX is not None
    log = tmp_path / "nginx.out"
    with log.open("w") as out:
        nginx = subprocess.Popen(
            [NGINX, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off; user root;"],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        wait_for(port, nginx)  # type: ignore[arg-type]
        http = Http(port)  # the API through nginx, too
        author, reader = http.user("Ada"), http.user("Grace")
        article = http.article(author)
        ticket = http.ticket(author)
        with open_stream(port, ticket=ticket, after=0) as ws:
            [published] = frames_until_ready(ws)
            assert published["data"]["article_id"] == article["id"]
            made = http.comment(reader, article["id"], "through nginx")
            assert next_notification(ws)["data"]["comment_id"] == made["id"]
        status, _body = http.call("GET", "/notifications/stream")  # no upgrade: the app's 426
        assert status == 426
    finally:
        nginx.terminate()
        nginx.wait(30)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    streamed = [line for line in lines if line["uri"].startswith("/api/v1/notifications/stream")]
    assert [line["status"] for line in streamed] == [101, 426]
    assert ticket not in log.read_text()
    assert "ticket" not in stream.output()
