//! etl-transform: typed, declarative record transforms with schema checks
//! and masking.
//!
//! The steps come from flags (applied in command-line order) or from a TOML
//! spec file, and both go through one parser (`steps::Step::parse`). They
//! are compiled once (regexes, expressions, casts), then the records stream
//! through them one at a time (`pipeline`). Numbers are exact throughout:
//! casts work on digit strings and expressions on `BigDecimal`, never f64.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Parser};
use etl_core::{CommonArgs, Error, Result, Run};
use jiff::tz::TimeZone;

mod access;
pub mod cast;
mod events;
pub mod expr;
mod fast;
mod pipeline;
pub mod schema;
pub mod spec;
pub mod steps;

use cast::CastOptions;
use pipeline::{Pipeline, Planned};
use spec::Spec;
use steps::{Ctx, Kind, Step};

const ABOUT: &str =
    "Typed, declarative record transforms: rename, cast, clean, filter, derive, check, mask";

const LONG_ABOUT: &str = "\
Clean the records between parsing and loading, declaratively and exactly.

Steps are given as flags, applied in command-line order (`--rename a=b --filter 'b > 1'` \
renames first), or as a spec file (--spec FILE.toml: an ordered list of [[step]] tables \
with the same vocabulary; spec steps run first, then the flags' steps). Every step names \
its fields; a step that cannot process a record makes it a reject (see --rejects, \
--max-rejects) naming the step, the field, the value and what was expected.

Numbers are exact: casts work on the digits as written and expressions compute in \
decimal, so money never goes through a float (0.1 + 0.2 is 0.3; \
12345678901234567890.01 stays that). Key order is kept; new fields go last unless a \
`reorder` step says otherwise. Memory is constant whatever the input size, except for \
`unique`, which remembers every distinct key it has seen.

The summary event counts records in, out, filtered out and rejected, overall and per \
step (`steps`), plus `schema_rejected` with --schema.

Expressions (--filter, --set) are a small SQL-like language:
  fields       amount, customer.name (nested or a flattened key), `Order ID`
  literals     'text' \"text\" 12.50 null true false
  operators    = == != <> < <= > >=   and or not   + - * / %   || (concatenation)
               x is null, x is not null, x in (1, 2), x not in ('a', 'b')
  functions    lower upper trim length substr(s,start[,len]) replace(s,regex,rep)
               matches(s,regex) contains starts_with ends_with concat coalesce
               if(cond,a,b) abs round(x[,n]) floor ceil number(s) string(x)
               year month day hour minute second weekday (1 = Monday) date(x)
               date_add(d,n,'day'|'week'|'month'|'year'|'hour'|'minute'|'second')
               date_diff('day',a,b) now() today()
A comparison or arithmetic with null gives null; --filter keeps a record only when the \
expression is true. Numeric strings compare as numbers against numbers (`amount > 100` \
works on \"1234.50\"). Division is exact when the quotient terminates, else rounded to \
34 significant digits; round() rounds half away from zero. Date functions take ISO 8601 \
text (cast first). An expression that fails on a record (a type mismatch, division by \
zero) makes it a reject.";

const EXAMPLES: &str = "\
Steps, each with an example (every step flag is repeatable):
  --select order_id,amount           keep these fields, in this order
  --drop internal_note,tmp           remove fields
  --rename 'Order ID=order_id,Amount=amount'
  --rename-regex '^col_(.*)=$1'      rename every matching key (PATTERN=REPLACEMENT)
  --reorder order_id,customer        these first, the others after in their order
  --normalize-keys snake             Order ID -> order_id (also: lower, trim)
  --flatten                          {\"a\":{\"b\":1}} -> {\"a.b\":1} (--flatten=_ for a.b -> a_b)
  --unflatten                        {\"a.b\":1} -> {\"a\":{\"b\":1}}
  --cast 'amount=decimal(12,2),qty=int,paid=bool'
  --cast 'day=date:%d/%m/%Y|%Y-%m-%d,at=datetime:%d/%m/%Y %H:%M'
  --trim '*'                         also --collapse-spaces, --lower, --upper (F,.. or *)
  --replace 'phone=/[^0-9+]//g'      sed style: the character after = is the delimiter; g i
  --default 'currency=EUR'           fill a missing, null or empty field
  --null-if '*=N/A'                  this text becomes null
  --coalesce 'email=email,contact_email'
  --filter 'amount > 100 and currency = \"EUR\"'
  --set 'total=round(amount * qty, 2)'
  --require order_id,amount          present and non-empty, else a reject
  --unique order_id                  later duplicates are rejects (memory grows with keys)
  --mask 'email=hash,card=truncate:4,name=redact,contact=email-domain'
  --add 'source=client-a'  --add-run-id  --add-loaded-at

Cast types: string, int (accepts 1,234 and 12.00; refuses 12.5), decimal and decimal(P,S) \
(exact: accepts 1,234.50, 1.234,50 with --decimal-comma, currency symbols and codes, \
(12.50) negatives, spaces; more decimals than S is a reject, never a rounding; output \
padded to S; `decimal(12,2):comma` or `:point` sets one field's decimal separator, \
for a stream mixing 1.234,50 and 1,234.50 files), float, bool (true/false/yes/no/y/n/1/0, see --true-values), date \
(YYYY-MM-DD out) and datetime (YYYY-MM-DDTHH:MM:SSZ out, in UTC). Date formats \
(strftime, after a colon, separated by |) are tried in order; ISO 8601 text is read when \
no format is given, and Excel serial day numbers (45000, 45000.5) when nothing else \
matched. An empty string casts to null. A value that does not cast is a reject (or null \
with --on-cast-error null).

Masks: hash is the hex SHA-256 of ETL_MASK_SALT, a NUL byte and the value (the run \
refuses to start without a salt); redact writes [REDACTED]; truncate:N keeps N \
characters; email-domain keeps the part after @ (a non-empty value without @ is a reject).

A spec file (see examples/transform/orders.toml):
  timezone = \"Europe/Paris\"
  schema = \"orders.schema.toml\"       # relative to the spec file
  [[step]]
  rename = [\"Order ID=order_id\", \"Amount=amount\"]
  [[step]]
  cast = \"amount=decimal(12,2),updated_at=datetime\"
  [[step]]
  filter = \"amount > 100\"
  [[step]]
  mask = \"customer=hash\"
Settings: on_cast_error, on_drift, timezone, schema, decimal_comma, true_values, \
false_values (flags override them). Steps that take no argument: `unflatten = true`.

A schema file: [[column]] tables with name, type (the cast types) and required:
  [[column]]
  name = \"amount\"
  type = \"decimal(12,2)\"
  required = true
Every record is checked after the steps: a value of the wrong type or a required one \
missing is a reject; a column added or missing is schema drift, which fails the run \
(exit 65, listing the differences) unless --on-drift warn|ignore.

Examples:
  etl-parse --normalize-headers snake orders.csv \\
    | etl-transform --cast 'amount=decimal(12,2),updated_at=datetime' --filter 'amount >= 100' \\
        --mask customer=hash --rejects rejects.ndjson
  etl-transform --check --spec orders.toml          # validate a spec, read nothing
  ETL_MASK_SALT_FILE=/etc/etl/salt etl-transform --spec orders.toml < day1.ndjson
  etl-transform --set 'total=0.1 + 0.2' <<< '{}'    # {\"total\":0.3}

Testing hook:
  ETL_TRANSFORM_NO_FAST_PATH=1  every record takes the general path instead of the
  flat-record fast path (the differential test compares the two); any other value exits 64.";

/// `--on-drift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnDrift {
    /// Exit 65 with the differences.
    Fail,
    /// Log each distinct difference once, keep going.
    Warn,
    /// Say nothing.
    Ignore,
}

/// `--on-cast-error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnCastError {
    /// The record is a reject.
    Reject,
    /// The value becomes null.
    Null,
}

const STEPS: &str = "Steps (applied in command-line order)";

/// The `etl-transform` command line.
#[derive(Debug, Parser)]
#[command(name = "etl-transform", version, about = ABOUT, long_about = LONG_ABOUT,
    after_long_help = EXAMPLES)]
#[allow(clippy::struct_excessive_bools)] // flags, each documented
pub struct Cli {
    /// Keep only these fields, in this order: --select order_id,amount
    #[arg(long, value_name = "F,..", action = ArgAction::Append, help_heading = STEPS)]
    pub select: Vec<String>,
    /// Remove these fields: --drop tmp,note
    #[arg(long, value_name = "F,..", action = ArgAction::Append, help_heading = STEPS)]
    pub drop: Vec<String>,
    /// Rename fields where they stand: --rename 'Order ID=order_id,Amount=amount'
    #[arg(long, value_name = "OLD=NEW,..", action = ArgAction::Append, help_heading = STEPS)]
    pub rename: Vec<String>,
    /// Rename every key matching a regex: --rename-regex '^col_(.*)=$1' (\= for a literal =)
    #[arg(long, value_name = "PATTERN=REPLACEMENT", action = ArgAction::Append, help_heading = STEPS)]
    pub rename_regex: Vec<String>,
    /// Put these fields first, the others after in their order: --reorder id,name
    #[arg(long, value_name = "F,..", action = ArgAction::Append, help_heading = STEPS)]
    pub reorder: Vec<String>,
    /// Normalise every key: snake (Order ID -> order_id), lower, trim: --normalize-keys snake
    #[arg(long, value_name = "snake|lower|trim", action = ArgAction::Append, help_heading = STEPS)]
    pub normalize_keys: Vec<String>,
    /// Flatten nested objects into a.b keys (--flatten=_ for another separator)
    #[arg(long, value_name = "SEP", num_args = 0..=1, require_equals = true,
        default_missing_value = ".", action = ArgAction::Append, help_heading = STEPS)]
    pub flatten: Vec<String>,
    /// Turn a.b keys back into nested objects: --unflatten (--unflatten=_ for a_b)
    #[arg(long, value_name = "SEP", num_args = 0..=1, require_equals = true,
        default_missing_value = ".", action = ArgAction::Append, help_heading = STEPS)]
    pub unflatten: Vec<String>,
    /// Cast fields: --cast 'amount=decimal(12,2),day=date:%d/%m/%Y|%Y-%m-%d' (see below)
    #[arg(long, value_name = "F=TYPE,..", action = ArgAction::Append, help_heading = STEPS)]
    pub cast: Vec<String>,
    /// Trim surrounding whitespace of string values: --trim '*' or --trim name,city
    #[arg(long, value_name = "F,..|*", action = ArgAction::Append, help_heading = STEPS)]
    pub trim: Vec<String>,
    /// Turn runs of whitespace into one space: --collapse-spaces '*'
    #[arg(long, value_name = "F,..|*", action = ArgAction::Append, help_heading = STEPS)]
    pub collapse_spaces: Vec<String>,
    /// Lower-case string values: --lower email
    #[arg(long, value_name = "F,..|*", action = ArgAction::Append, help_heading = STEPS)]
    pub lower: Vec<String>,
    /// Upper-case string values: --upper currency
    #[arg(long, value_name = "F,..|*", action = ArgAction::Append, help_heading = STEPS)]
    pub upper: Vec<String>,
    /// Regex replace, sed style (first match; g: all, i: ignore case): --replace 'phone=/[ .]//g'
    #[arg(long, value_name = "F=/REGEX/REPL/[gi]", action = ArgAction::Append, help_heading = STEPS)]
    pub replace: Vec<String>,
    /// Fill a missing, null or empty field with a string: --default currency=EUR
    #[arg(long, value_name = "F=VALUE", action = ArgAction::Append, help_heading = STEPS)]
    pub default: Vec<String>,
    /// Make a value null when its text is VALUE: --null-if '*=N/A'
    #[arg(long, value_name = "F=VALUE", action = ArgAction::Append, help_heading = STEPS)]
    pub null_if: Vec<String>,
    /// Set TARGET to the first non-empty of the fields: --coalesce 'email=email,alt_email'
    #[arg(long, value_name = "TARGET=F,..", action = ArgAction::Append, help_heading = STEPS)]
    pub coalesce: Vec<String>,
    /// Keep the records where EXPR is true: --filter 'amount > 100 and currency = "EUR"'
    #[arg(long, value_name = "EXPR", action = ArgAction::Append, help_heading = STEPS)]
    pub filter: Vec<String>,
    /// Add or replace a field with an expression: --set 'total=round(amount * qty, 2)'
    #[arg(long, value_name = "F=EXPR", action = ArgAction::Append, help_heading = STEPS)]
    pub set: Vec<String>,
    /// Reject records where a field is missing, null or empty: --require order_id,amount
    #[arg(long, value_name = "F,..", action = ArgAction::Append, help_heading = STEPS)]
    pub require: Vec<String>,
    /// Reject later records with a key seen before: --unique order_id (memory grows with distinct keys)
    #[arg(long, value_name = "K,..", action = ArgAction::Append, help_heading = STEPS)]
    pub unique: Vec<String>,
    /// Mask PII: --mask 'email=hash,card=truncate:4,name=redact,contact=email-domain'
    #[arg(long, value_name = "F=METHOD,..", action = ArgAction::Append, help_heading = STEPS)]
    pub mask: Vec<String>,
    /// Add (or replace) a field with a constant string: --add source=client-a
    #[arg(long, value_name = "F=VALUE", action = ArgAction::Append, help_heading = STEPS)]
    pub add: Vec<String>,
    /// Add _run_id (ETL_RUN_ID, shared by the stages of one pipeline run)
    #[arg(long, num_args = 0, default_missing_value = "", action = ArgAction::Append,
        help_heading = STEPS)]
    pub add_run_id: Vec<String>,
    /// Add _loaded_at: one UTC timestamp per run (2026-11-21T06:00:00Z)
    #[arg(long, num_args = 0, default_missing_value = "", action = ArgAction::Append,
        help_heading = STEPS)]
    pub add_loaded_at: Vec<String>,

    /// Read steps and settings from a TOML spec file (its steps run before the flags' steps)
    #[arg(long, value_name = "FILE", env = "ETL_TRANSFORM_SPEC")]
    pub spec: Option<PathBuf>,
    /// Validate the spec, the flags and the schema without reading input (exit 78 with FILE:LINE:COLUMN)
    #[arg(long)]
    pub check: bool,
    /// Check every record against a schema file ([[column]] name, type, required)
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
    /// Columns added or missing against --schema: fail (exit 65), warn once per difference, ignore [default: fail]
    #[arg(long, value_enum, value_name = "MODE")]
    pub on_drift: Option<OnDrift>,
    /// A value that does not cast: reject the record, or make the value null [default: reject]
    #[arg(long, value_enum, value_name = "MODE")]
    pub on_cast_error: Option<OnCastError>,
    /// Numbers are written 1.234,50 (decimal comma, dot or space grouping)
    #[arg(long)]
    pub decimal_comma: bool,
    /// Words that cast to true, case-insensitive [default: true,yes,y,1]
    #[arg(long, value_name = "W,..")]
    pub true_values: Option<String>,
    /// Words that cast to false, case-insensitive [default: false,no,n,0]
    #[arg(long, value_name = "W,..")]
    pub false_values: Option<String>,
    /// Time zone of naive datetimes (IANA name, e.g. Europe/Paris) [default: UTC]
    #[arg(long, value_name = "TZ", env = "ETL_TIMEZONE")]
    pub timezone: Option<String>,
    /// Read the hash-mask salt from FILE (else from the ETL_MASK_SALT variable)
    #[arg(long, value_name = "FILE", env = "ETL_MASK_SALT_FILE")]
    pub mask_salt_file: Option<PathBuf>,
    /// NDJSON input files (default: stdin; `-` is stdin)
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Shared flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

