//! Record values as Sheets cells.
//!
//! - Strings go as strings. With `--value-input user-entered`, Sheets parses
//!   them like a typist, so a string starting with `=`, `+`, `-`, `@`, tab or
//!   CR gets a leading `'` (it stays text: no formula, no CSV injection)
//!   unless `--allow-formulas`; a string starting with `'` gets a second one
//!   (Sheets would swallow the first).
//! - Numbers go as numbers, unless Sheets' doubles would lose digits (more
//!   than 15 significant digits, or out of range): then as text, so a 20-digit
//!   id arrives whole.
//! - Booleans as booleans, `null` as an empty cell, objects and arrays as
//!   their JSON text.
//! - A value over 50,000 characters (Google's per-cell limit) is an error
//!   naming the field (the record becomes a reject).

use etl_core::record::Number;
use etl_core::Value;
use serde_json::Value as J;

/// Google's per-cell character limit.
pub const MAX_CELL_CHARS: usize = 50_000;

/// How values are written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Convert {
    pub user_entered: bool,
    pub allow_formulas: bool,
}

/// Significant digits of a JSON number's mantissa.
fn significant_digits(text: &str) -> usize {
    let mantissa = text
        .trim_start_matches('-')
        .split(['e', 'E'])
        .next()
        .unwrap_or("");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    digits.trim_start_matches('0').trim_end_matches('0').len()
}

fn number(n: &Number) -> Option<J> {
    number_text(n.as_str())
}

/// [`number`] of a JSON number's text.
fn number_text(text: &str) -> Option<J> {
    if let Ok(i) = text.parse::<i64>() {
        if i.unsigned_abs() < (1 << 53) {
            return Some(J::from(i));
        }
    }
    if significant_digits(text) > 15 {
        return None;
    }
    let f: f64 = text.parse().ok()?;
    if !f.is_finite() || (f == 0.0 && significant_digits(text) > 0) {
        return None;
    }
    serde_json::Number::from_f64(f).map(J::Number)
}

/// The error for a cell text over Google's limit (characters, and no
/// text has more characters than bytes: the common case costs no count).
fn too_long(text: &str) -> Result<(), String> {
    if text.len() <= MAX_CELL_CHARS {
        return Ok(());
    }
    let chars = text.chars().count();
    if chars > MAX_CELL_CHARS {
        return Err(format!(
            "{chars} characters, more than Google's {MAX_CELL_CHARS} per cell"
        ));
    }
    Ok(())
}

impl Convert {
    /// The cell for `v`, or an error naming why it cannot be one.
    pub fn cell(&self, v: &Value) -> Result<J, String> {
        let text = match v {
            Value::Null => return Ok(J::String(String::new())),
            Value::Bool(b) => return Ok(J::Bool(*b)),
            Value::Number(n) => match number(n) {
                Some(j) => return Ok(j),
                None if self.user_entered => format!("'{}", n.as_str()),
                None => n.as_str().to_owned(),
            },
            Value::String(s) => {
                too_long(s)?;
                if self.user_entered {
                    let risky = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
                    if s.starts_with('\'') || (risky && !self.allow_formulas) {
                        return Ok(J::String(format!("'{s}")));
                    }
                }
                return Ok(J::String(s.clone()));
            }
            Value::Array(_) | Value::Object(_) => v.to_json(),
        };
        too_long(&text)?;
        Ok(J::String(text))
    }

    /// What [`Convert::cell`] would say about `v`, without making the cell
    /// (the first pass checks every value; only the second needs cells).
    pub fn check(&self, v: &Value) -> Result<(), String> {
        match v {
            Value::String(s) => too_long(s),
            // A number's text is far under the limit unless it is absurd.
            Value::Number(n) if n.as_str().len() < MAX_CELL_CHARS => Ok(()),
            Value::Null | Value::Bool(_) => Ok(()),
            Value::Number(_) | Value::Array(_) | Value::Object(_) => self.cell(v).map(drop),
        }
    }

    /// Whether `v` would go as text although it is a number.
    pub fn number_as_text(v: &Value) -> bool {
        matches!(v, Value::Number(n) if number(n).is_none())
    }

    /// [`Convert::number_as_text`] of a raw JSON value (its text).
    pub fn raw_number_as_text(raw: &str) -> bool {
        matches!(raw.as_bytes().first(), Some(b'-' | b'0'..=b'9')) && number_text(raw).is_none()
    }

