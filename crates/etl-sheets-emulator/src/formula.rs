//! A small formula evaluator, so that `=A1*2` reads back as a value.
//!
//! Formulas are stored exactly as entered (`FORMULA` rendering returns
//! them). For `FORMATTED_VALUE` and `UNFORMATTED_VALUE` the emulator
//! evaluates: numbers, strings, `TRUE`/`FALSE`, cell and range references
//! (`B2`, `Sheet2!A1:A9`), `+ - * / ^ & %`, comparisons, parentheses and the
//! functions SUM, AVERAGE, MIN, MAX, COUNT, COUNTA, IF, ROUND, ABS, LEN,
//! UPPER, LOWER, TRIM, CONCATENATE. Anything else evaluates to `#NAME?`,
//! a circular reference to `#REF!`, like Sheets.
//!
//! References are bound to sheets, as at Google: when a sheet is deleted,
//! every reference to it is rewritten to `#REF!` (`=SUM(Orders!C2:C)`
//! becomes `=SUM(#REF!)`, for good: a later sheet of the same title does not
//! bring it back), and when a sheet is renamed the references follow the
//! new title ([`retarget`]).

use crate::a1;
use crate::model::{general, literal, Cell, Computed, Spreadsheet};

const MAX_DEPTH: u32 = 64;

#[derive(Debug, Clone, PartialEq)]
enum V {
    Num(f64),
    Str(String),
    Bool(bool),
    Empty,
    Err(&'static str),
    List(Vec<V>),
}

/// Evaluates formula `f` (with its `=`) in sheet `sheet` of `book`.
pub fn evaluate(f: &str, book: &Spreadsheet, sheet: usize, depth: u32) -> Computed {
    if depth > MAX_DEPTH {
        return Computed::Error("#REF!".into());
    }
    let src = f.strip_prefix('=').unwrap_or(f);
    let mut p = Parser {
        s: src.as_bytes(),
        i: 0,
        book,
        sheet,
        depth,
        broken: false,
    };
    let v = p.expr();
    p.ws();
    let v = if p.i < p.s.len() {
        V::Err("#ERROR!")
    } else if p.broken {
        // A reference to a deleted sheet breaks the whole formula, even
        // inside COUNTA or IFERROR-free arithmetic, as at Google.
        V::Err("#REF!")
    } else {
        v
    };
    match scalar(v) {
        V::Num(n) => Computed::Num {
            n,
            display: None,
            date: false,
        },
        V::Str(s) => Computed::Str(s),
        V::Bool(b) => Computed::Bool(b),
        V::Empty => Computed::Num {
            n: 0.0,
            display: None,
            date: false,
        },
        V::Err(e) => Computed::Error(e.into()),
        V::List(_) => Computed::Error("#VALUE!".into()),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    book: &'a Spreadsheet,
    sheet: usize,
    depth: u32,
    /// A `#REF!` reference was read.
    broken: bool,
}

fn scalar(v: V) -> V {
    match v {
        V::List(mut l) if l.len() == 1 => l.pop().unwrap_or(V::Empty),
        V::List(_) => V::Err("#VALUE!"),
        other => other,
    }
}

fn num(v: V) -> Result<f64, &'static str> {
    match scalar(v) {
        V::Num(n) => Ok(n),
        V::Bool(b) => Ok(if b { 1.0 } else { 0.0 }),
        V::Empty => Ok(0.0),
        V::Str(s) => s.trim().parse().map_err(|_| "#VALUE!"),
        V::Err(e) => Err(e),
        V::List(_) => Err("#VALUE!"),
    }
}

fn text(v: V) -> Result<String, &'static str> {
    match scalar(v) {
        V::Num(n) => Ok(general(n)),
        V::Bool(b) => Ok(if b { "TRUE" } else { "FALSE" }.into()),
        V::Empty => Ok(String::new()),
        V::Str(s) => Ok(s),
        V::Err(e) => Err(e),
        V::List(_) => Err("#VALUE!"),
    }
}

