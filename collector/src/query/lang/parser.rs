//! Recursive-descent parser: tokens → [`Expr`], validating every predicate
//! (field, operator and value must fit together) with the position of the
//! offending token.
//!
//! ```text
//! query   := or? EOF
//! or      := and ( OR and )*
//! and     := unary ( AND unary )*
//! unary   := NOT unary | '(' or ')' | field op value
//! ```

use super::ast::{CmpOp, Expr, Pred, SpanStatus, TextField, TextMatch};
use super::lexer::{lex, OpTok, Tok, Token, Word};
use super::ParseError;
use crate::query::SpanKind;

/// Deepest nesting of parentheses and NOTs accepted (keeps the recursion bounded).
const MAX_DEPTH: usize = 64;

/// Parse a query; `Ok(None)` for an empty (or all-whitespace) query.
pub fn parse(input: &str) -> Result<Option<Expr>, ParseError> {
    let tokens = lex(input)?;
    let mut p = Parser { tokens, i: 0 };
    if p.peek().tok == Tok::Eof {
        return Ok(None);
    }
    let expr = p.or(0)?;
    let t = p.peek();
    if t.tok != Tok::Eof {
        let hint = match t.tok {
            Tok::RParen => "unbalanced ')'".to_owned(),
            _ => format!(
                "expected AND, OR or the end of the query, found {}",
                t.tok.describe()
            ),
        };
        return Err(ParseError::new(t.pos, hint));
    }
    Ok(Some(expr))
}

