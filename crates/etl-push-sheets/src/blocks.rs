//! The rows of a values write, encoded on a thread of their own: while one
//! request is on the wire (and Google works on it), the next body is being
//! read from the spool and encoded, so the run's own work and the server's
//! overlap instead of taking turns.

use serde_json::Value as J;
use tokio::sync::mpsc;

use etl_core::{Error, Record, Result};

use crate::api::Encoded;
use crate::cells::{CellHash, Convert};

/// What the encoder hands over.
#[derive(Debug)]
pub enum Msg {
    Block(Encoded),
    /// The spool could not be read back.
    Failed(Error),
    /// Every row was handed over (without it, a closed channel means the
    /// encoder died: an error, never a short write).
    Done,
}

/// How the rows are encoded.
#[derive(Debug, Clone)]
pub struct Plan {
    pub cols: Vec<String>,
    pub convert: Convert,
    /// The header row first (`--no-header` unset).
    pub header: bool,
    /// `--max-request-bytes`.
    pub max_bytes: u64,
}

/// One row for `rec` in `cols` order (validated in the first pass): a field
/// the record lacks is an empty cell.
pub fn row_of(convert: Convert, rec: &Record, cols: &[String]) -> Vec<J> {
    cols.iter()
        .map(|c| match rec.get(c.as_str()) {
            Some(v) => convert.cell(v).unwrap_or_else(|_| J::String(String::new())),
            None => J::String(String::new()),
        })
        .collect()
}

pub fn header_row(cols: &[String]) -> Vec<J> {
    cols.iter().map(|c| J::String(c.clone())).collect()
}

/// Rows collected up to the request size limit, as the body's bytes.
#[derive(Debug)]
pub struct Builder {
    body: Vec<u8>,
    rows: u64,
    cells: u64,
    /// The rows' bytes (each with its comma) against `budget`.
    bytes: u64,
    budget: u64,
    row: Vec<u8>,
}

impl Builder {
    pub fn new(max_bytes: u64) -> Self {
        Builder {
            body: Vec::new(),
            rows: 0,
            cells: 0,
            bytes: 0,
            // Room for the envelope (`{"values":[...]}`, range, options).
            budget: max_bytes.saturating_sub(512).max(1),
            row: Vec::new(),
        }
    }

    /// Adds `row`; returns the block to send first when it would not fit.
    pub fn push(&mut self, row: &[J]) -> Option<Encoded> {
        self.row.clear();
        // Writing JSON values to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.row, row);
        let size = self.row.len() as u64 + 1;
        let full = (self.rows > 0 && self.bytes + size > self.budget)
            .then(|| self.take())
            .flatten();
        self.body.extend_from_slice(if self.rows == 0 {
            b"{\"values\":["
        } else {
            b","
        });
        self.body.extend_from_slice(&self.row);
        self.bytes += size;
        self.rows += 1;
        self.cells += row.len() as u64;
        full
    }

    /// The rows collected so far as a block, if any.
    pub fn take(&mut self) -> Option<Encoded> {
        if self.rows == 0 {
            return None;
        }
        let mut body = std::mem::take(&mut self.body);
        body.extend_from_slice(b"]}");
        let block = Encoded {
            body,
            rows: self.rows,
            cells: self.cells,
        };
        (self.rows, self.cells, self.bytes) = (0, 0, 0);
        Some(block)
    }
}

/// `rows` as one block, whatever their size (a header row).
pub fn encode(rows: &[Vec<J>]) -> Encoded {
    let mut b = Builder::new(u64::MAX);
    for r in rows {
        let _ = b.push(r);
    }
    b.take().unwrap_or(Encoded {
        body: b"{\"values\":[]}".to_vec(),
        rows: 0,
        cells: 0,
    })
}

/// Starts `work` on a thread of its own, handing its messages over a
/// channel of one (it stops when `send` says the receiver is gone).
fn start<M: Send + 'static>(
    name: &str,
    work: impl FnOnce(&dyn Fn(M) -> bool) + Send + 'static,
) -> Result<mpsc::Receiver<M>> {
    let (tx, rx) = mpsc::channel(1);
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || work(&|m: M| tx.blocking_send(m).is_ok()))
        .map_err(|e| Error::internal(format!("cannot start the {name} thread: {e}")))?;
    Ok(rx)
}

