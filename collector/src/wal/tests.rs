//! WAL tests over real files in temp dirs.

use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn cfg(dir: &Path, segment_bytes: u64, max_backlog: u64) -> WalConfig {
    WalConfig {
        segment_bytes,
        max_backlog_bytes: max_backlog,
        max_pending_appends: 64,
        ..WalConfig::new(dir)
    }
}

fn metrics() -> WalMetrics {
    WalMetrics::register(&prometheus::Registry::new()).unwrap()
}

fn open(dir: &Path, segment_bytes: u64) -> (Wal, WalReader) {
    Wal::open(cfg(dir, segment_bytes, u64::MAX), metrics()).unwrap()
}

fn open_with(dir: &Path, segment_bytes: u64) -> (Wal, WalReader, WalMetrics) {
    let m = metrics();
    let (wal, reader) = Wal::open(cfg(dir, segment_bytes, u64::MAX), m.clone()).unwrap();
    (wal, reader, m)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn read_all(reader: &mut WalReader) -> Vec<WalRecord> {
    let mut out = Vec::new();
    loop {
        let batch = reader
            .next_batch(1 << 20, Duration::from_millis(30))
            .unwrap();
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

fn payload(i: usize) -> Vec<u8> {
    format!("record-{i}-{}", "x".repeat(i % 50)).into_bytes()
}

fn append_all(
    rt: &tokio::runtime::Runtime,
    wal: &Wal,
    payloads: impl IntoIterator<Item = Vec<u8>>,
) -> Vec<Lsn> {
    payloads
        .into_iter()
        .map(|p| rt.block_on(wal.append(RecordKind::Spans, p)).unwrap())
        .collect()
}

fn last_segment(dir: &Path) -> std::path::PathBuf {
    segment::list(dir).unwrap().pop().unwrap().1
}

#[test]
fn round_trip_across_segments_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let (wal, mut reader) = open(dir.path(), 256);
    let mut ends = Vec::new();
    for i in 0..100 {
        let kind = if i % 2 == 0 {
            RecordKind::Spans
        } else {
            RecordKind::Logs
        };
        ends.push(rt.block_on(wal.append(kind, payload(i))).unwrap());
    }
    assert!(ends.windows(2).all(|w| w[0] < w[1]), "end LSNs increase");
    assert_eq!(wal.durable_lsn(), ends[99]);
    assert!(
        segment::list(dir.path()).unwrap().len() > 5,
        "segments rotated"
    );
    let got = read_all(&mut reader);
    assert_eq!(got.len(), 100);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.payload, payload(i));
        assert_eq!(r.end_lsn, ends[i]);
        assert_eq!(
            r.kind,
            if i % 2 == 0 {
                RecordKind::Spans
            } else {
                RecordKind::Logs
            }
        );
    }
    assert_eq!(reader.position(), ends[99]);
    // Checkpoint half-way: old segments go, reopen replays only what follows.
    let before = segment::list(dir.path()).unwrap().len();
    wal.checkpoint(ends[49]).unwrap();
    assert_eq!(wal.checkpoint_lsn(), ends[49]);
    assert_eq!(wal.backlog_bytes(), ends[99] - ends[49]);
    let after = segment::list(dir.path()).unwrap();
    assert!(after.len() < before && after[0].0 <= ends[49]);
    wal.close();
    let (wal, mut reader) = open(dir.path(), 256);
    assert_eq!(wal.checkpoint_lsn(), ends[49]);
    let replay = read_all(&mut reader);
    assert_eq!(replay.len(), 50);
    assert_eq!(replay[0].payload, payload(50));
    assert_eq!(replay[49].end_lsn, ends[99]);
    let end = rt
        .block_on(wal.append(RecordKind::Spans, b"after".to_vec()))
        .unwrap();
    assert!(end > ends[99]);
    let more = read_all(&mut reader);
    assert_eq!((more.len(), more[0].payload.as_slice()), (1, &b"after"[..]));
}

#[test]
fn reader_follows_rotation_while_tailing() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let (wal, mut reader) = open(dir.path(), 64);
    for i in 0..30 {
        let end = rt
            .block_on(wal.append(RecordKind::Logs, payload(i)))
            .unwrap();
        let batch = reader.next_batch(1 << 20, Duration::from_secs(1)).unwrap();
        assert_eq!(batch.len(), 1, "record {i}");
        assert_eq!(
            (batch[0].payload.clone(), batch[0].end_lsn),
            (payload(i), end)
        );
    }
    assert!(segment::list(dir.path()).unwrap().len() > 10);
}

