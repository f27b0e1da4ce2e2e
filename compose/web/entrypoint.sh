#!/bin/sh
# The app image's entry point.
#   no command, or only gunicorn options: wait for the database, Redis, the
#       broker and Meilisearch, then serve the API with gunicorn (the web service);
#   any other command: run it as is (start-worker, start-beat, start-flower,
#       wait-for ..., flask --app app.wsgi ...).
set -eu

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    wait-for database redis broker search
    # Worker heartbeats in memory: on an overlay /tmp they can stall gunicorn.
    exec gunicorn --config gunicorn.conf.py --worker-tmp-dir /dev/shm "$@" app.wsgi:app
fi
exec "$@"
