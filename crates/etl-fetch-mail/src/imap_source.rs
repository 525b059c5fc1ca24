//! The IMAP source: TLS (rustls, certificates verified), login, UID SEARCH
//! for what is new, UID FETCH BODY.PEEK[] in batches, reconnects with
//! backoff that resume after the last delivered UID.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use etl_core::state::StateFile;
use etl_core::{Error, Exit, Result};
use serde_json::json;

use crate::{
    committed, events, secret, set_pending, set_pending_kind, Auth, Cli, OnUidvalidity, Origin,
    Sink, Tls,
};

/// A plain or TLS connection.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stream::Plain(_) => "Stream::Plain",
            Stream::Tls(_) => "Stream::Tls",
        })
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

type Session = imap::Session<Stream>;

/// Why a step failed: worth a reconnect, or final.
enum Fail {
    Connection(String),
    Final(Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Final(e)
    }
}

fn io_fail(e: &imap::Error) -> Fail {
    match e {
        imap::Error::Io(_) | imap::Error::ConnectionLost => Fail::Connection(e.to_string()),
        other => Fail::Final(Error::new(Exit::Unavailable, format!("IMAP: {other}"))),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn tls_config(cli: &Cli) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    match &cli.ca_file {
        Some(path) => {
            use rustls::pki_types::pem::PemObject;
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| Error::config(format!("--ca-file {}: {e}", path.display())))?;
            for c in certs {
                let c =
                    c.map_err(|e| Error::config(format!("--ca-file {}: {e}", path.display())))?;
                roots
                    .add(c)
                    .map_err(|e| Error::config(format!("--ca-file {}: {e}", path.display())))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

fn tls_error(host: &str, e: &std::io::Error) -> Fail {
    let text = e.to_string();
    if text.contains("certificate")
        || text.contains("UnknownIssuer")
        || text.contains("NotValidForName")
    {
        Fail::Final(Error::config(format!(
            "TLS with {host}: {text} (the server's certificate is not trusted: --ca-file for a private CA)"
        )))
    } else {
        Fail::Connection(format!("TLS with {host}: {text}"))
    }
}

/// Reads one CRLF-terminated line byte by byte (nothing read ahead: TLS
/// starts right after the STARTTLS reply).
fn read_line(s: &mut TcpStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        if s.read(&mut b)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        line.push(b[0]);
        if line.ends_with(b"\r\n") || line.len() > 8192 {
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
    }
}

fn connect(cli: &Cli, password: &str) -> std::result::Result<Session, Fail> {
    let host = cli.host.clone().unwrap_or_default();
    let port = cli
        .port
        .unwrap_or(if cli.tls == Tls::Implicit { 993 } else { 143 });
    let timeout = Duration::from_secs(cli.timeout.max(1));
    let addrs: Vec<_> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| Fail::Connection(format!("{host}:{port}: {e}")))?
        .collect();
    let mut last = String::from("no address");
    let mut tcp = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = format!("{host}:{port}: {e}"),
        }
    }
    let mut tcp = tcp.ok_or(Fail::Connection(last))?;
    let conn_err = |e: std::io::Error| Fail::Connection(format!("{host}:{port}: {e}"));
    tcp.set_read_timeout(Some(timeout)).map_err(conn_err)?;
    tcp.set_write_timeout(Some(timeout)).map_err(conn_err)?;
    let wrap = |tcp: TcpStream| -> std::result::Result<Stream, Fail> {
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| Fail::Final(Error::usage(format!("--host {host}: {e}"))))?;
        let conn = rustls::ClientConnection::new(tls_config(cli)?, name)
            .map_err(|e| Fail::Final(Error::internal(format!("TLS: {e}"))))?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        while s.conn.is_handshaking() {
            s.conn
                .complete_io(&mut s.sock)
                .map_err(|e| tls_error(&host, &e))?;
        }
        Ok(Stream::Tls(Box::new(s)))
    };
    let mut client = match cli.tls {
        Tls::Implicit => {
            let mut c = imap::Client::new(wrap(tcp)?);
            c.read_greeting().map_err(|e| io_fail(&e))?;
            c
        }
        Tls::None => {
            let mut c = imap::Client::new(Stream::Plain(tcp));
            c.read_greeting().map_err(|e| io_fail(&e))?;
            c
        }
        Tls::Starttls => {
            read_line(&mut tcp).map_err(conn_err)?;
            tcp.write_all(b"s0 STARTTLS\r\n").map_err(conn_err)?;
            loop {
                let l = read_line(&mut tcp).map_err(conn_err)?;
                if l.starts_with("s0 OK") {
                    break;
                }
                if l.starts_with("s0 ") {
                    return Err(Fail::Final(Error::new(
                        Exit::Unavailable,
                        format!("{host}: STARTTLS refused: {}", l.trim()),
                    )));
                }
            }
            imap::Client::new(wrap(tcp)?)
        }
    };
    let _ = &mut client;
    let user = cli.user.clone().unwrap_or_default();
    let login = match cli.auth {
        Auth::Login => client.login(&user, password).map_err(|(e, _)| e),
        Auth::Plain => client
            .authenticate("PLAIN", &Sasl(format!("\0{user}\0{password}")))
            .map_err(|(e, _)| e),
        Auth::Xoauth2 => client
            .authenticate(
                "XOAUTH2",
                &Sasl(format!("user={user}\x01auth=Bearer {password}\x01\x01")),
            )
            .map_err(|(e, _)| e),
    };
    login.map_err(|e| match e {
        imap::Error::No(text) | imap::Error::Bad(text) => Fail::Final(Error::new(
            Exit::NoPerm,
            format!("IMAP login refused for {user} at {host}: {}", text.trim()),
        )),
        other => io_fail(&other),
    })
}

