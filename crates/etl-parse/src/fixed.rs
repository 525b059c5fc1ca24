//! Fixed-width text (`--format fixed`): the reports old accounting systems
//! print, one record per line, each column at fixed character positions.
//!
//! The layout is `--columns 'id:1-8,name:9-38'` (1-based, inclusive
//! character positions, as the system's manual prints them), `--widths
//! 8,30` (columns one after another, named by the header line), or
//! `--columns-file` (one `name:start-end` per line). Positions count
//! characters, not bytes, so a name with `é` does not shift the columns
//! after it. Values are trimmed unless `--no-trim`. A line that ends before
//! the last column starts, or holds text past the layout's end, is a reject
//! naming the line: reading it would shift or lose values.

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use etl_core::reader::RejectInput;
use etl_core::{Error, Reject, Result, Run};

use crate::emit::{header_names, numbered, Cell, Emitter, Keys, Normalize, Origin};
use crate::input::Limits;

/// One column of the layout: 0-based character range `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The name (`None` with `--widths`: from the header line).
    pub name: Option<String>,
    /// First character, 0-based.
    pub start: usize,
    /// One past the last character.
    pub end: usize,
}

/// Options for fixed-width text.
#[derive(Debug, Clone, Default)]
pub struct Opts {
    /// Lines already skipped before the stream starts (line numbers count them).
    pub line_offset: u64,
    /// The layout (empty when `--format fixed` is not used).
    pub columns: Vec<Column>,
    /// `--no-header`: the first line is data.
    pub no_header: bool,
    /// `--skip-rows`.
    pub skip_rows: u64,
    /// Values are trimmed (not with `--no-trim`).
    pub trim: bool,
    /// `--normalize-headers`.
    pub normalize: Normalize,
}

/// Parses `--columns` (`name:start-end,...`, 1-based inclusive).
pub fn parse_columns(spec: &str, flag: &str) -> Result<Vec<Column>> {
    let mut cols = Vec::new();
    for (i, part) in spec
        .split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.starts_with('#'))
        .enumerate()
    {
        let bad = |why: &str| {
            Error::usage(format!(
                "{flag}: column {} {part:?}: {why} (expected NAME:START-END, 1-based inclusive, e.g. id:1-8)",
                i + 1
            ))
        };
        let (name, range) = part.rsplit_once(':').ok_or_else(|| bad("no `:`"))?;
        let (a, b) = range
            .split_once('-')
            .ok_or_else(|| bad("no `-` in the range"))?;
        let a: usize = a
            .trim()
            .parse()
            .map_err(|_| bad("the start is not a number"))?;
        let b: usize = b
            .trim()
            .parse()
            .map_err(|_| bad("the end is not a number"))?;
        if a == 0 || b < a {
            return Err(bad(
                "positions start at 1 and the end is not before the start",
            ));
        }
        let name = name.trim();
        if name.is_empty() {
            return Err(bad("no name"));
        }
        cols.push(Column {
            name: Some(name.to_owned()),
            start: a - 1,
            end: b,
        });
    }
    check_layout(&cols, flag)?;
    Ok(cols)
}

/// Parses `--widths 8,30,12`.
pub fn parse_widths(spec: &str) -> Result<Vec<Column>> {
    let mut cols = Vec::new();
    let mut at = 0;
    for w in spec.split(',').map(str::trim) {
        let n: usize = w.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
            Error::usage(format!("--widths {spec}: {w:?} is not a positive width"))
        })?;
        cols.push(Column {
            name: None,
            start: at,
            end: at + n,
        });
        at += n;
    }
    check_layout(&cols, "--widths")?;
    Ok(cols)
}

/// Reads `--columns-file`: the `--columns` form, one column per line (or
/// comma-separated), `#` comments.
pub fn read_columns_file(path: &Path) -> Result<Vec<Column>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::input(path, &e))?;
    parse_columns(&text, &format!("--columns-file {}", path.display()))
}

