//! etl-fetch-mail: a mailbox into attachment files plus one manifest line
//! per file on stdout, incrementally.
//!
//! Sources: IMAP ([`imap_source`]), Maildir, mbox and .eml files
//! ([`local`]). Each message is parsed ([`mime`]), its attachments filtered
//! and stored content-addressed ([`store`]); the watermark (IMAP: UIDVALIDITY
//! and the last UID delivered) is written as pending for `etl-checkpoint
//! commit`.

mod events;
mod imap_source;
mod local;
pub mod mime;
mod oauth;
pub mod store;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use etl_core::{CommonArgs, Error, Exit, Result, Run};
use globset::{Glob, GlobMatcher};
use serde_json::{json, Value as J};

const ABOUT: &str = "Fetch attachments from IMAP, Maildir, mbox or .eml files incrementally: files on disk, one manifest line each";

const LONG_ABOUT: &str = "\
Fetch the attachments of new messages into --out-dir and print one manifest line per \
stored file on stdout, for `| etl-parse --manifest`.

Sources: an IMAP mailbox (--host, --user, --mailbox; TLS verified), or local mail: \
--maildir DIR, --mbox FILE, --eml FILE... (same output).

Files are stored content-addressed and atomically: OUT/<sha256[0:2]>/<sha256>/<safe name>, \
so the same file fetched twice is stored once and a re-run is harmless. A manifest line \
has path, filename (the decoded original name), content_type, charset (the part's declared \
charset, or null; etl-parse --manifest decodes non-UTF-8 text with it), size, sha256, mailbox, \
uidvalidity, uid, message_id, from, subject and date (RFC 3339).

Incremental: with --state, the last UID delivered per (account, mailbox) and the \
mailbox's UIDVALIDITY are written as pending for this run (ETL_RUN_ID); \
`etl-checkpoint commit` makes them stick after the whole pipeline succeeded, and the next \
run asks only for newer UIDs. A failed pipeline therefore fetches the same messages again \
(stored files are recognised, not duplicated). The mailbox is read with BODY.PEEK and \
never modified by the run that fetches.

--mark-seen and --move-to change the mailbox only for messages of a committed run: the \
run records them (the messages whose attachments are on disk) in --state as pending \
mailbox actions beside its watermark; `etl-checkpoint commit` commits both together; the \
next etl-fetch-mail with the same --state applies the committed actions first (or at \
once: `etl-fetch-mail --apply-committed`, e.g. right after commit). A failed pipeline \
therefore leaves its messages where they were, unseen, for the next run. Both flags \
need --state.

Selection: --since, --before, --from, --to, --subject, --unseen and --header are IMAP \
SEARCH criteria (applied to local mail by etl-fetch-mail itself); --attachment GLOB, \
--content-type, --min-size and --max-size filter attachments. A message over \
--max-message-bytes is skipped with a warning; a message that is not readable MIME is \
counted as rejected (--max-rejects) and the run goes on.";

const EXAMPLES: &str = "\
Examples:
  # The daily job: new reports from a client, parsed and loaded, then committed
  export ETL_RUN_ID=$(date +%Y%m%dT%H%M%S) ETL_IMAP_PASSWORD=...
  etl-fetch-mail --host imap.example.com --user reports@example.com --mailbox INBOX \\
      --from reports@client.example --attachment '*.csv' --state state.json --out-dir staging/ \\
    | etl-parse --manifest --carry date,from | etl-merge --db w.duckdb --table orders --key id \\
    && etl-checkpoint commit --state state.json

  # Gmail with an app password (or XOAUTH2: --auth xoauth2 --oauth-token-command '...')
  etl-fetch-mail --host imap.gmail.com --user me@gmail.com --password-file ~/.gmail-app-password \\
      --mailbox '[Gmail]/All Mail' --since 2026-11-01 --out-dir staging/

  # Local mail delivered by fetchmail/getmail
  etl-fetch-mail --maildir ~/Maildir --state state.json --out-dir staging/ | jq -c '{filename, size}'";

/// `--tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Tls {
    /// TLS from the first byte (port 993).
    Implicit,
    /// Plain connection upgraded with STARTTLS (port 143).
    Starttls,
    /// No encryption: only to a loopback address.
    None,
}

