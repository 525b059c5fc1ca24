//! The expression language of `filter` and `set`: small, SQL-like, exact.
//!
//! Why not jq (through the jaq crates)? jaq computes with f64, so `0.1 +
//! 0.2` would not be `0.3` and a 20-digit id would lose digits; exactness
//! is this command's hard requirement. So this is a Pratt parser and a tree
//! evaluator over the record's own values, with numbers as
//! `bigdecimal::BigDecimal`. Expressions are parsed (and their literal
//! regexes compiled) once per run; evaluation borrows strings from the
//! record instead of copying them.
//!
//! Null follows SQL: comparisons and arithmetic with null give null, `and`
//! / `or` are three-valued, and `filter` keeps a record only when the result
//! is `true`. Strings that hold numbers compare and compute as numbers when
//! the other side is a number (`amount > 100` works on `"1234.50"`); any
//! other type mismatch is an error, which makes the record a reject.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use bigdecimal::{BigDecimal, RoundingMode, Zero};
use etl_core::{Record, Value};
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Unit};
use regex::Regex;

use crate::cast::{self, format_ts, MAX_EXPONENT};

/// A syntax error at a byte offset of the expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the expression text.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at character {}: {}", self.offset + 1, self.message)
    }
}

/// How deeply an expression may nest (evaluation recurses on the tree).
const MAX_DEPTH: u32 = 200;

/// Significant digits of a division that does not terminate (decimal128's).
const DIV_DIGITS: u64 = 34;

/// A parsed expression.
#[derive(Debug)]
pub struct Expr {
    root: Node,
    /// The source text, for messages.
    pub source: String,
}

#[derive(Debug)]
enum Node {
    Lit(Lit),
    Field(String, Vec<String>),
    Neg(Box<Node>),
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Bin(BinOp, Box<Node>, Box<Node>),
    IsNull(Box<Node>, bool),
    In(Box<Node>, Vec<Node>, bool),
    Call(Func, Vec<Node>, Option<Regex>),
}

#[derive(Debug)]
enum Lit {
    Null,
    Bool(bool),
    /// The value, its text, and whether the text is a plain decimal
    /// (see [`is_plain`]), decided once.
    Num(BigDecimal, String, bool),
    Str(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BinOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Concat,
}

macro_rules! funcs {
    ($($v:ident $name:literal $min:literal $max:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Func { $($v,)* }
        impl Func {
            fn lookup(name: &str) -> Option<(Func, usize, usize)> {
                match name { $($name => Some((Func::$v, $min, $max)),)* _ => None }
            }
            fn name(self) -> &'static str {
                match self { $(Func::$v => $name,)* }
            }
        }
        /// Every function name, for `--help` and error messages.
        pub const FUNCTIONS: &[&str] = &[$($name,)*];
    };
}

funcs! {
    Lower "lower" 1 1,
    Upper "upper" 1 1,
    Trim "trim" 1 1,
    Length "length" 1 1,
    Substr "substr" 2 3,
    Replace "replace" 3 3,
    Matches "matches" 2 2,
    Contains "contains" 2 2,
    StartsWith "starts_with" 2 2,
    EndsWith "ends_with" 2 2,
    Concat "concat" 1 64,
    Coalesce "coalesce" 1 64,
    If "if" 3 3,
    Abs "abs" 1 1,
    Round "round" 1 2,
    Floor "floor" 1 1,
    Ceil "ceil" 1 1,
    Number "number" 1 1,
    String "string" 1 1,
    Year "year" 1 1,
    Month "month" 1 1,
    Day "day" 1 1,
    Hour "hour" 1 1,
    Minute "minute" 1 1,
    Second "second" 1 1,
    Weekday "weekday" 1 1,
    DatePart "date" 1 1,
    DateAdd "date_add" 3 3,
    DateDiff "date_diff" 3 3,
    Now "now" 0 0,
    Today "today" 0 0,
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Quoted(String),
    Str(String),
    Num(String),
    LParen,
    RParen,
    Comma,
    Op(&'static str),
    Eof,
}

#[allow(clippy::too_many_lines)] // one arm per token kind
fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |offset: usize, m: &str| ParseError {
        offset,
        message: m.to_owned(),
    };
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push((Tok::LParen, i));
                i += 1;
            }
            b')' => {
                out.push((Tok::RParen, i));
                i += 1;
            }
            b',' => {
                out.push((Tok::Comma, i));
                i += 1;
            }
            b'\'' | b'"' => {
                // SQL style: a doubled quote inside is one quote; backslash
                // escapes \n \t \\ and the quote.
                let q = c;
                i += 1;
                let mut s = String::new();
                loop {
                    let Some(&ch) = b.get(i) else {
                        return Err(err(start, "unterminated string"));
                    };
                    if ch == q {
                        if b.get(i + 1) == Some(&q) {
                            s.push(q as char);
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    if ch == b'\\' {
                        match b.get(i + 1) {
                            Some(b'n') => s.push('\n'),
                            Some(b't') => s.push('\t'),
                            Some(b'r') => s.push('\r'),
                            Some(&e) if e == q || e == b'\\' => s.push(e as char),
                            _ => s.push('\\'),
                        }
                        i += if matches!(b.get(i + 1), Some(b'n' | b't' | b'r'))
                            || b.get(i + 1) == Some(&q)
                            || b.get(i + 1) == Some(&b'\\')
                        {
                            2
                        } else {
                            1
                        };
                        continue;
                    }
                    let len = utf8_len(ch);
                    s.push_str(&src[i..i + len]);
                    i += len;
                }
                out.push((Tok::Str(s), start));
            }
            b'`' => {
                let end = src[i + 1..]
                    .find('`')
                    .ok_or_else(|| err(start, "unterminated `field name`"))?;
                out.push((Tok::Quoted(src[i + 1..i + 1 + end].to_owned()), start));
                i += end + 2;
            }
            b'0'..=b'9' => {
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                    i += 1;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                    let mut j = i + 1;
                    if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
                        j += 1;
                    }
                    if j < b.len() && b[j].is_ascii_digit() {
                        while j < b.len() && b[j].is_ascii_digit() {
                            j += 1;
                        }
                        i = j;
                    }
                }
                out.push((Tok::Num(src[start..i].to_owned()), start));
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                while i < b.len() {
                    let ch = b[i];
                    let word = ch.is_ascii_alphanumeric() || ch == b'_' || ch >= 0x80;
                    // A dot continues a path (`customer.name`) when a name follows.
                    let dot = ch == b'.'
                        && b.get(i + 1)
                            .is_some_and(|n| n.is_ascii_alphabetic() || *n == b'_' || *n >= 0x80);
                    if !(word || dot) {
                        break;
                    }
                    i += 1;
                }
                out.push((Tok::Ident(src[start..i].to_owned()), start));
            }
            _ => {
                let two = src.get(i..i + 2).unwrap_or("");
                let op: &'static str = match two {
                    "==" => "=",
                    "!=" | "<>" => "!=",
                    "<=" => "<=",
                    ">=" => ">=",
                    "||" => "||",
                    _ => "",
                };
                if op.is_empty() {
                    let op: &'static str = match c {
                        b'=' => "=",
                        b'<' => "<",
                        b'>' => ">",
                        b'+' => "+",
                        b'-' => "-",
                        b'*' => "*",
                        b'/' => "/",
                        b'%' => "%",
                        _ => {
                            let ch = src[i..].chars().next().unwrap_or('?');
                            return Err(err(i, &format!("unexpected character {ch:?}")));
                        }
                    };
                    out.push((Tok::Op(op), i));
                    i += 1;
                } else {
                    out.push((Tok::Op(op), i));
                    i += 2;
                }
            }
        }
    }
    out.push((Tok::Eof, src.len()));
    Ok(out)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

