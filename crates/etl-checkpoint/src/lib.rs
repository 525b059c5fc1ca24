//! etl-checkpoint: two-phase watermarks for incremental pipelines.
//!
//! `filter` passes the records past a committed watermark and records the
//! highest value it delivered as this run's *pending* watermark; `commit`
//! promotes a run's pending values once the whole pipeline has succeeded;
//! `discard` drops them. The other subcommands inspect and repair the state
//! file. The state format, locking and atomic writes live in
//! `etl_core::state`, shared with etl-fetch-mail.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use etl_core::state::{Entry, StateFile};
use etl_core::{CommonArgs, Error, Result, Run, Value};

mod events;
mod filter;
pub mod watermark;

use watermark::Kind;

const ABOUT: &str =
    "Two-phase watermarks: pass only new records, commit after the pipeline succeeded";

const LONG_ABOUT: &str = "\
Two-phase watermarks for incremental pipelines.

`filter` passes the records whose FIELD is past the committed watermark of KEY and \
records the highest value it delivered as this run's pending watermark. Nothing is \
committed until `etl-checkpoint commit` runs after the whole pipeline succeeded, so a \
failed run leaves the state as it was and the next run delivers the same records again.

The state file is versioned JSON. Every read-modify-write holds an exclusive lock on \
STATE.lock and replaces the file atomically (temp file, fsync, rename, fsync of the \
directory): a crash at any instant leaves the old or the new state, never a torn file. \
A state file that does not parse is never overwritten (exit 78).";

const EXAMPLES: &str = "\
Examples:
  # An incremental run: only records newer than the last committed run pass
  set -o pipefail
  export ETL_RUN_ID=$(date +%Y%m%dT%H%M%S)
  etl-parse orders.csv \\
    | etl-checkpoint filter --state state.json --key orders --field updated_at --type timestamp --overlap 10m \\
    | etl-merge --db w.duckdb --table orders --key order_id \\
    && etl-checkpoint commit --state state.json

  etl-checkpoint show --state state.json | jq .            # the whole state
  etl-checkpoint get --state state.json orders             # committed value (exit 1 if none)
  etl-checkpoint set --state state.json orders 2026-11-01T00:00:00Z --type timestamp
  etl-checkpoint reset --state state.json orders           # next run starts from scratch
  etl-checkpoint discard --state state.json --run-id 20261121T060000";

/// The `etl-checkpoint` command line.
#[derive(Debug, Parser)]
#[command(name = "etl-checkpoint", version, about = ABOUT, long_about = LONG_ABOUT,
    after_long_help = EXAMPLES, propagate_version = true, disable_help_subcommand = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
    /// Shared flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

etl_core::command_glue!(Cli);

/// The state file and its lock.
#[derive(Debug, Clone, Args)]
pub struct StateArgs {
    /// The state file (created on first write; its directory must exist).
    #[arg(long, value_name = "FILE", env = "ETL_STATE")]
    pub state: Option<PathBuf>,
    /// Wait up to SECONDS for another process's lock on STATE.lock, then exit 75.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 0.0,
        env = "ETL_LOCK_TIMEOUT"
    )]
    pub lock_timeout: f64,
}

