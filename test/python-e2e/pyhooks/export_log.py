"""Test-only: run a Python program zero-code instrumented, with every request of its OTLP exporters recorded.

    python export_log.py app.py [args...]

This does what `opentelemetry-instrument python app.py` does (its sitecustomize calls
opentelemetry.instrumentation.auto_instrumentation.initialize(), which configures the SDK, its exporters and the
instrumentations from OTEL_* variables alone, before the program runs), with one step first: it wraps export() of
the OTLP span, metric and log exporters (gRPC and HTTP). Wrapping them after initialize() would miss what the SDK
exports before that: its metric reader starts its interval when the SDK is configured, and on a busy machine the
first export comes while the instrumentations are still loading. For each call it appends one line to
$ROUTELENS_EXPORT_LOG_DIR/<signal>.jsonl:

    {"ok": true, "request": "<base64 of the Export*ServiceRequest>"}

The request is encoded with the encoder the exporter itself uses, from the same data, so it is what the exporter
sent; "ok" is whether the exporter reported success (the receiver acknowledged it). Then it runs the program as
__main__, so the program itself stays free of OpenTelemetry code.
"""

import base64
import json
import os
import runpy
import sys
import threading

_dir = os.environ["ROUTELENS_EXPORT_LOG_DIR"]
_lock = threading.Lock()


def _record(signal: str, request: bytes, ok: bool) -> None:
    line = json.dumps({"ok": ok, "request": base64.b64encode(request).decode("ascii")})
    with _lock, open(os.path.join(_dir, f"{signal}.jsonl"), "a", encoding="utf-8") as f:
        f.write(line + "\n")


def _wrap(cls, signal: str, encode, success) -> None:
    inner = cls.export

    def export(self, data, *args, **kwargs):
        request = encode(data).SerializeToString()
        result = inner(self, data, *args, **kwargs)
        _record(signal, request, result == success)
        return result

    cls.export = export


def _install() -> None:
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetrics
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetrics
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans
    from opentelemetry.sdk._logs.export import LogRecordExportResult
    from opentelemetry.sdk.metrics.export import MetricExportResult
    from opentelemetry.sdk.trace.export import SpanExportResult

    for cls in (GrpcSpans, HttpSpans):
        _wrap(cls, "traces", encode_spans, SpanExportResult.SUCCESS)
    for cls in (GrpcMetrics, HttpMetrics):
        _wrap(cls, "metrics", encode_metrics, MetricExportResult.SUCCESS)
    for cls in (GrpcLogs, HttpLogs):
        _wrap(cls, "logs", encode_logs, LogRecordExportResult.SUCCESS)


_install()
from opentelemetry.instrumentation.auto_instrumentation import initialize  # noqa: E402

initialize()
program = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(program)))
runpy.run_path(program, run_name="__main__")
