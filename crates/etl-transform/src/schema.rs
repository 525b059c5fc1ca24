//! `--schema FILE`: the columns a record must have after the steps.
//!
//! Two different failures, on purpose: a *value* that does not fit its
//! column (wrong type, required but empty) is a problem of one record, so
//! it is a reject; a *column* added or missing is a change of the data's
//! shape, which hits every record after it, so it fails the run (exit 65)
//! unless `--on-drift` says otherwise.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use etl_core::{Error, Record, Result, Value};
use serde::Deserialize;

use crate::cast::{number_digits, Type};
use crate::spec::line_col;

/// One column of the schema.
#[derive(Debug, Clone)]
pub struct Column {
    /// The field name.
    pub name: String,
    /// Its type, or any.
    pub ty: Option<Type>,
    /// Present and non-empty in every record.
    pub required: bool,
}

/// A loaded schema.
#[derive(Debug)]
pub struct Schema {
    /// The file, for messages.
    pub path: String,
    /// The columns in order.
    pub columns: Vec<Column>,
    index: HashMap<String, usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    column: Vec<toml::Spanned<ColumnFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnFile {
    name: String,
    #[serde(rename = "type")]
    ty: Option<toml::Spanned<String>>,
    #[serde(default)]
    required: bool,
}

/// Differences between a record's keys and the schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Drift {
    /// Keys in the record, not in the schema.
    pub added: Vec<String>,
    /// Schema columns absent from the record.
    pub missing: Vec<String>,
}

impl Drift {
    /// `added: a, b; missing: c`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.added.is_empty() {
            parts.push(format!("added column(s): {}", self.added.join(", ")));
        }
        if !self.missing.is_empty() {
            parts.push(format!("missing column(s): {}", self.missing.join(", ")));
        }
        parts.join("; ")
    }
}

impl Schema {
    /// Loads a schema file (exit 66 when missing, 78 when invalid).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::input(path, &e))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses schema text; errors name `FILE:LINE:COLUMN`.
    pub fn parse(text: &str, name: &str) -> Result<Self> {
        let at = |span: Option<std::ops::Range<usize>>| {
            let (l, c) = line_col(text, span.map_or(0, |s| s.start));
            format!("{name}:{l}:{c}")
        };
        let file: File = toml::from_str(text)
            .map_err(|e| Error::config(format!("{}: {}", at(e.span()), e.message().trim())))?;
        if file.column.is_empty() {
            return Err(Error::config(format!(
                "{name}: no [[column]] tables (each needs name, and optionally type and required)"
            )));
        }
        let mut columns = Vec::new();
        let mut index = HashMap::new();
        for c in file.column {
            let span = c.span();
            let c = c.into_inner();
            let ty = match c.ty {
                Some(t) => Some(Type::parse(t.get_ref()).map_err(|e| {
                    Error::config(format!("{}: column {}: {e}", at(Some(t.span())), c.name))
                })?),
                None => None,
            };
            if index.insert(c.name.clone(), columns.len()).is_some() {
                return Err(Error::config(format!(
                    "{}: column {} is listed twice",
                    at(Some(span)),
                    c.name
                )));
            }
            columns.push(Column {
                name: c.name,
                ty,
                required: c.required,
            });
        }
        Ok(Self {
            path: name.to_owned(),
            columns,
            index,
        })
    }

    /// The drift of one record, if any (cheap when there is none).
    pub fn drift(&self, rec: &Record) -> Option<Drift> {
        let mut matched = 0;
        let mut added = Vec::new();
        for k in rec.keys() {
            if self.index.contains_key(k) {
                matched += 1;
            } else {
                added.push(k.clone());
            }
        }
        if added.is_empty() && matched == self.columns.len() {
            return None;
        }
        let present: HashSet<&str> = rec.keys().map(String::as_str).collect();
        let missing = self
            .columns
            .iter()
            .filter(|c| !present.contains(c.name.as_str()))
            .map(|c| c.name.clone())
            .collect();
        Some(Drift { added, missing })
    }

