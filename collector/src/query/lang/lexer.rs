//! Tokens of the trace search language, each with its character offset.
//!
//! Bare words run until whitespace, a parenthesis, a quote or an operator
//! character; `AND`, `OR` and `NOT` (any case) are keywords. Quoted strings
//! use `"` with the escapes `\"`, `\\`, `\*`, `\n`, `\t`. An unescaped `*` in
//! a word or string is a wildcard; the lexer records the whole-value regex it
//! stands for, so the parser never has to re-scan.

use super::ParseError;

/// A comparison operator as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpTok {
    Eq,
    Ne,
    Re,
    NotRe,
    Lt,
    Le,
    Gt,
    Ge,
}

impl OpTok {
    pub fn as_str(self) -> &'static str {
        match self {
            OpTok::Eq => "=",
            OpTok::Ne => "!=",
            OpTok::Re => "=~",
            OpTok::NotRe => "!~",
            OpTok::Lt => "<",
            OpTok::Le => "<=",
            OpTok::Gt => ">",
            OpTok::Ge => ">=",
        }
    }
}

/// A word or quoted string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The text with escapes resolved (wildcards kept as `*`).
    pub text: String,
    /// The anchored regex the value stands for, when it holds an unescaped `*`.
    pub glob: Option<String>,
    pub quoted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    LParen,
    RParen,
    And,
    Or,
    Not,
    Op(OpTok),
    Word(Word),
    Eof,
}

impl Tok {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::And => "AND".into(),
            Tok::Or => "OR".into(),
            Tok::Not => "NOT".into(),
            Tok::Op(op) => format!("'{}'", op.as_str()),
            Tok::Word(w) if w.quoted => format!("\"{}\"", w.text),
            Tok::Word(w) => format!("'{}'", w.text),
            Tok::Eof => "the end of the query".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    /// Character offset (0-based) of the token's first character.
    pub pos: usize,
}

fn is_op_char(c: char) -> bool {
    matches!(c, '=' | '!' | '<' | '>' | '~')
}

fn ends_bare_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '"') || is_op_char(c)
}

/// Split `input` into tokens, ending with [`Tok::Eof`].
pub fn lex(input: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let tok = match c {
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            '"' => {
                let (word, next) = quoted(&chars, i)?;
                i = next;
                Tok::Word(word)
            }
            c if is_op_char(c) => {
                let next = chars.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('=', Some('~')) => (OpTok::Re, 2),
                    ('=', Some('=')) => (OpTok::Eq, 2),
                    ('=', _) => (OpTok::Eq, 1),
                    ('!', Some('=')) => (OpTok::Ne, 2),
                    ('!', Some('~')) => (OpTok::NotRe, 2),
                    ('<', Some('=')) => (OpTok::Le, 2),
                    ('<', _) => (OpTok::Lt, 1),
                    ('>', Some('=')) => (OpTok::Ge, 2),
                    ('>', _) => (OpTok::Gt, 1),
                    _ => {
                        return Err(ParseError::new(
                            pos,
                            format!("unexpected '{c}' (operators are =, !=, =~, !~, <, <=, >, >=)"),
                        ))
                    }
                };
                i += len;
                Tok::Op(op)
            }
            _ => {
                let start = i;
                while i < chars.len() && !ends_bare_word(chars[i]) {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                match text.to_ascii_uppercase().as_str() {
                    "AND" => Tok::And,
                    "OR" => Tok::Or,
                    "NOT" => Tok::Not,
                    _ => {
                        let glob = text
                            .contains('*')
                            .then(|| glob_regex(text.chars().map(|c| (c, false))));
                        Tok::Word(Word {
                            text,
                            glob,
                            quoted: false,
                        })
                    }
                }
            }
        };
        out.push(Token { tok, pos });
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: chars.len(),
    });
    Ok(out)
}

/// A `"…"` string starting at `start`; returns it and the index after it.
fn quoted(chars: &[char], start: usize) -> Result<(Word, usize), ParseError> {
    // (character, escaped)
    let mut content: Vec<(char, bool)> = Vec::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => return Err(ParseError::new(start, "unterminated string: missing '\"'")),
            Some('"') => break,
            Some('\\') => {
                let escaped = match chars.get(i + 1) {
                    Some('"') => '"',
                    Some('\\') => '\\',
                    Some('*') => '*',
                    Some('n') => '\n',
                    Some('t') => '\t',
                    Some(other) => {
                        return Err(ParseError::new(
                            i,
                            format!("unknown escape '\\{other}' (use \\\", \\\\, \\*, \\n or \\t)"),
                        ))
                    }
                    None => {
                        return Err(ParseError::new(start, "unterminated string: missing '\"'"))
                    }
                };
                content.push((escaped, true));
                i += 2;
            }
            Some(&c) => {
                content.push((c, false));
                i += 1;
            }
        }
    }
    let text: String = content.iter().map(|(c, _)| *c).collect();
    let glob = content
        .iter()
        .any(|&(c, esc)| c == '*' && !esc)
        .then(|| glob_regex(content.iter().copied()));
    Ok((
        Word {
            text,
            glob,
            quoted: true,
        },
        i + 1,
    ))
}

/// The regex of a wildcard value: literal characters escaped, each unescaped
/// `*` as `.*`.
fn glob_regex(chars: impl Iterator<Item = (char, bool)>) -> String {
    let mut out = String::new();
    let mut buf = [0u8; 4];
    for (c, escaped) in chars {
        if c == '*' && !escaped {
            out.push_str(".*");
        } else {
            regex_syntax::escape_into(c.encode_utf8(&mut buf), &mut out);
        }
    }
    out
}
