"""The TypeScript client a frontend team generates from the document
(``make client``: @hey-api/openapi-ts, fetch and zod, pinned in
``client/package-lock.json``), type-checked with ``tsc --strict`` and run
against a live server of the app: ``client/scenario.ts`` walks the contract end
to end, and the SDK checks every response body against its zod schema."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import AppFactory
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "client"
NPM = shutil.which("npm")
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    NPM is None or NODE is None,
    reason="needs node and npm (Node 20.19 or newer) to generate and run the TypeScript client",
)


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=CLIENT, capture_output=True, text=True, check=False, timeout=300
    )


@pytest.fixture(scope="module")
def built_client() -> Path:
    """``make client``: install the pinned tools, generate, type-check, compile."""
    assert NPM is not None
    for step in (
        (NPM, "ci", "--no-audit", "--no-fund"),
        (NPM, "run", "generate"),
        (NPM, "exec", "--", "tsc", "-p", "tsconfig.json", "--strict", "--noEmit"),
        (NPM, "run", "build"),
    ):
        result = run(*step)
        assert result.returncode == 0, f"{' '.join(step)}:\n{result.stdout}\n{result.stderr}"
    return CLIENT / "dist" / "scenario.js"


@pytest.fixture
def live_server(make_api_app: AppFactory) -> Iterator[str]:
    """The app on a real socket (SQLite, then MariaDB), in a thread of this process."""
    server = make_server("127.0.0.1", 0, make_api_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/v1"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_the_generated_client_walks_the_contract(built_client: Path, live_server: str) -> None:
    assert NODE is not None
    result = subprocess.run(
        [NODE, str(built_client)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={"API_URL": live_server, "PATH": str(Path(NODE).parent)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "scenario: every step passed"


def test_the_sdk_leaves_out_the_docs_routes_and_checks_every_response(built_client: Path) -> None:
    sdk = (CLIENT / "generated" / "sdk.gen.ts").read_text()
    for operation in ("listArticles", "getArticle", "createToken", "getReadiness"):
        assert f"export const {operation} =" in sdk
    for docs_operation in ("getDocsPage", "getDocsAsset", "getOpenApiDocument"):
        assert docs_operation not in sdk
    # One response validator per operation that answers a body (or a 204, which
    # it checks is empty): every body the SDK returns is checked. A 202 without
    # a body (the email routes) has nothing to check.
    document = json.loads((ROOT / "docs" / "contract" / "openapi.json").read_text())
    operations = [
        operation
        for path in document["paths"].values()
        for operation in path.values()
        if "docs" not in operation["tags"]
    ]
    bodiless = [
        operation["operationId"]
        for operation in operations
        if all(
            "content" not in response
            for status, response in operation["responses"].items()
            if status.startswith("2") and status != "204"
        )
        and "204" not in operation["responses"]
    ]
    assert sorted(bodiless) == ["forgotPassword", "requestEmailVerification"]
    assert len(operations) >= 19
    assert sdk.count("export const ") == len(operations)
    assert sdk.count("responseValidator:") == len(operations) - len(bodiless)


def test_a_scenario_that_breaks_the_types_fails_tsc(built_client: Path, tmp_path: Path) -> None:
    """The type check is real: a call the document does not allow does not compile."""
    broken = CLIENT / "broken_scenario.ts"
    broken.write_text(
        'import * as sdk from "./generated/sdk.gen";\n'
        "sdk.getArticle({ path: { article_id: 'one' } });\n"
    )
    try:
        assert NPM is not None
        result = run(
            NPM, "exec", "--", "tsc", "--strict", "--noEmit", "--skipLibCheck", str(broken)
        )
    finally:
        broken.unlink()
    assert result.returncode != 0
    assert "error TS2322" in result.stdout