// ---------------------------------------------------------------- parser

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

fn kw(t: &Tok, word: &str) -> bool {
    matches!(t, Tok::Ident(s) if s.eq_ignore_ascii_case(word))
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].0
    }
    fn peek2(&self) -> &Tok {
        &self.toks[(self.pos + 1).min(self.toks.len() - 1)].0
    }
    fn at(&self) -> usize {
        self.toks[self.pos.min(self.toks.len() - 1)].1
    }
    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        self.pos += 1;
        t
    }
    fn err<T>(&self, m: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            offset: self.at(),
            message: m.into(),
        })
    }
    fn expect(&mut self, t: &Tok, what: &str) -> Result<(), ParseError> {
        if self.peek() == t {
            self.pos += 1;
            Ok(())
        } else {
            let found = describe(self.peek());
            self.err(format!("expected {what}, found {found}"))
        }
    }

    /// Parses with binding power `min`; returns the node and its depth.
    fn expr(&mut self, min: u8, depth: u32) -> Result<(Node, u32), ParseError> {
        if depth > MAX_DEPTH {
            return self.err("expression nested too deeply");
        }
        let (mut lhs, mut d) = self.prefix(depth)?;
        loop {
            let t = self.peek().clone();
            let (op, bp): (Option<BinOp>, u8) = match &t {
                _ if kw(&t, "or") => (None, 1),
                _ if kw(&t, "and") => (None, 2),
                _ if kw(&t, "is") || kw(&t, "in") => (None, 4),
                _ if kw(&t, "not") && kw(self.peek2(), "in") => (None, 4),
                Tok::Op("=") => (Some(BinOp::Eq), 4),
                Tok::Op("!=") => (Some(BinOp::Ne), 4),
                Tok::Op("<") => (Some(BinOp::Lt), 4),
                Tok::Op("<=") => (Some(BinOp::Le), 4),
                Tok::Op(">") => (Some(BinOp::Gt), 4),
                Tok::Op(">=") => (Some(BinOp::Ge), 4),
                Tok::Op("||") => (Some(BinOp::Concat), 5),
                Tok::Op("+") => (Some(BinOp::Add), 6),
                Tok::Op("-") => (Some(BinOp::Sub), 6),
                Tok::Op("*") => (Some(BinOp::Mul), 7),
                Tok::Op("/") => (Some(BinOp::Div), 7),
                Tok::Op("%") => (Some(BinOp::Rem), 7),
                _ => break,
            };
            if bp <= min {
                break;
            }
            d += 1;
            if d > MAX_DEPTH {
                return self.err("expression nested too deeply");
            }
            self.pos += 1;
            if kw(&t, "is") {
                let negated = kw(self.peek(), "not");
                if negated {
                    self.pos += 1;
                }
                if !kw(self.peek(), "null") {
                    return self.err("expected `null` after `is`");
                }
                self.pos += 1;
                lhs = Node::IsNull(Box::new(lhs), negated);
                continue;
            }
            if kw(&t, "in") || kw(&t, "not") {
                let negated = kw(&t, "not");
                if negated {
                    self.pos += 1;
                }
                self.expect(&Tok::LParen, "`(` after `in`")?;
                let mut items = Vec::new();
                loop {
                    let (n, nd) = self.expr(0, depth + 1)?;
                    d = d.max(nd + 1);
                    items.push(n);
                    if self.peek() == &Tok::Comma {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                self.expect(&Tok::RParen, "`)` closing the `in` list")?;
                lhs = Node::In(Box::new(lhs), items, negated);
                continue;
            }
            let (rhs, rd) = self.expr(bp, depth + 1)?;
            d = d.max(rd + 1);
            lhs = match op {
                Some(op) => Node::Bin(op, Box::new(lhs), Box::new(rhs)),
                None if bp == 1 => Node::Or(Box::new(lhs), Box::new(rhs)),
                None => Node::And(Box::new(lhs), Box::new(rhs)),
            };
            if d > MAX_DEPTH {
                return self.err("expression nested too deeply");
            }
        }
        Ok((lhs, d))
    }

    fn prefix(&mut self, depth: u32) -> Result<(Node, u32), ParseError> {
        let start = self.at();
        let t = self.next();
        Ok(match t {
            Tok::Num(n) => {
                let d = parse_number(&n).ok_or_else(|| ParseError {
                    offset: start,
                    message: format!("number {n} is out of range"),
                })?;
                let plain = is_plain(&n);
                (Node::Lit(Lit::Num(d, n, plain)), 1)
            }
            Tok::Str(s) => (Node::Lit(Lit::Str(s)), 1),
            Tok::Quoted(name) => (Node::Field(name.clone(), vec![name]), 1),
            Tok::LParen => {
                let (n, d) = self.expr(0, depth + 1)?;
                self.expect(&Tok::RParen, "`)`")?;
                (n, d)
            }
            Tok::Op("-") => {
                let (n, d) = self.expr(7, depth + 1)?;
                (Node::Neg(Box::new(n)), d + 1)
            }
            Tok::Ident(ref w) if w.eq_ignore_ascii_case("not") => {
                let (n, d) = self.expr(3, depth + 1)?;
                (Node::Not(Box::new(n)), d + 1)
            }
            Tok::Ident(w) => {
                let lower = w.to_ascii_lowercase();
                match lower.as_str() {
                    "null" => return Ok((Node::Lit(Lit::Null), 1)),
                    "true" => return Ok((Node::Lit(Lit::Bool(true)), 1)),
                    "false" => return Ok((Node::Lit(Lit::Bool(false)), 1)),
                    "and" | "or" | "is" | "in" => {
                        self.pos -= 1;
                        return self.err(format!("expected a value, found `{w}`"));
                    }
                    _ => {}
                }
                if self.peek() == &Tok::LParen {
                    return self.call(&lower, start, depth);
                }
                let path = w.split('.').map(str::to_owned).collect();
                (Node::Field(w, path), 1)
            }
            other => {
                self.pos -= 1;
                return self.err(format!("expected a value, found {}", describe(&other)));
            }
        })
    }

    fn call(&mut self, name: &str, start: usize, depth: u32) -> Result<(Node, u32), ParseError> {
        let Some((func, min, max)) = Func::lookup(name) else {
            return Err(ParseError {
                offset: start,
                message: format!(
                    "unknown function {name}() (known: {})",
                    FUNCTIONS.join(", ")
                ),
            });
        };
        self.pos += 1; // (
        let mut args = Vec::new();
        let mut arg_at = Vec::new();
        let mut d = 1;
        if self.peek() != &Tok::RParen {
            loop {
                arg_at.push(self.at());
                let (n, nd) = self.expr(0, depth + 1)?;
                d = d.max(nd + 1);
                args.push(n);
                if self.peek() == &Tok::Comma {
                    self.pos += 1;
                } else {
                    break;
                }
            }
        }
        self.expect(&Tok::RParen, "`,` or `)`")?;
        if args.len() < min || args.len() > max {
            let want = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(ParseError {
                offset: start,
                message: format!("{name}() takes {want} argument(s), got {}", args.len()),
            });
        }
        // Literal regexes and units are checked now, not per record.
        let mut regex = None;
        if matches!(func, Func::Matches | Func::Replace) {
            if let Node::Lit(Lit::Str(p)) = &args[1] {
                regex = Some(Regex::new(p).map_err(|e| ParseError {
                    offset: arg_at[1],
                    message: format!("bad regex: {e}"),
                })?);
            }
        }
        let unit_arg = match func {
            Func::DateAdd => Some(2),
            Func::DateDiff => Some(0),
            _ => None,
        };
        if let Some(i) = unit_arg {
            if let Node::Lit(Lit::Str(u)) = &args[i] {
                parse_unit(u).map_err(|m| ParseError {
                    offset: arg_at[i],
                    message: m,
                })?;
            }
        }
        Ok((Node::Call(func, args, regex), d))
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) | Tok::Quoted(s) => format!("`{s}`"),
        Tok::Str(s) => format!("'{s}'"),
        Tok::Num(n) => n.clone(),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::Comma => "`,`".into(),
        Tok::Op(o) => format!("`{o}`"),
        Tok::Eof => "the end of the expression".into(),
    }
}

