//! Label sets and their fingerprints. The fingerprint is Alertmanager's
//! (`model.LabelSet.Fingerprint`: FNV-1a 64 over the sorted names and
//! values, each followed by the byte 0xFF), printed as 16 hex digits, so
//! Skein's and Alertmanager's fingerprints of one alert are equal.

use std::collections::BTreeMap;

/// Labels or annotations, sorted by name.
pub type Labels = BTreeMap<String, String>;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const SEPARATOR: u8 = 0xff;

/// Alertmanager's fingerprint of a label set.
pub fn fingerprint(labels: &Labels) -> String {
    let mut hash = FNV_OFFSET;
    let mut add = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
    };
    for (name, value) in labels {
        add(name.as_bytes());
        add(&[SEPARATOR]);
        add(value.as_bytes());
        add(&[SEPARATOR]);
    }
    format!("{hash:016x}")
}

/// Build labels from pairs (tests and built-in rules).
pub fn labels<const N: usize>(pairs: [(&str, &str); N]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_set_is_the_fnv_offset() {
        assert_eq!(fingerprint(&Labels::new()), "cbf29ce484222325");
    }

    #[test]
    fn fingerprint_depends_on_names_and_values() {
        let a = fingerprint(&labels([("alertname", "X"), ("service", "a")]));
        let b = fingerprint(&labels([("alertname", "X"), ("service", "b")]));
        let c = fingerprint(&labels([("service", "a"), ("alertname", "X")]));
        assert_ne!(a, b);
        assert_eq!(a, c, "order of insertion does not matter");
        assert_eq!(a.len(), 16);
    }
}
