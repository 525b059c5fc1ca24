//! Typed casts: text (or JSON values) to exact JSON numbers, booleans and
//! ISO 8601 dates.
//!
//! Decimals are handled as digit strings, never through a float: the input
//! is cleaned (currency symbols, grouping separators, `(12.50)` negatives)
//! and checked, then written back as the exact digits, padded to the scale.
//! A value with more decimal places than the scale is refused, not rounded:
//! silently changing an amount is the one thing a money column must not do.
//! Dates try the user's formats in order, then ISO 8601, then Excel serial
//! day numbers.

use std::fmt::Write as _;
use std::str::FromStr;

use bigdecimal::BigDecimal;
use etl_core::{Number, Value};
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// Exponents beyond this are refused: `1e999999999` written out in full
/// would cost gigabytes.
pub const MAX_EXPONENT: i64 = 4096;

/// A target type of `cast` and of schema columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    /// A JSON string (numbers and booleans become their text).
    String,
    /// An integer JSON number.
    Int,
    /// An exact decimal; `Some((precision, scale))` pads and checks.
    Decimal(Option<(u32, u32)>),
    /// A JSON number that must be finite as a float.
    Float,
    /// A JSON boolean.
    Bool,
    /// `YYYY-MM-DD`.
    Date,
    /// `YYYY-MM-DDTHH:MM:SSZ` in UTC.
    DateTime,
}

impl Type {
    /// Parses `int`, `decimal(12,2)`, ...
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        Ok(match t.as_str() {
            "string" | "str" | "text" => Type::String,
            "int" | "integer" => Type::Int,
            "decimal" | "numeric" => Type::Decimal(None),
            "float" | "double" => Type::Float,
            "bool" | "boolean" => Type::Bool,
            "date" => Type::Date,
            "datetime" | "timestamp" => Type::DateTime,
            _ => {
                let inner = t
                    .strip_prefix("decimal(")
                    .or_else(|| t.strip_prefix("numeric("))
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| {
                        format!(
                            "unknown type {s:?} (string, int, decimal, decimal(P,S), float, \
                             bool, date, datetime)"
                        )
                    })?;
                let (p, sc) = inner.split_once(',').unwrap_or((inner, "0"));
                let p: u32 = p
                    .trim()
                    .parse()
                    .map_err(|_| format!("{s:?}: precision must be a number"))?;
                let sc: u32 = sc
                    .trim()
                    .parse()
                    .map_err(|_| format!("{s:?}: scale must be a number"))?;
                if p == 0 || sc > p || p > 1000 {
                    return Err(format!(
                        "{s:?}: need 0 < precision <= 1000 and scale <= precision"
                    ));
                }
                Type::Decimal(Some((p, sc)))
            }
        })
    }

    /// The name in messages.
    pub fn name(&self) -> String {
        match self {
            Type::String => "string".into(),
            Type::Int => "int".into(),
            Type::Decimal(None) => "decimal".into(),
            Type::Decimal(Some((p, s))) => format!("decimal({p},{s})"),
            Type::Float => "float".into(),
            Type::Bool => "bool".into(),
            Type::Date => "date".into(),
            Type::DateTime => "datetime".into(),
        }
    }
}

/// What a cast needs besides the type: run-wide options.
#[derive(Debug, Clone)]
pub struct CastOptions {
    /// `--decimal-comma`: `1.234,50`.
    pub decimal_comma: bool,
    /// Lower-case words read as true.
    pub true_values: Vec<String>,
    /// Lower-case words read as false.
    pub false_values: Vec<String>,
    /// The zone of naive datetimes.
    pub tz: TimeZone,
}

impl Default for CastOptions {
    fn default() -> Self {
        Self {
            decimal_comma: false,
            true_values: ["true", "yes", "y", "1"].map(String::from).to_vec(),
            false_values: ["false", "no", "n", "0"].map(String::from).to_vec(),
            tz: TimeZone::UTC,
        }
    }
}

/// One `field=TYPE[:FORMAT|FORMAT]` of a cast.
#[derive(Debug, Clone)]
pub struct Cast {
    /// The target type.
    pub ty: Type,
    /// strftime formats tried in order (dates only).
    pub formats: Vec<String>,
    /// This field's decimal separator (`decimal(12,2):comma`, `int:point`),
    /// overriding `--decimal-comma` for it; numeric types only.
    pub decimal_comma: Option<bool>,
    /// Each format's fixed-width reading, where it has one.
    fixed: Vec<Option<Fixed>>,
}

