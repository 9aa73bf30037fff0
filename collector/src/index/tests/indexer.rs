use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::*;
use crate::index::{IndexError, IndexerControl};
use crate::query::{LogQuery, LogStore, TraceStore};

fn one_span(trace: u8, lsn: Lsn) -> IndexInput {
    span_input(
        &traces(resource("svc", vec![]), vec![span(trace, 1, "op", 1, 1)]),
        lsn,
    )
}

fn wait_until(what: &str, deadline: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
    started.elapsed()
}

type Running = (
    IndexerControl,
    std::thread::JoinHandle<Result<(), IndexError>>,
    CancellationToken,
);

fn spawn(env: &mut Env, source: &MemSource) -> Running {
    let shutdown = CancellationToken::new();
    let (control, join) = env
        .take_indexer()
        .spawn(source.clone(), shutdown.clone())
        .unwrap();
    (control, join, shutdown)
}

fn stop((_, join, shutdown): Running) {
    shutdown.cancel();
    join.join().unwrap().unwrap();
}

#[test]
fn checkpoint_restores_after_reopen_and_replay_is_skipped() {
    let mut env = Env::new();
    env.index(&[
        one_span(1, 100),
        log_input(
            &logs(resource("svc", vec![]), vec![log("hello", 9, 1)]),
            150,
        ),
    ]);
    assert_eq!(env.checkpoints(), (150, 150));
    let mut env = env.reopen();
    assert_eq!(env.checkpoints(), (150, 150));
    assert_eq!(env.indexer.as_ref().unwrap().control().committed_lsn(), 150);

    // The WAL replays from an older checkpoint: committed records are skipped.
    env.index(&[
        one_span(1, 100),
        log_input(
            &logs(resource("svc", vec![]), vec![log("hello", 9, 1)]),
            150,
        ),
        one_span(2, 200),
    ]);
    assert_eq!(env.spans.trace(&tid(1)).unwrap().len(), 1);
    assert_eq!(env.spans.trace(&tid(2)).unwrap().len(), 1);
    let logs_found = env
        .logs
        .search_logs(&LogQuery {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(logs_found.len(), 1);
    assert_eq!(
        env.metric(
            "skein_index_replay_skipped_total",
            Some(("signal", "spans"))
        ),
        1.0
    );
    assert_eq!(
        env.metric("skein_index_replay_skipped_total", Some(("signal", "logs"))),
        1.0
    );
    // No log was indexed after the reopen, so the log index kept its checkpoint.
    let env = env.reopen();
    assert_eq!(env.checkpoints(), (200, 150));
}

#[test]
fn checkpoint_is_the_max_payload_over_partitions() {
    let mut env = Env::new();
    env.index(&[one_span(1, 10)]);
    env.clock.advance(HOUR);
    env.index(&[one_span(2, 20)]);
    // The clock going back keeps writing to the newest partition.
    env.clock.advance(HOUR * 2);
    env.clock.set(t0());
    env.index(&[one_span(3, 30)]);
    assert!(!env.dir.path().join("spans/2024050112").exists());
    let env = env.reopen();
    assert_eq!(env.checkpoints().0, 30);
    assert_eq!(env.spans.trace(&tid(3)).unwrap().len(), 1);
}

#[test]
fn retention_drops_whole_old_partitions() {
    let mut env = Env::new();
    env.index(&[one_span(1, 1)]);
    env.index(&[log_input(
        &logs(resource("old", vec![]), vec![log("old line", 9, 1)]),
        2,
    )]);
    env.clock.advance(HOUR * 24 * 7);
    env.index(&[one_span(2, 3)]);
    // Hour 10 ended at 11:00; 7 days later at 10:xx it is not yet expired.
    env.enforce_retention();
    assert_eq!(env.spans.trace(&tid(1)).unwrap().len(), 1);

    env.clock.advance(HOUR);
    env.index(&[one_span(3, 4)]);
    env.enforce_retention();
    assert!(env.spans.trace(&tid(1)).unwrap().is_empty());
    assert_eq!(env.spans.trace(&tid(2)).unwrap().len(), 1);
    assert!(!env.dir.path().join("spans/2024050110").exists());
    assert!(!env.dir.path().join("logs/2024050110").exists());
    assert_eq!(
        env.metric(
            "skein_index_partitions_dropped_total",
            Some(("signal", "spans"))
        ),
        1.0
    );
    assert_eq!(
        env.metric(
            "skein_index_partitions_dropped_total",
            Some(("signal", "logs"))
        ),
        1.0
    );
    assert_eq!(env.spans.services().unwrap(), ["svc"]);
    // Retention also applies at open.
    env.clock.advance(HOUR * 24 * 30);
    let env = env.reopen();
    assert!(env.spans.trace(&tid(3)).unwrap().is_empty());
    assert!(env.spans.services().unwrap().is_empty());
}

#[test]
fn garbage_payload_is_skipped_and_neighbours_indexed() {
    let mut env = Env::new();
    let source = MemSource::default();
    source.push(one_span(1, 10));
    source.push(IndexInput::new(
        Signal::Spans,
        vec![0xff, 0xff, 0xff, 0x01],
        20,
    ));
    source.push(IndexInput::new(
        Signal::Logs,
        b"\x0a\x05garbage".to_vec(),
        30,
    ));
    source.push(one_span(2, 40));
    let running = spawn(&mut env, &source);
    wait_until("neighbours", Duration::from_secs(5), || {
        env.spans.trace(&tid(2)).map(|s| s.len()).ok() == Some(1)
    });
    assert_eq!(running.0.committed_lsn(), 40);
    stop(running);
    assert_eq!(env.spans.trace(&tid(1)).unwrap().len(), 1);
    assert_eq!(source.state(|s| s.checkpoints.last().copied()), Some(40));
}

#[test]
fn pause_stops_reading_and_resume_indexes_within_two_seconds() {
    let mut env = Env::new();
    let source = MemSource::default();
    let running = spawn(&mut env, &source);
    let control = running.0.clone();
    // Let the indexer block in a read first: pause must still take effect.
    std::thread::sleep(Duration::from_millis(50));
    control.pause();
    assert!(control.is_paused());
    let reads = source.state(|s| s.reads);
    source.push(one_span(1, 10));
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(source.state(|s| (s.reads, s.queue.len())), (reads, 1));
    assert!(env.spans.trace(&tid(1)).unwrap().is_empty());

    control.resume();
    let took = wait_until("resumed indexing", Duration::from_secs(5), || {
        env.spans.trace(&tid(1)).map(|s| s.len()).ok() == Some(1)
    });
    assert!(took < Duration::from_secs(2), "visible after {took:?}");
    stop(running);
}

#[test]
fn shutdown_commits_what_was_read() {
    let mut env = Env::new();
    let source = MemSource::default();
    for i in 1..=20u8 {
        source.push(one_span(i, u64::from(i)));
    }
    let running = spawn(&mut env, &source);
    wait_until("drained", Duration::from_secs(5), || {
        source.state(|s| s.queue.is_empty())
    });
    stop(running);
    for i in 1..=20u8 {
        assert_eq!(env.spans.trace(&tid(i)).unwrap().len(), 1, "trace {i}");
    }
    assert_eq!(source.state(|s| s.checkpoints.last().copied()), Some(20));
    let env = env.reopen();
    assert_eq!(env.checkpoints().0, 20);
}
