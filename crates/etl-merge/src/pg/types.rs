//! PostgreSQL types: what the stream infers, and which staged values are
//! certain to convert.
//!
//! A value in its type's plain form (an integer within the range, a decimal
//! within the precision and scale, `true`/`false`, an ISO date) is staged
//! as it is and converted by the merge's cast; any other value is "unsure":
//! its line is spooled, and PostgreSQL's own input function decides (a
//! PL/pgSQL function that tries the assignment, run on those rows only), so
//! a reject is exactly what PostgreSQL refuses. The Rust side only ever
//! says "certain" for text PostgreSQL accepts.

use std::borrow::Cow;

use postgres::types::private::BytesMut;
use postgres::types::{to_sql_checked, IsNull, ToSql, Type};

use crate::infer::Seen;
use crate::sql::ident;
use crate::stage::Cell;

/// How values of one column type are checked while staging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Every text value fits (text, varchar).
    Any,
    /// smallint, integer, bigint: the range.
    Int(i64, i64),
    /// numeric(p, s): digits before the point, digits after; `None` for
    /// plain `numeric`.
    Numeric(Option<(u32, u32)>),
    Bool,
    Float4,
    Float8,
    /// varchar(n).
    VarChar(usize),
    /// json, jsonb: text that is not JSON becomes a JSON string.
    Json,
    Date,
    Timestamp,
    TimestampTz,
    /// Any other type: PostgreSQL decides every value.
    Other,
}

/// A type name lower-cased with single spaces (`Timestamp  With Time Zone`).
pub(super) fn norm(ty: &str) -> String {
    ty.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase()
}

impl Check {
    /// The check of a PostgreSQL type name, as `--types` or `format_type()`
    /// writes it.
    pub fn of(ty: &str) -> Self {
        let t = norm(ty);
        match t.as_str() {
            "text" | "varchar" | "character varying" | "citext" | "name" => Self::Any,
            "smallint" | "int2" => Self::Int(i64::from(i16::MIN), i64::from(i16::MAX)),
            "integer" | "int" | "int4" => Self::Int(i64::from(i32::MIN), i64::from(i32::MAX)),
            "bigint" | "int8" => Self::Int(i64::MIN, i64::MAX),
            "numeric" | "decimal" => Self::Numeric(None),
            "boolean" | "bool" => Self::Bool,
            "real" | "float4" => Self::Float4,
            "double precision" | "float8" | "float" => Self::Float8,
            "json" | "jsonb" => Self::Json,
            "date" => Self::Date,
            "timestamp" | "timestamp without time zone" => Self::Timestamp,
            "timestamptz" | "timestamp with time zone" => Self::TimestampTz,
            _ => {
                let args = |prefixes: &[&str]| {
                    prefixes.iter().find_map(|p| {
                        t.strip_prefix(p)
                            .map(str::trim)
                            .and_then(|r| r.strip_prefix('('))
                            .and_then(|r| r.strip_suffix(')'))
                            .map(str::to_owned)
                    })
                };
                if let Some(a) = args(&["numeric", "decimal"]) {
                    let (p, s) = match a.split_once(',') {
                        Some((p, s)) => (p.trim().parse().ok(), s.trim().parse().ok()),
                        None => (a.trim().parse().ok(), Some(0)),
                    };
                    match (p, s) {
                        (Some(p), Some(s)) if s <= p => Self::Numeric(Some((p - s, s))),
                        _ => Self::Other,
                    }
                } else if let Some(a) = args(&["character varying", "varchar"]) {
                    a.trim().parse().map_or(Self::Other, Self::VarChar)
                } else {
                    Self::Other
                }
            }
        }
    }

    /// Every value fits: no check, no spool.
    pub fn takes_any(&self) -> bool {
        matches!(self, Self::Any)
    }