fn check_layout(cols: &[Column], flag: &str) -> Result<()> {
    if cols.is_empty() {
        return Err(Error::usage(format!("{flag}: no columns")));
    }
    let mut sorted: Vec<&Column> = cols.iter().collect();
    sorted.sort_by_key(|c| c.start);
    for w in sorted.windows(2) {
        if w[1].start < w[0].end {
            return Err(Error::usage(format!(
                "{flag}: columns {} and {} overlap (positions {}-{} and {}-{})",
                w[0].name.as_deref().unwrap_or("?"),
                w[1].name.as_deref().unwrap_or("?"),
                w[0].start + 1,
                w[0].end,
                w[1].start + 1,
                w[1].end
            )));
        }
    }
    let mut names: Vec<&str> = cols.iter().filter_map(|c| c.name.as_deref()).collect();
    names.sort_unstable();
    if let Some([a, _]) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::usage(format!("{flag}: column {a} is named twice")));
    }
    Ok(())
}

/// Infers a fixed-width layout from the sample of a text in which no
/// delimiter gives a table: the character positions blank on every line
/// (or past its end) are gutters, and each run of positions between them is
/// a column, up to the next one. Confident only with at least 5 lines (no
/// TAB, none blank counted), 2 columns or more, every gutter run at least 2
/// characters wide (single spaces are how words are separated) and every
/// column holding a value on at least half of the lines; `None` otherwise,
/// and the text is read as delimited as before.
pub fn infer(sample: &[u8], complete: bool) -> Option<Vec<Column>> {
    let text = std::str::from_utf8(sample).ok().or_else(|| {
        // The sample may end inside a character.
        let e = std::str::from_utf8(sample).err()?;
        std::str::from_utf8(&sample[..e.valid_up_to()]).ok()
    })?;
    let mut lines: Vec<Vec<char>> = text
        .split('\n')
        .map(|l| l.trim_end_matches('\r').chars().collect::<Vec<char>>())
        .collect();
    if !complete {
        lines.pop(); // perhaps cut
    }
    lines.retain(|l| !l.iter().all(|c| c.is_whitespace()));
    lines.truncate(200);
    if lines.len() < 5 || lines.iter().any(|l| l.contains(&'\t')) {
        return None;
    }
    let width = lines.iter().map(Vec::len).max()?;
    let gutter: Vec<bool> = (0..width)
        .map(|p| {
            lines
                .iter()
                .all(|l| l.get(p).is_none_or(|c| c.is_whitespace()))
        })
        .collect();
    // Runs of non-gutter positions: the columns' values.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut p = 0;
    while p < width {
        if gutter[p] {
            p += 1;
            continue;
        }
        let start = p;
        while p < width && !gutter[p] {
            p += 1;
        }
        runs.push((start, p));
    }
    if runs.len() < 2 {
        return None;
    }
    // Gutters between columns at least 2 wide; every column mostly filled.
    if runs.windows(2).any(|w| w[1].0 - w[0].1 < 2) {
        return None;
    }
    let filled = |(a, b): (usize, usize)| {
        lines
            .iter()
            .filter(|l| (a..b).any(|p| l.get(p).is_some_and(|c| !c.is_whitespace())))
            .count()
    };
    if runs.iter().any(|&r| filled(r) * 2 < lines.len()) {
        return None;
    }
    // Each column from its first position to the next one's (values may be
    // right-aligned into the gutter on other lines: trimming handles both).
    let cols = runs
        .iter()
        .enumerate()
        .map(|(i, &(a, _))| Column {
            name: None,
            start: if i == 0 { 0 } else { a },
            end: runs.get(i + 1).map_or(width, |n| n.0),
        })
        .collect();
    Some(cols)
}

