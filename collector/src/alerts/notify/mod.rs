//! Notifications: grouping and timing (`dispatch.rs`), the JSON payloads
//! (`payload.rs`: webhook v4, Alertmanager `/api/v2/alerts`) and delivery
//! (`queue.rs`: a bounded queue, retries and backoff per receiver).
//! Must not evaluate rules or read the stores.

pub mod dispatch;
pub mod payload;
pub mod queue;

pub use dispatch::{DispatchConfig, Dispatcher, GroupNotification};
pub use queue::{Outbox, Receiver, ReceiverKind};
