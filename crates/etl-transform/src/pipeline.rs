//! The streaming loop: read a record, run it through the compiled steps,
//! check it against the schema, write it.
//!
//! One record at a time, in place, so memory stays flat whatever the input
//! size (only `unique` keeps state). A record that a step rejects is
//! reported with the *original* input line re-read from the reader's
//! buffer, not the half-transformed record, so the rejects file holds what
//! came in and can be fixed and replayed.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use etl_core::reader::{Item, RejectInput};
use etl_core::record::parse_record;
use etl_core::{Error, Record, RecordReader, RecordWriter, Reject, Result, Run, Value};

use crate::events;
use crate::schema::{Drift, Schema};
use crate::steps::{Ctx, Outcome, Step};
use crate::OnDrift;

/// How many distinct drifts `--on-drift warn` remembers (and warns about).
const MAX_DRIFT_WARNINGS: usize = 100;

/// Counts of one step, for the summary.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    records_in: u64,
    records_out: u64,
    filtered_out: u64,
    rejected: u64,
}

/// A compiled step with its label.
#[derive(Debug)]
pub struct Planned {
    /// The step.
    pub step: Step,
    /// Its name (`rename`).
    pub name: &'static str,
    /// Its argument as given.
    pub arg: String,
}

/// The whole transform of one run.
#[derive(Debug)]
pub struct Pipeline<'t> {
    steps: Vec<Planned>,
    counts: Vec<Counts>,
    schema: Option<Schema>,
    on_drift: OnDrift,
    drifts: HashSet<Drift>,
    ctx: Ctx<'t>,
    filtered_out: u64,
    schema_rejected: u64,
}

enum Fate {
    Out,
    Filtered,
    Rejected(String),
}

impl<'t> Pipeline<'t> {
    /// A pipeline of compiled steps.
    pub fn new(
        steps: Vec<Planned>,
        schema: Option<Schema>,
        on_drift: OnDrift,
        ctx: Ctx<'t>,
    ) -> Self {
        let counts = vec![Counts::default(); steps.len()];
        Self {
            steps,
            counts,
            schema,
            on_drift,
            drifts: HashSet::new(),
            ctx,
            filtered_out: 0,
            schema_rejected: 0,
        }
    }

    fn process(&mut self, rec: &mut Record, line: u64) -> Result<Fate> {
        for (i, p) in self.steps.iter_mut().enumerate() {
            let c = &mut self.counts[i];
            c.records_in += 1;
            match p.step.apply(rec, &self.ctx) {
                Outcome::Keep => c.records_out += 1,
                Outcome::Filtered => {
                    c.filtered_out += 1;
                    self.filtered_out += 1;
                    return Ok(Fate::Filtered);
                }
                Outcome::Reject(m) => {
                    c.rejected += 1;
                    return Ok(Fate::Rejected(format!("step {} ({}): {m}", i + 1, p.name)));
                }
            }
        }
        if let Some(schema) = &self.schema {
            if self.on_drift != OnDrift::Ignore {
                if let Some(d) = schema.drift(rec) {
                    if self.on_drift == OnDrift::Fail {
                        return Err(Error::data(format!(
                            "schema drift at line {line} against {}: {} \
                             (pass --on-drift warn or ignore to let it through)",
                            schema.path,
                            d.describe()
                        )));
                    }
                    if self.drifts.len() < MAX_DRIFT_WARNINGS && !self.drifts.contains(&d) {
                        events::drift(line, &schema.path, &d.describe());
                        self.drifts.insert(d);
                        if self.drifts.len() == MAX_DRIFT_WARNINGS {
                            events::drift_warnings_capped(MAX_DRIFT_WARNINGS);
                        }
                    }
                }
            }
            if let Err(m) = schema.check(rec) {
                self.schema_rejected += 1;
                return Ok(Fate::Rejected(m));
            }
        }
        Ok(Fate::Out)
    }

    /// Streams every input (stdin when `files` is empty or `-`).
    pub fn run(&mut self, files: &[PathBuf], run: &mut Run) -> Result<()> {
        let mut out = RecordWriter::stdout();
        let r = self.run_all(files, &mut out, run);
        // Records written before a failure were valid: hand them over.
        let flushed = out.flush().map_err(|e| Error::stdout(&e));
        self.summary(run);
        r.and(flushed)
    }

    fn run_all(
        &mut self,
        files: &[PathBuf],
        out: &mut RecordWriter<io::Stdout>,
        run: &mut Run,
    ) -> Result<()> {
        let max = run.max_line_bytes;
        if files.is_empty() {
            let mut r = RecordReader::new(io::stdin().lock(), max, None);
            return self.stream(&mut r, None, out, run);
        }
        for path in files {
            if path.as_os_str() == "-" {
                let mut r = RecordReader::new(io::stdin().lock(), max, None);
                self.stream(&mut r, None, out, run)?;
            } else {
                let f = File::open(path).map_err(|e| Error::input(path, &e))?;
                let name = path.display().to_string();
                let mut r =
                    RecordReader::new(BufReader::with_capacity(64 * 1024, f), max, Some(name));
                self.stream(&mut r, Some(path), out, run)?;
            }
        }
        Ok(())
    }

    fn stream<R: BufRead>(
        &mut self,
        reader: &mut RecordReader<R>,
        path: Option<&Path>,
        out: &mut RecordWriter<io::Stdout>,
        run: &mut Run,
    ) -> Result<()> {
        loop {
            let item = reader.next_item().map_err(|e| match path {
                Some(p) => Error::input(p, &e),
                None => Error::stdin(&e),
            })?;
            let (line, mut rec) = match item {
                None => return Ok(()),
                Some(Item::Reject(r)) => {
                    run.records_in += 1;
                    run.reject(&r)?;
                    continue;
                }
                Some(Item::Record(line, rec)) => (line, rec),
            };
            run.records_in += 1;
            run.progress.tick(reader.raw_line().len() + 1);
            match self.process(&mut rec, line)? {
                Fate::Out => {
                    out.write(&rec).map_err(|e| Error::stdout(&e))?;
                    run.records_out += 1;
                }
                Fate::Filtered => {}
                Fate::Rejected(error) => {
                    let original = std::str::from_utf8(reader.raw_line())
                        .ok()
                        .and_then(|t| parse_record(t).ok())
                        .unwrap_or(rec);
                    run.reject(&Reject {
                        line,
                        error,
                        input: RejectInput::Record(original),
                        source: path.map(|p| p.display().to_string()),
                    })?;
                }
            }
        }
    }

    /// Puts the per-step counts into the run summary.
    fn summary(&self, run: &mut Run) {
        run.set_count("filtered_out", self.filtered_out);
        let mut steps = Vec::with_capacity(self.steps.len());
        for (i, (p, c)) in self.steps.iter().zip(&self.counts).enumerate() {
            let mut m = etl_core::map_with_capacity(7);
            m.insert("step".into(), Value::from((i + 1) as u64));
            m.insert("name".into(), Value::from(p.name));
            m.insert("arg".into(), Value::from(p.arg.as_str()));
            m.insert("records_in".into(), Value::from(c.records_in));
            m.insert("records_out".into(), Value::from(c.records_out));
            m.insert("filtered_out".into(), Value::from(c.filtered_out));
            m.insert("rejected".into(), Value::from(c.rejected));
            steps.push(Value::Object(m));
            if let Step::Unique(_, seen) = &p.step {
                events::unique_keys(i + 1, seen.len());
            }
        }
        run.set_count("steps", Value::Array(steps));
        if self.schema.is_some() {
            run.set_count("schema_rejected", self.schema_rejected);
        }
    }
}
