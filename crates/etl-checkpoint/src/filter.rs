//! `etl-checkpoint filter`: the streaming part.
//!
//! Records are passed through byte-exact (the raw input line, not a
//! re-serialisation). The pending watermark is the highest FIELD among the
//! records the writer has *delivered* to the OS: a record still in the
//! output buffer when the reader downstream goes away (`| head -1`) does not
//! count, so the state never advances past data that was not delivered. It is
//! written once, when the input ends, and only if the run did not fail.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::PathBuf;

use clap::Args;
use etl_core::reader::Item;
use etl_core::state::Entry;
use etl_core::{Error, RecordReader, RecordWriter, Reject, Result, Run};
use jiff::tz::TimeZone;

use crate::events;
use crate::watermark::{self, Kind, Mark, Overlap, Seen};
use crate::StateArgs;

pub(crate) const LONG_ABOUT: &str = "\
Pass the records whose FIELD is after the committed watermark of KEY (minus --overlap), \
and record the highest FIELD among the records delivered downstream as this run's pending \
value of KEY, tagged with the run id (ETL_RUN_ID). `etl-checkpoint commit` makes it the \
committed watermark once the whole pipeline has succeeded.

With no committed watermark every record passes (or those after --initial). Records are \
passed through unchanged, byte for byte. A record without FIELD, or whose FIELD is not of \
--type, is a reject (see --rejects, --max-rejects); --missing pass lets records without \
FIELD through instead. If stdout closes early (`| head`), the pending value covers only \
the records delivered before it closed. A failed run records nothing.

Comparison is by type: numbers exactly (decimal, never through floating point), \
timestamps by instant (RFC 3339; naive `YYYY-MM-DD HH:MM:SS[.fff]` needs --timezone; \
stored in UTC), strings bytewise.";

pub(crate) const EXAMPLES: &str = "\
Examples:
  printf '{\"id\":1}\\n{\"id\":2}\\n' | etl-checkpoint filter --state s.json --key k --field id --type number
  etl-checkpoint filter --state s.json --key orders --field updated_at --type timestamp \\
      --timezone Europe/Paris --overlap 15m --initial '2026-01-01 00:00:00' < orders.ndjson";

/// `--missing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Missing {
    /// A record without FIELD (or with null) is a reject.
    Reject,
    /// A record without FIELD passes and does not move the watermark.
    Pass,
}

/// `filter` arguments.
#[derive(Debug, Args)]
pub struct FilterArgs {
    #[command(flatten)]
    pub(crate) state: StateArgs,
    /// The watermark key in the state file (one per source/table).
    #[arg(long, value_name = "KEY")]
    pub key: String,
    /// The record field compared with the watermark (a top-level key).
    #[arg(long, value_name = "FIELD")]
    pub field: String,
    /// How FIELD compares.
    #[arg(
        long = "type",
        value_enum,
        value_name = "TYPE",
        default_value = "string"
    )]
    pub kind: Kind,
    /// Start this much before the watermark: a duration for timestamps (10m, 2h, 1d), an amount for numbers.
    #[arg(long, value_name = "DURATION|N")]
    pub overlap: Option<String>,
    /// The watermark to use when KEY has none committed (records must be after it).
    #[arg(long, value_name = "VALUE")]
    pub initial: Option<String>,
    /// What to do with a record that lacks FIELD or has it null.
    #[arg(long, value_enum, default_value = "reject")]
    pub missing: Missing,
    /// Time zone of naive timestamps (IANA name, e.g. Europe/Paris, or UTC).
    #[arg(long, value_name = "TZ", env = "ETL_TIMEZONE")]
    pub timezone: Option<String>,
    /// NDJSON input files (default: stdin; `-` is stdin).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Looks up `--timezone`.
pub(crate) fn time_zone(name: Option<&str>) -> Result<Option<TimeZone>> {
    name.map(|n| {
        TimeZone::get(n)
            .map_err(|e| Error::usage(format!("--timezone {n}: unknown time zone ({e})")))
    })
    .transpose()
}