fn parse_number(text: &str) -> Option<BigDecimal> {
    let d = BigDecimal::from_str(text).ok()?;
    let (_, exp) = d.as_bigint_and_exponent();
    (exp.abs() <= MAX_EXPONENT).then_some(d)
}

impl Expr {
    /// Parses an expression.
    pub fn parse(src: &str) -> Result<Self, ParseError> {
        let toks = lex(src)?;
        let mut p = Parser { toks, pos: 0 };
        if p.peek() == &Tok::Eof {
            return p.err("empty expression");
        }
        let (root, _) = p.expr(0, 0)?;
        if p.peek() != &Tok::Eof {
            let found = describe(p.peek());
            return p.err(format!("unexpected {found}"));
        }
        Ok(Self {
            root,
            source: src.to_owned(),
        })
    }

    /// Evaluates against one record.
    pub fn eval<'a>(&'a self, rec: &'a dyn Lookup, env: &Env<'_>) -> Result<Val<'a>, String> {
        eval(&self.root, rec, env)
    }

    /// The names the expression reads from a record: each field's full
    /// name and, for a dotted one, its first part (see `lookup`).
    pub fn field_names(&self) -> Vec<&str> {
        fn walk<'n>(n: &'n Node, out: &mut Vec<&'n str>) {
            match n {
                Node::Lit(_) => {}
                Node::Field(full, path) => {
                    out.push(full);
                    if let Some(first) = path.first() {
                        out.push(first);
                    }
                }
                Node::Neg(x) | Node::Not(x) | Node::IsNull(x, _) => walk(x, out),
                Node::And(a, b) | Node::Or(a, b) | Node::Bin(_, a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Node::In(x, items, _) => {
                    walk(x, out);
                    for i in items {
                        walk(i, out);
                    }
                }
                Node::Call(_, args, _) => {
                    for a in args {
                        walk(a, out);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// True when the expression holds (`null` and `false` do not).
    pub fn holds(&self, rec: &dyn Lookup, env: &Env<'_>) -> Result<bool, String> {
        match self.eval(rec, env)? {
            Val::Bool(b) => Ok(b),
            Val::Null => Ok(false),
            other => Err(format!(
                "a filter must be true or false, found {} {}",
                other.type_name(),
                other.show()
            )),
        }
    }
}

// ---------------------------------------------------------------- values

/// Where an expression reads its fields: a record, or the fast path's
/// flat slots.
pub trait Lookup {
    /// The value of the top-level field `name`.
    fn field(&self, name: &str) -> Option<&Value>;
}

impl Lookup for Record {
    fn field(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

/// What evaluation needs besides the record.
#[derive(Debug)]
pub struct Env<'t> {
    /// `now()`: one instant per run, so every record sees the same time.
    pub now: Timestamp,
    /// `today()` is the date of `now` in this zone.
    pub tz: &'t TimeZone,
    /// Whether `number('1.234,50')` reads a decimal comma.
    pub decimal_comma: bool,
}

/// A value during evaluation; strings are borrowed from the record where
/// they can be.
#[derive(Debug, Clone)]
pub enum Val<'a> {
    /// null (or a missing field).
    Null,
    /// A boolean.
    Bool(bool),
    /// An exact decimal.
    Num(BigDecimal),
    /// A number still as its JSON text (from the record or a literal):
    /// comparisons of plain decimals need no arithmetic type at all.
    NumText(&'a str),
    /// A string.
    Str(Cow<'a, str>),
    /// An array or object from the record.
    Json(&'a Value),
}

impl Val<'_> {
    fn type_name(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool(_) => "boolean",
            Val::Num(_) | Val::NumText(_) => "number",
            Val::Str(_) => "string",
            Val::Json(v) => v.type_name(),
        }
    }

    fn show(&self) -> String {
        match self {
            Val::Null => "null".into(),
            Val::Bool(b) => b.to_string(),
            Val::Num(n) => n.to_plain_string(),
            Val::NumText(t) => (*t).to_owned(),
            Val::Str(s) => {
                let mut t: String = s.chars().take(60).collect();
                if t.len() < s.len() {
                    t.push_str("...");
                }
                format!("{t:?}")
            }
            Val::Json(v) => cast::truncate_for_message(v),
        }
    }

    /// Converts to a record value (numbers as exact JSON text).
    pub fn into_value(self) -> Result<Value, String> {
        Ok(match self {
            Val::Null => Value::Null,
            Val::Bool(b) => Value::Bool(b),
            Val::Num(n) => Value::Number(num_to_json(&n)?),
            Val::NumText(t) => match etl_core::Number::parse(t) {
                Some(n) => Value::Number(n),
                None => Value::Number(num_to_json(&text_num(t)?)?),
            },
            Val::Str(s) => Value::String(s.into_owned()),
            Val::Json(v) => v.clone(),
        })
    }
}

fn num_to_json(n: &BigDecimal) -> Result<etl_core::Number, String> {
    let (_, exp) = n.as_bigint_and_exponent();
    if exp.abs() > MAX_EXPONENT * 2 {
        return Err("number out of range".into());
    }
    etl_core::Number::parse(&n.to_plain_string()).ok_or_else(|| "number out of range".into())
}

fn lookup<'a>(rec: &'a dyn Lookup, full: &str, path: &[String]) -> Option<&'a Value> {
    if let Some(v) = rec.field(full) {
        return Some(v);
    }
    if path.len() < 2 {
        return None;
    }
    let mut cur = rec.field(&path[0])?;
    for p in &path[1..] {
        match cur {
            Value::Object(m) => cur = m.get(p)?,
            _ => return None,
        }
    }
    Some(cur)
}

fn of_value(v: &Value) -> Val<'_> {
    match v {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => Val::NumText(n.as_str()),
        Value::String(s) => Val::Str(Cow::Borrowed(s)),
        other => Val::Json(other),
    }
}

fn what(n: &Node) -> String {
    match n {
        Node::Field(name, _) => format!("field {name}"),
        _ => "value".into(),
    }
}

/// Reads a numeric string exactly (`"1234.50"`, `" 12 "`).
fn str_num(s: &str) -> Option<BigDecimal> {
    let d = cast::number_digits(s.trim())?;
    let n = d.to_number()?;
    parse_number(n.as_str())
}

fn text_num(t: &str) -> Result<BigDecimal, String> {
    parse_number(t).ok_or_else(|| format!("number {t} is out of range"))
}

/// `-?digits(.digits)?`: the numbers that compare as text.
fn is_plain(s: &str) -> bool {
    let b = s.strip_prefix('-').unwrap_or(s).as_bytes();
    let mut dot = false;
    let mut digits = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'.' {
            if dot || i == 0 || i + 1 == b.len() {
                return false;
            }
            dot = true;
        } else if c.is_ascii_digit() {
            digits += 1;
        } else {
            return false;
        }
    }
    digits > 0
}

/// Compares two plain decimals (see [`is_plain`]) exactly, as text.
fn cmp_plain(a: &str, b: &str) -> Ordering {
    fn split(s: &str) -> (bool, &str, &str) {
        let (neg, m) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s),
        };
        // Plain decimals are ASCII: byte searches, not char patterns.
        let (i, f) = match m.bytes().position(|c| c == b'.') {
            Some(p) => (&m[..p], &m[p + 1..]),
            None => (m, ""),
        };
        let i = &i[i.bytes().take_while(|&c| c == b'0').count()..];
        let f = &f[..f.len() - f.bytes().rev().take_while(|&c| c == b'0').count()];
        (neg && !(i.is_empty() && f.is_empty()), i, f)
    }
    let (an, ai, af) = split(a);
    let (bn, bi, bf) = split(b);
    match (an, bn) {
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => {
            let mag = ai
                .len()
                .cmp(&bi.len())
                .then_with(|| ai.cmp(bi))
                .then_with(|| af.cmp(bf));
            if an {
                mag.reverse()
            } else {
                mag
            }
        }
    }
}

