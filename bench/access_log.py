"""What the access log costs under gunicorn, and what its batches save.

    PYTHONPATH=. .venv/bin/python -m bench.access_log      # about 4 minutes

1. Two servers from ``bench.api`` (the same database, Redis, gunicorn config
   and load generator), the cached app at WARNING and at its production
   logging (INFO, JSON lines to a file), each serving ``GET
   /api/v1/articles/{id}`` over 100 ids from its snapshots, in interleaved
   rounds (``--rounds 5``, each server ``--seconds 3`` a round): server CPU per
   request and req/s, and the ratios of the medians.
2. In this process, 4 threads (a gthread worker's) writing 20,000 access lines
   each to a file, side by side in interleaved rounds: one ``write`` per line
   under the handler's lock, as ``logging.StreamHandler`` writes a record, and
   the app's batches (``app/core/access_batch.py``). It prints CPU time per line.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis

from app.core import access_batch
from bench import api

SERVERS = {"WARNING": {}, "INFO, JSON lines": api.PRODUCTION_LOGGING}


def main() -> None:
    parser = argparse.ArgumentParser(description="The access log's cost under gunicorn.")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="per round and server, after a tenth more"
    )
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-access-log-"))
    ids = api.prepare_database(work / "instance")
    redis.Redis.from_url(api.REDIS_URL).flushdb()
    env = api.server_env(argparse.Namespace(workers=2, threads=4), work)
    servers = {
        name: api.Server(name, "app.wsgi:app", env, work, extra_env=extra)
        for name, extra in SERVERS.items()
    }
    paths = [f"/api/v1/articles/{article_id}" for article_id in ids]
    with api.serving(list(servers.values())):
        for server in servers.values():
            server.start()
        for server in servers.values():
            server.wait_ready(paths[0])
        targets = {
            name: [(api.request_bytes(s.port, p), len(api.fetch(s.port, p)[1])) for p in paths]
            for name, s in servers.items()
        }
        for name, server in servers.items():  # every id into every worker's snapshots
            api.drive(server.port, targets[name], 8, requests=2000)
        samples: dict[str, list[api.Sample]] = {name: [] for name in servers}
        database = api.database_pids()
        names = list(servers)
        for number in range(options.rounds):
            for name in names[number % 2 :] + names[: number % 2]:
                server = servers[name]
                samples[name].append(
                    api.drive(
                        server.port,
                        targets[name],
                        8,
                        seconds=options.seconds,
                        warmup=options.seconds / 10,
                        watch=(server.pids(), database),
                    )
                )
    # Counted once the servers have stopped: lines still in a batch are written at exit.
    lines = api.access_lines(servers["INFO, JSON lines"])
    cpu = {n: statistics.median(s.server_cpu for s in v) for n, v in samples.items()}
    rps = {n: statistics.median(s.rps for s in v) for n, v in samples.items()}
    for name, values in samples.items():
        rounds = ", ".join(f"{s.server_cpu * 1e6:.0f}" for s in values)
        print(
            f"{name:<18} {rps[name]:7,.0f} req/s  server CPU {cpu[name] * 1e6:5.0f} us"
            f" per request  (rounds: {rounds})"
        )
    print(
        f"INFO / WARNING: server CPU {cpu['INFO, JSON lines'] / cpu['WARNING']:.2f}x,"
        f" req/s {rps['INFO, JSON lines'] / rps['WARNING']:.2f}x;"
        f" {lines:,} access lines written for the"
        f" {api.ANSWERS[servers['INFO, JSON lines'].port]:,} answers sent"
    )

    threaded(work / "threads.log", options.rounds)


LINE = (
    '{"ts":"2026-12-03T12:00:00.000+00:00","level":"INFO","logger":"app.access",'
    '"message":"GET /api/v1/articles/1 200 0.12ms 488B 127.0.0.1","request_id":'
    '"0123456789abcdef0123456789abcdef","method":"GET","path":"/api/v1/articles/1",'
    '"status":200,"duration_ms":0.12,"bytes":488,"remote_addr":"127.0.0.1"}\n'
)


def threaded(path: Path, rounds: int, threads: int = 4, lines: int = 20_000) -> None:
    """CPU per line of 4 threads writing access lines to one file, both ways."""
    with path.open("a", encoding="utf-8") as stream:
        handler = logging.StreamHandler(stream)

        def per_line() -> None:
            for _ in range(lines):
                handler.acquire()
                try:
                    stream.write(LINE)
                    stream.flush()
                finally:
                    handler.release()

        def batched() -> None:
            for _ in range(lines):
                access_batch.batch.add(handler, LINE)

        rivals: dict[str, Callable[[], None]] = {"one write per line": per_line, "batches": batched}
        cpu: dict[str, list[float]] = {name: [] for name in rivals}
        for number in range(rounds):
            names = list(rivals)[number % 2 :] + list(rivals)[: number % 2]
            for name in names:
                started = time.process_time()
                workers = [threading.Thread(target=rivals[name]) for _ in range(threads)]
                for worker in workers:
                    worker.start()
                for worker in workers:
                    worker.join()
                access_batch.batch.flush()
                cpu[name].append((time.process_time() - started) / (threads * lines))
    median = {name: statistics.median(values) for name, values in cpu.items()}
    print(f"in process, {threads} threads, {lines:,} lines each, {rounds} rounds: CPU per line")
    for name, value in median.items():
        rounds_text = ", ".join(f"{v * 1e6:.1f}" for v in cpu[name])
        print(f"  {name:<20} {value * 1e6:6.2f} us  (rounds: {rounds_text})")
    print(
        f"  one write per line / batches: {median['one write per line'] / median['batches']:.2f}x"
    )


if __name__ == "__main__":
    main()