/// `--auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Auth {
    /// LOGIN with the password.
    Login,
    /// AUTHENTICATE PLAIN with the password.
    Plain,
    /// AUTHENTICATE XOAUTH2 with a token from --oauth-credentials or --oauth-token-command (Gmail, Microsoft 365).
    Xoauth2,
}

/// `--on-uidvalidity-change`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnUidvalidity {
    /// Fetch the whole mailbox again (stored files are not stored twice).
    Refetch,
    /// Exit 65 and leave the state alone.
    Fail,
}

/// The `etl-fetch-mail` command line.
#[derive(Debug, Parser)]
#[command(name = "etl-fetch-mail", version, about = ABOUT, long_about = LONG_ABOUT, after_long_help = EXAMPLES)]
#[allow(clippy::struct_excessive_bools)] // independent switches, as on the command line
pub struct Cli {
    /// IMAP server.
    #[arg(
        long,
        value_name = "HOST",
        env = "ETL_IMAP_HOST",
        help_heading = "IMAP"
    )]
    pub host: Option<String>,
    /// IMAP port [default: 993 with --tls implicit, 143 otherwise].
    #[arg(
        long,
        value_name = "PORT",
        env = "ETL_IMAP_PORT",
        help_heading = "IMAP"
    )]
    pub port: Option<u16>,
    /// IMAP user.
    #[arg(
        long,
        value_name = "USER",
        env = "ETL_IMAP_USER",
        help_heading = "IMAP"
    )]
    pub user: Option<String>,
    /// Mailbox to read (repeatable).
    #[arg(
        long,
        value_name = "NAME",
        env = "ETL_IMAP_MAILBOX",
        value_delimiter = ',',
        default_value = "INBOX",
        help_heading = "IMAP"
    )]
    pub mailbox: Vec<String>,
    /// Transport security.
    #[arg(long, value_enum, default_value_t = Tls::Implicit, env = "ETL_IMAP_TLS", help_heading = "IMAP")]
    pub tls: Tls,
    /// Trust this PEM CA bundle instead of the system's (a private CA).
    #[arg(
        long,
        value_name = "FILE",
        env = "ETL_IMAP_CA_FILE",
        help_heading = "IMAP"
    )]
    pub ca_file: Option<PathBuf>,
    /// Authentication mechanism.
    #[arg(long, value_enum, default_value_t = Auth::Login, env = "ETL_IMAP_AUTH", help_heading = "IMAP")]
    pub auth: Auth,
    /// Read the password from FILE (first line). Else ETL_IMAP_PASSWORD.
    #[arg(
        long,
        value_name = "FILE",
        env = "ETL_IMAP_PASSWORD_FILE",
        help_heading = "IMAP"
    )]
    pub password_file: Option<PathBuf>,
    /// Run CMD (sh -c) and use its first output line as the password.
    #[arg(
        long,
        value_name = "CMD",
        env = "ETL_IMAP_PASSWORD_COMMAND",
        help_heading = "IMAP"
    )]
    pub password_command: Option<String>,
    /// XOAUTH2: run CMD (sh -c) and use its first output line as the access token.
    #[arg(
        long,
        value_name = "CMD",
        env = "ETL_IMAP_OAUTH_TOKEN_COMMAND",
        help_heading = "IMAP"
    )]
    pub oauth_token_command: Option<String>,
    /// XOAUTH2: get the token with yup-oauth2 from Google credentials: a service-account key with domain-wide delegation (acting as --user) or authorized-user JSON (an installed app's refresh token).
    #[arg(
        long,
        value_name = "FILE",
        env = "ETL_IMAP_OAUTH_CREDENTIALS",
        help_heading = "IMAP"
    )]
    pub oauth_credentials: Option<PathBuf>,
    /// XOAUTH2: the scope asked for with --oauth-credentials.
    #[arg(
        long,
        value_name = "SCOPE",
        default_value = "https://mail.google.com/",
        help_heading = "IMAP"
    )]
    pub oauth_scope: String,
    /// Connect and read timeout, seconds.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 30,
        help_heading = "IMAP"
    )]
    pub timeout: u64,
    /// Reconnect attempts after a dropped connection (random backoff up to 1 s doubling, at most 64 s), then exit 69.
    #[arg(long, value_name = "N", default_value_t = 5, help_heading = "IMAP")]
    pub max_retries: u32,
    /// Ceiling of the first reconnect delay in milliseconds (doubles per attempt; lower it in tests).
    #[arg(long, value_name = "MS", default_value_t = 1000, help_heading = "IMAP")]
    pub retry_base_ms: u64,
    /// Messages fetched per round trip (memory holds one batch).
    #[arg(long, value_name = "N", default_value_t = 50, help_heading = "IMAP")]
    pub batch: usize,
    /// Flag the messages whose attachments were stored \Seen, once this run is committed (needs --state).
    #[arg(long, help_heading = "IMAP", requires = "state")]
    pub mark_seen: bool,
    /// Move the messages whose attachments were stored to MAILBOX, once this run is committed (needs --state).
    #[arg(
        long,
        value_name = "MAILBOX",
        help_heading = "IMAP",
        requires = "state"
    )]
    pub move_to: Option<String>,
    /// Apply the committed --mark-seen/--move-to actions of earlier runs, then exit without fetching.
    #[arg(long, help_heading = "IMAP", requires = "state", requires = "host")]
    pub apply_committed: bool,
    /// When the mailbox's UIDVALIDITY changed since the last run.
    #[arg(long, value_enum, default_value_t = OnUidvalidity::Refetch, help_heading = "IMAP")]
    pub on_uidvalidity_change: OnUidvalidity,

    /// Read a Maildir (cur/ and new/) instead of IMAP.
    #[arg(long, value_name = "DIR", help_heading = "Local mail")]
    pub maildir: Option<PathBuf>,
    /// Read an mbox file instead of IMAP.
    #[arg(long, value_name = "FILE", help_heading = "Local mail")]
    pub mbox: Option<PathBuf>,
    /// Read these .eml files instead of IMAP.
    #[arg(long, value_name = "FILE", num_args = 1.., help_heading = "Local mail")]
    pub eml: Vec<PathBuf>,

    /// Messages whose Date header is on or after DATE (YYYY-MM-DD; IMAP SENTSINCE).
    #[arg(long, value_name = "DATE", help_heading = "Selection")]
    pub since: Option<jiff::civil::Date>,
    /// Messages whose Date header is before DATE (YYYY-MM-DD; IMAP SENTBEFORE).
    #[arg(long, value_name = "DATE", help_heading = "Selection")]
    pub before: Option<jiff::civil::Date>,
    /// Messages whose From contains TEXT.
    #[arg(long, value_name = "TEXT", help_heading = "Selection")]
    pub from: Option<String>,
    /// Messages whose To contains TEXT.
    #[arg(long, value_name = "TEXT", help_heading = "Selection")]
    pub to: Option<String>,
    /// Messages whose Subject contains TEXT.
    #[arg(long, value_name = "TEXT", help_heading = "Selection")]
    pub subject: Option<String>,
    /// Only messages not yet seen.
    #[arg(long, help_heading = "Selection")]
    pub unseen: bool,
    /// Messages with header NAME containing VALUE (repeatable).
    #[arg(long, value_name = "NAME:VALUE", help_heading = "Selection")]
    pub header: Vec<String>,
    /// Attachments whose decoded file name matches GLOB (case-insensitive; repeatable).
    #[arg(long, value_name = "GLOB", help_heading = "Selection")]
    pub attachment: Vec<String>,
    /// Attachments of this content type (text/csv, or application/* ; repeatable).
    #[arg(long, value_name = "TYPE", help_heading = "Selection")]
    pub content_type: Vec<String>,
    /// Attachments of at least SIZE.
    #[arg(long, value_name = "SIZE", value_parser = etl_core::config::parse_size, help_heading = "Selection")]
    pub min_size: Option<usize>,
    /// Attachments of at most SIZE.
    #[arg(long, value_name = "SIZE", value_parser = etl_core::config::parse_size, help_heading = "Selection")]
    pub max_size: Option<usize>,
    /// Also take inline parts that have a file name.
    #[arg(long, help_heading = "Selection")]
    pub include_inline: bool,
    /// Skip (with a warning) messages larger than SIZE.
    #[arg(long, value_name = "SIZE", default_value = "50MB", value_parser = etl_core::config::parse_size, help_heading = "Selection")]
    pub max_message_bytes: usize,

    /// Where attachments are stored.
    #[arg(long, value_name = "DIR", env = "ETL_OUT_DIR")]
    pub out_dir: Option<PathBuf>,
    /// The state file of the watermarks (see etl-checkpoint).
    #[arg(long, value_name = "FILE", env = "ETL_STATE")]
    pub state: Option<PathBuf>,

    /// Shared flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