etl_core::command_glue!(Cli);

impl Cli {
    /// The step flags' values, grouped by flag (declaration order).
    fn grouped(&self) -> Vec<(Kind, Vec<String>)> {
        vec![
            (Kind::Select, self.select.clone()),
            (Kind::Drop, self.drop.clone()),
            (Kind::Rename, self.rename.clone()),
            (Kind::RenameRegex, self.rename_regex.clone()),
            (Kind::Reorder, self.reorder.clone()),
            (Kind::NormalizeKeys, self.normalize_keys.clone()),
            (Kind::Flatten, self.flatten.clone()),
            (Kind::Unflatten, self.unflatten.clone()),
            (Kind::Cast, self.cast.clone()),
            (Kind::Trim, self.trim.clone()),
            (Kind::CollapseSpaces, self.collapse_spaces.clone()),
            (Kind::Lower, self.lower.clone()),
            (Kind::Upper, self.upper.clone()),
            (Kind::Replace, self.replace.clone()),
            (Kind::Default, self.default.clone()),
            (Kind::NullIf, self.null_if.clone()),
            (Kind::Coalesce, self.coalesce.clone()),
            (Kind::Filter, self.filter.clone()),
            (Kind::Set, self.set.clone()),
            (Kind::Require, self.require.clone()),
            (Kind::Unique, self.unique.clone()),
            (Kind::Mask, self.mask.clone()),
            (Kind::Add, self.add.clone()),
            (Kind::AddRunId, self.add_run_id.clone()),
            (Kind::AddLoadedAt, self.add_loaded_at.clone()),
        ]
    }
}

