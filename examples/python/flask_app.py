"""A small Flask "users" service instrumented with OpenTelemetry, for routelens.

Run:   python flask_app.py
Env:   PORT (default 5000), DOWNSTREAM_URL (default: this app's own /users/1),
       plus the standard OpenTelemetry variables, e.g.
         OTEL_SERVICE_NAME=users-flask
         OTEL_EXPORTER_OTLP_PROTOCOL=grpc | http/protobuf     (default grpc)
         OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317
         OTEL_EXPORTER_OTLP_COMPRESSION=gzip
         OTEL_EXPORTER_OTLP_INSECURE=true
         OTEL_RESOURCE_ATTRIBUTES=deployment.environment=dev
         OTEL_BSP_SCHEDULE_DELAY=1000

Routes:
  GET /users/<int:user_id>   one row from SQLite through SQLAlchemy (404 if unknown)
  GET /slow?ms=200           sleeps ms milliseconds on the server
  GET /error                 raises an exception -> 500
  GET /call                  outbound HTTP call (requests) to DOWNSTREAM_URL
  GET /healthz               liveness

The exporter, its endpoint, TLS and compression, the resource and the batch
processor are configured only through OTEL_* environment variables: this file
just picks the exporter class that matches the protocol. On SIGTERM/SIGINT
the server stops and the TracerProvider is shut down, flushing queued spans.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time

import requests
from flask import Flask, abort, jsonify, request
from werkzeug.serving import make_server

from sqlalchemy import text

from common import make_engine, setup_tracing  # shared by both example apps
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

DEFAULT_SERVICE_NAME = "users-flask"

log = logging.getLogger("flask_app")


# --------------------------------------------------------------------------
# The application
# --------------------------------------------------------------------------
def create_app(engine) -> Flask:
    app = Flask(__name__)

    @app.get("/users/<int:user_id>")
    def get_user(user_id: int):
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT id, name, email FROM users WHERE id = :id"), {"id": user_id}
            ).first()
        if row is None:
            abort(404, description=f"user {user_id} not found")
        return jsonify(id=row.id, name=row.name, email=row.email)

    @app.get("/slow")
    def slow():
        ms = request.args.get("ms", default=200, type=int)
        ms = max(0, min(ms, 60_000))
        time.sleep(ms / 1000.0)
        return jsonify(slept_ms=ms)

    @app.get("/error")
    def error():
        raise RuntimeError("boom: /error always fails")

    @app.get("/call")
    def call():
        downstream_url = os.environ.get("DOWNSTREAM_URL") or f"{request.host_url}users/1"
        try:
            resp = requests.get(downstream_url, timeout=10)
        except requests.RequestException as exc:
            return jsonify(downstream_url=downstream_url, error=str(exc)), 502
        return jsonify(downstream_url=downstream_url, downstream_status=resp.status_code)

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    return app


def _raise_system_exit(signum, _frame):
    raise SystemExit(0)


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    port = int(os.environ.get("PORT", "5000"))

    provider = setup_tracing(DEFAULT_SERVICE_NAME)
    # raise_exception_on_conflict: fail loudly if an instrumentation does not
    # support the installed library version (by default it only logs and skips).
    RequestsInstrumentor().instrument(raise_exception_on_conflict=True)
    engine = make_engine()
    SQLAlchemyInstrumentor().instrument(engine=engine, raise_exception_on_conflict=True)
    app = create_app(engine)
    FlaskInstrumentor().instrument_app(app)

    # SIGTERM/SIGINT leave serve_forever() through SystemExit; the finally
    # block then flushes the spans still queued in the BatchSpanProcessor.
    signal.signal(signal.SIGTERM, _raise_system_exit)
    signal.signal(signal.SIGINT, _raise_system_exit)

    server = make_server("127.0.0.1", port, app, threaded=True)
    log.info("listening on http://127.0.0.1:%d", server.server_port)
    try:
        server.serve_forever()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the flush short
        server.server_close()
        provider.shutdown()
        log.info("stopped; spans flushed")


if __name__ == "__main__":
    main()
