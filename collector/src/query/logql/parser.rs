//! Recursive-descent parser for the supported LogQL subset. Anything outside
//! it is reported as [`LogqlError::Unsupported`] naming the construct.

use regex::Regex;

use super::ast::*;
use super::lexer::{tokenize, Spanned, Tok};
use super::LogqlError;
use crate::query::{LabelMatcher, MatchOp};

/// Parse a whole query.
pub fn parse(input: &str) -> Result<Expr, LogqlError> {
    let toks = tokenize(input)?;
    let mut p = Parser { toks, i: 0 };
    if p.peek() == &Tok::LBrace {
        let log = p.log_expr()?;
        p.expect_eof()?;
        return Ok(Expr::Log(log));
    }
    let e = p.expr(0)?;
    p.expect_eof()?;
    Ok(Expr::Metric(e))
}

struct Parser {
    toks: Vec<Spanned>,
    i: usize,
}

const RANGE_FNS: &[&str] = &["count_over_time", "rate", "bytes_over_time", "bytes_rate"];
const UNSUPPORTED_RANGE_FNS: &[&str] = &[
    "avg_over_time",
    "sum_over_time",
    "min_over_time",
    "max_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "quantile_over_time",
    "first_over_time",
    "last_over_time",
    "absent_over_time",
    "rate_counter",
];
const AGG_OPS: &[&str] = &["sum", "avg", "min", "max", "count", "topk", "bottomk"];
const UNSUPPORTED_FNS: &[&str] = &[
    "stddev",
    "stdvar",
    "sort",
    "sort_desc",
    "label_replace",
    "approx_topk",
];

