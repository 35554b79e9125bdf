"""What both example apps share: OpenTelemetry set up from OTEL_* variables only, and the SQLite database."""

from __future__ import annotations

import logging
import os

from sqlalchemy import create_engine, text
from sqlalchemy.pool import StaticPool

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

log = logging.getLogger("example")


# --------------------------------------------------------------------------
# OpenTelemetry setup (configuration comes from OTEL_* environment variables)
# --------------------------------------------------------------------------
def otlp_protocol() -> str:
    """OTEL_EXPORTER_OTLP_TRACES_PROTOCOL wins over OTEL_EXPORTER_OTLP_PROTOCOL.

    The default is grpc, as with `opentelemetry-instrument`.
    """
    value = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL"
    )
    return (value or "grpc").strip().lower()


def make_span_exporter(protocol: str):
    # Both exporter classes read OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _COMPRESSION,
    # _HEADERS, _TIMEOUT, _CERTIFICATE (and the gRPC one _INSECURE) themselves.
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    elif protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    else:
        raise SystemExit(
            f"unsupported OTEL_EXPORTER_OTLP_PROTOCOL {protocol!r}: use 'grpc' or 'http/protobuf'"
        )
    return OTLPSpanExporter()


def setup_tracing(default_service_name: str) -> TracerProvider:
    # Resource.create() reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME.
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: default_service_name}))
    protocol = otlp_protocol()
    provider = TracerProvider(resource=resource)
    # BatchSpanProcessor reads OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_MAX_EXPORT_BATCH_SIZE, ...
    provider.add_span_processor(BatchSpanProcessor(make_span_exporter(protocol)))
    trace.set_tracer_provider(provider)
    log.info(
        "tracing: service.name=%s protocol=%s endpoint=%s",
        resource.attributes.get(SERVICE_NAME),
        protocol,
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or "(exporter default)",
    )
    return provider


# --------------------------------------------------------------------------
# Database: an in-memory SQLite shared by all request threads
# --------------------------------------------------------------------------
def make_engine():
    engine = create_engine(
        "sqlite://",
        connect_args={"check_same_thread": False},
        poolclass=StaticPool,
    )
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL)"))
        conn.execute(
            text("INSERT INTO users (id, name, email) VALUES (:id, :name, :email)"),
            [
                {"id": 1, "name": "Ada Lovelace", "email": "ada@example.com"},
                {"id": 2, "name": "Alan Turing", "email": "alan@example.com"},
                {"id": 3, "name": "Grace Hopper", "email": "grace@example.com"},
                {"id": 4, "name": "Edsger Dijkstra", "email": "edsger@example.com"},
                {"id": 5, "name": "Barbara Liskov", "email": "barbara@example.com"},
            ],
        )
    return engine
