//! Service-graph metrics with Tempo's names (what Tempo's service map and
//! Grafana's node graph query; `contracts/grafana.md`):
//! `traces_service_graph_request_total`,
//! `traces_service_graph_request_failed_total`,
//! `traces_service_graph_request_server_seconds_{bucket,sum,count}` and
//! `traces_service_graph_request_client_seconds_{…}`, labels `client`,
//! `server`, `connection_type`; buckets are Tempo's defaults
//! (0.1 s doubling to 12.8 s).
//!
//! Fed with the edges [`super::dependencies::pairing`] produces. The client
//! histogram counts edges that have a client span, the server histogram
//! edges that have a server span (a virtual node has no server side).
//! Capped at `max_series` label sets like the span metrics.

use std::collections::HashMap;
use std::sync::Arc;

use prometheus::proto::{MetricFamily, MetricType};

use super::dependencies::{ConnType, Edge};
use super::exposition::{counter, family, histogram, labels, Hist};

/// Upper bounds of both latency histograms (seconds): Tempo's default
/// `histogram_buckets`.
pub const SECONDS_BUCKETS: [f64; 8] = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8];

#[derive(Debug, Default)]
struct Series {
    requests: u64,
    failed: u64,
    server: Hist<8>,
    client: Hist<8>,
}

type Key = (Arc<str>, Arc<str>, ConnType);

/// The aggregated series.
#[derive(Debug)]
pub struct ServiceGraph {
    series: HashMap<Key, Series>,
    max_series: usize,
}

const LABELS: &[&str] = &["client", "server", "connection_type"];

impl ServiceGraph {
    pub const DESCS: [(&'static str, &'static str, &'static [&'static str]); 4] = [
        (
            "traces_service_graph_request_total",
            "Requests between two services (Tempo service graph).",
            LABELS,
        ),
        (
            "traces_service_graph_request_failed_total",
            "Failed requests between two services (Tempo service graph).",
            LABELS,
        ),
        (
            "traces_service_graph_request_server_seconds",
            "Request time as seen by the server (Tempo service graph).",
            LABELS,
        ),
        (
            "traces_service_graph_request_client_seconds",
            "Request time as seen by the client (Tempo service graph).",
            LABELS,
        ),
    ];

    pub fn new(max_series: usize) -> Self {
        ServiceGraph {
            series: HashMap::new(),
            max_series,
        }
    }

    /// Label sets in use.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Count one edge; `false` when it needed a series beyond the cap.
    pub fn observe(&mut self, edge: &Edge, name: impl Fn(u32) -> Arc<str>) -> bool {
        let key = (name(edge.client), name(edge.server), edge.conn);
        let len = self.series.len();
        let s = match self.series.get_mut(&key) {
            Some(s) => s,
            None if len >= self.max_series => return false,
            None => self.series.entry(key).or_default(),
        };
        s.requests += 1;
        s.failed += u64::from(edge.failed);
        if let Some(ns) = edge.server_ns {
            s.server.observe(&SECONDS_BUCKETS, ns as f64 / 1e9);
        }
        if let Some(ns) = edge.client_ns {
            s.client.observe(&SECONDS_BUCKETS, ns as f64 / 1e9);
        }
        true
    }

    pub fn families(&self) -> Vec<MetricFamily> {
        let mut out: [Vec<_>; 4] = Default::default();
        for ((client, server, conn), s) in &self.series {
            let l = labels(&[
                ("client", &**client),
                ("server", &**server),
                ("connection_type", conn.label()),
            ]);
            out[0].push(counter(l.clone(), s.requests));
            out[1].push(counter(l.clone(), s.failed));
            out[2].push(histogram(l.clone(), s.server.to_proto(&SECONDS_BUCKETS)));
            out[3].push(histogram(l, s.client.to_proto(&SECONDS_BUCKETS)));
        }
        let kinds = [
            MetricType::COUNTER,
            MetricType::COUNTER,
            MetricType::HISTOGRAM,
            MetricType::HISTOGRAM,
        ];
        out.into_iter()
            .zip(Self::DESCS)
            .zip(kinds)
            .map(|((metrics, (name, help, _)), kind)| family(name, help, kind, metrics))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests_failures_and_both_latencies() {
        let names: Vec<Arc<str>> = vec!["a".into(), "b".into(), "c".into()];
        let name = |i: u32| names[i as usize].clone();
        let mut g = ServiceGraph::new(1);
        let edge = Edge {
            client: 0,
            server: 1,
            conn: ConnType::Direct,
            start_ns: 0,
            client_ns: Some(150_000_000),
            server_ns: Some(100_000_000),
            failed: true,
            lsn: 1,
        };
        assert!(g.observe(&edge, name));
        assert!(g.observe(
            &Edge {
                failed: false,
                client_ns: Some(20_000_000_000),
                ..edge
            },
            name
        ));
        assert!(!g.observe(&Edge { server: 2, ..edge }, name), "capped");
        let f = g.families();
        assert_eq!(f[0].get_metric()[0].get_counter().get_value(), 2.0);
        assert_eq!(f[1].get_metric()[0].get_counter().get_value(), 1.0);
        let server = f[2].get_metric()[0].get_histogram();
        assert_eq!(
            server.get_bucket()[0].cumulative_count(),
            2,
            "0.1 s is le 0.1"
        );
        let client = f[3].get_metric()[0].get_histogram();
        assert_eq!(client.get_bucket()[1].cumulative_count(), 1);
        assert_eq!(client.get_bucket()[7].cumulative_count(), 1);
        assert_eq!(client.get_sample_count(), 2);
        assert_eq!(f[0].get_metric()[0].get_label()[2].value(), "");
    }
}
