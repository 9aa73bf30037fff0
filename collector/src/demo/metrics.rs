//! Demo metrics (`skein_demo_*`).

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

#[derive(Clone)]
pub struct DemoMetrics {
    /// Demo requests generated, by `outcome` (`ok`, `error`).
    pub requests: IntCounterVec,
    /// 1 while a demo instance is down by the failure cycle, by `service`.
    pub down: IntGaugeVec,
}

impl DemoMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "skein_demo_requests_total",
                "Requests the --demo system generated, by outcome.",
            ),
            &["outcome"],
        )?;
        let down = IntGaugeVec::new(
            Opts::new(
                "skein_demo_instance_down",
                "1 while a --demo instance is down by the demo's failure cycle.",
            ),
            &["service"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(down.clone()))?;
        Ok(DemoMetrics { requests, down })
    }
}
