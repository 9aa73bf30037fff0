//! Bad input: whole requests that must be refused with the right status
//! (HTTP and gRPC), and invalid items that must be rejected one by one while
//! their valid neighbours are stored.

use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::Value;
use skein_e2e::otlp::{self, hex, new_span_id, new_trace_id, GrpcClient, JSON, PROTOBUF};
use skein_e2e::Collector;
use tonic::Code;

/// Not a protobuf message: a varint that never ends.
const GARBAGE: &[u8] = &[0xff; 12];
/// Over the default `--max-attribute-bytes` (64 KiB).
const OVERSIZED_VALUE: usize = 64 * 1024 + 1;

fn url(c: &Collector, path: &str) -> String {
    format!("{}{path}", c.otlp_http_base())
}

// ------------------------------------------------------ whole requests

#[test]
fn garbage_protobuf_is_400() {
    let c = Collector::start(&[]);
    for path in ["/v1/traces", "/v1/logs"] {
        let reply = otlp::post(&url(&c, path), PROTOBUF, None, GARBAGE.to_vec());
        assert_eq!(reply.status, 400, "{path}: {}", reply.text());
    }
}

#[test]
fn garbage_protobuf_over_grpc_is_invalid_argument() {
    let c = Collector::start(&[]);
    let grpc = GrpcClient::new(&c.grpc_endpoint());
    for path in [otlp::TRACE_EXPORT, otlp::LOGS_EXPORT] {
        let err = grpc
            .runtime()
            .block_on(otlp::grpc_raw_unary(
                &c.grpc_endpoint(),
                path,
                GARBAGE.to_vec(),
            ))
            .expect_err("garbage must not be acknowledged");
        assert_eq!(err.code(), Code::InvalidArgument, "{path}: {err:?}");
    }
}

