//! Fresh ids and timestamps for pre-encoded batches.
//!
//! A minimal protobuf wire walker finds the byte offsets of every id and
//! timestamp field in a template's encoded buffer, once. [`Template::patch`]
//! then copies the buffer and writes fresh values there: a new trace id per
//! trace, a new span id per item (parent ids follow their parent's new span
//! id, so the trace structure survives), and every timestamp shifted so that
//! the batch looks like it happened just now.

use std::ops::Range;

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;

use super::Signal;

/// Produces trace and span ids that are unique (a counter) yet look random
/// (the counter goes through a keyed bijective mix), so indexes see realistic
/// id distributions. Generators with different `stream`s never collide.
#[derive(Debug, Clone)]
pub struct IdGen {
    traces: u64,
    spans: u64,
    keys: [u64; 3],
}

impl IdGen {
    /// `stream` separates concurrent generators (up to 2^40 ids each);
    /// `seed` makes runs differ from one another.
    pub fn new(stream: u32, seed: u64) -> Self {
        let start = u64::from(stream) << 40;
        Self {
            traces: start,
            spans: start,
            keys: [
                mix(seed ^ 0x5eed_0001),
                mix(seed ^ 0x5eed_0002),
                mix(seed ^ 0x5eed_0003),
            ],
        }
    }

    pub fn trace_id(&mut self) -> [u8; 16] {
        loop {
            let c = self.traces;
            self.traces += 1;
            // `hi` alone is unique per counter value: `mix` is a bijection.
            let (hi, lo) = (mix(c ^ self.keys[0]), mix(c ^ self.keys[1]));
            if hi != 0 {
                let mut id = [0; 16];
                id[..8].copy_from_slice(&hi.to_be_bytes());
                id[8..].copy_from_slice(&lo.to_be_bytes());
                return id;
            }
        }
    }

    pub fn span_id(&mut self) -> [u8; 8] {
        loop {
            let c = self.spans;
            self.spans += 1;
            let v = mix(c ^ self.keys[2]);
            if v != 0 {
                return v.to_be_bytes();
            }
        }
    }
}

/// SplitMix64's finaliser: a bijection on u64 with good avalanche.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Which ids an item carries, as indexes into the fresh ids of one patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ItemIds {
    pub trace: u32,
    pub span: u32,
    pub parent: Option<u32>,
}

/// An encoded export request plus where its ids and timestamps live.
#[derive(Debug, Clone)]
pub struct Template {
    signal: Signal,
    buf: Vec<u8>,
    items: usize,
    traces: usize,
    /// Offsets of 16-byte trace ids, with the trace they belong to.
    trace_slots: Vec<(usize, u32)>,
    /// Offsets of 8-byte span ids (own and parent), with the span they name.
    span_slots: Vec<(usize, u32)>,
    /// Offsets of fixed64 timestamps.
    time_slots: Vec<usize>,
    /// The "now" the template was generated at; patching shifts it to the
    /// current time.
    base_time_ns: u64,
}

/// One ready-to-send request.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The encoded `Export*ServiceRequest`.
    pub bytes: Bytes,
    /// Spans or log records in it.
    pub items: usize,
    /// The fresh trace ids, in template trace order.
    pub trace_ids: Vec<[u8; 16]>,
}

impl Template {
    /// Indexes the encoded request `buf`, whose items (in encoding order)
    /// carry `ids`; `base_time_ns` is the "now" its timestamps relate to.
    pub(super) fn new(
        signal: Signal,
        buf: Vec<u8>,
        ids: &[ItemIds],
        base_time_ns: u64,
    ) -> Result<Self> {
        let (trace_f, span_f, parent_f, time_f): (u32, u32, Option<u32>, [u32; 2]) = match signal {
            Signal::Spans => (1, 2, Some(4), [7, 8]),
            Signal::Logs => (9, 10, None, [1, 11]),
        };
        let items = item_ranges(&buf)?;
        ensure!(
            items.len() == ids.len(),
            "template walk found {} items, generated {}",
            items.len(),
            ids.len()
        );
        let mut t = Template {
            signal,
            items: ids.len(),
            traces: ids.iter().map(|i| i.trace as usize + 1).max().unwrap_or(0),
            trace_slots: Vec::with_capacity(ids.len()),
            span_slots: Vec::with_capacity(ids.len() * 2),
            time_slots: Vec::with_capacity(ids.len() * 2),
            base_time_ns,
            buf: Vec::new(),
        };
        for (range, id) in items.into_iter().zip(ids) {
            let mut seen_parent = false;
            for f in fields(&buf, range)? {
                let len = f.payload.len();
                if f.number == trace_f {
                    ensure!(
                        f.wire == 2 && len == 16,
                        "trace id field: wire {} len {len}",
                        f.wire
                    );
                    t.trace_slots.push((f.payload.start, id.trace));
                } else if f.number == span_f {
                    ensure!(
                        f.wire == 2 && len == 8,
                        "span id field: wire {} len {len}",
                        f.wire
                    );
                    t.span_slots.push((f.payload.start, id.span));
                } else if Some(f.number) == parent_f {
                    let parent = id.parent.context("parent id on a root span")?;
                    ensure!(
                        f.wire == 2 && len == 8,
                        "parent id field: wire {} len {len}",
                        f.wire
                    );
                    t.span_slots.push((f.payload.start, parent));
                    seen_parent = true;
                } else if time_f.contains(&f.number) {
                    ensure!(
                        f.wire == 1,
                        "timestamp field {} has wire type {}",
                        f.number,
                        f.wire
                    );
                    t.time_slots.push(f.payload.start);
                }
            }
            ensure!(
                seen_parent == id.parent.is_some(),
                "parent id missing from an encoded span"
            );
        }
        ensure!(
            t.trace_slots.len() == t.items,
            "every item needs a trace id"
        );
        t.buf = buf;
        Ok(t)
    }

    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// Items (spans or log records) per batch.
    pub fn items(&self) -> usize {
        self.items
    }

