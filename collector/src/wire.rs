//! A borrowing protobuf field walker, shared by the two hot paths that read
//! WAL payloads without decoding them: the indexer (`index/wire.rs`: the exact
//! bytes of each span or log record) and the derive worker (`derive/wire.rs`:
//! the few span fields the graph and RED metrics need). Varints are decoded
//! by prost. It knows the wire format only, no OTLP message.

/// One field's value on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

/// Call `f(field_number, value)` for every field of `msg`, in wire order.
/// `None` when `msg` is not well-formed or `f` returns `None`.
pub fn fields<'a>(msg: &'a [u8], mut f: impl FnMut(u64, Value<'a>) -> Option<()>) -> Option<()> {
    let mut rest = msg;
    while !rest.is_empty() {
        let key = varint(&mut rest)?;
        let field = key >> 3;
        let value = match key & 7 {
            0 => Value::Varint(varint(&mut rest)?),
            1 => {
                let (b, r) = rest.split_first_chunk::<8>()?;
                rest = r;
                Value::Fixed64(u64::from_le_bytes(*b))
            }
            2 => {
                let len = usize::try_from(varint(&mut rest)?).ok()?;
                let content = rest.get(..len)?;
                rest = rest.get(len..)?;
                Value::Bytes(content)
            }
            5 => {
                let (b, r) = rest.split_first_chunk::<4>()?;
                rest = r;
                Value::Fixed32(u32::from_le_bytes(*b))
            }
            _ => return None,
        };
        f(field, value)?;
    }
    Some(())
}

fn varint(buf: &mut &[u8]) -> Option<u64> {
    prost::encoding::decode_varint(buf).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_every_wire_type_and_rejects_truncation() {
        // field 1 varint 150, field 2 fixed64 7, field 3 bytes "hi", field 4 fixed32 9
        let msg = [
            0x08, 0x96, 0x01, 0x11, 7, 0, 0, 0, 0, 0, 0, 0, 0x1a, 2, b'h', b'i', 0x25, 9, 0, 0, 0,
        ];
        let mut seen = Vec::new();
        fields(&msg, |f, v| {
            seen.push((f, v));
            Some(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                (1, Value::Varint(150)),
                (2, Value::Fixed64(7)),
                (3, Value::Bytes(b"hi")),
                (4, Value::Fixed32(9)),
            ]
        );
        for cut in 1..msg.len() {
            if [3, 12, 16].contains(&cut) {
                continue; // field boundaries: a shorter message is still valid
            }
            assert!(
                fields(&msg[..cut], |_, _| Some(())).is_none(),
                "cut at {cut}"
            );
        }
        // wire types 3/4 (groups) are not supported
        assert!(fields(&[0x0b], |_, _| Some(())).is_none());
        // `f` stops the walk
        assert!(fields(&msg, |f, _| (f < 2).then_some(())).is_none());
    }
}
