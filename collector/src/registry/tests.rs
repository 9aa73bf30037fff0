//! Unit tests of the registry with a manual clock and a temporary data dir.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::*;

const T0: u64 = 1_700_000_000_000;

fn cfg(dir: &std::path::Path) -> RegistryConfig {
    RegistryConfig {
        dir: dir.join("registry"),
        expired_retention: Duration::from_secs(3600),
        history: 100,
        max_instances: 1000,
    }
}

fn open(dir: &std::path::Path, clock: &ManualClock) -> Registry {
    open_with(cfg(dir), clock)
}

fn open_with(cfg: RegistryConfig, clock: &ManualClock) -> Registry {
    let metrics = RegistryMetrics::register(&prometheus::Registry::new()).unwrap();
    Registry::open(cfg, Arc::new(clock.clone()), metrics).unwrap()
}

fn hb(instance: &str, rev: u64, ttl_ms: u32) -> Heartbeat {
    Heartbeat {
        service: "checkout".into(),
        instance: instance.into(),
        ttl_ms,
        heartbeat_revision: rev,
        address: "10.0.0.1:80".into(),
        metadata: BTreeMap::new(),
        health: Health::Passing,
        source: Source::Http,
    }
}

#[tokio::test]
async fn revisions_bump_on_membership_changes_only() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let r = open(dir.path(), &clock);
    let a = r.heartbeat(hb("a", 1, 10_000)).await.unwrap();
    assert_eq!((a.revision, a.outcome), (1, HeartbeatOutcome::Registered));
    let b = r.heartbeat(hb("b", 1, 10_000)).await.unwrap();
    assert_eq!(b.revision, 2);
    clock.advance_ms(1000);
    let renewed = r.heartbeat(hb("a", 2, 10_000)).await.unwrap();
    assert_eq!(
        (renewed.revision, renewed.outcome),
        (2, HeartbeatOutcome::Renewed)
    );
    assert_eq!(renewed.expires_at_unix_ms, T0 + 11_000);
    let mut changed = hb("a", 3, 10_000);
    changed.health = Health::Warning;
    let upd = r.heartbeat(changed).await.unwrap();
    assert_eq!((upd.revision, upd.outcome), (3, HeartbeatOutcome::Updated));
    let v = r.get("checkout", "a").unwrap();
    assert_eq!((v.create_revision, v.mod_revision, v.version), (1, 3, 2));
    assert_eq!(v.heartbeat_revision, 3);
    assert_eq!(
        r.deregister("checkout", "b", Some("rollout"))
            .await
            .unwrap(),
        4
    );
    let v = r.get("checkout", "b").unwrap();
    assert_eq!(v.state, InstanceState::Deregistered);
    assert_eq!(v.deregister_reason.as_deref(), Some("rollout"));
    let (_, events) = r.events_since(1, 100).unwrap();
    let kinds: Vec<_> = events.iter().map(|e| (e.revision, e.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            (1, EventType::Registered),
            (2, EventType::Registered),
            (3, EventType::Updated),
            (4, EventType::Deregistered)
        ]
    );
}

#[tokio::test]
async fn stale_heartbeats_are_refused_and_never_revive() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let r = open(dir.path(), &clock);
    r.heartbeat(hb("a", 5, 2000)).await.unwrap();
    for stale in [5, 4, 0] {
        match r.heartbeat(hb("a", stale, 2000)).await {
            Err(RegistryError::Stale { last_accepted }) => assert_eq!(last_accepted, 5),
            other => panic!("expected stale, got {other:?}"),
        }
    }
    clock.advance_ms(2000);
    assert_eq!(r.tick(), 1);
    assert_eq!(
        r.get("checkout", "a").unwrap().state,
        InstanceState::Expired
    );
    assert!(matches!(
        r.heartbeat(hb("a", 4, 2000)).await,
        Err(RegistryError::Stale { last_accepted: 5 })
    ));
    let v = r.get("checkout", "a").unwrap();
    assert_eq!((v.state, v.mod_revision), (InstanceState::Expired, 2));
    assert_eq!(r.revision(), 2);
    // A fresh heartbeat revives it as a new incarnation: a restart.
    let back = r.heartbeat(hb("a", 6, 2000)).await.unwrap();
    assert_eq!(back.outcome, HeartbeatOutcome::Revived);
    let v = r.get("checkout", "a").unwrap();
    assert_eq!(
        (v.state, v.create_revision, v.version),
        (InstanceState::Alive, 3, 1)
    );
    assert_eq!((v.restarts_total, v.restarts_last_hour), (1, 1));
    assert_eq!(r.metrics().restarts.get(), 1);
    let (_, ev) = r.events_since(3, 1).unwrap();
    assert_eq!(ev[0].kind, EventType::Revived);
}