/// The step flags in command-line order. The parsed struct keeps each
/// flag's values but loses how different flags interleave, so the process
/// arguments are parsed again and each value placed by its index. When
/// they do not match what `cli` holds (an in-process call with other
/// arguments), the steps run grouped by flag, which is logged.
pub fn ordered_steps(cli: &Cli, args: &[OsString]) -> Vec<(Kind, String)> {
    let grouped = cli.grouped();
    if let Some(v) = interleave(&grouped, args) {
        return v;
    }
    let mut out = Vec::new();
    for (k, vals) in grouped {
        out.extend(vals.into_iter().map(|v| (k, v)));
    }
    if out.len() > 1 {
        tracing::debug!(
            "step flags could not be ordered from the process arguments; grouped by flag"
        );
    }
    out
}

fn interleave(grouped: &[(Kind, Vec<String>)], args: &[OsString]) -> Option<Vec<(Kind, String)>> {
    let m = command().try_get_matches_from(args).ok()?;
    let mut items: Vec<(usize, Kind, String)> = Vec::new();
    for (kind, vals) in grouped {
        if vals.is_empty() {
            continue;
        }
        let id = kind.name().replace('-', "_");
        let idx: Vec<usize> = m.indices_of(&id).map(Iterator::collect).unwrap_or_default();
        if idx.len() != vals.len() {
            return None;
        }
        let got: Vec<String> = m
            .get_many::<String>(&id)
            .map(|v| v.cloned().collect())
            .unwrap_or_default();
        if got != *vals {
            return None;
        }
        items.extend(
            idx.into_iter()
                .zip(vals.iter().cloned())
                .map(|(i, v)| (i, *kind, v)),
        );
    }
    items.sort_by_key(|(i, _, _)| *i);
    Some(items.into_iter().map(|(_, k, v)| (k, v)).collect())
}

