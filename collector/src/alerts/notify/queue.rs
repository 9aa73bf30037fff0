//! Delivery: one bounded queue and one worker task per receiver, so a slow
//! or dead receiver delays neither evaluation nor the other receivers.
//! When a queue is full the new notification is dropped and counted
//! (`skein_notifications_total{result="dropped"}`). Each notification is
//! POSTed with retries and exponential backoff (0.5 s doubling to 8 s, at
//! most [`MAX_ATTEMPTS`] tries; 4xx other than 408/429 is not retried).
//! Receivers are plain `http://` URLs (config validation refuses `https://`).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::alerts::metrics::AlertMetrics;

/// Notifications waiting per receiver.
pub const QUEUE_CAPACITY: usize = 256;
pub const MAX_ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What a receiver is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiverKind {
    /// Alertmanager webhook payload v4, POSTed to the URL.
    Webhook,
    /// A real Alertmanager: POST `<url>/api/v2/alerts`.
    Alertmanager,
}

/// One configured receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct Receiver {
    /// `webhook-0`, `alertmanager-0`, … (the `receiver` label and payload field).
    pub name: String,
    pub kind: ReceiverKind,
    /// The URL posted to.
    pub url: String,
}

/// Senders into the receivers' queues.
#[derive(Clone)]
pub struct Outbox {
    queues: Vec<(Receiver, mpsc::Sender<Vec<u8>>)>,
    metrics: AlertMetrics,
}

impl Outbox {
    /// Start one worker per receiver; they stop when `cancel` fires.
    pub fn spawn(
        receivers: Vec<Receiver>,
        metrics: AlertMetrics,
        cancel: CancellationToken,
    ) -> Result<(Outbox, Vec<JoinHandle<()>>), reqwest::Error> {
        crate::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        let mut queues = Vec::new();
        let mut tasks = Vec::new();
        for r in receivers {
            let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
            tasks.push(tokio::spawn(worker(
                r.clone(),
                rx,
                client.clone(),
                metrics.clone(),
                cancel.clone(),
            )));
            queues.push((r, tx));
        }
        Ok((Outbox { queues, metrics }, tasks))
    }

    pub fn receivers(&self) -> impl Iterator<Item = &Receiver> {
        self.queues.iter().map(|(r, _)| r)
    }

    /// Queue `body` for the receiver named `name`; never waits.
    pub fn send(&self, name: &str, body: Vec<u8>) {
        let Some((r, tx)) = self.queues.iter().find(|(r, _)| r.name == name) else {
            return;
        };
        match tx.try_send(body) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(receiver = %r.name, "notification queue full; dropping a notification");
                self.metrics.notification(&r.name, "dropped");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.metrics.notification(&r.name, "dropped")
            }
        }
        self.metrics
            .queue_depth
            .with_label_values(&[&r.name])
            .set((QUEUE_CAPACITY - tx.capacity()) as i64);
    }
}

async fn worker(
    r: Receiver,
    mut rx: mpsc::Receiver<Vec<u8>>,
    client: reqwest::Client,
    metrics: AlertMetrics,
    cancel: CancellationToken,
) {
    loop {
        let body = tokio::select! {
            _ = cancel.cancelled() => return,
            b = rx.recv() => match b { Some(b) => b, None => return },
        };
        metrics
            .queue_depth
            .with_label_values(&[&r.name])
            .set(rx.len() as i64);
        deliver(&r, &client, body, &metrics, &cancel).await;
    }
}

async fn deliver(
    r: &Receiver,
    client: &reqwest::Client,
    body: Vec<u8>,
    metrics: &AlertMetrics,
    cancel: &CancellationToken,
) {
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=MAX_ATTEMPTS {
        let sent = client
            .post(&r.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("skein-collector/", env!("CARGO_PKG_VERSION")),
            )
            .body(body.clone())
            .send()
            .await;
        let retryable = match sent {
            Ok(resp) if resp.status().is_success() => {
                metrics.notification(&r.name, "success");
                return;
            }
            Ok(resp) => {
                let s = resp.status();
                let text = resp.text().await.unwrap_or_default();
                tracing::warn!(receiver = %r.name, status = %s, attempt, "notification refused: {}", text.chars().take(200).collect::<String>());
                s.is_server_error() || s.as_u16() == 408 || s.as_u16() == 429
            }
            Err(e) => {
                tracing::warn!(receiver = %r.name, attempt, "notification failed: {e}");
                true
            }
        };
        if !retryable || attempt == MAX_ATTEMPTS {
            break;
        }
        metrics.notification(&r.name, "retried");
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    metrics.notification(&r.name, "failed");
}