fn num(n: &Node, v: Val<'_>) -> Result<Option<BigDecimal>, String> {
    match v {
        Val::Null => Ok(None),
        Val::Num(d) => Ok(Some(d)),
        Val::NumText(t) => text_num(t)
            .map(Some)
            .map_err(|e| format!("{}: {e}", what(n))),
        Val::Str(s) => str_num(&s)
            .map(Some)
            .ok_or_else(|| format!("{}: {} is not a number", what(n), Val::Str(s).show())),
        other => Err(format!(
            "{}: expected a number, found {} {}",
            what(n),
            other.type_name(),
            other.show()
        )),
    }
}

fn text<'a>(n: &Node, v: Val<'a>) -> Result<Option<Cow<'a, str>>, String> {
    match v {
        Val::Null => Ok(None),
        Val::Str(s) => Ok(Some(s)),
        Val::Num(d) => Ok(Some(Cow::Owned(d.to_plain_string()))),
        Val::NumText(t) => Ok(Some(Cow::Borrowed(t))),
        Val::Bool(b) => Ok(Some(Cow::Owned(b.to_string()))),
        Val::Json(j) => Err(format!(
            "{}: expected a string, found {}",
            what(n),
            j.type_name()
        )),
    }
}

fn boolean(n: &Node, v: &Val<'_>) -> Result<Option<bool>, String> {
    match v {
        Val::Null => Ok(None),
        Val::Bool(b) => Ok(Some(*b)),
        other => Err(format!(
            "{}: expected true or false, found {} {}",
            what(n),
            other.type_name(),
            other.show()
        )),
    }
}

fn compare(a: &Val<'_>, b: &Val<'_>, an: &Node, bn: &Node) -> Result<Option<Ordering>, String> {
    Ok(Some(match (a, b) {
        (Val::Null, _) | (_, Val::Null) => return Ok(None),
        (Val::NumText(x), Val::NumText(y)) if is_plain(x) && is_plain(y) => cmp_plain(x, y),
        (Val::NumText(x), Val::Str(s)) if is_plain(x) && is_plain(s.trim()) => {
            cmp_plain(x, s.trim())
        }
        (Val::Str(s), Val::NumText(y)) if is_plain(y) && is_plain(s.trim()) => {
            cmp_plain(s.trim(), y)
        }
        (Val::NumText(t), _) => {
            let x = Val::Num(text_num(t).map_err(|e| format!("{}: {e}", what(an)))?);
            return compare(&x, b, an, bn);
        }
        (_, Val::NumText(t)) => {
            let y = Val::Num(text_num(t).map_err(|e| format!("{}: {e}", what(bn)))?);
            return compare(a, &y, an, bn);
        }
        (Val::Num(x), Val::Num(y)) => x.cmp(y),
        (Val::Str(x), Val::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Val::Bool(x), Val::Bool(y)) => x.cmp(y),
        (Val::Num(x), Val::Str(s)) => {
            x.cmp(&str_num(s).ok_or_else(|| format!("{}: {} is not a number", what(bn), b.show()))?)
        }
        (Val::Str(s), Val::Num(y)) => str_num(s)
            .ok_or_else(|| format!("{}: {} is not a number", what(an), a.show()))?
            .cmp(y),
        (Val::Json(x), Val::Json(y)) if x == y => Ordering::Equal,
        _ => {
            return Err(format!(
                "cannot compare {} {} with {} {}",
                a.type_name(),
                a.show(),
                b.type_name(),
                b.show()
            ))
        }
    }))
}