etl_core::command_glue!(Cli);

/// Attachment filters.
#[derive(Debug)]
struct Filter {
    globs: Vec<GlobMatcher>,
    types: Vec<String>,
    min: Option<usize>,
    max: Option<usize>,
}

impl Filter {
    fn new(cli: &Cli) -> Result<Self> {
        let globs = cli
            .attachment
            .iter()
            .map(|g| {
                globset::GlobBuilder::new(g)
                    .case_insensitive(true)
                    .literal_separator(false)
                    .build()
                    .map(|g: Glob| g.compile_matcher())
                    .map_err(|e| Error::usage(format!("--attachment {g:?}: {e}")))
            })
            .collect::<Result<_>>()?;
        Ok(Filter {
            globs,
            types: cli
                .content_type
                .iter()
                .map(|t| t.to_ascii_lowercase())
                .collect(),
            min: cli.min_size,
            max: cli.max_size,
        })
    }

    fn keeps(&self, name: &str, a: &mime::Attachment) -> bool {
        (self.globs.is_empty() || self.globs.iter().any(|g| g.is_match(name)))
            && (self.types.is_empty()
                || self.types.iter().any(|t| match t.strip_suffix("/*") {
                    Some(major) => a.content_type.split('/').next() == Some(major),
                    None => *t == a.content_type,
                }))
            && self.min.is_none_or(|m| a.data.len() >= m)
            && self.max.is_none_or(|m| a.data.len() <= m)
    }
}

