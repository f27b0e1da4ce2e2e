"""Property-based tests of /api/v1 against its own OpenAPI document (schemathesis).

For every operation of the document, schemathesis generates requests, valid and
invalid (its examples, coverage and fuzzing phases), sends them to the app
in-process and runs every default check on each answer: no 5xx, documented
status codes, content types, headers and bodies, valid data accepted, invalid
data rejected, and a secured operation refusing a request without its token.
It runs twice: anonymously, and as a signed-in user, so the guarded operations
get past their 401. SQLite only; the example count is bounded and derandomized
so CI runs are quick and reproducible.

How it is wired: schemathesis needs the schema when the module is imported (to
make one test per operation), while each test wants a fresh app on its own
database. So the document is read once at import from a throwaway app (it does
not depend on the database; ``test_the_fuzzed_document_is_the_apps`` checks
it is the same), and requests go through :data:`CURRENT_APP`, a WSGI app that
forwards to the current test's app. (``schemathesis.pytest.from_fixture`` would
be the usual way, but it does not work with pytest 9: it sets ``Node._nodeid``.)
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from conftest import SettingsFactory
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Ok

from app import create_app, migrations
from app.core.application import APIFlask
from app.core.settings import Settings
from app.extensions.database import get_database

OPENAPI_URL = "/api/v1/openapi.json"
PASSWORD = "correct horse battery"

#: Per operation and phase: at most this many generated cases, the same ones on every run.
FUZZ_SETTINGS = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # the app fixture is per test, on purpose
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


class _CurrentApp:
    """A WSGI app forwarding every request to the app of the running test."""

    def __init__(self) -> None:
        self.target: APIFlask | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        assert self.target is not None, "no fuzz_app fixture is active"
        return self.target(environ, start_response)


CURRENT_APP = _CurrentApp()


def _document() -> dict[str, Any]:
    """The OpenAPI document, from an app on an in-memory database."""
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            Settings(
                _env_file=None,  # pyright: ignore[reportCallIssue]
                app_env="testing",
                instance_path=Path(folder),
                database_url="sqlite://",
                redis_url="",
            )
        )
        response = app.test_client().get(OPENAPI_URL)
        assert response.status_code == 200
        return response.json  # type: ignore[return-value]


#: Invalid data may also be refused as too large: a body over ``maxLength`` in
#: characters of four UTF-8 bytes each is over ``MAX_CONTENT_LENGTH`` in bytes,
#: and its ``413`` (docs/api.md, "Errors") is a rejection like the others.
_DEFAULTS = SchemathesisConfig().projects.default.checks
REJECTIONS = [*_DEFAULTS.negative_data_rejection.expected_statuses, "413"]
#: Valid data may meet a precondition that fails: a well-formed ``If-Match``
#: that is not the article's ETag is a ``412`` (docs/api.md, "Articles").
ACCEPTANCES = [*_DEFAULTS.positive_data_acceptance.expected_statuses, "412"]
#: A token from an emailed link is a string to the schema, and one the server
#: never signed is a 400 (``LINK_INVALID``), one too old a 410: on these two
#: routes alone, those answer valid data too.
LINK_ROUTES = r"^/auth/(email/verify|password/reset)$"
LINK_ACCEPTANCES = [*ACCEPTANCES, "400", "410"]
#: A phone number is a string to the schema: whether it is a valid number is
#: ``phonenumbers``' metadata, which no JSON Schema can hold, so a string the
#: schema allows may still be a 422 that says "Not a valid phone number".
PHONE_ROUTES = r"^/(auth/sms/(code|token)|users/me/phone)$"
PHONE_ACCEPTANCES = [*ACCEPTANCES, "422"]
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {"expected-statuses": REJECTIONS},
            "positive_data_acceptance": {"expected-statuses": ACCEPTANCES},
        },
        "operations": [
            {
                "include-path-regex": LINK_ROUTES,
                "checks": {"positive_data_acceptance": {"expected-statuses": LINK_ACCEPTANCES}},
            },
            {
                "include-path-regex": PHONE_ROUTES,
                "checks": {"positive_data_acceptance": {"expected-statuses": PHONE_ACCEPTANCES}},
            },
        ],
    }
)
schema = schemathesis.openapi.from_dict(_document(), config=CONFIG)
schema.app = CURRENT_APP


@pytest.fixture
def fuzz_app(make_settings: SettingsFactory, tmp_path: Path) -> Iterator[APIFlask]:
    """The whole app on a migrated SQLite file, with cheap Argon2 parameters,
    answering the requests schemathesis sends during the test."""
    app = create_app(
        make_settings(
            database_url=f"sqlite:///{tmp_path / 'fuzz.db'}",
            password_time_cost=1,
            password_memory_cost=8192,
        )
    )
    with app.app_context():
        migrations.upgrade(get_database().engine)
    CURRENT_APP.target = app
    yield app
    CURRENT_APP.target = None


@pytest.fixture
def bearer(fuzz_app: APIFlask) -> dict[str, str]:
    """The Authorization header of a registered user, who has written article 1."""
    client = fuzz_app.test_client()
    account = {"email": "fuzz@example.com", "password": PASSWORD, "name": "Fuzz"}
    assert client.post("/api/v1/auth/register", json=account).status_code == 201
    response = client.post(
        "/api/v1/auth/token", json={"email": account["email"], "password": PASSWORD}
    )
    assert response.status_code == 200, response.json
    headers = {"Authorization": f"Bearer {response.json['access_token']}"}  # type: ignore[index]
    article = {"title": "Seed", "body": "An article to read", "status": "published"}
    created = client.post("/api/v1/articles", json=article, headers=headers)
    assert created.status_code == 201, created.json
    assert created.json["id"] == 1  # type: ignore[index]
    return headers


def test_the_fuzzed_document_is_the_apps(fuzz_app: APIFlask) -> None:
    """The document read at import time is the one the fuzzed app serves, and
    schemathesis sees every one of its operations."""
    served = fuzz_app.test_client().get(OPENAPI_URL).json
    assert schema.raw_schema == served
    documented = {
        (method.upper(), path)
        for path, item in served["paths"].items()  # type: ignore[index]
        for method in item
    }
    loaded: set[tuple[str, str]] = set()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # every operation is usable
        loaded.add((result.ok().method.upper(), result.ok().path))
    assert loaded == documented
    assert len(loaded) >= 17  # the operations of /api/v1 today


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_anonymously(case: Case, fuzz_app: APIFlask) -> None:
    case.call_and_validate()


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_signed_in(case: Case, bearer: dict[str, str]) -> None:
    case.call_and_validate(headers=bearer)


def test_a_body_too_large_and_a_failed_precondition_are_expected_answers() -> None:
    """The negative-data check takes a 413 as a rejection, and the positive-data
    check a 412 as an answer, on top of their defaults."""
    checks = schema.config.checks
    rejected = set(checks.negative_data_rejection.expected_statuses)
    accepted = set(checks.positive_data_acceptance.expected_statuses)
    assert set(_DEFAULTS.negative_data_rejection.expected_statuses) | {"413"} == rejected
    assert set(_DEFAULTS.positive_data_acceptance.expected_statuses) | {"412"} == accepted


def test_only_the_link_and_phone_routes_accept_more_for_valid_data() -> None:
    links, phones = schema.config.operations.operations
    assert links.checks.positive_data_acceptance.expected_statuses == LINK_ACCEPTANCES
    assert phones.checks.positive_data_acceptance.expected_statuses == PHONE_ACCEPTANCES
    phoned = {path for path in schema.raw_schema["paths"] if re.fullmatch(PHONE_ROUTES, path)}
    assert phoned == {"/auth/sms/code", "/auth/sms/token", "/users/me/phone"}
    linked = {path for path in schema.raw_schema["paths"] if re.fullmatch(LINK_ROUTES, path)}
    assert linked == {"/auth/email/verify", "/auth/password/reset"}
