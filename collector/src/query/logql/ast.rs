//! The LogQL syntax tree of the supported subset.

use regex::Regex;

use crate::query::LabelMatcher;

/// A whole query.
#[derive(Debug, Clone)]
pub enum Expr {
    /// `{selector} | stages…`: answered with streams.
    Log(LogExpr),
    /// Anything numeric: answered with a matrix, vector or scalar.
    Metric(MetricExpr),
}

/// A stream selector with its pipeline.
#[derive(Debug, Clone)]
pub struct LogExpr {
    pub selector: Vec<LabelMatcher>,
    pub stages: Vec<Stage>,
}

/// Line filter operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineOp {
    /// `|=`
    Contains,
    /// `!=`
    NotContains,
    /// `|~`
    Match,
    /// `!~`
    NotMatch,
}

/// One pipeline stage.
#[derive(Debug, Clone)]
pub enum Stage {
    /// `|= "a" or "b"` etc.: any of the values (for `!=`/`!~`: none of them).
    Line {
        op: LineOp,
        values: Vec<String>,
        /// Unanchored regexes for `|~`/`!~`, one per value.
        regexes: Vec<Regex>,
    },
    Json,
    Logfmt,
    Regexp(Regex),
    Labels(LabelPred),
    Drop(Vec<String>),
    Keep(Vec<String>),
}

/// Comparison operators of numeric label filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl CmpOp {
    pub fn apply(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
        }
    }
}

/// A label filter expression (`| a="x" and (b > 5 or c=~"y.*")`).
#[derive(Debug, Clone)]
pub enum LabelPred {
    And(Box<LabelPred>, Box<LabelPred>),
    Or(Box<LabelPred>, Box<LabelPred>),
    Str(LabelMatcher),
    /// `name op number`; durations are compared in seconds.
    Num {
        name: String,
        op: CmpOp,
        value: f64,
        duration: bool,
    },
}

/// Range aggregations over log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeFn {
    CountOverTime,
    Rate,
    BytesOverTime,
    BytesRate,
}

/// Vector aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Topk,
    Bottomk,
}

/// `by (…)` or `without (…)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    pub without: bool,
    pub labels: Vec<String>,
}

/// Arithmetic between metric expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl BinOp {
    pub fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
            BinOp::Mod => a % b,
            BinOp::Pow => a.powf(b),
        }
    }
}

#[derive(Debug, Clone)]
pub enum MetricExpr {
    Range {
        func: RangeFn,
        log: LogExpr,
        range_ns: u64,
    },
    Agg {
        op: AggOp,
        grouping: Option<Grouping>,
        /// `k` of topk/bottomk.
        param: Option<usize>,
        inner: Box<MetricExpr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<MetricExpr>,
        rhs: Box<MetricExpr>,
    },
    /// A number.
    Scalar(f64),
    /// `vector(x)`.
    Vector(f64),
}
