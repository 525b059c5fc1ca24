//! Connecting to PostgreSQL the way libpq does: a `postgres://` URL whose
//! missing parts come from `PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`,
//! `PGPASSWORD`, `PGPASSFILE` (or `~/.pgpass`), `PGSSLMODE`,
//! `PGSSLROOTCERT`, `PGCONNECT_TIMEOUT` and `PGAPPNAME`; TLS through rustls
//! with libpq's `sslmode` meanings; errors mapped to the exit-code contract.
//! The password is never part of a message: the server is named as
//! `user@host:port/dbname`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use etl_core::{Error, Exit, Result};
use postgres::error::SqlState;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "disable" => Self::Disable,
            // `allow` (plain first, TLS if the server insists) is read as the
            // stronger `prefer`.
            "allow" | "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => {
                return Err(Error::usage(format!(
                    "sslmode={s:?}: expected disable, prefer, require, verify-ca or verify-full"
                )))
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Tcp(String),
    /// A Unix-domain socket directory.
    Socket(PathBuf),
}

/// Everything needed to connect, resolved from the URL and the environment.
#[derive(Clone)]
pub struct Settings {
    pub host: Host,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    password: Option<String>,
    pub sslmode: SslMode,
    pub sslrootcert: Option<String>,
    pub connect_timeout: Option<Duration>,
    pub application_name: String,
}

