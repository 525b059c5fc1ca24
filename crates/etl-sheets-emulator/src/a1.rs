//! A1 notation, as the Sheets API reads and writes it.
//!
//! Accepted (Google's "A1 notation" guide): `Sheet1!A1:B2`, `'Q1 ''24'!A1`,
//! `A1:B2` (first sheet), `Sheet1` (whole sheet), `A:C` and `A2:C`
//! (unbounded rows), `2:5` (unbounded columns), `A5:A` and single cells.
//! A reversed range (`B2:A1`) is normalised. R1C1 notation is not accepted.
//!
//! Indexes are 0-based and end-exclusive, like the API's `GridRange`.

use std::fmt::Write as _;

/// Largest column count a sheet may have (column `ZZZ`).
pub const MAX_COLUMNS: u32 = 18_278;

/// A parsed range before it is resolved against a sheet's grid: `None`
/// bounds are open (to the grid's edge).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct A1 {
    /// The sheet title, or `None` for the first sheet.
    pub sheet: Option<String>,
    pub start_row: Option<u32>,
    pub start_col: Option<u32>,
    pub end_row: Option<u32>,
    pub end_col: Option<u32>,
}

/// A range resolved against a sheet: concrete, 0-based, end-exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub r0: u32,
    pub c0: u32,
    pub r1: u32,
    pub c1: u32,
}

impl Grid {
    pub fn rows(&self) -> u32 {
        self.r1.saturating_sub(self.r0)
    }
    pub fn cols(&self) -> u32 {
        self.c1.saturating_sub(self.c0)
    }
}

/// Parses `text`; the error is Google's message for an unparseable range.
pub fn parse(text: &str) -> Result<A1, String> {
    let bad = || format!("Unable to parse range: {text}");
    let (sheet, cells) = split_sheet(text).ok_or_else(bad)?;
    let Some(cells) = cells else {
        // No `!`: a cell reference on the first sheet, or else a sheet name.
        if let Some(r) = parse_cells(text) {
            return Ok(r);
        }
        if text.is_empty() {
            return Err(bad());
        }
        return Ok(A1 {
            sheet: Some(sheet),
            ..A1::default()
        });
    };
    let mut r = parse_cells(cells).ok_or_else(bad)?;
    r.sheet = Some(sheet);
    Ok(r)
}

/// Splits `'Name'!cells` / `Name!cells` / `Name`. Returns the (unquoted)
/// sheet name and the cells part when there is a `!`.
fn split_sheet(text: &str) -> Option<(String, Option<&str>)> {
    if let Some(rest) = text.strip_prefix('\'') {
        let mut name = String::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((i, ch)) = chars.next() {
            if ch == '\'' {
                if matches!(chars.peek(), Some((_, '\''))) {
                    chars.next();
                    name.push('\'');
                    continue;
                }
                let after = &rest[i + 1..];
                return match after.strip_prefix('!') {
                    Some(cells) => Some((name, Some(cells))),
                    None if after.is_empty() => Some((name, None)),
                    None => None,
                };
            }
            name.push(ch);
        }
        return None;
    }
    match text.rfind('!') {
        Some(i) => Some((text[..i].to_owned(), Some(&text[i + 1..]))),
        None => Some((text.to_owned(), None)),
    }
}

/// One side of a range: optional column letters then optional row digits.
fn parse_ref(s: &str) -> Option<(Option<u32>, Option<u32>)> {
    let s = s.trim_start_matches('$');
    let letters = s.bytes().take_while(u8::is_ascii_alphabetic).count();
    let (l, rest) = s.split_at(letters);
    let rest = rest.strip_prefix('$').unwrap_or(rest);
    if l.is_empty() && rest.is_empty() {
        return None;
    }
    let col = if l.is_empty() {
        None
    } else {
        Some(column_index(l)?)
    };
    let row = if rest.is_empty() {
        None
    } else {
        if !rest.bytes().all(|b| b.is_ascii_digit()) || rest.starts_with('0') || rest.len() > 9 {
            return None;
        }
        Some(rest.parse::<u32>().ok()? - 1)
    };
    Some((col, row))
}

