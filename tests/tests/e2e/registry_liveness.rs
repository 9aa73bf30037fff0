//! Registry liveness against the real binary: expiry timing, stale
//! heartbeats, watch (long-poll and SSE), compaction, bad input, and the
//! data-plane cross-check.

use std::time::{Duration, Instant};

use serde_json::json;
use skein_e2e::otlp;
use skein_e2e::registry::{metric, RegistryClient};
use skein_e2e::{wait_for, wait_until, Collector};

fn client(c: &Collector) -> RegistryClient {
    RegistryClient::new(c.http_base())
}

#[test]
fn an_instance_that_stops_renewing_expires_within_3s_and_a_replay_does_not_revive_it() {
    let c = Collector::start(&[]);
    let r = client(&c);
    for rev in 1..=3 {
        r.heartbeat_ok("checkout", "co-1", "2s", rev);
    }
    let last = Instant::now();
    assert_eq!(r.state("checkout", "co-1").as_deref(), Some("alive"));
    wait_until(Duration::from_secs(3), "co-1 to expire within 3 s", || {
        r.state("checkout", "co-1").as_deref() == Some("expired")
    });
    let took = last.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "expired too early: {took:?}"
    );
    let v = r.instance("checkout", "co-1").unwrap();
    assert!(v["expired_at_unix_ms"].as_u64().is_some(), "{v}");
    let expired_rev = v["mod_revision"].as_u64().unwrap();

    // A late, replayed heartbeat: 409 with the last accepted revision, and
    // the instance stays expired with nothing changed.
    let (s, body) = r.heartbeat("checkout", "co-1", "2s", 2);
    assert_eq!(s, 409, "{body}");
    assert_eq!(
        body,
        json!({"error": "stale heartbeat revision", "last_accepted": 3})
    );
    let v = r.instance("checkout", "co-1").unwrap();
    assert_eq!(v["state"], "expired");
    assert_eq!(v["mod_revision"].as_u64(), Some(expired_rev));

    // A fresh heartbeat revives it as a new incarnation (a restart).
    let back = r.heartbeat_ok("checkout", "co-1", "2s", 4);
    let v = r.instance("checkout", "co-1").unwrap();
    assert_eq!(v["state"], "alive");
    assert_eq!(v["create_revision"], back["revision"]);
    assert_eq!(v["restarts_last_hour"], 1);
    let m = r.metrics();
    assert_eq!(
        metric(&m, "skein_registry_restarts_total"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "skein_registry_heartbeats_total{result=\"stale\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&m, "skein_registry_instances{state=\"alive\"}"),
        Some(1.0)
    );
    assert!(metric(&m, "skein_registry_revision").unwrap() >= 3.0);
}

#[test]
fn bad_heartbeats_get_400_naming_the_field() {
    let c = Collector::start(&[]);
    let r = client(&c);
    for (body, field) in [
        (
            json!({"instance": "a", "ttl": "5s", "heartbeat_revision": 1}),
            "service",
        ),
        (
            json!({"service": "s", "ttl": "5s", "heartbeat_revision": 1}),
            "instance",
        ),
        (
            json!({"service": "s", "instance": "a", "ttl": "999ms", "heartbeat_revision": 1}),
            "ttl",
        ),
        (
            json!({"service": "s", "instance": "a", "ttl": "61m", "heartbeat_revision": 1}),
            "ttl",
        ),
        (
            json!({"service": "s", "instance": "a", "ttl": "5s"}),
            "heartbeat_revision",
        ),
        (
            json!({"service": "s", "instance": "a", "ttl": "5s", "heartbeat_revision": 1, "health": "ok"}),
            "health",
        ),
    ] {
        let (s, v) = r.heartbeat_raw(&body);
        assert_eq!(s, 400, "{body}: {v}");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains(&format!("'{field}'")), "{body}: {msg}");
    }
    // Not JSON at all.
    let resp = skein_e2e::http_client()
        .build()
        .expect("http client")
        .post(format!("{}/api/v1/registry/heartbeat", c.http_base()))
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(r.deregister("nope", "nope", "x").0, 404);
}

#[test]
fn watch_returns_complete_ordered_events_and_410_when_compacted() {
    let c = Collector::start(&["--registry-watch-history", "20"]);
    let r = client(&c);
    for i in 0..5 {
        r.heartbeat_ok("cart", &format!("c{i}"), "30s", 1);
    }
    r.heartbeat_ok("cart", "c0", "30s", 2); // renewal: no revision
    let (s, _) = r.deregister("cart", "c1", "rollout");
    assert_eq!(s, 200);
    r.heartbeat_raw(&json!({"service": "cart", "instance": "c2", "ttl": "30s",
        "heartbeat_revision": 2, "health": "warning"}));
    let (s, v) = r.watch(2, "1s");
    assert_eq!(s, 200, "{v}");
    let events: Vec<(u64, String, String)> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["revision"].as_u64().unwrap(),
                e["type"].as_str().unwrap().to_string(),
                e["instance"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expect = [
        (2, "registered", "c1"),
        (3, "registered", "c2"),
        (4, "registered", "c3"),
        (5, "registered", "c4"),
        (6, "deregistered", "c1"),
        (7, "updated", "c2"),
    ];
    let expect: Vec<(u64, String, String)> = expect
        .iter()
        .map(|(r, t, i)| (*r, t.to_string(), i.to_string()))
        .collect();
    assert_eq!(events, expect);
    assert_eq!(v["revision"], 7);

    // SSE from revision 5: the backlog, then a live event.
    let base = c.http_base();
    let sse = std::thread::spawn(move || RegistryClient::new(base).sse(5, 4));
    wait_until(
        Duration::from_secs(10),
        "the SSE watcher to connect",
        || metric(&r.metrics(), "skein_registry_watchers") == Some(1.0),
    );
    r.heartbeat_ok("cart", "live", "30s", 1);
    let got = sse.join().unwrap();
    let ids: Vec<u64> = got.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(ids, vec![5, 6, 7, 8]);
    assert_eq!(got[3].1, "registered");
    assert_eq!(got[3].2["instance"], "live");

    // Push revision 1 out of the 20-event history.
    for i in 0..20 {
        r.heartbeat_ok("bulk", &format!("b{i}"), "30s", 1);
    }
    let (s, v) = r.watch(1, "1s");
    assert_eq!(s, 410, "{v}");
    assert_eq!(v["oldest_revision"], 9);
    let (s, _) = r.services(&[("revision", "3")]);
    assert_eq!(s, 410);
    let (s, v) = r.watch(9, "1s");
    assert_eq!((s, v["events"].as_array().map(Vec::len)), (200, Some(20)));
}

#[test]
fn spans_from_an_instance_are_recorded_as_data_plane_traffic() {
    let c = Collector::start(&[]);
    let r = client(&c);
    r.heartbeat_ok("orders", "orders-7", "30s", 1);
    assert!(r.instance("orders", "orders-7").unwrap()["last_traffic_unix_ms"].is_null());
    let mut req = otlp::traces(
        "orders",
        vec![otlp::span(
            &otlp::new_trace_id(),
            &otlp::new_span_id(),
            "GET /o",
        )],
    );
    if let Some(res) = req.resource_spans[0].resource.as_mut() {
        res.attributes
            .push(otlp::str_attr("service.instance.id", "orders-7"));
    }
    let reply = otlp::post_traces(&c.otlp_http_base(), &req);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let at = wait_for(Duration::from_secs(5), "traffic to be recorded", || {
        r.instance("orders", "orders-7").unwrap()["last_traffic_unix_ms"].as_u64()
    });
    assert!(at > 0);
}