struct Sasl(String);

impl imap::Authenticator for Sasl {
    type Response = String;
    fn process(&self, _challenge: &[u8]) -> String {
        self.0.clone()
    }
}

/// IMAP SEARCH criteria from the selection flags.
fn criteria(cli: &Cli) -> Result<String> {
    let quote = |s: &str| -> Result<String> {
        if !s.is_ascii() || s.contains(['\r', '\n']) {
            return Err(Error::usage(format!(
                "{s:?}: IMAP search text must be ASCII on one line"
            )));
        }
        Ok(format!(
            "\"{}\"",
            s.replace('\\', "\\\\").replace('"', "\\\"")
        ))
    };
    let date = |d: jiff::civil::Date| {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        format!(
            "{}-{}-{}",
            d.day(),
            MONTHS[usize::try_from(d.month() - 1).unwrap_or(0)],
            d.year()
        )
    };
    let mut c = Vec::new();
    if let Some(d) = cli.since {
        c.push(format!("SENTSINCE {}", date(d)));
    }
    if let Some(d) = cli.before {
        c.push(format!("SENTBEFORE {}", date(d)));
    }
    if let Some(s) = &cli.from {
        c.push(format!("FROM {}", quote(s)?));
    }
    if let Some(s) = &cli.to {
        c.push(format!("TO {}", quote(s)?));
    }
    if let Some(s) = &cli.subject {
        c.push(format!("SUBJECT {}", quote(s)?));
    }
    if cli.unseen {
        c.push("UNSEEN".into());
    }
    for h in &cli.header {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| Error::usage(format!("--header {h:?}: expected NAME:VALUE")))?;
        c.push(format!(
            "HEADER {} {}",
            quote(name.trim())?,
            quote(value.trim())?
        ));
    }
    Ok(c.join(" "))
}

