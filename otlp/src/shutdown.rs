//! The shutdown signal both binaries wait on: the first SIGTERM or SIGINT.
//! Owns only the signal handlers; what shutting down means is each
//! binary's pipeline's business.

use std::future::Future;

use tokio::signal::unix::{signal, Signal, SignalKind};

/// Resolves on the first SIGTERM or SIGINT. The handlers are registered when
/// this is called, not when the future is first polled: call it before
/// starting anything, so that a SIGTERM sent right after the listening lines
/// shuts down instead of killing the process. Must be called inside a tokio
/// runtime. `binary` names the process in the log lines.
pub fn signal_received(binary: &'static str) -> impl Future<Output = ()> {
    async fn first(listener: std::io::Result<Signal>, name: &str, binary: &str) {
        match listener {
            Ok(mut s) => {
                s.recv().await;
                tracing::info!("{name}: shutting down");
            }
            Err(e) => {
                tracing::warn!("cannot listen for {name} ({e}); it will not stop {binary}");
                std::future::pending::<()>().await;
            }
        }
    }
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        tokio::select! {
            _ = first(term, "SIGTERM", binary) => {},
            _ = first(int, "SIGINT", binary) => {},
        }
    }
}
