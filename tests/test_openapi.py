"""The OpenAPI document at /api/v1/openapi.json and the docs page at /api/v1/docs.

The document must be valid OpenAPI 3.1, list every route the app serves, and say
what the contract (``../shared/specs/api-v1.md``) says: the same routes, statuses,
shapes, error envelope and security. It does not touch the database, so these
tests use the plain ``app``/``client`` fixtures.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from flask.testing import FlaskClient
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from app.core.application import APIFlask

BASE_PATH = "/api/v1"
ENVELOPE_REF = "#/components/schemas/ErrorEnvelope"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

#: The contract's tables: method, path (relative to /api/v1), success status.
CONTRACT_SUCCESSES = [
    ("POST", "/auth/register", 201),
    ("POST", "/auth/token", 200),
    ("POST", "/auth/refresh", 200),
    ("POST", "/auth/logout", 204),
    ("GET", "/users/me", 200),
    ("PATCH", "/users/me", 200),
    ("GET", "/users", 200),
    ("GET", "/articles", 200),
    ("POST", "/articles", 201),
    ("GET", "/articles/{article_id}", 200),
    ("PATCH", "/articles/{article_id}", 200),
    ("DELETE", "/articles/{article_id}", 204),
    ("GET", "/articles/search", 200),
    ("GET", "/health", 200),
    ("GET", "/health/ready", 200),
    ("GET", "/openapi.json", 200),
    ("GET", "/docs", 200),
]

#: The contract's notable errors, and 422 wherever there is a body or a query.
CONTRACT_ERRORS = [
    ("POST", "/auth/register", 409),
    ("POST", "/auth/register", 422),
    ("POST", "/auth/token", 401),
    ("POST", "/auth/token", 429),
    ("POST", "/auth/token", 422),
    ("POST", "/auth/refresh", 401),
    ("POST", "/auth/refresh", 422),
    ("POST", "/auth/logout", 401),
    ("POST", "/auth/logout", 422),
    ("PATCH", "/users/me", 422),
    ("GET", "/users", 403),
    ("GET", "/users", 422),
    ("GET", "/articles/search", 422),
    ("GET", "/articles", 422),
    ("POST", "/articles", 422),
    ("GET", "/articles/{article_id}", 304),
    ("GET", "/articles/{article_id}", 404),
    ("PATCH", "/articles/{article_id}", 412),
    ("PATCH", "/articles/{article_id}", 422),
    ("GET", "/health/ready", 503),
]

#: Response headers the contract promises.
CONTRACT_HEADERS = [
    ("POST", "/articles", 201, "Location"),
    ("POST", "/articles", 201, "ETag"),
    ("GET", "/articles/{article_id}", 200, "ETag"),
    ("GET", "/articles/{article_id}", 200, "Last-Modified"),
    ("PATCH", "/articles/{article_id}", 200, "ETag"),
    ("GET", "/articles", 200, "ETag"),
    ("POST", "/auth/token", 429, "Retry-After"),
]

USER_FIELDS = {"id", "email", "email_verified", "name", "is_admin", "created_at"}
ARTICLE_FIELDS = {
    "id",
    "title",
    "body",
    "tags",
    "status",
    "author",
    "created_at",
    "updated_at",
    "version",
}
PAGE_FIELDS = {"items", "page", "per_page", "total", "pages"}
REQUEST_MODELS = [
    "Register",
    "TokenRequest",
    "ArticleCreate",
    "ArticleUpdate",
    "UserUpdate",
    "RefreshRequest",
]

SIGNED_IN = [
    ("GET", "/users/me"),
    ("PATCH", "/users/me"),
    ("GET", "/users"),
    ("POST", "/articles"),
    ("PATCH", "/articles/{article_id}"),
    ("DELETE", "/articles/{article_id}"),
]
PUBLIC = [
    ("POST", "/auth/register"),
    ("POST", "/auth/token"),
    ("POST", "/auth/refresh"),
    ("POST", "/auth/logout"),
    ("GET", "/health"),
    ("GET", "/health/ready"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
]
#: Anyone may call these; a token, when sent, shows drafts to their author.
OPTIONAL_AUTH = [("GET", "/articles"), ("GET", "/articles/{article_id}")]

_FLASK_PARAMETER = re.compile(r"<(?:[a-z]+(?:\([^)]*\))?:)?(\w+)>")


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get(f"{BASE_PATH}/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    return body


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every operation of the document by (METHOD, path)."""
    return {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    found = operations(document).get((method, path))
    assert found is not None, f"{method} {path} is not in the document"
    return found


def schema_named(document: dict[str, Any], name: str) -> dict[str, Any]:
    schemas: dict[str, Any] = document["components"]["schemas"]
    assert name in schemas, f"components.schemas has no {name}"
    return schemas[name]  # type: ignore[no-any-return]


def response_schema_ref(response: dict[str, Any]) -> str | None:
    return response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")


# -- the document as a whole --------------------------------------------------------


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document, cls=OpenAPIV31SpecValidator)