#[tokio::test]
async fn expiry_happens_at_the_deadline_not_before() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let r = open(dir.path(), &clock);
    r.heartbeat(hb("quiet", 1, 2000)).await.unwrap();
    r.heartbeat(hb("chatty", 1, 2000)).await.unwrap();
    for i in 2..=10 {
        clock.advance_ms(500);
        r.heartbeat(hb("chatty", i, 2000)).await.unwrap();
        let quiet = r.get("checkout", "quiet").unwrap();
        if clock.now_ms() < T0 + 2000 {
            assert_eq!(r.tick(), 0, "nothing due at +{}", clock.now_ms() - T0);
            assert_eq!(quiet.state, InstanceState::Alive);
        } else {
            r.tick();
            let quiet = r.get("checkout", "quiet").unwrap();
            assert_eq!(quiet.state, InstanceState::Expired);
            assert_eq!(quiet.expired_at_unix_ms, Some(T0 + 2000));
        }
    }
    assert_eq!(
        r.get("checkout", "chatty").unwrap().state,
        InstanceState::Alive
    );
    // One heap entry per alive instance, however often it renews.
    assert!(r.inner.locked.lock().state.armed() <= 1);
    clock.advance_ms(1999);
    assert_eq!(r.tick(), 0);
    clock.advance_ms(1);
    assert_eq!(r.tick(), 1);
}

#[tokio::test]
async fn a_shorter_ttl_moves_the_deadline_earlier() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let r = open(dir.path(), &clock);
    r.heartbeat(hb("a", 1, 3_600_000)).await.unwrap();
    r.heartbeat(hb("a", 2, 1000)).await.unwrap();
    clock.advance_ms(1000);
    assert_eq!(r.tick(), 1);
}

#[tokio::test]
async fn watch_ranges_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let mut c = cfg(dir.path());
    c.history = 5;
    let r = open_with(c, &clock);
    for i in 0..8 {
        r.heartbeat(hb(&format!("i{i}"), 1, 10_000)).await.unwrap();
    }
    let (current, ev) = r.events_since(5, 2).unwrap();
    assert_eq!(current, 8);
    assert_eq!(
        ev.iter().map(|e| e.revision).collect::<Vec<_>>(),
        vec![5, 6]
    );
    assert!(r.events_since(9, 10).unwrap().1.is_empty());
    assert!(matches!(
        r.events_since(3, 10),
        Err(RegistryError::Compacted { oldest: 4 })
    ));
    assert_eq!(r.oldest_revision(), 4);
    // List at a past revision: instances registered later are absent.
    let (rev, at6) = r.list_at(Some(6)).unwrap();
    assert_eq!((rev, at6.len()), (6, 6));
    assert!(matches!(
        r.list_at(Some(2)),
        Err(RegistryError::Compacted { .. })
    ));
}

#[tokio::test]
async fn list_at_a_revision_shows_the_state_then() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let r = open(dir.path(), &clock);
    r.heartbeat(hb("a", 1, 10_000)).await.unwrap(); // 1
    r.heartbeat(hb("b", 1, 10_000)).await.unwrap(); // 2
    r.deregister("checkout", "a", None).await.unwrap(); // 3
    let (_, at2) = r.list_at(Some(2)).unwrap();
    let states: Vec<_> = at2.iter().map(|v| (v.instance.as_str(), v.state)).collect();
    assert_eq!(
        states,
        vec![("a", InstanceState::Alive), ("b", InstanceState::Alive)]
    );
    let (_, at1) = r.list_at(Some(1)).unwrap();
    assert_eq!(at1.len(), 1);
    let (rev, now) = r.list_at(None).unwrap();
    assert_eq!((rev, now[0].state), (3, InstanceState::Deregistered));
}