impl std::fmt::Debug for Settings {
    // Never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

/// Whether `--db` names a PostgreSQL server rather than a DuckDB file.
pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// The environment as libpq reads it (a function, so tests can pass their own).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, empty values counting as unset (as libpq does).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Settings {
    /// Resolves `url` (already known to start with `postgres://` or
    /// `postgresql://`) with libpq's environment variables and defaults.
    #[allow(clippy::too_many_lines)] // every parameter, in libpq's order of precedence
    pub fn from_url(url: &str, env: Env<'_>) -> Result<Self> {
        let bad = |why: String| Error::usage(format!("--db: {why}"));
        let u =
            url::Url::parse(url).map_err(|e| bad(format!("not a valid postgres:// URL ({e})")))?;
        let dec = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(std::borrow::Cow::into_owned)
                .map_err(|_| bad("a part of the URL is not UTF-8 once decoded".into()))
        };
        let mut host = u
            .host_str()
            .filter(|h| !h.is_empty())
            .map(|h| dec(h.trim_start_matches('[').trim_end_matches(']')))
            .transpose()?;
        let mut port = u.port();
        let mut user = (!u.username().is_empty())
            .then(|| dec(u.username()))
            .transpose()?;
        let mut password = u.password().map(dec).transpose()?;
        let path = u.path().trim_start_matches('/');
        let mut dbname = (!path.is_empty()).then(|| dec(path)).transpose()?;
        let mut sslmode = None;
        let mut sslrootcert = None;
        let mut connect_timeout = None;
        let mut application_name = None;
        for (k, v) in u.query_pairs() {
            let v = v.into_owned();
            match k.as_ref() {
                "host" => host = Some(v),
                "port" => {
                    port = Some(
                        v.parse()
                            .map_err(|_| bad(format!("port={v:?} is not a port number")))?,
                    );
                }
                "user" => user = Some(v),
                "password" => password = Some(v),
                "dbname" => dbname = Some(v),
                "sslmode" => sslmode = Some(v),
                "sslrootcert" => sslrootcert = Some(v),
                "connect_timeout" => connect_timeout = Some(v),
                "application_name" => application_name = Some(v),
                other => {
                    return Err(bad(format!(
                        "the URL parameter {other:?} is not supported (host, port, user, \
                         password, dbname, sslmode, sslrootcert, connect_timeout, \
                         application_name are)"
                    )))
                }
            }
        }
        let host = host.or_else(|| env("PGHOST"));
        if host.as_deref().is_some_and(|h| h.contains(',')) {
            return Err(bad("several hosts are not supported; name one".into()));
        }
        let host = match host {
            Some(h) if h.starts_with('/') => Host::Socket(PathBuf::from(h)),
            Some(h) => Host::Tcp(h),
            None if Path::new("/var/run/postgresql").is_dir() => {
                Host::Socket(PathBuf::from("/var/run/postgresql"))
            }
            None => Host::Tcp("localhost".into()),
        };
        let port = match port {
            Some(p) => p,
            None => match env("PGPORT") {
                Some(p) => p
                    .parse()
                    .map_err(|_| Error::usage(format!("PGPORT={p:?} is not a port number")))?,
                None => 5432,
            },
        };
        let user = user
            .or_else(|| env("PGUSER"))
            .or_else(|| env("USER"))
            .or_else(|| env("LOGNAME"))
            .ok_or_else(|| {
                Error::config("no PostgreSQL user: give it in the --db URL or PGUSER")
            })?;
        let dbname = dbname
            .or_else(|| env("PGDATABASE"))
            .unwrap_or_else(|| user.clone());
        let sslmode = SslMode::parse(
            &sslmode
                .or_else(|| env("PGSSLMODE"))
                .unwrap_or_else(|| "prefer".into()),
        )?;
        let connect_timeout = match connect_timeout.or_else(|| env("PGCONNECT_TIMEOUT")) {
            None => None,
            Some(t) => match t.parse::<u64>() {
                Ok(0) => None,
                Ok(s) => Some(Duration::from_secs(s.max(2))),
                Err(_) => {
                    return Err(Error::usage(format!(
                        "connect_timeout={t:?} is not a number of seconds"
                    )))
                }
            },
        };
        let mut s = Settings {
            host,
            port,
            user,
            dbname,
            password: None,
            sslmode,
            sslrootcert: sslrootcert.or_else(|| env("PGSSLROOTCERT")),
            connect_timeout,
            application_name: application_name
                .or_else(|| env("PGAPPNAME"))
                .unwrap_or_else(|| "etl-merge".into()),
        };
        if s.sslmode == SslMode::Disable && !s.is_local() {
            return Err(Error::usage(format!(
                "sslmode=disable sends the password and the data in clear: refused for {} \
                 (only for a loopback address or a Unix socket)",
                s.host_display()
            )));
        }
        s.password = match password.or_else(|| env("PGPASSWORD")) {
            Some(p) => Some(p),
            None => s.pgpass(env),
        };
        Ok(s)
    }

    /// A loopback address or a Unix socket: where an unencrypted connection
    /// is allowed.
    pub fn is_local(&self) -> bool {
        match &self.host {
            Host::Socket(_) => true,
            Host::Tcp(h) => {
                h.eq_ignore_ascii_case("localhost")
                    || h.parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
        }
    }

    fn host_display(&self) -> String {
        match &self.host {
            Host::Tcp(h) if h.contains(':') => format!("[{h}]"),
            Host::Tcp(h) => h.clone(),
            Host::Socket(d) => d.display().to_string(),
        }
    }

    /// `user@host:port/dbname`: how logs and errors name the server.
    pub fn display(&self) -> String {
        format!(
            "{}@{}:{}/{}",
            self.user,
            self.host_display(),
            self.port,
            self.dbname
        )
    }

    /// The password from `PGPASSFILE` or `~/.pgpass`, as libpq finds it:
    /// the first line whose host, port, database and user match (`*`
    /// matches anything; `\:` and `\\` are escapes). A file others can
    /// read is ignored, with a warning, as libpq does.
    fn pgpass(&self, env: Env<'_>) -> Option<String> {
        let path = match env("PGPASSFILE") {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(env("HOME")?).join(".pgpass"),
        };
        let meta = std::fs::metadata(&path).ok()?;
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    file = %path.display(),
                    "{}: others can read it, so it is ignored (chmod 0600 it)",
                    path.display()
                );
                return None;
            }
        }
        let text = std::fs::read_to_string(&path).ok()?;
        let host = match &self.host {
            Host::Tcp(h) => h.clone(),
            Host::Socket(_) => "localhost".into(),
        };
        let port = self.port.to_string();
        let want = [
            host.as_str(),
            port.as_str(),
            self.dbname.as_str(),
            self.user.as_str(),
        ];
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .find_map(|l| {
                let fields = pgpass_fields(l);
                (fields.len() == 5
                    && fields[..4]
                        .iter()
                        .zip(want)
                        .all(|(f, w)| f == "*" || f == w))
                .then(|| fields[4].clone())
            })
    }

    /// Connects, retrying what may pass (refused, timed out, the server
    /// starting up or full): after the retries, exit 69.
    pub fn connect(&self) -> Result<postgres::Client> {
        let backoff = etl_core::retry::Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(4),
        };
        let attempts = 4;
        let mut last = String::new();
        for attempt in 0..attempts {
            if attempt > 0 {
                let d = backoff.delay(attempt - 1, None);
                tracing::warn!(
                    server = %self.display(),
                    attempt,
                    "{}: {last}; retrying in {} ms",
                    self.display(),
                    d.as_millis()
                );
                std::thread::sleep(d);
            }
            match self.connect_once() {
                Ok(c) => return Ok(c),
                Err(Failure::Retry(why)) => last = why,
                Err(Failure::Fatal(e)) => return Err(e),
            }
        }
        Err(Error::new(
            Exit::Unavailable,
            format!(
                "{}: unreachable after {attempts} attempts: {last}",
                self.display()
            ),
        ))
    }

    fn connect_once(&self) -> std::result::Result<postgres::Client, Failure> {
        let mut cfg = postgres::Config::new();
        match &self.host {
            Host::Tcp(h) => cfg.host(h),
            Host::Socket(d) => cfg.host_path(d),
        };
        cfg.port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name(&self.application_name)
            .options("-c TimeZone=UTC -c DateStyle=ISO,YMD -c extra_float_digits=3");
        if let Some(p) = &self.password {
            cfg.password(p);
        }
        if let Some(t) = self.connect_timeout {
            cfg.connect_timeout(t);
        }
        let socket = matches!(self.host, Host::Socket(_));
        let mode = match self.sslmode {
            _ if socket => postgres::config::SslMode::Disable,
            SslMode::Disable => postgres::config::SslMode::Disable,
            // An unencrypted fallback only where one is allowed.
            SslMode::Prefer if self.is_local() => postgres::config::SslMode::Prefer,
            _ => postgres::config::SslMode::Require,
        };
        cfg.ssl_mode(mode);
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(
            self.tls_config().map_err(Failure::Fatal)?,
        );
        cfg.connect(tls).map_err(|e| self.classify(&e))
    }

    /// What a failed connection means.
    fn classify(&self, e: &postgres::Error) -> Failure {
        let who = self.display();
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            let msg = format!("{who}: {}", db.message());
            return if *code == SqlState::INVALID_PASSWORD
                || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                || *code == SqlState::INSUFFICIENT_PRIVILEGE
            {
                Failure::Fatal(Error::new(Exit::NoPerm, msg))
            } else if *code == SqlState::INVALID_CATALOG_NAME {
                Failure::Fatal(Error::config(msg))
            } else if *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::TOO_MANY_CONNECTIONS
                || code.code().starts_with("08")
                || code.code().starts_with("53")
            {
                Failure::Retry(db.message().to_owned())
            } else {
                Failure::Fatal(Error::new(Exit::Software, msg))
            };
        }
        let text = chain_text(e);
        if text.contains("password missing") {
            return Failure::Fatal(Error::new(
                Exit::NoPerm,
                format!(
                    "{who}: the server asks for a password: give it in PGPASSWORD, \
                     ~/.pgpass (PGPASSFILE) or the --db URL"
                ),
            ));
        }
        if text.contains("certificate")
            || text.contains("Certificate")
            || text.contains("UnknownIssuer")
            || text.contains("NotValidForName")
        {
            return Failure::Fatal(Error::new(
                Exit::NoPerm,
                format!(
                    "{who}: the server's certificate is not trusted (sslmode={}): {text}",
                    self.sslmode.name()
                ),
            ));
        }
        if text.contains("server does not support TLS") {
            return Failure::Fatal(Error::config(format!(
                "{who}: the server does not offer TLS; sslmode={} needs it (an unencrypted \
                 connection is only allowed to a loopback address or a Unix socket)",
                self.sslmode.name()
            )));
        }
        Failure::Retry(text)
    }

    /// The rustls configuration for this `sslmode`: `verify-full` checks the
    /// chain and the host name; `verify-ca` the chain only; `require` and
    /// `prefer` neither (as libpq), unless a root certificate is given, when
    /// they check the chain as `verify-ca` does (libpq's rule too).
    fn tls_config(&self) -> Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::internal(format!("TLS setup: {e}")))?;
        let explicit_root = self.sslrootcert.is_some();
        let verify = match self.sslmode {
            SslMode::VerifyFull => Some(true),
            SslMode::VerifyCa => Some(false),
            _ if explicit_root => Some(false),
            _ => None,
        };
        let cfg = match verify {
            None => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
                .with_no_client_auth(),
            Some(names) => {
                let roots = Arc::new(self.roots()?);
                let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| Error::config(format!("TLS root certificates: {e}")))?;
                if names {
                    builder.with_webpki_verifier(inner).with_no_client_auth()
                } else {
                    builder
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
                        .with_no_client_auth()
                }
            }
        };
        Ok(cfg)
    }

    /// `sslrootcert` (a PEM file, or `system`), else `~/.postgresql/root.crt`
    /// when it exists, else the system's roots.
    fn roots(&self) -> Result<RootCertStore> {
        use rustls::pki_types::pem::PemObject;
        let mut store = RootCertStore::empty();
        let file = match self.sslrootcert.as_deref() {
            Some("system") => None,
            Some(f) => Some(PathBuf::from(f)),
            None => std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".postgresql/root.crt"))
                .filter(|p| p.exists()),
        };
        if let Some(f) = file {
            let certs = CertificateDer::pem_file_iter(&f)
                .and_then(Iterator::collect::<std::result::Result<Vec<_>, _>>)
                .map_err(|e| Error::config(format!("sslrootcert {}: {e}", f.display())))?;
            if certs.is_empty() {
                return Err(Error::config(format!(
                    "sslrootcert {}: no certificate in it",
                    f.display()
                )));
            }
            for c in certs {
                store
                    .add(c)
                    .map_err(|e| Error::config(format!("sslrootcert {}: {e}", f.display())))?;
            }
        } else {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                let _ = store.add(c);
            }
            if store.is_empty() {
                return Err(Error::config(
                    "no system root certificates found; give sslrootcert=FILE",
                ));
            }
        }
        Ok(store)
    }
}

