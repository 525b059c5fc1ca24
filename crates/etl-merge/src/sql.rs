//! SQL text built from user input: quoted identifiers and literals, the
//! `--types` list, type names. Nothing from a record or a flag reaches SQL
//! except through these functions (values travel in Arrow batches, binary
//! COPY or bound parameters).

/// `name` as a DuckDB quoted identifier: `"` doubled, so a name with spaces,
/// quotes, unicode or a keyword is just a name.
pub fn ident(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 2);
    s.push('"');
    for c in name.chars() {
        if c == '"' {
            s.push('"');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// `text` as a SQL string literal (`'` doubled).
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Splits `--types` values into `(column, type)` pairs. Commas separate
/// pairs only outside parentheses, so `amount=DECIMAL(18,2),qty=INTEGER`
/// is two pairs. The column is everything before the first `=`.
pub fn parse_types(args: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for arg in args {
        for item in split_top_level(arg)? {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let Some((col, ty)) = item.split_once('=') else {
                return Err(format!("--types: {item:?} is not COL=TYPE"));
            };
            let (col, ty) = (col.trim(), ty.trim());
            if col.is_empty() {
                return Err(format!("--types: {item:?} has no column name"));
            }
            check_type(ty).map_err(|e| format!("--types {col}: {e}"))?;
            if let Some(prev) = out.iter_mut().find(|(c, _)| c.eq_ignore_ascii_case(col)) {
                ty.clone_into(&mut prev.1);
            } else {
                out.push((col.to_owned(), ty.to_owned()));
            }
        }
    }
    Ok(out)
}

fn split_top_level(s: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("--types: unbalanced ')' in {s:?}"));
                }
            }
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("--types: unbalanced '(' in {s:?}"));
    }
    parts.push(&s[start..]);
    Ok(parts)
}

/// A type name is spliced into DDL, so it may only hold the characters of
/// DuckDB type syntax: `DECIMAL(18,2)`, `VARCHAR[]`, `STRUCT(a INTEGER)`,
/// `TIMESTAMP WITH TIME ZONE`. DuckDB then validates it for real.
pub fn check_type(ty: &str) -> Result<(), String> {
    if ty.is_empty() {
        return Err("empty type".into());
    }
    if let Some(c) = ty
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || " _(),[]".contains(*c)))
    {
        return Err(format!("{ty:?}: {c:?} is not allowed in a type name"));
    }
    Ok(())
}

/// The scale of a `DECIMAL(p,s)` / `NUMERIC(p,s)` type name, as DuckDB
/// reports it in `information_schema` (`DECIMAL(18,2)`); `DECIMAL` alone is
/// DuckDB's `DECIMAL(18,3)`.
pub fn decimal_scale(ty: &str) -> Option<u32> {
    let t = ty.trim().to_ascii_uppercase();
    let rest = t
        .strip_prefix("DECIMAL")
        .or_else(|| t.strip_prefix("NUMERIC"))?
        .trim();
    if rest.is_empty() {
        return Some(3);
    }
    let inner = rest.strip_prefix('(')?.strip_suffix(')')?;
    match inner.split_once(',') {
        Some((_, s)) => s.trim().parse().ok(),
        None => Some(0),
    }
}

/// What a column type becomes in JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutKind {
    /// Written as a JSON number (its exact text).
    Number,
    /// `true` / `false`.
    Bool,
    /// Already JSON text (JSON, lists, structs, maps via `to_json`).
    Json,
    /// A JSON string (VARCHAR, dates and timestamps as ISO 8601 text, ...).
    Text,
}

/// A column type every staged text value converts to (VARCHAR, JSON): its
/// values are never type-checked and never rejects.
pub fn takes_any(ty: &str) -> bool {
    let t = ty.trim();
    t.eq_ignore_ascii_case("VARCHAR") || t.eq_ignore_ascii_case("JSON")
}