#[tokio::test]
async fn subscribers_see_events_in_order_and_learn_when_they_lag() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let mut c = cfg(dir.path());
    c.max_instances = 10_000;
    let r = open_with(c, &clock);
    let mut sub = r.subscribe();
    r.heartbeat(hb("a", 1, 1000)).await.unwrap();
    clock.advance_ms(1000);
    r.tick();
    let e1 = sub.recv().await.unwrap();
    let e2 = sub.recv().await.unwrap();
    assert_eq!((e1.revision, e1.kind), (1, EventType::Registered));
    assert_eq!((e2.revision, e2.kind), (2, EventType::Expired));

    let mut slow = r.subscribe();
    for i in 0..(subscribe::CAPACITY + 10) {
        r.heartbeat(hb(&format!("x{i}"), 1, 60_000)).await.unwrap();
    }
    match slow.recv().await {
        Err(SubscriptionError::Lagged {
            missed,
            resume_from,
        }) => {
            assert_eq!(missed, 10);
            assert_eq!(resume_from, 3);
        }
        other => panic!("expected lag, got {other:?}"),
    }
    assert_eq!(r.metrics().subscriber_lagged.get(), 10);
}

#[tokio::test]
async fn state_survives_a_restart_and_leases_get_a_fresh_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    {
        let r = open(dir.path(), &clock);
        r.heartbeat(hb("a", 1, 5000)).await.unwrap();
        r.heartbeat(hb("b", 1, 5000)).await.unwrap();
        r.heartbeat(hb("gone", 1, 1000)).await.unwrap();
        r.heartbeat(hb("left", 1, 5000)).await.unwrap();
        r.deregister("checkout", "left", Some("bye")).await.unwrap();
        clock.advance_ms(1000);
        r.tick(); // "gone" expires: revision 6
        r.heartbeat(hb("a", 7, 5000)).await.unwrap(); // a renewal
        r.close().await;
    }
    // Down for far longer than the TTL.
    clock.advance_ms(60_000);
    let r = open(dir.path(), &clock);
    assert_eq!(r.revision(), 6);
    let a = r.get("checkout", "a").unwrap();
    assert_eq!((a.state, a.heartbeat_revision), (InstanceState::Alive, 7));
    assert_eq!(a.expires_at_unix_ms, Some(clock.now_ms() + 5000));
    assert_eq!(
        r.get("checkout", "gone").unwrap().state,
        InstanceState::Expired
    );
    assert_eq!(
        r.get("checkout", "left")
            .unwrap()
            .deregister_reason
            .as_deref(),
        Some("bye")
    );
    assert_eq!(
        r.tick(),
        0,
        "no lease expires because the collector was down"
    );
    assert!(matches!(
        r.heartbeat(hb("a", 7, 5000)).await,
        Err(RegistryError::Stale { last_accepted: 7 })
    ));
    // History survives too, and revisions continue.
    assert_eq!(r.events_since(1, 100).unwrap().1.len(), 6);
    assert_eq!(r.heartbeat(hb("c", 1, 5000)).await.unwrap().revision, 7);
    // Snapshot + new log, then another restart.
    r.write_snapshot().await.unwrap();
    r.heartbeat(hb("d", 1, 5000)).await.unwrap();
    r.close().await;
    let r = open(dir.path(), &clock);
    assert_eq!(r.revision(), 8);
    assert_eq!(r.snapshot().len(), 6);
    assert_eq!(r.events_since(1, 100).unwrap().1.len(), 8);
    let files: Vec<String> = std::fs::read_dir(dir.path().join("registry"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(files.contains(&"snapshot.json".to_string()), "{files:?}");
    assert!(
        files.contains(&"log.1".to_string()) && !files.contains(&"log.0".to_string()),
        "{files:?}"
    );
}

#[tokio::test]
async fn a_torn_log_tail_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    {
        let r = open(dir.path(), &clock);
        r.heartbeat(hb("a", 1, 5000)).await.unwrap();
        r.heartbeat(hb("b", 1, 5000)).await.unwrap();
        r.close().await;
    }
    let log = dir.path().join("registry/log.0");
    let mut bytes = std::fs::read(&log).unwrap();
    let n = bytes.len();
    bytes.truncate(n - 5);
    std::fs::write(&log, &bytes).unwrap();
    let r = open(dir.path(), &clock);
    assert_eq!(r.revision(), 1);
    assert_eq!(r.heartbeat(hb("b", 1, 5000)).await.unwrap().revision, 2);
    r.close().await;
    let r = open(dir.path(), &clock);
    assert_eq!(r.revision(), 2);
}

