//! etl-sheets-emulator: a local Google Sheets API v4 and OAuth2 token
//! endpoint, faithful enough that a client which works against it works
//! against Google. The reference is Google's discovery document
//! (`sheets.v4.json`); where behaviour is not in it, the choices are written
//! down in this crate's README.md.
//!
//! - [`a1`]: A1 notation; [`model`]: sheets, cells, input and rendering;
//!   [`formula`]: a small formula evaluator; [`values`]: the values API;
//!   [`book`]: create/get/batchUpdate; [`fields`]: partial responses;
//!   [`auth`]: the token endpoint; [`server`]: HTTP, quotas, faults, logs;
//!   [`keygen`]: credentials files.

pub mod a1;
pub mod auth;
pub mod book;
pub mod error;
mod events;
pub mod fields;
pub mod format;
pub mod formula;
pub mod keygen;
pub mod model;
pub mod server;
pub mod values;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand};
use etl_core::config::parse_size;
use etl_core::{CommonArgs, Error, Exit, Result, Run};

const ABOUT: &str = "A local Google Sheets API v4 and OAuth2 token endpoint for offline tests";

const LONG_ABOUT: &str = "\
A local Google Sheets API v4 and OAuth2 token endpoint for offline tests.

It answers the same REST paths, query parameters, JSON shapes, status codes and
error bodies as sheets.googleapis.com (spreadsheets create/get/batchUpdate, values
get/batchGet/update/batchUpdate/append/clear/batchClear), and Google's OAuth2
JWT-bearer and refresh-token grants at /token. A client that works against it
works against Google: point its API base URL at the printed address and its
credentials' token_uri at ADDRESS/token (keygen writes such a file).

The first line on stdout is the bound address (http://127.0.0.1:PORT). State
lives in memory and, with --state, in a file rewritten atomically after every
change. SIGTERM or SIGINT stops it cleanly (exit 0).

As Google: a new sheet is 1000 rows x 26 columns; writing past the grid fails
with \"exceeds grid limits\" while append grows it; 10,000,000 cells per
spreadsheet; 50,000 characters per cell; 60 read and 60 write requests per
minute per user (429 RESOURCE_EXHAUSTED beyond); no token: 401 UNAUTHENTICATED;
a spreadsheet the account may not use: 403 PERMISSION_DENIED.

Admin endpoints, without auth, under a prefix Google does not use:
  POST /_emulator/spreadsheets: create one with a given id and owner
    (JSON: spreadsheetId, owner, title, writers, readers, sheets)
  GET /_emulator/spreadsheets: list them
  GET /_emulator/spreadsheets/ID[/sheets/TITLE]: dump stored values and text
  POST /_emulator/spreadsheets/ID/share: add writers and readers
  POST /_emulator/reset: drop spreadsheets, tokens, quota counters (keys stay)
  POST /_emulator/tokens/expire: expire every access token
  POST /_emulator/keys, /_emulator/authorized-users: register credentials
  GET /_emulator/health

Fidelity choices where Google's documents are silent are listed in
crates/etl-sheets-emulator/README.md.";

const EXAMPLES: &str = "\
Examples:
  # Start it, make a key, create a spreadsheet the key's account owns
  etl-sheets-emulator --listen 127.0.0.1:0 --request-log requests.ndjson > addr.txt &
  until [ -s addr.txt ]; do sleep 0.1; done; url=$(head -1 addr.txt)
  etl-sheets-emulator keygen --out key.json --endpoint \"$url\"
  curl -s -X POST \"$url/_emulator/spreadsheets\" \\
    -d '{\"spreadsheetId\":\"demo\",\"owner\":\"etl-pipeline@etlkit-emulator.iam.gserviceaccount.com\"}'
  GOOGLE_APPLICATION_CREDENTIALS=key.json etl-push-sheets --api-url \"$url\" --spreadsheet demo ...

  # Flaky and slow, reproducibly: one request in five fails with 503
  etl-sheets-emulator --fail-rate 0.2 --fail-status 503 --latency-ms 50 --seed 7

  # Look at what a client did
  jq -c '{method, path, status, cells}' requests.ndjson";

/// The `etl-sheets-emulator` command line.
#[derive(Debug, Parser)]
#[command(name = "etl-sheets-emulator", version, about = ABOUT, long_about = LONG_ABOUT,
    after_long_help = EXAMPLES, args_conflicts_with_subcommands = true,
    disable_help_subcommand = true)]