fn eval<'a>(n: &'a Node, rec: &'a dyn Lookup, env: &Env<'_>) -> Result<Val<'a>, String> {
    Ok(match n {
        Node::Lit(l) => match l {
            Lit::Null => Val::Null,
            Lit::Bool(b) => Val::Bool(*b),
            Lit::Num(_, t, true) => Val::NumText(t),
            Lit::Num(d, _, false) => Val::Num(d.clone()),
            Lit::Str(s) => Val::Str(Cow::Borrowed(s)),
        },
        Node::Field(full, path) => match lookup(rec, full, path) {
            Some(v) => of_value(v),
            None => Val::Null,
        },
        Node::Neg(x) => match num(x, eval(x, rec, env)?)? {
            Some(d) => Val::Num(-d),
            None => Val::Null,
        },
        Node::Not(x) => match boolean(x, &eval(x, rec, env)?)? {
            Some(b) => Val::Bool(!b),
            None => Val::Null,
        },
        Node::And(a, b) => {
            let l = boolean(a, &eval(a, rec, env)?)?;
            if l == Some(false) {
                return Ok(Val::Bool(false));
            }
            match (l, boolean(b, &eval(b, rec, env)?)?) {
                (_, Some(false)) => Val::Bool(false),
                (Some(true), Some(true)) => Val::Bool(true),
                _ => Val::Null,
            }
        }
        Node::Or(a, b) => {
            let l = boolean(a, &eval(a, rec, env)?)?;
            if l == Some(true) {
                return Ok(Val::Bool(true));
            }
            match (l, boolean(b, &eval(b, rec, env)?)?) {
                (_, Some(true)) => Val::Bool(true),
                (Some(false), Some(false)) => Val::Bool(false),
                _ => Val::Null,
            }
        }
        Node::IsNull(x, negated) => {
            let v = eval(x, rec, env)?;
            Val::Bool(v.is_null_val() != *negated)
        }
        Node::In(x, items, negated) => {
            let v = eval(x, rec, env)?;
            if matches!(v, Val::Null) {
                return Ok(Val::Null);
            }
            let mut found = false;
            let mut saw_null = false;
            for it in items {
                let w = eval(it, rec, env)?;
                match compare(&v, &w, x, it)? {
                    Some(Ordering::Equal) => {
                        found = true;
                        break;
                    }
                    None => saw_null = true,
                    _ => {}
                }
            }
            if found {
                Val::Bool(!negated)
            } else if saw_null {
                Val::Null
            } else {
                Val::Bool(*negated)
            }
        }
        Node::Bin(op, a, b) => bin(*op, a, b, rec, env)?,
        Node::Call(f, args, re) => call(*f, args, re.as_ref(), rec, env)?,
    })
}

impl Val<'_> {
    fn is_null_val(&self) -> bool {
        matches!(self, Val::Null)
    }
}

fn bin<'a>(
    op: BinOp,
    an: &'a Node,
    bn: &'a Node,
    rec: &'a dyn Lookup,
    env: &Env<'_>,
) -> Result<Val<'a>, String> {
    let a = eval(an, rec, env)?;
    let b = eval(bn, rec, env)?;
    let ord = |want: fn(Ordering) -> bool| -> Result<Val<'a>, String> {
        Ok(match compare(&a, &b, an, bn)? {
            Some(o) => Val::Bool(want(o)),
            None => Val::Null,
        })
    };
    match op {
        BinOp::Eq => return ord(Ordering::is_eq),
        BinOp::Ne => return ord(Ordering::is_ne),
        BinOp::Lt => return ord(Ordering::is_lt),
        BinOp::Le => return ord(Ordering::is_le),
        BinOp::Gt => return ord(Ordering::is_gt),
        BinOp::Ge => return ord(Ordering::is_ge),
        BinOp::Concat => {
            return Ok(match (text(an, a)?, text(bn, b)?) {
                (Some(x), Some(y)) => Val::Str(Cow::Owned(format!("{x}{y}"))),
                _ => Val::Null,
            })
        }
        _ => {}
    }
    let (Some(x), Some(y)) = (num(an, a)?, num(bn, b)?) else {
        return Ok(Val::Null);
    };
    Ok(Val::Num(match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => {
            let r = x * y;
            check_range(&r)?;
            r
        }
        BinOp::Div => divide(&x, &y)?,
        BinOp::Rem => {
            if y.is_zero() {
                return Err("division by zero (%)".into());
            }
            x % y
        }
        _ => return Err("internal: unexpected operator".into()),
    }))
}

fn check_range(d: &BigDecimal) -> Result<(), String> {
    let (_, exp) = d.as_bigint_and_exponent();
    if exp.abs() > MAX_EXPONENT * 2 {
        Err("number out of range".into())
    } else {
        Ok(())
    }
}

/// Exact when the quotient terminates within 34 significant digits,
/// else rounded (half even) to 34.
fn divide(x: &BigDecimal, y: &BigDecimal) -> Result<BigDecimal, String> {
    if y.is_zero() {
        return Err("division by zero".into());
    }
    let q = (x / y).with_prec(DIV_DIGITS).normalized();
    // normalized() gives 1E+2 for 100: keep an integer's scale at 0 so the
    // text stays plain.
    let (_, scale) = q.as_bigint_and_exponent();
    Ok(if scale < 0 { q.with_scale(0) } else { q })
}

fn parse_unit(u: &str) -> Result<Unit, String> {
    Ok(match u.trim().to_ascii_lowercase().trim_end_matches('s') {
        "year" => Unit::Year,
        "month" => Unit::Month,
        "week" => Unit::Week,
        "day" => Unit::Day,
        "hour" => Unit::Hour,
        "minute" => Unit::Minute,
        "second" => Unit::Second,
        _ => {
            return Err(format!(
                "unknown unit {u:?} (year, month, week, day, hour, minute, second)"
            ))
        }
    })
}

/// A date-like value: a calendar date, a naive datetime, or an instant.
#[derive(Debug, Clone, Copy)]
enum When {
    Date(Date),
    Civil(DateTime),
    Instant(Timestamp),
}

impl When {
    fn parse(s: &str) -> Option<Self> {
        let t = s.trim();
        if t.len() <= 10 {
            return t.parse::<Date>().ok().map(When::Date);
        }
        if let Ok(ts) = t.parse::<Timestamp>() {
            return Some(When::Instant(ts));
        }
        t.parse::<DateTime>().ok().map(When::Civil)
    }