struct Parser {
    tokens: Vec<Token>,
    i: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        // The token list always ends with Eof and `i` never passes it.
        &self.tokens[self.i.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.i += 1;
        }
        t
    }

    fn or(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut parts = vec![self.and(depth)?];
        while self.peek().tok == Tok::Or {
            self.next();
            parts.push(self.and(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut parts = vec![self.unary(depth)?];
        while self.peek().tok == Tok::And {
            self.next();
            parts.push(self.unary(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::And(parts)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let t = self.next();
        if depth >= MAX_DEPTH {
            return Err(ParseError::new(
                t.pos,
                format!("nested too deeply (more than {MAX_DEPTH} levels)"),
            ));
        }
        match t.tok {
            Tok::Not => Ok(Expr::Not(Box::new(self.unary(depth + 1)?))),
            Tok::LParen => {
                let inner = self.or(depth + 1)?;
                let close = self.next();
                if close.tok != Tok::RParen {
                    return Err(ParseError::new(
                        close.pos,
                        format!(
                            "expected ')' to close the '(' at position {}, found {}",
                            t.pos,
                            close.tok.describe()
                        ),
                    ));
                }
                Ok(inner)
            }
            Tok::Word(field) => self.predicate(field, t.pos),
            other => Err(ParseError::new(
                t.pos,
                format!(
                    "expected a condition (field op value), NOT or '(', found {}",
                    other.describe()
                ),
            )),
        }
    }

    fn predicate(&mut self, field: Word, field_pos: usize) -> Result<Expr, ParseError> {
        if field.glob.is_some() {
            return Err(ParseError::new(
                field_pos,
                format!("a field name cannot hold a wildcard: '{}'", field.text),
            ));
        }
        if field.text.is_empty() {
            return Err(ParseError::new(field_pos, "empty field name"));
        }
        let op_tok = self.next();
        let Tok::Op(op) = op_tok.tok else {
            return Err(ParseError::new(
                op_tok.pos,
                format!(
                    "expected an operator (=, !=, =~, !~, <, <=, >, >=) after '{}', found {}",
                    field.text,
                    op_tok.tok.describe()
                ),
            ));
        };
        let value_tok = self.next();
        let value = match value_tok.tok {
            Tok::Word(w) => w,
            Tok::And | Tok::Or | Tok::Not => {
                return Err(ParseError::new(
                    value_tok.pos,
                    format!(
                        "{} is a keyword; quote it to use it as a value",
                        value_tok.tok.describe()
                    ),
                ))
            }
            other => {
                return Err(ParseError::new(
                    value_tok.pos,
                    format!(
                        "expected a value after '{} {}', found {}",
                        field.text,
                        op.as_str(),
                        other.describe()
                    ),
                ))
            }
        };
        let pred = resolve(&field, op, op_tok.pos, &value, value_tok.pos)?;
        Ok(Expr::Pred(pred))
    }
}

/// Turn `field op value` into a typed predicate.
fn resolve(
    field: &Word,
    op: OpTok,
    op_pos: usize,
    value: &Word,
    value_pos: usize,
) -> Result<Pred, ParseError> {
    // Quoted field names are always attributes (`"duration" = x` is the attribute).
    let name = if field.quoted {
        ""
    } else {
        field.text.as_str()
    };
    let only_eq = |what: &str| {
        ParseError::new(
            op_pos,
            format!(
                "'{}' is not supported for {what} (use = or !=)",
                op.as_str()
            ),
        )
    };
    match name {
        "service" | "service.name" => text_pred(TextField::Service, op, op_pos, value, value_pos),
        "operation" => text_pred(TextField::Operation, op, op_pos, value, value_pos),
        "trace_id" | "traceID" => {
            let mut pred = text_pred(TextField::TraceId, op, op_pos, value, value_pos)?;
            if let Pred::Text {
                matches: TextMatch::Exact(id),
                ..
            } = &mut pred
            {
                *id = normalize_trace_id(id).ok_or_else(|| {
                    ParseError::new(
                        value_pos,
                        format!("'{id}' is not a trace id (1 to 32 hex characters)"),
                    )
                })?;
            }
            Ok(pred)
        }
        "kind" | "span.kind" => {
            let negated = match op {
                OpTok::Eq => false,
                OpTok::Ne => true,
                _ => return Err(only_eq("kind")),
            };
            let kind = SpanKind::parse(&value.text.to_ascii_lowercase())
                .filter(|_| value.glob.is_none())
                .ok_or_else(|| {
                    ParseError::new(
                        value_pos,
                        format!(
                            "'{}' is not a span kind (server, client, producer, consumer, internal, unspecified)",
                            value.text
                        ),
                    )
                })?;
            Ok(Pred::Kind { kind, negated })
        }
        "status" => {
            let negated = match op {
                OpTok::Eq => false,
                OpTok::Ne => true,
                _ => return Err(only_eq("status")),
            };
            let status = SpanStatus::parse(&value.text)
                .filter(|_| value.glob.is_none())
                .ok_or_else(|| {
                    ParseError::new(
                        value_pos,
                        format!("'{}' is not a status (unset, ok, error)", value.text),
                    )
                })?;
            Ok(Pred::Status { status, negated })
        }
        "duration" => {
            let op = cmp_op(op).ok_or_else(|| {
                ParseError::new(
                    op_pos,
                    format!(
                        "'{}' is not supported for duration (use =, !=, <, <=, >, >=)",
                        op.as_str()
                    ),
                )
            })?;
            let ns = parse_duration(&value.text).map_err(|why| ParseError::new(value_pos, why))?;
            Ok(Pred::Duration { op, ns })
        }
        _ => {
            let key = field.text.clone();
            match op {
                OpTok::Lt | OpTok::Le | OpTok::Gt | OpTok::Ge => {
                    let number = value
                        .text
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|n| n.is_finite() && value.glob.is_none())
                        .ok_or_else(|| {
                            ParseError::new(
                                value_pos,
                                format!(
                                    "'{}' compares numbers: '{}' is not a number",
                                    op.as_str(),
                                    value.text
                                ),
                            )
                        })?;
                    let op = cmp_op(op).unwrap_or(CmpOp::Eq);
                    Ok(Pred::Number {
                        key,
                        op,
                        value: number,
                    })
                }
                _ => text_pred(TextField::Attr(key), op, op_pos, value, value_pos),
            }
        }
    }
}

fn cmp_op(op: OpTok) -> Option<CmpOp> {
    Some(match op {
        OpTok::Eq => CmpOp::Eq,
        OpTok::Ne => CmpOp::Ne,
        OpTok::Lt => CmpOp::Lt,
        OpTok::Le => CmpOp::Le,
        OpTok::Gt => CmpOp::Gt,
        OpTok::Ge => CmpOp::Ge,
        OpTok::Re | OpTok::NotRe => return None,
    })
}

fn text_pred(
    field: TextField,
    op: OpTok,
    op_pos: usize,
    value: &Word,
    value_pos: usize,
) -> Result<Pred, ParseError> {
    let (matches, negated) = match op {
        OpTok::Eq | OpTok::Ne => {
            let m = match &value.glob {
                Some(re) => TextMatch::Pattern(re.clone()),
                None => TextMatch::Exact(value.text.clone()),
            };
            (m, op == OpTok::Ne)
        }
        OpTok::Re | OpTok::NotRe => {
            check_regex(&value.text).map_err(|why| ParseError::new(value_pos, why))?;
            (TextMatch::Pattern(value.text.clone()), op == OpTok::NotRe)
        }
        _ => {
            let what = match field {
                TextField::Service => "service",
                TextField::Operation => "operation",
                TextField::TraceId => "trace_id",
                TextField::Attr(_) => "this field",
            };
            return Err(ParseError::new(
                op_pos,
                format!(
                    "'{}' is not supported for {what} (use =, !=, =~, !~)",
                    op.as_str()
                ),
            ));
        }
    };
    Ok(Pred::Text {
        field,
        matches,
        negated,
    })
}

/// A regex the index can run: valid syntax, no anchors or word boundaries
/// (patterns always match the whole value).
fn check_regex(re: &str) -> Result<(), String> {
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(re)
        .map_err(|e| match e {
            regex_syntax::Error::Parse(p) => format!("invalid regex: {}", p.kind()),
            regex_syntax::Error::Translate(t) => format!("invalid regex: {}", t.kind()),
            other => format!("invalid regex: {other}"),
        })?;
    if !hir.properties().look_set().is_empty() {
        return Err(
            "regex anchors and word boundaries (^, $, \\b) are not supported: a pattern always matches the whole value".into(),
        );
    }
    Ok(())
}

/// 1–32 hex characters → 32 lower-case hex characters (left-padded with zeros).
fn normalize_trace_id(raw: &str) -> Option<String> {
    if raw.is_empty() || raw.len() > 32 || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(format!("{:0>32}", raw.to_ascii_lowercase()))
}

/// `250ms`, `1.5s`, `1m30s`, `100us`/`µs`, `10ns`, `2h`, or `0`.
pub fn parse_duration(input: &str) -> Result<u64, String> {
    let bad = || {
        format!("'{input}' is not a duration (a number with a unit: ns, us, ms, s, m, h; e.g. 250ms, 1.5s)")
    };
    if input == "0" {
        return Ok(0);
    }
    let mut rest = input;
    let mut total: u128 = 0;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(f) => {
                let n = f.bytes().take_while(u8::is_ascii_digit).count();
                f.split_at(n)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        let unit_len = after
            .char_indices()
            .find(|&(_, c)| c.is_ascii_digit() || c == '.')
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| bad())?
        };
        let mut value = int.checked_mul(scale).ok_or_else(bad)?;
        // Fraction digits beyond nanosecond precision are dropped.
        let mut digit_scale = scale;
        for d in frac_part.bytes().take(20) {
            digit_scale /= 10;
            value += u128::from(d - b'0') * digit_scale;
        }
        total = total.checked_add(value).ok_or_else(bad)?;
        rest = after;
    }
    u64::try_from(total).map_err(|_| bad())
}
