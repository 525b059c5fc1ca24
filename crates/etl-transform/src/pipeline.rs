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

use etl_core::reader::RejectInput;
use etl_core::record::parse_record;
use etl_core::{Error, Record, RecordReader, RecordWriter, Reject, Result, Run, Value};

use crate::events;
use crate::fast::Fast;
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
    /// `--schema`, when given.
    schema: Option<Checks>,
    ctx: Ctx<'t>,
    filtered_out: u64,
    /// The flat-record path (see `fast`); None runs every line through maps.
    fast: Option<Fast>,
}

/// `--schema`: the schema, what to do on drift, and what it has seen.
#[derive(Debug)]
struct Checks {
    schema: Schema,
    on_drift: OnDrift,
    drifts: HashSet<Drift>,
    rejected: u64,
}

enum Fate {
    Out,
    Filtered,
    Rejected(String),
}

impl Checks {
    /// The schema's drift and type checks of a transformed record.
    fn check(&mut self, rec: &Record, line: u64) -> Result<Fate> {
        let schema = &self.schema;
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
            self.rejected += 1;
            return Ok(Fate::Rejected(m));
        }
        Ok(Fate::Out)
    }
}

/// Counts step `i`'s outcome; the record's fate when it ends there.
fn tally(c: &mut Counts, filtered_out: &mut u64, i: usize, name: &str, o: Outcome) -> Option<Fate> {
    c.records_in += 1;
    match o {
        Outcome::Keep => {
            c.records_out += 1;
            None
        }
        Outcome::Filtered => {
            c.filtered_out += 1;
            *filtered_out += 1;
            Some(Fate::Filtered)
        }
        Outcome::Reject(m) => {
            c.rejected += 1;
            Some(Fate::Rejected(format!("step {} ({name}): {m}", i + 1)))
        }
    }
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
            schema: schema.map(|schema| Checks {
                schema,
                on_drift,
                drifts: HashSet::new(),
                rejected: 0,
            }),
            ctx,
            filtered_out: 0,
            fast: Some(Fast::default()),
        }
    }

    /// Every record takes the general path (`ETL_TRANSFORM_NO_FAST_PATH=1`,
    /// the differential tests' hook).
    pub fn general_only(&mut self) {
        self.fast = None;
    }

    fn process(&mut self, rec: &mut Record, line: u64) -> Result<Fate> {
        for i in 0..self.steps.len() {
            let o = self.steps[i].step.apply(rec, &self.ctx);
            let name = self.steps[i].name;
            if let Some(f) = tally(&mut self.counts[i], &mut self.filtered_out, i, name, o) {
                return Ok(f);
            }
        }
        match &mut self.schema {
            Some(checks) => checks.check(rec, line),
            None => Ok(Fate::Out),
        }
    }

    /// [`Self::process`] on the fast path, writing the record when its
    /// fate is `Out`; None when the fast path does not take the line.
    fn process_fast(
        &mut self,
        text: &str,
        line: u64,
        out: &mut RecordWriter<io::Stdout>,
    ) -> Result<Option<Fate>> {
        let Some(fast) = self.fast.as_mut() else {
            return Ok(None);
        };
        if !fast.load(text, &self.steps) {
            return Ok(None);
        }
        for i in 0..self.steps.len() {
            let o = fast.apply(i, &mut self.steps[i].step, &self.ctx, text);
            let name = self.steps[i].name;
            if let Some(f) = tally(&mut self.counts[i], &mut self.filtered_out, i, name, o) {
                return Ok(Some(f));
            }
        }
        if let Some(checks) = &mut self.schema {
            let fate = checks.check(&fast.record(text), line)?;
            if !matches!(fate, Fate::Out) {
                return Ok(Some(fate));
            }
        }
        out.write_with(|buf| fast.write(buf, text))
            .map_err(|e| Error::stdout(&e))?;
        Ok(Some(Fate::Out))
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
            let item = reader.next_raw().map_err(|e| match path {
                Some(p) => Error::input(p, &e),
                None => Error::stdin(&e),
            })?;
            let line = match item {
                None => return Ok(()),
                Some(Err(r)) => {
                    run.records_in += 1;
                    run.reject(&r)?;
                    continue;
                }
                Some(Ok(line)) => line,
            };
            run.records_in += 1;
            let text = reader.raw_text();
            let (fate, rec) = match self.process_fast(text, line, out)? {
                Some(fate) => (fate, None),
                None => match parse_record(text) {
                    Ok(mut rec) => (self.process(&mut rec, line)?, Some(rec)),
                    Err(e) => {
                        run.reject(&reader.reject_raw(e.0))?;
                        continue;
                    }
                },
            };
            run.progress.tick(text.len() + 1);
            match fate {
                Fate::Out => {
                    // (The fast path has written its records itself.)
                    if let Some(rec) = &rec {
                        out.write(rec).map_err(|e| Error::stdout(&e))?;
                    }
                    run.records_out += 1;
                }
                Fate::Filtered => {}
                Fate::Rejected(error) => {
                    // The line as it came in; it parsed before, so this
                    // falls back to the half-transformed record only in
                    // theory.
                    let input = match parse_record(text) {
                        Ok(original) => RejectInput::Record(original),
                        Err(_) => match rec {
                            Some(rec) => RejectInput::Record(rec),
                            None => RejectInput::Raw(text.to_owned()),
                        },
                    };
                    run.reject(&Reject {
                        line,
                        error,
                        input,
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
        if let Some(checks) = &self.schema {
            run.set_count("schema_rejected", checks.rejected);
        }
    }
}