    fn civil(self) -> DateTime {
        match self {
            When::Date(d) => d.to_datetime(Time::midnight()),
            When::Civil(dt) => dt,
            When::Instant(ts) => ts.to_zoned(TimeZone::UTC).datetime(),
        }
    }

    fn show(self) -> String {
        match self {
            When::Date(d) => d.to_string(),
            When::Civil(dt) => dt.to_string(),
            When::Instant(ts) => format_ts(ts),
        }
    }
}

fn when(n: &Node, v: Val<'_>) -> Result<Option<When>, String> {
    match text(n, v)? {
        None => Ok(None),
        Some(s) => When::parse(&s).map(Some).ok_or_else(|| {
            format!(
                "{}: {:?} is not a date or datetime (ISO 8601; cast it first)",
                what(n),
                s
            )
        }),
    }
}

fn int_arg(n: &Node, v: Val<'_>) -> Result<Option<i64>, String> {
    match num(n, v)? {
        None => Ok(None),
        Some(d) => {
            if !d.is_integer() {
                return Err(format!("{}: {} is not a whole number", what(n), d));
            }
            let (i, _) = d.with_scale(0).as_bigint_and_exponent();
            i64::try_from(i)
                .map(Some)
                .map_err(|_| format!("{}: {d} is out of range", what(n)))
        }
    }
}

fn count(n: usize) -> Val<'static> {
    small(i64::try_from(n).unwrap_or(i64::MAX))
}

fn small(d: i64) -> Val<'static> {
    Val::Num(BigDecimal::from(d))
}

#[allow(clippy::too_many_lines)] // one arm per function reads better than a split
fn call<'a>(
    f: Func,
    args: &'a [Node],
    re: Option<&Regex>,
    rec: &'a dyn Lookup,
    env: &Env<'_>,
) -> Result<Val<'a>, String> {
    let arg = |i: usize| eval(&args[i], rec, env);
    let s1 = |i: usize| -> Result<Option<Cow<'a, str>>, String> { text(&args[i], arg(i)?) };
    let in_fn = |e: String| format!("{}(): {e}", f.name());
    let r: Result<Val<'a>, String> = (|| {
        Ok(match f {
            Func::Lower => s1(0)?.map_or(Val::Null, |s| Val::Str(Cow::Owned(s.to_lowercase()))),
            Func::Upper => s1(0)?.map_or(Val::Null, |s| Val::Str(Cow::Owned(s.to_uppercase()))),
            Func::Trim => s1(0)?.map_or(Val::Null, |s| match s {
                Cow::Borrowed(b) => Val::Str(Cow::Borrowed(b.trim())),
                Cow::Owned(o) => Val::Str(Cow::Owned(o.trim().to_owned())),
            }),
            Func::Length => match arg(0)? {
                Val::Null => Val::Null,
                Val::Json(Value::Array(a)) => count(a.len()),
                Val::Json(Value::Object(m)) => count(m.len()),
                v => match text(&args[0], v)? {
                    Some(s) => count(s.chars().count()),
                    None => Val::Null,
                },
            },
            Func::Substr => {
                let Some(s) = s1(0)? else {
                    return Ok(Val::Null);
                };
                let Some(start) = int_arg(&args[1], arg(1)?)? else {
                    return Ok(Val::Null);
                };
                let len = if args.len() > 2 {
                    match int_arg(&args[2], arg(2)?)? {
                        Some(l) => Some(l),
                        None => return Ok(Val::Null),
                    }
                } else {
                    None
                };
                // 1-based like SQL; a start before 1 eats into the length.
                let skip = usize::try_from(start.max(1) - 1).unwrap_or(usize::MAX);
                let take = match len {
                    Some(l) => {
                        let l = l.saturating_add(start.min(1).saturating_sub(1));
                        usize::try_from(l.max(0)).unwrap_or(usize::MAX)
                    }
                    None => usize::MAX,
                };
                Val::Str(Cow::Owned(s.chars().skip(skip).take(take).collect()))
            }
            Func::Replace | Func::Matches => {
                let Some(s) = s1(0)? else {
                    return Ok(Val::Null);
                };
                let owned;
                let re = match re {
                    Some(r) => r,
                    None => {
                        let Some(p) = s1(1)? else {
                            return Ok(Val::Null);
                        };
                        owned = Regex::new(&p).map_err(|e| format!("bad regex: {e}"))?;
                        &owned
                    }
                };
                if f == Func::Matches {
                    Val::Bool(re.is_match(&s))
                } else {
                    let Some(rep) = s1(2)? else {
                        return Ok(Val::Null);
                    };
                    Val::Str(Cow::Owned(re.replace_all(&s, rep.as_ref()).into_owned()))
                }
            }
            Func::Contains | Func::StartsWith | Func::EndsWith => {
                let (Some(s), Some(t)) = (s1(0)?, s1(1)?) else {
                    return Ok(Val::Null);
                };
                Val::Bool(match f {
                    Func::Contains => s.contains(t.as_ref()),
                    Func::StartsWith => s.starts_with(t.as_ref()),
                    _ => s.ends_with(t.as_ref()),
                })
            }
            Func::Concat => {
                let mut out = String::new();
                for i in 0..args.len() {
                    if let Some(s) = s1(i)? {
                        out.push_str(&s);
                    }
                }
                Val::Str(Cow::Owned(out))
            }
            Func::Coalesce => {
                for i in 0..args.len() {
                    let v = arg(i)?;
                    if !matches!(v, Val::Null) {
                        return Ok(v);
                    }
                }
                Val::Null
            }
            Func::If => match boolean(&args[0], &arg(0)?)? {
                Some(true) => arg(1)?,
                _ => arg(2)?,
            },
            Func::Abs => num(&args[0], arg(0)?)?.map_or(Val::Null, |d| Val::Num(d.abs())),
            Func::Round | Func::Floor | Func::Ceil => {
                let Some(d) = num(&args[0], arg(0)?)? else {
                    return Ok(Val::Null);
                };
                let places = if args.len() > 1 {
                    match int_arg(&args[1], arg(1)?)? {
                        Some(p) if p.abs() <= MAX_EXPONENT => p,
                        Some(p) => return Err(format!("{p} places is out of range")),
                        None => return Ok(Val::Null),
                    }
                } else {
                    0
                };
                let mode = match f {
                    Func::Round => RoundingMode::HalfUp,
                    Func::Floor => RoundingMode::Floor,
                    _ => RoundingMode::Ceiling,
                };
                Val::Num(d.with_scale_round(places, mode))
            }
            Func::Number => match arg(0)? {
                Val::Null => Val::Null,
                Val::Num(d) => Val::Num(d),
                Val::NumText(t) => Val::NumText(t),
                v => {
                    let s = text(&args[0], v)?.unwrap_or_default();
                    let d = cast::parse_money(&s, env.decimal_comma)
                        .or_else(|| cast::number_digits(s.trim()))
                        .and_then(|d| d.to_number())
                        .and_then(|n| parse_number(n.as_str()))
                        .ok_or_else(|| format!("{:?} is not a number", s.as_ref()))?;
                    Val::Num(d)
                }
            },
            Func::String => match arg(0)? {
                Val::Json(j) => Val::Str(Cow::Owned(j.to_json())),
                v => text(&args[0], v)?.map_or(Val::Null, Val::Str),
            },
            Func::Year
            | Func::Month
            | Func::Day
            | Func::Hour
            | Func::Minute
            | Func::Second
            | Func::Weekday => {
                let Some(w) = when(&args[0], arg(0)?)? else {
                    return Ok(Val::Null);
                };
                let dt = w.civil();
                small(match f {
                    Func::Year => i64::from(dt.year()),
                    Func::Month => i64::from(dt.month()),
                    Func::Day => i64::from(dt.day()),
                    Func::Hour => i64::from(dt.hour()),
                    Func::Minute => i64::from(dt.minute()),
                    Func::Second => i64::from(dt.second()),
                    _ => i64::from(dt.weekday().to_monday_one_offset()),
                })
            }
            Func::DatePart => match when(&args[0], arg(0)?)? {
                Some(w) => Val::Str(Cow::Owned(w.civil().date().to_string())),
                None => Val::Null,
            },
            Func::DateAdd => {
                let Some(w) = when(&args[0], arg(0)?)? else {
                    return Ok(Val::Null);
                };
                let Some(n) = int_arg(&args[1], arg(1)?)? else {
                    return Ok(Val::Null);
                };
                let Some(u) = s1(2)? else {
                    return Ok(Val::Null);
                };
                let unit = parse_unit(&u)?;
                let span = span_of(n, unit)?;
                let out = match w {
                    When::Date(d) if unit >= Unit::Day => {
                        When::Date(d.checked_add(span).map_err(|e| e.to_string())?)
                    }
                    When::Instant(ts) => When::Instant(
                        ts.to_zoned(TimeZone::UTC)
                            .checked_add(span)
                            .map_err(|e| e.to_string())?
                            .timestamp(),
                    ),
                    other => {
                        When::Civil(other.civil().checked_add(span).map_err(|e| e.to_string())?)
                    }
                };
                Val::Str(Cow::Owned(out.show()))
            }
            Func::DateDiff => {
                let Some(u) = s1(0)? else {
                    return Ok(Val::Null);
                };
                let unit = parse_unit(&u)?;
                let (Some(a), Some(b)) = (when(&args[1], arg(1)?)?, when(&args[2], arg(2)?)?)
                else {
                    return Ok(Val::Null);
                };
                let span = a
                    .civil()
                    .until((unit, b.civil()))
                    .map_err(|e| e.to_string())?;
                small(match unit {
                    Unit::Year => i64::from(span.get_years()),
                    Unit::Month => i64::from(span.get_months()),
                    Unit::Week => i64::from(span.get_weeks()),
                    Unit::Day => i64::from(span.get_days()),
                    Unit::Hour => i64::from(span.get_hours()),
                    Unit::Minute => span.get_minutes(),
                    _ => span.get_seconds(),
                })
            }
            Func::Now => Val::Str(Cow::Owned(format_ts(env.now))),
            Func::Today => Val::Str(Cow::Owned(
                env.now.to_zoned(env.tz.clone()).date().to_string(),
            )),
        })
    })();
    r.map_err(in_fn)
}