pub struct Cli {
    /// `keygen`, or nothing to serve.
    #[command(subcommand)]
    pub command: Option<Cmd>,
    /// Serving options.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Shared flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

etl_core::command_glue!(Cli);

/// Options of the server.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port. The bound address is stdout's first line.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:0",
        env = "ETL_SHEETS_EMULATOR_LISTEN"
    )]
    pub listen: SocketAddr,
    /// Keep spreadsheets, credentials and tokens in FILE (loaded at start, rewritten atomically after each change).
    #[arg(long, value_name = "FILE", env = "ETL_SHEETS_EMULATOR_STATE")]
    pub state: Option<PathBuf>,
    /// Read requests allowed per minute per user (Google: 60); 0 = unlimited.
    #[arg(long, value_name = "N", default_value_t = 60)]
    pub read_quota: u32,
    /// Write requests allowed per minute per user (Google: 60); 0 = unlimited.
    #[arg(long, value_name = "N", default_value_t = 60)]
    pub write_quota: u32,
    /// Fail this fraction (0 to 1) of Sheets API requests with --fail-status, before they change anything.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub fail_rate: f64,
    /// The status of injected failures: 429 (RESOURCE_EXHAUSTED), 500 (INTERNAL) or 503 (UNAVAILABLE).
    #[arg(long, value_name = "STATUS", default_value_t = 503,
        value_parser = clap::builder::PossibleValuesParser::new(["429", "500", "503"]).map(|s| s.parse::<u16>().unwrap_or(503)))]
    pub fail_status: u16,
    /// Delay every Sheets API request by N milliseconds.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub latency_ms: u64,
    /// Seed the random choices (failures, ids, tokens) for reproducible runs.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Append one JSON line per request to FILE: ts, method, path, query, status, kind, account, cells, bytes, ms, fault, error.
    #[arg(long, value_name = "FILE")]
    pub request_log: Option<PathBuf>,
    /// Largest request body; larger ones get Google's 400 "Request payload size exceeds the limit".
    #[arg(long, value_name = "SIZE", default_value = "10MiB", value_parser = parse_size)]
    pub max_body: usize,
    /// Lifetime of issued access tokens in seconds (Google: 3599).
    #[arg(long, value_name = "SECONDS", default_value_t = 3599)]
    pub token_lifetime: i64,
    /// Send `Retry-After: SECONDS` with 429 and 503 answers (Google usually sends none).
    #[arg(long, value_name = "SECONDS")]
    pub retry_after: Option<u64>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Write a credentials file whose token_uri is the emulator's, and register it with the running emulator.
    #[command(after_long_help = "Examples:
  etl-sheets-emulator keygen --out key.json --endpoint http://127.0.0.1:8085
  etl-sheets-emulator keygen --out dwd.json --endpoint \"$url\" --domain-wide-delegation
  etl-sheets-emulator keygen --out adc.json --endpoint \"$url\" --authorized-user --email me@example.com

A service-account key is RSA 2048 in Google's JSON format (type, project_id,
private_key_id, private_key, client_email, client_id, token_uri, ...). The
emulator must be running: keygen registers the key's public half with it
(exit 69 when it cannot).")]
    Keygen(KeygenArgs),
}

/// `keygen` options.
#[derive(Debug, Clone, Args)]
pub struct KeygenArgs {
    /// Where to write the credentials JSON (mode 0600).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The running emulator's address, as it printed it (http://127.0.0.1:PORT).
    #[arg(long, value_name = "URL", env = "ETL_SHEETS_EMULATOR_URL")]
    pub endpoint: String,
    /// The account: the service account's client_email, or the user of --authorized-user.
    #[arg(
        long,
        value_name = "EMAIL",
        default_value = "etl-pipeline@etlkit-emulator.iam.gserviceaccount.com"
    )]
    pub email: String,
    /// Allow the key to act for other users (the JWT's `sub`, as with Workspace domain-wide delegation).
    #[arg(long, conflicts_with = "authorized_user")]
    pub domain_wide_delegation: bool,
    /// Write authorized-user credentials (client_id, client_secret, refresh_token) instead of a service-account key.
    #[arg(long)]
    pub authorized_user: bool,
}

/// Runs one invocation.
pub fn run(cli: Cli, run: &mut Run) -> Result<()> {
    match cli.command {
        Some(Cmd::Keygen(k)) => {
            if !k.endpoint.starts_with("http://") && !k.endpoint.starts_with("https://") {
                return Err(Error::usage(format!(
                    "--endpoint {}: expected the emulator's URL, e.g. http://127.0.0.1:8085",
                    k.endpoint
                )));
            }
            if k.authorized_user {
                keygen::authorized_user(&k.out, &k.endpoint, &k.email)
            } else {
                keygen::service_account(&k.out, &k.endpoint, &k.email, k.domain_wide_delegation)
            }
        }
        None => serve(&cli.serve, run),
    }
}

fn serve(a: &ServeArgs, run: &mut Run) -> Result<()> {
    if !(0.0..=1.0).contains(&a.fail_rate) {
        return Err(Error::usage("--fail-rate must be between 0 and 1"));
    }
    if a.token_lifetime <= 0 {
        return Err(Error::usage("--token-lifetime must be at least 1 second"));
    }
    let cfg = server::Config {
        state: a.state.clone(),
        read_quota: a.read_quota,
        write_quota: a.write_quota,
        fail_rate: a.fail_rate,
        fail_status: a.fail_status,
        latency: Duration::from_millis(a.latency_ms),
        seed: a.seed,
        request_log: a.request_log.clone(),
        max_body_bytes: a.max_body,
        token_lifetime: a.token_lifetime,
        retry_after: a.retry_after,
    };
    let app = Arc::new(server::Emulator::new(cfg).map_err(Error::config)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("tokio runtime: {e}")))?;
    let state = a.state.clone();
    let served = rt.block_on(server::serve(app.clone(), a.listen, |addr| {
        let url = format!("http://{addr}");
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{url}");
        let _ = out.flush();
        events::started(&url, state.as_deref());
    }));
    served.map_err(|e| {
        Error::new(
            Exit::CantCreate,
            format!("cannot listen on {}: {e}", a.listen),
        )
    })?;
    let n = app.requests();
    run.set_count("requests", n);
    events::stopped(n);
    Ok(())
}
