//! Alerting metrics: `skein_alerts{state,alertname}` (active alerts),
//! `skein_notifications_total{receiver,result}` (result: success, retried,
//! failed, dropped), `skein_alerts_notify_queue_depth{receiver}`,
//! `skein_alerts_rule_reloads_total{result}` and `skein_alerts_rules_valid`
//! (0 while the last reload failed and the old rules are kept),
//! `skein_alerts_eval_failures_total{group}`, `skein_alerts_eval_seconds`.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use super::eval::state::Alert;

#[derive(Clone)]
pub struct AlertMetrics {
    pub alerts: IntGaugeVec,
    pub notifications: IntCounterVec,
    pub queue_depth: IntGaugeVec,
    pub reloads: IntCounterVec,
    pub rules_valid: IntGauge,
    pub eval_failures: IntCounterVec,
    pub eval_seconds: Histogram,
}

impl AlertMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let alerts = IntGaugeVec::new(
            Opts::new(
                "skein_alerts",
                "Active alerts by state (pending, firing) and alertname.",
            ),
            &["state", "alertname"],
        )?;
        let notifications = IntCounterVec::new(
            Opts::new(
                "skein_notifications_total",
                "Notifications by receiver and result (success, retried, failed, dropped).",
            ),
            &["receiver", "result"],
        )?;
        let queue_depth = IntGaugeVec::new(
            Opts::new(
                "skein_alerts_notify_queue_depth",
                "Notifications waiting per receiver.",
            ),
            &["receiver"],
        )?;
        let reloads = IntCounterVec::new(
            Opts::new(
                "skein_alerts_rule_reloads_total",
                "Rule reloads by result (success, failure).",
            ),
            &["result"],
        )?;
        let rules_valid = IntGauge::new(
            "skein_alerts_rules_valid",
            "1 if the last rule load succeeded, 0 if it failed and the previous rules are kept.",
        )?;
        let eval_failures = IntCounterVec::new(
            Opts::new(
                "skein_alerts_eval_failures_total",
                "Rule evaluations that failed (store errors), by group.",
            ),
            &["group"],
        )?;
        let eval_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "skein_alerts_eval_seconds",
                "Time to evaluate the due rule groups.",
            )
            .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]),
        )?;
        registry.register(Box::new(alerts.clone()))?;
        registry.register(Box::new(notifications.clone()))?;
        registry.register(Box::new(queue_depth.clone()))?;
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(rules_valid.clone()))?;
        registry.register(Box::new(eval_failures.clone()))?;
        registry.register(Box::new(eval_seconds.clone()))?;
        rules_valid.set(1);
        Ok(AlertMetrics {
            alerts,
            notifications,
            queue_depth,
            reloads,
            rules_valid,
            eval_failures,
            eval_seconds,
        })
    }

    pub fn notification(&self, receiver: &str, result: &str) {
        self.notifications
            .with_label_values(&[receiver, result])
            .inc();
    }

    /// Set `skein_alerts` from the active alerts.
    pub fn set_active(&self, active: &[Alert]) {
        self.alerts.reset();
        for a in active {
            self.alerts
                .with_label_values(&[a.state.as_str(), a.alertname()])
                .inc();
        }
    }
}
