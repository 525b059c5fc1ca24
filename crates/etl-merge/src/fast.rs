//! Typed staging: values that already have their column's type.
//!
//! When a column's type is known before staging (the table has the column,
//! or `--types` names it) and is one of a few plain types, a value written
//! in the strictest form of that type (a JSON integer for BIGINT, a decimal
//! with no more fraction digits than the scale for DECIMAL, a JSON boolean
//! for BOOLEAN) is staged already converted, in a typed column `n{i}` (a
//! DECIMAL of more than 18 digits in 18, see [`Fast::staged`]). Every other
//! value is staged as text, in a column `c{i}` added when the first such
//! value arrives, and converted by DuckDB exactly as before, with its type
//! check and its reject. The two
//! paths agree by construction: the fast path accepts only text whose DuckDB
//! conversion is exact and unambiguous, so DuckDB never sees it, and a value
//! never lands in both columns.
//!
//! This spares DuckDB the text copies and the casts of most numeric values,
//! which were a third of a merge's time.

use crate::stage::Cell;

/// A type with a typed staging column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fast {
    BigInt,
    Integer,
    /// DECIMAL(precision, scale), precision 1..=38.
    Decimal {
        precision: u8,
        scale: u8,
    },
    Boolean,
}

impl Fast {
    /// The fast form of a DuckDB type name, if it has one.
    pub fn of(ty: &str) -> Option<Self> {
        let t = ty.trim().to_ascii_uppercase();
        match t.as_str() {
            "BIGINT" | "INT8" | "LONG" => return Some(Self::BigInt),
            "INTEGER" | "INT4" | "INT" | "SIGNED" => return Some(Self::Integer),
            "BOOLEAN" | "BOOL" | "LOGICAL" => return Some(Self::Boolean),
            _ => {}
        }
        let rest = t
            .strip_prefix("DECIMAL")
            .or_else(|| t.strip_prefix("NUMERIC"))?
            .trim();
        // DuckDB's defaults: DECIMAL is DECIMAL(18,3), DECIMAL(p) is DECIMAL(p,0).
        let (precision, scale) = if rest.is_empty() {
            (18, 3)
        } else {
            let inner = rest.strip_prefix('(')?.strip_suffix(')')?;
            match inner.split_once(',') {
                Some((p, s)) => (p.trim().parse().ok()?, s.trim().parse().ok()?),
                None => (inner.trim().parse().ok()?, 0),
            }
        };
        ((1..=38).contains(&precision) && scale <= precision)
            .then_some(Self::Decimal { precision, scale })
    }

    /// The form a typed staging column takes for this type: a DECIMAL of
    /// more than 18 digits is staged as DECIMAL(18, scale), which DuckDB
    /// keeps in 8 bytes instead of 16, in the staging table and in the
    /// compare's hash table. A value with more digits than that is not
    /// converted: it takes the text path and DuckDB's cast to the column's
    /// own type.
    pub fn staged(self) -> Self {
        match self {
            Self::Decimal { precision, scale } if precision > 18 && scale <= 18 => Self::Decimal {
                precision: 18,
                scale,
            },
            f => f,
        }
    }

    /// The typed staging column of a DuckDB type name, if it has one:
    /// [`Fast::of`] in its [`Fast::staged`] form.
    pub fn staging(ty: &str) -> Option<Self> {
        Self::of(ty).map(Self::staged)
    }

    /// The staging column's SQL type.
    pub fn sql_type(self) -> String {
        match self {
            Self::BigInt => "BIGINT".into(),
            Self::Integer => "INTEGER".into(),
            Self::Boolean => "BOOLEAN".into(),
            Self::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
        }
    }