fn time_zone(name: Option<&str>) -> Result<TimeZone> {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        None => Ok(TimeZone::UTC),
        Some(n) => TimeZone::get(n)
            .map_err(|e| Error::usage(format!("--timezone {n}: unknown time zone ({e})"))),
    }
}

fn words(s: &str) -> Vec<String> {
    s.split(',')
        .map(|w| w.trim().to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// The salt of hash masks: `--mask-salt-file`, else `ETL_MASK_SALT`.
fn salt(cli: &Cli) -> Result<Option<Vec<u8>>> {
    if let Some(p) = &cli.mask_salt_file {
        let mut b = std::fs::read(p)
            .map_err(|e| Error::config(format!("--mask-salt-file {}: {e}", p.display())))?;
        while b.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
            b.pop();
        }
        if b.is_empty() {
            return Err(Error::config(format!(
                "--mask-salt-file {}: the file is empty",
                p.display()
            )));
        }
        return Ok(Some(b));
    }
    Ok(std::env::var_os("ETL_MASK_SALT")
        .map(OsString::into_encoded_bytes)
        .filter(|s| !s.is_empty()))
}

/// Runs one invocation.
#[allow(clippy::needless_pass_by_value)] // the signature `etl_core::main` requires
pub fn run(cli: Cli, run: &mut Run) -> Result<()> {
    let args: Vec<OsString> = std::env::args_os().collect();
    run_with_args(&cli, &args, run)
}

/// [`run`] with the process arguments given (they order the step flags).
#[allow(clippy::too_many_lines)] // the set-up reads top to bottom
pub fn run_with_args(cli: &Cli, args: &[OsString], run: &mut Run) -> Result<()> {
    let spec = cli.spec.as_deref().map(Spec::load).transpose()?;

    // Settings: a flag wins over the spec file, which wins over the default.
    let on_drift = match (
        cli.on_drift,
        spec.as_ref().and_then(|s| s.on_drift.as_ref()),
    ) {
        (Some(d), _) => d,
        (None, Some((s, at))) => <OnDrift as clap::ValueEnum>::from_str(s, true).map_err(|_| {
            spec_err(
                spec.as_ref(),
                *at,
                format!("on_drift {s:?}: expected fail, warn or ignore"),
            )
        })?,
        (None, None) => OnDrift::Fail,
    };
    let on_cast_error = match (
        cli.on_cast_error,
        spec.as_ref().and_then(|s| s.on_cast_error.as_ref()),
    ) {
        (Some(c), _) => c,
        (None, Some((s, at))) => {
            <OnCastError as clap::ValueEnum>::from_str(s, true).map_err(|_| {
                spec_err(
                    spec.as_ref(),
                    *at,
                    format!("on_cast_error {s:?}: expected reject or null"),
                )
            })?
        }
        (None, None) => OnCastError::Reject,
    };
    let tz = match (
        &cli.timezone,
        spec.as_ref().and_then(|s| s.timezone.as_ref()),
    ) {
        (Some(t), _) => time_zone(Some(t))?,
        (None, Some((t, at))) => TimeZone::get(t.trim())
            .map_err(|e| spec_err(spec.as_ref(), *at, format!("timezone {t:?}: {e}")))?,
        (None, None) => TimeZone::UTC,
    };
    let mut cast_opts = CastOptions {
        decimal_comma: cli.decimal_comma
            || spec.as_ref().and_then(|s| s.decimal_comma) == Some(true),
        tz: tz.clone(),
        ..CastOptions::default()
    };
    if let Some(w) = cli
        .true_values
        .as_deref()
        .map(words)
        .or_else(|| spec.as_ref().and_then(|s| s.true_values.clone()))
    {
        cast_opts.true_values = w;
    }
    if let Some(w) = cli
        .false_values
        .as_deref()
        .map(words)
        .or_else(|| spec.as_ref().and_then(|s| s.false_values.clone()))
    {
        cast_opts.false_values = w;
    }
    if cast_opts
        .true_values
        .iter()
        .any(|t| cast_opts.false_values.contains(t))
    {
        return Err(Error::usage(
            "--true-values and --false-values share a word",
        ));
    }

    // Steps: the spec's first, then the flags' in command-line order.
    let mut planned = Vec::new();
    if let Some(s) = &spec {
        for st in &s.steps {
            let step = Step::parse(st.kind, &st.arg).map_err(|e| {
                s.error_at(
                    st.at + e.offset,
                    format!("{}: {}", st.kind.name(), e.message),
                )
            })?;
            planned.push(Planned {
                step,
                name: st.kind.name(),
                arg: st.arg.clone(),
            });
        }
    }
    for (kind, arg) in ordered_steps(cli, args) {
        let step = Step::parse(kind, &arg).map_err(|e| {
            let at = if e.offset > 0 {
                format!(" (at character {})", e.offset + 1)
            } else {
                String::new()
            };
            Error::usage(format!("--{} {arg:?}{at}: {}", kind.name(), e.message))
        })?;
        planned.push(Planned {
            step,
            name: kind.name(),
            arg,
        });
    }

    let schema_path = cli
        .schema
        .clone()
        .or_else(|| spec.as_ref().and_then(|s| s.schema.clone()));
    let schema = schema_path
        .as_deref()
        .map(schema::Schema::load)
        .transpose()?;

    let needs_salt = planned.iter().any(|p| p.step.needs_salt());
    let salt = salt(cli)?;
    let spec_name = cli.spec.as_ref().map(|p| p.display().to_string());
    if cli.check {
        if needs_salt && salt.is_none() {
            events::check_without_salt();
        }
        events::checked(planned.len(), spec_name.as_deref());
        return Ok(());
    }
    if needs_salt && salt.is_none() {
        return Err(Error::config(
            "a hash mask needs a salt: set ETL_MASK_SALT or pass --mask-salt-file FILE \
             (ETL_MASK_SALT_FILE)",
        ));
    }

    let now = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now());
    let ctx = Ctx {
        cast: cast_opts,
        cast_error_null: on_cast_error == OnCastError::Null,
        env: expr::Env {
            now,
            tz: &tz,
            decimal_comma: cli.decimal_comma
                || spec.as_ref().and_then(|s| s.decimal_comma) == Some(true),
        },
        salt,
        run_id: run.run_id().to_owned(),
        loaded_at: cast::format_ts(now),
    };
    events::started(
        planned.len(),
        spec_name.as_deref(),
        schema.as_ref().map(|s| s.path.as_str()),
    );
    let mut p = Pipeline::new(planned, schema, on_drift, ctx);
    if etl_core::config::test_switch("ETL_TRANSFORM_NO_FAST_PATH")? {
        p.general_only();
    }
    p.run(&cli.files, run)
}