/// Fetches every mailbox.
#[allow(clippy::too_many_lines)] // credentials, committed actions, then each mailbox with reconnects and its pending state
pub fn fetch(
    cli: &Cli,
    sink: &mut Sink<'_>,
    state: Option<&StateFile>,
    run_id: &str,
) -> Result<()> {
    let host = cli.host.clone().unwrap_or_default();
    if cli.tls == Tls::None && !is_loopback(&host) {
        return Err(Error::usage(format!(
            "--tls none sends the password in clear: refused for {host} (only for a loopback address)"
        )));
    }
    let user = cli
        .user
        .clone()
        .ok_or_else(|| Error::missing_setting("--user", "ETL_IMAP_USER"))?;
    let password = match cli.auth {
        Auth::Xoauth2 => match &cli.oauth_credentials {
            Some(creds) => crate::oauth::token(creds, &user, &cli.oauth_scope)?,
            None => secret(
                None,
                cli.oauth_token_command.as_deref(),
                "ETL_IMAP_OAUTH_TOKEN",
                "OAuth token",
            )?,
        },
        _ => secret(
            cli.password_file.as_deref(),
            cli.password_command.as_deref(),
            "ETL_IMAP_PASSWORD",
            "password",
        )?,
    };
    let search = criteria(cli)?;
    if let Some(s) = state {
        apply_committed(
            cli,
            &password,
            s,
            &format!("imap-actions/{user}@{host}/"),
            sink,
        )?;
    }
    if cli.apply_committed {
        return Ok(());
    }
    for mailbox in &cli.mailbox {
        let key = format!("imap/{user}@{host}/{mailbox}");
        let prior = committed(state, &key)?;
        let mut done = Progress {
            uidvalidity: None,
            last_uid: 0,
            prior_validity: prior
                .as_ref()
                .and_then(|p| p["uidvalidity"].as_u64())
                .and_then(|v| u32::try_from(v).ok()),
            prior_uid: prior
                .as_ref()
                .and_then(|p| p["uid"].as_u64())
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0),
            started: false,
            acted: Vec::new(),
        };
        let mut attempt = 0u32;
        loop {
            let outcome = connect(cli, &password).and_then(|mut s| {
                let r = mailbox_pass(cli, &mut s, mailbox, &search, sink, &mut done);
                let _ = s.logout();
                r
            });
            match outcome {
                Ok(()) => break,
                Err(Fail::Final(e)) => return Err(e),
                Err(Fail::Connection(e)) => {
                    if attempt >= cli.max_retries {
                        return Err(Error::new(
                            Exit::Unavailable,
                            format!("IMAP {host}: {e} (gave up after {attempt} reconnects)"),
                        ));
                    }
                    // etl-core's one retry policy: full jitter up to the
                    // base doubling, at most 64 s.
                    let delay = etl_core::retry::Backoff {
                        base: Duration::from_millis(cli.retry_base_ms),
                        cap: Duration::from_secs(64),
                    }
                    .delay(attempt, None);
                    attempt += 1;
                    let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                    events::reconnecting(&e, attempt, ms);
                    std::thread::sleep(delay);
                }
            }
        }
        if let (Some(s), Some(v)) = (state, done.uidvalidity) {
            if done.last_uid > 0
                && (Some(v) != done.prior_validity || done.last_uid > done.prior_uid)
            {
                set_pending(
                    s,
                    run_id,
                    &key,
                    &json!({"uidvalidity": v, "uid": done.last_uid}),
                )?;
                events::pending(&key, done.last_uid);
            }
            if (cli.mark_seen || cli.move_to.is_some()) && !done.acted.is_empty() {
                // Applied by a later run, once this one is committed.
                let actions = format!("imap-actions/{user}@{host}/{mailbox}/{run_id}");
                set_pending_kind(
                    s,
                    run_id,
                    &actions,
                    &json!({
                        "mailbox": mailbox,
                        "uidvalidity": v,
                        "uids": uid_set(&done.acted),
                        "mark_seen": cli.mark_seen,
                        "move_to": cli.move_to,
                    }),
                    "mail-actions",
                )?;
                events::actions_pending(&actions, done.acted.len());
            }
        }
    }
    Ok(())
}

/// A UID set in IMAP's compact form (`1:3,7,9:10`), from sorted UIDs.
fn uid_set(uids: &[u32]) -> String {
    debug_assert!(uids.windows(2).all(|w| w[0] < w[1]));
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            let _ = write!(out, "{start}:{end}");
        }
        i += 1;
    }
    out
}

/// The UIDs of a set written by [`uid_set`] (`None`: not such a set).
fn uid_list(set: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for r in set.split(',').filter(|r| !r.is_empty()) {
        match r.split_once(':') {
            Some((a, b)) => out.extend(a.parse::<u32>().ok()?..=b.parse::<u32>().ok()?),
            None => out.push(r.parse().ok()?),
        }
    }
    Some(out)
}

