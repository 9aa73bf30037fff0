//! The demo instances' health endpoints, probed by their agents
//! (`--health-url`): `GET /healthz/{instance}` answers 200 while the
//! instance is up and 503 while the failure cycle has it down, so the real
//! agent stops renewing the lease exactly as it would for a real service.
//! Owns that small HTTP listener only.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::schedule::FailureCycle;
use super::topology::{Service, FAILING};

/// Which demo instances are down right now.
#[derive(Debug, Clone, Copy)]
pub struct Outages {
    pub cycle: FailureCycle,
    pub started: Instant,
}

impl Outages {
    pub fn is_down(&self, service: Service) -> bool {
        service == FAILING && self.cycle.is_down(self.started.elapsed())
    }
}

/// The router: one health route per instance id.
pub fn router(outages: Outages) -> Router {
    Router::new()
        .route("/healthz/{instance}", get(health))
        .with_state(Arc::new(outages))
}

async fn health(
    State(outages): State<Arc<Outages>>,
    Path(instance): Path<String>,
) -> (StatusCode, String) {
    match Service::ALL.iter().find(|s| s.instance() == instance) {
        None => (
            StatusCode::NOT_FOUND,
            format!("no demo instance '{instance}'\n"),
        ),
        Some(&s) if outages.is_down(s) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{instance} is down (demo failure cycle)\n"),
        ),
        Some(_) => (StatusCode::OK, "ok\n".to_string()),
    }
}

/// Serve `router` on `listener` until `cancel`.
pub async fn serve(listener: TcpListener, router: Router, cancel: CancellationToken) {
    if let Err(e) = axum::serve(listener, router)
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
    {
        tracing::warn!("demo health endpoint failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tower::ServiceExt;

    async fn status(outages: Outages, path: &str) -> StatusCode {
        let req = axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        router(outages).oneshot(req).await.unwrap().status()
    }

    #[tokio::test]
    async fn only_the_failing_instance_goes_down_during_an_outage() {
        let cycle = FailureCycle {
            first: Duration::ZERO,
            period: Duration::from_secs(3600),
            outage: Duration::from_secs(1800),
        };
        let down = Outages {
            cycle,
            started: Instant::now(),
        };
        let pay = format!("/healthz/{}", FAILING.instance());
        let order = format!("/healthz/{}", Service::Order.instance());
        assert_eq!(status(down, &pay).await, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status(down, &order).await, StatusCode::OK);
        assert_eq!(status(down, "/healthz/nope").await, StatusCode::NOT_FOUND);
        let up = Outages {
            cycle: FailureCycle {
                first: Duration::from_secs(3600),
                ..cycle
            },
            started: Instant::now(),
        };
        assert_eq!(status(up, &pay).await, StatusCode::OK);
    }
}
