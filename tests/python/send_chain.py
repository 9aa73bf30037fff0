"""Send a 3-service call chain (frontend -> order -> inventory) and two log
records with the Python OpenTelemetry SDK's OTLP exporters.

Usage: send_chain.py --protocol grpc|http --endpoint http://127.0.0.1:PORT --marker WORD

--endpoint is the OTLP/gRPC address (grpc) or the OTLP/HTTP base URL (http;
/v1/traces and /v1/logs are appended). Prints one JSON object on stdout:
{"trace_id", "span_ids": {operation: id}, "export_results": {"spans": [...],
"logs": [...]}, "log_bodies": [...]}; exits non-zero if any export failed.
"""

import argparse
import json
import sys

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import SpanKind, Status, StatusCode


class Recording:
    """Wraps an exporter and records the result of every export call."""

    def __init__(self, inner, results):
        self.inner = inner
        self.results = results

    def export(self, batch):
        result = self.inner.export(batch)
        self.results.append(result.name)
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


def exporters(protocol, endpoint):
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return (
            lambda: OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=10),
            lambda: OTLPLogExporter(endpoint=endpoint, insecure=True, timeout=10),
        )
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return (
        lambda: OTLPSpanExporter(endpoint=endpoint + "/v1/traces", timeout=10),
        lambda: OTLPLogExporter(endpoint=endpoint + "/v1/logs", timeout=10),
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--protocol", choices=["grpc", "http"], required=True)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--marker", required=True)
    args = ap.parse_args()

    span_exporter, log_exporter = exporters(args.protocol, args.endpoint)
    span_results, log_results = [], []

    def tracer_provider(service):
        tp = TracerProvider(resource=Resource.create({"service.name": service}))
        tp.add_span_processor(SimpleSpanProcessor(Recording(span_exporter(), span_results)))
        return tp

    providers = {s: tracer_provider(s) for s in ("frontend", "order", "inventory")}
    tracers = {s: p.get_tracer("skein-e2e-python") for s, p in providers.items()}

    log_provider = LoggerProvider(resource=Resource.create({"service.name": "inventory"}))
    log_provider.add_log_record_processor(SimpleLogRecordProcessor(Recording(log_exporter(), log_results)))
    logger = log_provider.get_logger("skein-e2e-python")

    bodies = [
        f"stock check failed {args.marker}",
        f"reservation rolled back {args.marker}",
    ]
    span_ids = {}
    with tracers["frontend"].start_as_current_span(
        "GET /checkout",
        kind=SpanKind.SERVER,
        attributes={"customer.tier": "gold", "http.status_code": 200, "cache.hit": False},
    ) as root:
        root.add_event("cart loaded", {"items": 3})
        span_ids["GET /checkout"] = root.get_span_context().span_id
        with tracers["order"].start_as_current_span("create order", kind=SpanKind.SERVER) as order:
            span_ids["create order"] = order.get_span_context().span_id
            with tracers["inventory"].start_as_current_span("reserve stock", kind=SpanKind.SERVER) as inv:
                span_ids["reserve stock"] = inv.get_span_context().span_id
                # Both records pick up the current span as their trace context.
                logger.emit(severity_number=SeverityNumber.ERROR, severity_text="ERROR", body=bodies[0],
                            attributes={"sku": "A-1"})
                logger.emit(severity_number=SeverityNumber.WARN, severity_text="WARN", body=bodies[1])
                inv.set_status(Status(StatusCode.ERROR, "out of stock"))
        trace_id = root.get_span_context().trace_id

    for p in providers.values():
        p.shutdown()
    log_provider.shutdown()

    out = {
        "trace_id": format(trace_id, "032x"),
        "span_ids": {k: format(v, "016x") for k, v in span_ids.items()},
        "export_results": {"spans": span_results, "logs": log_results},
        "log_bodies": bodies,
    }
    print(json.dumps(out))
    ok = all(r == "SUCCESS" for r in span_results + log_results)
    return 0 if ok and len(span_results) == 3 and len(log_results) == 2 else 1


if __name__ == "__main__":
    sys.exit(main())