/// Where a message came from, for the manifest.
#[derive(Debug, Clone)]
pub struct Origin {
    pub mailbox: String,
    pub uidvalidity: Option<u32>,
    pub uid: Option<u32>,
    /// How logs name the message.
    pub label: String,
}

/// What a run counted.
#[derive(Debug, Default)]
pub struct Counts {
    pub messages_seen: u64,
    pub messages_with_attachments: u64,
    pub attachments_stored: u64,
    pub attachments_present: u64,
    pub bytes: u64,
    pub rejected: u64,
    pub skipped: u64,
    /// Messages flagged \Seen by committed actions applied in this run.
    pub marked_seen: u64,
    /// Messages moved by committed actions applied in this run.
    pub moved: u64,
}

/// The shared part of every source: parse, filter, store, print.
pub struct Sink<'a> {
    out_dir: PathBuf,
    filter: Filter,
    include_inline: bool,
    pub max_message_bytes: usize,
    pub counts: Counts,
    run: &'a mut Run,
    stdout: std::io::StdoutLock<'static>,
}

impl std::fmt::Debug for Sink<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("out_dir", &self.out_dir)
            .finish_non_exhaustive()
    }
}

impl Sink<'_> {
    /// One message: its attachments stored and printed. Returns whether the
    /// message had attachments that were kept. A malformed message is a
    /// reject (the run goes on within --max-rejects).
    pub fn message(&mut self, raw: &[u8], origin: &Origin) -> Result<bool> {
        self.counts.messages_seen += 1;
        self.run.records_in += 1;
        // The progress line (a terminal, not --quiet): messages and bytes.
        self.run.progress.advance(1, raw.len() as u64);
        let (env, atts) = match mime::attachments(raw, self.include_inline) {
            Ok(x) => x,
            Err(mime::Malformed(e)) => {
                events::malformed(&origin.mailbox, &origin.label, &e);
                self.counts.rejected += 1;
                let reject = etl_core::Reject {
                    line: u64::from(origin.uid.unwrap_or(0)),
                    error: format!(
                        "{} message {}: not readable as MIME: {e}",
                        origin.mailbox, origin.label
                    ),
                    input: etl_core::reader::RejectInput::Raw(
                        String::from_utf8_lossy(&raw[..raw.len().min(4096)]).into_owned(),
                    ),
                    source: Some(origin.mailbox.clone()),
                };
                self.run.reject(&reject)?;
                return Ok(false);
            }
        };
        let mut kept = false;
        for (i, a) in atts.iter().enumerate() {
            let name = mime::safe_filename(a.filename.as_deref(), i + 1, &a.content_type);
            if !self.filter.keeps(a.filename.as_deref().unwrap_or(&name), a) {
                continue;
            }
            kept = true;
            let stored = store::store(&self.out_dir, &name, &a.data).map_err(|e| {
                Error::new(Exit::CantCreate, format!("{}: {e}", self.out_dir.display()))
            })?;
            if stored.new {
                self.counts.attachments_stored += 1;
            } else {
                self.counts.attachments_present += 1;
            }
            self.counts.bytes += a.data.len() as u64;
            let line = json!({
                "path": stored.path.to_string_lossy(),
                "filename": a.filename.clone().unwrap_or(name),
                "content_type": a.content_type,
                "charset": a.charset,
                "size": a.data.len(),
                "sha256": stored.sha256,
                "mailbox": origin.mailbox,
                "uidvalidity": origin.uidvalidity,
                "uid": origin.uid,
                "message_id": env.message_id,
                "from": env.from,
                "subject": env.subject,
                "date": env.date,
            });
            writeln!(self.stdout, "{line}").map_err(|e| Error::stdout(&e))?;
            self.run.records_out += 1;
        }
        self.stdout.flush().map_err(|e| Error::stdout(&e))?;
        if kept {
            self.counts.messages_with_attachments += 1;
        }
        Ok(kept)
    }
}

