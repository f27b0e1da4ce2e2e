"""A stand-in for Meilisearch's REST API, for testing our adapter at the HTTP
boundary: it records each request and answers with the shapes Meilisearch
documents (task objects, index stats, errors). No Meilisearch server exists on
our machines; the tests against a real one run where MEILI_URL is set."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

NOW = "2026-11-22T12:00:00.000000Z"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeMeilisearch:
    """Tasks succeed unless ``task_outcomes[kind]`` says otherwise:
    ``"processing"`` (never finishes) or an error ``{"code", "message"}``."""

    requests: list[Recorded] = field(default_factory=list[Recorded])
    task_outcomes: dict[str, Any] = field(default_factory=dict[str, Any])
    documents: int = 0
    _tasks: dict[int, dict[str, Any]] = field(default_factory=dict[int, dict[str, Any]])
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                fake.requests.append(
                    Recorded(self.command, self.path, dict(self.headers.items()), body)
                )
                status, payload = fake.answer(self.command, self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _enqueue(self, kind: str, index_uid: str) -> tuple[int, dict[str, Any]]:
        uid = len(self._tasks)
        outcome = self.task_outcomes.get(kind)
        task: dict[str, Any] = {
            "uid": uid,
            "indexUid": index_uid,
            "status": "succeeded",
            "type": kind,
            "details": {},
            "error": None,
            "canceledBy": None,
            "duration": "PT0.001S",
            "enqueuedAt": NOW,
            "startedAt": NOW,
            "finishedAt": NOW,
        }
        if outcome == "processing":
            task.update(status="processing", finishedAt=None, duration=None)
        elif isinstance(outcome, dict):
            task.update(status="failed", error={**outcome, "type": "invalid_request", "link": ""})
        self._tasks[uid] = task
        return 202, {
            "taskUid": uid,
            "indexUid": index_uid,
            "status": "enqueued",
            "type": kind,
            "enqueuedAt": NOW,
        }

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        path = path.split("?", 1)[0]
        if method == "GET" and path == "/health":
            return 200, {"status": "available"}
        if method == "POST" and path == "/indexes":
            return self._enqueue("indexCreation", body["uid"])
        if method == "PATCH" and path.endswith("/settings"):
            return self._enqueue("settingsUpdate", path.split("/")[2])
        if method == "GET" and path.startswith("/tasks/"):
            task = self._tasks.get(int(path.rsplit("/", 1)[1]))
            if task is None:
                return 404, {
                    "message": "Task not found.",
                    "code": "task_not_found",
                    "type": "invalid_request",
                    "link": "",
                }
            return 200, task
        if method == "GET" and path.endswith("/stats"):
            return 200, {
                "numberOfDocuments": self.documents,
                "isIndexing": False,
                "fieldDistribution": {},
            }
        return 404, {
            "message": "Not found",
            "code": "not_found",
            "type": "invalid_request",
            "link": "",
        }
