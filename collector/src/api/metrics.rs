//! Query-side metrics (`skein_query_*`): how long each endpoint takes and how
//! often it fails, labelled by route template (`/api/traces/{id}`, never the
//! raw path, so label cardinality stays fixed).

use std::future::Future;
use std::time::Instant;

use axum::response::{IntoResponse, Response};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::error::ApiError;

/// Histograms and counters of the HTTP query API.
#[derive(Clone)]
pub struct ApiMetrics {
    /// Time to answer, by endpoint (route template).
    pub duration: HistogramVec,
    /// Non-2xx answers, by endpoint and status code.
    pub errors: IntCounterVec,
}

impl ApiMetrics {
    /// Create the metrics and register them on `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "skein_query_duration_seconds",
                "Time to answer a query API request, by endpoint (route template).",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["endpoint"],
        )?;
        registry.register(Box::new(duration.clone()))?;
        let errors = IntCounterVec::new(
            Opts::new(
                "skein_query_errors_total",
                "Query API requests answered with a non-2xx status, by endpoint and status.",
            ),
            &["endpoint", "status"],
        )?;
        registry.register(Box::new(errors.clone()))?;
        Ok(ApiMetrics { duration, errors })
    }

    /// Run one handler body, timing it and counting its failure.
    pub async fn timed<F, T>(&self, endpoint: &'static str, body: F) -> Response
    where
        F: Future<Output = Result<T, ApiError>>,
        T: IntoResponse,
    {
        let started = Instant::now();
        let response = match body.await {
            Ok(ok) => ok.into_response(),
            Err(e) => e.into_response(),
        };
        self.duration
            .with_label_values(&[endpoint])
            .observe(started.elapsed().as_secs_f64());
        let status = response.status();
        if !status.is_success() {
            self.errors
                .with_label_values(&[endpoint, status.as_str()])
                .inc();
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::error::Problem;

    #[tokio::test]
    async fn timed_counts_durations_and_errors() {
        let registry = Registry::new();
        let m = ApiMetrics::register(&registry).unwrap();
        let ok = m.timed("/x", async { Ok::<_, ApiError>("fine") }).await;
        assert_eq!(ok.status(), 200);
        let bad = m
            .timed("/x", async {
                Err::<&str, _>(ApiError::Jaeger(Problem::not_found("nope")))
            })
            .await;
        assert_eq!(bad.status(), 404);
        assert_eq!(m.duration.with_label_values(&["/x"]).get_sample_count(), 2);
        assert_eq!(m.errors.with_label_values(&["/x", "404"]).get(), 1);
        assert!(
            ApiMetrics::register(&registry).is_err(),
            "double registration is refused"
        );
    }
}
