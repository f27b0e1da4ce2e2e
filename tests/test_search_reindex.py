"""``flask search reindex`` and the search tasks beat runs, on SQLite and
MariaDB, against the Meilisearch stand-in: batches, the progress bar, counts,
resuming after a failure, orphans, and a real worker on the ``search`` queue."""

from __future__ import annotations

import itertools
import time

import pytest
import redis
from api_support import Api
from celery.contrib.testing.worker import start_worker
from conftest import BROKER_URL, AppFactory
from meili_fake import FakeMeilisearch
from sqlalchemy import select

from app.extensions.background import get_celery
from app.extensions.database import get_database
from app.models import SearchOutbox, SearchReindex
from app.tasks.search import reindex, sweep_outbox


@pytest.fixture
def api(make_api_app: AppFactory, meili: FakeMeilisearch) -> Api:
    return Api(make_api_app(meili_url=meili.url))


def _seed(api: Api, published: int, drafts: int) -> tuple[list[int], list[int]]:
    author = api.register()
    shown = [api.article(author, title=f"p{n}")["id"] for n in range(published)]
    hidden = [api.article(author, title=f"d{n}", status="draft")["id"] for n in range(drafts)]
    return shown, hidden


def _fail_nth_addition(meili: FakeMeilisearch, n: int) -> None:
    count = itertools.count(1)
    meili.task_outcomes["documentAdditionOrUpdate"] = lambda _uid: (
        {"code": "internal", "message": "disk full"} if next(count) == n else None
    )


