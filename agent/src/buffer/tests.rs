use std::time::Duration;

use super::*;

const POLICIES: [SyncPolicy; 2] = [
    SyncPolicy::Always,
    SyncPolicy::Interval(Duration::from_millis(20)),
];

fn open(dir: &Path, max: u64) -> (Buffer, BufferWriter) {
    open_with(dir, max, SyncPolicy::Always)
}

fn open_with(dir: &Path, max: u64, policy: SyncPolicy) -> (Buffer, BufferWriter) {
    Buffer::open(dir, max, policy, BufferMetrics::for_tests()).unwrap()
}

fn fsyncs(b: &Buffer) -> u64 {
    b.inner.metrics.fsync_seconds.get_sample_count()
}

async fn batch(r: &mut Reader) -> Batch {
    let cancel = tokio_util::sync::CancellationToken::new();
    tokio::time::timeout(
        Duration::from_secs(5),
        r.next_batch(1000, 1 << 20, Duration::from_millis(1), &cancel),
    )
    .await
    .expect("a batch in time")
    .expect("a batch")
}

#[tokio::test]
async fn appends_read_back_in_order_and_batches_split_by_kind() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _w) = open(dir.path(), 1 << 20);
    b.append(Kind::Traces, 2, b"ab".to_vec()).await.unwrap();
    b.append(Kind::Traces, 1, b"c".to_vec()).await.unwrap();
    b.append(Kind::Logs, 5, b"log".to_vec()).await.unwrap();
    let mut r = b.reader();
    let t = batch(&mut r).await;
    assert_eq!(
        (t.kind, t.items, &t.payload[..]),
        (Kind::Traces, 3, &b"abc"[..])
    );
    let l = batch(&mut r).await;
    assert_eq!(
        (l.kind, l.items, &l.payload[..]),
        (Kind::Logs, 5, &b"log"[..])
    );
    assert_eq!(b.usage().0, l.end);
    b.ack(l.end).unwrap();
    assert_eq!(b.usage().0, 0);
}

#[tokio::test]
async fn full_buffer_refuses_until_acked() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _w) = open(dir.path(), 4096);
    let mut n = 0;
    let err = loop {
        match b.append(Kind::Logs, 1, vec![7u8; 1000]).await {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(n, 4);
    assert!(matches!(err, BufferError::Full { .. }), "{err}");
    let mut r = b.reader();
    let first = batch(&mut r).await;
    b.ack(first.end).unwrap();
    b.append(Kind::Logs, 1, vec![7u8; 1000]).await.unwrap();
    assert!(matches!(
        b.append(Kind::Logs, 1, vec![0u8; 5000]).await,
        Err(BufferError::TooLarge { .. })
    ));
}

#[tokio::test]
async fn reopen_resumes_after_the_ack_across_segments_and_repairs_a_torn_tail() {
    for policy in POLICIES {
        reopen_resumes(policy).await;
    }
}

async fn reopen_resumes(policy: SyncPolicy) {
    let dir = tempfile::tempdir().unwrap();
    // 1 MiB buffer → 128 KiB segments; 40 × 10 KiB spans several.
    {
        let (b, w) = open_with(dir.path(), 1 << 20, policy);
        for i in 0..40u8 {
            b.append(Kind::Traces, 1, vec![i; 10_000]).await.unwrap();
        }
        let mut r = b.reader();
        let cancel = tokio_util::sync::CancellationToken::new();
        let first = r
            .next_batch(10, 1 << 30, Duration::from_millis(1), &cancel)
            .await
            .unwrap();
        assert_eq!(first.items, 10);
        b.ack(first.end).unwrap();
        drop(r);
        drop(b);
        w.join();
    }
    assert!(segment::list(dir.path()).unwrap().len() > 2);
    // A torn frame at the end of the last segment.
    let last = *segment::list(dir.path()).unwrap().last().unwrap();
    let p = segment::path(dir.path(), last);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes.extend_from_slice(&[9, 9, 9]);
    std::fs::write(&p, bytes).unwrap();

    let (b, _w) = open_with(dir.path(), 1 << 20, policy);
    let mut r = b.reader();
    let mut seen = Vec::new();
    while seen.len() < 30 {
        let bt = batch(&mut r).await;
        for chunk in bt.payload.chunks(10_000) {
            seen.push(chunk[0]);
        }
        b.ack(bt.end).unwrap();
    }
    assert_eq!(
        seen,
        (10..40).collect::<Vec<u8>>(),
        "exactly the unacked frames, in order ({policy:?})"
    );
    // Acked segments are gone; a new append still works after the repair.
    assert_eq!(segment::list(dir.path()).unwrap().len(), 1);
    b.append(Kind::Logs, 1, b"after".to_vec()).await.unwrap();
    assert_eq!(batch(&mut r).await.payload, b"after");
}

#[tokio::test]
async fn concurrent_appends_are_group_committed() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _w) = open(dir.path(), 64 << 20);
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let b = b.clone();
            tokio::spawn(async move { b.append(Kind::Traces, 1, vec![i as u8; 100]).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let mut r = b.reader();
    assert_eq!(batch(&mut r).await.items, 50);
}

#[tokio::test]
async fn always_syncs_before_the_append_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _w) = open_with(dir.path(), 1 << 20, SyncPolicy::Always);
    let before = fsyncs(&b);
    b.append(Kind::Traces, 1, b"x".to_vec()).await.unwrap();
    assert_eq!(fsyncs(&b), before + 1);
}

#[tokio::test]
async fn interval_acks_on_write_and_syncs_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _w) = open_with(
        dir.path(),
        1 << 20,
        SyncPolicy::Interval(Duration::from_millis(20)),
    );
    b.append(Kind::Traces, 1, b"x".to_vec()).await.unwrap();
    // Readable at once: the exporter does not wait for the sync.
    let mut r = b.reader();
    assert_eq!(batch(&mut r).await.payload, b"x");
    // The syncer makes it durable within a few intervals without another append.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while fsyncs(&b) == 0 {
        assert!(std::time::Instant::now() < deadline, "no background fsync");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Idle: nothing written since, so nothing more to sync.
    let synced = fsyncs(&b);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(fsyncs(&b), synced, "an idle buffer is not synced again");
}

#[tokio::test]
async fn interval_syncs_the_tail_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (b, w) = open_with(
        dir.path(),
        1 << 20,
        SyncPolicy::Interval(Duration::from_secs(60)),
    );
    b.append(Kind::Logs, 1, b"last words".to_vec())
        .await
        .unwrap();
    let metrics = b.inner.metrics.clone();
    assert_eq!(
        metrics.fsync_seconds.get_sample_count(),
        0,
        "not within 60 s"
    );
    drop(b);
    tokio::task::spawn_blocking(move || w.join()).await.unwrap();
    assert_eq!(
        metrics.fsync_seconds.get_sample_count(),
        1,
        "synced on shutdown"
    );
}

#[tokio::test]
async fn an_unreadable_ack_resends_everything_buffered() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (b, w) = open(dir.path(), 1 << 20);
        b.append(Kind::Logs, 1, b"one".to_vec()).await.unwrap();
        b.append(Kind::Logs, 1, b"two".to_vec()).await.unwrap();
        let mut r = b.reader();
        let bt = batch(&mut r).await;
        b.ack(bt.end).unwrap();
        drop((r, b));
        w.join();
    }
    // A power loss between the ack's rename and its data reaching the disk.
    std::fs::write(dir.path().join("ack"), b"").unwrap();
    let (b, _w) = open(dir.path(), 1 << 20);
    let mut r = b.reader();
    assert_eq!(batch(&mut r).await.payload, b"onetwo");
}
