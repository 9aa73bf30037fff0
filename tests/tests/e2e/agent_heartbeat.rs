//! Heartbeats from the real agent to the real collector's registry
//! (`POST /api/v1/registry/heartbeat`, `GET /api/v1/registry/services`,
//! `GET /api/v1/alerts`): alive while renewing, expired after `kill -9` or
//! a failing `--health-url`, deregistered (no alert) on SIGTERM, and the
//! heartbeat revision continues across agent restarts.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use skein_e2e::agent::Agent;
use skein_e2e::{wait_for, wait_until, Api, Collector};

const TTL: &str = "2s";

/// The instance's entry in `/api/v1/registry/services`, if listed.
fn instance(api: &Api, service: &str) -> Option<Value> {
    let (status, body) = api.get("/api/v1/registry/services", &[]);
    if status != 200 {
        return None;
    }
    body["services"]
        .as_array()?
        .iter()
        .find(|s| s["service"] == service)?["instances"]
        .as_array()?
        .first()
        .cloned()
}

fn state(api: &Api, service: &str) -> String {
    instance(api, service)
        .and_then(|i| i["state"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Whether an `InstanceStoppedRenewing` alert (pending or firing) names `service`.
fn stopped_renewing_alert(api: &Api, service: &str) -> bool {
    let (status, body) = api.get("/api/v1/alerts", &[]);
    status == 200
        && body["alerts"].as_array().is_some_and(|alerts| {
            alerts.iter().any(|a| {
                a["name"] == "InstanceStoppedRenewing" && a["labels"]["service"] == service
            })
        })
}

fn agent_for(collector: &Collector, service: &str, extra: &[&str]) -> Agent {
    Agent::builder(collector)
        .args(&[
            "--service",
            service,
            "--ttl",
            TTL,
            "--heartbeat-interval",
            "300ms",
        ])
        .args(extra)
        .start()
}

fn wait_alive(api: &Api, service: &str) -> Value {
    wait_for(
        Duration::from_secs(20),
        "the instance alive in the registry",
        || instance(api, service).filter(|i| i["state"] == "alive"),
    )
}

#[test]
fn kill9_expires_the_instance_and_alerts() {
    let collector = Collector::start_fast(&[]);
    let api = collector.api();
    let mut agent = agent_for(&collector, "hb-kill", &[]);
    let inst = wait_alive(&api, "hb-kill");
    assert!(
        inst["heartbeat_revision"].as_u64().unwrap_or(0) >= 1,
        "{inst}"
    );
    assert!(inst["instance"].as_str().is_some_and(|i| !i.is_empty()));
    let status = agent.status();
    assert_eq!(status["registration"]["state"], "registered", "{status}");
    agent.kill9();
    wait_until(Duration::from_secs(10), "expired after the TTL", || {
        state(&api, "hb-kill") == "expired"
    });
    wait_until(Duration::from_secs(20), "InstanceStoppedRenewing", || {
        stopped_renewing_alert(&api, "hb-kill")
    });
}

#[test]
fn failing_health_url_stops_renewals_while_the_agent_runs() {
    let collector = Collector::start_fast(&[]);
    let api = collector.api();
    // A tiny health endpoint the test switches between 200 and 500.
    let healthy = Arc::new(AtomicBool::new(true));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/health", listener.local_addr().expect("addr"));
    {
        let healthy = healthy.clone();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let status = if healthy.load(Ordering::SeqCst) {
                    "200 OK"
                } else {
                    "500 Internal Server Error"
                };
                let _ = s.write_all(
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                );
            }
        });
    }
    let agent = agent_for(
        &collector,
        "hb-health",
        &["--health-url", &url, "--healthy-after", "2"],
    );
    wait_alive(&api, "hb-health");
    healthy.store(false, Ordering::SeqCst);
    wait_until(
        Duration::from_secs(10),
        "expired while the agent runs",
        || state(&api, "hb-health") == "expired",
    );
    assert_eq!(agent.status()["registration"]["state"], "unhealthy");
    wait_until(Duration::from_secs(20), "InstanceStoppedRenewing", || {
        stopped_renewing_alert(&api, "hb-health")
    });
    healthy.store(true, Ordering::SeqCst);
    wait_alive(&api, "hb-health");
}

#[test]
fn sigterm_deregisters_without_an_alert_and_restart_continues_the_revision() {
    let collector = Collector::start_fast(&[]);
    let api = collector.api();
    let mut agent = agent_for(&collector, "hb-term", &[]);
    wait_alive(&api, "hb-term");
    let before = agent.status()["registration"]["heartbeat_revision"]
        .as_u64()
        .unwrap_or(0);
    assert!(agent.terminate().success());
    wait_until(Duration::from_secs(10), "deregistered", || {
        state(&api, "hb-term") == "deregistered"
    });
    agent.restart();
    let inst = wait_alive(&api, "hb-term");
    let after = inst["heartbeat_revision"].as_u64().unwrap_or(0);
    assert!(after > before, "revision continues: {before} then {after}");
    assert!(
        !stopped_renewing_alert(&api, "hb-term"),
        "a graceful stop does not alert"
    );
}