    /// Checks values against column types and `required`.
    pub fn check(&self, rec: &Record) -> std::result::Result<(), String> {
        for c in &self.columns {
            let v = rec.get(&c.name);
            let empty = match v {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.trim().is_empty(),
                _ => false,
            };
            if empty {
                if c.required {
                    return Err(format!("schema: column {} is required", c.name));
                }
                continue;
            }
            let (Some(ty), Some(v)) = (&c.ty, v) else {
                continue;
            };
            if !fits(ty, v) {
                return Err(format!(
                    "schema: column {}: expected {}, found {} {}",
                    c.name,
                    ty.name(),
                    v.type_name(),
                    crate::cast::truncate_for_message(v)
                ));
            }
        }
        Ok(())
    }
}

/// Whether a (non-null) JSON value is of a schema type.
fn fits(ty: &Type, v: &Value) -> bool {
    match (ty, v) {
        (Type::String, Value::String(_))
        | (Type::Float, Value::Number(_))
        | (Type::Bool, Value::Bool(_)) => true,
        (Type::Int, Value::Number(n)) => {
            number_digits(n.as_str()).is_some_and(|d| d.frac.bytes().all(|b| b == b'0'))
        }
        (Type::Decimal(ps), Value::Number(n)) => match (ps, number_digits(n.as_str())) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some((p, s)), Some(d)) => {
                let frac = d.frac.trim_end_matches('0').len();
                let int = if d.int == "0" { 0 } else { d.int.len() };
                frac <= *s as usize && int + *s as usize <= *p as usize
            }
        },
        (Type::Date, Value::String(s)) => s.len() == 10 && s.parse::<jiff::civil::Date>().is_ok(),
        (Type::DateTime, Value::String(s)) => s.parse::<jiff::Timestamp>().is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = r#"
[[column]]
name = "order_id"
type = "string"
required = true

[[column]]
name = "amount"
type = "decimal(12,2)"

[[column]]
name = "updated_at"
type = "datetime"
"#;

    fn rec(s: &str) -> Record {
        etl_core::record::parse_record(s).unwrap()
    }

    #[test]
    fn types_required_and_drift() {
        let s = Schema::parse(S, "s.toml").unwrap();
        let ok = rec(r#"{"order_id":"A","amount":12.50,"updated_at":"2026-11-20T09:15:00Z"}"#);
        assert!(s.drift(&ok).is_none());
        assert!(s.check(&ok).is_ok());
        let bad = rec(r#"{"order_id":"","amount":"12.50","updated_at":null}"#);
        assert!(s.check(&bad).unwrap_err().contains("order_id is required"));
        let bad = rec(r#"{"order_id":"A","amount":"12.50","updated_at":null}"#);
        assert!(s
            .check(&bad)
            .unwrap_err()
            .contains("expected decimal(12,2)"));
        let bad = rec(r#"{"order_id":"A","amount":12.505}"#);
        assert!(s.check(&bad).is_err());
        let d = s
            .drift(&rec(r#"{"order_id":"A","amount":1,"extra":1}"#))
            .unwrap();
        assert_eq!(d.added, ["extra"]);
        assert_eq!(d.missing, ["updated_at"]);
        assert_eq!(
            d.describe(),
            "added column(s): extra; missing column(s): updated_at"
        );
    }

    #[test]
    fn errors_have_line_and_column() {
        let e =
            Schema::parse("[[column]]\nname = \"a\"\ntype = \"money\"\n", "s.toml").unwrap_err();
        assert!(
            e.message()
                .starts_with("s.toml:3:8: column a: unknown type"),
            "{e}"
        );
        let e = Schema::parse("[[column]]\nnam = \"a\"\n", "s.toml").unwrap_err();
        assert!(e.message().starts_with("s.toml:2:1"), "{e}");
        assert_eq!(e.exit_code(), etl_core::Exit::Config);
    }
}