/// The highest delivered value, tracked against what the writer delivered.
#[derive(Default)]
struct Highest {
    buffered: Option<Seen>,
    delivered: Option<Seen>,
}

fn max_into(slot: &mut Option<Seen>, s: Seen) {
    if slot.as_ref().is_none_or(|cur| s.mark > cur.mark) {
        *slot = Some(s);
    }
}

impl Highest {
    fn written(&mut self, s: Seen) {
        max_into(&mut self.buffered, s);
    }
    fn flushed(&mut self) {
        if let Some(s) = self.buffered.take() {
            max_into(&mut self.delivered, s);
        }
    }
}

enum End {
    Input,
    StdoutClosed,
}

struct Filter<'a> {
    args: &'a FilterArgs,
    tz: Option<TimeZone>,
    threshold: Option<Mark>,
    out: RecordWriter<io::Stdout>,
    highest: Highest,
    /// Records at or before the threshold: records_in = out + rejected + skipped.
    skipped: u64,
}

impl Filter<'_> {
    /// Streams one input; `Ok(End::StdoutClosed)` when downstream went away.
    fn stream<R: io::BufRead>(
        &mut self,
        reader: &mut RecordReader<R>,
        name: &str,
        run: &mut Run,
    ) -> Result<End> {
        loop {
            let item = reader.next_item().map_err(|e| {
                if name == "-" {
                    Error::stdin(&e)
                } else {
                    Error::input(std::path::Path::new(name), &e)
                }
            })?;
            let (line, rec) = match item {
                None => return Ok(End::Input),
                Some(Item::Reject(r)) => {
                    run.records_in += 1;
                    run.reject(&r)?;
                    continue;
                }
                Some(Item::Record(line, rec)) => (line, rec),
            };
            run.records_in += 1;
            run.progress.tick(reader.raw_line().len() + 1);
            let field = &self.args.field;
            let seen = match rec.get(field) {
                None | Some(etl_core::Value::Null) if self.args.missing == Missing::Pass => None,
                None => {
                    run.reject(&with_source(
                        Reject::record(line, format!("field {field}: missing"), rec),
                        name,
                    ))?;
                    continue;
                }
                Some(v) => match watermark::parse(self.args.kind, v, self.tz.as_ref()) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        run.reject(&with_source(
                            Reject::record(line, format!("field {field}: {e}"), rec),
                            name,
                        ))?;
                        continue;
                    }
                },
            };
            if let (Some(s), Some(t)) = (&seen, &self.threshold) {
                if s.mark <= *t {
                    self.skipped += 1;
                    continue;
                }
            }
            if let Err(e) = self.out.write_raw(reader.raw_line()) {
                return self.write_failed(&e);
            }
            run.records_out += 1;
            if let Some(s) = seen {
                self.highest.written(s);
            }
            if self.out.all_delivered() {
                self.highest.flushed();
            }
        }
    }

    fn write_failed(&self, e: &io::Error) -> Result<End> {
        if e.kind() == io::ErrorKind::BrokenPipe {
            events::downstream_closed(self.out.delivered());
            Ok(End::StdoutClosed)
        } else {
            Err(Error::stdout(e))
        }
    }
}

fn with_source(mut r: Reject, name: &str) -> Reject {
    if name != "-" {
        r.source = Some(name.to_owned());
    }
    r
}