/// Why a connection attempt failed.
enum Failure {
    /// Worth another attempt (network, server starting).
    Retry(String),
    Fatal(Error),
}

/// An error's text with its sources (tokio-postgres wraps the I/O and TLS
/// errors that say what happened).
fn chain_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        src = s.source();
    }
    text
}

/// One `.pgpass` line split on unescaped colons, escapes removed.
fn pgpass_fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(n), Some(f)) = (chars.next(), out.last_mut()) {
                    f.push(n);
                }
            }
            ':' => out.push(String::new()),
            c => {
                if let Some(f) = out.last_mut() {
                    f.push(c);
                }
            }
        }
    }
    out
}

/// `require`/`prefer` without a root certificate: encryption without
/// authentication of the server (libpq's meaning). Handshake signatures
/// are still checked.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the name in the
/// certificate is not compared with the host.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Maps an error during the run (after connecting) to the exit-code
/// contract. `what` names the step.
pub fn err(what: &str, e: &postgres::Error) -> Error {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let mut msg = format!("{what}: {}", db.message());
        if let Some(d) = db.detail() {
            msg.push_str(" (");
            msg.push_str(d);
            msg.push(')');
        }
        let exit = if code == "40001"
            || code == "40P01"
            || code.starts_with("53")
            || code.starts_with("57")
            || code.starts_with("08")
        {
            Exit::TempFail
        } else if code == "42501" {
            Exit::NoPerm
        } else if code.starts_with("42") || code.starts_with("22") {
            // A bad type name, an unknown column in --order-by, a bad --query.
            Exit::Usage
        } else {
            Exit::Software
        };
        return Error::new(exit, msg);
    }
    // The connection lost: closed, or an I/O error underneath (the server
    // stopped, the backend terminated, the network gone).
    let mut src = std::error::Error::source(e);
    let mut io = false;
    while let Some(s) = src {
        io |= s.downcast_ref::<std::io::Error>().is_some();
        src = s.source();
    }
    if e.is_closed() || io || chain_text(e).contains("connection") {
        return Error::temp_fail(format!(
            "{what}: the connection to the server was lost ({}); nothing was committed",
            chain_text(e)
        ));
    }
    Error::new(Exit::Software, format!("{what}: {}", chain_text(e)))
}

