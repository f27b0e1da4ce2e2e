"""A stand-in for Meilisearch's REST API, for testing our adapter at the HTTP
boundary: it records each request and answers with the shapes Meilisearch
documents (task objects, documents, search results, index stats, errors). No
Meilisearch server exists on our machines; the tests against a real one run
where MEILI_URL is set (``tests/test_search_meilisearch.py``).

It keeps documents, so indexing can be followed end to end: an addition
replaces whole documents by ``id``, a deletion takes the list of ids
list of primary keys our adapter sends. Its search is a plain substring match, enough to
check what our side sends and how it reads the answer, not Meilisearch's
ranking. ``hold`` makes every document task wait until it is set, and
``go_down()``/``come_back()`` close and reopen its port.
"""

from __future__ import annotations

import json
import re
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
    docs: dict[int, dict[str, Any]] = field(default_factory=dict[int, dict[str, Any]])
    indexes: set[str] = field(default_factory=set[str])
    #: When set, searches answer this Meilisearch error (``{"code", "message"}``), with 400.
    search_error: dict[str, str] | None = None
    #: Document requests block until this is set (it starts set).
    hold: threading.Event = field(default_factory=threading.Event)
    _tasks: dict[int, dict[str, Any]] = field(default_factory=dict[int, dict[str, Any]])
    _server: ThreadingHTTPServer | None = None
    _port: int = 0

    def __post_init__(self) -> None:
        self.hold.set()

    @property
    def documents(self) -> int:
        return len(self.docs)

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method != "GET"]

    def additions(self) -> list[Recorded]:
        """The document additions received (``POST /indexes/{uid}/documents``)."""
        return [
            r
            for r in self.requests
            if r.method == "POST" and r.path.split("?", 1)[0].endswith("/documents")
        ]

    def deletions(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/documents/delete-batch")]

    def lose_index(self) -> None:
        """As if Meilisearch restarted without its data."""
        self.indexes.clear()
        self.docs.clear()

    def go_down(self) -> None:
        self.stop()

    def come_back(self) -> None:
        self.start()

    @property
    def url(self) -> str:
        assert self._port, "start() it first"
        return f"http://127.0.0.1:{self._port}"

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

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _enqueue(
        self, kind: str, index_uid: str, apply: Any = None, outcome: Any = None
    ) -> tuple[int, dict[str, Any]]:
        uid = len(self._tasks)
        outcome = outcome or self.task_outcomes.get(kind)
        if callable(outcome):  # decides per task: returns None (succeed) or an outcome
            outcome = outcome(uid)
        if outcome is None and apply is not None:
            apply()
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
            if body["uid"] in self.indexes and "indexCreation" not in self.task_outcomes:
                exists = {"code": "index_already_exists", "message": "Index already exists."}
                return self._enqueue("indexCreation", body["uid"], outcome=exists)
            return self._enqueue(
                "indexCreation", body["uid"], lambda: self.indexes.add(body["uid"])
            )
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
        if method == "POST" and re.fullmatch(r"/indexes/[^/]+/documents", path):
            self.hold.wait(10)
            return self._enqueue(
                "documentAdditionOrUpdate", path.split("/")[2], lambda: self._add(body)
            )
        if method == "POST" and path.endswith("/documents/delete-batch"):
            self.hold.wait(10)
            ids = [int(i) for i in body]
            return self._enqueue("documentDeletion", path.split("/")[2], lambda: self._delete(ids))
        if method == "POST" and path.endswith("/documents/fetch"):
            ordered = [self.docs[i] for i in sorted(self.docs)]
            window = ordered[body["offset"] : body["offset"] + body["limit"]]
            fields = body.get("fields")
            results = [{k: d[k] for k in fields} if fields else d for d in window]
            return 200, {
                "results": results,
                "offset": body["offset"],
                "limit": body["limit"],
                "total": len(ordered),
            }
        if method == "POST" and path.endswith("/search"):
            if self.search_error is not None:
                return 400, {**self.search_error, "type": "invalid_request", "link": ""}
            return 200, self._search(body)
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

    def _add(self, documents: list[dict[str, Any]]) -> None:
        self.indexes.add("articles")  # an addition creates a missing index, as Meilisearch does
        for document in documents:
            self.docs[int(document["id"])] = document

    def _delete(self, ids: list[int]) -> None:
        for i in ids:
            self.docs.pop(i, None)

    def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        """Meilisearch's answer shape for ``page``/``hitsPerPage`` searches."""
        q = (body.get("q") or "").lower()
        wanted = dict(re.findall(r'(\w+) = "((?:[^"\\]|\\.)*)"', " AND ".join(body["filter"])))
        hits: list[dict[str, Any]] = []
        for document in sorted(self.docs.values(), key=lambda d: -d["created_at_ts"]):
            if document["status"] != wanted.get("status", document["status"]):
                continue
            if "tags" in wanted and wanted["tags"].replace('\\"', '"') not in document["tags"]:
                continue
            if q and q not in (document["title"] + " " + document["body"]).lower():
                continue
            hit = dict(document)
            if q and "attributesToHighlight" in body:
                hit["_formatted"] = {
                    name: _mark(
                        q, document[name], body["highlightPreTag"], body["highlightPostTag"]
                    )
                    for name in body["attributesToHighlight"]
                }
            hits.append(hit)
        page, per_page = body["page"], body["hitsPerPage"]
        return {
            "hits": hits[(page - 1) * per_page : page * per_page],
            "query": body.get("q") or "",
            "processingTimeMs": 1,
            "hitsPerPage": per_page,
            "page": page,
            "totalPages": -(-len(hits) // per_page),
            "totalHits": len(hits),
        }


def _mark(q: str, text: str, pre: str, post: str) -> str:
    return re.sub(re.escape(q), lambda m: pre + m.group() + post, text, flags=re.IGNORECASE)