fn flat(args: Vec<V>) -> Vec<V> {
    let mut out = Vec::new();
    for a in args {
        match a {
            V::List(l) => out.extend(l),
            other => out.push(other),
        }
    }
    out
}

fn from_result(r: Result<f64, &'static str>) -> V {
    match r {
        Ok(n) if n.is_finite() => V::Num(n),
        Ok(_) => V::Err("#NUM!"),
        Err(e) => V::Err(e),
    }
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn eat(&mut self, t: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(t.as_bytes()) {
            self.i += t.len();
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> V {
        let mut a = self.concat();
        loop {
            let op = ["<=", ">=", "<>", "=", "<", ">"]
                .into_iter()
                .find(|op| self.eat(op));
            let Some(op) = op else { return a };
            let b = self.concat();
            a = compare(op, scalar(a), scalar(b));
        }
    }

    fn concat(&mut self) -> V {
        let mut a = self.additive();
        while self.eat("&") {
            let b = self.additive();
            a = match (text(a), text(b)) {
                (Ok(x), Ok(y)) => V::Str(x + &y),
                (Err(e), _) | (_, Err(e)) => V::Err(e),
            };
        }
        a
    }

    fn additive(&mut self) -> V {
        let mut a = self.term();
        loop {
            let op = if self.eat("+") {
                '+'
            } else if self.eat("-") {
                '-'
            } else {
                return a;
            };
            let b = self.term();
            a = from_result(
                num(a).and_then(|x| num(b).map(|y| if op == '+' { x + y } else { x - y })),
            );
        }
    }

    fn term(&mut self) -> V {
        let mut a = self.power();
        loop {
            let op = if self.eat("*") {
                '*'
            } else if self.eat("/") {
                '/'
            } else {
                return a;
            };
            let b = self.power();
            a = match (num(a), num(b)) {
                (Ok(_), Ok(y)) if op == '/' && y == 0.0 => V::Err("#DIV/0!"),
                (Ok(x), Ok(y)) => from_result(Ok(if op == '*' { x * y } else { x / y })),
                (Err(e), _) | (_, Err(e)) => V::Err(e),
            };
        }
    }

    fn power(&mut self) -> V {
        let mut a = self.unary();
        while self.eat("^") {
            let b = self.unary();
            a = from_result(num(a).and_then(|x| num(b).map(|y| x.powf(y))));
        }
        a
    }

    fn unary(&mut self) -> V {
        if self.eat("-") {
            let v = self.unary();
            return from_result(num(v).map(|x| -x));
        }
        if self.eat("+") {
            return self.unary();
        }
        let v = self.primary();
        if self.eat("%") {
            return from_result(num(v).map(|x| x / 100.0));
        }
        v
    }

    /// Reads a reference to a deleted sheet (`#REF!`, see [`retarget`]).
    fn broken_reference(&mut self) -> bool {
        let here = self.s[self.i..].starts_with(b"#REF!");
        if here {
            self.i += 5;
            self.broken = true;
        }
        here
    }

    fn primary(&mut self) -> V {
        self.ws();
        let Some(&b) = self.s.get(self.i) else {
            return V::Err("#ERROR!");
        };
        if b == b'(' {
            self.i += 1;
            let v = self.expr();
            return if self.eat(")") { v } else { V::Err("#ERROR!") };
        }
        if b == b'"' {
            let mut out = Vec::new();
            self.i += 1;
            while let Some(&c) = self.s.get(self.i) {
                self.i += 1;
                if c == b'"' {
                    if self.s.get(self.i) == Some(&b'"') {
                        self.i += 1;
                        out.push(b'"');
                        continue;
                    }
                    return V::Str(String::from_utf8_lossy(&out).into_owned());
                }
                out.push(c);
            }
            return V::Err("#ERROR!");
        }
        if b.is_ascii_digit() || b == b'.' {
            let start = self.i;
            while self
                .s
                .get(self.i)
                .is_some_and(|c| c.is_ascii_digit() || *c == b'.')
            {
                self.i += 1;
            }
            if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
                let save = self.i;
                self.i += 1;
                if matches!(self.s.get(self.i), Some(b'+' | b'-')) {
                    self.i += 1;
                }
                let digits = self.i;
                while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
                    self.i += 1;
                }
                if self.i == digits {
                    self.i = save;
                }
            }
            let t = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
            return t.parse().map_or(V::Err("#ERROR!"), V::Num);
        }
        if self.broken_reference() {
            return V::Err("#REF!");
        }
        // A name: function, boolean, or (sheet-qualified) reference.
        let start = self.i;
        if b == b'\'' {
            self.i += 1;
            while let Some(&c) = self.s.get(self.i) {
                self.i += 1;
                if c == b'\'' {
                    if self.s.get(self.i) == Some(&b'\'') {
                        self.i += 1;
                        continue;
                    }
                    break;
                }
            }
        }
        while self.s.get(self.i).is_some_and(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'$' | b'!' | b':')
        }) {
            self.i += 1;
        }
        let word = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        if word.is_empty() {
            return V::Err("#ERROR!");
        }
        if self.eat("(") {
            let mut args = Vec::new();
            if !self.eat(")") {
                loop {
                    args.push(self.expr());
                    if self.eat(",") {
                        continue;
                    }
                    if self.eat(")") {
                        break;
                    }
                    return V::Err("#ERROR!");
                }
            }
            return call(&word.to_ascii_uppercase(), args);
        }
        match word.to_ascii_uppercase().as_str() {
            "TRUE" => return V::Bool(true),
            "FALSE" => return V::Bool(false),
            _ => {}
        }
        self.reference(&word)
    }

    fn reference(&self, word: &str) -> V {
        let parsed = a1::parse(word).ok().filter(|r| {
            // A bare word that parsed as a sheet name is not a reference.
            r.start_row.is_some() || r.end_row.is_some() || word.contains('!')
        });
        let Some(r) = parsed else {
            return self.named(word);
        };
        let sheet = match &r.sheet {
            None => self.sheet,
            Some(t) => match self.book.sheet_index_by_title(t) {
                Some(i) => i,
                None => return V::Err("#REF!"),
            },
        };
        self.cells(sheet, [r.start_row, r.end_row, r.start_col, r.end_col])
    }

    /// A named range's cells; `#REF!` when its sheet was deleted, `#NAME?`
    /// when there is no such name.
    fn named(&self, word: &str) -> V {
        let Some(n) = self.book.named_range(word) else {
            return V::Err("#NAME?");
        };
        match n.sheet_id.and_then(|id| self.book.sheet_index_by_id(id)) {
            Some(sheet) => self.cells(sheet, [n.r0, n.r1, n.c0, n.c1]),
            None => V::Err("#REF!"),
        }
    }

    /// The values of rows `r0..r1` and columns `c0..c1` of a sheet (an
    /// absent bound is the sheet's edge).
    fn cells(&self, sheet: usize, [r0, r1, c0, c1]: [Option<u32>; 4]) -> V {
        let s = &self.book.sheets[sheet];
        let r0 = r0.unwrap_or(0);
        let c0 = c0.unwrap_or(0);
        let r1 = r1.unwrap_or(s.rows).min(s.rows);
        let c1 = c1.unwrap_or(s.cols).min(s.cols);
        let mut out = Vec::new();
        for row in r0..r1 {
            for col in c0..c1 {
                out.push(match s.cell(row, col) {
                    None => V::Empty,
                    Some(Cell::Formula(f)) => {
                        from_computed(evaluate(f, self.book, sheet, self.depth + 1))
                    }
                    Some(cell) => literal(cell).map_or(V::Empty, from_computed),
                });
            }
        }
        V::List(out)
    }
}