/// Whether a failed statement is worth running again (serialization
/// failure, deadlock).
pub fn is_retryable(e: &postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn urls_resolve_like_libpq() {
        let e = env(&[("USER", "me")]);
        let s = Settings::from_url(
            "postgres://ann:s%40cret@db.example.com:6432/sales?sslmode=verify-full&sslrootcert=ca.pem",
            &e,
        )
        .unwrap();
        assert_eq!(s.host, Host::Tcp("db.example.com".into()));
        assert_eq!(
            (s.port, s.user.as_str(), s.dbname.as_str()),
            (6432, "ann", "sales")
        );
        assert_eq!(s.password.as_deref(), Some("s@cret"));
        assert_eq!(s.sslmode, SslMode::VerifyFull);
        assert_eq!(s.sslrootcert.as_deref(), Some("ca.pem"));
        // The password is in no rendering of the settings.
        assert!(!s.display().contains("s@cret") && !format!("{s:?}").contains("cret"));

        let e = env(&[
            ("PGHOST", "10.0.0.5"),
            ("PGPORT", "5433"),
            ("PGUSER", "etl"),
            ("PGDATABASE", "wh"),
            ("PGPASSWORD", "pw"),
            ("PGSSLMODE", "require"),
        ]);
        let s = Settings::from_url("postgresql://", &e).unwrap();
        assert_eq!(s.display(), "etl@10.0.0.5:5433/wh");
        assert_eq!(s.password.as_deref(), Some("pw"));
        assert_eq!(s.sslmode, SslMode::Require);
        // The URL wins over the environment; the database defaults to the user.
        let s = Settings::from_url("postgres://bob@[::1]:5434", &e).unwrap();
        assert_eq!(s.display(), "bob@[::1]:5434/wh");
        let s = Settings::from_url("postgres://bob@localhost", &env(&[])).unwrap();
        assert_eq!(s.dbname, "bob");
        let s = Settings::from_url("postgres:///wh?host=/tmp/sock&user=x", &env(&[])).unwrap();
        assert_eq!(s.host, Host::Socket("/tmp/sock".into()));
    }

    #[test]
    fn plaintext_only_to_loopback_and_bad_parameters_refused() {
        let e = env(&[("USER", "me")]);
        let err =
            Settings::from_url("postgres://db.example.com/x?sslmode=disable", &e).unwrap_err();
        assert_eq!(err.exit_code(), Exit::Usage);
        assert!(
            err.message().contains("refused for db.example.com"),
            "{}",
            err.message()
        );
        assert!(Settings::from_url("postgres://127.0.0.1/x?sslmode=disable", &e).is_ok());
        assert!(Settings::from_url("postgres://localhost/x?sslmode=disable", &e).is_ok());
        for bad in [
            "postgres://h/x?sslmode=sometimes",
            "postgres://h/x?frobnicate=1",
            "postgres://h:99999/x",
            "postgres://a,b/x",
        ] {
            let err = Settings::from_url(bad, &e).unwrap_err();
            assert_eq!(err.exit_code(), Exit::Usage, "{bad}");
        }
    }

    #[test]
    fn pgpass_lines_match_with_wildcards_and_escapes() {
        assert_eq!(
            pgpass_fields(r"h:5432:*:u:pa\:ss\\w"),
            vec!["h", "5432", "*", "u", r"pa:ss\w"]
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pgpass");
        std::fs::write(&f, "# comment\nother:5432:*:etl:no\n*:5432:wh:etl:yes\n").unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let path = f.to_str().unwrap().to_owned();
        let vars = [("PGPASSFILE", path.as_str())];
        let e = env(&vars);
        let s = Settings::from_url("postgres://etl@db:5432/wh", &e).unwrap();
        assert_eq!(s.password.as_deref(), Some("yes"));
        let s = Settings::from_url("postgres://etl@db:5432/other", &e).unwrap();
        assert_eq!(s.password, None);
        // Readable by others: ignored, as libpq does.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let s = Settings::from_url("postgres://etl@db:5432/wh", &e).unwrap();
        assert_eq!(s.password, None);
    }
}
