//! The test cluster itself: it starts, speaks TLS that `verify-full`
//! accepts with its CA, refuses a wrong password and a wrong CA, and is
//! gone once dropped.

use std::process::Command;

use etl_testkit::pg::{Cluster, PASSWORD};

fn psql(url: &str) -> std::process::Output {
    Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-c",
            "SELECT 1 + 1, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ])
        .arg(url)
        .output()
        .expect("psql")
}

#[test]
fn a_cluster_with_tls_and_passwords_starts_and_stops() {
    let c = Cluster::start();
    assert_eq!(c.psql("postgres", "SELECT 1 + 1"), "2");
    let ok = psql(&c.url("postgres", "verify-full"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout).trim(),
        "2|t",
        "the session is TLS"
    );
    let bad = psql(&c.url("postgres", "verify-full").replace(PASSWORD, "wrong"));
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("password authentication failed"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    // Another CA: verify-full refuses the server.
    let other = c.dir().join("other.pem");
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
        .arg(c.dir().join("other.key"))
        .arg("-out")
        .arg(&other)
        .args(["-days", "1", "-subj", "/CN=someone else"])
        .output()
        .expect("openssl");
    assert!(made.status.success());
    let url = c
        .url("postgres", "verify-full")
        .replace(&c.ca().display().to_string(), &other.display().to_string());
    let refused = psql(&url);
    assert!(
        !refused.status.success(),
        "a certificate from another CA was accepted"
    );
    let port = c.port;
    drop(c);
    let gone = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(gone.is_err(), "the server outlived its cluster");
}
