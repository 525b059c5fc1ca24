//! The first pass: every record is checked and copied to an unlinked
//! temporary file, so that nothing is written to the sheet before the whole
//! input is known to be valid and to fit Google's limits (and memory holds
//! one line, not the input).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};

use etl_core::record::parse_fields;
use etl_core::{Error, Record, RecordReader, Reject, Result, Run, Value};
use serde_json::value::RawValue;

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
    let write_err = |e: std::io::Error| spool_err(&e);
    // The field names of the last record taken whole, if it had no key
    // twice: a record with the same names in the same order (an export's
    // every record) is checked from its raw fields, without being built.
    let mut last_names: Vec<String> = Vec::new();
    let mut last_unique = false;
    while let Some(next) = reader.next_raw().map_err(|e| Error::stdin(&e))? {
        let line = match next {
            Ok(line) => line,
            Err(r) => {
                run.reject(&r)?;
                continue;
            }
        };
        let text = reader.raw_text();
        let fields = match parse_fields(text) {
            Ok(f) => f,
            Err(e) => {
                run.reject(&reader.reject_raw(e))?;
                continue;
            }
        };
        let same = last_unique
            && fields.len() == last_names.len()
            && fields.iter().zip(&last_names).all(|((k, _), n)| k == n);
        if same && surely_valid(&fields, opts) {
            run.records_in += 1;
            s.take_fields(&fields, opts, line);
        } else {
            // Nested values and escapes are etl-core's to read (its depth
            // limit, its surrogate checks): the line is a reject if they fail.
            let rec = match etl_core::record::parse_record(text) {
                Ok(rec) => rec,
                Err(e) => {
                    run.reject(&reader.reject_raw(e.0))?;
                    continue;
                }
            };
            run.records_in += 1;
            if let Some(reason) = check(&rec, opts) {
                run.reject(&Reject::record(line, reason, rec))?;
                continue;
            }
            if opts.fixed.is_none() {
                s.learn_columns(&mut index, &rec, line);
            }
            if !opts.key.is_empty() {
                s.keyed(
                    opts.key.iter().map(|k| key_of(&rec[k.as_str()])).collect(),
                    line,
                );
            }
            if rec.values().any(Convert::number_as_text) {
                s.numbers_as_text += 1;
            }
            last_names.clear();
            last_names.extend(rec.keys().cloned());
            last_unique = rec.len() == fields.len();
        }
        writeln!(out, "{line}\t{text}").map_err(write_err)?;
        s.records += 1;
    }
    out.flush().map_err(write_err)?;
    drop(out);
    Ok(s)
}

/// Whether [`check`] surely passes a record with these fields (no key
/// twice): its key fields are there, neither null nor empty, and every
/// value surely fits a cell. Any doubt goes to [`check`], on the record.
fn surely_valid(fields: &[(Cow<'_, str>, &RawValue)], opts: &Options<'_>) -> bool {
    opts.key.iter().all(|k| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .is_some_and(|(_, v)| !matches!(v.get(), "null" | "\"\""))
    }) && fields.iter().all(|(_, v)| Convert::surely_fits(v.get()))
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
        if let Err(e) = opts.convert.check(v) {
            return Some(format!("field {k:?}: {e}"));
        }
    }
    None
}

impl Spool {
    /// Counts a record taken from its raw fields (see [`surely_valid`]): its
    /// key and whether a number of it goes as text.
    fn take_fields(&mut self, fields: &[(Cow<'_, str>, &RawValue)], opts: &Options<'_>, line: u64) {
        if !opts.key.is_empty() {
            let key: Vec<String> = opts
                .key
                .iter()
                .map(|k| {
                    let raw = fields.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
                    raw.and_then(|r| Value::from_raw(r).ok())
                        .map_or_else(String::new, |v| key_of(&v))
                })
                .collect();
            self.keyed(key, line);
        }
        if fields
            .iter()
            .any(|(_, v)| Convert::raw_number_as_text(v.get()))
        {
            self.numbers_as_text += 1;
        }
    }

    /// Counts the record's `key` (upsert), a duplicate if seen before.
    fn keyed(&mut self, key: Vec<String>, line: u64) {
        if self.keys.insert(key, line).is_some() {
            self.duplicate_keys += 1;
        }
    }

    /// Adds the keys of `rec` no record had, in first-seen order.
    fn learn_columns(&mut self, index: &mut HashMap<String, usize>, rec: &Record, line: u64) {
        for k in rec.keys() {
            if !index.contains_key(k) {
                index.insert(k.clone(), self.columns.names.len());
                self.columns.names.push(k.clone());
                self.columns.first_line.push(line);
            }
        }
        if self.records == 0 {
            self.columns.first_record = rec.len();
        }
    }

    /// Reads the spooled records back, in input order, with their lines.
    pub fn records(&self) -> Result<impl Iterator<Item = Result<(u64, Record)>> + '_> {
        rewound(&self.file).map(read_back)
    }

    /// The same as [`Spool::records`], for another thread: a handle of the
    /// spool file, rewound (it shares the position: nothing else may read
    /// the spool until the records are read).
    pub fn records_owned(&self) -> Result<impl Iterator<Item = Result<(u64, Record)>> + Send> {
        let file = self.file.try_clone().map_err(|e| spool_err(&e))?;
        rewound(&file)?;
        Ok(read_back(file))
    }

    /// True when `line` holds the last record of its key (upsert: the last
    /// record for a key wins).
    pub fn is_last_for_key(&self, key: &[String], line: u64) -> bool {
        self.keys.get(key).is_none_or(|l| *l == line)
    }
}

fn spool_err(e: &std::io::Error) -> Error {
    Error::new(etl_core::Exit::IoErr, format!("spool file: {e}"))
}

fn rewound<F: Seek>(mut file: F) -> Result<F> {
    file.seek(SeekFrom::Start(0)).map_err(|e| spool_err(&e))?;
    Ok(file)
}

/// The spooled lines (`LINE<TAB>JSON`) as records.
fn read_back(file: impl std::io::Read) -> impl Iterator<Item = Result<(u64, Record)>> {
    BufReader::new(file).lines().map(|l| {
        let l = l.map_err(|e| spool_err(&e))?;
        let (line, text) = l.split_once('\t').unwrap_or(("0", &l));
        let rec = etl_core::record::parse_record(text)
            .map_err(|e| Error::internal(format!("spool: {}", e.0)))?;
        Ok((line.parse().unwrap_or(0), rec))
    })
}
