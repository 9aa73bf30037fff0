//! The etcd source against a real etcd: leased keys become instances, lease
//! expiry or revocation expires them, a plain delete deregisters, and a
//! restarted collector resumes the watch from its stored etcd revision.

use std::time::Duration;

use skein_e2e::etcd::Etcd;
use skein_e2e::registry::RegistryClient;
use skein_e2e::{wait_until, Collector};

const WAIT: Duration = Duration::from_secs(15);

fn state(r: &RegistryClient, service: &str, instance: &str) -> Option<String> {
    r.state(service, instance)
}

#[test]
fn etcd_leases_drive_instances_and_the_watch_resumes_after_a_restart() {
    let etcd = Etcd::start();
    let mut c = Collector::start(&[
        "--etcd-endpoint",
        etcd.endpoint(),
        "--etcd-prefix",
        "/services/",
    ]);
    let r = RegistryClient::new(c.http_base());

    // A key put with a lease appears as an alive instance.
    let lease_a = etcd.grant(60);
    etcd.ctl(&[
        "put",
        "--lease",
        &lease_a,
        "/services/cart/a",
        "10.0.0.1:8080",
    ]);
    wait_until(WAIT, "cart/a to appear", || {
        state(&r, "cart", "a").as_deref() == Some("alive")
    });
    let a = r.instance("cart", "a").unwrap();
    assert_eq!(a["address"], "10.0.0.1:8080");
    assert_eq!(a["source"], "etcd");

    // Revoking the lease deletes the key: that is an expiry.
    etcd.ctl(&["lease", "revoke", &lease_a]);
    wait_until(WAIT, "cart/a to expire on revoke", || {
        state(&r, "cart", "a").as_deref() == Some("expired")
    });

    // A lease that simply runs out: expiry too.
    let short = etcd.grant(2);
    etcd.ctl(&[
        "put",
        "--lease",
        &short,
        "/services/cart/b",
        r#"{"address":"10.0.0.2:80","metadata":{"zone":"z1"}}"#,
    ]);
    wait_until(WAIT, "cart/b to appear", || {
        state(&r, "cart", "b").as_deref() == Some("alive")
    });
    assert_eq!(r.instance("cart", "b").unwrap()["metadata"]["zone"], "z1");
    wait_until(WAIT, "cart/b to expire with its lease", || {
        state(&r, "cart", "b").as_deref() == Some("expired")
    });

    // A plain delete while the lease lives: a graceful deregistration.
    let lease_c = etcd.grant(60);
    etcd.ctl(&[
        "put",
        "--lease",
        &lease_c,
        "/services/cart/c",
        "10.0.0.3:80",
    ]);
    wait_until(WAIT, "cart/c to appear", || {
        state(&r, "cart", "c").as_deref() == Some("alive")
    });
    etcd.ctl(&["del", "/services/cart/c"]);
    wait_until(WAIT, "cart/c to be deregistered", || {
        state(&r, "cart", "c").as_deref() == Some("deregistered")
    });

    // Restart: changes made while Skein is down arrive from the stored revision.
    let (status, _) = c.terminate();
    assert!(status.success());
    let lease_d = etcd.grant(60);
    etcd.ctl(&[
        "put",
        "--lease",
        &lease_d,
        "/services/cart/d",
        "10.0.0.4:80",
    ]);
    etcd.ctl(&["put", "/services/cart/c", "10.0.0.3:81"]);
    etcd.ctl(&["del", "/services/cart/c"]);
    c.restart();
    let r = RegistryClient::new(c.http_base());
    wait_until(WAIT, "cart/d (put while down) to appear", || {
        state(&r, "cart", "d").as_deref() == Some("alive")
    });
    wait_until(
        WAIT,
        "cart/c (re-put and deleted while down) to be deregistered",
        || {
            r.instance("cart", "c")
                .is_some_and(|v| v["state"] == "deregistered" && v["restarts_total"] == 1)
        },
    );
    assert_eq!(state(&r, "cart", "a").as_deref(), Some("expired"));
    assert!(
        c.log_lines()
            .iter()
            .any(|l| l.contains("etcd watch resuming from revision")),
        "the source resumes from its stored revision"
    );
    // Its watch events replayed in order: registered (revived) then deregistered.
    let (_, v) = r.watch(1, "1s");
    let kinds: Vec<(String, String)> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["instance"].as_str().unwrap().to_string(),
                e["type"].as_str().unwrap().to_string(),
            )
        })
        .filter(|(i, _)| i == "c")
        .collect();
    let kinds: Vec<&str> = kinds.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(
        kinds,
        vec!["registered", "deregistered", "registered", "deregistered"]
    );
}