impl StateArgs {
    fn store(&self) -> Result<StateFile> {
        let path = self
            .state
            .clone()
            .ok_or_else(|| Error::missing_setting("--state", "ETL_STATE"))?;
        if !self.lock_timeout.is_finite() || self.lock_timeout < 0.0 {
            return Err(Error::usage(
                "--lock-timeout must be a number of seconds >= 0",
            ));
        }
        Ok(StateFile::new(
            path,
            Duration::from_secs_f64(self.lock_timeout),
        ))
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Print the whole state as one JSON object on stdout.
    #[command(
        after_long_help = "Example:\n  etl-checkpoint show --state state.json | jq '.committed'"
    )]
    Show(ShowArgs),
    /// Print the committed value of KEY (strings without quotes); exit 1 if there is none.
    #[command(
        after_long_help = "Example:\n  since=$(etl-checkpoint get --state state.json orders) || since=1970-01-01T00:00:00Z"
    )]
    Get(GetArgs),
    /// Set the committed value of KEY by hand (a repair; logged as a warning).
    #[command(
        after_long_help = "VALUE is read as JSON when it is a JSON scalar (`123`, `\"123\"`), else as a string.\n\n\
Example:\n  etl-checkpoint set --state state.json orders 2026-11-01T00:00:00Z --type timestamp"
    )]
    Set(SetArgs),
    /// Remove the committed value of KEY: the next `filter` passes everything (or from --initial).
    #[command(after_long_help = "Example:\n  etl-checkpoint reset --state state.json orders")]
    Reset(KeyArgs),
    /// Pass the records whose FIELD is past the watermark of KEY; record the highest delivered as pending.
    #[command(long_about = filter::LONG_ABOUT, after_long_help = filter::EXAMPLES)]
    Filter(filter::FilterArgs),
    /// Promote the pending values of a run to committed (idempotent).
    #[command(
        long_about = "Promote the pending values of one run (all keys) to committed and remove them. \
Idempotent: with nothing pending for the run it logs that and exits 0. Pending values of other runs are left alone.\n\n\
A commit never moves a watermark back: when the committed value is greater than the run's \
pending one (an older run committed after a newer one), the committed value stays and a \
warning says so. Values compare by their type: numbers exactly, timestamps by instant, \
strings bytewise, IMAP UIDs per UIDVALIDITY, Maildir by (time, name), mbox by offset. \
`etl-checkpoint set` is the way to move a watermark back on purpose.",
        after_long_help = "Example:\n  ETL_RUN_ID=nightly-2026-11-21 sh -c 'etl-checkpoint filter ... | load && etl-checkpoint commit --state state.json'"
    )]
    Commit(RunArgs),
    /// Drop the pending values of a run (or of all runs with --all).
    #[command(after_long_help = "Example:\n  etl-checkpoint discard --state state.json --all")]
    Discard(DiscardArgs),
}

/// `show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    state: StateArgs,
}

/// `get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    state: StateArgs,
    /// The watermark key.
    key: String,
    /// Print the value as JSON (strings quoted) instead of raw text.
    #[arg(long)]
    json: bool,
}

/// `set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    #[command(flatten)]
    state: StateArgs,
    /// The watermark key.
    key: String,
    /// The new value.
    value: String,
    /// Check VALUE as this type and record the type (timestamps are stored in UTC).
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    kind: Option<Kind>,
    /// Time zone of naive timestamps (IANA name, e.g. Europe/Paris, or UTC).
    #[arg(long, value_name = "TZ", env = "ETL_TIMEZONE")]
    timezone: Option<String>,
}

/// `reset`.
#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(flatten)]
    state: StateArgs,
    /// The watermark key.
    key: String,
}

/// `commit`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    state: StateArgs,
    /// The run whose pending values to commit.
    #[arg(long, value_name = "ID", env = "ETL_RUN_ID")]
    run_id: Option<String>,
}

/// `discard`.
#[derive(Debug, Args)]
pub struct DiscardArgs {
    #[command(flatten)]
    state: StateArgs,
    /// The run whose pending values to drop.
    #[arg(long, value_name = "ID", env = "ETL_RUN_ID", conflicts_with = "all")]
    run_id: Option<String>,
    /// Drop the pending values of every run.
    #[arg(long)]
    all: bool,
}

/// Runs one invocation.
pub fn run(cli: Cli, run: &mut Run) -> Result<()> {
    match cli.command {
        Cmd::Show(a) => show(&a),
        Cmd::Get(a) => get(&a),
        Cmd::Set(a) => set(&a),
        Cmd::Reset(a) => reset(&a),
        Cmd::Filter(a) => {
            run.set_stage("etl-checkpoint filter");
            filter::filter(&a, run)
        }
        Cmd::Commit(a) => commit(&a, run),
        Cmd::Discard(a) => discard(&a),
    }
}

fn print_line(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|e| Error::stdout(&e))
}

fn show(a: &ShowArgs) -> Result<()> {
    let state = a.state.store()?.load()?;
    let text = serde_json::to_string(&state).map_err(|e| Error::internal(e.to_string()))?;
    print_line(&text)
}

fn get(a: &GetArgs) -> Result<()> {
    let state = a.state.store()?.load()?;
    match state.committed.get(&a.key) {
        Some(e) => print_line(&if a.json {
            e.value.to_json()
        } else {
            e.value.to_raw_text()
        }),
        None => {
            events::not_found(&a.key);
            Err(Error::new(
                etl_core::Exit::NotFound,
                format!("no committed value for {}", a.key),
            ))
        }
    }
}

