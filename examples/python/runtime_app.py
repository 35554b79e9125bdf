"""A Flask "orders" service with no OpenTelemetry code, whose routes load the Python runtime in known ways.

Run it the zero-code way: `opentelemetry-instrument` (from opentelemetry-distro) instruments Flask, starts the
SDK's trace, metrics and log exporters from OTEL_* variables, and the system-metrics instrumentation reports
the process's CPU time, RSS, threads, file descriptors and GC collections every OTEL_METRIC_EXPORT_INTERVAL ms:

    OTEL_SERVICE_NAME=orders OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 \
      PORT=5050 opentelemetry-instrument python runtime_app.py

or under a pre-fork server (one process per worker, all behind one socket):

    opentelemetry-instrument gunicorn --workers 2 --bind 127.0.0.1:5050 runtime_app:app

Routes:
  GET /orders/<int:order_id>   a small JSON answer (404 above 100)
  GET /cpu?ms=200              keeps one core busy for ms milliseconds of this thread's CPU time
  GET /memory?mb=10            allocates mb MiB and keeps it until /memory/free (a leak on purpose)
  GET /memory/free             lets go of everything /memory kept
  GET /gc                      runs one full collection (gc.collect(): one generation-2 collection)
  GET /error                   raises an exception -> 500
  GET /healthz                 liveness
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import time

from flask import Flask, abort, jsonify, request

log = logging.getLogger("runtime_app")

# What /memory keeps alive: one bytearray per call, touched so that its pages are resident.
_retained: list[bytearray] = []


def _burn_cpu(ms: int) -> int:
    """Spin until this thread has used ms milliseconds of CPU; returns the iterations done."""
    deadline = time.thread_time() + ms / 1000.0
    n = 0
    while time.thread_time() < deadline:
        for _ in range(1000):
            n += 1
    return n


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/orders/<int:order_id>")
    def get_order(order_id: int):
        if order_id > 100:
            abort(404, description=f"order {order_id} not found")
        return jsonify(id=order_id, status="shipped")

    @app.get("/cpu")
    def cpu():
        ms = max(0, min(request.args.get("ms", default=200, type=int), 60_000))
        return jsonify(cpu_ms=ms, iterations=_burn_cpu(ms), pid=os.getpid())

    @app.get("/memory")
    def memory():
        mb = max(0, min(request.args.get("mb", default=10, type=int), 1024))
        block = bytearray(mb * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
        _retained.append(block)
        return jsonify(retained_mib=sum(len(b) for b in _retained) // (1024 * 1024))

    @app.get("/memory/free")
    def memory_free():
        _retained.clear()
        return jsonify(retained_mib=0)

    @app.get("/gc")
    def full_gc():
        return jsonify(unreachable=gc.collect(), pid=os.getpid())

    @app.get("/error")
    def error():
        raise RuntimeError("boom: /error always fails")

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok", pid=os.getpid())

    return app


# The module-level app is what gunicorn serves (`runtime_app:app`).
app = create_app()


def _raise_system_exit(signum, _frame):
    # SystemExit runs the interpreter's exit handlers, where the SDK flushes its exporters.
    raise SystemExit(0)


def main() -> None:
    from werkzeug.serving import make_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    signal.signal(signal.SIGTERM, _raise_system_exit)
    signal.signal(signal.SIGINT, _raise_system_exit)
    server = make_server("127.0.0.1", int(os.environ.get("PORT", "5050")), app, threaded=True)
    log.info("listening on http://127.0.0.1:%d (pid %d)", server.server_port, os.getpid())
    try:
        server.serve_forever()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        server.server_close()


if __name__ == "__main__":
    main()
