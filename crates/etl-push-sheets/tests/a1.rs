//! etl-push-sheets writes A1 notation with its own code; the emulator reads
//! it with its own parser. Both are held to the examples of Google's "A1
//! notation" guide (developers.google.com/sheets/api/guides/concepts) and
//! to each other: every range the client writes, the emulator reads back as
//! the same block of cells.

use etl_push_sheets::a1::{self as client, Grid};
use etl_sheets_emulator::a1 as emulator;

/// Google's examples: the text, the sheet, and the 0-based end-exclusive
/// bounds (None: open to the grid's edge).
#[allow(clippy::type_complexity)]
const GOOGLE: [(&str, Option<&str>, [Option<u32>; 4]); 7] = [
    (
        "Sheet1!A1:B2",
        Some("Sheet1"),
        [Some(0), Some(0), Some(2), Some(2)],
    ),
    (
        "Sheet1!A:A",
        Some("Sheet1"),
        [Some(0), Some(0), None, Some(1)],
    ),
    (
        "Sheet1!1:2",
        Some("Sheet1"),
        [Some(0), Some(0), Some(2), None],
    ),
    (
        "Sheet1!A5:A",
        Some("Sheet1"),
        [Some(4), Some(0), None, Some(1)],
    ),
    ("A1:B2", None, [Some(0), Some(0), Some(2), Some(2)]),
    ("Sheet1", Some("Sheet1"), [None, None, None, None]),
    (
        "'My Custom Sheet'!A:A",
        Some("My Custom Sheet"),
        [Some(0), Some(0), None, Some(1)],
    ),
];

#[test]
fn the_emulator_reads_googles_examples() {
    for (text, sheet, [r0, c0, r1, c1]) in GOOGLE {
        let a = emulator::parse(text).unwrap();
        assert_eq!(a.sheet.as_deref(), sheet, "{text}");
        if r0.is_some() {
            assert_eq!(
                (a.start_row, a.start_col, a.end_row, a.end_col),
                (r0, c0, r1, c1),
                "{text}"
            );
        }
    }
    // Also from the guide: 'My Custom Sheet' needs quotes, Sheet1 does not.
    assert_eq!(client::quote_sheet("My Custom Sheet"), "'My Custom Sheet'");
    assert_eq!(client::quote_sheet("Sheet1"), "Sheet1");
}

#[test]
fn every_range_the_client_writes_reads_back_as_the_same_cells() {
    let titles = [
        "Orders",
        "Sheet1",
        "My Custom Sheet",
        "Q1 '24",
        "A1",
        "ZZZ9",
        "2024",
        "_x",
        "Ventes été",
        "R1C1",
        "AAAA1",
    ];
    let mut n = 0;
    for title in titles {
        for (r0, c0, rows, cols) in [
            (0, 0, 1, 1),
            (0, 0, 1001, 10),
            (4, 2, 1, 1),
            (1, 0, 3, 702),
            (99, 18_276, 5, 2),
            (0, 0, 0, 3),
        ] {
            let g = Grid {
                r0,
                c0,
                r1: r0 + rows,
                c1: c0 + cols,
            };
            let text = client::format(title, g);
            let a = emulator::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(a.sheet.as_deref(), Some(title), "{text}");
            let (r1, c1) = (g.r1.max(g.r0 + 1), g.c1.max(g.c0 + 1));
            assert_eq!(
                (a.start_row, a.start_col, a.end_row, a.end_col),
                (Some(g.r0), Some(g.c0), Some(r1), Some(c1)),
                "{text}"
            );
            // The emulator writes the same text for the same block.
            let e = emulator::Grid {
                r0: g.r0,
                c0: g.c0,
                r1: g.r1,
                c1: g.c1,
            };
            assert_eq!(emulator::format(title, e), text);
            n += 1;
        }
    }
    assert_eq!(n, titles.len() * 6);
    for i in [0, 1, 25, 26, 27, 701, 702, 18_277] {
        assert_eq!(client::column_name(i), emulator::column_name(i));
        assert_eq!(
            client::column_index(&client::column_name(i)),
            emulator::column_index(&emulator::column_name(i))
        );
    }
    assert_eq!(client::MAX_COLUMNS, emulator::MAX_COLUMNS);
}