    /// Whether `cell` certainly converts (false: PostgreSQL decides).
    pub fn certain(&self, cell: &Cell<'_>) -> bool {
        let text: &str = match cell {
            Cell::Null => return true,
            Cell::Bool(_) => return matches!(self, Self::Bool | Self::Any | Self::Json),
            Cell::Json(_) => return matches!(self, Self::Any | Self::Json),
            Cell::Num(t) => t,
            Cell::Str(s) => s,
        };
        match self {
            Self::Any => true,
            Self::Int(lo, hi) => plain_integer(text).is_some_and(|n| (*lo..=*hi).contains(&n)),
            Self::Numeric(limits) => plain_decimal(text, *limits),
            Self::Bool => matches!(text, "true" | "false"),
            Self::Float4 => float_in_range(text, |t| t.parse::<f32>().map(f64::from).ok()),
            Self::Float8 => float_in_range(text, |t| t.parse::<f64>().ok()),
            Self::VarChar(n) => text.chars().count() <= *n,
            Self::Json => !text.contains("\\u0000") && !text.contains('\0'),
            Self::Date => {
                text.len() == 10 && iso_year_ok(text) && text.parse::<jiff::civil::Date>().is_ok()
            }
            Self::Timestamp => {
                iso_year_ok(text)
                    && text.len() >= 19
                    && text.parse::<jiff::civil::DateTime>().is_ok()
            }
            Self::TimestampTz => {
                iso_year_ok(text)
                    && text.len() >= 19
                    && (text.parse::<jiff::Timestamp>().is_ok()
                        || text.parse::<jiff::civil::DateTime>().is_ok())
            }
            Self::Other => false,
        }
    }
}

/// Years 0001-9999 written with four digits: PostgreSQL has no year 0.
fn iso_year_ok(t: &str) -> bool {
    t.len() >= 10
        && t.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && &t[..4] != "0000"
        && t.as_bytes()[4] == b'-'
}

/// `-?[0-9]+` as an integer.
fn plain_integer(t: &str) -> Option<i64> {
    let digits = t.strip_prefix('-').unwrap_or(t);
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// `-?[0-9]+(\.[0-9]+)?` within `(integer digits, scale)`: fraction digits
/// past the scale must be zeros (PostgreSQL would round anything else,
/// which is a reject here, as on DuckDB).
fn plain_decimal(t: &str, limits: Option<(u32, u32)>) -> bool {
    let digits = t.strip_prefix('-').unwrap_or(t);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let ok = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(digits.contains('.') && frac.is_empty());
    if !ok {
        return false;
    }
    let Some((max_int, scale)) = limits else {
        // numeric's own limits: 131072 digits before the point, 16383 after.
        return int.len() <= 1000 && frac.len() <= 16383;
    };
    let int_digits = int.trim_start_matches('0').len();
    let scale = scale as usize;
    int_digits <= max_int as usize
        && (frac.len() <= scale || frac[scale..].bytes().all(|b| b == b'0'))
}

/// A JSON number whose value the float type holds: finite, and not a
/// non-zero value that underflows to zero (PostgreSQL refuses both).
fn float_in_range(t: &str, parse: impl Fn(&str) -> Option<f64>) -> bool {
    if etl_core::record::Number::parse(t).is_none() {
        return false;
    }
    let Some(v) = parse(t) else { return false };
    let mantissa = t.split(['e', 'E']).next().unwrap_or(t);
    v.is_finite() && (v != 0.0 || !mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b)))
}

/// The staged text of a value: the value's own text; for a JSON column a
/// string that is not itself JSON becomes a JSON string (as on DuckDB).
pub fn staged_text<'a>(check: Option<&Check>, cell: &'a Cell<'a>) -> Option<Cow<'a, str>> {
    Some(match cell {
        Cell::Null => return None,
        Cell::Bool(true) => Cow::Borrowed("true"),
        Cell::Bool(false) => Cow::Borrowed("false"),
        Cell::Num(t) => Cow::Borrowed(*t),
        Cell::Json(t) => Cow::Borrowed(t.as_str()),
        Cell::Str(s) => {
            if check == Some(&Check::Json)
                && serde_json::from_str::<&serde_json::value::RawValue>(s).is_err()
            {
                let mut out = Vec::with_capacity(s.len() + 2);
                etl_core::record::write_str(&mut out, s);
                Cow::Owned(String::from_utf8(out).unwrap_or_default())
            } else {
                Cow::Borrowed(s.as_ref())
            }
        }
    })
}

