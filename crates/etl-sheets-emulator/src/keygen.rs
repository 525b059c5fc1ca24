//! `etl-sheets-emulator keygen`: a credentials file in Google's format,
//! registered with a running emulator.

use std::path::Path;

use etl_core::{Error, Exit, Result};
use rand::Rng;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::RsaPrivateKey;
use serde_json::{json, Value};

use crate::events;

fn hex(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
        .collect()
}

fn digits(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|i| char::from_digit(rng.gen_range(u32::from(i == 0)..10), 10).unwrap_or('1'))
        .collect()
}

fn register(endpoint: &str, path: &str, body: &Value) -> Result<()> {
    let url = format!("{endpoint}/_emulator/{path}");
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| Error::internal(format!("HTTP client: {e}")))?;
    let reply = client
        .post(&url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send().map_err(|e| {
        Error::new(
            Exit::Unavailable,
            format!("cannot register the credentials with the emulator at {endpoint}: {e} (is it running? start it with `etl-sheets-emulator --listen 127.0.0.1:0`)"),
        )
    })?;
    if !reply.status().is_success() {
        let status = reply.status();
        let text = reply.text().unwrap_or_default();
        return Err(Error::new(
            Exit::Unavailable,
            format!("{url} answered {status}: {text}"),
        ));
    }
    Ok(())
}

fn write_private(out: &Path, v: &Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(v).map_err(|e| Error::internal(e.to_string()))?;
    text.push('\n');
    etl_core::fsutil::atomic_write(out, text.as_bytes()).map_err(|e| Error::output(out, &e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::output(out, &e))?;
    }
    Ok(())
}

/// Writes a service-account key (RSA 2048) whose `token_uri` is the
/// emulator's, and registers its public half.
pub fn service_account(out: &Path, endpoint: &str, email: &str, delegation: bool) -> Result<()> {
    let endpoint = endpoint.trim_end_matches('/');
    let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
        .map_err(|e| Error::internal(format!("RSA key generation: {e}")))?;
    let private_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| Error::internal(format!("PKCS#8 encoding: {e}")))?;
    let public_pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| Error::internal(format!("public key encoding: {e}")))?;
    let kid = hex(40);
    let token_uri = format!("{endpoint}/token");
    let project = email
        .split_once('@')
        .and_then(|(_, d)| d.split('.').next())
        .unwrap_or("etlkit-emulator")
        .to_owned();
    register(
        endpoint,
        "keys",
        &json!({"client_email": email, "private_key_id": kid, "public_key_pem": public_pem,
            "token_uri": token_uri, "domain_wide_delegation": delegation}),
    )?;
    let file = json!({
        "type": "service_account",
        "project_id": project,
        "private_key_id": kid,
        "private_key": private_pem.as_str(),
        "client_email": email,
        "client_id": digits(21),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": format!("https://www.googleapis.com/robot/v1/metadata/x509/{}", email.replace('@', "%40")),
        "universe_domain": "googleapis.com",
    });
    write_private(out, &file)?;
    events::key_written(out, email, endpoint);
    Ok(())
}

/// Writes authorized-user credentials (as `gcloud auth
/// application-default login` does, plus `token_uri`) acting as `account`.
pub fn authorized_user(out: &Path, endpoint: &str, account: &str) -> Result<()> {
    let endpoint = endpoint.trim_end_matches('/');
    let client_id = format!("{}-{}.apps.googleusercontent.com", digits(12), hex(32));
    let client_secret = format!("GOCSPX-{}", hex(28));
    let refresh_token = format!("1//emu-{}", hex(64));
    register(
        endpoint,
        "authorized-users",
        &json!({"client_id": client_id, "client_secret": client_secret,
            "refresh_token": refresh_token, "account": account}),
    )?;
    let file = json!({
        "type": "authorized_user",
        "client_id": client_id,
        "client_secret": client_secret,
        "refresh_token": refresh_token,
        "token_uri": format!("{endpoint}/token"),
        "account": account,
        "universe_domain": "googleapis.com",
    });
    write_private(out, &file)?;
    events::key_written(out, account, endpoint);
    Ok(())
}
