//! A1 notation as etl-push-sheets writes it into its requests: ranges of the
//! sheet it publishes to (`Orders!A1:J1001`, `'Q1 ''24'!A2:C`) and the cell
//! of `--start-cell`.
//!
//! The client's own code, not the emulator's: the product must not link its
//! test double, and a mistake in A1 notation written once would be tested
//! against itself. `tests/a1.rs` holds this module and the emulator's parser
//! to Google's documented examples and to each other.
//!
//! Rows and columns are 0-based here and end-exclusive in a [`Grid`], as in
//! the API's `GridRange`; the text is 1-based and inclusive.

/// Columns a sheet may have: `A` to `ZZZ` (Google's limit, 18,278).
pub const MAX_COLUMNS: u32 = 26 + 26 * 26 + 26 * 26 * 26;

/// A block of cells: rows `r0..r1`, columns `c0..c1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub r0: u32,
    pub c0: u32,
    pub r1: u32,
    pub c1: u32,
}

/// The letters of 0-based column `index` (bijective base 26: 0 is `A`, 25
/// `Z`, 26 `AA`).
pub fn column_name(index: u32) -> String {
    let mut n = u64::from(index) + 1;
    let mut letters = Vec::with_capacity(3);
    while n > 0 {
        let digit = (n - 1) % 26;
        letters.push(char::from(b'A' + u8::try_from(digit).unwrap_or(0)));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect()
}

/// The 0-based index of column `letters` (any case); `None` when they are
/// not letters or name a column past `ZZZ`.
pub fn column_index(letters: &str) -> Option<u32> {
    if letters.is_empty() || !letters.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let n = letters.bytes().try_fold(0_u32, |n, b| {
        n.checked_mul(26)?
            .checked_add(u32::from(b.to_ascii_uppercase() - b'A') + 1)
    })?;
    (n <= MAX_COLUMNS).then(|| n - 1)
}

/// A cell like `C5` (or `$C$5`): its 0-based (row, column).
pub fn parse_cell(text: &str) -> Option<(u32, u32)> {
    let text = text.strip_prefix('$').unwrap_or(text);
    let split = text.find(|c: char| !c.is_ascii_alphabetic())?;
    let (letters, rest) = text.split_at(split);
    let digits = rest.strip_prefix('$').unwrap_or(rest);
    let col = column_index(letters)?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let row: u32 = digits.parse().ok()?;
    Some((row - 1, col))
}

/// The sheet title as it goes before `!`. A plain identifier that could not
/// be read as a cell goes bare (`Orders`); anything else is quoted, with
/// `'` doubled (`'Q1 ''24'`, `'A1'`, `'2024'`).
pub fn quote_sheet(title: &str) -> String {
    let identifier = title
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && title.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if identifier && parse_cell(title).is_none() {
        title.to_owned()
    } else {
        format!("'{}'", title.replace('\'', "''"))
    }
}

/// `Title!A1:B2`, or `Title!A1` for exactly one cell. A grid with no rows or
/// columns is written as a range over its first cell (`A1:A1`).
pub fn format(title: &str, g: Grid) -> String {
    let first = format!("{}{}", column_name(g.c0), g.r0 + 1);
    let one_cell = g.r1.saturating_sub(g.r0) == 1 && g.c1.saturating_sub(g.c0) == 1;
    let (last_row, last_col) = (g.r1.max(g.r0 + 1), g.c1.saturating_sub(1).max(g.c0));
    if one_cell {
        format!("{}!{first}", quote_sheet(title))
    } else {
        format!(
            "{}!{first}:{}{last_row}",
            quote_sheet(title),
            column_name(last_col)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Columns, quoting and every range against the emulator's parser and
    // Google's examples: tests/a1.rs.

    #[test]
    fn cells_and_ranges() {
        assert_eq!(parse_cell("A1"), Some((0, 0)));
        assert_eq!(column_index("AAAA"), None);
        assert_eq!(parse_cell("$C$5"), Some((4, 2)));
        for bad in ["", "A", "5", "A0", "1A", "A1:B2", "AAAA1", "A-1"] {
            assert_eq!(parse_cell(bad), None, "{bad}");
        }
        let g = |r0, c0, r1, c1| Grid { r0, c0, r1, c1 };
        assert_eq!(format("Orders", g(0, 0, 1001, 10)), "Orders!A1:J1001");
        assert_eq!(format("Orders", g(4, 2, 5, 3)), "Orders!C5");
        assert_eq!(format("Q1 '24", g(0, 0, 2, 2)), "'Q1 ''24'!A1:B2");
    }
}