fn check_sources(cli: &Cli) -> Result<usize> {
    let n = usize::from(cli.host.is_some())
        + usize::from(cli.maildir.is_some())
        + usize::from(cli.mbox.is_some())
        + usize::from(!cli.eml.is_empty());
    if n == 0 {
        return Err(Error::missing_setting(
            "--host (or --maildir, --mbox, --eml)",
            "ETL_IMAP_HOST",
        ));
    }
    if n > 1 {
        return Err(Error::usage(
            "one source at a time: --host, --maildir, --mbox or --eml",
        ));
    }
    Ok(n)
}

/// Runs one invocation (by value: the signature etl_core::main calls).
#[allow(clippy::needless_pass_by_value)]
pub fn run(cli: Cli, run: &mut Run) -> Result<()> {
    check_sources(&cli)?;
    // --apply-committed stores nothing: it needs no --out-dir.
    let out_dir = cli
        .out_dir
        .clone()
        .or_else(|| cli.apply_committed.then(|| PathBuf::from(".")))
        .ok_or_else(|| Error::missing_setting("--out-dir", "ETL_OUT_DIR"))?;
    std::fs::create_dir_all(&out_dir).map_err(|e| {
        Error::new(
            Exit::CantCreate,
            format!("--out-dir {}: {e}", out_dir.display()),
        )
    })?;
    if cli.batch == 0 {
        return Err(Error::usage("--batch must be at least 1"));
    }
    let filter = Filter::new(&cli)?;
    let state = cli
        .state
        .as_ref()
        .map(|p| etl_core::state::StateFile::new(p.clone(), Duration::from_secs(30)));
    let run_id = run.run_id().to_owned();
    run.progress.set_unit("messages");
    let mut sink = Sink {
        out_dir,
        filter,
        include_inline: cli.include_inline,
        max_message_bytes: cli.max_message_bytes,
        counts: Counts::default(),
        run,
        stdout: std::io::stdout().lock(),
    };
    let result = if cli.host.is_some() {
        imap_source::fetch(&cli, &mut sink, state.as_ref(), &run_id)
    } else {
        local::fetch(&cli, &mut sink, state.as_ref(), &run_id)
    };
    let c = std::mem::take(&mut sink.counts);
    let run = sink.run;
    run.set_count("messages_seen", c.messages_seen);
    run.set_count("messages_with_attachments", c.messages_with_attachments);
    run.set_count("attachments_stored", c.attachments_stored);
    run.set_count("attachments_present", c.attachments_present);
    run.set_count("bytes", c.bytes);
    run.set_count("rejected", c.rejected);
    run.set_count("skipped", c.skipped);
    run.set_count("marked_seen", c.marked_seen);
    run.set_count("moved", c.moved);
    result
}

