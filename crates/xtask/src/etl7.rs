//! `etl(7)`: the contract every etlkit command keeps, in one page.
//!
//! The prose is here; the command list, the exit-status table and the
//! environment variables are generated from the commands' clap definitions
//! and `etl_core::Exit`, so they cannot drift from the code.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use etl_core::Exit;

use crate::escape;

const BODY: &str = r#".SH "RECORD STREAM"
stdout carries data only; stderr carries logs only. A record is one JSON object
per line, terminated by a newline, UTF\-8, never pretty\-printed. Key order is
kept from input to output (the column order of the source file). Numbers pass
through every stage textually unchanged: \fB0.1\fR, \fB1.0\fR,
\fB12345678901234567890\fR and \fB1e400\fR come out as they went in. Values
from etl\-parse are strings unless inference is asked for, so \fB00123\fR stays
\fB"00123"\fR.
.PP
Readers accept a UTF\-8 byte order mark at the start of the input and CRLF line
ends, and skip blank lines. A line that is not a JSON object (invalid JSON, a
scalar, an array, invalid UTF\-8) or that is longer than \fB\-\-max\-line\-bytes\fR
(default 16 MiB) is a reject carrying its line number and the raw line. A
reader never holds more than one line in memory.
.PP
Provenance fields start with \fB_\fR and are added only when asked
(\fB_source\fR, \fB_row\fR, \fB_sheet\fR, \fB_member\fR, \fB_message_id\fR).
Users' own columns that start with \fB_\fR pass through untouched.
.SH "MANIFEST STREAM"
etl\-fetch\-mail writes one JSON object per fetched file for
\fBetl\-parse \-\-manifest\fR: \fBpath\fR, \fBfilename\fR, \fBcontent_type\fR,
\fBsize\fR, \fBsha256\fR, and the message's \fBmailbox\fR, \fBuidvalidity\fR,
\fBuid\fR, \fBmessage_id\fR, \fBfrom\fR, \fBsubject\fR, \fBdate\fR.
.SH LOGS
Log lines go to stderr: JSON objects when stderr is not a terminal, short text
lines when it is (\fB\-\-log\-format json|text\fR overrides). Every JSON line
starts with \fBts\fR, \fBlevel\fR, \fBcmd\fR, \fBrun_id\fR, \fBmsg\fR, followed
by the event's own fields:
.PP
.nf
{"ts":"2026\-11\-21T06:00:00.123Z","level":"info","cmd":"etl\-checkpoint","run_id":"...","msg":"..."}
.fi
.PP
ERROR means data loss or that an operator must act; WARN means something was
skipped, repaired or retried; INFO is one line per phase, never per record.
Secrets never appear in logs: the credentials and query values of every URL in
a message, a field, a summary or a reject's error are masked
(\fBhttps://user:***@host/path?token=***\fR), whichever library wrote the
message. \fBETL_LOG\fR sets the level. \fBrun_id\fR comes
from \fBETL_RUN_ID\fR; where it is unset each process makes a UUIDv7. The cron
wrapper sets one per pipeline run so the lines of every stage correlate.
.SH SUMMARY
Every command ends with one \fBsummary\fR log event, and \fB\-\-summary FILE\fR
writes the same object to FILE atomically: \fBcmd\fR, \fBrun_id\fR,
\fBstatus\fR (\fBok\fR or \fBfailed\fR), \fBduration_ms\fR, \fBrecords_in\fR,
\fBrecords_out\fR, \fBrecords_rejected\fR, then the command's own counts.
.SH REJECTS
A record that cannot be processed is a reject. With \fB\-\-rejects FILE\fR it is
appended there as one JSON object:
.PP
.nf
{"line":3,"error":"field id: missing","stage":"etl\-checkpoint filter","input":{...},"run_id":"..."}
.fi
.PP
\fBinput\fR is the record when it was a valid JSON object, else the raw line as
a string (with \fBinput_base64\fR holding the exact bytes when they were not
valid UTF\-8, and \fBinput_truncated\fR/\fBinput_bytes\fR for over\-long lines);
\fBsource\fR names the input file when it was not stdin. \fB\-\-max\-rejects N\fR
(default 0) is how many rejects a run tolerates: one more and it fails with
exit 65, after flushing its output and the rejects written so far. No input is
ever dropped silently: without \fB\-\-rejects\fR every reject is logged.
.SH "STATE: TWO\-PHASE CHECKPOINTS"
The state file is versioned JSON:
.PP
.nf
{"version":1,
 "committed":{"KEY":{"value":...,"type":"timestamp","updated":"...","run_id":"..."}},
 "pending":{"RUN_ID":{"created":"...","values":{"KEY":{"value":...}}}}}
.fi
.PP
A stage that advances a watermark (\fBetl\-checkpoint filter\fR, later
\fBetl\-fetch\-mail\fR) writes it as \fIpending\fR, tagged with the run id.
\fBetl\-checkpoint commit\fR promotes one run's pending values after the whole
pipeline succeeded; \fBdiscard\fR drops them. A failed run leaves the committed
state as it was, so the next run fetches the same input again, and idempotent
loads (upsert by key) make that harmless.
.PP
A commit never moves a watermark back. Values compare by their type: numbers
exactly, timestamps by instant, strings bytewise, IMAP UIDs per UIDVALIDITY,
Maildir messages by (time, name), an mbox by offset. When an older run is
committed after a newer one, the greater value stays and a warning says so;
\fBetl\-checkpoint set\fR moves a watermark back on purpose.
.PP
Side effects on a source happen only for committed runs: \fBetl\-fetch\-mail
\-\-mark\-seen\fR and \fB\-\-move\-to\fR record their mailbox changes as pending
values of the run, and the next \fBetl\-fetch\-mail\fR with that state (or
\fB\-\-apply\-committed\fR) applies the committed ones. A failed run leaves its
messages where they were.
.PP
Every read\-modify\-write holds an exclusive lock (flock) on \fISTATE\fB.lock\fR;
a held lock is waited for up to \fB\-\-lock\-timeout\fR seconds (default 0), then
the command exits 75. Writes go to \fISTATE\fB.new\fR, which is fsynced and
renamed over the state file, and the directory is fsynced: a crash at any
instant leaves either the old or the new state, never a torn file. A state file
that does not parse is never overwritten: the command exits 78 naming it.
.SH CONFIGURATION
Flags come first. Every flag a cron script would set also reads an environment
variable (listed below and in each command's \fB\-\-help\fR). A \fB.env\fR file
in the working directory (or \fB\-\-env\-file FILE\fR) is read without
overriding the environment. Secrets come from the environment, a file
(\fB\-\-*\-file\fR) or a command (\fB\-\-*\-command\fR), never only from argv.
A missing required setting fails before any work starts, with exit 78 and a
message naming the flag and its variable.
.SH SIGNALS
A closed stdout (\fB| head\fR) ends a command quietly with exit 0.
SIGINT and SIGTERM stop a command without corrupting state files, staging files
or the database: every file etlkit replaces is replaced atomically.
"#;

const EXAMPLE: &str = r#"set \-o pipefail
export ETL_RUN_ID=$(date \-u +%Y%m%dT%H%M%SZ)
etl\-fetch\-mail \-\-mailbox INBOX \-\-from 'reports@client.example' \-\-state state.json \-\-out\-dir staging/ \e
  | etl\-parse \-\-manifest \e
  | etl\-transform \-\-spec orders.toml \-\-rejects rejects.ndjson \e
  | etl\-merge \-\-db warehouse.duckdb \-\-table orders \-\-key order_id \-\-emit table \e
  | etl\-push\-sheets \-\-spreadsheet "$SHEET_ID" \-\-sheet Orders \-\-mode replace \e
  && etl\-checkpoint commit \-\-state state.json"#;

/// Renders the page.
pub fn render(commands: &[clap::Command]) -> String {
    let version = env!("CARGO_PKG_VERSION");
    let mut s = format!(
        ".TH ETL 7 \"\" \"etlkit {version}\" \"etlkit manual\"\n.SH NAME\netl \\- the etlkit stream contract: records, logs, rejects, exit codes, configuration, state\n"
    );
    s.push_str(
        ".SH DESCRIPTION\netlkit is a set of small commands that exchange NDJSON over stdin and stdout, \
so that a shell script composes them into a memory\\-bounded streaming pipeline. Every \
command keeps the contract described here. The commands:\n",
    );
    for c in commands {
        let _ = write!(
            s,
            ".TP\n\\fB{}\\fR(1)\n{}\n",
            escape(c.get_name()),
            escape(&c.get_about().map(ToString::to_string).unwrap_or_default())
        );
    }
    s.push_str(BODY);
    s.push_str(".SH \"EXIT STATUS\"\nThe same for every command (BSD sysexits):\n");
    for (e, what) in Exit::TABLE {
        let _ = write!(s, ".TP\n\\fB{}\\fR\n{}\n", e.code(), escape(what));
    }
    s.push_str(".SH ENVIRONMENT\n");
    for (var, (help, users)) in environment(commands) {
        let _ = write!(
            s,
            ".TP\n\\fB{var}\\fR\n{} ({})\n",
            escape(&help),
            escape(&users.join(", "))
        );
    }
    s.push_str(".SH FILES\n.TP\n\\fB.env\\fR\nKEY=VALUE settings in the working directory, read without overriding the environment.\n");
    s.push_str(".TP\n\\fISTATE\\fB.lock\\fR, \\fISTATE\\fB.new\\fR\nThe lock and the temporary file beside a state file.\n");
    let _ = write!(s, ".SH EXAMPLES\nThe daily job (see etlkit's README for which commands exist today):\n.PP\n.nf\n{EXAMPLE}\n.fi\n");
    s.push_str(".SH \"SEE ALSO\"\n");
    let refs: Vec<String> = commands
        .iter()
        .map(|c| format!("{}(1)", escape(c.get_name())))
        .collect();
    let _ = writeln!(s, "{}, jq(1)", refs.join(", "));
    s
}

/// Collects the `env` of every argument of `cmd` and its subcommands.
fn walk(cmd: &clap::Command, path: &str, vars: &mut BTreeMap<String, (String, Vec<String>)>) {
    // A variable read by every subcommand is listed under the command alone.
    let subs: Vec<&clap::Command> = cmd.get_subcommands().collect();
    for a in cmd.get_arguments() {
        if let Some(env) = a.get_env() {
            let var = env.to_string_lossy().into_owned();
            let flag = a.get_long().map(|l| format!("--{l}")).unwrap_or_default();
            let help = a.get_help().map(ToString::to_string).unwrap_or_default();
            let entry = vars
                .entry(var)
                .or_insert_with(|| (format!("Default of {flag}: {help}"), Vec::new()));
            let who = if a.is_global_set() {
                "all commands".to_owned()
            } else {
                path.to_owned()
            };
            if !entry.1.contains(&who) {
                entry.1.push(who);
            }
        }
    }
    for sub in &subs {
        walk(sub, &format!("{path} {}", sub.get_name()), vars);
    }
    if subs.is_empty() {
        return;
    }
    for (_, users) in vars.values_mut() {
        let all = subs
            .iter()
            .all(|s| users.contains(&format!("{path} {}", s.get_name())));
        if all {
            users.retain(|u| !u.starts_with(&format!("{path} ")));
            users.push(path.to_owned());
        }
    }
}

/// Every environment variable: the built-in ones plus each flag's `env`.
fn environment(commands: &[clap::Command]) -> BTreeMap<String, (String, Vec<String>)> {
    let mut vars: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    vars.insert(
        "ETL_LOG".into(),
        (
            "Log level: error, warn, info (default) or debug.".into(),
            vec!["all commands".into()],
        ),
    );
    vars.insert(
        "ETL_RUN_ID".into(),
        (
            "The run id shared by the stages of one pipeline run; tags pending state.".into(),
            vec!["all commands".into()],
        ),
    );
    for c in commands {
        walk(c, c.get_name(), &mut vars);
    }
    for (_, users) in vars.values_mut() {
        if users.iter().any(|u| u == "all commands") {
            users.retain(|u| u == "all commands");
        }
        // A variable several subcommands of one command read is named once.
        users.dedup();
    }
    vars
}
