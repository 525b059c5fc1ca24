//! The first pass: every record is checked and copied to an unlinked
//! temporary file, so that nothing is written to the sheet before the whole
//! input is known to be valid and to fit Google's limits (and memory holds
//! one line, not the input).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};

use etl_core::reader::Item;
use etl_core::{Error, Record, RecordReader, Reject, Result, Run};

use crate::cells::{key_of, Convert};

/// Which columns the run writes, as known from the input alone.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    /// Every key, in first-seen order (or `--columns`).
    pub names: Vec<String>,
    /// The line where each key was first seen (0 for `--columns`).
    pub first_line: Vec<u64>,
    /// How many keys the first record had.
    pub first_record: usize,
}

/// The spooled input.
#[derive(Debug)]
pub struct Spool {
    file: File,
    pub records: u64,
    pub columns: Columns,
    /// Records whose values would go as text although they are numbers.
    pub numbers_as_text: u64,
    /// `--key` tuple → line of its last record (upsert only).
    pub keys: HashMap<Vec<String>, u64>,
    pub duplicate_keys: u64,
}

/// How the first pass reads the input.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    pub fixed: Option<&'a [String]>,
    pub convert: Convert,
    pub key: &'a [String],
}

/// Reads stdin to the end: rejects go to the run, valid records to the spool.
pub fn spool(input: impl BufRead, opts: &Options<'_>, run: &mut Run) -> Result<Spool> {
    let tmp = tempfile::tempfile().map_err(|e| {
        Error::new(
            etl_core::Exit::CantCreate,
            format!("cannot create a temporary spool file: {e}"),
        )
    })?;
    let mut out = BufWriter::new(
        tmp.try_clone()
            .map_err(|e| Error::internal(e.to_string()))?,
    );
    let mut reader = RecordReader::new(input, run.max_line_bytes, None);
    let mut columns = Columns::default();
    if let Some(f) = opts.fixed {
        columns.names = f.to_vec();
        columns.first_line = vec![0; f.len()];
        columns.first_record = f.len();
    }
    let mut index: HashMap<String, usize> = columns
        .names
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), i))
        .collect();
    let mut s = Spool {
        file: tmp,
        records: 0,
        columns,
        numbers_as_text: 0,
        keys: HashMap::new(),
        duplicate_keys: 0,
    };
    let write_err =
        |e: std::io::Error| Error::new(etl_core::Exit::IoErr, format!("spool file: {e}"));
    loop {
        let item = reader.next_item().map_err(|e| Error::stdin(&e))?;
        let (line, rec) = match item {
            None => break,
            Some(Item::Reject(r)) => {
                run.reject(&r)?;
                continue;
            }
            Some(Item::Record(line, rec)) => (line, rec),
        };
        run.records_in += 1;
        if let Some(reason) = check(&rec, opts) {
            run.reject(&Reject::record(line, reason, rec))?;
            continue;
        }
        if opts.fixed.is_none() {
            for k in rec.keys() {
                if !index.contains_key(k) {
                    index.insert(k.clone(), s.columns.names.len());
                    s.columns.names.push(k.clone());
                    s.columns.first_line.push(line);
                }
            }
            if s.records == 0 {
                s.columns.first_record = rec.len();
            }
        }
        if !opts.key.is_empty() {
            let key: Vec<String> = opts.key.iter().map(|k| key_of(&rec[k.as_str()])).collect();
            if s.keys.insert(key, line).is_some() {
                s.duplicate_keys += 1;
            }
        }
        if rec.values().any(Convert::number_as_text) {
            s.numbers_as_text += 1;
        }
        writeln!(out, "{line}\t{}", reader.raw_text()).map_err(write_err)?;
        s.records += 1;
    }
    out.flush().map_err(write_err)?;
    drop(out);
    Ok(s)
}

/// Why a record cannot be written, naming the field.
fn check(rec: &Record, opts: &Options<'_>) -> Option<String> {
    for k in opts.key {
        match rec.get(k.as_str()) {
            None => return Some(format!("key field {k:?} is missing")),
            Some(v) if v.is_null() => return Some(format!("key field {k:?} is null")),
            Some(etl_core::Value::String(s)) if s.is_empty() => {
                return Some(format!("key field {k:?} is empty"))
            }
            _ => {}
        }
    }
    for (k, v) in rec {
        if opts.fixed.is_some_and(|f| !f.iter().any(|c| c == k)) {
            continue;
        }
        if let Err(e) = opts.convert.cell(v) {
            return Some(format!("field {k:?}: {e}"));
        }
    }
    None
}

impl Spool {
    /// Reads the spooled records back, in input order, with their lines.
    pub fn records(&self) -> Result<impl Iterator<Item = Result<(u64, Record)>> + '_> {
        (&self.file)
            .seek(SeekFrom::Start(0))
            .map_err(|e| Error::new(etl_core::Exit::IoErr, format!("spool file: {e}")))?;
        let reader = BufReader::new(&self.file);
        Ok(reader.lines().map(|l| {
            let l = l.map_err(|e| Error::new(etl_core::Exit::IoErr, format!("spool file: {e}")))?;
            let (line, text) = l.split_once('\t').unwrap_or(("0", &l));
            let rec = etl_core::record::parse_record(text)
                .map_err(|e| Error::internal(format!("spool: {}", e.0)))?;
            Ok((line.parse().unwrap_or(0), rec))
        }))
    }

    /// True when `line` holds the last record of its key (upsert: the last
    /// record for a key wins).
    pub fn is_last_for_key(&self, key: &[String], line: u64) -> bool {
        self.keys.get(key).is_none_or(|l| *l == line)
    }
}
