"""The notification stream (``/api/v1/notifications/stream``), a WebSocket
server of its own: ``python -m app.realtime`` in production (the compose
service ``realtime``, behind nginx), and a thread of ``make dev``'s server
(:mod:`app.realtime.dev`). It reads the app's own settings, models and token
rules: it is :func:`app.create_app`'s app, serving a different protocol."""