/// Starts the encoder: the blocks of `records` (and the header) arrive on
/// the channel in order, one at a time (memory holds the block on the
/// wire, one waiting and one being built). It stops when the receiver is
/// dropped.
pub fn spawn(
    records: impl Iterator<Item = Result<(u64, Record)>> + Send + 'static,
    plan: Plan,
) -> Result<mpsc::Receiver<Msg>> {
    start("encode", move |send| {
        let mut b = Builder::new(plan.max_bytes);
        if plan.header {
            // The first row never fills a block.
            let _ = b.push(&header_row(&plan.cols));
        }
        for item in records {
            match item {
                Ok((_, rec)) => {
                    if let Some(full) = b.push(&row_of(plan.convert, &rec, &plan.cols)) {
                        if !send(Msg::Block(full)) {
                            return;
                        }
                    }
                }
                Err(e) => {
                    send(Msg::Failed(e));
                    return;
                }
            }
        }
        if let Some(last) = b.take() {
            if !send(Msg::Block(last)) {
                return;
            }
        }
        send(Msg::Done);
    })
}

/// What the hasher hands over (see [`spawn_hashes`]).
#[derive(Debug)]
pub enum Hashes {
    /// The next rows' cells as the comparison sees them.
    Rows(Vec<Vec<CellHash>>),
    /// A record holds a formula (`=...`) under `--allow-formulas`: its text
    /// cannot tell it from a text cell that reads the same, so it is written.
    Formula,
    Failed(Error),
    Done,
}

/// Rows per [`Hashes::Rows`] message.
const HASH_ROWS: usize = 4096;

/// Starts the hasher: the cells of `records` as [`CellHash`]es, in order,
/// for comparing the input with the sheet while the sheet is being read.
pub fn spawn_hashes(
    records: impl Iterator<Item = Result<(u64, Record)>> + Send + 'static,
    cols: Vec<String>,
    convert: Convert,
    allow_formulas: bool,
) -> Result<mpsc::Receiver<Hashes>> {
    start("hash", move |send| {
        let mut rows = Vec::with_capacity(HASH_ROWS);
        for item in records {
            let rec = match item {
                Ok((_, rec)) => rec,
                Err(e) => {
                    send(Hashes::Failed(e));
                    return;
                }
            };
            if allow_formulas
                && rec
                    .values()
                    .any(|v| v.as_str().is_some_and(|s| s.starts_with('=')))
            {
                send(Hashes::Formula);
                return;
            }
            let cells = row_of(convert, &rec, &cols);
            rows.push(
                cols.iter()
                    .zip(&cells)
                    .map(|(c, cell)| {
                        CellHash::input(
                            rec.get(c.as_str()).unwrap_or(&etl_core::Value::Null),
                            cell,
                            convert.user_entered,
                        )
                    })
                    .collect(),
            );
            if rows.len() == HASH_ROWS && !send(Hashes::Rows(std::mem::take(&mut rows))) {
                return;
            }
        }
        if !rows.is_empty() && !send(Hashes::Rows(rows)) {
            return;
        }
        send(Hashes::Done);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows_of(b: &Encoded) -> Vec<Vec<J>> {
        let v: J = serde_json::from_slice(&b.body).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1, "only values");
        serde_json::from_value(v["values"].clone()).unwrap()
    }

    #[test]
    fn blocks_hold_every_row_once_in_order_within_the_budget() {
        let rows: Vec<Vec<J>> = (0..1000)
            .map(|i| {
                vec![
                    json!(format!("row {i} \"quoted\" é")),
                    json!(i),
                    json!(i % 2 == 0),
                ]
            })
            .collect();
        let max = 4096;
        let mut b = Builder::new(max);
        let mut blocks = Vec::new();
        for r in &rows {
            blocks.extend(b.push(r));
        }
        blocks.extend(b.take());
        assert!(b.take().is_none(), "nothing left");
        assert!(blocks.len() >= 5, "{} blocks", blocks.len());
        let mut back = Vec::new();
        for blk in &blocks {
            assert!(blk.body.len() as u64 <= max, "{} bytes", blk.body.len());
            let got = rows_of(blk);
            assert_eq!(got.len() as u64, blk.rows);
            assert_eq!(blk.cells, blk.rows * 3);
            back.extend(got);
        }
        assert_eq!(back, rows);
    }

    #[test]
    fn a_row_over_the_budget_goes_alone() {
        let mut b = Builder::new(600);
        let small = vec![json!("a")];
        let big = vec![json!("x".repeat(2000))];
        assert!(b.push(&small).is_none());
        let first = b.push(&big).expect("the small row goes first");
        assert_eq!(rows_of(&first), vec![small.clone()]);
        let second = b.push(&small).expect("the big row goes alone");
        assert_eq!(rows_of(&second), vec![big]);
        assert_eq!(rows_of(&b.take().unwrap()), vec![small]);
    }
}