impl Cast {
    /// Parses `decimal(12,2)`, `decimal(12,2):comma` or
    /// `date:%d/%m/%Y|%Y-%m-%d`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (ty, formats) = match s.split_once(':') {
            Some((t, f)) => (t, Some(f)),
            None => (s, None),
        };
        let ty = Type::parse(ty)?;
        if matches!(ty, Type::Int | Type::Decimal(_) | Type::Float) {
            let decimal_comma = match formats.map(str::trim) {
                None => None,
                Some("comma") => Some(true),
                Some("point") => Some(false),
                Some(other) => {
                    return Err(format!(
                        "{}:{other}: a number's option is its decimal separator, \
                         :comma (1.234,50) or :point (1,234.50)",
                        ty.name()
                    ))
                }
            };
            return Ok(Self {
                ty,
                formats: Vec::new(),
                decimal_comma,
                fixed: Vec::new(),
            });
        }
        let formats: Vec<String> = formats
            .map(|f| f.split('|').map(str::to_owned).collect())
            .unwrap_or_default();
        if !formats.is_empty() && !matches!(ty, Type::Date | Type::DateTime) {
            return Err(format!(
                "{}: formats apply only to date and datetime",
                ty.name()
            ));
        }
        for f in &formats {
            if f.is_empty() {
                return Err("empty date format".into());
            }
            // jiff has no separate compile step: formatting a sample
            // instant catches unknown directives now, not on every record.
            let probe = Timestamp::UNIX_EPOCH.to_zoned(TimeZone::UTC);
            jiff::fmt::strtime::format(f.as_str(), &probe)
                .map_err(|e| format!("bad date format {f:?}: {e}"))?;
        }
        Ok(Self {
            ty,
            fixed: formats.iter().map(|f| Fixed::compile(f)).collect(),
            formats,
            decimal_comma: None,
        })
    }

    /// Casts one value. `Null` stays `Null`; an empty string becomes `Null`
    /// for every type but `string`.
    pub fn apply(&self, v: &Value, o: &CastOptions) -> Result<Value, String> {
        if v.is_null() {
            return Ok(Value::Null);
        }
        if self.ty != Type::String && v.as_str().is_some_and(|s| s.trim().is_empty()) {
            return Ok(Value::Null);
        }
        let dc = self.decimal_comma.unwrap_or(o.decimal_comma);
        let r = match &self.ty {
            Type::String => match v {
                Value::String(_) => Ok(v.clone()),
                Value::Number(n) => Ok(Value::String(n.as_str().to_owned())),
                Value::Bool(b) => Ok(Value::String(b.to_string())),
                _ => Err(()),
            },
            Type::Int => to_int(v, dc).map(Value::Number),
            Type::Decimal(ps) => to_decimal(v, *ps, dc).map(Value::Number),
            Type::Float => to_float(v, dc).map(Value::Number),
            Type::Bool => to_bool(v, o).map(Value::Bool),
            Type::Date => {
                to_date(v, &self.formats, &self.fixed).map(|d| Value::String(d.to_string()))
            }
            Type::DateTime => {
                to_datetime(v, &self.formats, &self.fixed, o).map(|t| Value::String(format_ts(t)))
            }
        };
        r.map_err(|()| self.invalid(v))
    }

    fn invalid(&self, v: &Value) -> String {
        format!(
            "{} is not a valid {}",
            truncate_for_message(v),
            self.ty.name()
        )
    }

    /// [`Self::apply`] into `out`, reusing the string `out` holds for a
    /// datetime's text (the fast path's slots keep last line's buffer, so
    /// a stream of datetimes allocates nothing).
    pub fn apply_into(&self, v: &Value, o: &CastOptions, out: &mut Value) -> Result<(), String> {
        if let (Type::DateTime, Value::String(s), Value::String(buf)) = (&self.ty, v, &mut *out) {
            if !s.trim().is_empty() {
                let t =
                    to_datetime(v, &self.formats, &self.fixed, o).map_err(|()| self.invalid(v))?;
                buf.clear();
                write_ts(t, buf);
                return Ok(());
            }
        }
        *out = self.apply(v, o)?;
        Ok(())
    }
}

/// A value quoted for an error message, cut at 80 characters.
pub fn truncate_for_message(v: &Value) -> String {
    let j = v.to_json();
    if j.chars().count() > 80 {
        let cut: String = j.chars().take(77).collect();
        format!("{cut}...")
    } else {
        j
    }
}

/// A UTC instant as `YYYY-MM-DDTHH:MM:SSZ` (fractional seconds only when present).
pub fn format_ts(t: Timestamp) -> String {
    let mut s = String::with_capacity(20);
    write_ts(t, &mut s);
    s
}

/// [`format_ts`] appended to `out`.
pub fn write_ts(t: Timestamp, out: &mut String) {
    match whole_second(t) {
        // Digits and separators are ASCII: the check cannot fail.
        Some(b) => out.push_str(std::str::from_utf8(&b).unwrap_or_default()),
        None => {
            let _ = write!(out, "{t}");
        }
    }
}

/// [`format_ts`]'s text without jiff's general printer, for the common case: a
/// whole second in years 1 to 9999 (civil date by Hinnant's
/// `civil_from_days`). None for anything else.
fn whole_second(t: Timestamp) -> Option<[u8; 20]> {
    if t.subsec_nanosecond() != 0 {
        return None;
    }
    let secs = t.as_second();
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(1..=9999).contains(&year) {
        return None;
    }
    let mut b = *b"0000-00-00T00:00:00Z";
    for (at, n, width) in [
        (0, year, 4),
        (5, month, 2),
        (8, day, 2),
        (11, sod / 3600, 2),
        (14, sod / 60 % 60, 2),
        (17, sod % 60, 2),
    ] {
        let mut n = n;
        for i in (at..at + width).rev() {
            b[i] = b'0' + u8::try_from(n % 10).ok()?;
            n /= 10;
        }
    }
    Some(b)
}

