//! The data-plane hook: after an export is made durable, tell an observer
//! which resource `service.instance.id` values it carried. The registry uses
//! it to tell "heartbeats lost but still serving traffic" from "dead".
//!
//! Owns only the extraction (a walk over resource attributes, no span or log
//! contents) and the trait; it must not know who observes.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::resource::v1::Resource;

/// The resource attribute that names an instance.
pub const INSTANCE_ID: &str = "service.instance.id";

/// Told about every accepted export's instance ids. Must be cheap: it runs
/// on the ingest path.
pub trait TrafficObserver: Send + Sync + 'static {
    fn seen(&self, instance_ids: &[&str]);
}

fn instance_id(resource: Option<&Resource>) -> Option<&str> {
    resource?
        .attributes
        .iter()
        .find(|kv| kv.key == INSTANCE_ID)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) if !s.is_empty() => Some(s.as_str()),
            _ => None,
        })
}

fn dedup(mut ids: Vec<&str>) -> Vec<&str> {
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Distinct instance ids of resources that still carry spans.
pub fn trace_instance_ids(req: &ExportTraceServiceRequest) -> Vec<&str> {
    dedup(
        req.resource_spans
            .iter()
            .filter(|r| r.scope_spans.iter().any(|s| !s.spans.is_empty()))
            .filter_map(|r| instance_id(r.resource.as_ref()))
            .collect(),
    )
}

/// Distinct instance ids of resources that still carry log records.
pub fn log_instance_ids(req: &ExportLogsServiceRequest) -> Vec<&str> {
    dedup(
        req.resource_logs
            .iter()
            .filter(|r| r.scope_logs.iter().any(|s| !s.log_records.is_empty()))
            .filter_map(|r| instance_id(r.resource.as_ref()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn rs(id: Option<&str>, spans: usize) -> ResourceSpans {
        ResourceSpans {
            resource: Some(Resource {
                attributes: id
                    .map(|id| KeyValue {
                        key: INSTANCE_ID.into(),
                        value: Some(AnyValue {
                            value: Some(Value::StringValue(id.into())),
                        }),
                        ..Default::default()
                    })
                    .into_iter()
                    .collect(),
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span::default(); spans],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn distinct_ids_of_resources_with_spans() {
        let req = ExportTraceServiceRequest {
            resource_spans: vec![
                rs(Some("b"), 1),
                rs(Some("a"), 2),
                rs(Some("b"), 1),
                rs(None, 1),
                rs(Some("empty"), 0),
            ],
        };
        assert_eq!(trace_instance_ids(&req), vec!["a", "b"]);
    }
}
