//! `skein-agent --tail`: lines written while the file is rotated by rename
//! (once while the agent runs, once while it is stopped) and by
//! copy-truncate reach the collector exactly once and in order.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use skein_e2e::agent::Agent;
use skein_e2e::{poll_until, wait_until, Collector};

const SERVICE: &str = "tailed-app";

/// Line `seq`: even ones plain text, odd ones JSON.
fn write_lines(path: &Path, marker: &str, seqs: std::ops::Range<usize>) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the log");
    for seq in seqs {
        let line = if seq % 2 == 0 {
            format!("2024-05-01 12:00:00 INFO {marker} line {seq}\n")
        } else {
            format!("{{\"level\":\"warn\",\"msg\":\"{marker} line {seq}\",\"seq\":{seq}}}\n")
        };
        f.write_all(line.as_bytes()).expect("write");
    }
    f.sync_all().expect("fsync");
}

/// Wait until the agent has read `path` to its end.
fn caught_up(agent: &Agent, path: &Path) {
    let size = std::fs::metadata(path).expect("stat").len();
    let p = path.to_string_lossy().to_string();
    wait_until(
        Duration::from_secs(20),
        "the agent has read the file",
        || {
            agent.status()["tail"].as_array().is_some_and(|files| {
                files
                    .iter()
                    .any(|f| f["path"] == p.as_str() && f["offset"] == size)
            })
        },
    );
}

fn seq_of(log: &Value) -> Option<usize> {
    let body = log["body"].as_str()?;
    body.rsplit(' ').next()?.parse().ok()
}

#[test]
fn rotations_and_a_restart_deliver_every_line_once_in_order() {
    let collector = Collector::start_fast(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("app.log");
    let marker = skein_e2e::chain::marker();
    let glob = format!("{}/*.log", dir.path().display());
    let mut agent = Agent::builder(&collector)
        .args(&[
            "--tail",
            &glob,
            "--tail-poll-interval",
            "50ms",
            "--service",
            SERVICE,
        ])
        .start();

    write_lines(&log, &marker, 0..100);
    caught_up(&agent, &log);
    // Rotation 1, by rename, while the agent runs: the rest of the old inode
    // is drained, then the new file is followed.
    write_lines(&log, &marker, 100..150);
    std::fs::rename(&log, dir.path().join("app.log.1")).expect("rename");
    write_lines(&log, &marker, 150..250);
    caught_up(&agent, &log);

    // Rotation 2, by rename, while the agent is stopped.
    agent.terminate();
    write_lines(&log, &marker, 250..300);
    std::fs::rename(&log, dir.path().join("app.log.2")).expect("rename");
    write_lines(&log, &marker, 300..350);
    agent.restart();
    caught_up(&agent, &log);

    // Rotation 3, copy-truncate (logrotate's copytruncate): copy, then cut
    // the file to zero while it stays open.
    std::fs::copy(&log, dir.path().join("app.log.3")).expect("copy");
    File::options()
        .write(true)
        .open(&log)
        .expect("open")
        .set_len(0)
        .expect("truncate");
    write_lines(&log, &marker, 350..400);
    caught_up(&agent, &log);

    let api = collector.api();
    let mut logs = Vec::new();
    let ok = poll_until(Duration::from_secs(30), || {
        logs = api.logs(&[("query", &marker), ("service", SERVICE), ("limit", "5000")]);
        logs.len() >= 400
    });
    let mut got: Vec<(u64, usize)> = logs
        .iter()
        .map(|l| {
            (
                l["timestamp_unix_nano"].as_u64().unwrap_or(0),
                seq_of(l).unwrap_or(usize::MAX),
            )
        })
        .collect();
    got.sort();
    let seqs: Vec<usize> = got.iter().map(|(_, s)| *s).collect();
    assert!(ok, "only {} of 400 lines arrived", logs.len());
    assert_eq!(
        seqs,
        (0..400).collect::<Vec<_>>(),
        "every line exactly once, in the order written"
    );

    // JSON lines are taken apart, plain ones get their severity read.
    let odd = logs.iter().find(|l| seq_of(l) == Some(1)).expect("line 1");
    assert_eq!(odd["severity_text"], "warn", "{odd}");
    assert_eq!(odd["attributes"]["seq"], 1, "{odd}");
    let even = logs.iter().find(|l| seq_of(l) == Some(0)).expect("line 0");
    assert_eq!(even["severity_text"], "INFO", "{even}");
    assert!(agent.metric("skein_agent_tail_rotations_total{kind=\"truncate\"}") >= 1.0);
}