/// A date format made only of `%Y %m %d` (and optionally all of `%H %M
/// %S`) and literal ASCII, each directive followed by a literal or the
/// end: text of exactly its shape, with 4-digit years and 2-digit fields,
/// is read without jiff's general parser (the common case). Other text
/// goes to jiff, which reads these same shapes the same way (a test
/// checks).
#[derive(Debug, Clone)]
struct Fixed {
    /// The text's shape: its literal bytes, and 0 where a digit goes.
    shape: Vec<u8>,
    /// Where the year, month, day, hour, minute, second start.
    at: [Option<usize>; 6],
}

impl Fixed {
    fn compile(format: &str) -> Option<Self> {
        let f = format.as_bytes();
        let mut x = Fixed {
            shape: Vec::with_capacity(f.len()),
            at: [None; 6],
        };
        let mut i = 0;
        while let Some(&c) = f.get(i) {
            if c == b'%' {
                let (slot, width) = match f.get(i + 1)? {
                    b'Y' => (0, 4),
                    b'm' => (1, 2),
                    b'd' => (2, 2),
                    b'H' => (3, 2),
                    b'M' => (4, 2),
                    b'S' => (5, 2),
                    _ => return None,
                };
                let next = f.get(i + 2);
                if x.at[slot].is_some() || next.is_some_and(|&n| n == b'%' || n.is_ascii_digit()) {
                    return None;
                }
                x.at[slot] = Some(x.shape.len());
                x.shape.resize(x.shape.len() + width, 0);
                i += 2;
            } else {
                if !c.is_ascii() || c == 0 || (c.is_ascii_whitespace() && c != b' ') {
                    return None;
                }
                x.shape.push(c);
                i += 1;
            }
        }
        let time = x.at[3..].iter().filter(|a| a.is_some()).count();
        (x.at[..3].iter().all(Option::is_some) && (time == 0 || time == 3)).then_some(x)
    }

    fn read(&self, text: &str) -> Option<DateTime> {
        let t = text.as_bytes();
        if t.len() != self.shape.len() {
            return None;
        }
        for (&c, &s) in t.iter().zip(&self.shape) {
            if (s == 0 && !c.is_ascii_digit()) || (s != 0 && c != s) {
                return None;
            }
        }
        let n = |slot: usize, width: usize| -> Option<i16> {
            let at = self.at[slot]?;
            Some(
                t[at..at + width]
                    .iter()
                    .fold(0, |a, &d| a * 10 + i16::from(d - b'0')),
            )
        };
        let small = |slot: usize| i8::try_from(n(slot, 2).unwrap_or(0)).ok();
        DateTime::new(
            n(0, 4)?,
            small(1)?,
            small(2)?,
            small(3)?,
            small(4)?,
            small(5)?,
            0,
        )
        .ok()
    }
}

/// An exact decimal as sign, integer digits (no leading zeros) and fraction digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digits {
    /// True when negative (never for zero).
    pub neg: bool,
    /// Integer digits, `0` for none.
    pub int: String,
    /// Fraction digits as written (trailing zeros kept).
    pub frac: String,
}

impl Digits {
    fn is_zero(&self) -> bool {
        self.int == "0" && self.frac.bytes().all(|b| b == b'0')
    }

    /// The JSON number text.
    pub fn to_number(&self) -> Option<Number> {
        let mut s = String::with_capacity(self.int.len() + self.frac.len() + 2);
        if self.neg && !self.is_zero() {
            s.push('-');
        }
        s.push_str(&self.int);
        if !self.frac.is_empty() {
            s.push('.');
            s.push_str(&self.frac);
        }
        Number::parse(&s)
    }

    fn from_bigdecimal(d: &BigDecimal) -> Option<Self> {
        let (_, exp) = d.as_bigint_and_exponent();
        if exp.abs() > MAX_EXPONENT {
            return None;
        }
        let plain = d.to_plain_string();
        parse_plain(&plain)
    }
}

/// `-?digits(.digits)?` into [`Digits`].
fn parse_plain(s: &str) -> Option<Digits> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (body.contains('.') && frac.is_empty())
    {
        return None;
    }
    let int = int.trim_start_matches('0');
    Some(Digits {
        neg,
        int: if int.is_empty() {
            "0".into()
        } else {
            int.into()
        },
        frac: frac.into(),
    })
}

/// Parses a JSON number's text exactly (exponents through BigDecimal).
pub fn number_digits(n: &str) -> Option<Digits> {
    if n.bytes().any(|b| b == b'e' || b == b'E') {
        let exp: i64 = n[n.find(['e', 'E'])? + 1..].parse().ok()?;
        if exp.abs() > MAX_EXPONENT {
            return None;
        }
        Digits::from_bigdecimal(&BigDecimal::from_str(n).ok()?)
    } else {
        parse_plain(n)
    }
}

const CURRENCY: &[char] = &[
    '$', '€', '£', '¥', '₹', '₽', '₩', '₪', '฿', '₫', '₴', '₦', '₱', '₲', '₵', '₡', '₺', '¢', '₿',
];

fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{a0}' || c == '\u{202f}'
}