def test_paths_are_relative_to_the_server_url(document: dict[str, Any]) -> None:
    assert document["servers"][0]["url"] == BASE_PATH
    assert document["paths"], "the document lists no paths"
    assert not [path for path in document["paths"] if path.startswith(BASE_PATH)]


def test_every_route_of_the_app_is_documented(app: APIFlask, document: dict[str, Any]) -> None:
    """Every URL rule under /api/v1 (but HEAD/OPTIONS, which Flask adds) is an
    operation of the document, with the same method, and nothing else is. The
    one exception is the notification stream: a WebSocket, which OpenAPI cannot
    describe (docs/api.md does), answered here only by make dev's bridge."""
    routes = {
        (method, _FLASK_PARAMETER.sub(r"{\1}", rule.rule.removeprefix(BASE_PATH)))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(BASE_PATH + "/") and rule.endpoint != "notification_stream"
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    }
    assert ("PATCH", "/articles/{article_id}") in routes  # the conversion works
    assert routes == set(operations(document))


@pytest.mark.parametrize(("method", "path", "status"), CONTRACT_SUCCESSES)
def test_contract_success_statuses_are_documented(
    document: dict[str, Any], method: str, path: str, status: int
) -> None:
    assert str(status) in operation(document, method, path)["responses"]


@pytest.mark.parametrize(("method", "path", "status"), CONTRACT_ERRORS)
def test_contract_error_statuses_are_documented(
    document: dict[str, Any], method: str, path: str, status: int
) -> None:
    assert str(status) in operation(document, method, path)["responses"]


@pytest.mark.parametrize(("method", "path", "status", "header"), CONTRACT_HEADERS)
def test_contract_response_headers_are_documented(
    document: dict[str, Any], method: str, path: str, status: int, header: str
) -> None:
    response = operation(document, method, path)["responses"][str(status)]
    assert header in response.get("headers", {})


def test_every_response_documents_x_request_id(document: dict[str, Any]) -> None:
    missing = [
        f"{method} {path} {status}"
        for (method, path), op in operations(document).items()
        for status, response in op["responses"].items()
        if "X-Request-ID" not in response.get("headers", {})
    ]
    assert missing == []


def test_no_content_responses_have_no_body(document: dict[str, Any]) -> None:
    """204 and 304 answer an empty body, so the document must not promise one."""
    with_body = [
        f"{method} {path} {status}"
        for (method, path), op in operations(document).items()
        for status, response in op["responses"].items()
        if status in {"204", "304"} and "content" in response
    ]
    assert with_body == []


# -- operations ----------------------------------------------------------------------


def test_operation_ids_are_unique_and_camel_case(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for op in operations(document).values()]
    assert len(ids) == len(set(ids))
    assert [name for name in ids if not re.fullmatch(r"[a-z][A-Za-z0-9]*", name)] == []


def test_every_operation_has_a_tag_and_a_summary(document: dict[str, Any]) -> None:
    for (method, path), op in operations(document).items():
        assert op.get("tags"), f"{method} {path} has no tag"
        assert all(isinstance(tag, str) and tag for tag in op["tags"])
        assert isinstance(op.get("summary"), str), f"{method} {path} has no summary"
        assert op["summary"].strip(), f"{method} {path} has an empty summary"


def test_every_error_response_is_the_envelope(document: dict[str, Any]) -> None:
    """Every 4xx/5xx response's body is the ErrorEnvelope. The one exception is
    the contract's own: /health/ready answers 503 with the readiness report."""
    exceptions = {("GET", "/health/ready", "503"): "#/components/schemas/Readiness"}
    wrong = {}
    for (method, path), op in operations(document).items():
        for status, response in op["responses"].items():
            if int(status) < 400:
                continue
            expected = exceptions.get((method, path, status), ENVELOPE_REF)
            if response_schema_ref(response) != expected:
                wrong[f"{method} {path} {status}"] = response.get("content")
    assert wrong == {}