    /// Encoded size of a batch.
    pub fn encoded_len(&self) -> usize {
        self.buf.len()
    }

    /// A copy of the template with fresh ids from `ids` and timestamps moved
    /// so that the template's generation time becomes `now_ns`.
    pub fn patch(&self, ids: &mut IdGen, now_ns: u64) -> Batch {
        let mut buf = self.buf.clone();
        let trace_ids: Vec<[u8; 16]> = (0..self.traces).map(|_| ids.trace_id()).collect();
        let span_ids: Vec<[u8; 8]> = (0..self.items).map(|_| ids.span_id()).collect();
        for &(off, t) in &self.trace_slots {
            buf[off..off + 16].copy_from_slice(&trace_ids[t as usize]);
        }
        for &(off, s) in &self.span_slots {
            buf[off..off + 8].copy_from_slice(&span_ids[s as usize]);
        }
        let delta = now_ns.wrapping_sub(self.base_time_ns);
        for &off in &self.time_slots {
            let mut v = [0; 8];
            v.copy_from_slice(&buf[off..off + 8]);
            let shifted = u64::from_le_bytes(v).wrapping_add(delta);
            buf[off..off + 8].copy_from_slice(&shifted.to_le_bytes());
        }
        Batch {
            bytes: Bytes::from(buf),
            items: self.items,
            trace_ids,
        }
    }
}

/// One field of a protobuf message: number, wire type, payload byte range.
struct Field {
    number: u32,
    wire: u8,
    payload: Range<usize>,
}

fn varint(buf: &[u8], pos: &mut usize, end: usize) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        ensure!(*pos < end, "truncated varint");
        let b = buf[*pos];
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    bail!("varint longer than 10 bytes")
}

/// The fields of the message encoded in `buf[range]`.
fn fields(buf: &[u8], range: Range<usize>) -> Result<Vec<Field>> {
    let (mut pos, end) = (range.start, range.end);
    let mut out = Vec::new();
    while pos < end {
        let key = varint(buf, &mut pos, end)?;
        let (number, wire) = ((key >> 3) as u32, (key & 7) as u8);
        let mut start = pos;
        match wire {
            0 => {
                varint(buf, &mut pos, end)?;
            }
            1 => pos += 8,
            2 => {
                let len = varint(buf, &mut pos, end)? as usize;
                start = pos;
                pos += len;
            }
            5 => pos += 4,
            w => bail!("unsupported wire type {w} in field {number}"),
        }
        ensure!(pos <= end, "field {number} runs past its message");
        out.push(Field {
            number,
            wire,
            payload: start..pos,
        });
    }
    Ok(out)
}

/// Payload ranges of the length-delimited fields numbered `number`.
fn children(buf: &[u8], range: Range<usize>, number: u32) -> Result<Vec<Range<usize>>> {
    Ok(fields(buf, range)?
        .into_iter()
        .filter(|f| f.number == number && f.wire == 2)
        .map(|f| f.payload)
        .collect())
}

