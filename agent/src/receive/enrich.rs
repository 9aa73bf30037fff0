//! Resource attributes the agent adds to what apps and log files send.
//!
//! Adds `host.name`, `service.instance.id` and, from the Kubernetes
//! downward-API variables when present, `k8s.pod.name`,
//! `k8s.namespace.name` and `k8s.node.name` — only where the app did not set
//! the key itself. Pure data; no I/O after construction.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// Environment variables read for each Kubernetes attribute, first found wins.
pub const K8S_ENV: &[(&str, &[&str])] = &[
    ("k8s.pod.name", &["K8S_POD_NAME", "POD_NAME"]),
    (
        "k8s.namespace.name",
        &["K8S_NAMESPACE_NAME", "POD_NAMESPACE"],
    ),
    ("k8s.node.name", &["K8S_NODE_NAME", "NODE_NAME"]),
];

/// The attributes to add, in order.
#[derive(Debug, Clone, Default)]
pub struct Enricher {
    attrs: Vec<(String, String)>,
}

impl Enricher {
    /// From the host name, the instance id and `env` (the process environment in production).
    pub fn new(host_name: &str, instance_id: &str, env: impl Fn(&str) -> Option<String>) -> Self {
        let mut attrs = vec![
            ("host.name".to_string(), host_name.to_string()),
            ("service.instance.id".to_string(), instance_id.to_string()),
        ];
        for (key, vars) in K8S_ENV {
            if let Some(v) = vars.iter().find_map(|v| env(v).filter(|s| !s.is_empty())) {
                attrs.push((key.to_string(), v));
            }
        }
        Enricher { attrs }
    }

    /// The attributes, e.g. for the tailer's own resource.
    pub fn attributes(&self) -> &[(String, String)] {
        &self.attrs
    }

    pub fn traces(&self, req: &mut ExportTraceServiceRequest) {
        for rs in &mut req.resource_spans {
            self.resource(rs.resource.get_or_insert_with(Resource::default));
        }
    }

    pub fn logs(&self, req: &mut ExportLogsServiceRequest) {
        for rl in &mut req.resource_logs {
            self.resource(rl.resource.get_or_insert_with(Resource::default));
        }
    }

    /// Add each attribute the resource does not have yet.
    pub fn resource(&self, r: &mut Resource) {
        for (k, v) in &self.attrs {
            if !r.attributes.iter().any(|a| &a.key == k) {
                r.attributes.push(string_kv(k, v));
            }
        }
    }
}

pub fn string_kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.to_string())),
        }),
        ..Default::default()
    }
}

/// This machine's host name (`gethostname(2)`), or `unknown`.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into our buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(s) if !s.is_empty() => s.to_string(),
        _ => "unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::ResourceSpans;

    #[test]
    fn adds_only_missing_keys_and_k8s_from_env() {
        let e = Enricher::new("h1", "h1-abc", |k| match k {
            "POD_NAME" => Some("pod-7".into()),
            "K8S_NAMESPACE_NAME" => Some("shop".into()),
            "POD_NAMESPACE" => Some("ignored".into()),
            _ => None,
        });
        let mut req = ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![string_kv("host.name", "app-set")],
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ResourceSpans::default(),
            ],
        };
        e.traces(&mut req);
        let get = |i: usize, k: &str| {
            req.resource_spans[i]
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|a| a.key == k))
                .and_then(|a| a.value.clone())
                .and_then(|v| v.value)
        };
        assert_eq!(
            get(0, "host.name"),
            Some(Value::StringValue("app-set".into()))
        );
        assert_eq!(get(1, "host.name"), Some(Value::StringValue("h1".into())));
        assert_eq!(
            get(0, "service.instance.id"),
            Some(Value::StringValue("h1-abc".into()))
        );
        assert_eq!(
            get(1, "k8s.pod.name"),
            Some(Value::StringValue("pod-7".into()))
        );
        assert_eq!(
            get(1, "k8s.namespace.name"),
            Some(Value::StringValue("shop".into()))
        );
        assert_eq!(get(1, "k8s.node.name"), None);
    }
}