#[test]
fn reader_wakes_on_append_and_respects_max_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let (wal, mut reader) = open(dir.path(), 1 << 20);
    let waiter = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let batch = reader.next_batch(1 << 20, Duration::from_secs(20)).unwrap();
        (batch, started.elapsed(), reader)
    });
    std::thread::sleep(Duration::from_millis(100));
    rt.block_on(wal.append(RecordKind::Spans, b"wake".to_vec()))
        .unwrap();
    let (batch, waited, mut reader) = waiter.join().unwrap();
    assert_eq!(batch.len(), 1);
    assert!(waited < Duration::from_secs(10));
    append_all(&rt, &wal, (0..10).map(|_| vec![0u8; 100]));
    assert_eq!(
        reader.next_batch(250, Duration::ZERO).unwrap().len(),
        3,
        "stops once past max_bytes"
    );
    assert_eq!(
        reader.next_batch(1, Duration::ZERO).unwrap().len(),
        1,
        "at least one record"
    );
    assert_eq!(read_all(&mut reader).len(), 6);
    assert!(reader
        .next_batch(1 << 20, Duration::from_millis(10))
        .unwrap()
        .is_empty());
}

#[test]
fn concurrent_appends_are_all_durable_and_ordered() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let (wal, mut reader, m) = open_with(dir.path(), 4096);
    let ends: Vec<(usize, Lsn)> = rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..16usize {
            let wal = wal.clone();
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for i in 0..50usize {
                    let id = t * 1000 + i;
                    out.push((
                        id,
                        wal.append(RecordKind::Logs, id.to_le_bytes().to_vec())
                            .await
                            .unwrap(),
                    ));
                }
                out
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    assert_eq!(ends.len(), 800);
    assert_eq!(m.appended_records.get(), 800);
    assert!(m.group_records.get_sample_count() <= 800);
    let got = read_all(&mut reader);
    assert_eq!(got.len(), 800);
    assert!(got.windows(2).all(|w| w[0].end_lsn < w[1].end_lsn));
    let by_end: std::collections::HashMap<Lsn, &WalRecord> =
        got.iter().map(|r| (r.end_lsn, r)).collect();
    for (id, end) in ends {
        assert_eq!(by_end[&end].payload, id.to_le_bytes());
    }
}

#[test]
fn torn_and_corrupt_tails_are_repaired() {
    for damage in ["truncate", "flip"] {
        let dir = tempfile::tempdir().unwrap();
        let rt = rt();
        let (wal, _) = open(dir.path(), 1 << 20);
        let ends = append_all(&rt, &wal, (0..10).map(payload));
        wal.close();
        let path = last_segment(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        match damage {
            "truncate" => bytes.truncate(n - 3),
            _ => bytes[n - 2] ^= 0xff,
        }
        std::fs::write(&path, &bytes).unwrap();
        let (wal, mut reader, m) = open_with(dir.path(), 1 << 20);
        let got = read_all(&mut reader);
        assert_eq!(
            got.len(),
            9,
            "{damage}: the damaged last record is dropped, the rest kept"
        );
        assert_eq!(got[8].payload, payload(8));
        assert_eq!(m.torn_tail_repairs.get(), 1);
        assert_eq!(m.dropped_segments.get(), 0);
        // The damaged record's LSNs are never reused.
        let end = rt
            .block_on(wal.append(RecordKind::Logs, b"new".to_vec()))
            .unwrap();
        assert!(
            end > ends[9],
            "{damage}: {end} reuses LSNs up to {}",
            ends[9]
        );
        let more = read_all(&mut reader);
        assert_eq!(
            (more.len(), more[0].end_lsn),
            (1, end),
            "{damage}: appends continue after the repair"
        );
        wal.close();
        let (_, mut reader, m) = open_with(dir.path(), 1 << 20);
        let all = read_all(&mut reader);
        assert_eq!(all.len(), 10);
        assert_eq!(all[9].payload, b"new");
        assert_eq!(
            m.torn_tail_repairs.get(),
            0,
            "the repair itself left a clean log"
        );
    }
}

#[test]
fn corruption_before_later_segments_drops_them() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let (wal, _) = open(dir.path(), 200);
    let ends = append_all(&rt, &wal, (0..40).map(payload));
    wal.close();
    let segs = segment::list(dir.path()).unwrap();
    assert!(segs.len() > 4);
    let victim = &segs[1].1;
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[segment::HEADER as usize + 12] ^= 0x55; // first record's payload
    std::fs::write(victim, &bytes).unwrap();
    let (wal, mut reader, m) = open_with(dir.path(), 200);
    let got = read_all(&mut reader);
    assert!(!got.is_empty() && got.len() < 40);
    for (i, r) in got.iter().enumerate() {
        assert_eq!((r.payload.clone(), r.end_lsn), (payload(i), ends[i]));
    }
    assert_eq!(
        got.last().unwrap().end_lsn,
        segs[1].0,
        "cut at the damaged record"
    );
    assert_eq!(m.torn_tail_repairs.get(), 1);
    assert_eq!(m.dropped_segments.get() as usize, segs.len() - 2);
    let end = rt
        .block_on(wal.append(RecordKind::Spans, b"fresh".to_vec()))
        .unwrap();
    assert!(end > ends[39], "LSNs of dropped records are not reused");
    assert_eq!(read_all(&mut reader).len(), 1);
    assert_eq!(
        wal.backlog_bytes(),
        segs[1].0 + record::framed_len(5),
        "the LSN gap is not backlog"
    );
    wal.close();
    let (_, mut reader) = open(dir.path(), 200);
    assert_eq!(read_all(&mut reader).len(), got.len() + 1);
}

