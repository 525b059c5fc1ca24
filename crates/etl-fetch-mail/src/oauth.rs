//! XOAUTH2 access tokens through yup-oauth2, from Google credentials:
//! a service-account key with domain-wide delegation (the token acts as the
//! mailbox user), or authorized-user JSON (an installed app's refresh token,
//! as `gcloud auth application-default login` or an OAuth consent flow
//! leaves it). The token endpoint is the key's `token_uri`.

use std::path::Path;

use etl_core::{Error, Exit, Result};
use yup_oauth2 as oauth;

fn config(path: &Path, what: &str) -> Error {
    Error::config(format!("{}: {what}", path.display()))
}

fn refused(e: &oauth::Error) -> Error {
    let text = e.to_string();
    let lower = text.to_lowercase();
    let exit = if ["connect", "dns", "timed out", "timeout"]
        .iter()
        .any(|w| lower.contains(w))
    {
        Exit::Unavailable
    } else {
        Exit::NoPerm
    };
    Error::new(exit, format!("no XOAUTH2 token: {text}"))
}

/// An access token for `user` with `scope`.
pub fn token(path: &Path, user: &str, scope: &str) -> Result<String> {
    // Read and checked by the one loader etl-push-sheets uses too.
    let creds = etl_google::load(path)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("tokio runtime: {e}")))?;
    rt.block_on(async {
        let token = match creds {
            etl_google::Credentials::ServiceAccount(key) => {
                let auth = oauth::ServiceAccountAuthenticator::builder(key)
                    .subject(user)
                    .build()
                    .await
                    .map_err(|e| config(path, &format!("unusable service-account key: {e}")))?;
                auth.token(&[scope]).await.map_err(|e| refused(&e))?
            }
            etl_google::Credentials::AuthorizedUser(u) => {
                let auth = oauth::AuthorizedUserAuthenticator::builder(u.secret())
                    .build()
                    .await
                    .map_err(|e| {
                        config(path, &format!("unusable authorized-user credentials: {e}"))
                    })?;
                auth.token(&[scope]).await.map_err(|e| refused(&e))?
            }
        };
        token
            .token()
            .map(str::to_owned)
            .ok_or_else(|| Error::new(Exit::NoPerm, "the token endpoint returned no access token"))
    })
}
