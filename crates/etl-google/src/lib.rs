//! Google credentials, read once for every command that talks to Google:
//! etl-fetch-mail (XOAUTH2 for Gmail) and etl-push-sheets (the Sheets API).
//!
//! Two kinds of file, as Google's client libraries accept them
//! (`GOOGLE_APPLICATION_CREDENTIALS`): a service-account key
//! (`"type": "service_account"`, optionally used with domain-wide
//! delegation) and authorized-user credentials (`"type":
//! "authorized_user"`, a refresh token as `gcloud auth
//! application-default login` writes it). What each command does with the
//! credentials (which token flow, which scopes) stays in the command; how
//! the file is read, checked and reported is written here once.
//!
//! A file that cannot be read or is not one of the two is a configuration
//! error (exit 78) naming the file and what is wrong; no message quotes a
//! secret from it.

use std::path::Path;

use etl_core::{Error, Exit, Result};
use serde_json::Value;

/// Google's token endpoint, for files that name none.
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// A credentials file, checked.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A service-account key.
    ServiceAccount(yup_oauth2::ServiceAccountKey),
    /// Authorized-user credentials.
    AuthorizedUser(AuthorizedUser),
}

/// Authorized-user credentials: an OAuth client and a refresh token.
#[derive(Clone)]
pub struct AuthorizedUser {
    /// The OAuth client id.
    pub client_id: String,
    /// The OAuth client secret.
    pub client_secret: String,
    /// The refresh token.
    pub refresh_token: String,
    /// Where tokens are exchanged (the file's `token_uri`, else Google's).
    pub token_uri: String,
    /// The account the file says it is for (`account`), if it says.
    pub account: Option<String>,
}

impl std::fmt::Debug for AuthorizedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret and the refresh token are never printed.
        f.debug_struct("AuthorizedUser")
            .field("client_id", &self.client_id)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

impl AuthorizedUser {
    /// As yup-oauth2's authorized-user flow takes it.
    pub fn secret(&self) -> yup_oauth2::authorized_user::AuthorizedUserSecret {
        yup_oauth2::authorized_user::AuthorizedUserSecret {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            refresh_token: self.refresh_token.clone(),
            key_type: "authorized_user".to_owned(),
        }
    }
}

fn config(path: &Path, what: &str) -> Error {
    Error::config(format!("{}: {what}", path.display()))
}

/// Reads and checks the credentials file at `path`.
pub fn load(path: &Path) -> Result<Credentials> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(
            Exit::Config,
            format!("{}: cannot read the credentials: {e}", path.display()),
        )
    })?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| config(path, &format!("not a credentials JSON file: {e}")))?;
    match v["type"].as_str() {
        Some("service_account") => serde_json::from_value(v)
            .map(Credentials::ServiceAccount)
            .map_err(|e| config(path, &format!("not a service-account key: {e}"))),
        Some("authorized_user") => {
            let field = |k: &str| {
                v[k].as_str().map(str::to_owned).ok_or_else(|| {
                    config(path, &format!("authorized-user credentials without {k:?}"))
                })
            };
            Ok(Credentials::AuthorizedUser(AuthorizedUser {
                client_id: field("client_id")?,
                client_secret: field("client_secret")?,
                refresh_token: field("refresh_token")?,
                token_uri: v["token_uri"]
                    .as_str()
                    .unwrap_or(GOOGLE_TOKEN_URI)
                    .to_owned(),
                account: v["account"].as_str().map(str::to_owned),
            }))
        }
        other => Err(config(
            path,
            &format!(
                "credentials of type {:?}: expected \"service_account\" or \"authorized_user\"",
                other.unwrap_or("(none)")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(d: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
        let p = d.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn both_kinds_load_and_bad_files_are_78_naming_the_file() {
        let d = tempfile::tempdir().unwrap();
        let user = file(
            &d,
            "adc.json",
            r#"{"type":"authorized_user","client_id":"c","client_secret":"s3cr3t","refresh_token":"r3fr3sh"}"#,
        );
        match load(&user).unwrap() {
            Credentials::AuthorizedUser(u) => {
                assert_eq!(
                    (u.client_id.as_str(), u.token_uri.as_str()),
                    ("c", GOOGLE_TOKEN_URI)
                );
                let shown = format!("{u:?}");
                assert!(
                    !shown.contains("s3cr3t") && !shown.contains("r3fr3sh"),
                    "{shown}"
                );
                assert_eq!(u.secret().key_type, "authorized_user");
            }
            other @ Credentials::ServiceAccount(_) => panic!("{other:?}"),
        }
        let sa = file(
            &d,
            "sa.json",
            r#"{"type":"service_account","client_email":"a@b.iam.gserviceaccount.com","private_key":"-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n","token_uri":"http://127.0.0.1:1/token"}"#,
        );
        assert!(
            matches!(load(&sa).unwrap(), Credentials::ServiceAccount(k) if k.client_email == "a@b.iam.gserviceaccount.com")
        );
        for (name, text, says) in [
            ("x.json", "{", "not a credentials JSON file"),
            (
                "y.json",
                r#"{"type":"external_account"}"#,
                "external_account",
            ),
            (
                "z.json",
                r#"{"type":"authorized_user","client_id":"c"}"#,
                "without \"client_secret\"",
            ),
        ] {
            let e = load(&file(&d, name, text)).unwrap_err();
            assert_eq!(e.exit_code(), Exit::Config);
            assert!(
                e.message().contains(name) && e.message().contains(says),
                "{e}"
            );
        }
        let e = load(&d.path().join("missing.json")).unwrap_err();
        assert_eq!(e.exit_code(), Exit::Config);
    }
}
