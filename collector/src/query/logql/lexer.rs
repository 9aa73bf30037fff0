//! LogQL tokens: punctuation, identifiers, strings (Go-style `"…"` with
//! escapes, raw `` `…` ``), numbers and durations (`5m`, `1h30m`, `250ms`).

use super::LogqlError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `=~`
    Re,
    /// `!~`
    Nre,
    /// `|=`
    PipeEq,
    /// `|~`
    PipeRe,
    /// `|>` (pattern filter, unsupported)
    PipeGt,
    Pipe,
    Gt,
    Ge,
    Lt,
    Le,
    EqEq,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Caret,
    Ident(String),
    Str(String),
    Num(f64),
    /// A duration in nanoseconds.
    Dur(u64),
    Eof,
}

/// A token and the byte offset it starts at.
pub type Spanned = (Tok, usize);

pub fn tokenize(input: &str) -> Result<Vec<Spanned>, LogqlError> {
    let b = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            // comment to end of line
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let two = if i + 1 < b.len() { b[i + 1] } else { 0 };
        let (tok, len) = match (c, two) {
            (b'{', _) => (Tok::LBrace, 1),
            (b'}', _) => (Tok::RBrace, 1),
            (b'(', _) => (Tok::LParen, 1),
            (b')', _) => (Tok::RParen, 1),
            (b'[', _) => (Tok::LBracket, 1),
            (b']', _) => (Tok::RBracket, 1),
            (b',', _) => (Tok::Comma, 1),
            (b'=', b'~') => (Tok::Re, 2),
            (b'=', b'=') => (Tok::EqEq, 2),
            (b'=', _) => (Tok::Eq, 1),
            (b'!', b'=') => (Tok::Neq, 2),
            (b'!', b'~') => (Tok::Nre, 2),
            (b'|', b'=') => (Tok::PipeEq, 2),
            (b'|', b'~') => (Tok::PipeRe, 2),
            (b'|', b'>') => (Tok::PipeGt, 2),
            (b'|', _) => (Tok::Pipe, 1),
            (b'>', b'=') => (Tok::Ge, 2),
            (b'>', _) => (Tok::Gt, 1),
            (b'<', b'=') => (Tok::Le, 2),
            (b'<', _) => (Tok::Lt, 1),
            (b'+', _) => (Tok::Plus, 1),
            (b'-', _) => (Tok::Minus, 1),
            (b'*', _) => (Tok::Star, 1),
            (b'/', _) => (Tok::Slash, 1),
            (b'%', _) => (Tok::Percent, 1),
            (b'^', _) => (Tok::Caret, 1),
            (b'"', _) => {
                let (s, len) = quoted(input, i)?;
                (Tok::Str(s), len)
            }
            (b'`', _) => {
                let end = input[i + 1..]
                    .find('`')
                    .ok_or_else(|| LogqlError::parse(i, "unterminated raw string"))?;
                (Tok::Str(input[i + 1..i + 1 + end].to_string()), end + 2)
            }
            (b'0'..=b'9', _) | (b'.', b'0'..=b'9') => number(input, i)?,
            (c, _) if c.is_ascii_alphabetic() || c == b'_' => {
                let mut j = i;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'.')
                {
                    j += 1;
                }
                (Tok::Ident(input[i..j].to_string()), j - i)
            }
            (b'$', _) => {
                return Err(LogqlError::parse(
                    i,
                    "unexpected '$': dashboard variables must be substituted before querying",
                ))
            }
            _ => {
                let ch = input[i..].chars().next().unwrap_or('?');
                return Err(LogqlError::parse(i, format!("unexpected character {ch:?}")));
            }
        };
        out.push((tok, start));
        i += len;
    }
    out.push((Tok::Eof, input.len()));
    Ok(out)
}

/// A double-quoted string starting at `at`: (value, bytes consumed).
fn quoted(input: &str, at: usize) -> Result<(String, usize), LogqlError> {
    let mut out = String::new();
    let mut chars = input[at + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        match c {
            '"' => return Ok((out, off + 2)),
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'u' => {
                        let hex: String = (0..4)
                            .filter_map(|_| chars.next().map(|(_, h)| h))
                            .collect();
                        let ch = u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| LogqlError::parse(at + off, "bad \\u escape"))?;
                        out.push(ch);
                    }
                    other => {
                        return Err(LogqlError::parse(
                            at + off,
                            format!(
                            "unknown escape sequence \\{other} (use a raw `string` for regexes)"
                        ),
                        ))
                    }
                }
            }
            c => out.push(c),
        }
    }
    Err(LogqlError::parse(at, "unterminated string"))
}

/// A number, or a duration when unit letters follow.
fn number(input: &str, at: usize) -> Result<(Tok, usize), LogqlError> {
    let b = input.as_bytes();
    let mut j = at;
    while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
        j += 1;
    }
    if j < b.len() && (b[j] == b'e' || b[j] == b'E') && j + 1 < b.len() {
        let k = if b[j + 1] == b'+' || b[j + 1] == b'-' {
            j + 2
        } else {
            j + 1
        };
        if k < b.len() && b[k].is_ascii_digit() {
            j = k;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
        }
    }
    if j < b.len() && (b[j].is_ascii_alphabetic() || b[j] == 0xC2) {
        // duration: digits and units up to the next non-alphanumeric
        let mut k = j;
        while k < b.len() && (b[k].is_ascii_alphanumeric() || b[k] == b'.' || b[k] >= 0x80) {
            k += 1;
        }
        let text = &input[at..k];
        let ns = parse_duration(text).map_err(|e| LogqlError::parse(at, e))?;
        return Ok((Tok::Dur(ns), k - at));
    }
    let text = &input[at..j];
    let v: f64 = text
        .parse()
        .map_err(|_| LogqlError::parse(at, format!("bad number {text:?}")))?;
    Ok((Tok::Num(v), j - at))
}

/// Prometheus/Go durations: `1h30m`, `5m`, `250ms`, `1.5s`, `2d`, `1w`, `1y`.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let mut total: f64 = 0.0;
    let mut rest = text;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("bad duration {text:?}"));
        }
        let n: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("bad duration {text:?}"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86400e9,
            "w" => 7.0 * 86400e9,
            "y" => 365.0 * 86400e9,
            "" => return Err(format!("duration {text:?} lacks a unit")),
            u => return Err(format!("unknown duration unit {u:?} in {text:?}")),
        };
        total += n * unit;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(format!("duration {text:?} out of range"));
    }
    Ok(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_durations() {
        let t: Vec<Tok> = tokenize(r#"{a=~"x\"y"} |= `r\d` [1h30m] >= 2.5"#)
            .unwrap()
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(
            t,
            vec![
                Tok::LBrace,
                Tok::Ident("a".into()),
                Tok::Re,
                Tok::Str("x\"y".into()),
                Tok::RBrace,
                Tok::PipeEq,
                Tok::Str(r"r\d".into()),
                Tok::LBracket,
                Tok::Dur(5400 * 1_000_000_000),
                Tok::RBracket,
                Tok::Ge,
                Tok::Num(2.5),
                Tok::Eof
            ]
        );
        assert_eq!(parse_duration("250ms").unwrap(), 250_000_000);
        assert!(parse_duration("5x").is_err());
        assert!(tokenize("{a=\"b}").is_err());
        assert!(tokenize("count_over_time({a=\"b\"}[$__auto])").is_err());
    }
}