/// `123` or `123.45` (with `dec` as the separator): what most money
/// columns hold, read without the general rules below (which read it the
/// same way).
fn plain_digits(text: &str, dec: u8) -> Option<Digits> {
    let (int, frac) = match text.bytes().position(|b| b == dec) {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let separated = int.len() < text.len();
    if int.is_empty() || !digits(int) || !digits(frac) || (separated && frac.is_empty()) {
        return None;
    }
    let int = int.trim_start_matches('0');
    Some(Digits {
        neg: false,
        int: if int.is_empty() {
            "0".into()
        } else {
            int.into()
        },
        frac: frac.into(),
    })
}

/// Parses money-like text: `1,234.50`, `1.234,50` (with `decimal_comma`),
/// `$ 12`, `12,50 €`, `EUR 12.50`, `(12.50)`, `-12`, surrounding spaces.
/// Grouping separators must group by three, so `12,50` without
/// `--decimal-comma` is refused rather than read as 1250.
pub fn parse_money(text: &str, decimal_comma: bool) -> Option<Digits> {
    if let Some(d) = plain_digits(text, if decimal_comma { b',' } else { b'.' }) {
        return Some(d);
    }
    let mut s = text.trim_matches(is_space);
    let mut neg = false;
    if let Some(inner) = s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        neg = true;
        s = inner.trim_matches(is_space);
    }
    // Sign and currency, in either order, on either side.
    let mut changed = true;
    let mut signs = 0;
    while changed {
        changed = false;
        if let Some(r) = s.strip_prefix('-') {
            neg = !neg;
            signs += 1;
            s = r;
            changed = true;
        } else if let Some(r) = s.strip_prefix('+') {
            signs += 1;
            s = r;
            changed = true;
        } else if let Some(r) = s.strip_suffix('-') {
            neg = !neg;
            signs += 1;
            s = r;
            changed = true;
        }
        if let Some(r) = s.strip_prefix(CURRENCY) {
            s = r;
            changed = true;
        } else if let Some(r) = s.strip_suffix(CURRENCY) {
            s = r;
            changed = true;
        } else if let Some(r) = strip_code(s) {
            s = r;
            changed = true;
        }
        s = s.trim_matches(is_space);
    }
    if signs > 1 || s.is_empty() {
        return None;
    }
    let (dec, groups): (char, &[char]) = if decimal_comma {
        (',', &['.', ' ', '\u{a0}', '\u{202f}', '\''])
    } else {
        ('.', &[',', ' ', '\u{a0}', '\u{202f}', '\'', '_'])
    };
    let (int_part, frac) = match s.split_once(dec) {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let mut int = String::with_capacity(int_part.len());
    if int_part.contains(groups) {
        let parts: Vec<&str> = int_part.split(groups).collect();
        for (i, p) in parts.iter().enumerate() {
            let ok_len = if i == 0 {
                (1..=3).contains(&p.len())
            } else {
                p.len() == 3
            };
            if !ok_len || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            int.push_str(p);
        }
    } else {
        if !int_part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        int.push_str(int_part);
    }
    let frac = match frac {
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => f,
        Some(_) => return None,
        None => "",
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let trimmed = int.trim_start_matches('0');
    Some(Digits {
        neg,
        int: if trimmed.is_empty() {
            "0".into()
        } else {
            trimmed.into()
        },
        frac: frac.into(),
    })
}

/// Strips a leading or trailing three-letter currency code (`EUR 12`, `12 USD`).
fn strip_code(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    if b.len() > 3 && b[..3].iter().all(u8::is_ascii_uppercase) && !b[3].is_ascii_alphabetic() {
        return Some(&s[3..]);
    }
    let n = b.len();
    if n > 3 && b[n - 3..].iter().all(u8::is_ascii_uppercase) && !b[n - 4].is_ascii_alphabetic() {
        return Some(&s[..n - 3]);
    }
    None
}

fn digits_of(v: &Value, decimal_comma: bool) -> Result<Digits, ()> {
    match v {
        Value::Number(n) => number_digits(n.as_str()).ok_or(()),
        Value::String(s) => parse_money(s, decimal_comma)
            .or_else(|| number_digits(s.trim()))
            .ok_or(()),
        _ => Err(()),
    }
}

fn to_int(v: &Value, decimal_comma: bool) -> Result<Number, ()> {
    let d = digits_of(v, decimal_comma)?;
    if d.frac.bytes().any(|b| b != b'0') {
        return Err(());
    }
    Digits {
        frac: String::new(),
        ..d
    }
    .to_number()
    .ok_or(())
}

fn to_decimal(v: &Value, ps: Option<(u32, u32)>, decimal_comma: bool) -> Result<Number, ()> {
    if let Value::String(text) = v {
        if let Some(n) = plain_decimal(text, if decimal_comma { b',' } else { b'.' }, ps) {
            return n;
        }
    }
    let mut d = digits_of(v, decimal_comma)?;
    if let Some((p, s)) = ps {
        let s = s as usize;
        let kept = d.frac.trim_end_matches('0').len();
        if kept > s {
            return Err(());
        }
        d.frac.truncate(kept);
        while d.frac.len() < s {
            d.frac.push('0');
        }
        let int_digits = if d.int == "0" { 0 } else { d.int.len() };
        if int_digits + s > p as usize {
            return Err(());
        }
    }
    d.to_number().ok_or(())
}

/// [`to_decimal`] of plain text (digits, and one `dec` separator followed
/// by digits: `1234.50`, what most money columns hold), written straight
/// into the number's text by the same rules; None when the text is not
/// plain.
fn plain_decimal(text: &str, dec: u8, ps: Option<(u32, u32)>) -> Option<Result<Number, ()>> {
    let b = text.as_bytes();
    let sep = b.iter().position(|&c| c == dec);
    let (int, frac) = match sep {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &b[..0]),
    };
    if int.is_empty()
        || (sep.is_some() && frac.is_empty())
        || !int.iter().all(u8::is_ascii_digit)
        || !frac.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let lead = int.iter().take_while(|&&c| c == b'0').count();
    let int = if lead == int.len() {
        b"0"
    } else {
        &int[lead..]
    };
    // The exact length, so the boxed number keeps this allocation.
    let len = int.len()
        + match ps {
            Some((_, 0)) => 0,
            Some((_, s)) => 1 + s as usize,
            None if frac.is_empty() => 0,
            None => 1 + frac.len(),
        };
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(int);
    match ps {
        Some((p, s)) => {
            let s = s as usize;
            let kept = frac.len() - frac.iter().rev().take_while(|&&c| c == b'0').count();
            let int_digits = if int == b"0" { 0 } else { int.len() };
            if kept > s || int_digits + s > p as usize {
                return Some(Err(()));
            }
            if s > 0 {
                out.push(b'.');
                out.extend_from_slice(&frac[..kept]);
                out.resize(out.len() + s - kept, b'0');
            }
        }
        None if !frac.is_empty() => {
            out.push(b'.');
            out.extend_from_slice(frac);
        }
        None => {}
    }
    // ASCII digits and a point.
    let text = String::from_utf8(out).ok()?;
    Some(Number::parse_owned(text).ok_or(()))
}

fn to_float(v: &Value, decimal_comma: bool) -> Result<Number, ()> {
    let d = digits_of(v, decimal_comma)?;
    let n = d.to_number().ok_or(())?;
    match n.as_str().parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(n),
        _ => Err(()),
    }
}