#[test]
fn malformed_json_is_400() {
    let c = Collector::start(&[]);
    for (path, body) in [
        ("/v1/traces", r#"{"resourceSpans":[{"#),
        ("/v1/logs", r#"{"resourceLogs": 7}"#),
    ] {
        let reply = otlp::post(&url(&c, path), JSON, None, body.as_bytes().to_vec());
        assert_eq!(reply.status, 400, "{path}: {}", reply.text());
        let status: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        assert_eq!(
            status["code"],
            3,
            "google.rpc.Status INVALID_ARGUMENT in JSON: {}",
            reply.text()
        );
        assert!(
            status["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            reply.text()
        );
    }
}

#[test]
fn wrong_content_type_is_415() {
    let c = Collector::start(&[]);
    let body = otlp::traces(
        "svc",
        vec![otlp::span(&new_trace_id(), &new_span_id(), "op")],
    )
    .encode_to_vec();
    for (path, ct) in [
        ("/v1/traces", "text/plain"),
        ("/v1/logs", "application/xml"),
    ] {
        let reply = otlp::post(&url(&c, path), ct, None, body.clone());
        assert_eq!(reply.status, 415, "{path} with {ct}: {}", reply.text());
    }
}

/// A valid trace export of about 1 MB.
fn big_request() -> opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
    let trace_id = new_trace_id();
    let spans = (0..2000)
        .map(|i| {
            let mut s = otlp::span(&trace_id, &new_span_id(), &format!("op{i}"));
            s.attributes
                .push(otlp::str_attr("padding", &"x".repeat(500)));
            s
        })
        .collect();
    otlp::traces("big", spans)
}

#[test]
fn oversized_body_is_413() {
    let c = Collector::start(&["--max-request-bytes", "256KiB"]);
    let req = big_request();
    assert!(req.encoded_len() > 512 * 1024);
    let reply = otlp::post_traces(&c.otlp_http_base(), &req);
    assert_eq!(reply.status, 413, "{}", reply.text());
}

#[test]
fn oversized_message_over_grpc_is_resource_exhausted() {
    let c = Collector::start(&["--max-request-bytes", "256KiB"]);
    let mut grpc = GrpcClient::new(&c.grpc_endpoint());
    let err = grpc
        .export_traces(big_request())
        .expect_err("must be refused");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
}

#[test]
fn gzip_bomb_is_413() {
    let c = Collector::start(&["--max-request-bytes", "1MiB"]);
    let bomb = otlp::gzip(&vec![0u8; 32 << 20]);
    assert!(
        bomb.len() < 1 << 20,
        "the compressed body itself is under the limit"
    );
    for path in ["/v1/traces", "/v1/logs"] {
        let reply = otlp::post(&url(&c, path), PROTOBUF, Some("gzip"), bomb.clone());
        assert_eq!(reply.status, 413, "{path}: {}", reply.text());
    }
    // The collector is still fine afterwards.
    let trace_id = new_trace_id();
    let ok = otlp::export_traces_http(
        &c.otlp_http_base(),
        &otlp::traces(
            "svc",
            vec![otlp::span(&trace_id, &new_span_id(), "after-bomb")],
        ),
    );
    assert!(ok.partial_success.is_none_or(|p| p.rejected_spans == 0));
}

// ------------------------------------------------------ invalid spans

/// Two valid spans in one trace around two spans broken by `spoil` (in
/// another trace). Over HTTP and over gRPC: `rejected_spans` is 2, the
/// valid trace is stored whole and nothing of the broken trace is.
fn spans_rejected_one_by_one(spoil: fn(&mut Span)) {
    let c = Collector::start_fast(&[]);
    let api = c.api();
    let mut grpc = GrpcClient::new(&c.grpc_endpoint());
    for transport in ["http", "grpc"] {
        let good = new_trace_id();
        let bad = new_trace_id();
        let broken = || {
            let mut s = otlp::span(&bad, &new_span_id(), "broken");
            spoil(&mut s);
            s
        };
        let spans = vec![
            broken(),
            otlp::span(&good, &new_span_id(), "good-1"),
            broken(),
            otlp::span(&good, &new_span_id(), "good-2"),
        ];
        let req = otlp::traces("neighbours", spans);
        let partial = match transport {
            "http" => otlp::export_traces_http(&c.otlp_http_base(), &req).partial_success,
            _ => {
                grpc.export_traces(req)
                    .expect("acknowledged")
                    .partial_success
            }
        }
        .unwrap_or_else(|| panic!("{transport}: partial_success missing"));
        assert_eq!(partial.rejected_spans, 2, "{transport}: {partial:?}");
        assert!(
            !partial.error_message.is_empty(),
            "{transport}: error_message says why"
        );

        let trace = api.wait_trace(&hex(&good), 2);
        assert_eq!(
            trace.spans().len(),
            2,
            "{transport}: both neighbours, nothing else: {trace}"
        );
        trace.span("good-1");
        trace.span("good-2");
        assert!(
            api.trace(&hex(&bad)).is_none(),
            "{transport}: rejected spans must not be stored"
        );
    }
}

#[test]
fn span_with_bad_trace_id_length_is_rejected() {
    spans_rejected_one_by_one(|s| s.trace_id.truncate(15));
}

#[test]
fn span_with_bad_span_id_length_is_rejected() {
    spans_rejected_one_by_one(|s| s.span_id = vec![1, 2, 3, 4]);
}

#[test]
fn span_ending_before_it_starts_is_rejected() {
    spans_rejected_one_by_one(|s| s.end_time_unix_nano = s.start_time_unix_nano - 1);
}

#[test]
fn span_with_oversized_attribute_is_rejected() {
    spans_rejected_one_by_one(|s| {
        s.attributes
            .push(otlp::str_attr("blob", &"y".repeat(OVERSIZED_VALUE)))
    });
}

// ------------------------------------------------------ invalid log records

/// Like [`spans_rejected_one_by_one`] for log records.
fn logs_rejected_one_by_one(spoil: fn(&mut LogRecord)) {
    let c = Collector::start_fast(&[]);
    let api = c.api();
    let mut grpc = GrpcClient::new(&c.grpc_endpoint());
    for transport in ["http", "grpc"] {
        let good = new_trace_id();
        let bad = new_trace_id();
        let broken = || {
            let mut r = otlp::log_in_span(&bad, &new_span_id(), "broken record");
            spoil(&mut r);
            r
        };
        let records = vec![
            otlp::log_in_span(&good, &new_span_id(), "good record one"),
            broken(),
            broken(),
            otlp::log_in_span(&good, &new_span_id(), "good record two"),
        ];
        let req = otlp::logs("neighbours", records);
        let partial = match transport {
            "http" => otlp::export_logs_http(&c.otlp_http_base(), &req).partial_success,
            _ => grpc.export_logs(req).expect("acknowledged").partial_success,
        }
        .unwrap_or_else(|| panic!("{transport}: partial_success missing"));
        assert_eq!(partial.rejected_log_records, 2, "{transport}: {partial:?}");
        assert!(
            !partial.error_message.is_empty(),
            "{transport}: error_message says why"
        );

        let logs = api.wait_logs(&[("trace_id", &hex(&good))], 2);
        assert_eq!(logs.len(), 2, "{transport}: both neighbours: {logs:?}");
        let bad_logs = api.logs(&[("trace_id", &hex(&bad))]);
        assert!(
            bad_logs.is_empty(),
            "{transport}: rejected records must not be stored: {bad_logs:?}"
        );
    }
}

#[test]
fn log_with_bad_trace_id_length_is_rejected() {
    logs_rejected_one_by_one(|r| r.trace_id.truncate(9));
}

#[test]
fn log_with_bad_span_id_length_is_rejected() {
    logs_rejected_one_by_one(|r| r.span_id.push(0));
}

#[test]
fn log_with_oversized_attribute_is_rejected() {
    logs_rejected_one_by_one(|r| {
        r.attributes
            .push(otlp::str_attr("blob", &"z".repeat(OVERSIZED_VALUE)))
    });
}