/// Runs `filter`.
pub(crate) fn filter(a: &FilterArgs, run: &mut Run) -> Result<()> {
    let store = a.state.store()?;
    let tz = time_zone(a.timezone.as_deref())?;
    let overlap: Option<Overlap> = a
        .overlap
        .as_deref()
        .map(|o| watermark::parse_overlap(a.kind, o))
        .transpose()
        .map_err(Error::usage)?;
    let state = store.load()?;
    let committed = state.committed.get(&a.key);
    if let Some(stored) = committed.and_then(|e| e.kind.as_deref()) {
        if stored != a.kind.name() {
            return Err(Error::config(format!(
                "{}: watermark {} was recorded as {stored}, but --type is {}",
                store.path().display(),
                a.key,
                a.kind.name()
            )));
        }
    }
    let committed_seen = committed
        .map(|e| {
            watermark::parse(a.kind, &e.value, tz.as_ref()).map_err(|err| {
                Error::config(format!(
                    "{}: watermark {}: {err}",
                    store.path().display(),
                    a.key
                ))
            })
        })
        .transpose()?;
    let threshold = match (&committed_seen, &a.initial) {
        (Some(s), _) => Some(watermark::minus(&s.mark, overlap.as_ref()).map_err(Error::usage)?),
        (None, Some(init)) => {
            let v = if a.kind == Kind::Number {
                etl_core::Value::parse(init).unwrap_or_else(|_| init.as_str().into())
            } else {
                init.as_str().into()
            };
            Some(
                watermark::parse(a.kind, &v, tz.as_ref())
                    .map_err(|e| Error::usage(format!("--initial: {e}")))?
                    .mark,
            )
        }
        (None, None) => None,
    };
    events::filter_started(
        &a.key,
        committed.map(|e| &e.value),
        threshold.as_ref().map(watermark::display).as_deref(),
    );

    let mut f = Filter {
        args: a,
        tz,
        threshold,
        out: RecordWriter::stdout(),
        highest: Highest::default(),
        skipped: 0,
    };
    let result = stream_all(&mut f, a, run);
    run.set_count("skipped", f.skipped);
    // Whatever happened, hand over what was written: records before a
    // failure are still output (they were valid), and only delivered ones count.
    match result {
        Ok(End::Input) => match f.out.flush() {
            Ok(()) => f.highest.flushed(),
            Err(e) => {
                f.write_failed(&e)?;
            }
        },
        Ok(End::StdoutClosed) => {}
        Err(e) => {
            let _ = f.out.flush();
            return Err(e);
        }
    }
    record_pending(&store, a, run, committed_seen.as_ref(), f.highest.delivered)
}

fn stream_all(f: &mut Filter<'_>, a: &FilterArgs, run: &mut Run) -> Result<End> {
    let max = run.max_line_bytes;
    if a.files.is_empty() || a.files.iter().all(|p| p.as_os_str() == "-") {
        let mut r = RecordReader::new(io::stdin().lock(), max, None);
        return f.stream(&mut r, "-", run);
    }
    for path in &a.files {
        let end = if path.as_os_str() == "-" {
            f.stream(
                &mut RecordReader::new(io::stdin().lock(), max, None),
                "-",
                run,
            )?
        } else {
            let file = File::open(path).map_err(|e| Error::input(path, &e))?;
            let name = path.display().to_string();
            let mut r = RecordReader::new(
                BufReader::with_capacity(64 * 1024, file),
                max,
                Some(name.clone()),
            );
            f.stream(&mut r, &name, run)?
        };
        if let End::StdoutClosed = end {
            return Ok(end);
        }
    }
    Ok(End::Input)
}

fn record_pending(
    store: &etl_core::state::StateFile,
    a: &FilterArgs,
    run: &mut Run,
    committed: Option<&Seen>,
    delivered: Option<Seen>,
) -> Result<()> {
    let Some(best) = delivered.filter(|d| committed.is_none_or(|c| d.mark > c.mark)) else {
        events::nothing_new(&a.key);
        return Ok(());
    };
    let run_id = run.run_id().to_owned();
    let kind = a.kind;
    let written = store.update(|st| {
        // The same run may filter the same key twice (two inputs): keep the higher.
        if let Some(prev) = st.pending.get(&run_id).and_then(|p| p.values.get(&a.key)) {
            if let Ok(p) = watermark::parse(kind, &prev.value, None) {
                if p.mark >= best.mark {
                    return Ok((prev.value.clone(), false));
                }
            }
        }
        st.set_pending(
            &run_id,
            &a.key,
            Entry::new(best.value.clone(), Some(kind.name()), Some(&run_id)),
        );
        Ok((best.value.clone(), true))
    })?;
    events::pending_recorded(&a.key, &written, &run_id);
    run.set_count("pending", written);
    Ok(())
}
