"""What the access log costs under gunicorn: the cached app at WARNING and at
its production logging (INFO, JSON lines to a file), side by side.

    PYTHONPATH=. .venv/bin/python -m bench.access_log      # about 3 minutes

Two servers from ``bench.api`` (the same database, Redis, gunicorn config and
load generator), each serving ``GET /api/v1/articles/{id}`` over 100 ids from
its snapshots, in interleaved rounds. It prints each round's server CPU per
request and req/s, and the ratios of the medians: the access line's cost in a
threaded worker, which a single-threaded timing does not show.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import redis

from bench import api

SERVERS = {"WARNING": {}, "INFO, JSON lines": api.PRODUCTION_LOGGING}


def main() -> None:
    parser = argparse.ArgumentParser(description="The access log's cost under gunicorn.")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=6000, help="per round and server")
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
            api.drive(server.port, targets[name], 2000, 0, 8)
        samples: dict[str, list[api.Sample]] = {name: [] for name in servers}
        database = api.database_pids()
        names = list(servers)
        for number in range(options.rounds):
            for name in names[number % 2 :] + names[: number % 2]:
                server = servers[name]
                warmup = options.requests // 10
                samples[name].append(
                    api.drive(
                        server.port,
                        targets[name],
                        options.requests + warmup,
                        warmup,
                        8,
                        watch=(server.pids(), database),
                    )
                )
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
        f" {lines:,} access lines written"
    )


if __name__ == "__main__":
    main()
