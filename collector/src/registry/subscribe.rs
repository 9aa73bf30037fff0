//! In-process subscription to registry events (for the alerts module and
//! SSE streams): a bounded broadcast with an explicit lag policy.
//!
//! Each subscriber has its own view of a ring of [`CAPACITY`] events. A
//! subscriber that falls further behind loses the oldest events it has not
//! read: its next `recv` returns [`SubscriptionError::Lagged`] with the
//! revision to resume from, and `skein_registry_subscriber_lagged_total`
//! counts the missed events. It then catches up from
//! [`super::Registry::events_since`] (the watch history) or, if that was
//! compacted too, from [`super::Registry::snapshot`]. Publishing never
//! waits for subscribers.

use prometheus::IntCounter;
use tokio::sync::broadcast;

use super::model::SharedEvent;

/// Events buffered per subscriber before it lags.
pub const CAPACITY: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    #[error(
        "subscriber fell behind and missed {missed} events; resume from revision {resume_from}"
    )]
    Lagged { missed: u64, resume_from: u64 },
    #[error("the registry is shut down")]
    Closed,
}

/// A live feed of events in revision order.
pub struct Subscription {
    rx: broadcast::Receiver<SharedEvent>,
    lagged: IntCounter,
    /// Revision of the last event handed out.
    last: u64,
}

impl Subscription {
    pub(super) fn new(rx: broadcast::Receiver<SharedEvent>, lagged: IntCounter, last: u64) -> Self {
        Subscription { rx, lagged, last }
    }

    /// The next event. Events at or below the revision the subscription
    /// started at are skipped.
    pub async fn recv(&mut self) -> Result<SharedEvent, SubscriptionError> {
        loop {
            match self.rx.recv().await {
                Ok(e) if e.revision <= self.last => continue,
                Ok(e) => {
                    self.last = e.revision;
                    return Ok(e);
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    self.lagged.inc_by(missed);
                    return Err(SubscriptionError::Lagged {
                        missed,
                        resume_from: self.last + 1,
                    });
                }
                Err(broadcast::error::RecvError::Closed) => return Err(SubscriptionError::Closed),
            }
        }
    }

    /// Revision of the last event received (or the start revision).
    pub fn last_revision(&self) -> u64 {
        self.last
    }

    /// After a lag, skip ahead: events up to `revision` were handled elsewhere.
    pub fn resume_after(&mut self, revision: u64) {
        self.last = self.last.max(revision);
    }
}
