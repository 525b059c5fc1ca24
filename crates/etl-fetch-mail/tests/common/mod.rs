//! A real Dovecot for etl-fetch-mail's tests: started on 127.0.0.1 with a
//! throwaway configuration, a passwd-file user, TLS with a CA and a server
//! certificate generated per run (openssl). Dovecot refuses to serve mail
//! as root, so its login and internal processes run as `dovenull` and
//! `dovecot` and the mail files belong to `nobody` (uid 65534).
#![allow(dead_code, clippy::missing_panics_doc, missing_debug_implementations)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_etl-fetch-mail");
pub const USER: &str = "alice";
pub const PASSWORD: &str = "s3cret";
/// The mailbox of the XOAUTH2 test (a Workspace user a service account acts for).
pub const OAUTH_USER: &str = "boss@example.test";

pub struct Dovecot {
    pub dir: tempfile::TempDir,
    pub imaps: u16,
    pub imap: u16,
    child: Option<Child>,
    seq: u32,
}

/// Every descendant of `pid` (from /proc).
fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some(after) = stat.rsplit_once(')').map(|x| x.1) else {
            continue;
        };
        if let Some(ppid) = after
            .split_whitespace()
            .nth(1)
            .and_then(|x| x.parse::<u32>().ok())
        {
            parent_of.push((p, ppid));
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(q) = frontier.pop() {
        for &(p, pp) in &parent_of {
            if pp == q {
                out.push(p);
                frontier.push(p);
            }
        }
    }
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sh(cmd: &str, dir: &Path) {
    let st = Command::new("sh")
        .args(["-c", cmd])
        .current_dir(dir)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "{cmd}");
}

impl Dovecot {
    pub fn start() -> Dovecot {
        Self::start_with(None)
    }