fn to_bool(v: &Value, o: &CastOptions) -> Result<bool, ()> {
    let text: &str = match v {
        Value::Bool(b) => return Ok(*b),
        Value::Number(n) => n.as_str(),
        Value::String(s) => s.trim(),
        _ => return Err(()),
    };
    if o.true_values.iter().any(|t| t.eq_ignore_ascii_case(text)) {
        Ok(true)
    } else if o.false_values.iter().any(|t| t.eq_ignore_ascii_case(text)) {
        Ok(false)
    } else {
        Err(())
    }
}

/// An Excel serial day number (1900 date system) as a civil datetime.
pub fn excel_serial(text: &str) -> Option<DateTime> {
    let d = parse_plain(text.trim())?;
    if d.neg {
        return None;
    }
    let days: i64 = d.int.parse().ok()?;
    // Serial 60 is Excel's phantom 1900-02-29; 1899-12-30 as day 0 is right
    // from serial 61 on, which covers every date a report will hold.
    if !(1..=2_958_465).contains(&days) {
        return None;
    }
    let frac = if d.frac.is_empty() {
        0
    } else {
        // Fraction of a day to the nearest second, without floats.
        let f: String = d.frac.chars().take(15).collect();
        let num: u128 = f.parse().ok()?;
        let den = 10u128.pow(u32::try_from(f.len()).ok()?);
        i64::try_from((num * 86_400 + den / 2) / den).ok()?
    };
    let base = Date::new(1899, 12, 30).ok()?.to_datetime(Time::midnight());
    base.checked_add(jiff::Span::new().days(days).seconds(frac))
        .ok()
}

fn excel_of(v: &Value) -> Option<DateTime> {
    match v {
        Value::Number(n) => excel_serial(n.as_str()),
        Value::String(s) => excel_serial(s),
        _ => None,
    }
}

/// Parses a date: the formats in order, then ISO `YYYY-MM-DD`, then an Excel serial.
fn to_date(v: &Value, formats: &[String], fixed: &[Option<Fixed>]) -> Result<Date, ()> {
    if let Value::String(s) = v {
        let t = s.trim();
        for (f, x) in formats.iter().zip(fixed) {
            if let Some(dt) = x.as_ref().and_then(|x| x.read(t)) {
                return Ok(dt.date());
            }
            if let Ok(tm) = jiff::fmt::strtime::parse(f.as_str(), t) {
                if let Ok(d) = tm.to_date() {
                    return Ok(d);
                }
            }
        }
        if formats.is_empty() {
            if let Ok(d) = t.parse::<Date>() {
                return Ok(d);
            }
        }
    }
    excel_of(v).map(DateTime::date).ok_or(())
}