fn parse_cells(s: &str) -> Option<A1> {
    let (a, b) = match s.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let (ac, ar) = parse_ref(a)?;
    match b {
        None => {
            // A lone reference must be a whole cell (`A1`); `A` or `5` alone
            // is a sheet name.
            let (c, r) = (ac?, ar?);
            Some(A1 {
                sheet: None,
                start_row: Some(r),
                start_col: Some(c),
                end_row: Some(r + 1),
                end_col: Some(c + 1),
            })
        }
        Some(b) => {
            let (bc, br) = parse_ref(b)?;
            // `A:C`, `2:5`, `A2:C`, `A1:B2`. A column-only side pairs with a
            // column-only or full side, a row-only side with a row-only one.
            if (ac.is_none() && bc.is_some()) || (ar.is_none() && ac.is_some() && bc.is_none()) {
                return None;
            }
            let (c0, c1) = order(ac, bc);
            let (r0, r1) = order(ar, br);
            Some(A1 {
                sheet: None,
                start_col: Some(c0.unwrap_or(0)),
                end_col: c1.map(|c| c + 1),
                start_row: Some(r0.unwrap_or(0)),
                end_row: r1.map(|r| r + 1),
            })
        }
    }
}

/// Orders two optional inclusive bounds (`B2:A1` is `A1:B2`).
fn order(a: Option<u32>, b: Option<u32>) -> (Option<u32>, Option<u32>) {
    match (a, b) {
        (Some(x), Some(y)) if x > y => (Some(y), Some(x)),
        other => other,
    }
}

/// `A` → 0, `Z` → 25, `AA` → 26; `None` past column ZZZ.
pub fn column_index(letters: &str) -> Option<u32> {
    if letters.is_empty() || letters.len() > 3 {
        return None;
    }
    let mut n: u32 = 0;
    for b in letters.bytes() {
        n = n * 26 + u32::from(b.to_ascii_uppercase() - b'A') + 1;
    }
    Some(n - 1)
}

/// 0 → `A`, 26 → `AA`.
pub fn column_name(mut index: u32) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + u8::try_from(index % 26).unwrap_or(0));
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A sheet title as it appears before `!`: quoted (with `'` doubled) unless
/// it is a plain identifier that cannot be read as a cell reference.
pub fn quote_sheet(title: &str) -> String {
    let plain = title
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && title
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && parse_ref(title).is_none_or(|(c, r)| c.is_none() || r.is_none());
    if plain {
        title.to_owned()
    } else {
        format!("'{}'", title.replace('\'', "''"))
    }
}

/// `Sheet1!A1:B2`, or `Sheet1!A1` for one cell.
pub fn format(title: &str, g: Grid) -> String {
    let mut s = quote_sheet(title);
    s.push('!');
    s.push_str(&cells(g));
    s
}

/// `A1:B2` / `A1` without the sheet.
pub fn cells(g: Grid) -> String {
    let mut s = String::new();
    let _ = write!(s, "{}{}", column_name(g.c0), g.r0 + 1);
    if g.rows() != 1 || g.cols() != 1 {
        let _ = write!(
            s,
            ":{}{}",
            column_name(g.c1.saturating_sub(1).max(g.c0)),
            g.r1.max(g.r0 + 1)
        );
    }
    s
}

