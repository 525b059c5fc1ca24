//! A throwaway PostgreSQL cluster for tests (etl-merge's PostgreSQL
//! backend, #20): `initdb` in a temporary directory, as the unprivileged
//! `postgres` user when the tests run as root (PostgreSQL refuses root), on
//! a free loopback port, with SCRAM passwords and TLS from a CA made here
//! with openssl (the certificate names `localhost` and `127.0.0.1`, so
//! `sslmode=verify-full` holds). Dropping it stops the server it started
//! (`pg_ctl stop -m immediate` on its own data directory) and removes the
//! directory.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The cluster's superuser.
pub const USER: &str = "etl";
/// Its password.
pub const PASSWORD: &str = "etl-test-secret";

/// A running server.
#[derive(Debug)]
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    as_postgres: bool,
}

/// The newest Debian PostgreSQL's bin directory.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (scripts/test installs Debian's postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions
        .pop()
        .expect("no /usr/lib/postgresql/*/bin/initdb (scripts/test installs Debian's postgresql)")
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.pem`) and a server certificate for localhost and 127.0.0.1
/// (`server.crt`, `server.key`) in `d`.
fn make_certs(d: &Path) {
    // A CA and a server certificate for localhost and 127.0.0.1.
    let ssl = |args: &[&str], what: &str| {
        run(Command::new("openssl").args(args).current_dir(d), what);
    };
    ssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=etlkit test CA",
        ],
        "making the test CA",
    );
    ssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
        "making the server key",
    );
    std::fs::write(
        d.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("the SAN file");
    ssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
        "signing the server certificate",
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

impl Cluster {
    /// Starts a cluster and waits until it accepts connections.
    ///
    /// # Panics
    /// When PostgreSQL or openssl is missing or the server does not start.
    pub fn start() -> Self {
        let bin = bin_dir();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let d = dir.path().to_path_buf();
        let d = d.as_path();
        let as_postgres = is_root();
        std::fs::write(d.join("pw"), PASSWORD).expect("the password file");
        make_certs(d);
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let c = Self {
            dir,
            bin,
            port,
            as_postgres,
        };
        if as_postgres {
            run(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(d),
                "handing the directory to postgres",
            );
        }
        run(
            &mut c.pg(
                "initdb",
                &[
                    "-D",
                    "data",
                    "-U",
                    USER,
                    "--pwfile=pw",
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
            ),
            "initdb",
        );
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            d.display(),
            d.join("server.crt").display(),
            d.join("server.key").display()
        );
        let mut pgconf =
            std::fs::read_to_string(d.join("data/postgresql.conf")).expect("postgresql.conf");
        pgconf.push_str(&conf);
        std::fs::write(d.join("data/postgresql.conf"), pgconf).expect("postgresql.conf");
        run(
            &mut c.pg(
                "pg_ctl",
                &["-D", "data", "-l", "server.log", "-w", "-t", "60", "start"],
            ),
            "starting the server",
        );
        c
    }

    /// A PostgreSQL program of the cluster's version, run in its directory
    /// (as `postgres` when the tests run as root).
    fn pg(&self, prog: &str, args: &[&str]) -> Command {
        let path = self.bin.join(prog);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        cmd.args(args).current_dir(self.dir.path());
        cmd
    }

    /// Stops the server (fast shutdown: sessions are ended, their
    /// transactions rolled back), to test a server lost mid-run.
    ///
    /// # Panics
    /// When pg_ctl fails.
    pub fn stop(&self) {
        run(
            &mut self.pg("pg_ctl", &["-D", "data", "-m", "fast", "-w", "stop"]),
            "stopping the server",
        );
    }

    /// Starts the server again after [`Cluster::stop`].
    ///
    /// # Panics
    /// When pg_ctl fails.
    pub fn restart(&self) {
        run(
            &mut self.pg(
                "pg_ctl",
                &["-D", "data", "-l", "server.log", "-w", "-t", "60", "start"],
            ),
            "starting the server again",
        );
    }

    /// The cluster's directory (the CA is `ca.pem` there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA that signed the server's certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A `postgres://` URL for `db`, with the password and `sslmode`.
    pub fn url(&self, db: &str, sslmode: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{db}?sslmode={sslmode}&sslrootcert={}",
            self.port,
            self.ca().display()
        )
    }

    /// Runs SQL with psql over TLS (`verify-full`); its stdout, unaligned.
    ///
    /// # Panics
    /// When psql fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .arg(self.url(db, "verify-full"))
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // This cluster's own server, by its data directory.
        let _ = self
            .pg("pg_ctl", &["-D", "data", "-m", "immediate", "-w", "stop"])
            .output();
    }
}
