//! `skein-bench trace-tree`: latency of the native trace-by-id API (tree,
//! orphans, clock skew, critical path) and of Jaeger's trace by id, for
//! single traces of given sizes.
//!
//! For each size one synthetic trace is sent over OTLP/gRPC in batches: a
//! 4-ary tree of spans over five services, every child inside its parent.
//! Once `GET /api/v1/traces/{id}?fields=summary` reports all spans, three
//! kinds are timed one request after another: `native` (full answer),
//! `native_summary` (`?fields=summary`) and `jaeger` (`/api/traces/{id}`).
//! Latency covers the whole answer, body read included.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::gen::{now_unix_nanos, Signal, SERVICES};
use crate::grpc::OtlpClient;
use crate::report::{self, thousands, Latency, Machine, Report};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The collector's OTLP/gRPC address.
    #[arg(long)]
    pub otlp_grpc: String,
    /// The collector's HTTP API address.
    #[arg(long, default_value = "127.0.0.1:16686")]
    pub http: String,
    /// Trace sizes in spans, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "200,100000")]
    pub spans: Vec<usize>,
    /// Requests per kind for traces up to 10,000 spans.
    #[arg(long, default_value_t = 300)]
    pub queries: usize,
    /// Requests per kind for larger traces.
    #[arg(long, default_value_t = 10)]
    pub large_queries: usize,
    /// How long to wait for a trace to become queryable.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5m")]
    pub wait: Duration,
}

#[derive(Debug, Serialize)]
pub struct KindReport {
    pub spans: usize,
    pub kind: &'static str,
    pub path: String,
    pub latency: Latency,
    pub body_bytes: usize,
}

#[derive(Debug, Serialize)]
pub struct TreeReport {
    pub bench: &'static str,
    pub target: String,
    pub kinds: Vec<KindReport>,
    pub machine: Machine,
}

