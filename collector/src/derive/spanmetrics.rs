//! RED metrics per span with the OpenTelemetry spanmetrics connector's names
//! (what Jaeger's Monitor tab and Grafana query; `contracts/grafana.md`):
//! `traces_span_metrics_calls_total` and
//! `traces_span_metrics_duration_milliseconds_{bucket,sum,count}`, labels
//! `service_name`, `span_name`, `span_kind` (`SPAN_KIND_SERVER`, …),
//! `status_code` (`STATUS_CODE_UNSET|OK|ERROR`), fixed millisecond buckets.
//!
//! At most `max_series` label sets exist; a span that would need a new one
//! beyond that is not counted in a series but in the overflow counter the
//! caller exports (`skein_derive_series_overflow_total{processor="span_metrics"}`).

use std::collections::HashMap;

use prometheus::proto::{MetricFamily, MetricType};

use super::exposition::{counter, family, histogram, labels, Hist};

/// Upper bounds of `traces_span_metrics_duration_milliseconds` (ms).
pub const DURATION_BUCKETS_MS: [f64; 16] = [
    2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0, 5000.0,
    10000.0, 15000.0,
];

const KINDS: [&str; 6] = [
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
];
const STATUSES: [&str; 3] = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];
const SLOTS: usize = KINDS.len() * STATUSES.len();

#[derive(Debug, Clone, Default)]
struct Series {
    duration: Hist<16>,
}

type Slots = [Option<Box<Series>>; SLOTS];

/// The aggregated series.
#[derive(Debug)]
pub struct SpanMetrics {
    /// service → span name → (kind, status) slot.
    services: HashMap<Box<str>, HashMap<Box<str>, Slots>>,
    series: usize,
    max_series: usize,
}

impl SpanMetrics {
    pub const DESCS: [(&'static str, &'static str, &'static [&'static str]); 2] = [
        (
            "traces_span_metrics_calls_total",
            "Spans received, by service, span name, kind and status (OpenTelemetry spanmetrics).",
            &["service_name", "span_name", "span_kind", "status_code"],
        ),
        (
            "traces_span_metrics_duration_milliseconds",
            "Span duration in milliseconds, by service, span name, kind and status (OpenTelemetry spanmetrics).",
            &["service_name", "span_name", "span_kind", "status_code"],
        ),
    ];

    pub fn new(max_series: usize) -> Self {
        SpanMetrics {
            services: HashMap::new(),
            series: 0,
            max_series,
        }
    }

    pub fn series(&self) -> usize {
        self.series
    }

    /// Count one span; `false` when it needed a new series beyond the cap.
    pub fn observe(
        &mut self,
        service: &str,
        name: &str,
        kind: i32,
        status: i32,
        duration_ns: u64,
    ) -> bool {
        let kind = usize::try_from(kind)
            .ok()
            .filter(|&k| k < KINDS.len())
            .unwrap_or(0);
        let status = usize::try_from(status)
            .ok()
            .filter(|&s| s < STATUSES.len())
            .unwrap_or(0);
        let slot = kind * STATUSES.len() + status;
        let full = self.series >= self.max_series;
        let names = match self.services.get_mut(service) {
            Some(n) => n,
            None if full => return false,
            None => self.services.entry(service.into()).or_default(),
        };
        let slots = match names.get_mut(name) {
            Some(s) => s,
            None if full => return false,
            None => names.entry(name.into()).or_insert_with(Default::default),
        };
        let series = match &mut slots[slot] {
            Some(s) => s,
            empty => {
                if full {
                    return false;
                }
                self.series += 1;
                empty.insert(Box::default())
            }
        };
        series
            .duration
            .observe(&DURATION_BUCKETS_MS, duration_ns as f64 / 1e6);
        true
    }

    pub fn families(&self) -> Vec<MetricFamily> {
        let mut calls = Vec::with_capacity(self.series);
        let mut durations = Vec::with_capacity(self.series);
        for (service, names) in &self.services {
            for (name, slots) in names {
                for (i, s) in slots.iter().enumerate() {
                    let Some(s) = s else { continue };
                    let l = labels(&[
                        ("service_name", &**service),
                        ("span_name", &**name),
                        ("span_kind", KINDS[i / STATUSES.len()]),
                        ("status_code", STATUSES[i % STATUSES.len()]),
                    ]);
                    calls.push(counter(l.clone(), s.duration.count()));
                    durations.push(histogram(l, s.duration.to_proto(&DURATION_BUCKETS_MS)));
                }
            }
        }
        let [(calls_name, calls_help, _), (dur_name, dur_help, _)] = Self::DESCS;
        vec![
            family(calls_name, calls_help, MetricType::COUNTER, calls),
            family(dur_name, dur_help, MetricType::HISTOGRAM, durations),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_le_and_series_are_capped() {
        let mut m = SpanMetrics::new(2);
        assert!(m.observe("api", "GET", 2, 0, 2_000_000)); // exactly 2 ms → le=2
        assert!(m.observe("api", "GET", 2, 0, 2_000_001));
        assert!(m.observe("api", "GET", 2, 0, 20_000_000_000)); // > 15 s → +Inf only
        assert!(m.observe("api", "GET", 2, 2, 1));
        assert!(!m.observe("api", "GET", 3, 0, 1), "third series refused");
        assert!(!m.observe("db", "q", 3, 0, 1));
        assert!(
            !m.observe("api", "GET", 99, 99, 1),
            "unknown kind/status map to an existing-or-new slot"
        );
        assert_eq!(m.series(), 2);
        let fams = m.families();
        let hist = fams[1]
            .get_metric()
            .iter()
            .find(|x| x.get_label()[3].value() == "STATUS_CODE_UNSET")
            .unwrap()
            .get_histogram();
        let cum: Vec<u64> = hist
            .get_bucket()
            .iter()
            .map(|b| b.cumulative_count())
            .collect();
        assert_eq!(&cum[..3], &[1, 2, 2]);
        assert_eq!(cum[15], 2, "20 s is above the last bound");
        assert_eq!(hist.get_sample_count(), 3);
        assert_eq!(fams[0].get_metric().len(), 2);
    }
}
