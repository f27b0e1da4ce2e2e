"""Our Meilisearch adapter at the HTTP boundary: the requests it sends and how
it reads Meilisearch's documented task, error and stats responses."""

from __future__ import annotations

import time

import pytest
from conftest import SettingsFactory
from meili_fake import FakeMeilisearch
from sqlalchemy import Engine

from app import create_app
from app.core.application import APIFlask
from app.extensions.search import INDEX_SETTINGS, SearchUnavailable, get_index

KEY = "master-key-for-tests"


@pytest.fixture
def search_app(
    make_settings: SettingsFactory, meili: FakeMeilisearch, db_engine: Engine
) -> APIFlask:
    return create_app(
        make_settings(
            meili_url=meili.url,
            meili_master_key=KEY,
            meili_task_timeout=1.0,
            database_url=db_engine.url.render_as_string(hide_password=False),
        )
    )


def test_init_creates_the_index_and_applies_the_settings(
    search_app: APIFlask, meili: FakeMeilisearch
) -> None:
    result = search_app.test_cli_runner().invoke(args=["search", "init"])
    assert result.exit_code == 0, result.output
    assert "Applied the settings of index 'articles'" in result.output
    writes = [r for r in meili.requests if r.method != "GET"]
    assert [(r.method, r.path) for r in writes] == [
        ("POST", "/indexes"),
        ("PATCH", "/indexes/articles/settings"),
    ]
    assert writes[0].body == {"uid": "articles", "primaryKey": "id"}
    assert writes[1].body == INDEX_SETTINGS
    assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r in meili.requests)
    assert INDEX_SETTINGS["filterableAttributes"] == ["id", "status", "tags", "author.id"]


def test_init_is_idempotent_when_the_index_exists(
    search_app: APIFlask, meili: FakeMeilisearch
) -> None:
    meili.task_outcomes["indexCreation"] = {
        "code": "index_already_exists",
        "message": "Index `articles` already exists.",
    }
    result = search_app.test_cli_runner().invoke(args=["search", "init"])
    assert result.exit_code == 0, result.output


def test_a_failed_settings_task_is_reported(search_app: APIFlask, meili: FakeMeilisearch) -> None:
    meili.task_outcomes["settingsUpdate"] = {
        "code": "invalid_settings_ranking_rules",
        "message": "bad rule",
    }
    result = search_app.test_cli_runner().invoke(args=["search", "init"])
    assert result.exit_code == 1
    assert "invalid_settings_ranking_rules: bad rule" in result.output


def test_waiting_for_a_task_is_bounded(search_app: APIFlask, meili: FakeMeilisearch) -> None:
    meili.task_outcomes["settingsUpdate"] = "processing"
    with search_app.app_context():
        index = get_index()
        assert index is not None
        started = time.monotonic()
        with pytest.raises(SearchUnavailable, match="Timeout"):
            index.apply_settings()
    assert time.monotonic() - started < 3


def test_status_prints_the_document_count(search_app: APIFlask, meili: FakeMeilisearch) -> None:
    meili.docs = {i: {"id": i} for i in range(42)}
    result = search_app.test_cli_runner().invoke(args=["search", "status"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Index 'articles': 42 documents, idle.",
        "Outbox: empty, the index has heard of every change.",
    ]


def test_without_meilisearch_the_commands_say_so(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings())
    result = app.test_cli_runner().invoke(args=["search", "init"])
    assert result.exit_code == 1
    assert "MEILI_URL is not set" in result.output


def test_an_unreachable_meilisearch_is_reported_within_the_timeout(
    make_settings: SettingsFactory,
) -> None:
    app = create_app(make_settings(meili_url="http://127.0.0.1:1", meili_timeout=1))
    started = time.monotonic()
    result = app.test_cli_runner().invoke(args=["search", "status"])
    assert result.exit_code == 1
    assert "MeilisearchCommunicationError" in result.output
    # This app's database was never migrated: the backlog is reported unknown, not a crash.
    assert "Outbox: unknown, the database did not answer (OperationalError)." in result.output
    assert time.monotonic() - started < 3


def test_readiness_reports_search(make_settings: SettingsFactory, meili: FakeMeilisearch) -> None:
    up = create_app(make_settings(meili_url=meili.url)).test_client()
    body = up.get("/api/v1/health/ready").json
    assert body is not None
    assert body["checks"]["search"]["status"] == "ok"
    down = create_app(make_settings(meili_url="http://127.0.0.1:1")).test_client()
    response = down.get("/api/v1/health/ready")
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["checks"]["search"]["status"] == "down"


def test_settings_are_applied_at_start_up_when_asked(
    make_settings: SettingsFactory, meili: FakeMeilisearch
) -> None:
    create_app(make_settings(meili_url=meili.url, meili_init_on_start=True))
    assert [r.path for r in meili.requests if r.method == "PATCH"] == ["/indexes/articles/settings"]