fn spec_err(spec: Option<&Spec>, at: usize, m: String) -> Error {
    match spec {
        Some(s) => s.error_at(at, m),
        None => Error::config(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::FromArgMatches;

    #[test]
    fn every_step_flag_is_ordered_by_its_position() {
        let mut args: Vec<String> = vec!["etl-transform".into()];
        let mut want = Vec::new();
        // Every step twice, in reverse declaration order, with values that
        // tell the occurrences apart.
        for round in 0..2 {
            for k in Kind::ALL.iter().rev() {
                let v = match k {
                    Kind::AddRunId | Kind::AddLoadedAt => String::new(),
                    Kind::Flatten | Kind::Unflatten => format!("s{round}"),
                    _ => format!("{}{round}", k.name()),
                };
                if v.is_empty() {
                    args.push(format!("--{}", k.name()));
                } else if matches!(k, Kind::Flatten | Kind::Unflatten) {
                    args.push(format!("--{}={v}", k.name()));
                } else {
                    args.push(format!("--{}", k.name()));
                    args.push(v.clone());
                }
                want.push((*k, v));
            }
        }
        let os: Vec<OsString> = args.iter().map(OsString::from).collect();
        let m = command().try_get_matches_from(&os).unwrap();
        let cli = Cli::from_arg_matches(&m).unwrap();
        assert_eq!(ordered_steps(&cli, &os), want);
        // Other process arguments: grouped by flag, nothing lost.
        let grouped = ordered_steps(&cli, &[OsString::from("etl-transform")]);
        assert_eq!(grouped.len(), want.len());
        assert_eq!(grouped[0].0, Kind::Select);
    }
}
