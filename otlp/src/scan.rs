//! The fast path of the receivers: one pass over an export request's
//! protobuf bytes that proves it decodes and that validation would keep
//! every item, without building the request.
//!
//! Decoding a request into prost structs (and dropping them again) is about
//! a tenth of the collector's CPU at full ingest, and the collector needs
//! none of it when the request is clean: the write-ahead log takes the
//! bytes as received. The scan walks the wire format with the schema of
//! `opentelemetry-proto` and checks what [`crate::validate`] checks.
//!
//! **The one rule: `Some` only if prost decodes the bytes and
//! [`crate::validate`] rejects nothing.** The scan may be stricter than
//! that — it answers `None` for anything unusual (groups, a field with an
//! unexpected wire type, deep nesting, a resource with an oversized
//! attribute, an instance id given twice) — and the caller then takes the
//! slow path (decode, validate, report each rejection), so a `None` costs
//! time, never correctness. Property tests in `collector/src/ingest/fuzz.rs`
//! hold the rule over generated and mutated requests.
//!
//! This module reads bytes only: no allocation per item, no I/O.

use std::ops::Range;

use crate::validate::Limits;

/// What a clean request holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scanned {
    /// Spans or log records in the request (all valid).
    pub items: u64,
    /// Where each resource's non-empty string `service.instance.id` is in
    /// the scanned bytes, for resources that carry items (may repeat).
    instance_ids: Vec<Range<usize>>,
}

impl Scanned {
    /// The distinct `service.instance.id`s of resources that carry items,
    /// sorted, borrowed from `raw` (the bytes that were scanned).
    pub fn instance_ids<'a>(&self, raw: &'a [u8]) -> Vec<&'a str> {
        let mut ids: Vec<&str> = self
            .instance_ids
            .iter()
            .filter_map(|r| raw.get(r.clone()))
            .filter_map(|b| std::str::from_utf8(b).ok())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// Scan an `ExportTraceServiceRequest`; `None` means "take the slow path".
pub fn traces(raw: &[u8], limits: Limits) -> Option<Scanned> {
    request(raw, limits, span)
}

/// Scan an `ExportLogsServiceRequest`; `None` means "take the slow path".
pub fn logs(raw: &[u8], limits: Limits) -> Option<Scanned> {
    request(raw, limits, log_record)
}

/// Protobuf wire types (groups, 3 and 4, are never accepted).
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// Nesting of `AnyValue`s the scan follows; deeper values take the slow
/// path (prost's own limit is 100 messages, the validator's 32 values).
const MAX_VALUE_DEPTH: usize = 16;

/// A cursor over one message: `buf[pos..end]`, positions absolute in the
/// scanned buffer so that ranges can be handed back.
#[derive(Clone, Copy)]
struct Msg<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

/// One field: its number, and its payload for the wire type it came with.
enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32,
    Len(Msg<'a>),
}

