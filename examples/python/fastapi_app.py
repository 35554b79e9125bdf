"""A small FastAPI "users" service instrumented with OpenTelemetry, for routelens.

Run:   python fastapi_app.py          (uvicorn is started from this file)
Env:   PORT (default 8000), DOWNSTREAM_URL (default: this app's own /users/1),
       plus the standard OpenTelemetry variables, e.g.
         OTEL_SERVICE_NAME=users-fastapi
         OTEL_EXPORTER_OTLP_PROTOCOL=grpc | http/protobuf     (default grpc)
         OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317
         OTEL_EXPORTER_OTLP_COMPRESSION=gzip
         OTEL_EXPORTER_OTLP_INSECURE=true
         OTEL_RESOURCE_ATTRIBUTES=deployment.environment=dev
         OTEL_BSP_SCHEDULE_DELAY=1000

Routes:
  GET /users/{user_id}   one row from SQLite through SQLAlchemy (404 if unknown)
  GET /slow?ms=200       sleeps ms milliseconds on the server (asyncio.sleep)
  GET /error             raises an exception -> 500
  GET /call              outbound HTTP call (requests) to DOWNSTREAM_URL
  GET /healthz           liveness

The exporter, its endpoint, TLS and compression, the resource and the batch
processor are configured only through OTEL_* environment variables: this file
just picks the exporter class that matches the protocol. On SIGTERM/SIGINT
uvicorn shuts down gracefully and the TracerProvider is shut down, flushing
queued spans.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

import requests
import uvicorn
from fastapi import FastAPI, HTTPException, Query, Request

from sqlalchemy import text

from common import make_engine, setup_tracing  # shared by both example apps
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

DEFAULT_SERVICE_NAME = "users-fastapi"

log = logging.getLogger("fastapi_app")


# --------------------------------------------------------------------------
# The application
# --------------------------------------------------------------------------
def create_app(engine) -> FastAPI:
    app = FastAPI(title="users-fastapi")

    # Plain `def` endpoints run in the threadpool, so blocking SQLAlchemy and
    # requests calls do not stall the event loop (and /call can reach this app).
    @app.get("/users/{user_id}")
    def get_user(user_id: int):
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT id, name, email FROM users WHERE id = :id"), {"id": user_id}
            ).first()
        if row is None:
            raise HTTPException(status_code=404, detail=f"user {user_id} not found")
        return {"id": row.id, "name": row.name, "email": row.email}

    @app.get("/slow")
    async def slow(ms: int = Query(default=200, ge=0, le=60_000)):
        await asyncio.sleep(ms / 1000.0)
        return {"slept_ms": ms}

    @app.get("/error")
    async def error():
        raise RuntimeError("boom: /error always fails")

    @app.get("/call")
    def call(request: Request):
        downstream_url = os.environ.get("DOWNSTREAM_URL") or f"{request.base_url}users/1"
        try:
            resp = requests.get(downstream_url, timeout=10)
        except requests.RequestException as exc:
            raise HTTPException(status_code=502, detail=f"{downstream_url}: {exc}") from exc
        return {"downstream_url": downstream_url, "downstream_status": resp.status_code}

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    return app


def _raise_system_exit(signum, _frame):
    raise SystemExit(0)


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    port = int(os.environ.get("PORT", "8000"))

    provider = setup_tracing(DEFAULT_SERVICE_NAME)
    # raise_exception_on_conflict: fail loudly if an instrumentation does not
    # support the installed library version (by default it only logs and skips).
    RequestsInstrumentor().instrument(raise_exception_on_conflict=True)
    engine = make_engine()
    SQLAlchemyInstrumentor().instrument(engine=engine, raise_exception_on_conflict=True)
    app = create_app(engine)
    FastAPIInstrumentor.instrument_app(app)

    # uvicorn installs its own SIGTERM/SIGINT handlers while it serves, shuts
    # down gracefully, then restores these and re-raises the signal: either
    # way we leave server.run() through SystemExit and flush in `finally`.
    signal.signal(signal.SIGTERM, _raise_system_exit)
    signal.signal(signal.SIGINT, _raise_system_exit)

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info", access_log=True)
    server = uvicorn.Server(config)
    try:
        server.run()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the flush short
        provider.shutdown()
        log.info("stopped; spans flushed")


if __name__ == "__main__":
    main()
