"""Test-only hook: count what the OpenTelemetry span exporter of an example app exported.

Loaded by Python at start-up (`sitecustomize`) when this directory is on PYTHONPATH. It does nothing unless
ROUTELENS_SPAN_COUNT_FILE is set. Then every span exporter handed to a BatchSpanProcessor is wrapped: after
each export() call the running totals are written (atomically) to that file as JSON:

    {"ok_spans": 120, "ok_calls": 7, "failed_spans": 0, "failed_calls": 0}

ok_* count exports the receiver acknowledged (SpanExportResult.SUCCESS), failed_* the others. The example
apps themselves are not changed: they still configure everything from OTEL_* variables.
"""

import json
import os
import threading

_path = os.environ.get("ROUTELENS_SPAN_COUNT_FILE")

if _path:
    from opentelemetry.sdk.trace import export as _export

    _lock = threading.Lock()
    _totals = {"ok_spans": 0, "ok_calls": 0, "failed_spans": 0, "failed_calls": 0}

    def _write() -> None:
        tmp = f"{_path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(_totals, f)
        os.replace(tmp, _path)

    with _lock:
        _write()

    def _wrap(exporter):
        inner = exporter.export

        def export(spans):
            spans = list(spans)
            result = inner(spans)
            with _lock:
                if result == _export.SpanExportResult.SUCCESS:
                    _totals["ok_spans"] += len(spans)
                    _totals["ok_calls"] += 1
                else:
                    _totals["failed_spans"] += len(spans)
                    _totals["failed_calls"] += 1
                _write()
            return result

        exporter.export = export
        return exporter

    _original_init = _export.BatchSpanProcessor.__init__

    def _init(self, span_exporter, *args, **kwargs):
        _original_init(self, _wrap(span_exporter), *args, **kwargs)

    _export.BatchSpanProcessor.__init__ = _init
