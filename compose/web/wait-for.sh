#!/bin/sh
# wait-for NAME... [-- COMMAND [ARG...]]
#
# Waits until each named dependency accepts TCP connections, then runs COMMAND.
# NAME is database, redis, broker or search; the address is the app's own
# setting (DATABASE_URL, REDIS_URL, CELERY_BROKER_URL, MEILI_URL), and a
# dependency whose setting is empty is not waited for. Gives up, exiting 1,
# once WAIT_FOR_TIMEOUT seconds (60 by default) have passed in all.
set -eu

names=""
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
    names="$names $1"
    shift
done
if [ "$#" -gt 0 ]; then
    shift
fi

python -c '
import socket, sys, time
from sqlalchemy import make_url
from app.core.settings import load_settings

settings = load_settings()
urls = {"database": settings.database_url, "redis": settings.redis_url,
        "broker": settings.celery_broker_url, "search": settings.meili_url}
default_ports = {"database": 3306, "redis": 6379, "broker": 6379, "search": 80}
timeout = float(sys.argv[1])
deadline = time.monotonic() + timeout
for name in sys.argv[2].split():
    if name not in urls:
        sys.exit(f"wait-for: unknown dependency {name!r}; expected one of {sorted(urls)}")
    url = make_url(urls[name]) if urls[name] else None
    if url is None or not url.host:
        continue
    address = (url.host, url.port or (443 if url.drivername == "https" else default_ports[name]))
    while True:
        try:
            socket.create_connection(address, timeout=2).close()
            break
        except OSError as exc:
            if time.monotonic() > deadline:
                sys.exit(f"wait-for: the {name} at {address[0]}:{address[1]} is still unreachable after {timeout:g}s ({exc})")
            print(f"wait-for: waiting for the {name} at {address[0]}:{address[1]} ({exc})", file=sys.stderr)
            time.sleep(1)
' "${WAIT_FOR_TIMEOUT:-60}" "$names"

if [ "$#" -gt 0 ]; then
    exec "$@"
fi