#[test]
fn crash_while_creating_a_segment_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let (wal, _) = open(dir.path(), 1 << 20);
    let ends = append_all(&rt, &wal, (0..5).map(payload));
    wal.close();
    // The next segment's file exists but its header never made it to disk.
    let torn = segment::path_for(dir.path(), ends[4]);
    std::fs::write(&torn, b"SKWAL0").unwrap();
    let (wal, mut reader, m) = open_with(dir.path(), 1 << 20);
    assert_eq!(read_all(&mut reader).len(), 5);
    assert_eq!(m.torn_tail_repairs.get(), 1);
    assert_eq!(
        wal.durable_lsn(),
        ends[4],
        "no gap needed: nothing past the last record existed"
    );
    let end = rt
        .block_on(wal.append(RecordKind::Spans, b"x".to_vec()))
        .unwrap();
    assert_eq!(end, ends[4] + record::framed_len(1));
    assert_eq!(read_all(&mut reader).len(), 1);
}

#[test]
fn a_header_contradicting_the_chain_is_corruption_not_a_skip() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let (wal, _) = open(dir.path(), 100);
    let ends = append_all(&rt, &wal, (0..20).map(payload));
    wal.close();
    let segs = segment::list(dir.path()).unwrap();
    assert!(segs.len() > 3);
    // Segment 2 claims the previous segment ends before segment 1 starts.
    let mut bytes = std::fs::read(&segs[2].1).unwrap();
    bytes[16..24].copy_from_slice(&0u64.to_le_bytes());
    std::fs::write(&segs[2].1, &bytes).unwrap();
    let (_, mut reader) = open(dir.path(), 100);
    let got = read_all(&mut reader);
    assert_eq!(
        got.last().unwrap().end_lsn,
        segs[2].0,
        "segments 0 and 1 are read in full"
    );
    assert_eq!(
        got.iter().map(|r| r.end_lsn).collect::<Vec<_>>(),
        ends[..got.len()].to_vec()
    );
}

#[test]
fn checkpoint_off_a_record_end_replays_from_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let (wal, _) = open(dir.path(), 1 << 20);
    let ends = append_all(&rt, &wal, (0..5).map(payload));
    wal.close();
    checkpoint::write(dir.path(), ends[1] + 3).unwrap();
    let (wal, mut reader) = open(dir.path(), 1 << 20);
    assert_eq!(wal.checkpoint_lsn(), ends[1]);
    let got = read_all(&mut reader);
    assert_eq!(
        got.iter().map(|r| r.end_lsn).collect::<Vec<_>>(),
        ends[2..].to_vec()
    );
}