/// The range as Google's grid-limit error quotes it: sheet name always
/// quoted, the range as requested (bounds past the grid included).
pub fn format_quoted(title: &str, g: Grid) -> String {
    format!("'{}'!{}", title.replace('\'', "''"), cells(g))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> A1 {
        parse(s).unwrap()
    }

    #[test]
    fn columns_round_trip() {
        for (i, n) in [
            (0, "A"),
            (25, "Z"),
            (26, "AA"),
            (701, "ZZ"),
            (702, "AAA"),
            (18_277, "ZZZ"),
        ] {
            assert_eq!(column_name(i), n);
            assert_eq!(column_index(n), Some(i));
        }
        assert_eq!(column_index("AAAA"), None);
    }

    #[test]
    fn google_guide_examples() {
        // Every example of the "A1 notation" section of Google's guide.
        let r = p("Sheet1!A1:B2");
        assert_eq!(
            r,
            A1 {
                sheet: Some("Sheet1".into()),
                start_row: Some(0),
                start_col: Some(0),
                end_row: Some(2),
                end_col: Some(2)
            }
        );
        let r = p("Sheet1!A:A");
        assert_eq!(
            (r.start_col, r.end_col, r.start_row, r.end_row),
            (Some(0), Some(1), Some(0), None)
        );
        let r = p("Sheet1!1:2");
        assert_eq!(
            (r.start_col, r.end_col, r.start_row, r.end_row),
            (Some(0), None, Some(0), Some(2))
        );
        let r = p("Sheet1!A5:A");
        assert_eq!(
            (r.start_col, r.end_col, r.start_row, r.end_row),
            (Some(0), Some(1), Some(4), None)
        );
        let r = p("A1:B2");
        assert_eq!(r.sheet, None);
        let r = p("Sheet1");
        assert_eq!(
            r,
            A1 {
                sheet: Some("Sheet1".into()),
                ..A1::default()
            }
        );
        let r = p("'My Custom Sheet'!A:A");
        assert_eq!(r.sheet.as_deref(), Some("My Custom Sheet"));
        let r = p("'My Custom Sheet'");
        assert_eq!(
            r,
            A1 {
                sheet: Some("My Custom Sheet".into()),
                ..A1::default()
            }
        );
        let r = p("'Q1 ''24'!A1:C3");
        assert_eq!(r.sheet.as_deref(), Some("Q1 '24"));
        assert_eq!((r.end_row, r.end_col), (Some(3), Some(3)));
        let r = p("Sheet1!B3");
        assert_eq!(
            (r.start_row, r.start_col, r.end_row, r.end_col),
            (Some(2), Some(1), Some(3), Some(2))
        );
        let r = p("Sheet1!A2:C");
        assert_eq!(
            (r.start_row, r.end_row, r.end_col),
            (Some(1), None, Some(3))
        );
    }

    #[test]
    fn reversed_and_absolute() {
        assert_eq!(p("B2:A1"), p("A1:B2"));
        assert_eq!(p("$A$1:$B$2"), p("A1:B2"));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "Sheet1!",
            "Sheet1!A0",
            "'unterminated",
            "'x'y",
            "Sheet1!A1:",
            "Sheet1!:B2",
            "Sheet1!A1B",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
        assert_eq!(
            parse("Sheet1!A0").unwrap_err(),
            "Unable to parse range: Sheet1!A0"
        );
    }

    #[test]
    fn quoting_and_formatting() {
        assert_eq!(quote_sheet("Sheet1"), "Sheet1");
        assert_eq!(quote_sheet("My Sheet"), "'My Sheet'");
        assert_eq!(quote_sheet("Q1 '24"), "'Q1 ''24'");
        assert_eq!(quote_sheet("A1"), "'A1'");
        assert_eq!(quote_sheet("2024"), "'2024'");
        let g = Grid {
            r0: 0,
            c0: 0,
            r1: 1000,
            c1: 26,
        };
        assert_eq!(format("Sheet1", g), "Sheet1!A1:Z1000");
        assert_eq!(
            format(
                "Sheet1",
                Grid {
                    r0: 4,
                    c0: 1,
                    r1: 5,
                    c1: 2
                }
            ),
            "Sheet1!B5"
        );
        assert_eq!(
            format_quoted(
                "Sheet1",
                Grid {
                    r0: 0,
                    c0: 0,
                    r1: 1001,
                    c1: 1
                }
            ),
            "'Sheet1'!A1:A1001"
        );
        // Formatting then parsing gives the same range back.
        for t in ["Sheet1", "My Sheet", "Q1 '24", "A1"] {
            let s = format(
                t,
                Grid {
                    r0: 1,
                    c0: 2,
                    r1: 5,
                    c1: 7,
                },
            );
            let r = p(&s);
            assert_eq!(r.sheet.as_deref(), Some(t));
            assert_eq!(
                (r.start_row, r.start_col, r.end_row, r.end_col),
                (Some(1), Some(2), Some(5), Some(7))
            );
        }
    }
}