/// The JSON shape of a DuckDB type name.
pub fn out_kind(ty: &str) -> OutKind {
    let t = ty.trim().to_ascii_uppercase();
    let base = t.split(['(', ' ']).next().unwrap_or("");
    if t.ends_with(']') || matches!(base, "STRUCT" | "MAP" | "UNION" | "JSON") {
        return OutKind::Json;
    }
    match base {
        "TINYINT" | "SMALLINT" | "INTEGER" | "BIGINT" | "HUGEINT" | "UTINYINT" | "USMALLINT"
        | "UINTEGER" | "UBIGINT" | "UHUGEINT" | "DECIMAL" | "NUMERIC" | "DOUBLE" | "FLOAT"
        | "REAL" | "INT" | "INT1" | "INT2" | "INT4" | "INT8" | "LONG" | "SHORT" | "FLOAT4"
        | "FLOAT8" | "VARINT" | "BIGNUM" => OutKind::Number,
        "BOOLEAN" | "BOOL" | "LOGICAL" => OutKind::Bool,
        _ => OutKind::Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_and_quotes_doubled() {
        assert_eq!(ident("order id"), "\"order id\"");
        assert_eq!(
            ident("a\"; DROP TABLE t; --"),
            "\"a\"\"; DROP TABLE t; --\""
        );
        assert_eq!(ident("select"), "\"select\"");
        assert_eq!(literal("it's"), "'it''s'");
    }

    #[test]
    fn types_split_on_top_level_commas_only() {
        let got = parse_types(&[
            "amount=DECIMAL(18,2),qty=INTEGER".into(),
            "tags=VARCHAR[], s = STRUCT(a INTEGER, b VARCHAR)".into(),
        ])
        .unwrap();
        assert_eq!(
            got,
            vec![
                ("amount".into(), "DECIMAL(18,2)".into()),
                ("qty".into(), "INTEGER".into()),
                ("tags".into(), "VARCHAR[]".into()),
                ("s".into(), "STRUCT(a INTEGER, b VARCHAR)".into()),
            ]
        );
        // A later value for the same column wins.
        let got = parse_types(&["a=INTEGER".into(), "A=BIGINT".into()]).unwrap();
        assert_eq!(got, vec![("a".into(), "BIGINT".into())]);
    }

    #[test]
    fn bad_types_are_refused_before_reaching_sql() {
        assert!(parse_types(&["amount".into()]).is_err());
        assert!(parse_types(&["=INTEGER".into()]).is_err());
        assert!(parse_types(&["a=DECIMAL(18,2".into()]).is_err());
        assert!(parse_types(&["a=INTEGER); DROP TABLE t; --".into()]).is_err());
        assert!(parse_types(&["a=VARCHAR'".into()]).is_err());
    }

    #[test]
    fn decimal_scales_and_output_kinds() {
        assert_eq!(decimal_scale("DECIMAL(18,2)"), Some(2));
        assert_eq!(decimal_scale("numeric(10, 4)"), Some(4));
        assert_eq!(decimal_scale("DECIMAL"), Some(3));
        assert_eq!(decimal_scale("DECIMAL(9)"), Some(0));
        assert_eq!(decimal_scale("DOUBLE"), None);
        assert_eq!(out_kind("DECIMAL(38,2)"), OutKind::Number);
        assert_eq!(out_kind("BIGINT"), OutKind::Number);
        assert_eq!(out_kind("BOOLEAN"), OutKind::Bool);
        assert_eq!(out_kind("VARCHAR[]"), OutKind::Json);
        assert_eq!(out_kind("STRUCT(a INTEGER)"), OutKind::Json);
        assert_eq!(out_kind("JSON"), OutKind::Json);
        assert_eq!(out_kind("DATE"), OutKind::Text);
        assert_eq!(out_kind("TIMESTAMP WITH TIME ZONE"), OutKind::Text);
        assert_eq!(out_kind("VARCHAR"), OutKind::Text);
    }
}
