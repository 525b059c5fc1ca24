//! `--spec FILE.toml`: the steps and options a cron script keeps in a file.
//!
//! The file is read with toml's spanned document parser rather than into a
//! serde struct, so that every problem (a syntax error, an unknown step, a
//! bad argument, a bad expression deep inside a string) is reported as
//! `FILE:LINE:COLUMN: message`, pointing at the character at fault.
//!
//! ```toml
//! on_cast_error = "reject"
//! timezone = "Europe/Paris"
//!
//! [[step]]
//! rename = ["Order ID=order_id", "Amount=amount"]
//!
//! [[step]]
//! filter = "amount > 100"
//! ```

use std::ops::Range;
use std::path::{Path, PathBuf};

use etl_core::{Error, Result};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::steps::Kind;

/// One step of a spec file.
#[derive(Debug, Clone)]
pub struct SpecStep {
    /// Which step.
    pub kind: Kind,
    /// Its argument, the text the flag would take.
    pub arg: String,
    /// Byte offset in the file where the argument's text starts.
    pub at: usize,
}

/// A parsed spec file.
#[derive(Debug, Default)]
pub struct Spec {
    /// The file name, for messages.
    pub name: String,
    text: String,
    /// The steps in order.
    pub steps: Vec<SpecStep>,
    /// `on_cast_error`.
    pub on_cast_error: Option<(String, usize)>,
    /// `on_drift`.
    pub on_drift: Option<(String, usize)>,
    /// `decimal_comma`.
    pub decimal_comma: Option<bool>,
    /// `timezone`.
    pub timezone: Option<(String, usize)>,
    /// `schema`, relative to the spec file's directory.
    pub schema: Option<PathBuf>,
    /// `true_values`.
    pub true_values: Option<Vec<String>>,
    /// `false_values`.
    pub false_values: Option<Vec<String>>,
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut cut = offset;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let before = &text[..cut];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Where a string value's text starts (after its opening quotes).
fn content_start(text: &str, span: &Range<usize>) -> usize {
    let s = text.get(span.start..).unwrap_or("");
    if s.starts_with("\"\"\"") || s.starts_with("'''") {
        span.start + 3
    } else if s.starts_with('"') || s.starts_with('\'') {
        span.start + 1
    } else {
        span.start
    }
}

impl Spec {
    /// Reads and parses a spec file (exit 66 when missing, 78 when invalid).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::input(path, &e))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, &path.display().to_string(), &base)
    }

    /// An exit-78 error at a byte offset of the file.
    pub fn error_at(&self, offset: usize, message: impl std::fmt::Display) -> Error {
        error_at(&self.name, &self.text, offset, message)
    }

    /// Parses spec text.
    pub fn parse(text: &str, name: &str, base: &Path) -> Result<Self> {
        let mut spec = Spec {
            name: name.to_owned(),
            text: text.to_owned(),
            ..Spec::default()
        };
        let doc = DeTable::parse(text).map_err(|e| {
            error_at(
                name,
                text,
                e.span().map_or(0, |s| s.start),
                e.message().trim(),
            )
        })?;
        let err = |offset: usize, m: String| error_at(name, text, offset, m);
        for (key, value) in doc.get_ref() {
            let k = key.get_ref().as_ref();
            let at = key.span().start;
            let vs = value.span();
            let str_val = || -> Result<(String, usize)> {
                match value.get_ref() {
                    DeValue::String(s) => Ok((s.to_string(), content_start(text, &vs))),
                    other => Err(err(
                        vs.start,
                        format!("{k} must be a string, found {}", other.type_str()),
                    )),
                }
            };
            match k {
                "step" => spec.steps = steps(text, name, value)?,
                "on_cast_error" | "on-cast-error" => spec.on_cast_error = Some(str_val()?),
                "on_drift" | "on-drift" => spec.on_drift = Some(str_val()?),
                "timezone" => spec.timezone = Some(str_val()?),
                "schema" => spec.schema = Some(base.join(str_val()?.0)),
                "decimal_comma" | "decimal-comma" => match value.get_ref() {
                    DeValue::Boolean(b) => spec.decimal_comma = Some(*b),
                    other => {
                        return Err(err(
                            vs.start,
                            format!("{k} must be true or false, found {}", other.type_str()),
                        ))
                    }
                },
                "true_values" | "true-values" | "false_values" | "false-values" => {
                    let words = string_list(text, name, k, value)?
                        .into_iter()
                        .flat_map(|(s, _)| {
                            s.split(',')
                                .map(|w| w.trim().to_lowercase())
                                .collect::<Vec<_>>()
                        })
                        .filter(|w| !w.is_empty())
                        .collect();
                    if k.starts_with("true") {
                        spec.true_values = Some(words);
                    } else {
                        spec.false_values = Some(words);
                    }
                }
                other => {
                    let hint = if Kind::from_name(other).is_some() {
                        format!(" (steps go in [[step]] tables: [[step]]\\n{other} = ...)")
                    } else {
                        String::new()
                    };
                    return Err(err(
                        at,
                        format!(
                            "unknown setting {other:?}{hint}; known: step, on_cast_error, on_drift, \
                             timezone, schema, decimal_comma, true_values, false_values"
                        ),
                    ));
                }
            }
        }
        Ok(spec)
    }
}