    /// Whether [`Convert::check`] surely passes `raw` (a raw JSON value):
    /// scalars whose text is under the limit (the bytes between a string's
    /// quotes are at least as many as its characters). Any doubt (nested
    /// values, escapes, long text) is for the record's own check to settle.
    pub fn surely_fits(raw: &str) -> bool {
        match raw.as_bytes().first() {
            Some(b'{' | b'[') | None => false,
            Some(b'"') => raw.len() - 2 <= MAX_CELL_CHARS && !raw.contains('\\'),
            Some(_) => raw.len() < MAX_CELL_CHARS,
        }
    }
}

/// A number as the key index and the change check see it: its value, not
/// its text (`12.50` and `12.5` are the same cell).
fn canon_number(f: f64) -> String {
    format!("{f}")
}

/// The key text of an input value (upsert).
pub fn key_of(v: &Value) -> String {
    match v {
        Value::Number(n) => n
            .as_str()
            .parse::<f64>()
            .map_or_else(|_| n.as_str().to_owned(), canon_number),
        Value::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
        other => other.to_raw_text(),
    }
}

/// The key text of a sheet cell (as read with valueRenderOption FORMULA).
pub fn key_of_cell(v: Option<&J>) -> String {
    match v {
        None | Some(J::Null) => String::new(),
        Some(J::String(s)) => s.clone(),
        Some(J::Number(n)) => n.as_f64().map_or_else(|| n.to_string(), canon_number),
        Some(J::Bool(b)) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
        Some(other) => other.to_string(),
    }
}

fn hash(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    // 0 means "no formatted text".
    h.finish() | 1
}

fn canon_cell(v: Option<&J>) -> String {
    match v {
        None | Some(J::Null) => "e".into(),
        Some(J::String(s)) if s.is_empty() => "e".into(),
        Some(J::String(s)) => format!("s:{s}"),
        Some(J::Number(n)) => format!(
            "n:{}",
            n.as_f64().map_or_else(|| n.to_string(), canon_number)
        ),
        Some(J::Bool(b)) => format!("b:{b}"),
        Some(other) => format!("s:{other}"),
    }
}

/// What upsert remembers of a sheet cell: a hash of its value and, with
/// `user-entered`, of its formatted text (Sheets turns the typed `1,234`
/// into the number 1234 shown as `1,234`: equal to the input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellHash {
    value: u64,
    formatted: u64,
}

impl CellHash {
    /// A sheet cell: its FORMULA rendering and (user-entered) its FORMATTED one.
    pub fn of(value: Option<&J>, formatted: Option<&J>) -> Self {
        CellHash {
            value: hash(&canon_cell(value)),
            formatted: formatted.map_or(0, |f| hash(&canon_cell(Some(f)))),
        }
    }

    /// An input value and the cell it becomes.
    pub fn input(v: &Value, cell: &J, user_entered: bool) -> Self {
        let stored = match (v, cell) {
            (Value::String(s), _) => canon_cell(Some(&J::String(s.clone()))),
            (_, c) => canon_cell(Some(c)),
        };
        let formatted = match v {
            Value::String(s) if user_entered => hash(&canon_cell(Some(&J::String(s.clone())))),
            _ => 0,
        };
        CellHash {
            value: hash(&stored),
            formatted,
        }
    }

