//! The registry across a SIGKILL: revisions continue, every lease gets a
//! fresh full TTL, and instances that keep renewing never show as expired.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skein_e2e::registry::{metric, RegistryClient};
use skein_e2e::{wait_until, Collector};

const N: usize = 50;

#[test]
fn restart_after_sigkill_keeps_revisions_and_raises_no_expiry() {
    let mut c = Collector::start(&[]);
    let r = RegistryClient::new(c.http_base());
    for i in 0..N {
        r.heartbeat_ok("fleet", &format!("f{i}"), "3s", 1);
    }
    let before = r.revision();
    assert_eq!(before, N as u64);
    c.kill9();
    // Down for longer than the TTL.
    std::thread::sleep(Duration::from_secs(4));
    c.restart();
    let r = RegistryClient::new(c.http_base());
    assert_eq!(r.revision(), before, "revisions continue where they were");

    // Every instance keeps renewing (every second) from now on.
    let base = Arc::new(Mutex::new(c.http_base()));
    let stop = Arc::new(AtomicBool::new(false));
    let rev = Arc::new(AtomicU64::new(2));
    let renewer = {
        let (base, stop, rev) = (base.clone(), stop.clone(), rev.clone());
        std::thread::spawn(move || {
            let r = RegistryClient::new(base.lock().unwrap().clone());
            while !stop.load(Ordering::Relaxed) {
                let n = rev.fetch_add(1, Ordering::Relaxed);
                for i in 0..N {
                    let (s, v) = r.heartbeat("fleet", &format!("f{i}"), "3s", n);
                    assert_eq!(s, 200, "renewal f{i} rev {n}: {v}");
                }
                std::thread::sleep(Duration::from_millis(1000));
            }
        })
    };
    // Watch for 5 s (beyond one TTL after the restart): nothing expires.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        let (s, v) = r.services(&[]);
        assert_eq!(s, 200);
        let svc = &v["services"][0];
        assert_eq!(
            svc["expired"], 0,
            "an instance expired after the restart: {v}"
        );
        assert_eq!(svc["alive"].as_u64(), Some(N as u64));
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    renewer.join().unwrap();
    assert_eq!(r.revision(), before, "renewals are not revisions");
    let m = r.metrics();
    assert_eq!(
        metric(&m, "skein_registry_instances{state=\"expired\"}"),
        Some(0.0)
    );
    assert_eq!(metric(&m, "skein_registry_revision"), Some(before as f64));
    // A membership change after the restart takes the next revision.
    let reply = r.heartbeat_ok("fleet", "newcomer", "3s", 1);
    assert_eq!(reply["revision"].as_u64(), Some(before + 1));
    // And the watch history survived too.
    let (s, v) = r.watch(1, "1s");
    assert_eq!(s, 200);
    assert_eq!(v["events"].as_array().map(Vec::len), Some(N + 1));
    // Stopped renewing: they do expire (the fresh TTL was only a grace).
    wait_until(
        Duration::from_secs(10),
        "the fleet to expire once renewals stop",
        || {
            r.services(&[("service", "fleet")]).1["services"][0]["expired"].as_u64()
                == Some(N as u64 + 1)
        },
    );
}