fn set(a: &SetArgs) -> Result<()> {
    let tz = filter::time_zone(a.timezone.as_deref())?;
    let value = match a.kind {
        Some(kind) => {
            let raw = Value::parse(&a.value)
                .ok()
                .filter(|v| matches!(v, Value::Number(_) | Value::String(_)))
                .filter(|_| kind != Kind::String)
                .unwrap_or_else(|| Value::from(a.value.as_str()));
            watermark::parse(kind, &raw, tz.as_ref())
                .map_err(|e| Error::usage(format!("{} {}: {e}", a.key, a.value)))?
                .value
        }
        None => Value::parse(&a.value)
            .ok()
            .filter(|v| !matches!(v, Value::Array(_) | Value::Object(_)))
            .unwrap_or_else(|| Value::from(a.value.as_str())),
    };
    let kind = a.kind.map(Kind::name);
    a.state.store()?.update(|st| {
        events::set_manually(&a.key, st.committed.get(&a.key).map(|e| &e.value), &value);
        st.committed
            .insert(a.key.clone(), Entry::new(value.clone(), kind, None));
        Ok(((), true))
    })
}

fn reset(a: &KeyArgs) -> Result<()> {
    a.state.store()?.update(|st| {
        let old = st.committed.remove(&a.key);
        events::reset(&a.key, old.as_ref().map(|e| &e.value));
        Ok(((), old.is_some()))
    })
}

fn commit(a: &RunArgs, run: &mut Run) -> Result<()> {
    let id = a
        .run_id
        .clone()
        .ok_or_else(|| Error::missing_setting("--run-id", "ETL_RUN_ID"))?;
    let keys = commit_run(&a.state.store()?, &id)?;
    run.set_count("keys_committed", keys.map_or(0, |k| k.len() as u64));
    Ok(())
}

/// Promotes the pending values of `run_id` to committed, as
/// `etl-checkpoint commit` does (a watermark never moves back), and logs
/// what it did. The keys committed; `None` when nothing was pending.
/// `etl-run` commits through this too.
pub fn commit_run(store: &StateFile, run_id: &str) -> Result<Option<Vec<String>>> {
    let keys = store.update(|st| {
        let keys = st.commit_with(run_id, keep_greater);
        let changed = keys.is_some();
        Ok((keys, changed))
    })?;
    match &keys {
        Some(keys) => events::committed(run_id, keys),
        None => events::nothing_pending(run_id),
    }
    Ok(keys)
}

/// Drops the pending values of `run_id`, as `etl-checkpoint discard` does,
/// and logs it; true if there were any.
pub fn discard_run(store: &StateFile, run_id: &str) -> Result<bool> {
    let dropped = store.update(|st| {
        let d = st.discard(run_id);
        Ok((d, d))
    })?;
    if dropped {
        events::discarded(1);
    } else {
        events::nothing_pending(run_id);
    }
    Ok(dropped)
}

/// A commit never moves a watermark back: when the committed value of a key
/// is greater than the run's pending one (an older run committed after a
/// newer one), the committed value stays and a warning says so. `set` is
/// the explicit way to move a watermark back.
fn keep_greater(key: &str, old: Option<&Entry>, new: Entry) -> Entry {
    let Some(old) = old else { return new };
    let same_kind = old.kind.is_some() && old.kind == new.kind;
    let kind = new.kind.as_deref().unwrap_or("");
    if same_kind
        && watermark::compare_stored(kind, &old.value, &new.value)
            == Some(std::cmp::Ordering::Greater)
    {
        events::kept_greater(
            key,
            &old.value,
            &new.value,
            new.run_id.as_deref().unwrap_or(""),
        );
        return old.clone();
    }
    new
}

fn discard(a: &DiscardArgs) -> Result<()> {
    let store = a.state.store()?;
    if a.all {
        let n = store.update(|st| {
            let n = st.pending.len();
            st.pending.clear();
            Ok((n, n > 0))
        })?;
        events::discarded(n);
        return Ok(());
    }
    let id = a
        .run_id
        .clone()
        .ok_or_else(|| Error::missing_setting("--run-id (or --all)", "ETL_RUN_ID"))?;
    discard_run(&store, &id).map(|_| ())
}