    /// Whether the sheet cell already holds what the input would write.
    pub fn matches(&self, input: &CellHash) -> bool {
        self.value == input.value || (input.formatted != 0 && self.formatted == input.formatted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(text: &str) -> Value {
        Value::parse(text).unwrap()
    }

    #[test]
    fn raw_values() {
        let c = Convert::default();
        assert_eq!(c.cell(&v("\"007\"")).unwrap(), json!("007"));
        assert_eq!(
            c.cell(&v("\"=1+1\"")).unwrap(),
            json!("=1+1"),
            "RAW never parses"
        );
        assert_eq!(c.cell(&v("12.5")).unwrap(), json!(12.5));
        assert_eq!(c.cell(&v("42")).unwrap(), json!(42));
        assert_eq!(c.cell(&v("0.1")).unwrap(), json!(0.1));
        assert_eq!(
            c.cell(&v("12345678901234567890")).unwrap(),
            json!("12345678901234567890")
        );
        assert_eq!(c.cell(&v("1e400")).unwrap(), json!("1e400"));
        assert_eq!(c.cell(&v("1e-400")).unwrap(), json!("1e-400"));
        assert_eq!(c.cell(&v("1000000000000000000000")).unwrap(), json!(1e21));
        assert_eq!(c.cell(&v("true")).unwrap(), json!(true));
        assert_eq!(c.cell(&v("null")).unwrap(), json!(""));
        assert_eq!(c.cell(&v("{\"a\":[1,2]}")).unwrap(), json!("{\"a\":[1,2]}"));
        let long = format!("\"{}\"", "x".repeat(50_001));
        assert_eq!(
            c.cell(&v(&long)).unwrap_err(),
            "50001 characters, more than Google's 50000 per cell"
        );
        assert!(
            c.cell(&v(&format!("\"{}\"", "é".repeat(50_000)))).is_ok(),
            "characters, not bytes"
        );
    }

    #[test]
    fn check_says_what_cell_says() {
        let big = |n: usize, c: &str| c.repeat(n);
        let cases = [
            format!("\"{}\"", big(50_000, "x")),
            format!("\"{}\"", big(50_001, "x")),
            format!("\"{}\"", big(50_000, "é")),
            format!("\"{}\"", big(50_001, "é")),
            format!("\"{}\"", big(50_001, "\\u00e9")),
            format!("[\"{}\"]", big(49_990, "x")),
            format!("{{\"k\":\"{}\"}}", big(10, "x")),
            format!("1{}", big(50_000, "0")),
            format!("1{}", big(49_000, "0")),
            "\"=1+1\"".to_owned(),
            "null".to_owned(),
            "true".to_owned(),
            "12.5".to_owned(),
        ];
        for user_entered in [false, true] {
            let c = Convert {
                user_entered,
                allow_formulas: false,
            };
            let mut errors = 0;
            for text in &cases {
                let val = v(text);
                let want = c.cell(&val).map(drop);
                errors += usize::from(want.is_err());
                assert_eq!(c.check(&val), want, "{}", &text[..text.len().min(20)]);
            }
            assert_eq!(errors, 4, "the cases over the limit");
        }
    }

    #[test]
    fn change_detection() {
        let raw = |text: &str| {
            let v = v(text);
            let cell = Convert::default().cell(&v).unwrap();
            CellHash::input(&v, &cell, false)
        };
        assert!(CellHash::of(Some(&json!("007")), None).matches(&raw("\"007\"")));
        assert!(!CellHash::of(Some(&json!(7)), None).matches(&raw("\"007\"")));
        assert!(CellHash::of(Some(&json!(12.5)), None).matches(&raw("12.50")));
        assert!(CellHash::of(None, None).matches(&raw("null")));
        assert!(CellHash::of(Some(&json!("")), None).matches(&raw("\"\"")));
        assert!(!CellHash::of(Some(&json!("x")), None).matches(&raw("null")));
        // user-entered: the typed text equals the formatted cell.
        let ue = Convert {
            user_entered: true,
            allow_formulas: false,
        };
        let typed = v("\"1,234\"");
        let mine = CellHash::input(&typed, &ue.cell(&typed).unwrap(), true);
        assert!(CellHash::of(Some(&json!(1234)), Some(&json!("1,234"))).matches(&mine));
        assert!(!CellHash::of(Some(&json!(1235)), Some(&json!("1,235"))).matches(&mine));
        // A guarded formula is stored as its text.
        let f = v("\"=1+1\"");
        let mine = CellHash::input(&f, &ue.cell(&f).unwrap(), true);
        assert!(CellHash::of(Some(&json!("=1+1")), Some(&json!("=1+1"))).matches(&mine));
        assert_eq!(key_of(&v("42.0")), key_of_cell(Some(&json!(42))));
        assert_eq!(key_of(&v("\"007\"")), key_of_cell(Some(&json!("007"))));
    }

    #[test]
    fn formula_guard() {
        let c = Convert {
            user_entered: true,
            allow_formulas: false,
        };
        for s in [
            "=HYPERLINK(\"http://x\")",
            "+1",
            "-1",
            "@SUM(A1)",
            "\tx",
            "\rx",
        ] {
            let j = serde_json::to_string(s).unwrap();
            assert_eq!(c.cell(&v(&j)).unwrap(), json!(format!("'{s}")), "{s:?}");
        }
        assert_eq!(c.cell(&v("\"'quoted\"")).unwrap(), json!("''quoted"));
        assert_eq!(
            c.cell(&v("\"12%\"")).unwrap(),
            json!("12%"),
            "other text is typed as is"
        );
        assert_eq!(c.cell(&v("-5")).unwrap(), json!(-5), "numbers are numbers");
        assert_eq!(
            c.cell(&v("12345678901234567890")).unwrap(),
            json!("'12345678901234567890")
        );
        let f = Convert {
            user_entered: true,
            allow_formulas: true,
        };
        assert_eq!(f.cell(&v("\"=1+1\"")).unwrap(), json!("=1+1"));
    }
}