fn error_at(name: &str, text: &str, offset: usize, m: impl std::fmt::Display) -> Error {
    let (l, c) = line_col(text, offset);
    Error::config(format!("{name}:{l}:{c}: {m}"))
}

/// A string or an array of strings, with where each starts.
fn string_list(
    text: &str,
    name: &str,
    key: &str,
    value: &Spanned<DeValue<'_>>,
) -> Result<Vec<(String, usize)>> {
    let vs = value.span();
    match value.get_ref() {
        DeValue::String(s) => Ok(vec![(s.to_string(), content_start(text, &vs))]),
        DeValue::Array(items) => items
            .iter()
            .map(|it| match it.get_ref() {
                DeValue::String(s) => Ok((s.to_string(), content_start(text, &it.span()))),
                other => Err(error_at(
                    name,
                    text,
                    it.span().start,
                    format!("{key}: expected a string, found {}", other.type_str()),
                )),
            })
            .collect(),
        other => Err(error_at(
            name,
            text,
            vs.start,
            format!(
                "{key}: expected a string or an array of strings, found {}",
                other.type_str()
            ),
        )),
    }
}

fn steps(text: &str, name: &str, value: &Spanned<DeValue<'_>>) -> Result<Vec<SpecStep>> {
    let err = |offset: usize, m: String| error_at(name, text, offset, m);
    let DeValue::Array(tables) = value.get_ref() else {
        return Err(err(
            value.span().start,
            "`step` must be an array of tables: write [[step]]".into(),
        ));
    };
    let mut out = Vec::new();
    for t in tables.as_ref() {
        let DeValue::Table(table) = t.get_ref() else {
            return Err(err(t.span().start, "each step must be a table".into()));
        };
        // The table's keys are sorted by name: order them as written.
        let mut entries: Vec<_> = table.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        if entries.len() != 1 {
            let at = entries
                .get(1)
                .map_or(t.span().start, |(k, _)| k.span().start);
            return Err(err(
                at,
                format!(
                    "each [[step]] holds exactly one step, found {} (start another [[step]])",
                    entries.len()
                ),
            ));
        }
        let (key, v) = entries[0];
        let k = key.get_ref().as_ref();
        let Some(kind) = Kind::from_name(k) else {
            let known: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            return Err(err(
                key.span().start,
                format!("unknown step {k:?}; known: {}", known.join(", ")),
            ));
        };
        match v.get_ref() {
            DeValue::Boolean(true) if kind.takes_no_value() => {
                out.push(SpecStep {
                    kind,
                    arg: String::new(),
                    at: v.span().start,
                });
            }
            DeValue::Boolean(_) => {
                return Err(err(
                    v.span().start,
                    format!("{k} = true is the only boolean form (remove the step to turn it off)"),
                ))
            }
            _ => {
                for (arg, at) in string_list(text, name, k, v)? {
                    out.push(SpecStep { kind, arg, at });
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Spec> {
        Spec::parse(s, "t.toml", Path::new("dir"))
    }

    #[test]
    fn steps_in_order_with_options() {
        let s = parse(
            "on_cast_error = \"null\"\ndecimal_comma = true\nschema = \"s.toml\"\n\
             [[step]]\nrename = [\"Order ID=order_id\", 'Amount=amount']\n\
             [[step]]\nfilter = \"amount > 100\"\n[[step]]\nadd_run_id = true\n",
        )
        .unwrap();
        let got: Vec<_> = s.steps.iter().map(|s| (s.kind, s.arg.as_str())).collect();
        assert_eq!(
            got,
            [
                (Kind::Rename, "Order ID=order_id"),
                (Kind::Rename, "Amount=amount"),
                (Kind::Filter, "amount > 100"),
                (Kind::AddRunId, ""),
            ]
        );
        assert_eq!(s.on_cast_error.unwrap().0, "null");
        assert_eq!(s.decimal_comma, Some(true));
        assert_eq!(s.schema.unwrap(), Path::new("dir/s.toml"));
        // The offset points at the argument text.
        let f = &s.steps[2];
        assert_eq!(line_col(&s.text, f.at), (7, 11));
    }

    #[test]
    fn problems_have_line_and_column() {
        let e = parse("[[step]]\nfilter = \"a >\n").unwrap_err();
        assert!(e.message().starts_with("t.toml:2:"), "{e}");
        let e = parse("[[step]]\nfrobnicate = \"x\"\n").unwrap_err();
        assert!(e.message().starts_with("t.toml:2:1: unknown step"), "{e}");
        let e = parse("[[step]]\nselect = \"a\"\ndrop = \"b\"\n").unwrap_err();
        assert!(e.message().starts_with("t.toml:3:1: each [[step]]"), "{e}");
        let e = parse("bogus = 1\n").unwrap_err();
        assert!(
            e.message().starts_with("t.toml:1:1: unknown setting"),
            "{e}"
        );
        let e = parse("[[step]]\nselect = 3\n").unwrap_err();
        assert!(e.message().starts_with("t.toml:2:10"), "{e}");
        assert_eq!(e.exit_code(), etl_core::Exit::Config);
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncé\nx", 6), (2, 3));
        assert_eq!(line_col("", 10), (1, 1));
    }
}
