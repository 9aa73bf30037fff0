//! The syntax tree the parser produces and the engine executes: a boolean
//! expression over per-span predicates, already validated and typed (kinds
//! and statuses resolved, numbers and durations parsed, wildcards turned into
//! anchored regexes).

use std::fmt;

use crate::query::{SpanKind, TraceQuery};

/// A boolean expression over the predicates of one span.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Every sub-expression holds (at least two).
    And(Vec<Expr>),
    /// At least one sub-expression holds (at least two).
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Pred(Pred),
}

/// A string-valued field of a span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextField {
    Service,
    Operation,
    /// 32 lower-case hex characters.
    TraceId,
    /// A span or resource attribute (also the synthetic `error`, `span.kind`
    /// and `otel.status_code` tags), by its full dotted name.
    Attr(String),
}

/// How a text value is matched: whole value, case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextMatch {
    Exact(String),
    /// An anchored regex (the whole value must match), from `=~` or a `*` wildcard.
    Pattern(String),
}

/// A comparison of an ordered value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// Whether `a <op> b` holds.
    pub fn holds<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// The OTLP status of a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanStatus {
    Unset,
    Ok,
    Error,
}

impl SpanStatus {
    /// The OTLP `StatusCode` number.
    pub fn code(self) -> u64 {
        match self {
            SpanStatus::Unset => 0,
            SpanStatus::Ok => 1,
            SpanStatus::Error => 2,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "unset" => Some(SpanStatus::Unset),
            "ok" => Some(SpanStatus::Ok),
            "error" => Some(SpanStatus::Error),
            _ => None,
        }
    }
}

/// One condition on a single span.
#[derive(Debug, Clone, PartialEq)]
pub enum Pred {
    /// `field = value` / `=~` (or, `negated`, `!=` / `!~`). A negated
    /// attribute condition needs the attribute to be present: `a != x`
    /// matches spans that have `a` with another value (`NOT a = x` also
    /// matches spans without `a`).
    Text {
        field: TextField,
        matches: TextMatch,
        negated: bool,
    },
    /// `attr <op> number`: attribute values that read as numbers, compared
    /// numerically (only `<`, `<=`, `>`, `>=`; `=` compares text).
    Number {
        key: String,
        op: CmpOp,
        value: f64,
    },
    /// `duration <op> 250ms`, in nanoseconds.
    Duration {
        op: CmpOp,
        ns: u64,
    },
    Kind {
        kind: SpanKind,
        negated: bool,
    },
    Status {
        status: SpanStatus,
        negated: bool,
    },
}

impl Expr {
    /// `a AND b`, flattening nested ANDs.
    pub fn and(parts: Vec<Expr>) -> Option<Expr> {
        let mut flat = Vec::with_capacity(parts.len());
        for p in parts {
            match p {
                Expr::And(inner) => flat.extend(inner),
                other => flat.push(other),
            }
        }
        match flat.len() {
            0 => None,
            1 => flat.pop(),
            _ => Some(Expr::And(flat)),
        }
    }

    /// The Jaeger search's conditions (service, operation, tags as exact
    /// text, min/max duration) as one expression; `None` when there are none.
    /// The time window and limit are not part of the expression.
    pub fn from_trace_query(q: &TraceQuery) -> Option<Expr> {
        let text = |field, value: &str| {
            Expr::Pred(Pred::Text {
                field,
                matches: TextMatch::Exact(value.to_owned()),
                negated: false,
            })
        };
        let mut parts = Vec::new();
        if let Some(s) = &q.service {
            parts.push(text(TextField::Service, s));
        }
        if let Some(op) = &q.operation {
            parts.push(text(TextField::Operation, op));
        }
        for (k, v) in &q.tags {
            if k == "service.name" {
                parts.push(text(TextField::Service, v));
            } else {
                parts.push(text(TextField::Attr(k.clone()), v));
            }
        }
        if let Some(ns) = q.min_duration_ns {
            parts.push(Expr::Pred(Pred::Duration { op: CmpOp::Ge, ns }));
        }
        if let Some(ns) = q.max_duration_ns {
            parts.push(Expr::Pred(Pred::Duration { op: CmpOp::Le, ns }));
        }
        Expr::and(parts)
    }
}

/// A quoted string of the language (escapes `"`, `\` and `*`).
fn quote(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '*' => f.write_str("\\*")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// Query text that parses back to the same expression (for logs and tests).
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let joined = |f: &mut fmt::Formatter<'_>, parts: &[Expr], sep: &str| {
            f.write_str("(")?;
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                write!(f, "{p}")?;
            }
            f.write_str(")")
        };
        match self {
            Expr::And(parts) => joined(f, parts, " AND "),
            Expr::Or(parts) => joined(f, parts, " OR "),
            Expr::Not(inner) => write!(f, "NOT {inner}"),
            Expr::Pred(p) => write!(f, "{p}"),
        }
    }
}

impl fmt::Display for Pred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pred::Text {
                field,
                matches,
                negated,
            } => {
                match field {
                    TextField::Service => f.write_str("service")?,
                    TextField::Operation => f.write_str("operation")?,
                    TextField::TraceId => f.write_str("trace_id")?,
                    TextField::Attr(key) => quote(f, key)?,
                }
                match (matches, negated) {
                    (TextMatch::Exact(v), false) => f.write_str(" = ").and_then(|()| quote(f, v)),
                    (TextMatch::Exact(v), true) => f.write_str(" != ").and_then(|()| quote(f, v)),
                    (TextMatch::Pattern(re), false) => {
                        f.write_str(" =~ ").and_then(|()| quote(f, re))
                    }
                    (TextMatch::Pattern(re), true) => {
                        f.write_str(" !~ ").and_then(|()| quote(f, re))
                    }
                }
            }
            Pred::Number { key, op, value } => {
                quote(f, key)?;
                write!(f, " {} {value}", op.as_str())
            }
            Pred::Duration { op, ns } => write!(f, "duration {} {ns}ns", op.as_str()),
            Pred::Kind { kind, negated } => {
                let name = match kind {
                    SpanKind::Unspecified => "unspecified",
                    k => k.as_str(),
                };
                write!(f, "kind {} {name}", if *negated { "!=" } else { "=" })
            }
            Pred::Status { status, negated } => {
                let name = match status {
                    SpanStatus::Unset => "unset",
                    SpanStatus::Ok => "ok",
                    SpanStatus::Error => "error",
                };
                write!(f, "status {} {name}", if *negated { "!=" } else { "=" })
            }
        }
    }
}