/// A staging column of a table column's own type, which the Rust side
/// fills in binary with the values it is certain of (the others go to the
/// text array, for PostgreSQL to decide): the merge then reads typed
/// values, with no text-to-type cast on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    I16,
    I32,
    I64,
    Numeric,
    Bool,
    F32,
    F64,
    Text,
}

impl Slot {
    /// The slot for a column of type `ty` and its wire type, if values of
    /// that type are staged in binary.
    pub fn of(ty: &str) -> Option<(Self, Type)> {
        let t = norm(ty);
        Some(match Check::of(ty) {
            Check::Int(lo, _) if lo == i64::from(i16::MIN) => (Self::I16, Type::INT2),
            Check::Int(lo, _) if lo == i64::from(i32::MIN) => (Self::I32, Type::INT4),
            Check::Int(..) => (Self::I64, Type::INT8),
            Check::Numeric(_) => (Self::Numeric, Type::NUMERIC),
            Check::Bool => (Self::Bool, Type::BOOL),
            Check::Float4 => (Self::F32, Type::FLOAT4),
            Check::Float8 => (Self::F64, Type::FLOAT8),
            Check::Any if t == "text" => (Self::Text, Type::TEXT),
            Check::Any if t == "varchar" || t == "character varying" => (Self::Text, Type::VARCHAR),
            Check::VarChar(_) => (Self::Text, Type::VARCHAR),
            _ => return None,
        })
    }

    /// The binary value of `cell`, which the column's [`Check`] found
    /// certain; `None` when it must go through the text array after all.
    pub fn value<'b>(self, check: Option<&Check>, cell: &'b Cell<'_>) -> Option<SlotVal<'b>> {
        let text: &str = match cell {
            Cell::Null => return Some(SlotVal::Null),
            Cell::Bool(b) => {
                return match self {
                    Self::Bool => Some(SlotVal::Bool(*b)),
                    Self::Text => Some(SlotVal::Text(Cow::Borrowed(if *b {
                        "true"
                    } else {
                        "false"
                    }))),
                    _ => None,
                }
            }
            Cell::Json(t) => {
                return (self == Self::Text).then_some(SlotVal::Text(Cow::Borrowed(t.as_str())));
            }
            Cell::Num(t) => t,
            Cell::Str(s) => s,
        };
        match self {
            Self::I16 => text.parse().ok().map(SlotVal::I16),
            Self::I32 => text.parse().ok().map(SlotVal::I32),
            Self::I64 => text.parse().ok().map(SlotVal::I64),
            Self::Numeric => plain_decimal(text, None).then_some(SlotVal::Numeric(text)),
            Self::Bool => match text {
                "true" => Some(SlotVal::Bool(true)),
                "false" => Some(SlotVal::Bool(false)),
                _ => None,
            },
            Self::F32 => text.parse().ok().map(SlotVal::F32),
            Self::F64 => text.parse().ok().map(SlotVal::F64),
            Self::Text => staged_text(check, cell).map(SlotVal::Text),
        }
    }
}

/// One value of a [`Slot`], in PostgreSQL's binary format.
#[derive(Debug)]
pub enum SlotVal<'a> {
    Null,
    I16(i16),
    I32(i32),
    I64(i64),
    /// A plain decimal (`-?[0-9]+(\.[0-9]+)?`).
    Numeric(&'a str),
    Bool(bool),
    F32(f32),
    F64(f64),
    Text(Cow<'a, str>),
}

impl ToSql for SlotVal<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Self::Null => return Ok(IsNull::Yes),
            Self::I16(v) => out.extend_from_slice(&v.to_be_bytes()),
            Self::I32(v) => out.extend_from_slice(&v.to_be_bytes()),
            Self::I64(v) => out.extend_from_slice(&v.to_be_bytes()),
            Self::Numeric(t) => numeric_binary(t, out),
            Self::Bool(v) => out.extend_from_slice(&[u8::from(*v)]),
            Self::F32(v) => out.extend_from_slice(&v.to_be_bytes()),
            Self::F64(v) => out.extend_from_slice(&v.to_be_bytes()),
            Self::Text(s) => out.extend_from_slice(s.as_bytes()),
        }
        Ok(IsNull::No)
    }

    /// The slot's column type was chosen with the value ([`Slot::of`]).
    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A plain decimal in `numeric`'s binary format (`numeric_recv`): the digit
