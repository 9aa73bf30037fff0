//! The exporter: disk buffer → collector, in order.
//!
//! One task reads batches from the buffer ([`crate::buffer::Reader`]), sends
//! each over OTLP/gRPC, compressed with `--compression` ([`client`]), and
//! acknowledges it in the buffer only once the collector accepted it.
//! Retryable failures (collector down, 503/UNAVAILABLE, throttling) are
//! retried with jittered exponential backoff ([`backoff`]) honouring the
//! collector's retry hint, without reordering: nothing newer is sent before
//! the batch at the head goes through. Permanent rejections are dropped and counted. Owns no files.

pub mod backoff;
pub mod client;
pub mod metrics;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio_util::sync::CancellationToken;

use crate::admin::status::AgentStatus;
use crate::buffer::{Buffer, Reader};
use backoff::Backoff;
use client::CollectorClient;
pub use metrics::ExportMetrics;

/// Largest uncompressed export body (the collector accepts 16 MiB by default).
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// Batching and retry settings.
#[derive(Debug, Clone)]
pub struct ExportSettings {
    pub batch_size: u64,
    pub batch_timeout: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

/// The exporter task.
pub struct Exporter {
    buffer: Buffer,
    reader: Reader,
    client: CollectorClient,
    settings: ExportSettings,
    metrics: ExportMetrics,
    status: Arc<AgentStatus>,
}

impl Exporter {
    pub fn new(
        buffer: Buffer,
        client: CollectorClient,
        settings: ExportSettings,
        metrics: ExportMetrics,
        status: Arc<AgentStatus>,
    ) -> Self {
        Exporter {
            reader: buffer.reader(),
            buffer,
            client,
            settings,
            metrics,
            status,
        }
    }

    /// Run until `cancel`; what is already buffered keeps being sent until
    /// the buffer is caught up or a retry wait is interrupted by `cancel`.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut backoff = Backoff::new(self.settings.initial_backoff, self.settings.max_backoff);
        while let Some(batch) = self
            .reader
            .next_batch(
                self.settings.batch_size,
                MAX_BATCH_BYTES,
                self.settings.batch_timeout,
                &cancel,
            )
            .await
        {
            let signal = batch.kind.as_label();
            let size = batch.payload.len() as u64;
            let body = Bytes::from(batch.payload);
            loop {
                match self.client.export(batch.kind, body.clone()).await {
                    Ok(ack) => {
                        backoff.reset();
                        self.metrics.collector_up.set(1);
                        self.status.collector_ok();
                        let sent = batch.items.saturating_sub(ack.rejected);
                        self.metrics.sent.with_label_values(&[signal]).inc_by(sent);
                        self.metrics
                            .sent_bytes
                            .with_label_values(&[signal])
                            .inc_by(size);
                        self.metrics
                            .requests
                            .with_label_values(&[signal, "ok"])
                            .inc();
                        if ack.rejected > 0 {
                            tracing::warn!(
                                rejected = ack.rejected,
                                "the collector rejected items: {}",
                                ack.message
                            );
                            self.metrics
                                .dropped
                                .with_label_values(&[signal, "rejected_by_collector"])
                                .inc_by(ack.rejected);
                        }
                        break;
                    }
                    Err(f) if f.retryable => {
                        self.metrics.collector_up.set(0);
                        self.metrics
                            .requests
                            .with_label_values(&[signal, "retry"])
                            .inc();
                        self.metrics
                            .retried
                            .with_label_values(&[signal])
                            .inc_by(batch.items);
                        let jitter = rand::rng().random_range(0.5..1.5);
                        let wait = backoff.next(f.hint, jitter);
                        self.status
                            .collector_failed(&format!("{:?}: {}", f.code, f.message));
                        tracing::debug!(code = ?f.code, ?wait, "export failed, retrying: {}", f.message);
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = cancel.cancelled() => return,
                        }
                    }
                    Err(f) => {
                        self.metrics.collector_up.set(1);
                        self.metrics
                            .requests
                            .with_label_values(&[signal, "dropped"])
                            .inc();
                        self.metrics
                            .dropped
                            .with_label_values(&[signal, "permanent_error"])
                            .inc_by(batch.items);
                        self.status
                            .collector_failed(&format!("{:?}: {}", f.code, f.message));
                        tracing::error!(
                            code = ?f.code,
                            items = batch.items,
                            "the collector refused a batch permanently; dropped: {}",
                            f.message
                        );
                        break;
                    }
                }
            }
            if let Err(e) = self.buffer.ack(batch.end) {
                tracing::error!("disk buffer: persisting the ack failed: {e}");
            }
        }
    }
}