/// Formula `f` with its references to sheet `title` retargeted: to the
/// sheet's new title (`Some`, a rename), or to `#REF!` (`None`, a deletion:
/// the whole reference, range included, as Google writes it). `None` when
/// `f` has no such reference. String literals are left alone; titles match
/// case-insensitively, as Google matches them.
pub fn retarget(f: &str, title: &str, to: Option<&str>) -> Option<String> {
    let b = f.as_bytes();
    let mut out = String::with_capacity(f.len());
    let (mut i, mut copied, mut changed) = (0, 0, false);
    while i < b.len() {
        match b[i] {
            b'"' => {
                // A string literal: to its closing quote (`""` inside).
                i += 1;
                while i < b.len() {
                    if b[i] == b'"' {
                        if b.get(i + 1) == Some(&b'"') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            c if c == b'\'' || c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let start = i;
                let name = if c == b'\'' {
                    let mut name = String::new();
                    i += 1;
                    let mut from = i;
                    while i < b.len() {
                        if b[i] == b'\'' {
                            name.push_str(&f[from..i]);
                            if b.get(i + 1) == Some(&b'\'') {
                                name.push('\'');
                                i += 2;
                                from = i;
                                continue;
                            }
                            i += 1;
                            break;
                        }
                        i += 1;
                    }
                    name
                } else {
                    while i < b.len()
                        && (b[i].is_ascii_alphanumeric()
                            || matches!(b[i], b'_' | b'.')
                            || b[i] >= 0x80)
                    {
                        i += 1;
                    }
                    f[start..i].to_owned()
                };
                if b.get(i) != Some(&b'!') || !name.eq_ignore_ascii_case(title) {
                    continue;
                }
                i += 1;
                out.push_str(&f[copied..start]);
                match to {
                    Some(new) => {
                        out.push_str(&quote_title(new));
                        out.push('!');
                    }
                    None => {
                        // The reference itself (`A1`, `C2:C`, `$A$1:B9`) goes too.
                        while i < b.len()
                            && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'$' | b':'))
                        {
                            i += 1;
                        }
                        out.push_str("#REF!");
                    }
                }
                copied = i;
                changed = true;
            }
            _ => i += 1,
        }
    }
    changed.then(|| {
        out.push_str(&f[copied..]);
        out
    })
}