#[test]
fn checkpoint_past_the_end_moves_the_log_forward() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let (wal, _) = open(dir.path(), 1 << 20);
    let ends = append_all(&rt, &wal, (0..5).map(payload));
    wal.close();
    // The indexer had more than the log now holds (e.g. a lost tail).
    checkpoint::write(dir.path(), ends[4] + 5000).unwrap();
    let (wal, mut reader) = Wal::open(cfg(dir.path(), 1 << 20, 100), metrics()).unwrap();
    assert_eq!(wal.checkpoint_lsn(), ends[4] + 5000);
    assert_eq!(wal.backlog_bytes(), 0);
    assert!(read_all(&mut reader).is_empty());
    let end = rt
        .block_on(wal.append(RecordKind::Spans, b"x".to_vec()))
        .unwrap();
    assert!(end > ends[4] + 5000);
    assert_eq!(read_all(&mut reader).len(), 1);
}

#[test]
fn backlog_limit_pushes_back_until_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let m = metrics();
    let (wal, mut reader) = Wal::open(cfg(dir.path(), 1 << 20, 1000), m.clone()).unwrap();
    let mut accepted = 0;
    let err = loop {
        match rt.block_on(wal.append(RecordKind::Spans, vec![7u8; 100])) {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 100, "backpressure never came");
    };
    assert!(
        matches!(err, WalError::Backpressure { retry_after } if retry_after == Duration::from_secs(1)),
        "{err}"
    );
    assert!(wal.backlog_bytes() > 1000);
    assert_eq!(m.rejected.with_label_values(&["backlog"]).get(), 1);
    assert_eq!(m.backlog_bytes.get() as u64, wal.backlog_bytes());
    let got = read_all(&mut reader);
    assert_eq!(got.len(), accepted);
    wal.checkpoint(got.last().unwrap().end_lsn).unwrap();
    assert_eq!((wal.backlog_bytes(), m.backlog_bytes.get()), (0, 0));
    rt.block_on(wal.append(RecordKind::Spans, vec![1])).unwrap();
}

#[test]
fn disk_full_write_is_cut_away_and_later_appends_work() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let (wal, mut reader, m) = open_with(dir.path(), 1 << 20);
    let first = append_all(&rt, &wal, [b"before".to_vec()]);
    let path = last_segment(dir.path());
    let len = segment::file_len(&path);
    *wal.inner.shared.inject_write_error.lock() = Some(libc::ENOSPC);
    let err = rt
        .block_on(wal.append(RecordKind::Spans, vec![9u8; 1000]))
        .unwrap_err();
    assert!(matches!(err, WalError::DiskFull), "{err}");
    assert_eq!(
        segment::file_len(&path),
        len,
        "the partial write is cut away"
    );
    assert_eq!(wal.durable_lsn(), first[0]);
    assert_eq!(m.rejected.with_label_values(&["disk_full"]).get(), 1);
    *wal.inner.shared.inject_write_error.lock() = Some(libc::EIO);
    assert!(matches!(
        rt.block_on(wal.append(RecordKind::Spans, vec![1])),
        Err(WalError::Io { .. })
    ));
    let after = rt
        .block_on(wal.append(RecordKind::Logs, b"after".to_vec()))
        .unwrap();
    assert_eq!(after, first[0] + record::framed_len(5));
    let got = read_all(&mut reader);
    assert_eq!(
        got.iter().map(|r| r.payload.as_slice()).collect::<Vec<_>>(),
        [&b"before"[..], b"after"]
    );
    wal.close();
    let (_, mut reader) = open(dir.path(), 1 << 20);
    assert_eq!(
        read_all(&mut reader).len(),
        2,
        "nothing unacknowledged came back"
    );
}

#[test]
fn oversized_record_is_refused_without_touching_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let (wal, _) = open(dir.path(), 1 << 20);
    let huge = vec![0u8; record::MAX_PAYLOAD + 1];
    assert!(matches!(
        rt.block_on(wal.append(RecordKind::Spans, huge)),
        Err(WalError::Io { .. })
    ));
    assert_eq!(wal.durable_lsn(), 0);
}