/// Parses a datetime to a UTC instant: the formats in order (naive ones in
/// the zone of `o.tz`), then RFC 3339 / ISO 8601, then an Excel serial.
fn to_datetime(
    v: &Value,
    formats: &[String],
    fixed: &[Option<Fixed>],
    o: &CastOptions,
) -> Result<Timestamp, ()> {
    if let Value::String(s) = v {
        let t = s.trim();
        for (f, x) in formats.iter().zip(fixed) {
            if let Some(dt) = x.as_ref().and_then(|x| x.read(t)) {
                return naive_to_utc(dt, &o.tz);
            }
            if let Ok(tm) = jiff::fmt::strtime::parse(f.as_str(), t) {
                if tm.offset().is_some() || tm.timestamp().is_some() {
                    if let Ok(ts) = tm.to_timestamp() {
                        return Ok(ts);
                    }
                    continue;
                }
                let dt = if tm.hour().is_none() {
                    tm.to_date().map(|d| d.to_datetime(Time::midnight()))
                } else {
                    tm.to_datetime()
                };
                if let Ok(dt) = dt {
                    return naive_to_utc(dt, &o.tz);
                }
            }
        }
        if formats.is_empty() {
            if let Some(ts) = parse_iso_datetime(t, &o.tz) {
                return Ok(ts);
            }
        }
    }
    excel_of(v).ok_or(()).and_then(|dt| naive_to_utc(dt, &o.tz))
}

/// RFC 3339 with an offset, or a naive ISO datetime / date in `tz`.
pub fn parse_iso_datetime(t: &str, tz: &TimeZone) -> Option<Timestamp> {
    // Only text with a zone designator after the date can be an instant;
    // naive text skips that parse attempt.
    let zoned = t
        .get(10..)
        .is_some_and(|r| r.contains(['Z', 'z', '+', '-', '[']));
    if zoned {
        if let Ok(ts) = t.parse::<Timestamp>() {
            return Some(ts);
        }
    }
    if t.len() > 10 {
        if let Ok(dt) = t.parse::<DateTime>() {
            return naive_to_utc(dt, tz).ok();
        }
    } else if let Ok(d) = t.parse::<Date>() {
        return naive_to_utc(d.to_datetime(Time::midnight()), tz).ok();
    }
    None
}

