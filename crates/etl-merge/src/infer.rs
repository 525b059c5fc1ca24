//! Column types inferred from the stream: what the values of one column
//! were, joined over every record.

#[cfg(test)]
use etl_core::Value;

/// What the values of one column looked like.
#[derive(Debug, Default, Clone)]
#[allow(clippy::struct_excessive_bools)] // independent facts about the values seen
pub struct Seen {
    strings: bool,
    bools: bool,
    json: bool,
    exponent: bool,
    /// Any number without an exponent.
    numbers: bool,
    /// Any number with a fraction part.
    fraction: bool,
    /// Largest count of integer-part digits (leading zeros aside).
    int_digits: u32,
    /// Largest count of fraction digits.
    scale: u32,
    /// Some integer does not fit `i64` / `i128`.
    over_i64: bool,
    over_i128: bool,
}

impl Seen {
    /// Folds one value in.
    #[cfg(test)]
    pub fn add(&mut self, v: &Value) {
        match v {
            Value::Null => {}
            Value::Bool(_) => self.bools = true,
            Value::String(_) => self.strings = true,
            Value::Array(_) | Value::Object(_) => self.json = true,
            Value::Number(n) => self.number(n.as_str()),
        }
    }

    /// Folds one staged cell in.
    pub fn add_cell(&mut self, cell: &crate::stage::Cell<'_>) {
        use crate::stage::Cell;
        match cell {
            Cell::Null => {}
            Cell::Bool(_) => self.bools = true,
            Cell::Str(_) => self.strings = true,
            Cell::Json(_) => self.json = true,
            Cell::Num(t) => self.number(t),
        }
    }

    fn number(&mut self, text: &str) {
        if text.contains(['e', 'E']) {
            self.exponent = true;
            return;
        }
        self.numbers = true;
        let digits = text.trim_start_matches('-');
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let int_len = u32::try_from(int.trim_start_matches('0').len()).unwrap_or(u32::MAX);
        self.int_digits = self.int_digits.max(int_len);
        if frac.is_empty() {
            if text.parse::<i64>().is_err() {
                self.over_i64 = true;
                if text.parse::<i128>().is_err() {
                    self.over_i128 = true;
                }
            }
        } else {
            self.fraction = true;
            self.scale = self
                .scale
                .max(u32::try_from(frac.len()).unwrap_or(u32::MAX));
        }
    }

    /// The most integer-part digits seen.
    pub fn int_digits(&self) -> u32 {
        self.int_digits
    }

    /// `(integer digits, scale)` when every value was a number without an
    /// exponent (or null), for backends whose exact numbers go past 38 digits.
    pub fn numeric_shape(&self) -> Option<(u32, u32)> {
        (self.numbers && !self.strings && !self.bools && !self.json && !self.exponent)
            .then_some((self.int_digits, self.scale))
    }

    /// The DuckDB type for the column. Never DOUBLE unless some number had
    /// an exponent; never a type that would lose a digit of what was seen.
    pub fn duckdb_type(&self) -> String {
        let numeric = self.numbers || self.exponent;
        if self.json {
            return "JSON".into();
        }
        if self.strings || (self.bools && numeric) {
            return "VARCHAR".into();
        }
        if self.bools {
            return "BOOLEAN".into();
        }
        if self.exponent {
            return "DOUBLE".into();
        }
        if self.fraction {
            return if self.scale <= 38 && self.int_digits <= 38 - self.scale {
                format!("DECIMAL(38,{})", self.scale)
            } else {
                "VARCHAR".into()
            };
        }
        if self.numbers {
            // Every integer of up to 38 digits fits HUGEINT, so DECIMAL(38,0)
            // would add nothing; beyond HUGEINT only text keeps the digits.
            return if !self.over_i64 {
                "BIGINT".into()
            } else if !self.over_i128 {
                "HUGEINT".into()
            } else {
                "VARCHAR".into()
            };
        }
        "VARCHAR".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(values: &[&str]) -> String {
        let mut s = Seen::default();
        for v in values {
            s.add(&Value::parse(v).unwrap());
        }
        s.duckdb_type()
    }

    #[test]
    fn types_follow_the_values_seen() {
        assert_eq!(infer(&["\"a\"", "null"]), "VARCHAR");
        assert_eq!(infer(&["null"]), "VARCHAR");
        assert_eq!(infer(&["1", "-2", "null"]), "BIGINT");
        assert_eq!(infer(&["9223372036854775807"]), "BIGINT");
        assert_eq!(infer(&["9223372036854775808"]), "HUGEINT");
        assert_eq!(
            infer(&["-170141183460469231731687303715884105728"]),
            "HUGEINT"
        );
        assert_eq!(
            infer(&["170141183460469231731687303715884105727"]),
            "HUGEINT"
        );
        assert_eq!(
            infer(&["170141183460469231731687303715884105728"]),
            "VARCHAR"
        );
        assert_eq!(
            infer(&["1234567890123456789012345678901234567890"]),
            "VARCHAR"
        );
        assert_eq!(infer(&["1.5", "2", "3.25"]), "DECIMAL(38,2)");
        assert_eq!(infer(&["12345678901234567890.01"]), "DECIMAL(38,2)");
        assert_eq!(infer(&["1.5", "1e3"]), "DOUBLE");
        assert_eq!(infer(&["true", "false"]), "BOOLEAN");
        assert_eq!(infer(&["true", "1"]), "VARCHAR");
        assert_eq!(infer(&["1", "\"x\""]), "VARCHAR");
        assert_eq!(infer(&["{\"a\":1}", "[1]", "\"x\""]), "JSON");
    }
}
