//! The JSON Skein sends: Alertmanager's webhook payload version 4 and the
//! `POST /api/v2/alerts` body of a real Alertmanager. Field names and time
//! formats follow Alertmanager exactly (firing alerts in a webhook carry the
//! zero time `0001-01-01T00:00:00Z` as `endsAt`, like Alertmanager's own).

use serde_json::{json, Value};

use crate::alerts::clock::rfc3339;
use crate::alerts::eval::state::Alert;
use crate::alerts::labels::Labels;

/// Alertmanager's rendering of Go's zero time.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Where an alert can be looked at (`generatorURL`).
pub fn generator_url(external_url: &str, a: &Alert) -> String {
    format!(
        "{}/api/v1/alerts?fingerprint={}",
        external_url.trim_end_matches('/'),
        a.fingerprint
    )
}

fn starts_at(a: &Alert) -> u64 {
    a.fired_at_ms.unwrap_or(a.active_at_ms)
}

/// Alertmanager's group key for the root route: `{}:{alertname="X", service="Y"}`.
pub fn group_key(group_labels: &Labels) -> String {
    let inner: Vec<String> = group_labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    format!("{{}}:{{{}}}", inner.join(", "))
}

/// Entries equal in every map.
fn common<'a>(maps: impl Iterator<Item = &'a Labels>) -> Labels {
    let mut iter = maps;
    let Some(first) = iter.next() else {
        return Labels::new();
    };
    let mut out = first.clone();
    for m in iter {
        out.retain(|k, v| m.get(k) == Some(v));
    }
    out
}

/// A webhook notification (version 4) for one group. `alerts` pairs each
/// alert with whether it is resolved.
pub fn webhook_v4(
    receiver: &str,
    group_labels: &Labels,
    alerts: &[(Alert, bool)],
    external_url: &str,
) -> Value {
    let firing = alerts.iter().any(|(_, resolved)| !resolved);
    let list: Vec<Value> = alerts
        .iter()
        .map(|(a, resolved)| {
            json!({
                "status": if *resolved { "resolved" } else { "firing" },
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": rfc3339(starts_at(a)),
                "endsAt": match (resolved, a.resolved_at_ms) {
                    (true, Some(t)) => rfc3339(t),
                    _ => ZERO_TIME.to_string(),
                },
                "generatorURL": generator_url(external_url, a),
                "fingerprint": a.fingerprint,
            })
        })
        .collect();
    json!({
        "version": "4",
        "groupKey": group_key(group_labels),
        "truncatedAlerts": 0,
        "status": if firing { "firing" } else { "resolved" },
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": common(alerts.iter().map(|(a, _)| &*a.labels)),
        "commonAnnotations": common(alerts.iter().map(|(a, _)| &*a.annotations)),
        "externalURL": external_url,
        "alerts": list,
    })
}

/// The body of `POST /api/v2/alerts`: each alert with its `endsAt`.
pub fn alertmanager_v2(alerts: &[(Alert, u64)], external_url: &str) -> Value {
    Value::Array(
        alerts
            .iter()
            .map(|(a, ends_at)| {
                json!({
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": rfc3339(starts_at(a)),
                    "endsAt": rfc3339(*ends_at),
                    "generatorURL": generator_url(external_url, a),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::eval::state::AlertState;
    use crate::alerts::labels::{fingerprint, labels};

    pub(crate) fn alert(instance: &str, resolved_at: Option<u64>) -> Alert {
        let l = labels([
            ("alertname", "InstanceStoppedRenewing"),
            ("service", "checkout"),
            ("instance", instance),
            ("severity", "critical"),
        ]);
        Alert {
            group: "g".into(),
            fingerprint: fingerprint(&l),
            labels: l.into(),
            annotations: labels([("summary", instance)]).into(),
            state: AlertState::Firing,
            value: 1.0,
            active_at_ms: 1000,
            fired_at_ms: Some(2000),
            resolved_at_ms: resolved_at,
            last_true_ms: 2000,
            interval_ms: 1000,
        }
    }

    #[test]
    fn webhook_payload_is_version_4() {
        let g = labels([
            ("alertname", "InstanceStoppedRenewing"),
            ("service", "checkout"),
        ]);
        let p = webhook_v4(
            "webhook-0",
            &g,
            &[(alert("a", None), false), (alert("b", Some(5000)), true)],
            "http://skein:16686",
        );
        assert_eq!(p["version"], "4");
        assert_eq!(p["status"], "firing");
        assert_eq!(p["receiver"], "webhook-0");
        assert_eq!(
            p["groupKey"],
            "{}:{alertname=\"InstanceStoppedRenewing\", service=\"checkout\"}"
        );
        assert_eq!(p["truncatedAlerts"], 0);
        assert_eq!(p["externalURL"], "http://skein:16686");
        assert_eq!(p["groupLabels"]["service"], "checkout");
        assert_eq!(p["commonLabels"]["severity"], "critical");
        assert!(p["commonLabels"].get("instance").is_none());
        assert!(p["commonAnnotations"].as_object().unwrap().is_empty());
        let a = &p["alerts"][0];
        assert_eq!(a["status"], "firing");
        assert_eq!(a["startsAt"], "1970-01-01T00:00:02.000Z");
        assert_eq!(a["endsAt"], ZERO_TIME);
        assert_eq!(a["fingerprint"].as_str().unwrap().len(), 16);
        assert!(a["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with("http://skein:16686/api/v1/alerts?fingerprint="));
        assert_eq!(p["alerts"][1]["status"], "resolved");
        assert_eq!(p["alerts"][1]["endsAt"], "1970-01-01T00:00:05.000Z");
        let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 10, "exactly the v4 fields: {keys:?}");
    }

    #[test]
    fn alertmanager_body_carries_ends_at() {
        let b = alertmanager_v2(&[(alert("a", None), 9000)], "http://x");
        assert_eq!(b[0]["endsAt"], "1970-01-01T00:00:09.000Z");
        assert_eq!(b[0]["labels"]["instance"], "a");
        assert_eq!(b[0]["startsAt"], "1970-01-01T00:00:02.000Z");
    }
}