/// Applies the committed mailbox actions (`--mark-seen`, `--move-to`) of
/// earlier runs of this account, then removes them from the state. An
/// action is applied only once its run was committed, so a failed pipeline
/// leaves its messages where they were. Applying twice is harmless (a UID
/// already moved is no longer in the mailbox): a crash between the change
/// and the state update costs nothing.
fn apply_committed(
    cli: &Cli,
    password: &str,
    state: &StateFile,
    prefix: &str,
    sink: &mut Sink<'_>,
) -> Result<()> {
    let st = state.load()?;
    let todo: Vec<(String, serde_json::Value)> = st
        .committed
        .iter()
        .filter(|(k, e)| k.starts_with(prefix) && e.kind.as_deref() == Some("mail-actions"))
        .filter_map(|(k, e)| Some((k.clone(), serde_json::from_str(&e.value.to_json()).ok()?)))
        .collect();
    if todo.is_empty() {
        return Ok(());
    }
    let host = cli.host.clone().unwrap_or_default();
    let mut s = connect(cli, password).map_err(|f| match f {
        Fail::Final(e) => e,
        Fail::Connection(e) => Error::new(
            Exit::Unavailable,
            format!("IMAP {host}: {e} (applying the committed mailbox actions)"),
        ),
    })?;
    let final_err = |e: imap::Error, what: &str| match e {
        imap::Error::No(t) | imap::Error::Bad(t) => {
            Error::new(Exit::Unavailable, format!("{what}: {}", t.trim()))
        }
        other => Error::new(Exit::Unavailable, format!("IMAP {host}: {what}: {other}")),
    };
    // Two committed runs may name the same message (a run that failed
    // after its fetch and was committed by hand): each is changed once.
    let mut applied = std::collections::HashSet::new();
    let mut finished = Vec::new();
    let outcome = (|| -> Result<()> {
        for (key, a) in todo {
            let mailbox = a["mailbox"].as_str().unwrap_or("INBOX");
            let uids: Vec<u32> = uid_list(a["uids"].as_str().unwrap_or(""))
                .unwrap_or_default()
                .into_iter()
                .filter(|u| applied.insert((mailbox.to_owned(), *u)))
                .collect();
            let set = &uid_set(&uids);
            let n = uids.len();
            let stored = a["uidvalidity"]
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0);
            let mb = s
                .select(mailbox)
                .map_err(|e| final_err(e, &format!("selecting {mailbox:?}")))?;
            let now = mb.uid_validity.unwrap_or(0);
            if now != stored {
                events::actions_dropped(mailbox, stored, now, n);
            } else if n > 0 {
                let mut done = Vec::new();
                if a["mark_seen"].as_bool() == Some(true) {
                    s.uid_store(set, "+FLAGS.SILENT (\\Seen)")
                        .map_err(|e| final_err(e, &format!("flagging {mailbox:?} \\Seen")))?;
                    sink.counts.marked_seen += n as u64;
                    done.push("marked seen".to_owned());
                }
                if let Some(dest) = a["move_to"].as_str() {
                    s.uid_mv(set, dest)
                        .map_err(|e| final_err(e, &format!("moving to {dest:?}")))?;
                    sink.counts.moved += n as u64;
                    done.push(format!("moved to {dest}"));
                }
                events::actions_applied(mailbox, n, &done.join(", "));
            }
            finished.push(key);
        }
        Ok(())
    })();
    let _ = s.logout();
    // One locked write for every action applied, also when a later one failed.
    state.update(|st| {
        let before = st.committed.len();
        for key in &finished {
            st.committed.remove(key);
        }
        Ok(((), st.committed.len() != before))
    })?;
    outcome
}

/// How far a mailbox got (kept across reconnects).
struct Progress {
    uidvalidity: Option<u32>,
    last_uid: u32,
    prior_validity: Option<u32>,
    prior_uid: u32,
    started: bool,
    /// UIDs whose attachments were stored: the messages --mark-seen and
    /// --move-to act on once the run is committed.
    acted: Vec<u32>,
}

