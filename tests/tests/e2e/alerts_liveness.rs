//! Liveness alerts end to end, through the registry's heartbeat HTTP API
//! (`POST /api/v1/registry/heartbeat`): an instance with `ttl: 2s` that stops
//! renewing is expired within 3 s, a real Alertmanager shows
//! `InstanceStoppedRenewing`, a webhook gets a v4 `firing` payload and then
//! `resolved` once it renews; 20 of 30 instances stopping at once give one
//! `RegistryMassExpiry` and no individual notifications.
//!
//! Needs the registry (`collector/src/registry/`) wired into the alert
//! engine's `LivenessSource` in `pipeline.rs`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use skein_e2e::alerts::{Alertmanager, AlertsApi, Webhook};
use skein_e2e::{wait_for, wait_until, Collector};

const WAIT: Duration = Duration::from_secs(30);

fn heartbeat(
    c: &Collector,
    service: &str,
    instance: &str,
    revision: u64,
    metadata: Value,
) -> Value {
    let body = json!({
        "service": service,
        "instance": instance,
        "ttl": "2s",
        "heartbeat_revision": revision,
        "address": "127.0.0.1:9000",
        "metadata": metadata,
        "health": "passing",
    });
    let r = skein_e2e::http_client()
        .build()
        .expect("http client")
        .post(format!("{}/api/v1/registry/heartbeat", c.http_base()))
        .json(&body)
        .send()
        .expect("heartbeat request");
    assert_eq!(
        r.status().as_u16(),
        200,
        "heartbeat for {service}/{instance} refused"
    );
    r.json().expect("heartbeat answer")
}

fn instance_state(c: &Collector, service: &str, instance: &str) -> Option<String> {
    let v: Value = reqwest::blocking::get(format!("{}/api/v1/registry/services", c.http_base()))
        .ok()?
        .json()
        .ok()?;
    v["services"]
        .as_array()?
        .iter()
        .filter(|s| s["service"] == service)
        .flat_map(|s| s["instances"].as_array().cloned().unwrap_or_default())
        .find(|i| i["instance"] == instance)
        .and_then(|i| i["state"].as_str().map(str::to_string))
}

#[test]
fn stopped_instance_alerts_in_alertmanager_and_webhook_then_resolves() {
    let am = Alertmanager::start();
    let hook = Webhook::start();
    let c = Collector::start_fast(&[
        "--alertmanager",
        &am.base,
        "--webhook",
        &hook.url,
        "--group-wait",
        "500ms",
    ]);
    let api = AlertsApi::new(&c.http_base());

    heartbeat(&c, "inventory", "inv-1", 1, json!({"host": "h1"}));
    let stopped = Instant::now();
    wait_until(WAIT, "inv-1 expired", || {
        instance_state(&c, "inventory", "inv-1").as_deref() == Some("expired")
    });
    assert!(
        stopped.elapsed() < Duration::from_secs(3) + Duration::from_millis(500),
        "expired after {:?}",
        stopped.elapsed()
    );

    let ours = wait_for(WAIT, "InstanceStoppedRenewing firing", || {
        api.alert("InstanceStoppedRenewing")
            .filter(|a| a["state"] == "firing")
    });
    assert_eq!(ours["labels"]["service"], "inventory");
    assert_eq!(ours["labels"]["instance"], "inv-1");
    assert_eq!(ours["labels"]["severity"], "critical");
    assert!(ours["annotations"]["last_heartbeat"]
        .as_str()
        .unwrap()
        .starts_with("revision 1 at "));

    let theirs = wait_for(WAIT, "the alert in Alertmanager", || {
        am.alerts()
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "InstanceStoppedRenewing")
    });
    assert_eq!(theirs["labels"]["instance"], "inv-1");
    assert_eq!(theirs["fingerprint"], ours["fingerprint"]);

    let firing = wait_for(WAIT, "a firing webhook", || {
        hook.payloads()
            .into_iter()
            .find(|p| p["status"] == "firing")
    });
    assert_eq!(firing["version"], "4");
    assert_eq!(
        firing["groupLabels"],
        json!({"alertname": "InstanceStoppedRenewing", "service": "inventory"})
    );
    assert_eq!(firing["alerts"][0]["labels"]["instance"], "inv-1");

    // It renews (a newer heartbeat revision): resolved everywhere.
    heartbeat(&c, "inventory", "inv-1", 2, json!({"host": "h1"}));
    let resolved = wait_for(WAIT, "a resolved webhook", || {
        hook.payloads()
            .into_iter()
            .find(|p| p["status"] == "resolved")
    });
    assert_eq!(resolved["alerts"][0]["fingerprint"], ours["fingerprint"]);
    assert!(api.alert("InstanceStoppedRenewing").is_none());
}