def test_reindex_rebuilds_the_index_in_batches_and_removes_orphans(
    api: Api, meili: FakeMeilisearch
) -> None:
    shown, hidden = _seed(api, published=5, drafts=2)
    meili.docs.clear()  # an index that lost everything
    meili.docs[99_999] = {"id": 99_999, "title": "an article deleted long ago"}
    meili.requests.clear()

    result = api.app.test_cli_runner().invoke(args=["search", "reindex", "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    assert "Reindexing" in result.output  # the progress bar
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(
        "Reindexed 7 article(s): 5 indexed, 2 removed (not published), 1 orphan(s) removed, in "
    )
    assert sorted(meili.docs) == sorted(shown)
    # The settings come first, so an index that was lost gets its filters back.
    assert meili.writes()[:2] == [
        r for r in meili.writes() if r.path in ("/indexes", "/indexes/articles/settings")
    ]
    batches = [[d["id"] for d in r.body] for r in meili.additions()]
    assert [len(b) for b in batches] == [3, 2]  # 3 of the first 3 ids, then 2 (drafts deleted)
    assert sorted(itertools.chain(*batches)) == sorted(shown)
    assert hidden[0] not in meili.docs


def test_a_stopped_reindex_resumes_from_its_checkpoint(api: Api, meili: FakeMeilisearch) -> None:
    shown, _ = _seed(api, published=7, drafts=0)
    meili.docs.clear()
    meili.requests.clear()
    _fail_nth_addition(meili, 2)
    runner = api.app.test_cli_runner()

    failed = runner.invoke(args=["search", "reindex", "--batch-size", "3"])
    assert failed.exit_code == 1
    assert "disk full" in failed.output
    assert "run `flask search reindex` again to resume" in failed.output
    with api.app.app_context():
        checkpoint = get_database().session().get(SearchReindex, "articles")
        assert checkpoint is not None
        assert (checkpoint.last_article_id, checkpoint.indexed) == (shown[2], 3)
        assert checkpoint.finished_at is None

    del meili.task_outcomes["documentAdditionOrUpdate"]
    meili.requests.clear()
    resumed = runner.invoke(args=["search", "reindex", "--batch-size", "3"])
    assert resumed.exit_code == 0, resumed.output
    assert f"(resumed after article {shown[2]})" in resumed.output
    assert "7 indexed" in resumed.output  # the counts of both runs
    sent = [d["id"] for r in meili.additions() for d in r.body]
    assert sent == shown[3:]  # the confirmed first batch was not sent again
    assert sorted(meili.docs) == sorted(shown)


def test_restart_begins_again_from_the_first_article(api: Api, meili: FakeMeilisearch) -> None:
    shown, _ = _seed(api, published=4, drafts=0)
    _fail_nth_addition(meili, 2)
    runner = api.app.test_cli_runner()
    assert runner.invoke(args=["search", "reindex", "--batch-size", "2"]).exit_code == 1
    del meili.task_outcomes["documentAdditionOrUpdate"]
    meili.requests.clear()
    result = runner.invoke(args=["search", "reindex", "--batch-size", "2", "--restart"])
    assert result.exit_code == 0, result.output
    assert "resumed" not in result.output
    assert [d["id"] for r in meili.additions() for d in r.body] == shown


def test_a_finished_reindex_is_not_resumed_but_run_anew(api: Api, meili: FakeMeilisearch) -> None:
    shown, _ = _seed(api, published=2, drafts=0)
    runner = api.app.test_cli_runner()
    assert runner.invoke(args=["search", "reindex"]).exit_code == 0
    meili.requests.clear()
    result = runner.invoke(args=["search", "reindex"])
    assert result.exit_code == 0, result.output
    assert "resumed" not in result.output
    assert [d["id"] for r in meili.additions() for d in r.body] == shown


def test_reindex_refuses_a_bad_batch_size(api: Api, meili: FakeMeilisearch) -> None:
    result = api.app.test_cli_runner().invoke(args=["search", "reindex", "--batch-size", "0"])
    assert result.exit_code == 2
    assert "--batch-size" in result.output
    assert not meili.additions()


def test_reindex_without_meilisearch_says_so(make_api_app: AppFactory) -> None:
    result = make_api_app().test_cli_runner().invoke(args=["search", "reindex"])
    assert result.exit_code == 1
    assert "MEILI_URL is not set" in result.output


# -- the tasks beat runs ------------------------------------------------------------


def test_the_nightly_reindex_task_rebuilds_the_index(api: Api, meili: FakeMeilisearch) -> None:
    shown, _ = _seed(api, published=3, drafts=1)
    meili.docs.clear()
    with api.app.app_context():
        assert reindex.delay().get() == 3
    assert sorted(meili.docs) == sorted(shown)


def test_the_sweep_task_delivers_due_rows(api: Api, meili: FakeMeilisearch) -> None:
    shown, _ = _seed(api, published=2, drafts=0)
    meili.docs.clear()
    api.queue_outbox(*shown)
    with api.app.app_context():
        assert sweep_outbox.delay().get() == 2
        assert get_database().session().scalars(select(SearchOutbox)).all() == []
    assert sorted(meili.docs) == sorted(shown)


def test_without_meilisearch_the_search_tasks_do_nothing(make_api_app: AppFactory) -> None:
    app = make_api_app()
    with app.app_context():
        assert sweep_outbox.delay().get() == 0
        assert reindex.delay().get() == 0


def test_a_worker_on_the_search_queue_indexes_what_a_request_wrote(
    make_api_app: AppFactory, meili: FakeMeilisearch, broker: redis.Redis
) -> None:
    app = make_api_app(meili_url=meili.url, celery_broker_url=BROKER_URL)
    api = Api(app)
    author = api.register()
    with app.app_context():
        celery = get_celery()
    assert celery.conf.task_always_eager is False
    article = api.article(author, title="sent through the broker")
    assert article["id"] not in meili.docs  # not inline: a worker must pick it up
    assert broker.llen("search") == 1  # routed to the search queue

    with start_worker(
        celery, pool="solo", perform_ping_check=False, shutdown_timeout=5, queues=["search"]
    ):
        deadline = time.monotonic() + 20
        while article["id"] not in meili.docs:
            assert time.monotonic() < deadline, "the worker never indexed it"
            time.sleep(0.05)
    with app.app_context():
        session = get_database().session()
        assert session.scalars(select(SearchOutbox)).all() == []
    assert meili.docs[article["id"]]["title"] == "sent through the broker"


def test_flask_search_sweep_delivers_what_is_due(api: Api, meili: FakeMeilisearch) -> None:
    shown, _ = _seed(api, published=2, drafts=0)
    meili.docs.clear()
    api.queue_outbox(*shown)
    result = api.app.test_cli_runner().invoke(args=["search", "sweep"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Swept 2 outbox row(s) in 1 batch(es): 2 indexed, 0 removed."
    assert sorted(meili.docs) == sorted(shown)


def test_flask_search_sweep_reports_a_failure(api: Api, meili: FakeMeilisearch) -> None:
    shown, _ = _seed(api, published=1, drafts=0)
    api.queue_outbox(shown[0])
    meili.go_down()
    result = api.app.test_cli_runner().invoke(args=["search", "sweep"])
    assert result.exit_code == 1
    assert "stopped at a failed batch: SearchUnavailable" in result.output


def test_a_reindex_that_finds_the_index_gone_starts_from_the_first_article(
    api: Api, meili: FakeMeilisearch
) -> None:
    shown, _ = _seed(api, published=4, drafts=0)
    _fail_nth_addition(meili, 2)
    runner = api.app.test_cli_runner()
    assert runner.invoke(args=["search", "reindex", "--batch-size", "2"]).exit_code == 1
    del meili.task_outcomes["documentAdditionOrUpdate"]
    meili.lose_index()  # Meilisearch lost its data meanwhile: the index is created anew
    meili.requests.clear()
    result = runner.invoke(args=["search", "reindex", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert "resumed" not in result.output
    assert [d["id"] for r in meili.additions() for d in r.body] == shown