/// The layout as `--columns` takes it (1-based inclusive), with names.
pub fn layout_text(cols: &[Column]) -> String {
    cols.iter()
        .enumerate()
        .map(|(i, c)| {
            let name = c.name.clone().unwrap_or_else(|| format!("col_{}", i + 1));
            format!("{name}:{}-{}", c.start + 1, c.end)
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Byte offsets of each character start of `line` (plus its end).
fn char_starts(line: &str, out: &mut Vec<usize>) {
    out.clear();
    out.extend(line.char_indices().map(|(i, _)| i));
    out.push(line.len());
}

/// The slice of `line` at characters `[a, b)`, clamped to the line.
fn slice<'l>(line: &'l str, starts: &[usize], ascii: bool, a: usize, b: usize) -> &'l str {
    let chars = if ascii { line.len() } else { starts.len() - 1 };
    let (a, b) = (a.min(chars), b.min(chars));
    if ascii {
        &line[a..b]
    } else {
        &line[starts[a]..starts[b]]
    }
}

/// Parses one fixed-width stream (already UTF-8).
pub fn parse(
    input: Box<dyn Read + '_>,
    opts: &Opts,
    origin: &Origin,
    em: &mut Emitter,
    run: &mut Run,
    limits: &Limits,
) -> Result<()> {
    let name = origin.label.as_str();
    let io_err = |e: io::Error| limits.read_error(name, &e);
    let mut r = BufReader::with_capacity(64 * 1024, input);
    let layout_end = opts.columns.iter().map(|c| c.end).max().unwrap_or(0);
    let (last_start, last_name) = opts
        .columns
        .iter()
        .max_by_key(|c| c.start)
        .map(|c| {
            let i = opts.columns.iter().position(|x| x == c).unwrap_or(0) + 1;
            (
                c.start,
                c.name.clone().unwrap_or_else(|| format!("column {i}")),
            )
        })
        .unwrap_or_default();
    let mut keys: Option<Keys> = None;
    let mut buf = Vec::new();
    let mut starts = Vec::new();
    let mut line_no = opts.line_offset;
    let mut row = 0_u64;
    loop {
        buf.clear();
        let n = r
            .by_ref()
            .take(run.max_line_bytes as u64 + 2)
            .read_until(b'\n', &mut buf)
            .map_err(io_err)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if buf.last() != Some(&b'\n') && n > run.max_line_bytes {
            // Longer than --max-line-bytes: a reject, and on to its end.
            let mut rest = Vec::new();
            r.read_until(b'\n', &mut rest).map_err(io_err)?;
            crate::delimited::too_long(run, line_no, &buf[..buf.len().min(1024)], name)?;
            continue;
        }
        if line_no <= opts.line_offset + opts.skip_rows {
            continue;
        }
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        let Ok(line) = std::str::from_utf8(&buf) else {
            run.records_in += 1;
            run.reject(&Reject {
                line: line_no,
                error: "invalid UTF-8 in the line (see --encoding)".into(),
                input: RejectInput::Raw(String::from_utf8_lossy(&buf).into_owned()),
                source: Some(name.to_owned()),
            })?;
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        let ascii = line.is_ascii();
        if !ascii {
            char_starts(line, &mut starts);
        }
        let value = |c: &Column| {
            let v = slice(line, &starts, ascii, c.start, c.end);
            if opts.trim {
                v.trim()
            } else {
                v
            }
        };
        let keys = match &keys {
            Some(k) => k,
            None if opts.no_header => keys.insert(Keys::new(&layout_names(opts, None))),
            None => {
                keys = Some(header_keys(opts, line, &starts, ascii));
                continue;
            }
        };
        run.records_in += 1;
        let problem = layout_problem(line, &starts, ascii, layout_end, (last_start, &last_name));
        if let Some(error) = problem {
            run.reject(&Reject {
                line: line_no,
                error,
                input: RejectInput::Raw(line.to_owned()),
                source: Some(name.to_owned()),
            })?;
            continue;
        }
        row += 1;
        run.progress.tick(buf.len() + 1);
        let cells = opts
            .columns
            .iter()
            .map(|c| Cell::Bytes(value(c).as_bytes()));
        em.row(keys, cells, &[], origin, row)
            .map_err(|e| Error::stdout(&e))?;
        run.records_out += 1;
    }
    Ok(())
}

/// Why a line does not fit the layout: it ends before the last column
/// starts, or holds text past the layout's end.
fn layout_problem(
    line: &str,
    starts: &[usize],
    ascii: bool,
    layout_end: usize,
    (last_start, last_name): (usize, &str),
) -> Option<String> {
    let chars = if ascii { line.len() } else { starts.len() - 1 };
    let beyond = slice(line, starts, ascii, layout_end, usize::MAX);
    if chars <= last_start {
        Some(format!(
            "line has {chars} characters; the layout's last column ({last_name}) starts at {}",
            last_start + 1
        ))
    } else if !beyond.trim().is_empty() {
        Some(format!(
            "line has {chars} characters, text past the layout's end (column {layout_end}): {:?} would be lost",
            beyond.trim()
        ))
    } else {
        None
    }
}

/// The keys from the header line (the layout's names win when it has them).
fn header_keys(opts: &Opts, line: &str, starts: &[usize], ascii: bool) -> Keys {
    let from_header: Vec<&str> = opts
        .columns
        .iter()
        .map(|c| slice(line, starts, ascii, c.start, c.end).trim())
        .collect();
    Keys::new(&header_names(
        layout_names(opts, Some(&from_header))
            .iter()
            .map(String::as_str),
        opts.normalize,
    ))
}

/// Column names: the layout's, else the header line's, else col_1..col_N.
fn layout_names(opts: &Opts, header: Option<&[&str]>) -> Vec<String> {
    if opts.columns.iter().all(|c| c.name.is_some()) {
        return opts.columns.iter().filter_map(|c| c.name.clone()).collect();
    }
    match header {
        Some(h) => h.iter().map(|s| (*s).to_owned()).collect(),
        None => numbered(opts.columns.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        let c = parse_columns("id:1-8, name:9-38,amount:39-50", "--columns").unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!((c[1].start, c[1].end), (8, 38));
        assert!(
            parse_columns("id:1-8,name:8-20", "--columns").is_err(),
            "overlap"
        );
        assert!(parse_columns("id:0-8", "--columns").is_err());
        assert!(parse_columns("id:5-4", "--columns").is_err());
        assert!(parse_columns("id:1-4,id:5-8", "--columns").is_err());
        assert!(parse_columns("id", "--columns").is_err());
        let w = parse_widths("8,30,12").unwrap();
        assert_eq!((w[2].start, w[2].end), (38, 50));
        assert!(parse_widths("8,0").is_err());
        // A file: one per line, comments.
        let f = parse_columns("# layout\nid:1-3\nname:4-10\n", "--columns-file").unwrap();
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn a_layout_is_inferred_only_when_confident() {
        let report = "ID      NAME            AMOUNT\n\
                      1       Jose Smith       12.50\n\
                      22      Ann               3.00\n\
                      333     Bob Lee         100.00\n\
                      4       Zoe               7.25\n";
        let cols = infer(report.as_bytes(), true).expect("a report with aligned columns");
        assert_eq!(layout_text(&cols), "col_1:1-8,col_2:9-24,col_3:25-30");
        // Prose: single spaces between words are not gutters.
        let prose = "the quick brown fox\njumps over the dog\nand runs away fast\nover the hills now\nand far away again\n";
        assert_eq!(infer(prose.as_bytes(), true), None);
        // Fewer than 5 lines: not confident.
        let short = "ID    NAME\n1     Ann\n2     Bob\n";
        assert_eq!(infer(short.as_bytes(), true), None);
        // A column mostly empty: not confident.
        let sparse = "A    B\n1\n2\n3\n4    x\n";
        assert_eq!(infer(sparse.as_bytes(), true), None);
        // Tabs: delimited, not fixed.
        assert_eq!(infer(b"a\tb\n1\t2\n3\t4\n5\t6\n7\t8\n", true), None);
    }

    #[test]
    fn characters_not_bytes() {
        let line = "1  José  12";
        let mut starts = Vec::new();
        char_starts(line, &mut starts);
        assert_eq!(slice(line, &starts, false, 3, 7), "José");
        assert_eq!(slice(line, &starts, false, 9, 11), "12");
        assert_eq!(slice(line, &starts, false, 9, 50), "12");
    }
}