/// Records `value` as this run's pending watermark for `key`.
pub(crate) fn set_pending(
    state: &etl_core::state::StateFile,
    run_id: &str,
    key: &str,
    value: &J,
) -> Result<()> {
    set_pending_kind(state, run_id, key, value, "mail")
}

/// Records `value` as this run's pending value of `key`, of type `kind`
/// (`mail`: a watermark; `mail-actions`: mailbox changes to apply once the
/// run is committed).
pub(crate) fn set_pending_kind(
    state: &etl_core::state::StateFile,
    run_id: &str,
    key: &str,
    value: &J,
    kind: &str,
) -> Result<()> {
    let v =
        etl_core::Value::parse(&value.to_string()).map_err(|e| Error::internal(e.to_string()))?;
    state.update(|st| {
        st.set_pending(
            run_id,
            key,
            etl_core::state::Entry::new(v, Some(kind), Some(run_id)),
        );
        Ok(((), true))
    })
}

/// The committed watermark of `key`, as JSON (none without --state).
pub(crate) fn committed(
    state: Option<&etl_core::state::StateFile>,
    key: &str,
) -> Result<Option<J>> {
    let Some(state) = state else { return Ok(None) };
    let st = state.load()?;
    Ok(st
        .committed
        .get(key)
        .and_then(|e| serde_json::from_str(&e.value.to_json()).ok()))
}

/// Reads a secret: the file's first line, or the command's first output line.
pub(crate) fn secret(
    file: Option<&Path>,
    command: Option<&str>,
    env: &str,
    what: &str,
) -> Result<String> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f).map_err(|e| {
            Error::new(
                Exit::Config,
                format!("{}: cannot read the {what}: {e}", f.display()),
            )
        })?;
        return Ok(text.lines().next().unwrap_or("").to_owned());
    }
    if let Some(cmd) = command {
        let out = std::process::Command::new("sh")
            .args(["-c", cmd])
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| Error::new(Exit::Config, format!("{what} command: {e}")))?;
        if !out.status.success() {
            return Err(Error::new(
                Exit::Config,
                format!("{what} command failed ({})", out.status),
            ));
        }
        return Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned());
    }
    std::env::var(env).map_err(|_| {
        Error::new(
            Exit::Config,
            format!("no {what}: set {env}, or --password-file / --password-command"),
        )
    })
}
