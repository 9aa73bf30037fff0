//! Prometheus exposition of the span-derived metrics: a fixed-bucket
//! histogram type, helpers that build `MetricFamily` values, and
//! [`DerivedCollector`], the custom collector registered on the process
//! registry so `/metrics` shows the span metrics and the service graph.
//!
//! The series live in the processors' own maps (cheaper to update than
//! `prometheus` label vectors, and capped); this module only renders them
//! at scrape time.

use std::sync::Arc;

use parking_lot::Mutex;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};

use super::servicegraph::ServiceGraph;
use super::spanmetrics::SpanMetrics;

/// Non-cumulative counts per bucket (`N` bounds + `+Inf`) and the sum.
#[derive(Debug, Clone, PartialEq)]
pub struct Hist<const N: usize> {
    pub counts: [u64; N],
    pub inf: u64,
    pub sum: f64,
}

impl<const N: usize> Default for Hist<N> {
    fn default() -> Self {
        Hist {
            counts: [0; N],
            inf: 0,
            sum: 0.0,
        }
    }
}

impl<const N: usize> Hist<N> {
    /// Count `value` in the first bucket whose bound is ≥ it (`le`).
    pub fn observe(&mut self, bounds: &[f64; N], value: f64) {
        match bounds.iter().position(|&b| value <= b) {
            Some(i) => self.counts[i] += 1,
            None => self.inf += 1,
        }
        self.sum += value;
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum::<u64>() + self.inf
    }

    pub fn to_proto(&self, bounds: &[f64; N]) -> proto::Histogram {
        let mut cumulative = 0;
        let buckets = bounds
            .iter()
            .zip(self.counts)
            .map(|(&le, n)| {
                cumulative += n;
                let mut b = proto::Bucket::default();
                b.set_upper_bound(le);
                b.set_cumulative_count(cumulative);
                b
            })
            .collect();
        let mut h = proto::Histogram::default();
        h.set_bucket(buckets);
        h.set_sample_count(self.count());
        h.set_sample_sum(self.sum);
        h
    }
}

pub fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut l = LabelPair::default();
            l.set_name(k.to_string());
            l.set_value(v.to_string());
            l
        })
        .collect()
}

pub fn counter(labels: Vec<LabelPair>, value: u64) -> proto::Metric {
    let mut c = proto::Counter::default();
    c.set_value(value as f64);
    let mut m = proto::Metric::default();
    m.set_label(labels);
    m.set_counter(c);
    m
}

pub fn histogram(labels: Vec<LabelPair>, h: proto::Histogram) -> proto::Metric {
    let mut m = proto::Metric::default();
    m.set_label(labels);
    m.set_histogram(h);
    m
}

pub fn family(
    name: &str,
    help: &str,
    kind: MetricType,
    metrics: Vec<proto::Metric>,
) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

/// The `prometheus` collector over both processors.
pub struct DerivedCollector {
    descs: Vec<Desc>,
    spans: Arc<Mutex<SpanMetrics>>,
    graph: Arc<Mutex<ServiceGraph>>,
}

impl DerivedCollector {
    pub fn new(
        spans: Arc<Mutex<SpanMetrics>>,
        graph: Arc<Mutex<ServiceGraph>>,
    ) -> Result<Self, prometheus::Error> {
        let mut descs = Vec::new();
        for (name, help, labels) in SpanMetrics::DESCS.iter().chain(ServiceGraph::DESCS.iter()) {
            descs.push(Desc::new(
                name.to_string(),
                help.to_string(),
                labels.iter().map(|l| l.to_string()).collect(),
                Default::default(),
            )?);
        }
        Ok(DerivedCollector {
            descs,
            spans,
            graph,
        })
    }
}

impl Collector for DerivedCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut out = self.spans.lock().families();
        out.extend(self.graph.lock().families());
        out
    }
}