impl<'a> Msg<'a> {
    fn whole(buf: &'a [u8]) -> Self {
        Msg {
            buf,
            pos: 0,
            end: buf.len(),
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.buf.get(self.pos..self.end).unwrap_or_default()
    }

    fn len(&self) -> usize {
        self.end - self.pos
    }

    fn range(&self) -> Range<usize> {
        self.pos..self.end
    }

    /// A varint as prost reads it: at most ten bytes, the tenth at most 1.
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            if self.pos >= self.end {
                return None;
            }
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            if i == 9 && b > 1 {
                return None;
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Some(value);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<Msg<'a>> {
        let end = self.pos.checked_add(n)?;
        if end > self.end {
            return None;
        }
        let sub = Msg {
            buf: self.buf,
            pos: self.pos,
            end,
        };
        self.pos = end;
        Some(sub)
    }

    /// The next field, `Ok(None)` at the end; `Err` for anything prost
    /// would refuse or the scan does not follow (groups).
    fn next(&mut self) -> Result<Option<(u32, Field<'a>)>, ()> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let key = self.varint().ok_or(())?;
        let number = u32::try_from(key >> 3).map_err(|_| ())?;
        if number == 0 || key > u64::from(u32::MAX) {
            return Err(());
        }
        let field = match (key & 7) as u8 {
            VARINT => Field::Varint(self.varint().ok_or(())?),
            FIXED64 => {
                let b = self.take(8).ok_or(())?.bytes();
                Field::Fixed64(u64::from_le_bytes(b.try_into().map_err(|_| ())?))
            }
            LEN => {
                let n = self.varint().ok_or(())?;
                let n = usize::try_from(n).map_err(|_| ())?;
                Field::Len(self.take(n).ok_or(())?)
            }
            FIXED32 => {
                self.take(4).ok_or(())?;
                Field::Fixed32
            }
            _ => return Err(()),
        };
        Ok(Some((number, field)))
    }
}

/// Iterate the fields of `msg`, handing each to `f`; unknown fields are
/// `f`'s to ignore (they were read, so they are well-formed).
fn fields<'a>(mut msg: Msg<'a>, mut f: impl FnMut(u32, Field<'a>) -> Option<()>) -> Option<()> {
    while let Some((number, field)) = msg.next().ok()? {
        f(number, field)?;
    }
    Some(())
}

/// A `string` field: length-delimited and UTF-8.
fn string(field: Field<'_>) -> Option<Msg<'_>> {
    match field {
        Field::Len(m) => std::str::from_utf8(m.bytes()).ok().map(|_| m),
        _ => None,
    }
}

fn bytes(field: Field<'_>) -> Option<Msg<'_>> {
    match field {
        Field::Len(m) => Some(m),
        _ => None,
    }
}

fn message(field: Field<'_>) -> Option<Msg<'_>> {
    bytes(field)
}

fn varint(field: Field<'_>) -> Option<u64> {
    match field {
        Field::Varint(v) => Some(v),
        _ => None,
    }
}

fn fixed64(field: Field<'_>) -> Option<u64> {
    match field {
        Field::Fixed64(v) => Some(v),
        _ => None,
    }
}

fn fixed32(field: Field<'_>) -> Option<()> {
    match field {
        Field::Fixed32 => Some(()),
        _ => None,
    }
}

/// An `Export*ServiceRequest`: field 1 is `repeated Resource{Spans,Logs}`,
/// whose field 2 is `repeated Scope{Spans,Logs}`, whose field 2 is the
/// repeated item, checked by `item`.
fn request(raw: &[u8], limits: Limits, item: fn(Msg<'_>, Limits) -> Option<()>) -> Option<Scanned> {
    let mut out = Scanned::default();
    fields(Msg::whole(raw), |number, field| match number {
        1 => resource_items(message(field)?, limits, item, &mut out),
        _ => Some(()),
    })?;
    Some(out)
}

/// `ResourceSpans` / `ResourceLogs`: 1 resource, 2 scopes, 3 schema_url.
fn resource_items(
    msg: Msg<'_>,
    limits: Limits,
    item: fn(Msg<'_>, Limits) -> Option<()>,
    out: &mut Scanned,
) -> Option<()> {
    let mut instance = Instance::Unseen;
    let mut items = 0u64;
    fields(msg, |number, field| match number {
        1 => resource(message(field)?, limits, &mut instance),
        2 => {
            items += scope_items(message(field)?, limits, item)?;
            Some(())
        }
        3 => string(field).map(|_| ()),
        _ => Some(()),
    })?;
    out.items += items;
    if items > 0 {
        if let Instance::Id(range) = instance {
            out.instance_ids.push(range);
        }
    }
    Some(())
}

/// What the first `service.instance.id` attribute of a resource says.
enum Instance {
    Unseen,
    /// Seen, but not a non-empty string: the resource names no instance.
    None,
    Id(Range<usize>),
}

/// `Resource`: 1 attributes (size-checked; every item of the resource
/// would be rejected otherwise), 2 dropped count, 3 entity refs.
fn resource(msg: Msg<'_>, limits: Limits, instance: &mut Instance) -> Option<()> {
    fields(msg, |number, field| match number {
        1 => {
            let kv = key_value(message(field)?, Some(limits.max_attribute_bytes), 0)?;
            if matches!(instance, Instance::Unseen)
                && kv.key.map(|k| k.bytes()) == Some(b"service.instance.id".as_slice())
            {
                *instance = match kv.value? {
                    Some(ValueKind::String(s)) if s.len() > 0 => Instance::Id(s.range()),
                    Some(ValueKind::Several) => return None,
                    _ => Instance::None,
                };
            }
            Some(())
        }
        2 => varint(field).map(|_| ()),
        3 => entity_ref(message(field)?),
        _ => Some(()),
    })
}

/// `EntityRef`: 1 schema_url, 2 type, 3 and 4 repeated strings.
fn entity_ref(msg: Msg<'_>) -> Option<()> {
    fields(msg, |number, field| match number {
        1..=4 => string(field).map(|_| ()),
        _ => Some(()),
    })
}

/// `Scope{Spans,Logs}`: 1 scope, 2 items, 3 schema_url. Returns the item count.
fn scope_items(
    msg: Msg<'_>,
    limits: Limits,
    item: fn(Msg<'_>, Limits) -> Option<()>,
) -> Option<u64> {
    let mut n = 0u64;
    fields(msg, |number, field| match number {
        1 => scope(message(field)?),
        2 => {
            item(message(field)?, limits)?;
            n += 1;
            Some(())
        }
        3 => string(field).map(|_| ()),
        _ => Some(()),
    })?;
    Some(n)
}

/// `InstrumentationScope`: 1 name, 2 version, 3 attributes (not
/// size-checked by validation), 4 dropped count.
fn scope(msg: Msg<'_>) -> Option<()> {
    fields(msg, |number, field| match number {
        1 | 2 => string(field).map(|_| ()),
        3 => key_value(message(field)?, None, 0).map(|_| ()),
        4 => varint(field).map(|_| ()),
        _ => Some(()),
    })
}

/// Attributes of items (size-checked).
fn attribute(field: Field<'_>, limits: Limits) -> Option<()> {
    key_value(message(field)?, Some(limits.max_attribute_bytes), 0).map(|_| ())
}

/// `Span`, with the checks of `validate::check_span`. Scalars take their
/// last occurrence, as prost does.
fn span(msg: Msg<'_>, limits: Limits) -> Option<()> {
    let (mut trace_id, mut span_id, mut parent) = (&[][..], &[][..], &[][..]);
    let (mut start, mut end) = (0u64, 0u64);
    fields(msg, |number, field| {
        match number {
            1 => trace_id = bytes(field)?.bytes(),
            2 => span_id = bytes(field)?.bytes(),
            4 => parent = bytes(field)?.bytes(),
            3 | 5 => {
                string(field)?;
            }
            6 | 10 | 12 | 14 => {
                varint(field)?;
            }
            7 => start = fixed64(field)?,
            8 => end = fixed64(field)?,
            9 => attribute(field, limits)?,
            11 => event(message(field)?, limits)?,
            13 => link(message(field)?, limits)?,
            15 => status(message(field)?)?,
            16 => fixed32(field)?,
            _ => {}
        }
        Some(())
    })?;
    let nonzero = |id: &[u8]| id.iter().any(|b| *b != 0);
    let ok = trace_id.len() == 16
        && span_id.len() == 8
        && (parent.is_empty() || parent.len() == 8)
        && nonzero(trace_id)
        && nonzero(span_id)
        && end >= start;
    ok.then_some(())
}

/// `Span.Event`: 1 time, 2 name, 3 attributes, 4 dropped count.
fn event(msg: Msg<'_>, limits: Limits) -> Option<()> {
    fields(msg, |number, field| match number {
        1 => fixed64(field).map(|_| ()),
        2 => string(field).map(|_| ()),
        3 => attribute(field, limits),
        4 => varint(field).map(|_| ()),
        _ => Some(()),
    })
}

/// `Span.Link`: 1 and 2 ids (not checked by validation), 3 trace state,
/// 4 attributes, 5 dropped count, 6 flags.
fn link(msg: Msg<'_>, limits: Limits) -> Option<()> {
    fields(msg, |number, field| match number {
        1 | 2 => bytes(field).map(|_| ()),
        3 => string(field).map(|_| ()),
        4 => attribute(field, limits),
        5 => varint(field).map(|_| ()),
        6 => fixed32(field),
        _ => Some(()),
    })
}

/// `Status`: 2 message, 3 code.
fn status(msg: Msg<'_>) -> Option<()> {
    fields(msg, |number, field| match number {
        2 => string(field).map(|_| ()),
        3 => varint(field).map(|_| ()),
        _ => Some(()),
    })
}

/// `LogRecord`, with the checks of `validate::check_log`.
fn log_record(msg: Msg<'_>, limits: Limits) -> Option<()> {
    let (mut trace_id, mut span_id) = (&[][..], &[][..]);
    fields(msg, |number, field| {
        match number {
            1 | 11 => {
                fixed64(field)?;
            }
            2 | 7 => {
                varint(field)?;
            }
            3 | 12 => {
                string(field)?;
            }
            5 => {
                any_value(message(field)?, None, 0)?;
            }
            6 => attribute(field, limits)?,
            8 => fixed32(field)?,
            9 => trace_id = bytes(field)?.bytes(),
            10 => span_id = bytes(field)?.bytes(),
            _ => {}
        }
        Some(())
    })?;
    let ok =
        (trace_id.is_empty() || trace_id.len() == 16) && (span_id.is_empty() || span_id.len() == 8);
    ok.then_some(())
}

/// A `KeyValue` as the instance-id lookup needs it.
struct KeyValue<'a> {
    /// The last `key`.
    key: Option<Msg<'a>>,
    /// The value when it is simple: `None` (outer) when the `value` field
    /// came more than once (prost merges those: the slow path decides).
    value: Option<Option<ValueKind<'a>>>,
}

/// `KeyValue`: 1 key, 2 value, 3 key_strindex. With `max`, string and
/// bytes values anywhere in the value must fit in `max` bytes.
fn key_value(msg: Msg<'_>, max: Option<usize>, depth: usize) -> Option<KeyValue<'_>> {
    let mut key = None;
    let mut value: Option<Option<ValueKind<'_>>> = Some(None);
    let mut seen_value = false;
    fields(msg, |number, field| {
        match number {
            1 => key = Some(string(field)?),
            2 => {
                let v = any_value(message(field)?, max, depth + 1)?;
                value = if seen_value { None } else { Some(v) };
                seen_value = true;
            }
            3 => {
                varint(field)?;
            }
            _ => {}
        }
        Some(())
    })?;
    Some(KeyValue { key, value })
}

/// What an `AnyValue` set: one string, one other field, or several fields
/// (prost keeps, or merges into, the last; the scan does not follow that).
enum ValueKind<'a> {
    String(Msg<'a>),
    Other,
    Several,
}

/// `AnyValue`: the oneof 1 string, 2 bool, 3 int, 4 double, 5 array,
/// 6 kvlist, 7 bytes, 8 string_strindex. `None` (inner) for no value.
fn any_value(msg: Msg<'_>, max: Option<usize>, depth: usize) -> Option<Option<ValueKind<'_>>> {
    if depth > MAX_VALUE_DEPTH {
        return None;
    }
    let fits = |m: &Msg<'_>| max.is_none_or(|max| m.len() <= max);
    let mut kind = None;
    let mut set = 0usize;
    fields(msg, |number, field| {
        let k = match number {
            1 => {
                let s = string(field)?;
                fits(&s).then_some(ValueKind::String(s))?
            }
            2 | 3 | 8 => {
                varint(field)?;
                ValueKind::Other
            }
            4 => {
                fixed64(field)?;
                ValueKind::Other
            }
            5 => {
                fields(message(field)?, |n, f| match n {
                    1 => any_value(message(f)?, max, depth + 1).map(|_| ()),
                    _ => Some(()),
                })?;
                ValueKind::Other
            }
            6 => {
                fields(message(field)?, |n, f| match n {
                    1 => key_value(message(f)?, max, depth + 1).map(|_| ()),
                    _ => Some(()),
                })?;
                ValueKind::Other
            }
            7 => {
                let b = bytes(field)?;
                fits(&b).then_some(ValueKind::Other)?
            }
            _ => return Some(()),
        };
        set += 1;
        kind = Some(k);
        Some(())
    })?;
    Some(match set {
        0 => None,
        1 => kind,
        _ => Some(ValueKind::Several),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        any_value::Value, AnyValue, ArrayValue, KeyValue as Kv, KeyValueList,
    };
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
    use prost::Message;

    const LIMITS: Limits = Limits {
        max_attribute_bytes: 16,
    };

    fn kv(k: &str, v: Value) -> Kv {
        Kv {
            key: k.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    fn s(v: &str) -> Value {
        Value::StringValue(v.into())
    }

    fn good_span() -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            parent_span_id: vec![3; 8],
            name: "GET /".into(),
            kind: 2,
            start_time_unix_nano: 10,
            end_time_unix_nano: 20,
            attributes: vec![
                kv("http.method", s("GET")),
                kv("n", Value::IntValue(-3)),
                kv("f", Value::DoubleValue(0.5)),
                kv("b", Value::BoolValue(true)),
                kv("raw", Value::BytesValue(vec![0xff; 16])),
                kv(
                    "list",
                    Value::ArrayValue(ArrayValue {
                        values: vec![AnyValue {
                            value: Some(s("x")),
                        }],
                    }),
                ),
                kv(
                    "map",
                    Value::KvlistValue(KeyValueList {
                        values: vec![kv("inner", s("y"))],
                    }),
                ),
            ],
            events: vec![Event {
                time_unix_nano: 15,
                name: "ev".into(),
                attributes: vec![kv("k", s("v"))],
                dropped_attributes_count: 1,
            }],
            links: vec![Link {
                trace_id: vec![9; 16],
                span_id: vec![8; 8],
                attributes: vec![kv("l", s("w"))],
                flags: 1,
                ..Default::default()
            }],
            status: Some(Status {
                message: "boom".into(),
                code: 2,
            }),
            flags: 0x100,
            ..Default::default()
        }
    }

    fn traces_with(resource: Vec<Kv>, spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                schema_url: "https://opentelemetry.io/schemas/1.24.0".into(),
            }],
        }
    }

    fn scan_spans(spans: Vec<Span>) -> Option<Scanned> {
        traces(&traces_with(vec![], spans).encode_to_vec(), LIMITS)
    }

    #[test]
    fn clean_requests_are_counted() {
        let req = traces_with(
            vec![
                kv("service.name", s("api")),
                kv("service.instance.id", s("i-1")),
            ],
            vec![good_span(), good_span(), good_span()],
        );
        let raw = req.encode_to_vec();
        let scanned = traces(&raw, LIMITS).expect("clean request");
        assert_eq!(scanned.items, 3);
        assert_eq!(scanned.instance_ids(&raw), vec!["i-1"]);
        assert_eq!(traces(&[], LIMITS), Some(Scanned::default()));
    }

    #[test]
    fn each_span_rule_sends_the_request_to_the_slow_path() {
        type Spoil = fn(&mut Span);
        let cases: Vec<(&str, Spoil)> = vec![
            ("short trace id", |s| {
                s.trace_id.pop().map(|_| ()).unwrap_or(())
            }),
            ("short span id", |s| s.span_id = vec![2; 7]),
            ("bad parent", |s| s.parent_span_id = vec![3; 4]),
            ("zero trace id", |s| s.trace_id = vec![0; 16]),
            ("zero span id", |s| s.span_id = vec![0; 8]),
            ("end before start", |s| s.end_time_unix_nano = 9),
            ("big attribute", |s| s.attributes.push(kv("big", s_big()))),
            ("big bytes", |s| {
                s.attributes.push(kv("b", Value::BytesValue(vec![0; 17])))
            }),
            ("big nested", |s| {
                s.attributes.push(kv(
                    "m",
                    Value::KvlistValue(KeyValueList {
                        values: vec![kv("inner", s_big())],
                    }),
                ))
            }),
            ("big event attribute", |s| {
                s.events[0].attributes.push(kv("e", s_big()))
            }),
            ("big link attribute", |s| {
                s.links[0].attributes.push(kv("l", s_big()))
            }),
        ];
        assert!(scan_spans(vec![good_span()]).is_some());
        for (what, spoil) in cases {
            let mut bad = good_span();
            spoil(&mut bad);
            assert_eq!(scan_spans(vec![good_span(), bad]), None, "{what}");
        }
        // An empty parent is fine; a missing span id is not.
        let mut root = good_span();
        root.parent_span_id.clear();
        assert!(scan_spans(vec![root]).is_some());
        let mut no_id = good_span();
        no_id.span_id.clear();
        assert_eq!(scan_spans(vec![no_id]), None);
    }

    fn s_big() -> Value {
        s(&"x".repeat(17))
    }

    #[test]
    fn resource_attribute_sizes_count_but_scope_ones_do_not() {
        let raw = traces_with(vec![kv("big", s_big())], vec![good_span()]).encode_to_vec();
        assert_eq!(traces(&raw, LIMITS), None);
        let mut req = traces_with(vec![], vec![good_span()]);
        req.resource_spans[0].scope_spans[0].scope = Some(
            opentelemetry_proto::tonic::common::v1::InstrumentationScope {
                name: "lib".into(),
                attributes: vec![kv("big", s_big())],
                ..Default::default()
            },
        );
        assert!(traces(&req.encode_to_vec(), LIMITS).is_some());
    }

    fn logs_with(records: Vec<LogRecord>) -> Vec<u8> {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("service.instance.id", s("pod-7"))],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    #[test]
    fn log_rules() {
        let good = || LogRecord {
            time_unix_nano: 5,
            observed_time_unix_nano: 6,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Some(AnyValue {
                // Bodies are not size-checked by validation.
                value: Some(s(&"long body ".repeat(10))),
            }),
            attributes: vec![kv("k", s("v"))],
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            event_name: "e".into(),
            ..Default::default()
        };
        let raw = logs_with(vec![good(), LogRecord::default()]);
        let scanned = logs(&raw, LIMITS).expect("clean");
        assert_eq!(scanned.items, 2);
        assert_eq!(scanned.instance_ids(&raw), vec!["pod-7"]);
        for spoil in [
            (|r: &mut LogRecord| r.trace_id = vec![1; 5]) as fn(&mut LogRecord),
            |r| r.span_id = vec![1; 9],
            |r| r.attributes.push(kv("big", s_big())),
        ] {
            let mut bad = good();
            spoil(&mut bad);
            assert_eq!(logs(&logs_with(vec![good(), bad]), LIMITS), None);
        }
    }

    #[test]
    fn malformed_bytes_take_the_slow_path() {
        let raw = traces_with(vec![], vec![good_span()]).encode_to_vec();
        // Truncated anywhere inside: never accepted as clean.
        for cut in 1..raw.len() {
            let scanned = traces(&raw[..cut], LIMITS);
            if let Some(s) = scanned {
                assert!(
                    ExportTraceServiceRequest::decode(&raw[..cut]).is_ok(),
                    "cut {cut} scanned as {s:?} but prost refuses it"
                );
            }
        }
        // Invalid UTF-8 in a string field (the span name).
        let mut span = good_span();
        span.name = "NAME".into();
        let mut bad = traces_with(vec![], vec![span]).encode_to_vec();
        let at = bad
            .windows(4)
            .position(|w| w == b"NAME")
            .expect("name is in the encoding");
        bad[at] = 0xff;
        assert!(ExportTraceServiceRequest::decode(&bad[..]).is_err());
        assert_eq!(traces(&bad, LIMITS), None);
        // A group (wire type 3) and wire type 7.
        assert_eq!(traces(&[0x0b, 0x0c], LIMITS), None);
        assert_eq!(traces(&[0x0f], LIMITS), None);
        // A known field with the wrong wire type: resource_spans as varint.
        assert_eq!(traces(&[0x08, 0x01], LIMITS), None);
        assert!(ExportTraceServiceRequest::decode(&[0x08, 0x01][..]).is_err());
        // Unknown fields are skipped, as prost does.
        let mut with_unknown = vec![0xa0, 0x06, 0x07, 0xaa, 0x06, 0x01, 0x00];
        with_unknown.extend_from_slice(&raw);
        let scanned = traces(&with_unknown, LIMITS).expect("unknown fields");
        assert_eq!(scanned.items, 1);
    }

    #[test]
    fn instance_ids_follow_the_first_attribute_of_that_name() {
        let id = |v: Value| kv("service.instance.id", v);
        let cases = [
            (vec![id(s("a")), id(s("b"))], vec!["a"]),
            (vec![id(s("")), id(s("b"))], vec![]),
            (vec![id(Value::IntValue(3)), id(s("b"))], vec![]),
            (vec![kv("other", s("x"))], vec![]),
        ];
        for (attrs, want) in cases {
            let raw = traces_with(attrs.clone(), vec![good_span()]).encode_to_vec();
            let scanned = traces(&raw, LIMITS).expect("clean");
            assert_eq!(scanned.instance_ids(&raw), want, "{attrs:?}");
        }
        // A resource without items names no instance.
        let raw = traces_with(vec![id(s("idle"))], vec![]).encode_to_vec();
        let scanned = traces(&raw, LIMITS).expect("clean");
        assert_eq!(scanned.items, 0);
        assert!(scanned.instance_ids(&raw).is_empty());
    }

    #[test]
    fn deep_values_take_the_slow_path() {
        let mut v = AnyValue {
            value: Some(s("leaf")),
        };
        for _ in 0..40 {
            v = AnyValue {
                value: Some(Value::ArrayValue(ArrayValue { values: vec![v] })),
            };
        }
        let mut span = good_span();
        span.attributes.push(Kv {
            key: "deep".into(),
            value: Some(v),
            ..Default::default()
        });
        assert_eq!(scan_spans(vec![span]), None);
    }
}