#[test]
fn close_answers_in_flight_appends_and_refuses_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let (wal, mut reader, m) = open_with(dir.path(), 1 << 16);
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let wal = wal.clone();
            rt.spawn(async move { wal.append(RecordKind::Spans, payload(i)).await })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(2));
    wal.close();
    wal.close();
    let mut acked = Vec::new();
    for t in tasks {
        match rt.block_on(t).unwrap() {
            Ok(end) => acked.push(end),
            Err(WalError::Closed) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(matches!(
        rt.block_on(wal.append(RecordKind::Spans, b"late".to_vec())),
        Err(WalError::Closed)
    ));
    assert!(m.rejected.with_label_values(&["closed"]).get() >= 1);
    // Everything acknowledged is durable and readable; the reader drains,
    // then returns at once.
    let got = read_all(&mut reader);
    acked.sort_unstable();
    assert_eq!(got.iter().map(|r| r.end_lsn).collect::<Vec<_>>(), acked);
    let started = std::time::Instant::now();
    assert!(reader
        .next_batch(1024, Duration::from_secs(5))
        .unwrap()
        .is_empty());
    assert!(started.elapsed() < Duration::from_secs(2));
    // A checkpoint still works after close (the indexer finishes its commit).
    if let Some(last) = acked.last() {
        wal.checkpoint(*last).unwrap();
    }
    let (_, mut reader) = open(dir.path(), 1 << 16);
    assert!(read_all(&mut reader).is_empty());
}

#[test]
fn one_process_per_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, reader) = open(dir.path(), 1 << 20);
    let err = Wal::open(cfg(dir.path(), 1 << 20, u64::MAX), metrics())
        .err()
        .unwrap();
    assert!(err.to_string().contains("in use"), "{err}");
    wal.close();
    let (wal2, _) = open(dir.path(), 1 << 20);
    drop(wal2);
    drop((wal, reader));
    // Dropping every handle closes the log too.
    let _ = open(dir.path(), 1 << 20);
}

#[test]
fn truncating_the_last_segment_at_every_offset_reopens_to_a_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let (wal, _) = open(dir.path(), 1 << 20);
    let payloads: Vec<Vec<u8>> = (0..4).map(|i| vec![i as u8; i * 7]).collect();
    append_all(&rt, &wal, payloads.clone());
    wal.close();
    let path = last_segment(dir.path());
    let original = std::fs::read(&path).unwrap();
    for cut in 0..=original.len() {
        let copy = tempfile::tempdir().unwrap();
        std::fs::write(
            copy.path().join(path.file_name().unwrap()),
            &original[..cut],
        )
        .unwrap();
        let (wal, mut reader) = open(copy.path(), 1 << 20);
        let got: Vec<Vec<u8>> = read_all(&mut reader)
            .into_iter()
            .map(|r| r.payload)
            .collect();
        assert!(
            got.len() <= payloads.len() && got[..] == payloads[..got.len()],
            "cut at {cut}"
        );
        if cut == original.len() {
            assert_eq!(got.len(), payloads.len());
        }
        rt.block_on(wal.append(RecordKind::Spans, b"next".to_vec()))
            .unwrap();
        assert_eq!(read_all(&mut reader).len(), 1, "cut at {cut}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random payloads round-trip across segments; cutting the last segment at
    /// any byte reopens to a prefix of what was written, and LSNs keep growing.
    #[test]
    fn any_truncation_reopens_to_a_prefix(
        sizes in prop::collection::vec(0usize..300, 1..30),
        cut in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let rt = rt();
        let (wal, mut reader) = open(dir.path(), 512);
        let payloads: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, n)| vec![i as u8; *n]).collect();
        let ends = append_all(&rt, &wal, payloads.clone());
        let got = read_all(&mut reader);
        prop_assert_eq!(got.iter().map(|r| &r.payload).collect::<Vec<_>>(), payloads.iter().collect::<Vec<_>>());
        wal.close();
        let path = last_segment(dir.path());
        let len = segment::file_len(&path) as usize;
        let cut = cut.index(len + 1) as u64;
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(cut).unwrap();
        let (wal, mut reader) = open(dir.path(), 512);
        let got = read_all(&mut reader);
        prop_assert!(got.len() <= payloads.len());
        for ((r, p), end) in got.iter().zip(&payloads).zip(&ends) {
            prop_assert_eq!(&r.payload, p);
            prop_assert_eq!(r.end_lsn, *end);
        }
        let next = rt.block_on(wal.append(RecordKind::Spans, b"next".to_vec())).unwrap();
        prop_assert!(next > got.last().map_or(0, |r| r.end_lsn));
        let more = read_all(&mut reader);
        prop_assert_eq!(more.len(), 1);
        prop_assert_eq!(more[0].end_lsn, next);
    }
}

const CRASH_CHILD_DIR: &str = "SKEIN_WAL_CRASH_CHILD_DIR";