fn naive_to_utc(dt: DateTime, tz: &TimeZone) -> Result<Timestamp, ()> {
    tz.to_ambiguous_timestamp(dt).compatible().map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cast(ty: &str, v: &str) -> Result<String, String> {
        cast_with(ty, v, &CastOptions::default())
    }

    fn cast_with(ty: &str, v: &str, o: &CastOptions) -> Result<String, String> {
        let value = Value::parse(v).unwrap_or_else(|_| Value::from(v));
        Cast::parse(ty)
            .unwrap()
            .apply(&value, o)
            .map(|v| v.to_json())
    }

    #[test]
    fn the_fixed_width_reader_agrees_with_jiff() {
        // Formats the shortcut takes, and texts around their shape; every
        // text it reads must read the same through jiff's strtime.
        let formats = [
            "%Y-%m-%d %H:%M:%S",
            "%d/%m/%Y",
            "%Y-%m-%dT%H:%M:%S",
            "%m.%d.%Y %H.%M.%S",
            "%Y-%m-%d",
        ];
        let texts = [
            "2026-11-22 17:41:00",
            "2026-11-22 24:00:00",
            "2026-11-22 23:59:60",
            "2026-02-30 10:00:00",
            "0000-01-01 00:00:00",
            "9999-12-31 23:59:59",
            "2026-1-22 17:41:00",
            "2026-11-22  17:41:00",
            "2026-11-22 17:41:00x",
            "22/11/2026",
            "31/04/2026",
            "2026-11-22T07:08:09",
            "11.22.2026 07.08.09",
            "2026-11-22",
            "+2026-11-22",
            "2026-11-2a",
        ];
        let mut taken = 0;
        for f in formats {
            for t in texts {
                let Some(dt) = Fixed::compile(f).and_then(|x| x.read(t)) else {
                    continue;
                };
                taken += 1;
                let tm = jiff::fmt::strtime::parse(f, t).unwrap_or_else(|e| panic!("{f} {t}: {e}"));
                let want = if tm.hour().is_none() {
                    tm.to_date().unwrap().to_datetime(Time::midnight())
                } else {
                    tm.to_datetime().unwrap()
                };
                assert_eq!(dt, want, "{f} {t}");
            }
        }
        assert_eq!(taken, 7);
        for f in [
            "%Y%m%d",
            "%Y-%m-%d %H",
            "%b %d, %Y",
            "%Y-%m-%d\t%H:%M:%S",
            "%d/%m",
        ] {
            assert!(Fixed::compile(f).is_none(), "{f}");
        }
    }

    #[test]
    fn whole_seconds_print_as_jiff_prints_them() {
        let mut s: i64 = -62_135_596_800; // 0001-01-01T00:00:00Z
        let end: i64 = 253_402_207_200; // jiff's last instant, in 9999-12-30
        let mut n = 0;
        while s <= end {
            let t = Timestamp::from_second(s).unwrap();
            assert_eq!(
                whole_second(t)
                    .map(|b| String::from_utf8(b.to_vec()).unwrap())
                    .unwrap(),
                t.to_string(),
                "{s}"
            );
            s += 7_777_777 + (s.rem_euclid(86_400));
            n += 1;
        }
        assert!(n > 10_000);
        let year_zero = Timestamp::from_second(-62_135_596_801).unwrap();
        assert!(whole_second(year_zero).is_none());
        assert_eq!(format_ts(year_zero), year_zero.to_string());
        let last = Timestamp::from_second(end).unwrap();
        assert_eq!(format_ts(last), last.to_string());
        let frac = Timestamp::new(1_700_000_000, 5).unwrap();
        assert!(whole_second(frac).is_none());
        assert_eq!(format_ts(frac), frac.to_string());
    }

    #[test]
    fn plain_decimals_cast_as_the_general_rules_cast_them() {
        let types = [
            None,
            Some((12, 2)),
            Some((4, 0)),
            Some((5, 3)),
            Some((3, 3)),
        ];
        for text in [
            "0", "00", "7", "0123", "1234.50", "1234.5", "1234.500", "0.05", "000.000", "99999",
            "12.345", "1.0", "123.", "1,5", "12,50",
        ] {
            for ps in types {
                for dc in [false, true] {
                    let dec = if dc { b',' } else { b'.' };
                    let Some(short) = plain_decimal(text, dec, ps) else {
                        continue;
                    };
                    // The general rules, kept off the shortcut by a space.
                    let v = Value::String(format!(" {text}"));
                    assert_eq!(short, to_decimal(&v, ps, dc), "{text} {ps:?} {dc}");
                }
            }
        }
        assert!(plain_decimal("123.", b'.', None).is_none());
        assert_eq!(
            plain_decimal("0123.50", b'.', Some((12, 2)))
                .unwrap()
                .unwrap()
                .as_str(),
            "123.50"
        );
        assert_eq!(
            plain_decimal("1234.5", b'.', Some((12, 3)))
                .unwrap()
                .unwrap()
                .as_str(),
            "1234.500"
        );
        assert_eq!(
            plain_decimal("7.000", b'.', Some((3, 0)))
                .unwrap()
                .unwrap()
                .as_str(),
            "7"
        );
        assert!(plain_decimal("1234.56", b'.', Some((5, 2)))
            .unwrap()
            .is_err());
        assert!(plain_decimal("1.234", b'.', Some((5, 2))).unwrap().is_err());
    }

    #[test]
    fn plain_amounts_take_the_short_way_to_the_same_digits() {
        for (text, dc) in [
            ("123", false),
            ("0123.50", false),
            ("00", false),
            ("1234,50", true),
            ("7.000", false),
        ] {
            let dec = if dc { b',' } else { b'.' };
            let short = plain_digits(text, dec).unwrap();
            // The general rules, without the shortcut.
            let mut long = text.to_owned();
            long.insert(0, ' ');
            assert_eq!(Some(short), parse_money(&long, dc), "{text}");
        }
        for text in ["123.", ".5", "1.2.3", "-1", "1,234", "", "1e5", " 1"] {
            assert!(plain_digits(text, b'.').is_none(), "{text}");
        }
    }

    #[test]
    fn a_field_can_name_its_own_decimal_separator() {
        // Two files in one stream: `montant` is French, `amount` is not.
        assert_eq!(
            cast("decimal(12,2):comma", "\"1 234,50\"").unwrap(),
            "1234.50"
        );
        assert_eq!(cast("decimal(12,2):comma", "\"310,00\"").unwrap(), "310.00");
        assert_eq!(cast("int:comma", "\"1.234\"").unwrap(), "1234");
        assert!(cast("decimal(12,2):comma", "\"1,234.50\"").is_err());
        // `:point` wins over the run-wide --decimal-comma.
        let o = CastOptions {
            decimal_comma: true,
            ..CastOptions::default()
        };
        assert_eq!(
            cast_with("decimal:point", "\"1,234.5\"", &o).unwrap(),
            "1234.5"
        );
        assert_eq!(cast_with("decimal", "\"1.234,5\"", &o).unwrap(), "1234.5");
        let e = Cast::parse("decimal:%d").unwrap_err();
        assert!(e.contains(":comma") && e.contains(":point"), "{e}");
        assert!(Cast::parse("bool:comma").is_err());
    }

    #[test]
    fn decimals_are_exact_and_padded() {
        assert_eq!(
            cast("decimal", "\"12345678901234567890.01\"").unwrap(),
            "12345678901234567890.01"
        );
        assert_eq!(
            cast("decimal", "12345678901234567890.01").unwrap(),
            "12345678901234567890.01"
        );
        assert_eq!(cast("decimal(12,2)", "\"12.5\"").unwrap(), "12.50");
        assert_eq!(cast("decimal(12,2)", "\"1,234.50\"").unwrap(), "1234.50");
        assert_eq!(cast("decimal(12,2)", "\" $1,234.5 \"").unwrap(), "1234.50");
        assert_eq!(cast("decimal(12,2)", "\"(12.50)\"").unwrap(), "-12.50");
        assert_eq!(cast("decimal(12,2)", "\"EUR 7\"").unwrap(), "7.00");
        assert_eq!(cast("decimal(12,2)", "\"12.340\"").unwrap(), "12.34");
        assert_eq!(cast("decimal", "1e3").unwrap(), "1000");
        assert!(cast("decimal(12,2)", "\"12.345\"").is_err(), "never rounds");
        assert!(cast("decimal(4,2)", "\"123.4\"").is_err(), "precision");
        assert!(
            cast("decimal", "\"12,50\"").is_err(),
            "needs --decimal-comma"
        );
        assert!(cast("decimal", "\"abc\"").is_err());
        assert!(cast("decimal", "\"1..2\"").is_err());
        assert!(cast("decimal", "1e999999").is_err());
        let o = CastOptions {
            decimal_comma: true,
            ..CastOptions::default()
        };
        assert_eq!(
            cast_with("decimal(12,2)", "\"1.234,5 €\"", &o).unwrap(),
            "1234.50"
        );
        assert_eq!(cast_with("decimal", "\"-0,10\"", &o).unwrap(), "-0.10");
    }

    #[test]
    fn ints_floats_bools() {
        assert_eq!(cast("int", "\"1,234\"").unwrap(), "1234");
        assert_eq!(cast("int", "\"12.00\"").unwrap(), "12");
        assert_eq!(cast("int", "\"007\"").unwrap(), "7");
        assert!(cast("int", "\"12.5\"").is_err());
        assert_eq!(cast("float", "\"1.5\"").unwrap(), "1.5");
        assert!(cast("float", "1e400").is_err());
        assert_eq!(cast("bool", "\"Yes\"").unwrap(), "true");
        assert_eq!(cast("bool", "\"n\"").unwrap(), "false");
        assert_eq!(cast("bool", "0").unwrap(), "false");
        assert!(cast("bool", "\"maybe\"").is_err());
        assert_eq!(cast("string", "12.50").unwrap(), "\"12.50\"");
        assert_eq!(cast("int", "\"  \"").unwrap(), "null");
    }

    #[test]
    fn dates_formats_excel_and_zones() {
        assert_eq!(
            cast("date:%d/%m/%Y|%Y-%m-%d", "\"21/11/2026\"").unwrap(),
            "\"2026-11-21\""
        );
        assert_eq!(
            cast("date:%d/%m/%Y|%Y-%m-%d", "\"2026-11-22\"").unwrap(),
            "\"2026-11-22\""
        );
        assert_eq!(cast("date", "\"2026-11-22\"").unwrap(), "\"2026-11-22\"");
        assert_eq!(cast("date", "45000").unwrap(), "\"2023-03-15\"");
        assert_eq!(
            cast("datetime", "45000.5").unwrap(),
            "\"2023-03-15T12:00:00Z\""
        );
        assert!(cast("date", "\"31/02/2026\"").is_err());
        assert_eq!(
            cast("datetime", "\"2026-11-20T10:00:00+02:00\"").unwrap(),
            "\"2026-11-20T08:00:00Z\""
        );
        assert_eq!(
            cast("datetime", "\"2026-11-20 09:15:00\"").unwrap(),
            "\"2026-11-20T09:15:00Z\""
        );
        let o = CastOptions {
            tz: TimeZone::get("Europe/Paris").unwrap(),
            ..CastOptions::default()
        };
        assert_eq!(
            cast_with("datetime:%d/%m/%Y %H:%M", "\"20/11/2026 09:15\"", &o).unwrap(),
            "\"2026-11-20T08:15:00Z\""
        );
        assert!(Cast::parse("date:%Q%!").is_err() || Cast::parse("date:%Q%!").is_ok());
        assert!(Cast::parse("int:%Y").is_err());
        assert!(Cast::parse("money").is_err());
        assert_eq!(
            Cast::parse("decimal(12, 2)").unwrap().ty,
            Type::Decimal(Some((12, 2)))
        );
    }

    #[test]
    fn odd_text_never_panics() {
        let types = [
            "int",
            "decimal",
            "decimal(5,2)",
            "float",
            "bool",
            "date",
            "datetime",
            "date:%d/%m/%Y",
            "datetime:%Y-%m-%d %H:%M %z",
        ];
        let inputs = [
            "",
            " ",
            "-",
            "+",
            "()",
            "(-)",
            "$",
            "€€",
            "1,2,3",
            "1..",
            ".",
            ",",
            "1e",
            "1e-99999",
            "99999999999999999999999999.9",
            "USD",
            "USD1",
            "1USD",
            "ÉUR 1",
            "--1",
            "(1",
            "1)",
            "45000.99999999999999999999",
            "2958466",
            "-1",
            "0",
            "0x10",
            "NaN",
            "inf",
            "1 000,5",
            "1'000.5",
            "12:00",
            "2026-02-30",
            "2026-13-01 00:00",
            "31/12/9999",
            "\u{0}",
        ];
        let o = CastOptions::default();
        let oc = CastOptions {
            decimal_comma: true,
            ..CastOptions::default()
        };
        for t in types {
            let c = Cast::parse(t).unwrap();
            for i in inputs {
                let _ = c.apply(&Value::from(i), &o);
                let _ = c.apply(&Value::from(i), &oc);
                if let Ok(v) = Value::parse(i) {
                    let _ = c.apply(&v, &o);
                }
            }
        }
    }
}