def test_error_envelope_schema(document: dict[str, Any]) -> None:
    envelope = schema_named(document, "ErrorEnvelope")
    assert set(envelope["required"]) == {"code", "error_code", "message", "request_id"}
    assert set(envelope["properties"]) == {"code", "error_code", "message", "details", "request_id"}
    assert envelope["properties"]["code"]["type"] == "integer"
    assert envelope["properties"]["error_code"]["type"] == "integer"


# -- shapes --------------------------------------------------------------------------


def test_user_schema_is_the_contract_user(document: dict[str, Any]) -> None:
    user = schema_named(document, "User")
    assert set(user["properties"]) == USER_FIELDS
    assert set(user["required"]) == USER_FIELDS
    assert not [name for name in user["properties"] if "password" in name or "hash" in name]
    # Your own account adds the phone, and only it.
    me = schema_named(document, "Me")
    assert set(me["properties"]) == set(me["required"]) == USER_FIELDS | {"phone"}


def test_article_schema_is_the_contract_article(document: dict[str, Any]) -> None:
    article = schema_named(document, "Article")
    assert set(article["properties"]) == ARTICLE_FIELDS
    assert set(article["required"]) == ARTICLE_FIELDS
    assert article["properties"]["tags"]["type"] == "array"
    assert article["properties"]["tags"]["items"]["type"] == "string"
    assert set(schema_named(document, "Author")["properties"]) == {"id", "name"}
    assert schema_named(document, "ArticleStatus")["enum"] == ["draft", "published"]


@pytest.mark.parametrize(("name", "item"), [("ArticlePage", "Article"), ("UserPage", "User")])
def test_page_schemas_are_the_contract_page(document: dict[str, Any], name: str, item: str) -> None:
    page = schema_named(document, name)
    assert set(page["properties"]) == PAGE_FIELDS
    assert page["properties"]["items"]["items"]["$ref"] == f"#/components/schemas/{item}"


@pytest.mark.parametrize(("method", "path"), [("GET", "/articles"), ("GET", "/users")])
def test_paging_parameters_have_the_contract_bounds(
    document: dict[str, Any], method: str, path: str
) -> None:
    parameters = {
        parameter["name"]: parameter
        for parameter in operation(document, method, path)["parameters"]
        if parameter["in"] == "query"
    }
    page = parameters["page"]["schema"]
    per_page = parameters["per_page"]["schema"]
    assert (page["type"], page["minimum"], page["default"]) == ("integer", 1, 1)
    assert (per_page["type"], per_page["minimum"], per_page["maximum"]) == ("integer", 1, 100)
    assert per_page["default"] == 20


def test_article_list_filters_are_the_contract_filters(document: dict[str, Any]) -> None:
    parameters = {
        parameter["name"]: parameter["schema"]
        for parameter in operation(document, "GET", "/articles")["parameters"]
    }
    assert {"tag", "author_id", "status", "sort"} <= parameters.keys()
    assert set(parameters["sort"]["enum"]) == {"created_at", "-created_at", "title", "-title"}


def test_token_pair_schema(document: dict[str, Any]) -> None:
    pair = schema_named(document, "TokenPair")
    assert set(pair["properties"]) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert pair["properties"]["token_type"]["const"] == "bearer"
    ref = response_schema_ref(operation(document, "POST", "/auth/refresh")["responses"]["200"])
    assert ref == "#/components/schemas/TokenPair"


def test_token_takes_either_shape_under_either_media_type(document: dict[str, Any]) -> None:
    """Generators keep one media type of a body (the JSON one), so the OAuth 2
    form's shape must be in it for a generated client to send it."""
    content = operation(document, "POST", "/auth/token")["requestBody"]["content"]
    assert set(content) == {"application/json", "application/x-www-form-urlencoded"}
    shapes = ["TokenRequest", "TokenForm"]
    for media in content.values():
        assert [ref["$ref"].rpartition("/")[2] for ref in media["schema"]["oneOf"]] == shapes
    required = [set(schema_named(document, name)["required"]) for name in shapes]
    assert required == [{"email", "password"}, {"username", "password"}]
    # oneOf holds: no body can fit both, as each forbids the other's name.
    assert all(schema_named(document, name)["additionalProperties"] is False for name in shapes)


@pytest.mark.parametrize("name", REQUEST_MODELS)
def test_request_schemas_forbid_unknown_fields(document: dict[str, Any], name: str) -> None:
    assert schema_named(document, name).get("additionalProperties") is False


