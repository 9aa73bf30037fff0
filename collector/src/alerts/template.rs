//! Annotation templates: text with `{{ $labels.NAME }}` and `{{ $value }}`
//! (Prometheus' spelling; spaces inside the braces optional). Templates are
//! parsed once when a rule is loaded, so a typo is a load error naming the
//! annotation, never a surprise at firing time.

use super::labels::Labels;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Label(String),
    Value,
}

impl Template {
    /// Parse `text`; the error says what is wrong with which placeholder.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| {
                format!("unclosed '{{{{' at byte {}", text.len() - rest.len() + open)
            })?;
            let expr = after[..close].trim();
            parts.push(parse_expr(expr)?);
            rest = &after[close + 2..];
        }
        if rest.contains("}}") {
            return Err("'}}' without a matching '{{'".into());
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// Fill in the labels and the value. A missing label renders as "".
    pub fn render(&self, labels: &Labels, value: f64) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Label(name) => {
                    out.push_str(labels.get(name).map(String::as_str).unwrap_or(""))
                }
                Part::Value => out.push_str(&format_value(value)),
            }
        }
        out
    }
}

fn parse_expr(expr: &str) -> Result<Part, String> {
    if expr == "$value" || expr == ".Value" {
        return Ok(Part::Value);
    }
    let name = expr
        .strip_prefix("$labels.")
        .or_else(|| expr.strip_prefix(".Labels."))
        .ok_or_else(|| {
            format!("unknown placeholder '{{{{ {expr} }}}}' (use {{{{ $labels.NAME }}}} or {{{{ $value }}}})")
        })?;
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return Err(format!("'{name}' is not a label name"));
    }
    Ok(Part::Label(name.to_string()))
}

/// A value as people read it: integers without a fraction, others with up
/// to 4 decimals (`0.0513`, `12`, `0.5`).
pub fn format_value(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return format!("{}", value as i64);
    }
    let s = format!("{value:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::labels::labels;

    #[test]
    fn renders_labels_and_value() {
        let t = Template::parse(
            "{{ $labels.service }} error rate {{$value}} (inst {{ $labels.instance }})",
        )
        .unwrap();
        let l = labels([("service", "checkout")]);
        assert_eq!(t.render(&l, 0.051_34), "checkout error rate 0.0513 (inst )");
        assert_eq!(t.render(&l, 3.0), "checkout error rate 3 (inst )");
    }

    #[test]
    fn plain_text_and_go_spelling() {
        assert_eq!(
            Template::parse("no placeholders")
                .unwrap()
                .render(&Labels::new(), 1.0),
            "no placeholders"
        );
        let t = Template::parse("{{ .Labels.service }}={{ .Value }}").unwrap();
        assert_eq!(t.render(&labels([("service", "a")]), 0.5), "a=0.5");
    }

    #[test]
    fn bad_placeholders_are_errors() {
        assert!(Template::parse("{{ $labels.service ")
            .unwrap_err()
            .contains("unclosed"));
        assert!(Template::parse("{{ $foo }}")
            .unwrap_err()
            .contains("unknown placeholder"));
        assert!(Template::parse("{{ $labels.a-b }}")
            .unwrap_err()
            .contains("not a label name"));
        assert!(Template::parse("x }}").is_err());
    }
}