impl Report for TreeReport {
    fn human(&self) -> String {
        let mut out = format!("trace-tree {}\n", self.target);
        for k in &self.kinds {
            out += &format!(
                "  {:>7} spans {:<15} {}; body {}\n",
                thousands(k.spans as f64),
                k.kind,
                k.latency.human(),
                report::bytes(k.body_bytes as u64)
            );
        }
        out += &format!("  {}\n", self.machine.human());
        out
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Any::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn span_id(i: usize) -> Vec<u8> {
    ((i as u64) | (1 << 63)).to_be_bytes().to_vec()
}

/// Encoded export requests holding one trace of `n` spans, `batch` spans each.
fn trace_batches(trace_id: [u8; 16], n: usize, batch: usize) -> Vec<Bytes> {
    let t0 = now_unix_nanos().saturating_sub(60_000_000_000);
    let step = 1_000u64;
    let total = n as u64 * step * 2;
    let mut depth = vec![0u64; n];
    let mut out = Vec::new();
    let mut start_at = 0;
    while start_at < n {
        let end_at = (start_at + batch).min(n);
        let mut per_service: Vec<Vec<Span>> = vec![Vec::new(); SERVICES.len()];
        for i in start_at..end_at {
            let parent = (i > 0).then(|| (i - 1) / 4);
            if let Some(p) = parent {
                depth[i] = depth[p] + 1;
            }
            let service = if i == 0 {
                0
            } else {
                1 + i % (SERVICES.len() - 1)
            };
            per_service[service].push(Span {
                trace_id: trace_id.to_vec(),
                span_id: span_id(i),
                parent_span_id: parent.map(span_id).unwrap_or_default(),
                name: format!("op-{}", i % 20),
                kind: if i == 0 { 2 } else { 1 },
                start_time_unix_nano: t0 + i as u64 * step,
                end_time_unix_nano: t0 + total - depth[i] * step,
                attributes: vec![kv("http.route", "/bench"), kv("customer.tier", "gold")],
                ..Default::default()
            });
        }
        let resource_spans = per_service
            .into_iter()
            .enumerate()
            .filter(|(_, spans)| !spans.is_empty())
            .map(|(s, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", SERVICES[s].name)],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect();
        let req = ExportTraceServiceRequest { resource_spans };
        out.push(Bytes::from(req.encode_to_vec()));
        start_at = end_at;
    }
    out
}

/// GET `url`; the body length, failing on a non-2xx answer.
async fn get(http: &reqwest::Client, url: &str) -> Result<(usize, Value)> {
    let resp = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let body = resp.bytes().await.context("reading the body")?;
    ensure!(status.is_success(), "GET {url}: HTTP {status}");
    let summary = if url.contains("fields=summary") {
        serde_json::from_slice(&body).context("answer is not JSON")?
    } else {
        Value::Null
    };
    Ok((body.len(), summary))
}

/// Runs `skein-bench trace-tree`.
pub async fn run(args: Args) -> Result<TreeReport> {
    let base = if args.http.contains("://") {
        args.http.trim_end_matches('/').to_string()
    } else {
        format!("http://{}", args.http)
    };
    let http = crate::http::client_builder()
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")?;
    let mut client = OtlpClient::connect(&args.otlp_grpc).await?;
    let mut kinds = Vec::new();
    for &n in &args.spans {
        ensure!(n > 0, "--spans: sizes must be above 0");
        let trace_id: [u8; 16] = rand::random();
        let id = hex::encode(trace_id);
        eprintln!("sending trace {id} with {} spans …", thousands(n as f64));
        for body in trace_batches(trace_id, n, 5_000) {
            let ack = client
                .export(Signal::Spans, body, Duration::from_secs(60))
                .await
                .map_err(|s| anyhow::anyhow!("export refused: {s}"))?;
            ensure!(ack.rejected == 0, "spans rejected: {}", ack.message);
        }
        let summary_url = format!("{base}/api/v1/traces/{id}?fields=summary");
        let give_up = Instant::now() + args.wait;
        loop {
            let seen = match get(&http, &summary_url).await {
                Ok((_, v)) => v["span_count"].as_u64().unwrap_or(0) as usize,
                Err(_) => 0,
            };
            if seen >= n {
                break;
            }
            if Instant::now() > give_up {
                bail!(
                    "trace {id}: {seen} of {n} spans queryable after {:?}",
                    args.wait
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let queries = if n > 10_000 {
            args.large_queries
        } else {
            args.queries
        };
        for (kind, path) in [
            ("native", format!("/api/v1/traces/{id}")),
            (
                "native_summary",
                format!("/api/v1/traces/{id}?fields=summary"),
            ),
            ("jaeger", format!("/api/traces/{id}")),
        ] {
            let url = format!("{base}{path}");
            let mut hist = report::latency_histogram();
            let mut body_bytes = 0;
            for _ in 0..queries {
                let started = Instant::now();
                let (len, _) = get(&http, &url).await?;
                report::record(&mut hist, started.elapsed());
                body_bytes = len;
            }
            kinds.push(KindReport {
                spans: n,
                kind,
                path,
                latency: Latency::from_histogram(&hist),
                body_bytes,
            });
        }
    }
    Ok(TreeReport {
        bench: "trace-tree",
        target: args.http,
        kinds,
        machine: Machine::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_one_nested_trace() {
        let batches = trace_batches([7; 16], 23, 10);
        assert_eq!(batches.len(), 3);
        let mut spans = Vec::new();
        for b in &batches {
            let req = ExportTraceServiceRequest::decode(b.as_ref()).expect("decodes");
            for rs in req.resource_spans {
                for ss in rs.scope_spans {
                    spans.extend(ss.spans);
                }
            }
        }
        assert_eq!(spans.len(), 23);
        let by_id: std::collections::HashMap<Vec<u8>, &Span> =
            spans.iter().map(|s| (s.span_id.clone(), s)).collect();
        for s in &spans {
            if let Some(p) = by_id.get(&s.parent_span_id) {
                assert!(p.start_time_unix_nano <= s.start_time_unix_nano);
                assert!(p.end_time_unix_nano >= s.end_time_unix_nano);
            } else {
                assert!(s.parent_span_id.is_empty(), "only the root has no parent");
            }
        }
    }
}
