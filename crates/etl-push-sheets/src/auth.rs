//! Credentials: a service-account key (optionally with domain-wide
//! delegation, `--impersonate`) through yup-oauth2, or authorized-user
//! credentials (as `gcloud auth application-default login` writes them)
//! through the refresh-token grant. The token endpoint is the file's
//! `token_uri` in both cases (Google's when the file has none), so the
//! emulator can stand in for Google.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etl_core::{Error, Result};
use google_sheets4::common::GetToken;
use google_sheets4::{hyper_rustls, hyper_util, yup_oauth2};
use serde_json::Value;

pub type Connector =
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

type TokenFuture<'a> = Pin<
    Box<
        dyn Future<
                Output = std::result::Result<
                    Option<String>,
                    Box<dyn std::error::Error + Send + Sync>,
                >,
            > + Send
            + 'a,
    >,
>;

/// The token source handed to google-sheets4.
#[derive(Clone)]
pub enum Auth {
    ServiceAccount(yup_oauth2::authenticator::Authenticator<Connector>),
    User(UserAuth),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::ServiceAccount(_) => f.write_str("Auth::ServiceAccount"),
            Auth::User(u) => write!(f, "Auth::User({})", u.client_id),
        }
    }
}

impl GetToken for Auth {
    fn get_token<'a>(&'a self, scopes: &'a [&str]) -> TokenFuture<'a> {
        match self {
            Auth::ServiceAccount(a) => a.get_token(scopes),
            Auth::User(u) => Box::pin(u.token()),
        }
    }
}

/// Authorized-user credentials and their cached access token.
#[derive(Clone, Debug)]
pub struct UserAuth {
    client_id: String,
    client_secret: String,
    refresh_token: String,
    token_uri: String,
    http: reqwest::Client,
    cache: Arc<Mutex<Option<(String, Instant)>>>,
}

impl UserAuth {
    async fn token(
        &self,
    ) -> std::result::Result<Option<String>, Box<dyn std::error::Error + Send + Sync>> {
        if let Ok(c) = self.cache.lock() {
            if let Some((t, until)) = c.as_ref() {
                if Instant::now() < *until {
                    return Ok(Some(t.clone()));
                }
            }
        }
        let reply = self
            .http
            .post(&self.token_uri)
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.as_str()),
                ("refresh_token", self.refresh_token.as_str()),
            ])
            .send()
            .await
            .map_err(|e| format!("cannot reach the token endpoint {}: {e}", self.token_uri))?;
        let status = reply.status();
        let body: Value =
            serde_json::from_str(&reply.text().await.unwrap_or_default()).unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!(
                "token endpoint {} answered {status}: {} {}",
                self.token_uri,
                body["error"].as_str().unwrap_or(""),
                body["error_description"].as_str().unwrap_or("")
            )
            .into());
        }
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| format!("token endpoint {} sent no access_token", self.token_uri))?
            .to_owned();
        let lifetime = body["expires_in"].as_u64().unwrap_or(3600);
        // Refresh a minute early, as Google's client libraries do.
        let until = Instant::now() + Duration::from_secs(lifetime.saturating_sub(60).max(1));
        if let Ok(mut c) = self.cache.lock() {
            *c = Some((token.clone(), until));
        }
        Ok(Some(token))
    }
}

fn config_err(path: &Path, what: &str) -> Error {
    Error::config(format!("{}: {what}", path.display()))
}

/// Reads the credentials file (etl-google's loader, shared with
/// etl-fetch-mail) and builds the token source.
pub async fn load(
    path: &Path,
    impersonate: Option<&str>,
    client: hyper_util::client::legacy::Client<Connector, String>,
) -> Result<(Auth, String)> {
    match etl_google::load(path)? {
        etl_google::Credentials::ServiceAccount(key) => {
            let account = impersonate.map_or_else(|| key.client_email.clone(), str::to_owned);
            let mut b = yup_oauth2::ServiceAccountAuthenticator::with_client(
                key,
                yup_oauth2::CustomHyperClientBuilder::from(client),
            );
            if let Some(user) = impersonate {
                b = b.subject(user);
            }
            let a = b
                .build()
                .await
                .map_err(|e| config_err(path, &format!("unusable service-account key: {e}")))?;
            Ok((Auth::ServiceAccount(a), account))
        }
        etl_google::Credentials::AuthorizedUser(u) => {
            if impersonate.is_some() {
                return Err(Error::usage("--impersonate needs a service-account key (domain-wide delegation), not authorized-user credentials"));
            }
            let account = u
                .account
                .clone()
                .unwrap_or_else(|| "the authorized user".to_owned());
            let user = UserAuth {
                client_id: u.client_id,
                client_secret: u.client_secret,
                refresh_token: u.refresh_token,
                token_uri: u.token_uri,
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .map_err(|e| Error::internal(format!("HTTP client: {e}")))?,
                cache: Arc::new(Mutex::new(None)),
            };
            Ok((Auth::User(user), account))
        }
    }
}
