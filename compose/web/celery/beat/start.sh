#!/bin/sh
# Celery beat, the schedule: run exactly one. It only sends tasks, so it needs
# the broker alone. With remote control on it answers `celery inspect ping` as
# celerybeat@<hostname>, and stops answering if its scheduler stalls: that is
# compose.yaml's healthcheck. The schedule file lives in /tmp, which the
# unprivileged user may write; losing it only makes each interval task run once
# at start-up.
set -eu

wait-for broker
exec celery -A app.worker beat --schedule /tmp/celerybeat-schedule \
    --enable-remote-control --hostname "celerybeat@%h" \
    --loglevel "${LOG_LEVEL:-INFO}" "$@"