#[tokio::test]
async fn traffic_is_joined_into_snapshots_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let mut c = cfg(dir.path());
    c.max_instances = 2;
    let r = open_with(c, &clock);
    r.heartbeat(hb("a", 1, 5000)).await.unwrap();
    let obs = r.traffic_observer();
    clock.advance_ms(42);
    obs.seen(&["a", "other"]);
    obs.seen(&["third"]);
    assert_eq!(
        r.get("checkout", "a").unwrap().last_traffic_unix_ms,
        Some(T0 + 42)
    );
    assert_eq!(r.snapshot()[0].last_traffic_unix_ms, Some(T0 + 42));
    assert_eq!(r.metrics().traffic_overflow.get(), 1);
}

#[tokio::test]
async fn full_registry_refuses_new_instances_but_renews_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let mut c = cfg(dir.path());
    c.max_instances = 1;
    let r = open_with(c, &clock);
    r.heartbeat(hb("a", 1, 5000)).await.unwrap();
    assert!(matches!(
        r.heartbeat(hb("b", 1, 5000)).await,
        Err(RegistryError::Full { max: 1 })
    ));
    r.heartbeat(hb("a", 2, 5000)).await.unwrap();
}

#[tokio::test]
async fn dead_instances_are_purged_after_retention() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let r = open(dir.path(), &clock);
    r.heartbeat(hb("a", 1, 1000)).await.unwrap();
    clock.advance_ms(1000);
    r.tick();
    clock.advance_ms(3_600_000);
    r.tick();
    assert!(r.get("checkout", "a").is_none());
    assert_eq!(r.revision(), 2, "a purge is not a revision");
    r.close().await;
    let r = open(dir.path(), &clock);
    assert!(r.get("checkout", "a").is_none());
}

#[tokio::test]
async fn liveness_summary_counts_alive_and_lists_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let r = open(dir.path(), &clock);
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        r.heartbeat(hb(name, 1, if i == 0 { 1000 } else { 60_000 }))
            .await
            .unwrap();
    }
    let mut other = hb("x", 1, 60_000);
    other.service = "payments".into();
    r.heartbeat(other).await.unwrap();
    r.deregister("checkout", "c", Some("drained"))
        .await
        .unwrap();
    clock.advance_ms(1000);
    r.tick();
    let (alive, others) = r.liveness_summary();
    let mut alive: Vec<(String, usize)> =
        alive.into_iter().map(|(s, n)| (s.to_string(), n)).collect();
    alive.sort();
    assert_eq!(alive, vec![("checkout".into(), 1), ("payments".into(), 1)]);
    let mut rest: Vec<(String, InstanceState)> =
        others.into_iter().map(|v| (v.instance, v.state)).collect();
    rest.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        rest,
        vec![
            ("a".into(), InstanceState::Expired),
            ("c".into(), InstanceState::Deregistered)
        ]
    );
    // The same as counting the full snapshot.
    let full = r.snapshot();
    assert_eq!(
        full.iter()
            .filter(|v| v.state == InstanceState::Alive)
            .count(),
        2
    );
}

#[tokio::test]
async fn a_name_longer_than_64_kib_is_found_again() {
    // etcd keys are not bounded like the HTTP API's names.
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let r = open(dir.path(), &clock);
    let name = "n".repeat(70_000);
    let first = r.heartbeat(hb(&name, 1, 10_000)).await.unwrap();
    let again = r.heartbeat(hb(&name, 2, 10_000)).await.unwrap();
    assert_eq!(again.outcome, HeartbeatOutcome::Renewed);
    assert_eq!(again.lease_id, first.lease_id);
    let got = r.get("checkout", &name).unwrap();
    assert_eq!(got.instance, name);
    assert_eq!(got.address, "10.0.0.1:80");
}
