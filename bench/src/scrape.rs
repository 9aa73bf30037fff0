//! Reading one sample from a collector's `/metrics` (Prometheus text format),
//! for benchmarks that follow the collector's own counters (indexed
//! documents) alongside their client-side measurements.

use anyhow::{Context, Result};

/// The value of the first sample of `name` whose label set contains
/// `label` (e.g. `signal="spans"`; empty matches any). `None` when absent.
pub fn sample(text: &str, name: &str, label: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => {
                    let (labels, value) = r.split_once('}')?;
                    (labels, value)
                }
                None if rest.starts_with(' ') => ("", rest),
                None => return None,
            };
            labels.contains(label).then_some(value)
        })
        .find_map(|v| v.split_whitespace().next()?.parse().ok())
}

/// Fetch `<base>/metrics` and read one sample (see [`sample`]).
pub async fn fetch(client: &reqwest::Client, base: &str, name: &str, label: &str) -> Result<f64> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .with_context(|| format!("GET {base}/metrics"))?
        .text()
        .await?;
    Ok(sample(&text, name, label).unwrap_or(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_sample_by_name_and_label() {
        let text = "# HELP skein_index_documents_total x\n\
                    skein_index_documents_total_extra{signal=\"spans\"} 9\n\
                    skein_index_documents_total{signal=\"logs\"} 7\n\
                    skein_index_documents_total{signal=\"spans\"} 1.5e6\n\
                    skein_wal_backlog_bytes 42\n";
        assert_eq!(
            sample(text, "skein_index_documents_total", "signal=\"spans\""),
            Some(1.5e6)
        );
        assert_eq!(sample(text, "skein_wal_backlog_bytes", ""), Some(42.0));
        assert_eq!(sample(text, "skein_nope", ""), None);
    }
}
