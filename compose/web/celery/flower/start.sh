#!/bin/sh
# Flower, watching the workers through the broker. app/flowerconfig.py makes it
# refuse to start without FLOWER_BASIC_AUTH (user:password).
set -eu

wait-for broker
exec celery -A app.worker flower --conf=app/flowerconfig.py --address=0.0.0.0 --port=5555 "$@"