    /// The value converted, when the cell is in the strict form; `None`
    /// sends it down the text path.
    pub fn convert(self, cell: &Cell<'_>) -> Option<Typed> {
        let text = match cell {
            Cell::Bool(b) => {
                return (self == Self::Boolean).then_some(Typed::Bool(*b));
            }
            Cell::Num(t) => *t,
            Cell::Str(t) => t.as_ref(),
            Cell::Null | Cell::Json(_) => return None,
        };
        match self {
            Self::Boolean => None,
            Self::BigInt => integer(text)
                .and_then(|v| i64::try_from(v).ok())
                .map(Typed::I64),
            Self::Integer => integer(text)
                .and_then(|v| i32::try_from(v).ok())
                .map(Typed::I32),
            Self::Decimal { precision, scale } => decimal(text, precision, scale).map(Typed::Dec),
        }
    }
}

/// A converted value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typed {
    I64(i64),
    I32(i32),
    /// The unscaled integer of a decimal.
    Dec(i128),
    Bool(bool),
}

/// `-?[0-9]+` with no leading zero (JSON's integer form), at most 38 digits.
fn integer(text: &str) -> Option<i128> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty()
        || digits.len() > 38
        || (digits.len() > 1 && digits.starts_with('0'))
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    text.parse().ok()
}