#[allow(clippy::too_many_lines)] // select, search, then batches: one pass over a mailbox
fn mailbox_pass(
    cli: &Cli,
    s: &mut Session,
    mailbox: &str,
    search: &str,
    sink: &mut Sink<'_>,
    p: &mut Progress,
) -> std::result::Result<(), Fail> {
    // Read-only: mailbox changes wait for the run's commit (apply_committed).
    let mb = s.examine(mailbox).map_err(|e| match e {
        imap::Error::No(t) => {
            Fail::Final(Error::config(format!("mailbox {mailbox:?}: {}", t.trim())))
        }
        other => io_fail(&other),
    })?;
    let validity = mb.uid_validity.unwrap_or(0);
    if !p.started {
        p.started = true;
        if let Some(old) = p.prior_validity {
            if old != validity {
                if cli.on_uidvalidity_change == OnUidvalidity::Fail {
                    return Err(Fail::Final(Error::data(format!(
                        "{mailbox}: UIDVALIDITY changed from {old} to {validity}; the state was left alone (--on-uidvalidity-change refetch)"
                    ))));
                }
                events::uidvalidity_changed(mailbox, old, validity);
                p.prior_uid = 0;
            }
        }
        p.last_uid = p.prior_uid;
    } else if p.uidvalidity.is_some_and(|v| v != validity) {
        // Rebuilt while we were reconnecting: start over.
        events::uidvalidity_changed(mailbox, p.uidvalidity.unwrap_or(0), validity);
        p.last_uid = 0;
        p.acted.clear();
    }
    p.uidvalidity = Some(validity);
    let from = p.last_uid + 1;
    let query = format!("UID {from}:* {search}");
    let mut uids: Vec<u32> = s
        .uid_search(query.trim())
        .map_err(|e| io_fail(&e))?
        .into_iter()
        .filter(|u| *u >= from)
        .collect();
    uids.sort_unstable();
    events::connected(
        cli.host.as_deref().unwrap_or(""),
        mailbox,
        validity,
        from,
        uids.len(),
    );
    for batch in uids.chunks(cli.batch) {
        let set = batch
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let sizes = s
            .uid_fetch(&set, "(UID RFC822.SIZE)")
            .map_err(|e| io_fail(&e))?;
        let mut wanted = Vec::new();
        let mut large = Vec::new();
        for f in &sizes {
            let (Some(uid), size) = (f.uid, f.size.unwrap_or(0)) else {
                continue;
            };
            if size as usize > sink.max_message_bytes {
                large.push((uid, size));
            } else {
                wanted.push(uid);
            }
        }
        drop(sizes);
        let mut bodies: Vec<(u32, Vec<u8>)> = Vec::new();
        if !wanted.is_empty() {
            let set = wanted
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let fetched = s
                .uid_fetch(&set, "(UID BODY.PEEK[])")
                .map_err(|e| io_fail(&e))?;
            for f in &fetched {
                if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                    bodies.push((uid, body.to_vec()));
                }
            }
        }
        bodies.sort_unstable_by_key(|(u, _)| *u);
        let mut items: Vec<(u32, Option<Vec<u8>>)> =
            bodies.into_iter().map(|(u, b)| (u, Some(b))).collect();
        items.extend(large.iter().map(|(u, _)| (*u, None)));
        items.sort_unstable_by_key(|(u, _)| *u);
        for (uid, body) in items {
            match body {
                None => {
                    let size = large.iter().find(|(u, _)| *u == uid).map_or(0, |(_, s)| *s);
                    events::skipped_large(
                        mailbox,
                        &uid.to_string(),
                        u64::from(size),
                        sink.max_message_bytes as u64,
                    );
                    sink.counts.skipped += 1;
                }
                Some(raw) => {
                    let origin = Origin {
                        mailbox: mailbox.to_owned(),
                        uidvalidity: Some(validity),
                        uid: Some(uid),
                        label: format!("UID {uid}"),
                    };
                    if sink.message(&raw, &origin)? {
                        p.acted.push(uid);
                    }
                }
            }
            p.last_uid = p.last_uid.max(uid);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_round_trip_in_compact_form() {
        let uids = [1, 2, 3, 7, 9, 10, 4_000_000_000];
        let set = uid_set(&uids);
        assert_eq!(set, "1:3,7,9:10,4000000000");
        assert_eq!(uid_list(&set).unwrap(), uids);
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_list("").unwrap(), Vec::<u32>::new());
        assert!(uid_list("1:x").is_none());
    }
}