/// Child process of `sigkill_loses_no_acknowledged_record`: appends from
/// several tasks forever, printing each acknowledgement.
#[test]
#[ignore = "run by sigkill_loses_no_acknowledged_record as a child process"]
fn crash_child() {
    let Ok(dir) = std::env::var(CRASH_CHILD_DIR) else {
        return;
    };
    let rt = rt();
    let (wal, _) = open(Path::new(&dir), 2048);
    rt.block_on(async {
        let tasks: Vec<_> = (0..8u64)
            .map(|t| {
                let wal = wal.clone();
                tokio::spawn(async move {
                    for i in 0u64.. {
                        let id = (t << 32) | i;
                        let body = id.to_le_bytes().repeat(1 + (i % 40) as usize);
                        let end = wal.append(RecordKind::Spans, body).await.unwrap();
                        println!("acked {id} {end}");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn sigkill_loses_no_acknowledged_record() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: Vec<(u64, Lsn)> = Vec::new();
    for (round, wait_for) in [150usize, 600, 40].into_iter().enumerate() {
        let mut child = std::process::Command::new(&exe)
            .args([
                "--exact",
                "wal::tests::crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_CHILD_DIR, dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        let parse = |line: String, acked: &mut Vec<(u64, Lsn)>| {
            let mut it = line
                .strip_prefix("acked ")?
                .split(' ')
                .map(|w| w.parse::<u64>());
            acked.push((it.next()?.ok()?, it.next()?.ok()?));
            Some(())
        };
        for line in lines.by_ref() {
            if parse(line.unwrap(), &mut acked).is_some() {
                seen += 1;
                if seen >= wait_for {
                    break;
                }
            }
        }
        assert_eq!(seen, wait_for, "round {round}: the child stopped early");
        child.kill().unwrap(); // SIGKILL, mid-stream
        child.wait().unwrap();
        for line in lines {
            // Acknowledgements printed before the kill count too.
            let Ok(line) = line else { break };
            parse(line, &mut acked);
        }
        let (wal, mut reader) = open(dir.path(), 2048);
        let got: std::collections::HashMap<Lsn, Vec<u8>> = read_all(&mut reader)
            .into_iter()
            .map(|r| (r.end_lsn, r.payload))
            .collect();
        for (id, end) in &acked {
            let payload = got
                .get(end)
                .unwrap_or_else(|| panic!("round {round}: acked record {id} at {end} lost"));
            assert_eq!(
                payload[..8],
                id.to_le_bytes(),
                "round {round}: record at {end}"
            );
        }
        wal.close();
    }
}

#[test]
fn handles_cross_threads() {
    fn send_sync<T: Send + Sync + Clone>() {}
    fn send<T: Send>() {}
    send_sync::<Wal>();
    send::<WalReader>();
}

/// Regression: the WAL directory was deleted (or restored from an older
/// copy) while the index kept a commit payload at LSN L. New records must get
/// LSNs above L, or the indexer would skip them as "already applied".
#[test]
fn lsns_start_above_min_lsn_when_the_wal_is_behind_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = rt();
    let floor = 1_000_000;
    let open_floor = |dir: &Path| {
        Wal::open(
            WalConfig {
                min_lsn: floor,
                ..cfg(dir, 1 << 20, u64::MAX)
            },
            metrics(),
        )
        .unwrap()
    };

    // Empty directory.
    let empty = tmp.path().join("empty");
    let (wal, mut reader) = open_floor(&empty);
    let lsns = append_all(&rt, &wal, (0..3).map(payload));
    assert!(lsns.iter().all(|&l| l > floor), "{lsns:?}");
    let got = read_all(&mut reader);
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.end_lsn > floor));
    wal.close();

    // An existing log whose end is below the floor: old records stay
    // readable, new ones land above the floor.
    let behind = tmp.path().join("behind");
    let (wal, _reader) = open(&behind, 1 << 20);
    let old = append_all(&rt, &wal, (0..5).map(payload));
    assert!(old.iter().all(|&l| l < floor));
    wal.close();
    drop(wal);
    let (wal, mut reader) = open_floor(&behind);
    let new = append_all(&rt, &wal, (5..7).map(payload));
    assert!(new.iter().all(|&l| l > floor), "{new:?}");
    let got = read_all(&mut reader);
    let payloads: Vec<Vec<u8>> = got.iter().map(|r| r.payload.clone()).collect();
    assert_eq!(payloads, (0..7).map(payload).collect::<Vec<_>>());
    wal.close();
}
