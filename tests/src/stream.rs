//! A steady stream of small OTLP/gRPC exports from a few concurrent tasks,
//! recording exactly which were acknowledged — for crash and shutdown tests
//! that stop the collector mid-stream.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;

use crate::otlp::{self, hex, new_span_id, new_trace_id};
use crate::{Api, QUERYABLE_WITHIN};

/// Spans per exported trace.
pub const SPANS_PER_TRACE: usize = 3;

/// What the collector acknowledged: trace ids whose spans were acked, and
/// trace ids whose log record was acked.
#[derive(Debug, Default)]
pub struct Acked {
    pub traces: Vec<String>,
    pub logs: Vec<String>,
    /// The first error each task saw (expected once the collector stops).
    pub errors: Vec<String>,
}

impl Acked {
    /// Every acknowledged span and log is queryable; panics listing the
    /// missing trace ids otherwise.
    pub fn assert_queryable(&self, api: &Api) {
        let mut missing_traces = self.traces.clone();
        let mut missing_logs = self.logs.clone();
        crate::poll_until(QUERYABLE_WITHIN, || {
            missing_traces.retain(|id| {
                api.trace(id)
                    .is_none_or(|t| t.spans().len() < SPANS_PER_TRACE)
            });
            missing_logs.retain(|id| api.logs(&[("trace_id", id)]).is_empty());
            missing_traces.is_empty() && missing_logs.is_empty()
        });
        assert!(
            missing_traces.is_empty() && missing_logs.is_empty(),
            "acknowledged but not queryable within {QUERYABLE_WITHIN:?}: {} of {} traces {:?}, {} of {} logs {:?}",
            missing_traces.len(),
            self.traces.len(),
            missing_traces,
            missing_logs.len(),
            self.logs.len(),
            missing_logs
        );
    }
}

/// Tasks exporting one small trace and one log record after another.
pub struct Streamer {
    rt: tokio::runtime::Runtime,
    stop: Arc<AtomicBool>,
    acked_traces: Arc<AtomicUsize>,
    acked: Arc<Mutex<Acked>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Streamer {
    /// Start `tasks` senders against `grpc_endpoint`.
    pub fn start(grpc_endpoint: &str, tasks: usize) -> Streamer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let stop = Arc::new(AtomicBool::new(false));
        let acked_traces = Arc::new(AtomicUsize::new(0));
        let acked = Arc::new(Mutex::new(Acked::default()));
        let tasks = (0..tasks)
            .map(|n| {
                let endpoint = grpc_endpoint.to_string();
                let (stop, count, acked) = (stop.clone(), acked_traces.clone(), acked.clone());
                rt.spawn(
                    async move { send_until_stopped(n, &endpoint, &stop, &count, &acked).await },
                )
            })
            .collect();
        Streamer {
            rt,
            stop,
            acked_traces,
            acked,
            tasks,
        }
    }

    /// Traces acknowledged so far.
    pub fn acked_traces(&self) -> usize {
        self.acked_traces.load(Ordering::Relaxed)
    }

    /// Stop the senders (waiting at most 30 s) and return what was acked.
    pub fn stop(self) -> Acked {
        self.stop.store(true, Ordering::Relaxed);
        let tasks = self.tasks;
        self.rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), join_all(tasks))
                .await
                .expect("senders stopped within 30 s");
        });
        std::mem::take(&mut *self.acked.lock().unwrap())
    }
}

async fn join_all(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        t.await.expect("sender task panicked");
    }
}

async fn send_until_stopped(
    n: usize,
    endpoint: &str,
    stop: &AtomicBool,
    count: &AtomicUsize,
    acked: &Mutex<Acked>,
) {
    let channel = otlp::channel(endpoint);
    let mut traces = TraceServiceClient::new(channel.clone());
    let mut logs = LogsServiceClient::new(channel);
    while !stop.load(Ordering::Relaxed) {
        let trace_id = new_trace_id();
        let id = hex(&trace_id);
        let root = new_span_id();
        let spans = (0..SPANS_PER_TRACE)
            .map(|i| {
                let span_id = if i == 0 { root.clone() } else { new_span_id() };
                let mut s = otlp::span(&trace_id, &span_id, &format!("step-{i}"));
                if i > 0 {
                    s.parent_span_id = root.clone();
                }
                s
            })
            .collect();
        match traces
            .export(otlp::traces(&format!("stream-{n}"), spans))
            .await
        {
            Ok(r) => {
                let rejected = r
                    .into_inner()
                    .partial_success
                    .map_or(0, |p| p.rejected_spans);
                assert_eq!(rejected, 0, "valid spans were rejected");
                acked.lock().unwrap().traces.push(id.clone());
                count.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                acked
                    .lock()
                    .unwrap()
                    .errors
                    .push(format!("task {n} traces: {e:?}"));
                return;
            }
        }
        let record = otlp::log_in_span(&trace_id, &root, &format!("streamed record {id}"));
        match logs
            .export(otlp::logs(&format!("stream-{n}"), vec![record]))
            .await
        {
            Ok(_) => acked.lock().unwrap().logs.push(id),
            Err(e) => {
                acked
                    .lock()
                    .unwrap()
                    .errors
                    .push(format!("task {n} logs: {e:?}"));
                return;
            }
        }
    }
}