/// count, the weight of the first base-10000 digit, the sign, the display
/// scale, then the base-10000 digits, leading and trailing zero digits left
/// out. The server applies the column's precision and scale, as it does to
/// text.
fn numeric_binary(t: &str, out: &mut BytesMut) {
    let (neg, digits) = t.strip_prefix('-').map_or((false, t), |d| (true, d));
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    let dscale = u16::try_from(frac.len()).unwrap_or(u16::MAX);
    let mut groups: Vec<i16> = Vec::with_capacity(int.len() / 4 + frac.len() / 4 + 2);
    let lead = (4 - int.len() % 4) % 4;
    let (mut acc, mut n) = (0i16, lead);
    for b in int.bytes() {
        acc = acc * 10 + i16::from(b - b'0');
        n += 1;
        if n == 4 {
            groups.push(acc);
            (acc, n) = (0, 0);
        }
    }
    let int_groups = groups.len();
    for b in frac.trim_end_matches('0').bytes() {
        acc = acc * 10 + i16::from(b - b'0');
        n += 1;
        if n == 4 {
            groups.push(acc);
            (acc, n) = (0, 0);
        }
    }
    if n > 0 {
        groups.push(acc * 10i16.pow(u32::try_from(4 - n).unwrap_or(0)));
    }
    let mut weight = i16::try_from(int_groups).unwrap_or(i16::MAX) - 1;
    let start = groups.iter().take_while(|g| **g == 0).count();
    let end = groups.len()
        - groups[start..]
            .iter()
            .rev()
            .take_while(|g| **g == 0)
            .count();
    weight -= i16::try_from(start).unwrap_or(0);
    let digits = &groups[start..end];
    let zero = digits.is_empty();
    let ndigits = i16::try_from(digits.len()).unwrap_or(i16::MAX);
    out.extend_from_slice(&ndigits.to_be_bytes());
    out.extend_from_slice(&(if zero { 0 } else { weight }).to_be_bytes());
    out.extend_from_slice(&(if neg && !zero { 0x4000u16 } else { 0 }).to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
    for d in digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
}

/// The PostgreSQL type for a column inferred from the stream, as DuckDB's
/// is: text for strings and mixed kinds, bigint for integers (numeric when
/// they do not fit, with every digit), numeric with the largest scale seen
/// for fractions, double precision only for exponents, boolean, jsonb.
pub fn inferred(seen: &Seen) -> String {
    match seen.duckdb_type().as_str() {
        "JSON" => "jsonb".into(),
        "BOOLEAN" => "boolean".into(),
        "DOUBLE" => "double precision".into(),
        "BIGINT" => "bigint".into(),
        "HUGEINT" => format!("numeric({},0)", seen.int_digits().max(38)),
        "VARCHAR" => match seen.numeric_shape() {
            // Numbers past DuckDB's 38 digits: numeric keeps them.
            Some((int, scale)) if int + scale <= 1000 => {
                format!("numeric({},{scale})", (int + scale).max(38))
            }
            _ => "text".into(),
        },
        dec => match crate::sql::decimal_scale(dec) {
            Some(s) => format!("numeric(38,{s})"),
            None => "text".into(),
        },
    }
}

/// The SQL that turns a staged text into the column's type in a SELECT.
/// Character types are left as text: an explicit cast to varchar(n) would
/// silently truncate, while the INSERT's assignment refuses (and the check
/// made it a reject first).
pub fn cast_sql(v: &str, ty: &str) -> String {
    let t = norm(ty);
    if t.starts_with("character")
        || t.starts_with("varchar")
        || t.starts_with("char")
        || t == "text"
        || t == "bpchar"
    {
        v.to_owned()
    } else {
        format!("{v}::{ty}")
    }
}

/// `expr` in a form whose equality says whether a value changed, for the
/// merge's `IS DISTINCT FROM`: `json` has no equality operator (compared as
/// `jsonb`), and neither have `xml` and most geometric types, while `box`'s
/// `=` compares areas; those, and arrays of them, are compared as text.
/// Other types compare as they are.
pub fn comparable(expr: &str, ty: &str) -> String {
    let t = norm(ty);
    let base = t.trim_end_matches("[]");
    match base {
        "json" if base.len() == t.len() => format!("{expr}::jsonb"),
        "json" | "xml" | "point" | "line" | "lseg" | "box" | "path" | "polygon" | "circle" => {
            format!("{expr}::text")
        }
        _ => expr.to_owned(),
    }
}

/// A temporary PL/pgSQL function `pg_temp.{name}(text) -> boolean`: whether
/// PostgreSQL takes the text as a value of `ty` by assignment (as the
/// INSERT will), and, for numeric(p,s), without rounding.
pub fn fits_function(name: &str, ty: &str) -> String {
    let scale_check = if matches!(Check::of(ty), Check::Numeric(Some(_))) {
        "IF x <> v::numeric THEN RETURN false; END IF; "
    } else {
        ""
    };
    format!(
        "CREATE FUNCTION pg_temp.{} (v text) RETURNS boolean LANGUAGE plpgsql AS $etl$ \
         DECLARE x {ty}; BEGIN x := v; {scale_check}RETURN true; \
         EXCEPTION WHEN others THEN RETURN false; END $etl$",
        ident(name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sure(ty: &str, v: &str) -> bool {
        Check::of(ty).certain(&Cell::Str(Cow::Borrowed(v)))
    }

    #[test]
    fn only_plain_forms_are_certain() {
        assert!(sure("bigint", "-9223372036854775808"));
        assert!(!sure("bigint", "9223372036854775808"));
        assert!(!sure("integer", "2147483648"));
        assert!(sure("INTEGER", "2147483647"));
        assert!(!sure("smallint", "40000"));
        assert!(!sure("bigint", " 12"));
        assert!(!sure("bigint", "12.0"));
        assert!(sure("numeric(12,2)", "1234567890.12"));
        assert!(!sure("numeric(12,2)", "12345678901.12"));
        assert!(sure("numeric(12,2)", "1.230"));
        assert!(!sure("numeric(12,2)", "1.235"));
        assert!(!sure("numeric(12,2)", "1."));
        assert!(!sure("numeric(12,2)", "1e3"));
        assert!(sure("numeric", "123456789012345678901234567890.5"));
        assert!(sure("boolean", "true"));
        assert!(!sure("boolean", "yes"));
        assert!(sure("double precision", "1.5e300"));
        assert!(!sure("double precision", "1e999"));
        assert!(!sure("double precision", "1e-999"));
        assert!(sure("double precision", "0e-999"));
        assert!(!sure("real", "1e39"));
        assert!(sure("varchar(3)", "abc"));
        assert!(!sure("character varying(3)", "abcd"));
        assert!(sure("date", "2024-02-29"));
        assert!(!sure("date", "2023-02-29"));
        assert!(!sure("date", "0000-01-01"));
        assert!(!sure("date", "02/03/2024"));
        assert!(sure("timestamp", "2024-01-02T03:04:05"));
        assert!(sure(
            "timestamp without time zone",
            "2024-01-02 03:04:05.123"
        ));
        assert!(sure("timestamptz", "2024-01-02T03:04:05Z"));
        assert!(sure(
            "timestamp with time zone",
            "2024-01-02T03:04:05+02:00"
        ));
        assert!(!sure("uuid", "not checked here"));
        assert!(sure("text", "anything"));
        assert!(!sure("jsonb", "a\\u0000b"));
        assert!(Check::of("bigint").certain(&Cell::Num("12")));
        assert!(!Check::of("bigint").certain(&Cell::Bool(true)));
    }

    fn numeric(t: &str) -> Vec<i16> {
        let mut b = BytesMut::new();
        numeric_binary(t, &mut b);
        b.chunks(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn numerics_are_base_10000_digits_with_weight_sign_and_scale() {
        // ndigits, weight, sign (as i16: 0x4000 is negative), dscale, digits.
        assert_eq!(numeric("12.50"), [2, 0, 0, 2, 12, 5000]);
        assert_eq!(numeric("-12.50"), [2, 0, 0x4000, 2, 12, 5000]);
        assert_eq!(numeric("0.05"), [1, -1, 0, 2, 500]);
        assert_eq!(numeric("0.00001"), [1, -2, 0, 5, 1000]);
        assert_eq!(numeric("10000"), [1, 1, 0, 0, 1]);
        assert_eq!(numeric("12345678.9"), [3, 1, 0, 1, 1234, 5678, 9000]);
        assert_eq!(numeric("1.00005"), [3, 0, 0, 5, 1, 0, 5000]);
        assert_eq!(numeric("007"), [1, 0, 0, 0, 7]);
        assert_eq!(numeric("-0.00"), [0, 0, 0, 2]);
        assert_eq!(numeric("0"), [0, 0, 0, 0]);
    }

    #[test]
    fn slots_take_only_what_their_type_holds() {
        let i = Slot::of("integer").unwrap().0;
        assert!(matches!(
            i.value(None, &Cell::Num("7")),
            Some(SlotVal::I32(7))
        ));
        assert!(i.value(None, &Cell::Bool(true)).is_none());
        assert!(matches!(
            Slot::of("numeric(12,2)")
                .unwrap()
                .0
                .value(None, &Cell::Str(Cow::Borrowed("1.5"))),
            Some(SlotVal::Numeric("1.5"))
        ));
        assert_eq!(Slot::of("varchar(3)").unwrap().1, Type::VARCHAR);
        assert!(Slot::of("date").is_none());
        assert!(Slot::of("jsonb").is_none());
        assert!(Slot::of("citext").is_none());
    }

    #[test]
    fn json_columns_take_strings_as_json_strings_unless_they_are_json() {
        let j = Check::Json;
        let s = Cell::Str(Cow::Borrowed("plain text"));
        assert_eq!(staged_text(Some(&j), &s).unwrap(), "\"plain text\"");
        let s = Cell::Str(Cow::Borrowed("{\"a\":1}"));
        assert_eq!(staged_text(Some(&j), &s).unwrap(), "{\"a\":1}");
        assert_eq!(
            staged_text(None, &Cell::Str(Cow::Borrowed("x"))).unwrap(),
            "x"
        );
        assert!(staged_text(None, &Cell::Null).is_none());
    }

    #[test]
    fn values_without_a_true_equality_compare_as_jsonb_or_text() {
        assert_eq!(comparable("t.a", "json"), "t.a::jsonb");
        assert_eq!(comparable("t.a", "JSON[]"), "t.a::text");
        assert_eq!(comparable("t.a", "box"), "t.a::text");
        assert_eq!(comparable("t.a", "jsonb"), "t.a");
        assert_eq!(comparable("t.a", "numeric(12,2)"), "t.a");
    }

    #[test]
    fn casts_leave_character_types_to_the_insert() {
        assert_eq!(cast_sql("c0", "varchar(3)"), "c0");
        assert_eq!(cast_sql("c0", "character varying(3)"), "c0");
        assert_eq!(cast_sql("c0", "numeric(12,2)"), "c0::numeric(12,2)");
        assert!(fits_function("f", "numeric(12,2)").contains("x <> v::numeric"));
        assert!(!fits_function("f", "date").contains("x <> v::numeric"));
    }
}