fn binop(t: &Tok) -> Option<(BinOp, u8)> {
    Some(match t {
        Tok::Plus => (BinOp::Add, 1),
        Tok::Minus => (BinOp::Sub, 1),
        Tok::Star => (BinOp::Mul, 2),
        Tok::Slash => (BinOp::Div, 2),
        Tok::Percent => (BinOp::Mod, 2),
        Tok::Caret => (BinOp::Pow, 3),
        _ => return None,
    })
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)].0
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.i + n).min(self.toks.len() - 1)].0
    }

    fn pos(&self) -> usize {
        self.toks[self.i.min(self.toks.len() - 1)].1
    }

    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn err(&self, msg: impl Into<String>) -> LogqlError {
        LogqlError::parse(self.pos(), msg)
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<(), LogqlError> {
        if *self.peek() == want {
            self.next();
            Ok(())
        } else {
            Err(self.err(format!("expected {what}, found {}", describe(self.peek()))))
        }
    }

    fn expect_eof(&mut self) -> Result<(), LogqlError> {
        match self.peek() {
            Tok::Eof => Ok(()),
            t => Err(self.err(format!("unexpected {}", describe(t)))),
        }
    }

    fn ident(&mut self, what: &str) -> Result<String, LogqlError> {
        match self.next() {
            Tok::Ident(s) => Ok(s),
            t => {
                self.i = self.i.saturating_sub(1);
                Err(self.err(format!("expected {what}, found {}", describe(&t))))
            }
        }
    }

    fn string(&mut self, what: &str) -> Result<String, LogqlError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.next();
                Ok(s)
            }
            t => Err(self.err(format!("expected {what}, found {}", describe(&t)))),
        }
    }

    // ---- metric expressions -------------------------------------------

    /// Precedence climbing over + - * / % ^.
    fn expr(&mut self, min_prec: u8) -> Result<MetricExpr, LogqlError> {
        let mut lhs = self.unary()?;
        loop {
            let t = self.peek().clone();
            if matches!(
                t,
                Tok::EqEq | Tok::Neq | Tok::Gt | Tok::Ge | Tok::Lt | Tok::Le
            ) {
                return Err(LogqlError::Unsupported(
                    "comparison operators between metric queries".into(),
                ));
            }
            if let Tok::Ident(w) = &t {
                if matches!(w.as_str(), "and" | "or" | "unless") {
                    return Err(LogqlError::Unsupported(format!("set operator '{w}'")));
                }
            }
            let Some((op, prec)) = binop(&t) else { break };
            if prec < min_prec {
                break;
            }
            self.next();
            if let Tok::Ident(w) = self.peek() {
                if matches!(
                    w.as_str(),
                    "on" | "ignoring" | "group_left" | "group_right" | "bool"
                ) {
                    return Err(LogqlError::Unsupported(format!(
                        "vector matching modifier '{w}'"
                    )));
                }
            }
            // ^ is right-associative
            let next_min = if op == BinOp::Pow { prec } else { prec + 1 };
            let rhs = self.expr(next_min)?;
            lhs = MetricExpr::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<MetricExpr, LogqlError> {
        match self.peek().clone() {
            Tok::Minus => {
                self.next();
                let inner = self.unary()?;
                Ok(match inner {
                    MetricExpr::Scalar(v) => MetricExpr::Scalar(-v),
                    other => MetricExpr::Binary {
                        op: BinOp::Mul,
                        lhs: Box::new(MetricExpr::Scalar(-1.0)),
                        rhs: Box::new(other),
                    },
                })
            }
            Tok::Plus => {
                self.next();
                self.unary()
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<MetricExpr, LogqlError> {
        match self.peek().clone() {
            Tok::Num(v) => {
                self.next();
                Ok(MetricExpr::Scalar(v))
            }
            Tok::LParen => {
                self.next();
                let e = self.expr(0)?;
                self.expect(Tok::RParen, "')'")?;
                Ok(e)
            }
            Tok::LBrace => Err(self.err(
                "a log query cannot be used here; wrap it in a range aggregation like count_over_time({…}[5m])",
            )),
            Tok::Ident(name) => {
                self.next();
                self.function(&name)
            }
            t => Err(self.err(format!("unexpected {}", describe(&t)))),
        }
    }

    fn function(&mut self, name: &str) -> Result<MetricExpr, LogqlError> {
        if name == "vector" {
            self.expect(Tok::LParen, "'(' after vector")?;
            let v = self.number("a number in vector()")?;
            self.expect(Tok::RParen, "')'")?;
            return Ok(MetricExpr::Vector(v));
        }
        if RANGE_FNS.contains(&name) {
            return self.range_fn(name);
        }
        if AGG_OPS.contains(&name) {
            return self.aggregation(name);
        }
        if UNSUPPORTED_RANGE_FNS.contains(&name) || UNSUPPORTED_FNS.contains(&name) {
            return Err(LogqlError::Unsupported(format!("function '{name}'")));
        }
        Err(self.err(format!("unknown function or keyword '{name}'")))
    }

    fn number(&mut self, what: &str) -> Result<f64, LogqlError> {
        let neg = if *self.peek() == Tok::Minus {
            self.next();
            true
        } else {
            false
        };
        match self.next() {
            Tok::Num(v) => Ok(if neg { -v } else { v }),
            t => {
                self.i = self.i.saturating_sub(1);
                Err(self.err(format!("expected {what}, found {}", describe(&t))))
            }
        }
    }

    fn range_fn(&mut self, name: &str) -> Result<MetricExpr, LogqlError> {
        let func = match name {
            "count_over_time" => RangeFn::CountOverTime,
            "rate" => RangeFn::Rate,
            "bytes_over_time" => RangeFn::BytesOverTime,
            _ => RangeFn::BytesRate,
        };
        self.expect(Tok::LParen, &format!("'(' after {name}"))?;
        // `({…} | …)[5m]` and `{…} | … [5m]` are both valid.
        let log = if *self.peek() == Tok::LParen {
            self.next();
            let log = self.log_expr()?;
            self.expect(Tok::RParen, "')'")?;
            log
        } else {
            self.log_expr()?
        };
        self.expect(Tok::LBracket, "a range like [5m]")?;
        let range_ns = match self.next() {
            Tok::Dur(d) if d > 0 => d,
            t => {
                self.i = self.i.saturating_sub(1);
                return Err(self.err(format!(
                    "expected a positive duration like 5m, found {}",
                    describe(&t)
                )));
            }
        };
        self.expect(Tok::RBracket, "']'")?;
        if let Tok::Ident(w) = self.peek() {
            if w == "offset" {
                return Err(LogqlError::Unsupported("the offset modifier".into()));
            }
        }
        self.expect(Tok::RParen, &format!("')' closing {name}"))?;
        Ok(MetricExpr::Range {
            func,
            log,
            range_ns,
        })
    }

    fn grouping(&mut self) -> Result<Option<Grouping>, LogqlError> {
        let without = match self.peek() {
            Tok::Ident(w) if w == "by" => false,
            Tok::Ident(w) if w == "without" => true,
            _ => return Ok(None),
        };
        self.next();
        self.expect(Tok::LParen, "'(' after by/without")?;
        let mut labels = Vec::new();
        while *self.peek() != Tok::RParen {
            labels.push(self.ident("a label name")?);
            if *self.peek() == Tok::Comma {
                self.next();
            } else {
                break;
            }
        }
        self.expect(Tok::RParen, "')' closing the label list")?;
        Ok(Some(Grouping { without, labels }))
    }

    fn aggregation(&mut self, name: &str) -> Result<MetricExpr, LogqlError> {
        let op = match name {
            "sum" => AggOp::Sum,
            "avg" => AggOp::Avg,
            "min" => AggOp::Min,
            "max" => AggOp::Max,
            "count" => AggOp::Count,
            "topk" => AggOp::Topk,
            _ => AggOp::Bottomk,
        };
        let mut grouping = self.grouping()?;
        self.expect(Tok::LParen, &format!("'(' after {name}"))?;
        let param = if matches!(op, AggOp::Topk | AggOp::Bottomk) {
            let k = self.number("k, the number of series")?;
            if k < 1.0 || k.fract() != 0.0 || k > 1e6 {
                return Err(self.err(format!("{name}: k must be a positive integer, got {k}")));
            }
            self.expect(Tok::Comma, "','")?;
            Some(k as usize)
        } else {
            None
        };
        let inner = self.expr(0)?;
        self.expect(Tok::RParen, &format!("')' closing {name}"))?;
        if grouping.is_none() {
            grouping = self.grouping()?;
        }
        Ok(MetricExpr::Agg {
            op,
            grouping,
            param,
            inner: Box::new(inner),
        })
    }

    // ---- log expressions ----------------------------------------------

    fn log_expr(&mut self) -> Result<LogExpr, LogqlError> {
        let selector = self.selector()?;
        let mut stages = Vec::new();
        loop {
            match self.peek().clone() {
                Tok::PipeEq | Tok::Neq | Tok::PipeRe | Tok::Nre => {
                    let t = self.next();
                    stages.push(self.line_filter(&t)?);
                }
                Tok::PipeGt => {
                    return Err(LogqlError::Unsupported(
                        "the pattern line filter '|>'".into(),
                    ))
                }
                Tok::Pipe => {
                    self.next();
                    stages.push(self.pipe_stage()?);
                }
                _ => break,
            }
        }
        Ok(LogExpr { selector, stages })
    }

    fn selector(&mut self) -> Result<Vec<LabelMatcher>, LogqlError> {
        self.expect(Tok::LBrace, "'{'")?;
        let mut out = Vec::new();
        while *self.peek() != Tok::RBrace {
            let name = self.ident("a label name")?;
            let op = match self.next() {
                Tok::Eq => MatchOp::Eq,
                Tok::Neq => MatchOp::Neq,
                Tok::Re => MatchOp::Re,
                Tok::Nre => MatchOp::Nre,
                t => {
                    self.i = self.i.saturating_sub(1);
                    return Err(self.err(format!(
                        "expected one of = != =~ !~ after {name}, found {}",
                        describe(&t)
                    )));
                }
            };
            let at = self.pos();
            let value = self.string("a quoted label value")?;
            out.push(LabelMatcher::new(&name, op, &value).map_err(|e| LogqlError::parse(at, e))?);
            if *self.peek() == Tok::Comma {
                self.next();
            } else {
                break;
            }
        }
        self.expect(Tok::RBrace, "'}' or ','")?;
        if out.is_empty() {
            return Err(
                self.err("queries require at least one label matcher, e.g. {service_name=\"api\"}")
            );
        }
        Ok(out)
    }

    fn line_filter(&mut self, t: &Tok) -> Result<Stage, LogqlError> {
        let op = match t {
            Tok::PipeEq => LineOp::Contains,
            Tok::Neq => LineOp::NotContains,
            Tok::PipeRe => LineOp::Match,
            _ => LineOp::NotMatch,
        };
        let mut values = Vec::new();
        if let Tok::Ident(f) = self.peek() {
            if matches!(f.as_str(), "ip" | "pattern") {
                return Err(LogqlError::Unsupported(format!("the {f}() line filter")));
            }
        }
        values.push(self.string("a quoted string after the line filter")?);
        while matches!(self.peek(), Tok::Ident(w) if w == "or") {
            self.next();
            values.push(self.string("a quoted string after 'or'")?);
        }
        let mut regexes = Vec::new();
        if matches!(op, LineOp::Match | LineOp::NotMatch) {
            for v in &values {
                regexes.push(
                    Regex::new(v)
                        .map_err(|e| self.err(format!("invalid regular expression {v:?}: {e}")))?,
                );
            }
        }
        Ok(Stage::Line {
            op,
            values,
            regexes,
        })
    }

    fn pipe_stage(&mut self) -> Result<Stage, LogqlError> {
        let Tok::Ident(word) = self.peek().clone() else {
            if *self.peek() == Tok::LParen {
                return Ok(Stage::Labels(self.label_pred()?));
            }
            return Err(self.err(format!(
                "expected a parser or label filter after '|', found {}",
                describe(self.peek())
            )));
        };
        // a label filter starts with `name op`
        if is_filter_op(self.peek_at(1)) {
            return Ok(Stage::Labels(self.label_pred()?));
        }
        self.next();
        match word.as_str() {
            "json" | "logfmt" => {
                if matches!(self.peek(), Tok::Ident(_) | Tok::Minus) {
                    return Err(LogqlError::Unsupported(format!(
                        "parameters or flags of the {word} parser"
                    )));
                }
                Ok(if word == "json" { Stage::Json } else { Stage::Logfmt })
            }
            "regexp" => {
                let at = self.pos();
                let re = self.string("a quoted regular expression after regexp")?;
                let re = Regex::new(&re).map_err(|e| {
                    LogqlError::parse(at, format!("invalid regular expression {re:?}: {e}"))
                })?;
                if re.capture_names().flatten().next().is_none() {
                    return Err(LogqlError::parse(
                        at,
                        "regexp needs at least one named capture group (?P<name>…)",
                    ));
                }
                Ok(Stage::Regexp(re))
            }
            "drop" | "keep" => {
                let mut names = Vec::new();
                loop {
                    names.push(self.ident("a label name")?);
                    if matches!(self.peek(), Tok::Eq | Tok::Neq | Tok::Re | Tok::Nre) {
                        return Err(LogqlError::Unsupported(format!(
                            "label matchers in {word} (only names)"
                        )));
                    }
                    if *self.peek() == Tok::Comma {
                        self.next();
                    } else {
                        break;
                    }
                }
                Ok(if word == "drop" {
                    Stage::Drop(names)
                } else {
                    Stage::Keep(names)
                })
            }
            "unwrap" => Err(LogqlError::Unsupported("unwrap".into())),
            "line_format" | "label_format" | "pattern" | "unpack" | "decolorize" | "distinct" => {
                Err(LogqlError::Unsupported(format!("the {word} stage")))
            }
            other => Err(self.err(format!(
                "unknown pipeline stage '{other}' (supported: json, logfmt, regexp, drop, keep, label filters)"
            ))),
        }
    }

    fn label_pred(&mut self) -> Result<LabelPred, LogqlError> {
        let mut lhs = self.label_and()?;
        while matches!(self.peek(), Tok::Ident(w) if w == "or") {
            self.next();
            let rhs = self.label_and()?;
            lhs = LabelPred::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn label_and(&mut self) -> Result<LabelPred, LogqlError> {
        let mut lhs = self.label_atom()?;
        loop {
            let explicit = match self.peek() {
                Tok::Comma => true,
                Tok::Ident(w) => w == "and",
                _ => false,
            };
            // `| a="x" b="y"`: Loki also accepts space-separated filters
            let implicit = !explicit
                && matches!(self.peek(), Tok::Ident(w) if w != "or")
                && is_filter_op(self.peek_at(1));
            if !explicit && !implicit {
                break;
            }
            if explicit {
                self.next();
            }
            let rhs = self.label_atom()?;
            lhs = LabelPred::And(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn label_atom(&mut self) -> Result<LabelPred, LogqlError> {
        if *self.peek() == Tok::LParen {
            self.next();
            let p = self.label_pred()?;
            self.expect(Tok::RParen, "')'")?;
            return Ok(p);
        }
        let name = self.ident("a label name")?;
        let op_tok = self.next();
        let at = self.pos();
        match (op_tok.clone(), self.peek().clone()) {
            (Tok::Eq | Tok::Neq | Tok::Re | Tok::Nre, Tok::Str(v)) => {
                self.next();
                let op = match op_tok {
                    Tok::Eq => MatchOp::Eq,
                    Tok::Neq => MatchOp::Neq,
                    Tok::Re => MatchOp::Re,
                    _ => MatchOp::Nre,
                };
                let m = LabelMatcher::new(&name, op, &v).map_err(|e| LogqlError::parse(at, e))?;
                Ok(LabelPred::Str(m))
            }
            (op, Tok::Num(_) | Tok::Dur(_) | Tok::Minus) => {
                let cmp = match op {
                    Tok::Gt => CmpOp::Gt,
                    Tok::Ge => CmpOp::Ge,
                    Tok::Lt => CmpOp::Lt,
                    Tok::Le => CmpOp::Le,
                    Tok::Eq | Tok::EqEq => CmpOp::Eq,
                    Tok::Neq => CmpOp::Ne,
                    t => {
                        return Err(self.err(format!(
                            "expected a comparison operator after {name}, found {}",
                            describe(&t)
                        )))
                    }
                };
                let neg = if *self.peek() == Tok::Minus {
                    self.next();
                    -1.0
                } else {
                    1.0
                };
                let (value, duration) = match self.next() {
                    Tok::Num(v) => (v * neg, false),
                    Tok::Dur(d) => (d as f64 / 1e9 * neg, true),
                    t => {
                        self.i = self.i.saturating_sub(1);
                        return Err(self.err(format!("expected a number, found {}", describe(&t))));
                    }
                };
                Ok(LabelPred::Num {
                    name,
                    op: cmp,
                    value,
                    duration,
                })
            }
            (_, t) => Err(self.err(format!(
                "expected a label filter like {name}=\"value\" or {name} > 10, found {}",
                describe(&t)
            ))),
        }
    }
}

fn is_filter_op(t: &Tok) -> bool {
    matches!(
        t,
        Tok::Eq | Tok::Neq | Tok::Re | Tok::Nre | Tok::Gt | Tok::Ge | Tok::Lt | Tok::Le | Tok::EqEq
    )
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Eof => "end of query".into(),
        Tok::Ident(s) => format!("'{s}'"),
        Tok::Str(s) => format!("string {s:?}"),
        Tok::Num(n) => format!("number {n}"),
        Tok::Dur(d) => format!("duration {}ns", d),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(q: &str) -> MetricExpr {
        match parse(q) {
            Ok(Expr::Metric(m)) => m,
            other => panic!("{q}: {other:?}"),
        }
    }

    #[test]
    fn parses_log_queries() {
        let Ok(Expr::Log(l)) = parse(
            r#"{service_name="api", level=~"err.*"} |= "timeout" != "debug" |~ `\d+` | json | status >= 500 and method="GET" | drop __error__"#,
        ) else {
            panic!("not a log query")
        };
        assert_eq!(l.selector.len(), 2);
        assert_eq!(l.stages.len(), 6);
        assert!(matches!(l.stages[3], Stage::Json));
        assert!(matches!(l.stages[4], Stage::Labels(LabelPred::And(_, _))));
        assert!(matches!(&l.stages[5], Stage::Drop(n) if n == &["__error__"]));
    }

    #[test]
    fn parses_grafana_volume_and_health_queries() {
        let m = metric(
            r#"sum by (level, detected_level) (count_over_time({service_name="api"} | drop __error__[1m]))"#,
        );
        let MetricExpr::Agg {
            op,
            grouping,
            inner,
            ..
        } = m
        else {
            panic!()
        };
        assert_eq!(op, AggOp::Sum);
        assert_eq!(grouping.unwrap().labels, ["level", "detected_level"]);
        assert!(matches!(
            *inner,
            MetricExpr::Range {
                range_ns: 60_000_000_000,
                ..
            }
        ));
        assert!(matches!(
            metric("vector(1)+vector(1)"),
            MetricExpr::Binary { op: BinOp::Add, .. }
        ));
        let m = metric(r#"topk(3, sum(rate({a="b"}[5m])) by (service_name)) * 2"#);
        assert!(matches!(m, MetricExpr::Binary { op: BinOp::Mul, .. }));
    }

    #[test]
    fn unsupported_constructs_are_named() {
        for (q, needle) in [
            (r#"sum_over_time({a="b"} | unwrap x [5m])"#, "sum_over_time"),
            (r#"{a="b"} | line_format "{{.x}}""#, "line_format"),
            (r#"count_over_time({a="b"}[5m] offset 1h)"#, "offset"),
            (r#"rate({a="b"}[1m]) > 2"#, "comparison"),
            (
                r#"sum(rate({a="b"}[1m])) / on(x) sum(rate({a="b"}[1m]))"#,
                "on",
            ),
        ] {
            match parse(q) {
                Err(LogqlError::Unsupported(what)) => {
                    assert!(what.contains(needle), "{q}: {what}")
                }
                other => panic!("{q}: {other:?}"),
            }
        }
    }

    #[test]
    fn syntax_errors_have_positions() {
        for q in [
            "{}",
            "{a=b}",
            "{a=\"b\"",
            "count_over_time({a=\"b\"})",
            "sum(",
            "foo(1)",
            "{a=~\"(\"}",
        ] {
            assert!(matches!(parse(q), Err(LogqlError::Parse { .. })), "{q}");
        }
    }
}