fn span_of(n: i64, unit: Unit) -> Result<jiff::Span, String> {
    let s = jiff::Span::new();
    let r = match unit {
        Unit::Year => s.try_years(n),
        Unit::Month => s.try_months(n),
        Unit::Week => s.try_weeks(n),
        Unit::Day => s.try_days(n),
        Unit::Hour => s.try_hours(n),
        Unit::Minute => s.try_minutes(n),
        _ => s.try_seconds(n),
    };
    r.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> (TimeZone, Timestamp) {
        (TimeZone::UTC, "2026-11-21T06:00:00Z".parse().unwrap())
    }

    fn ev(src: &str, rec: &str) -> Result<String, String> {
        let (tz, now) = env();
        let e = Expr::parse(src).map_err(|e| e.to_string())?;
        let rec = etl_core::record::parse_record(rec).unwrap();
        let env = Env {
            now,
            tz: &tz,
            decimal_comma: false,
        };
        e.eval(&rec, &env)?.into_value().map(|v| v.to_json())
    }

    fn ok(src: &str) -> String {
        ev(src, r#"{"a":1,"s":"Hello World","amount":"1234.50","n":null,"c":{"name":"Ann"},"Order ID":"A-1","at":"2026-11-20T09:15:00Z","d":"2026-01-31"}"#)
            .unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    #[test]
    fn decimal_arithmetic_is_exact() {
        assert_eq!(ok("0.1 + 0.2"), "0.3");
        assert_eq!(ok("0.1 + 0.2 = 0.3"), "true");
        assert_eq!(ok("12345678901234567890.01 + 0"), "12345678901234567890.01");
        assert_eq!(ok("amount * 2"), "2469.00");
        assert_eq!(ok("10 / 4"), "2.5");
        assert_eq!(ok("100 / 1"), "100");
        assert_eq!(ok("1 / 3"), "0.3333333333333333333333333333333333");
        assert_eq!(ok("7 % 3"), "1");
        assert_eq!(ok("-a + 3 * 2"), "5");
        assert_eq!(ok("(1 + 2) * 3"), "9");
        assert_eq!(ok("round(2.345, 2)"), "2.35");
        assert_eq!(ok("floor(-1.5)"), "-2");
        assert_eq!(ok("ceil(1.2)"), "2");
        assert_eq!(ok("abs(-3.10)"), "3.10");
        assert!(ev("1 / 0", "{}").unwrap_err().contains("division by zero"));
    }

    #[test]
    fn plain_numbers_compare_as_text_exactly() {
        for (a, b, o) in [
            ("1", "1.000", Ordering::Equal),
            ("-0", "0.0", Ordering::Equal),
            ("10", "9.99", Ordering::Greater),
            ("0.45", "0.5", Ordering::Less),
            ("-2", "-10", Ordering::Greater),
            ("-0.1", "0", Ordering::Less),
            (
                "12345678901234567891",
                "12345678901234567890.99",
                Ordering::Greater,
            ),
            ("007", "7", Ordering::Equal),
        ] {
            assert!(is_plain(a) && is_plain(b));
            assert_eq!(cmp_plain(a, b), o, "{a} vs {b}");
            assert_eq!(cmp_plain(b, a), o.reverse(), "{b} vs {a}");
        }
        for bad in ["", "-", "1.", ".5", "1e5", "1.2.3", "+1", " 1"] {
            assert!(!is_plain(bad), "{bad}");
        }
        assert_eq!(ok("amount = 1234.5"), "true");
        assert_eq!(ev("n > 1e2", r#"{"n":1e3}"#).unwrap(), "true");
        assert!(ev("n > 1", r#"{"n":1e99999}"#)
            .unwrap_err()
            .contains("field n"));
    }

    #[test]
    fn comparisons_logic_and_null() {
        assert_eq!(ok("amount > 100"), "true");
        assert_eq!(ok("amount > 100 and a = 1"), "true");
        assert_eq!(ok("n > 1"), "null");
        assert_eq!(ok("n > 1 or a = 1"), "true");
        assert_eq!(ok("n > 1 and a = 1"), "null");
        assert_eq!(ok("n > 1 and a = 2"), "false");
        assert_eq!(ok("not (a = 1)"), "false");
        assert_eq!(ok("n is null"), "true");
        assert_eq!(ok("missing is null and a is not null"), "true");
        assert_eq!(ok("a in (1, 2)"), "true");
        assert_eq!(ok("a not in (1, 2)"), "false");
        assert_eq!(ok("s <> 'x' and s == 'Hello World'"), "true");
        assert_eq!(ok("c.name = 'Ann' and `Order ID` = \"A-1\""), "true");
        assert!(ev("s > 1", r#"{"s":"abc"}"#)
            .unwrap_err()
            .contains("field s"));
        assert!(ev("s and true", r#"{"s":"abc"}"#).is_err());
    }

    #[test]
    fn strings_and_regexes() {
        assert_eq!(ok("lower(s) || '!'"), "\"hello world!\"");
        assert_eq!(ok("upper(trim('  x '))"), "\"X\"");
        assert_eq!(ok("length(s)"), "11");
        assert_eq!(ok("substr(s, 7)"), "\"World\"");
        assert_eq!(ok("substr(s, 1, 5)"), "\"Hello\"");
        assert_eq!(ok("substr(s, 0, 3)"), "\"He\"");
        assert_eq!(
            ok("substr(s, -9223372036854775808, 9223372036854775807)"),
            "\"\""
        );
        assert_eq!(ok("replace(s, 'o', '0')"), "\"Hell0 W0rld\"");
        assert_eq!(ok("matches(s, '^H.*d$')"), "true");
        assert_eq!(
            ok("contains(s, 'lo W') and starts_with(s, 'He') and ends_with(s, 'ld')"),
            "true"
        );
        assert_eq!(ok("concat(s, n, '-', a)"), "\"Hello World-1\"");
        assert_eq!(ok("coalesce(n, missing, 'x')"), "\"x\"");
        assert_eq!(ok("if(a = 1, 'one', 'other')"), "\"one\"");
        assert_eq!(ok("number('1,234.50') + 1"), "1235.50");
        assert_eq!(ok("string(a) || 'x'"), "\"1x\"");
        assert_eq!(ok("'it''s'"), "\"it's\"");
    }

    #[test]
    fn dates() {
        assert_eq!(ok("year(at) * 100 + month(at)"), "202611");
        assert_eq!(ok("day(d) + hour(at) + minute(at)"), "55");
        assert_eq!(ok("weekday('2026-11-23')"), "1");
        assert_eq!(ok("date_add(d, 1, 'month')"), "\"2026-02-28\"");
        assert_eq!(ok("date_add(at, 2, 'hour')"), "\"2026-11-20T11:15:00Z\"");
        assert_eq!(ok("date_diff('day', d, '2026-03-02')"), "30");
        assert_eq!(ok("date_diff('hour', at, now())"), "20");
        assert_eq!(ok("today()"), "\"2026-11-21\"");
        assert_eq!(ok("date(at)"), "\"2026-11-20\"");
        assert_eq!(ok("at < '2026-11-21'"), "true");
    }

    #[test]
    fn parse_errors_have_offsets() {
        let e = Expr::parse("a > ").unwrap_err();
        assert_eq!(e.offset, 4);
        let e = Expr::parse("matches(s, '[')").unwrap_err();
        assert_eq!(e.offset, 11);
        assert!(e.message.contains("bad regex"));
        assert!(Expr::parse("nope(1)")
            .unwrap_err()
            .message
            .contains("unknown function"));
        assert!(Expr::parse("lower()").is_err());
        assert!(Expr::parse("a = 1 b").is_err());
        assert!(Expr::parse("'abc").is_err());
        assert!(Expr::parse("date_add(d, 1, 'fortnight')").is_err());
        assert!(Expr::parse(&"(".repeat(10_000)).is_err());
        assert!(Expr::parse("a+".repeat(10_000).trim_end_matches('+')).is_err());
        assert!(Expr::parse("").is_err());
        assert!(Expr::parse("1e99999").is_err());
    }

    #[test]
    fn token_soup_never_panics() {
        const PIECES: &[&str] = &[
            "a",
            "s",
            "n",
            "c.name",
            "amount",
            "`Order ID`",
            "1",
            "0",
            "-",
            "+",
            "*",
            "/",
            "%",
            "(",
            ")",
            ",",
            "'x'",
            "\"",
            "'",
            "=",
            "<>",
            "<",
            ">=",
            "||",
            "and",
            "or",
            "not",
            "is",
            "null",
            "in",
            "true",
            "1e4096",
            "0.1",
            "lower(",
            "substr(",
            "round(",
            "date_add(",
            "date_diff(",
            "'day'",
            "'2026-01-31'",
            "at",
            "d",
            "matches(",
            "'[a-z]+'",
            "replace(",
            "if(",
            "coalesce(",
            "number(",
            "string(",
            "year(",
            "now()",
            "é",
            " ",
        ];
        let mut rng = etl_testkit::Rng::new(0x9e37_79b9_7f4a_7c15);
        let rec = etl_core::record::parse_record(
            r#"{"a":1,"s":"Hello","amount":"12.50","n":null,"c":{"name":"Ann"},"at":"2026-11-20T09:15:00Z","d":"2026-01-31","Order ID":7}"#,
        )
        .unwrap();
        let (tz, now) = env();
        let env = Env {
            now,
            tz: &tz,
            decimal_comma: false,
        };
        for _ in 0..20_000 {
            let mut src = String::new();
            let n = rng.below(9) + 1;
            for _ in 0..n {
                src.push_str(rng.pick::<&str>(PIECES));
                src.push(' ');
            }
            if let Ok(e) = Expr::parse(&src) {
                let _ = e.eval(&rec, &env).and_then(Val::into_value);
                let _ = e.holds(&rec, &env);
            }
        }
    }
}