@pytest.mark.parametrize(
    ("method", "path", "model"),
    [
        ("POST", "/auth/register", "Register"),
        ("POST", "/auth/refresh", "RefreshRequest"),
        ("POST", "/auth/logout", "RefreshRequest"),
        ("PATCH", "/users/me", "UserUpdate"),
        ("POST", "/articles", "ArticleCreate"),
        ("PATCH", "/articles/{article_id}", "ArticleUpdate"),
    ],
)
def test_request_bodies_use_the_request_models(
    document: dict[str, Any], method: str, path: str, model: str
) -> None:
    body = operation(document, method, path)["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"]["$ref"] == (
        f"#/components/schemas/{model}"
    )


# -- security ------------------------------------------------------------------------


def test_bearer_security_scheme(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


@pytest.mark.parametrize(("method", "path"), SIGNED_IN)
def test_signed_in_operations_require_a_bearer_token(
    document: dict[str, Any], method: str, path: str
) -> None:
    op = operation(document, method, path)
    assert op["security"] == [{"bearerAuth": []}]
    assert "401" in op["responses"]


@pytest.mark.parametrize(("method", "path"), PUBLIC)
def test_public_operations_need_no_credentials(
    document: dict[str, Any], method: str, path: str
) -> None:
    assert operation(document, method, path)["security"] == []


@pytest.mark.parametrize(("method", "path"), OPTIONAL_AUTH)
def test_optional_auth_operations_allow_anonymous_and_bearer(
    document: dict[str, Any], method: str, path: str
) -> None:
    security = operation(document, method, path)["security"]
    assert {} in security
    assert {"bearerAuth": []} in security


# -- the docs page -------------------------------------------------------------------


class _AssetLinks(HTMLParser):
    """The URLs a page loads: every <script src> and <link href>."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href"}.get(tag)
        for name, value in attrs:
            if name == wanted and value is not None:
                self.urls.append(value)


def test_docs_page_loads_only_its_own_assets(client: FlaskClient) -> None:
    """The docs page works offline: every script and stylesheet is served by the
    app under /api/v1/docs/assets/, and nothing points elsewhere."""
    response = client.get(f"{BASE_PATH}/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "http://" not in html
    assert "https://" not in html

    links = _AssetLinks()
    links.feed(html)
    assert len(links.urls) >= 3  # the stylesheet, the bundle, the preset, the start-up script
    for url in links.urls:
        assert url.startswith(f"{BASE_PATH}/docs/assets/"), url
        with client.get(url) as asset:  # a file response: close it
            assert asset.status_code == 200, url
            assert asset.mimetype in {"text/javascript", "application/javascript", "text/css"}
            assert len(asset.get_data()) > 200, url


def test_docs_page_loads_the_document_it_describes(client: FlaskClient) -> None:
    html = client.get(f"{BASE_PATH}/docs").get_data(as_text=True)
    assert f'"{BASE_PATH}/openapi.json"' in html
    with client.get(f"{BASE_PATH}/docs/assets/swagger-ui-bundle.js") as bundle:
        assert "SwaggerUIBundle" in bundle.get_data(as_text=True)


def test_docs_page_csp_allows_no_other_host(client: FlaskClient) -> None:
    policy = client.get(f"{BASE_PATH}/docs").headers["Content-Security-Policy"]
    directives = {
        parts[0]: parts[1:]
        for parts in (directive.split() for directive in policy.split(";"))
        if parts
    }
    assert directives["default-src"] == ["'none'"]
    assert directives["script-src"] == ["'self'"]
    sources = [source for values in directives.values() for source in values]
    # Only keywords ('self', 'none', ...) and data: URIs: no host, scheme or wildcard.
    assert [s for s in sources if not (re.fullmatch(r"'[a-z-]+'", s) or s == "data:")] == []


@pytest.mark.parametrize(
    "name",
    ["nope.js", "index.html", "..%2f..%2fsettings.py", "..%2F..%2F__init__.py", "%2e%2e%2fapp"],
)
def test_unknown_docs_assets_are_a_json_404(client: FlaskClient, name: str) -> None:
    """Only the page's own files are served: no other file of the Swagger UI
    package, and no path traversal out of it."""
    response = client.get(f"{BASE_PATH}/docs/assets/{name}")
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    assert body["code"] == 404
    assert body["error_code"] in {13000, 13001}
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert b"import" not in response.get_data()  # no Python source leaked


def test_the_search_page_matches_the_contract(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").json
    assert document is not None
    schemas = document["components"]["schemas"]
    assert set(schemas["SearchPage"]["properties"]) == {
        "items",
        "query",
        "page",
        "per_page",
        "total",
        "processing_time_ms",
    }
    hit = schemas["SearchHit"]["properties"]
    assert "_formatted" in hit
    assert set(hit) - {"_formatted"} == set(schemas["Article"]["properties"])


def _texts(value: Any) -> list[str]:
    """Every summary and description in the document."""
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    if not isinstance(value, dict):
        return []
    found: list[str] = []
    for key, item in value.items():
        if key in ("summary", "description") and isinstance(item, str):
            found.append(item)
        else:
            found.extend(_texts(item))
    return found


def test_descriptions_are_markdown_not_restructuredtext(document: dict[str, Any]) -> None:
    texts = _texts(document)
    assert [text for text in texts if "``" in text] == []
    assert "Write an article (a draft unless `status` says `published`)." in texts
    # An angle-bracketed placeholder is a code span, so no renderer takes it for HTML.
    assert 'The article\'s version tag, `"<id>-<version>"`' in texts


@pytest.mark.parametrize(
    ("schema", "field"),
    [("ArticleCreate", "title"), ("Register", "name"), ("UserUpdate", "name")],
)
def test_stripped_strings_say_that_spaces_alone_are_refused(
    document: dict[str, Any], schema: str, field: str
) -> None:
    """The server strips these before measuring them, so the document asks for
    a character that is not a space as well as a length."""
    assert schema_named(document, schema)["properties"][field]["pattern"] == r"\S"


def test_tags_say_that_spaces_alone_are_refused(document: dict[str, Any]) -> None:
    tags = schema_named(document, "ArticleCreate")["properties"]["tags"]
    assert tags["items"]["pattern"] == r"\S"


@pytest.mark.parametrize(
    ("method", "path", "header"),
    [
        ("GET", "/articles", "If-None-Match"),
        ("GET", "/articles/{article_id}", "If-None-Match"),
        ("PATCH", "/articles/{article_id}", "If-Match"),
        ("DELETE", "/articles/{article_id}", "If-Match"),
    ],
)
def test_conditional_request_headers_are_declared(
    document: dict[str, Any], method: str, path: str, header: str
) -> None:
    """A generated client types the ETag workflow only if the document declares it."""
    parameters = operation(document, method, path)["parameters"]
    declared = [p for p in parameters if p["in"] == "header" and p["name"] == header]
    assert len(declared) == 1
    assert declared[0]["required"] is False


def test_only_operations_that_answer_304_or_412_read_conditional_headers(
    document: dict[str, Any],
) -> None:
    for (method, path), found in operations(document).items():
        names = {p["name"] for p in found["parameters"] if p["in"] == "header"}
        expected = {
            name
            for status, name in (("304", "If-None-Match"), ("412", "If-Match"))
            if status in found["responses"]
        }
        assert names == expected, (method, path)


def test_response_headers_the_code_sets_are_declared(document: dict[str, Any]) -> None:
    for method in ("PATCH", "DELETE"):
        assert (
            "ETag"
            in operation(document, method, "/articles/{article_id}")["responses"]["412"]["headers"]
        )
    for (method, path), found in operations(document).items():
        if "401" in found["responses"]:
            assert "WWW-Authenticate" in found["responses"]["401"]["headers"], (method, path)


def test_a_405_is_declared_where_a_path_value_names_another_route(
    document: dict[str, Any], client: FlaskClient
) -> None:
    """`/articles/search` is both the search route and a value of
    `/articles/{article_id}`: a PATCH or DELETE there answers 405 (the search
    route allows GET only), so those operations declare it, with `Allow`."""
    for method in ("PATCH", "DELETE"):
        declared = operation(document, method, "/articles/{article_id}")["responses"]["405"]
        assert "Allow" in declared["headers"]
        answered = client.open("/api/v1/articles/search", method=method)
        assert answered.status_code == 405
        assert "GET" in answered.headers["Allow"]
    # GET /articles/search is the search itself; no other operation can get a 405.
    assert [
        (method, path)
        for (method, path), found in operations(document).items()
        if "405" in found["responses"]
    ] == [("PATCH", "/articles/{article_id}"), ("DELETE", "/articles/{article_id}")]