/// A sheet title as a formula writes it: bare when it is a plain word,
/// else in single quotes (a quote doubled).
pub fn quote_title(t: &str) -> String {
    let word = t
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    // `Q3` or `AB12` would read as a cell.
    let digits = t.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let cell_like =
        digits.len() < t.len() && !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit());
    let plain = word && !cell_like;
    if plain {
        t.to_owned()
    } else {
        format!("'{}'", t.replace('\'', "''"))
    }
}

fn from_computed(c: Computed) -> V {
    match c {
        Computed::Empty => V::Empty,
        Computed::Str(s) => V::Str(s),
        Computed::Num { n, .. } => V::Num(n),
        Computed::Bool(b) => V::Bool(b),
        Computed::Error(e) => V::Err(match e.as_str() {
            "#DIV/0!" => "#DIV/0!",
            "#NAME?" => "#NAME?",
            "#VALUE!" => "#VALUE!",
            "#NUM!" => "#NUM!",
            "#ERROR!" => "#ERROR!",
            _ => "#REF!",
        }),
    }
}

#[allow(clippy::needless_pass_by_value)]
fn compare(op: &str, a: V, b: V) -> V {
    use std::cmp::Ordering;
    let ord = match (&a, &b) {
        (V::Err(e), _) | (_, V::Err(e)) => return V::Err(e),
        (V::Str(x), V::Str(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        (V::Str(_), _) => Ordering::Greater,
        (_, V::Str(_)) => Ordering::Less,
        _ => match (num(a.clone()), num(b.clone())) {
            (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            _ => return V::Err("#VALUE!"),
        },
    };
    V::Bool(match op {
        "=" => ord == Ordering::Equal,
        "<>" => ord != Ordering::Equal,
        "<" => ord == Ordering::Less,
        ">" => ord == Ordering::Greater,
        "<=" => ord != Ordering::Greater,
        _ => ord != Ordering::Less,
    })
}

// Counts and lengths are far below 2^52: the casts to f64 are exact.
#[allow(clippy::cast_precision_loss)]
fn call(name: &str, args: Vec<V>) -> V {
    let numbers = |args: Vec<V>| -> Result<Vec<f64>, &'static str> {
        let mut out = Vec::new();
        for v in flat(args) {
            match v {
                V::Num(n) => out.push(n),
                V::Err(e) => return Err(e),
                _ => {}
            }
        }
        Ok(out)
    };
    match name {
        "SUM" => from_result(numbers(args).map(|v| v.iter().sum())),
        "AVERAGE" => match numbers(args) {
            Ok(v) if v.is_empty() => V::Err("#DIV/0!"),
            r => from_result(r.map(|v| v.iter().sum::<f64>() / v.len() as f64)),
        },
        "MIN" => from_result(numbers(args).map(|v| v.into_iter().reduce(f64::min).unwrap_or(0.0))),
        "MAX" => from_result(numbers(args).map(|v| v.into_iter().reduce(f64::max).unwrap_or(0.0))),
        "COUNT" => V::Num(flat(args).iter().filter(|v| matches!(v, V::Num(_))).count() as f64),
        "COUNTA" => V::Num(flat(args).iter().filter(|v| !matches!(v, V::Empty)).count() as f64),
        "IF" => {
            let mut it = args.into_iter();
            let cond = it.next().map(scalar);
            let yes = it.next().unwrap_or(V::Bool(true));
            let no = it.next().unwrap_or(V::Bool(false));
            match cond.map(num) {
                Some(Ok(c)) => {
                    if c == 0.0 {
                        no
                    } else {
                        yes
                    }
                }
                Some(Err(e)) => V::Err(e),
                None => V::Err("#N/A"),
            }
        }
        "ROUND" => {
            let mut it = args.into_iter();
            let x = it.next().map_or(Err("#N/A"), num);
            let d = it.next().map_or(Ok(0.0), num);
            from_result(x.and_then(|x| {
                d.map(|d| {
                    let f = 10f64.powf(d.trunc());
                    (x * f).round() / f
                })
            }))
        }
        "ABS" => from_result(
            args.into_iter()
                .next()
                .map_or(Err("#N/A"), num)
                .map(f64::abs),
        ),
        "LEN" => match args.into_iter().next().map(text) {
            Some(Ok(s)) => V::Num(s.chars().count() as f64),
            Some(Err(e)) => V::Err(e),
            None => V::Err("#N/A"),
        },
        "UPPER" | "LOWER" | "TRIM" => match args.into_iter().next().map(text) {
            Some(Ok(s)) => V::Str(match name {
                "UPPER" => s.to_uppercase(),
                "LOWER" => s.to_lowercase(),
                _ => s.split_whitespace().collect::<Vec<_>>().join(" "),
            }),
            Some(Err(e)) => V::Err(e),
            None => V::Err("#N/A"),
        },
        "CONCATENATE" => {
            let mut out = String::new();
            for v in flat(args) {
                match text(v) {
                    Ok(s) => out.push_str(&s),
                    Err(e) => return V::Err(e),
                }
            }
            V::Str(out)
        }
        _ => V::Err("#NAME?"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Sheet, Spreadsheet};

    fn book() -> Spreadsheet {
        let mut s = Sheet::new(0, "Sheet1".into());
        s.set(0, 0, Some(Cell::num(2.0)));
        s.set(1, 0, Some(Cell::num(3.0)));
        s.set(2, 0, Some(Cell::Str("x".into())));
        s.set(3, 0, Some(Cell::Formula("=A1*10".into())));
        s.set(4, 0, Some(Cell::Formula("=A5".into())));
        let mut t = Sheet::new(7, "Other Sheet".into());
        t.set(0, 1, Some(Cell::num(5.0)));
        Spreadsheet::new("x".into(), "t".into(), "o", vec![s, t])
    }

    fn ev(f: &str) -> Computed {
        evaluate(f, &book(), 0, 0)
    }

    fn n(x: f64) -> Computed {
        Computed::Num {
            n: x,
            display: None,
            date: false,
        }
    }

    #[test]
    fn arithmetic_and_references() {
        assert_eq!(ev("=1+1"), n(2.0));
        assert_eq!(ev("=2+3*4"), n(14.0));
        assert_eq!(ev("=(2+3)*4"), n(20.0));
        assert_eq!(ev("=-2^2"), n(4.0));
        assert_eq!(ev("=50%"), n(0.5));
        assert_eq!(ev("=A1+A2"), n(5.0));
        assert_eq!(ev("=SUM(A1:A4)"), n(25.0));
        assert_eq!(ev("=sum(A1:A2, 10)"), n(15.0));
        assert_eq!(ev("='Other Sheet'!B1*2"), n(10.0));
        assert_eq!(ev("=A3&\"y\""), Computed::Str("xy".into()));
        assert_eq!(
            ev("=IF(A1>1,\"big\",\"small\")"),
            Computed::Str("big".into())
        );
        assert_eq!(ev("=ROUND(2.345,2)"), n(2.35));
        assert_eq!(ev("=A1=2"), Computed::Bool(true));
    }

    #[test]
    fn references_follow_renames_and_break_on_deletion() {
        assert_eq!(
            retarget("=SUM(Orders!C2:C)+orders!A1", "Orders", None).as_deref(),
            Some("=SUM(#REF!)+#REF!")
        );
        assert_eq!(
            retarget(
                "='Other Sheet'!B1*2&\"Other Sheet!A1\"",
                "other sheet",
                Some("Q3 data")
            )
            .as_deref(),
            Some("='Q3 data'!B1*2&\"Other Sheet!A1\"")
        );
        assert_eq!(
            retarget("=COUNTA('It''s'!A:A)", "It's", Some("Orders")).as_deref(),
            Some("=COUNTA(Orders!A:A)")
        );
        assert_eq!(retarget("=A1+Ordersx!A1", "Orders", None), None);
        assert_eq!(retarget("=SUM(A1:A2)", "Orders", None), None);
        assert_eq!(ev("=SUM(#REF!)"), Computed::Error("#REF!".into()));
        assert_eq!(ev("=COUNTA(#REF!)"), Computed::Error("#REF!".into()));
        assert_eq!(ev("=SUM(#REF!)+A1"), Computed::Error("#REF!".into()));
        assert_eq!(quote_title("Orders"), "Orders");
        assert_eq!(quote_title("Q3 data"), "'Q3 data'");
        assert_eq!(quote_title("It's"), "'It''s'");
    }

    #[test]
    fn retargeting_odd_formulas_never_panics() {
        for f in [
            "=\"unterminated",
            "='unterminated",
            "=Orders!",
            "=Orders",
            "='Ör''dérs'!A1",
            "=ÖrdersÖ!A1",
            "=#REF!",
            "=''!A1",
            "=Orders!!A1",
            "='Orders'!",
            "=SUM(Orders!A:A",
            "=\u{1F600}Orders!A1",
        ] {
            for to in [None, Some("New"), Some("Ör dérs"), Some("")] {
                let _ = retarget(f, "Orders", to);
                let _ = retarget(f, "Ör'dérs", to);
            }
            let _ = ev(f);
        }
        assert_eq!(
            retarget("='Ör''dérs'!A1", "Ör'dérs", Some("B")).as_deref(),
            Some("=B!A1")
        );
    }

    #[test]
    fn errors() {
        assert_eq!(ev("=1/0"), Computed::Error("#DIV/0!".into()));
        assert_eq!(ev("=NOSUCH(1)"), Computed::Error("#NAME?".into()));
        assert_eq!(ev("=A5"), Computed::Error("#REF!".into()));
        assert_eq!(ev("=A3+1"), Computed::Error("#VALUE!".into()));
        assert_eq!(ev("=1+"), Computed::Error("#ERROR!".into()));
    }
}