/// Byte ranges of the spans or log records of an encoded export request, in
/// order. Both requests nest alike: `1: resource_* → 2: scope_* → 2: items`.
fn item_ranges(buf: &[u8]) -> Result<Vec<Range<usize>>> {
    let mut out = Vec::new();
    for resource in children(buf, 0..buf.len(), 1)? {
        for scope in children(buf, resource, 2)? {
            out.extend(children(buf, scope, 2)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::DataGen;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::LogRecord;
    use opentelemetry_proto::tonic::trace::v1::Span;
    use prost::Message;
    use std::collections::HashSet;

    fn spans_of(req: &ExportTraceServiceRequest) -> Vec<Span> {
        req.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| s.spans.clone())
            .collect()
    }

    fn logs_of(req: &ExportLogsServiceRequest) -> Vec<LogRecord> {
        req.resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| s.log_records.clone())
            .collect()
    }

    /// Clears the fields patching may change, so the rest can be compared.
    fn without_ids(mut span: Span) -> Span {
        span.trace_id.clear();
        span.span_id.clear();
        span.parent_span_id.clear();
        span.start_time_unix_nano = 0;
        span.end_time_unix_nano = 0;
        span
    }

    #[test]
    fn patched_spans_get_fresh_unique_ids_and_keep_everything_else() {
        let template = DataGen::new(7).spans_template(512, 10).unwrap();
        let original = ExportTraceServiceRequest::decode(template.buf.as_slice()).unwrap();
        let mut ids = IdGen::new(0, 42);
        let delta = 3_600_000_000_000;
        let mut seen_spans = HashSet::new();
        let mut seen_traces = HashSet::new();
        for _ in 0..3 {
            let batch = template.patch(&mut ids, template.base_time_ns + delta);
            assert_eq!(batch.items, 512);
            assert_eq!(batch.trace_ids.len(), 52);
            let patched = ExportTraceServiceRequest::decode(batch.bytes.as_ref()).unwrap();
            let (before, after) = (spans_of(&original), spans_of(&patched));
            assert_eq!(after.len(), 512);
            let by_id: std::collections::HashMap<&[u8], &Span> =
                after.iter().map(|s| (s.span_id.as_slice(), s)).collect();
            for (b, a) in before.iter().zip(&after) {
                assert!(seen_spans.insert(a.span_id.clone()), "span id reused");
                assert!(batch.trace_ids.iter().any(|t| t[..] == a.trace_id[..]));
                assert_eq!(a.start_time_unix_nano, b.start_time_unix_nano + delta);
                assert_eq!(a.end_time_unix_nano, b.end_time_unix_nano + delta);
                if b.parent_span_id.is_empty() {
                    assert!(a.parent_span_id.is_empty());
                } else {
                    let parent = by_id[a.parent_span_id.as_slice()];
                    assert_eq!(parent.trace_id, a.trace_id, "parent in another trace");
                }
                assert_eq!(without_ids(a.clone()), without_ids(b.clone()));
            }
            for t in &batch.trace_ids {
                assert!(seen_traces.insert(*t), "trace id reused");
            }
            // Ten spans per trace, one root each.
            for t in &batch.trace_ids[..51] {
                let members: Vec<_> = after.iter().filter(|s| s.trace_id[..] == t[..]).collect();
                assert_eq!(members.len(), 10);
                assert_eq!(
                    members
                        .iter()
                        .filter(|s| s.parent_span_id.is_empty())
                        .count(),
                    1
                );
            }
            // Resources are untouched.
            let strip = |r: &ExportTraceServiceRequest| {
                r.resource_spans
                    .iter()
                    .map(|r| r.resource.clone())
                    .collect::<Vec<_>>()
            };
            assert_eq!(strip(&original), strip(&patched));
        }
    }

    #[test]
    fn patched_logs_get_fresh_unique_ids_and_keep_everything_else() {
        let template = DataGen::new(9).logs_template(512).unwrap();
        let original = ExportLogsServiceRequest::decode(template.buf.as_slice()).unwrap();
        let mut ids = IdGen::new(3, 1);
        let batch = template.patch(&mut ids, template.base_time_ns + 5);
        let patched = ExportLogsServiceRequest::decode(batch.bytes.as_ref()).unwrap();
        let (before, after) = (logs_of(&original), logs_of(&patched));
        assert_eq!(after.len(), 512);
        let mut spans = HashSet::new();
        for (b, a) in before.iter().zip(&after) {
            assert!(spans.insert(a.span_id.clone()));
            assert_ne!(a.trace_id, vec![1; 16]);
            assert_eq!(a.time_unix_nano, b.time_unix_nano + 5);
            assert_eq!(a.observed_time_unix_nano, b.observed_time_unix_nano + 5);
            let mut a2 = a.clone();
            a2.trace_id = b.trace_id.clone();
            a2.span_id = b.span_id.clone();
            a2.time_unix_nano = b.time_unix_nano;
            a2.observed_time_unix_nano = b.observed_time_unix_nano;
            assert_eq!(&a2, b);
        }
        let traces: HashSet<_> = after.iter().map(|l| l.trace_id.clone()).collect();
        assert_eq!(traces.len(), 512 / 4); // four log records per trace
    }

    #[test]
    fn id_generators_never_collide() {
        let mut seen = HashSet::new();
        for stream in 0..4 {
            let mut g = IdGen::new(stream, 99);
            for _ in 0..10_000 {
                assert!(seen.insert(g.span_id().to_vec()));
                assert!(seen.insert(g.trace_id().to_vec()));
            }
        }
    }

    #[test]
    fn walker_rejects_garbage() {
        assert!(item_ranges(&[0x0a, 0x05, 0x01]).is_err());
        assert!(fields(&[0x0b], 0..1).is_err());
    }
}
