"""The OpenAPI document, byte for byte, against the committed contract
(``docs/contract/openapi.json``): a change to any operation, schema, parameter
or operation id fails here until the contract file says so too. After a
deliberate change to the contract, regenerate it and review its diff:

    PYTHONPATH=. .venv/bin/python -m tests.test_openapi_snapshot
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app import create_app
from app.core.settings import Settings

SNAPSHOT = Path(__file__).resolve().parent.parent / "docs" / "contract" / "openapi.json"


def current_document(settings: Settings) -> dict[str, Any]:
    client = create_app(settings).test_client()
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json  # type: ignore[assignment]
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_document_equals_the_committed_snapshot(make_settings: Any) -> None:
    document = current_document(make_settings())
    assert render(document) == SNAPSHOT.read_text(encoding="utf-8")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            _env_file=None,  # pyright: ignore[reportCallIssue]
            app_env="testing",
            instance_path=Path(folder),
        )
        SNAPSHOT.write_text(render(current_document(settings)), encoding="utf-8")
    print(f"wrote {SNAPSHOT}")