    /// With XOAUTH2 accepted: Dovecot's oauth2 passdb validates tokens at
    /// `tokeninfo` (Google's tokeninfo endpoint, or the emulator's).
    pub fn start_with(tokeninfo: Option<&str>) -> Dovecot {
        assert!(
            Path::new("/usr/sbin/dovecot").exists(),
            "Dovecot is not installed: scripts/test installs it (apt-get install dovecot-imapd)"
        );
        let dir = tempfile::Builder::new()
            .prefix("dv")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        for sub in ["run", "state", "mail", "home"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=etl-test-ca", d);
        sh(
            "openssl req -newkey rsa:2048 -nodes -keyout key.pem -out srv.csr -subj /CN=localhost",
            d,
        );
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        sh("openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 2 -extfile ext.cnf", d);
        // A second, unrelated CA for the wrong-CA test.
        sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other-ca.pem -days 2 -subj /CN=other-ca", d);
        std::fs::write(d.join("passwd"), format!("{USER}:{{PLAIN}}{PASSWORD}\n")).unwrap();
        let (imaps, imap) = (free_port(), free_port());
        let p = d.display();
        let (oauth_mechs, oauth_passdb) = match tokeninfo {
            Some(url) => {
                std::fs::write(
                    d.join("oauth2.conf.ext"),
                    format!("tokeninfo_url = {url}?access_token=\nusername_attribute = email\ndebug = yes\n"),
                )
                .unwrap();
                (
                    " xoauth2 oauthbearer".to_owned(),
                    format!("passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {p}/oauth2.conf.ext\n}}\n"),
                )
            }
            None => (String::new(), String::new()),
        };
        let conf = format!(
            "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {p}/run\nstate_dir = {p}/state\n\
             log_path = {p}/dovecot.log\ndefault_login_user = dovenull\ndefault_internal_user = dovecot\n\
             ssl = yes\nssl_cert = <{p}/cert.pem\nssl_key = <{p}/key.pem\ndisable_plaintext_auth = no\n\
             auth_debug = yes\nauth_verbose = yes\nauth_mechanisms = plain login{oauth_mechs}\nfirst_valid_uid = 1\nmail_location = maildir:{p}/mail/%u\n\
             passdb {{\n  driver = passwd-file\n  mechanisms = plain login\n  args = scheme=PLAIN {p}/passwd\n}}\n{oauth_passdb}\
             userdb {{\n  driver = static\n  args = uid=65534 gid=65534 home={p}/home/%u\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    port = {imap}\n  }}\n  inet_listener imaps {{\n    port = {imaps}\n    ssl = yes\n  }}\n}}\n"
        );
        std::fs::write(d.join("dovecot.conf"), conf).unwrap();
        for user in [USER, OAUTH_USER] {
            let maildir = d.join("mail").join(user);
            for sub in ["new", "cur", "tmp"] {
                std::fs::create_dir_all(maildir.join(sub)).unwrap();
            }
            std::fs::create_dir_all(d.join("home").join(user)).unwrap();
        }
        sh("chown -R 65534:65534 mail home", d);
        let mut dv = Dovecot {
            dir,
            imaps,
            imap,
            child: None,
            seq: 0,
        };
        dv.up();
        dv
    }

    fn up(&mut self) {
        let d = self.dir.path();
        let _ = std::fs::remove_file(d.join("run/master.pid"));
        let child = Command::new("/usr/sbin/dovecot")
            .args(["-F", "-c"])
            .arg(d.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.imaps)).is_err() {
            assert!(
                Instant::now() < deadline,
                "Dovecot did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops Dovecot (SIGTERM: it drops every connection at once).
    pub fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills every process of this Dovecot at once (SIGKILL: connections
    /// drop mid-command, as in a crash), then starts it again.
    pub fn restart(&mut self) {
        if let Some(c) = &self.child {
            let mut pids = descendants(c.id());
            pids.push(c.id());
            for p in pids {
                let _ = Command::new("kill").args(["-9", &p.to_string()]).status();
            }
        }
        self.down();
        self.up();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("mail").join(USER)
    }

    /// A Maildir++ folder NAME of the mailbox (its directory), owned by the
    /// mail user.
    pub fn folder(&self, name: &str) -> PathBuf {
        let dir = self.maildir().join(format!(".{name}"));
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let st = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success());
        dir
    }

    /// Delivers a raw message into the Maildir (Dovecot sees it at the next SELECT).
    pub fn deliver(&mut self, raw: &[u8]) {
        self.seq += 1;
        let name = format!("{}.M{}P1.test", 1_700_000_000 + self.seq, self.seq);
        let tmp = self.maildir().join("tmp").join(&name);
        std::fs::write(&tmp, raw).unwrap();
        std::os::unix::fs::chown(&tmp, Some(65534), Some(65534)).unwrap();
        std::fs::rename(&tmp, self.maildir().join("new").join(&name)).unwrap();
    }

    /// Forgets the mailbox's UIDs (as a rebuilt server does): a new UIDVALIDITY.
    pub fn rebuild(&mut self) {
        self.down();
        let m = self.maildir();
        for e in std::fs::read_dir(&m).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("dovecot") {
                let _ = std::fs::remove_file(e.path());
            }
        }
        // Dovecot's UIDVALIDITY is the time: make it differ.
        std::thread::sleep(Duration::from_millis(1100));
        self.up();
    }

    /// The flags (Maildir info) of every message, sorted.
    pub fn flags(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            for e in std::fs::read_dir(self.maildir().join(sub))
                .unwrap()
                .flatten()
            {
                let n = e.file_name().to_string_lossy().into_owned();
                out.push(
                    n.split_once(":2,")
                        .map_or(String::new(), |(_, f)| f.to_owned()),
                );
            }
        }
        out.sort();
        out
    }

    /// etl-fetch-mail against this server (implicit TLS, the test CA).
    /// `--host --port --user --ca-file` for this server (implicit TLS).
    pub fn login_args(&self, user: &str) -> Vec<String> {
        let ca = self.ca().display().to_string();
        let port = self.imaps.to_string();
        [
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            user,
            "--ca-file",
            &ca,
        ]
        .map(str::to_owned)
        .to_vec()
    }

    pub fn fetch(&self, out: &Path, extra: &[&str]) -> Fetched {
        let login = self.login_args(USER);
        let mut args: Vec<&str> = login.iter().map(String::as_str).collect();
        args.extend_from_slice(&["--out-dir", out.to_str().unwrap(), "--retry-base-ms", "50"]);
        args.extend_from_slice(extra);
        run(&args, &[("ETL_IMAP_PASSWORD", PASSWORD)])
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.down();
    }
}

pub struct Fetched {
    pub code: i32,
    pub lines: Vec<Value>,
    pub stderr: String,
}

impl Fetched {
    pub fn summary(&self) -> Value {
        etl_testkit::summary(&self.stderr)
    }
    pub fn uids(&self) -> Vec<u64> {
        self.lines
            .iter()
            .map(|l| l["uid"].as_u64().unwrap())
            .collect()
    }
}

pub fn run(args: &[&str], env: &[(&str, &str)]) -> Fetched {
    let out = etl_testkit::Cmd::new(BIN)
        .args(args)
        .env_remove("ETL_IMAP_PASSWORD")
        .envs(env)
        .run();
    Fetched {
        code: out.code,
        lines: out.records(),
        stderr: out.stderr,
    }
}

/// A message built by Python's email package (tests/build_mail.py).
pub fn build(args: &[&str]) -> Vec<u8> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/build_mail.py");
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// sha256 by coreutils (independent of etl-fetch-mail's own hashing).
pub fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// Commits every pending watermark of the state file (what `etl-checkpoint
/// commit` does after a pipeline succeeded).
pub fn commit(state: &Path) {
    let store = etl_core::state::StateFile::new(state.to_path_buf(), Duration::from_secs(5));
    store
        .update(|st| {
            let runs: Vec<String> = st.pending.keys().cloned().collect();
            for r in runs {
                st.commit(&r);
            }
            Ok(((), true))
        })
        .unwrap();
}

/// Drops every pending value of the state file (what `etl-checkpoint
/// discard --all` does after a pipeline failed).
pub fn discard(state: &Path) {
    let store = etl_core::state::StateFile::new(state.to_path_buf(), Duration::from_secs(5));
    store
        .update(|st| {
            st.pending.clear();
            Ok(((), true))
        })
        .unwrap();
}