/// `-?int(.frac)?` (JSON's form, no exponent) with at most `scale` fraction
/// digits and at most `precision - scale` integer digits, as the unscaled
/// integer. Anything longer is DuckDB's to round or refuse.
fn decimal(text: &str, precision: u8, scale: u8) -> Option<i128> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) if !f.is_empty() => (i, f),
        Some(_) => return None,
        None => (body, ""),
    };
    if int.is_empty()
        || (int.len() > 1 && int.starts_with('0'))
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > usize::from(scale)
    {
        return None;
    }
    let int_digits = int.trim_start_matches('0').len();
    if int_digits > usize::from(precision - scale) {
        return None;
    }
    let mut v: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        v = v * 10 + i128::from(b - b'0');
    }
    for _ in frac.len()..usize::from(scale) {
        v *= 10;
    }
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn num(t: &str) -> Cell<'_> {
        Cell::Num(t)
    }

    #[test]
    fn type_names() {
        assert_eq!(Fast::of("BIGINT"), Some(Fast::BigInt));
        assert_eq!(Fast::of(" int8 "), Some(Fast::BigInt));
        assert_eq!(Fast::of("integer"), Some(Fast::Integer));
        assert_eq!(Fast::of("BOOLEAN"), Some(Fast::Boolean));
        assert_eq!(
            Fast::of("decimal(18, 2)"),
            Some(Fast::Decimal {
                precision: 18,
                scale: 2
            })
        );
        assert_eq!(
            Fast::of("DECIMAL"),
            Some(Fast::Decimal {
                precision: 18,
                scale: 3
            })
        );
        assert_eq!(
            Fast::of("NUMERIC(9)"),
            Some(Fast::Decimal {
                precision: 9,
                scale: 0
            })
        );
        for other in [
            "VARCHAR",
            "DOUBLE",
            "HUGEINT",
            "DECIMAL(39,2)",
            "DECIMAL(2,3)",
            "JSON",
        ] {
            assert_eq!(Fast::of(other), None, "{other}");
        }
        assert_eq!(
            Fast::Decimal {
                precision: 38,
                scale: 2
            }
            .sql_type(),
            "DECIMAL(38,2)"
        );
    }

    #[test]
    fn wide_decimals_stage_in_18_digits_and_longer_values_take_the_text_path() {
        let dec = |precision, scale| Fast::Decimal { precision, scale };
        assert_eq!(dec(38, 2).staged(), dec(18, 2));
        assert_eq!(dec(19, 0).staged(), dec(18, 0));
        for same in [
            dec(18, 2),
            dec(9, 9),
            dec(38, 20),
            Fast::BigInt,
            Fast::Integer,
            Fast::Boolean,
        ] {
            assert_eq!(same.staged(), same, "{same:?}");
        }
        // 16 integer digits fit DECIMAL(18,2); 17 do not (DECIMAL(38,2) does).
        let staged = dec(38, 2).staged();
        assert_eq!(
            staged.convert(&num("-9999999999999999.99")),
            Some(Typed::Dec(-999_999_999_999_999_999))
        );
        assert_eq!(staged.convert(&num("12345678901234567.5")), None);
        assert_eq!(
            dec(38, 2).convert(&num("12345678901234567.5")),
            Some(Typed::Dec(1_234_567_890_123_456_750))
        );
        assert_eq!(staged.sql_type(), "DECIMAL(18,2)");
    }

    #[test]
    fn integers_in_their_strict_form_only() {
        let b = Fast::BigInt;
        assert_eq!(b.convert(&num("0")), Some(Typed::I64(0)));
        assert_eq!(b.convert(&num("-42")), Some(Typed::I64(-42)));
        assert_eq!(
            b.convert(&num("9223372036854775807")),
            Some(Typed::I64(i64::MAX))
        );
        assert_eq!(
            b.convert(&num("-9223372036854775808")),
            Some(Typed::I64(i64::MIN))
        );
        // Too big, fractions, exponents: DuckDB decides (and rejects).
        for t in ["9223372036854775808", "1.0", "1e3", "-", ""] {
            assert_eq!(b.convert(&num(t)), None, "{t}");
        }
        // A string of digits is the same number; anything looser is not ours.
        assert_eq!(
            b.convert(&Cell::Str(Cow::Borrowed("17"))),
            Some(Typed::I64(17))
        );
        for t in [" 17", "+17", "007", "17 ", "0x10"] {
            assert_eq!(b.convert(&Cell::Str(Cow::Borrowed(t))), None, "{t}");
        }
        assert_eq!(b.convert(&Cell::Bool(true)), None);
        assert_eq!(b.convert(&Cell::Null), None);
        assert_eq!(Fast::Integer.convert(&num("2147483648")), None);
        assert_eq!(
            Fast::Integer.convert(&num("-2147483648")),
            Some(Typed::I32(i32::MIN))
        );
    }

    #[test]
    fn decimals_exact_or_left_to_duckdb() {
        let d = Fast::Decimal {
            precision: 38,
            scale: 2,
        };
        assert_eq!(d.convert(&num("12.5")), Some(Typed::Dec(1250)));
        assert_eq!(d.convert(&num("12.50")), Some(Typed::Dec(1250)));
        assert_eq!(d.convert(&num("-0.01")), Some(Typed::Dec(-1)));
        assert_eq!(d.convert(&num("7")), Some(Typed::Dec(700)));
        assert_eq!(
            d.convert(&num("123456789012345678901234567890123456.78")),
            Some(Typed::Dec(
                12_345_678_901_234_567_890_123_456_789_012_345_678
            ))
        );
        // A third fraction digit (1.005 is a reject; 1.000 fits), too many
        // integer digits, exponents: the text path.
        for t in [
            "1.005",
            "1.000",
            "1234567890123456789012345678901234567.8",
            "1e2",
            "1.",
            ".5",
            "01.5",
        ] {
            assert_eq!(d.convert(&num(t)), None, "{t}");
        }
        let small = Fast::Decimal {
            precision: 4,
            scale: 2,
        };
        assert_eq!(small.convert(&num("99.99")), Some(Typed::Dec(9999)));
        assert_eq!(small.convert(&num("100")), None);
        assert_eq!(small.convert(&num("0.5")), Some(Typed::Dec(50)));
    }

    #[test]
    fn booleans_only_as_json_booleans() {
        assert_eq!(
            Fast::Boolean.convert(&Cell::Bool(false)),
            Some(Typed::Bool(false))
        );
        assert_eq!(
            Fast::Boolean.convert(&Cell::Str(Cow::Borrowed("true"))),
            None
        );
        assert_eq!(Fast::Boolean.convert(&num("1")), None);
    }
}