#[test]
fn mass_expiry_gives_one_alert_not_twenty() {
    let hook = Webhook::start();
    let c = Collector::start_fast(&["--webhook", &hook.url, "--group-wait", "500ms"]);
    let api = AlertsApi::new(&c.http_base());
    for n in 0..30 {
        let agent = if n < 20 { "agent-a" } else { "agent-b" };
        heartbeat(
            &c,
            "api",
            &format!("api-{n}"),
            1,
            json!({"agent": agent, "zone": "z1"}),
        );
    }
    // Ten keep renewing; twenty (all on agent-a) stop at once.
    let stop = Arc::new(AtomicBool::new(false));
    let renewer = {
        let (stop, base) = (stop.clone(), c.http_base());
        std::thread::spawn(move || {
            let client = skein_e2e::http_client().build().expect("http client");
            let mut revision = 2;
            while !stop.load(Ordering::Relaxed) {
                for n in 20..30 {
                    let body = json!({"service": "api", "instance": format!("api-{n}"), "ttl": "2s",
                        "heartbeat_revision": revision, "address": "127.0.0.1:9000",
                        "metadata": {"agent": "agent-b", "zone": "z1"}, "health": "passing"});
                    let _ = client
                        .post(format!("{base}/api/v1/registry/heartbeat"))
                        .json(&body)
                        .send();
                }
                revision += 1;
                std::thread::sleep(Duration::from_millis(400));
            }
        })
    };

    // The 20 were registered one after another, so their leases run out over
    // a short spread: the alert fires once enough have expired and its count
    // grows to all 20 on the following evaluations.
    let mass = wait_for(WAIT, "RegistryMassExpiry firing for all 20", || {
        api.alert("RegistryMassExpiry")
            .filter(|a| a["state"] == "firing" && a["annotations"]["count"] == "20")
    });
    assert_eq!(mass["annotations"]["shared"], "agent=agent-a, zone=z1");
    let notified = wait_for(WAIT, "the mass expiry notification", || {
        hook.alerts()
            .into_iter()
            .find(|(_, a)| a["labels"]["alertname"] == "RegistryMassExpiry")
    });
    assert_eq!(notified.0, "firing");
    // Give individual notifications every chance (several group waits,
    // observed on the still-firing mass alert) — there must be none.
    let seen = Instant::now();
    wait_until(WAIT, "three group waits", || {
        seen.elapsed() > Duration::from_millis(1500) && api.alert("RegistryMassExpiry").is_some()
    });
    let individual = hook
        .alerts()
        .into_iter()
        .filter(|(_, a)| a["labels"]["alertname"] == "InstanceStoppedRenewing")
        .count();
    assert_eq!(
        individual, 0,
        "individual alerts were notified during a mass expiry"
    );
    let mass_notifications = hook
        .alerts()
        .into_iter()
        .filter(|(_, a)| a["labels"]["alertname"] == "RegistryMassExpiry")
        .count();
    assert_eq!(mass_notifications, 1);
    // The instances did expire (never kept alive by the mass expiry).
    assert_eq!(
        instance_state(&c, "api", "api-0").as_deref(),
        Some("expired")
    );
    stop.store(true, Ordering::Relaxed);
    let _ = renewer.join();
}
