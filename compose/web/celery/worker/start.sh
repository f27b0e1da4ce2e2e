#!/bin/sh
# The Celery worker, on both queues. Its node name, celery@<hostname>, is what
# compose.yaml's healthcheck pings; each replica has a hostname of its own.
set -eu

wait-for database broker search
exec celery -A app.worker worker --queues default,search --hostname "celery@%h" \
    --loglevel "${LOG_LEVEL:-INFO}" "$@"
