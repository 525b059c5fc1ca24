//! Google's OAuth2 token endpoint, as the emulator answers it.
//!
//! - JWT-bearer grant (service accounts, RFC 7523): the RS256 assertion is
//!   verified against the registered public key (by `kid` when the header
//!   has one, else by `iss`); `aud` must be the key's `token_uri` or one of
//!   Google's own token endpoints ([`GOOGLE_AUDIENCES`]: Google's client
//!   libraries put `https://oauth2.googleapis.com/token` there whatever the
//!   key's `token_uri` says, and Google accepts it); `exp -
//!   iat` at most one hour, `iat` not in the future (60 s skew), `exp` not
//!   past; `scope` must name a Sheets scope; `sub` (domain-wide delegation)
//!   only for keys registered with delegation.
//! - `refresh_token` grant (authorized-user credentials).
//!
//! Errors have Google's token-endpoint shape: `{"error": "invalid_grant",
//! "error_description": "..."}` with status 400 (401 for `invalid_client`).

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::sha2::Sha256;
use rsa::signature::Verifier;
use rsa::RsaPublicKey;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The audiences Google's token endpoint accepts in a JWT-bearer grant
/// besides the key's `token_uri`: its current and its legacy endpoint.
pub const GOOGLE_AUDIENCES: [&str; 2] = [
    "https://oauth2.googleapis.com/token",
    "https://accounts.google.com/o/oauth2/token",
];

/// Scopes that grant read and write access to spreadsheets.
pub const WRITE_SCOPES: [&str; 3] = [
    "https://www.googleapis.com/auth/spreadsheets",
    "https://www.googleapis.com/auth/drive",
    "https://www.googleapis.com/auth/drive.file",
];
/// Scopes that grant read access only.
pub const READ_SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/spreadsheets.readonly",
    "https://www.googleapis.com/auth/drive.readonly",
];
/// Gmail's IMAP scope: accepted so that XOAUTH2 clients can be tested with
/// the emulator's tokens (see `/tokeninfo`); it gives no Sheets access.
pub const MAIL_SCOPE: &str = "https://mail.google.com/";

/// A registered service-account key (its public half).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Key {
    pub client_email: String,
    pub private_key_id: String,
    pub public_key_pem: String,
    pub token_uri: String,
    #[serde(default)]
    pub domain_wide_delegation: bool,
}

/// Registered authorized-user credentials (as `gcloud auth
/// application-default login` writes them).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    /// The account the tokens act as (an e-mail address).
    pub account: String,
}

/// An issued access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Token {
    pub account: String,
    /// Unix seconds.
    pub expires: i64,
    pub write: bool,
    /// False for a token of the Gmail scope only.
    #[serde(default = "yes")]
    pub sheets: bool,
    /// The scopes granted, space-separated.
    #[serde(default)]
    pub scope: String,
}

fn yes() -> bool {
    true
}

/// A token-endpoint error: status, `error`, `error_description`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantError {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
}

impl GrantError {
    fn grant(d: impl Into<String>) -> Self {
        GrantError {
            status: 400,
            error: "invalid_grant",
            description: d.into(),
        }
    }
    pub fn body(&self) -> Value {
        json!({"error": self.error, "error_description": self.description})
    }
}

/// The credentials and tokens the emulator knows.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Auth {
    #[serde(default)]
    pub keys: Vec<Key>,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub tokens: HashMap<String, Token>,
}

/// What a bearer token resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bearer {
    Missing,
    Invalid,
    Valid {
        account: String,
        write: bool,
        sheets: bool,
    },
}

/// What a scope list grants: (Sheets at all, Sheets writes).
fn scopes_grant(scope: &str) -> Option<(bool, bool)> {
    let list: Vec<&str> = scope.split_whitespace().collect();
    if list.iter().any(|s| WRITE_SCOPES.contains(s)) {
        Some((true, true))
    } else if list.iter().any(|s| READ_SCOPES.contains(s)) {
        Some((true, false))
    } else if list.contains(&MAIL_SCOPE) {
        Some((false, false))
    } else {
        None
    }
}

impl Auth {
    /// Handles a `POST /token` form; `Ok` is the JSON reply.
    pub fn token(
        &mut self,
        form: &HashMap<String, String>,
        now: i64,
        lifetime: i64,
        new_token: &mut dyn FnMut() -> String,
    ) -> Result<Value, GrantError> {
        let grant = form.get("grant_type").map_or("", String::as_str);
        let (account, (sheets, write), scope) = match grant {
            "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
                let assertion = form.get("assertion").ok_or_else(|| GrantError {
                    status: 400,
                    error: "invalid_request",
                    description: "Missing required parameter: assertion".into(),
                })?;
                self.verify_jwt(assertion, now)?
            }
            "refresh_token" => {
                let account = self.refresh(form)?;
                let scope = form
                    .get("scope")
                    .cloned()
                    .unwrap_or_else(|| format!("{} {MAIL_SCOPE}", WRITE_SCOPES[0]));
                (account, (true, true), scope)
            }
            "" => {
                return Err(GrantError {
                    status: 400,
                    error: "unsupported_grant_type",
                    description: "Invalid grant_type: ".into(),
                })
            }
            other => {
                return Err(GrantError {
                    status: 400,
                    error: "unsupported_grant_type",
                    description: format!("Invalid grant_type: {other}"),
                })
            }
        };
        // Expired tokens are dropped as new ones are issued.
        self.tokens.retain(|_, t| t.expires > now);
        let token = new_token();
        self.tokens.insert(
            token.clone(),
            Token {
                account,
                expires: now + lifetime,
                write,
                sheets,
                scope,
            },
        );
        Ok(json!({"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}))
    }

    fn refresh(&self, form: &HashMap<String, String>) -> Result<String, GrantError> {
        let get = |k: &str| form.get(k).map_or("", String::as_str);
        let Some(user) = self.users.iter().find(|u| u.client_id == get("client_id")) else {
            return Err(GrantError {
                status: 401,
                error: "invalid_client",
                description: "The OAuth client was not found.".into(),
            });
        };
        if user.client_secret != get("client_secret") {
            return Err(GrantError {
                status: 401,
                error: "invalid_client",
                description: "Unauthorized".into(),
            });
        }
        if user.refresh_token != get("refresh_token") {
            return Err(GrantError::grant("Bad Request"));
        }
        Ok(user.account.clone())
    }

    fn verify_jwt(
        &self,
        jwt: &str,
        now: i64,
    ) -> Result<(String, (bool, bool), String), GrantError> {
        let bad = || GrantError::grant("Invalid JWT Signature.");
        let mut parts = jwt.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(GrantError::grant(
                "Invalid JWT: not a JWS compact serialization",
            ));
        };
        let decode = |p: &str| URL_SAFE_NO_PAD.decode(p.trim_end_matches('='));
        let header: Value = decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| GrantError::grant("Invalid JWT: header is not base64url JSON"))?;
        let claims: Value = decode(c)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| GrantError::grant("Invalid JWT: claim set is not base64url JSON"))?;
        if header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err(GrantError::grant("Invalid JWT: algorithm must be RS256"));
        }
        let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
        let kid = header.get("kid").and_then(Value::as_str);
        let candidates: Vec<&Key> = self
            .keys
            .iter()
            .filter(|k| k.client_email == iss && kid.is_none_or(|kid| kid == k.private_key_id))
            .collect();
        if candidates.is_empty() {
            return Err(GrantError::grant("Invalid grant: account not found"));
        }
        let sig = decode(s).map_err(|_| bad())?;
        let sig = Signature::try_from(sig.as_slice()).map_err(|_| bad())?;
        let signed = format!("{h}.{c}");
        let key = candidates
            .into_iter()
            .find(|k| {
                RsaPublicKey::from_public_key_pem(&k.public_key_pem).is_ok_and(|pk| {
                    VerifyingKey::<Sha256>::new(pk)
                        .verify(signed.as_bytes(), &sig)
                        .is_ok()
                })
            })
            .ok_or_else(bad)?;
        let aud = claims.get("aud").and_then(Value::as_str).unwrap_or("");
        if aud != key.token_uri && !GOOGLE_AUDIENCES.contains(&aud) {
            return Err(GrantError::grant(format!(
                "Invalid JWT: Failed audience check. The right audience is {}",
                key.token_uri
            )));
        }
        let iat = claims.get("iat").and_then(Value::as_i64);
        let exp = claims.get("exp").and_then(Value::as_i64);
        let timely = match (iat, exp) {
            (Some(iat), Some(exp)) => {
                exp > iat && exp - iat <= 3600 && iat <= now + 60 && exp > now
            }
            _ => false,
        };
        if !timely {
            return Err(GrantError::grant(
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
            ));
        }
        let scope = claims.get("scope").and_then(Value::as_str).unwrap_or("");
        let Some(grant) = scopes_grant(scope) else {
            return Err(GrantError {
                status: 400,
                error: "invalid_scope",
                description: format!(
                    "No Sheets scope in '{scope}': request https://www.googleapis.com/auth/spreadsheets (or drive, drive.file, a readonly variant, or https://mail.google.com/ for IMAP)"
                ),
            });
        };
        let account = match claims.get("sub").and_then(Value::as_str) {
            Some(sub) if sub != iss => {
                if !key.domain_wide_delegation {
                    return Err(GrantError {
                        status: 401,
                        error: "unauthorized_client",
                        description: "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.".into(),
                    });
                }
                sub.to_owned()
            }
            _ => iss.to_owned(),
        };
        Ok((account, grant, scope.to_owned()))
    }

    /// Google's `tokeninfo`: what an access token is (for IMAP servers that
    /// validate XOAUTH2 tokens, such as Dovecot's oauth2 passdb).
    pub fn tokeninfo(&self, token: &str, now: i64) -> Result<Value, GrantError> {
        match self.tokens.get(token) {
            Some(t) if t.expires > now => Ok(json!({
                "email": t.account,
                "email_verified": "true",
                "scope": t.scope,
                "exp": t.expires.to_string(),
                "expires_in": (t.expires - now).to_string(),
            })),
            _ => Err(GrantError {
                status: 400,
                error: "invalid_token",
                description: "Invalid Value".into(),
            }),
        }
    }

    /// Resolves an `Authorization: Bearer` value.
    pub fn bearer(&self, token: Option<&str>, now: i64) -> Bearer {
        let Some(t) = token else {
            return Bearer::Missing;
        };
        match self.tokens.get(t) {
            Some(tok) if tok.expires > now => Bearer::Valid {
                account: tok.account.clone(),
                write: tok.write,
                sheets: tok.sheets,
            },
            _ => Bearer::Invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::SigningKey;
    use rsa::pkcs8::EncodePublicKey;
    use rsa::signature::{SignatureEncoding, Signer};
    use rsa::RsaPrivateKey;

    fn setup() -> (Auth, RsaPrivateKey) {
        let mut rng = rand::thread_rng();
        let key = RsaPrivateKey::new(&mut rng, 1024).unwrap();
        let pem = key
            .to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::default())
            .unwrap();
        let auth = Auth {
            keys: vec![Key {
                client_email: "sa@p.iam.gserviceaccount.com".into(),
                private_key_id: "k1".into(),
                public_key_pem: pem,
                token_uri: "http://127.0.0.1:1/token".into(),
                domain_wide_delegation: false,
            }],
            ..Auth::default()
        };
        (auth, key)
    }

    fn jwt(key: &RsaPrivateKey, claims: &Value) -> String {
        let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
        let c = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signer = SigningKey::<Sha256>::new(key.clone());
        let sig = signer.sign(format!("{h}.{c}").as_bytes()).to_vec();
        format!("{h}.{c}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn form(assertion: &str) -> HashMap<String, String> {
        HashMap::from([
            (
                "grant_type".into(),
                "urn:ietf:params:oauth:grant-type:jwt-bearer".into(),
            ),
            ("assertion".into(), assertion.into()),
        ])
    }

    fn claims(now: i64) -> Value {
        json!({"iss": "sa@p.iam.gserviceaccount.com", "aud": "http://127.0.0.1:1/token",
            "scope": "https://www.googleapis.com/auth/spreadsheets", "iat": now, "exp": now + 3600})
    }

    #[test]
    fn grants_and_refusals() {
        let (mut auth, key) = setup();
        let now = 1_700_000_000;
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("t{n}")
        };
        let ok = auth
            .token(&form(&jwt(&key, &claims(now))), now, 3599, &mut next)
            .unwrap();
        assert_eq!(
            ok,
            json!({"access_token": "t1", "expires_in": 3599, "token_type": "Bearer"})
        );
        assert_eq!(
            auth.bearer(Some("t1"), now + 10),
            Bearer::Valid {
                account: "sa@p.iam.gserviceaccount.com".into(),
                write: true,
                sheets: true
            }
        );
        // Google's client libraries put Google's own endpoint in `aud`.
        let mut google = claims(now);
        google["aud"] = json!("https://oauth2.googleapis.com/token");
        assert!(auth
            .token(&form(&jwt(&key, &google)), now, 3599, &mut next)
            .is_ok());
        let info = auth.tokeninfo("t1", now + 10).unwrap();
        assert_eq!(
            (info["email"].as_str(), info["expires_in"].as_str()),
            (Some("sa@p.iam.gserviceaccount.com"), Some("3589"))
        );
        assert_eq!(
            auth.tokeninfo("nope", now).unwrap_err().error,
            "invalid_token"
        );
        assert_eq!(auth.bearer(Some("t1"), now + 3599), Bearer::Invalid);
        assert_eq!(auth.bearer(None, now), Bearer::Missing);

        let refuse = |auth: &mut Auth, c: Value, next: &mut dyn FnMut() -> String| {
            auth.token(&form(&jwt(&key, &c)), now, 3599, next)
                .unwrap_err()
        };
        let mut c = claims(now);
        c["exp"] = json!(now + 3601);
        assert!(refuse(&mut auth, c, &mut next)
            .description
            .contains("short-lived"));
        let mut c = claims(now);
        c["aud"] = json!("https://oauth2.example.com/token");
        assert!(refuse(&mut auth, c, &mut next)
            .description
            .contains("audience"));
        let mut c = claims(now);
        c["scope"] = json!("https://www.googleapis.com/auth/pubsub");
        assert_eq!(refuse(&mut auth, c, &mut next).error, "invalid_scope");
        let mut c = claims(now);
        c["sub"] = json!("boss@example.com");
        assert_eq!(refuse(&mut auth, c, &mut next).error, "unauthorized_client");
        let mut c = claims(now);
        c["iss"] = json!("other@p.iam.gserviceaccount.com");
        assert!(refuse(&mut auth, c, &mut next)
            .description
            .contains("account not found"));
        // A signature by another key.
        let other = RsaPrivateKey::new(&mut rand::thread_rng(), 1024).unwrap();
        let e = auth
            .token(&form(&jwt(&other, &claims(now))), now, 3599, &mut next)
            .unwrap_err();
        assert_eq!(e.description, "Invalid JWT Signature.");
        // Gmail's scope (for IMAP XOAUTH2): a token, but no Sheets access.
        let mut c = claims(now);
        c["scope"] = json!(MAIL_SCOPE);
        let t = auth
            .token(&form(&jwt(&key, &c)), now, 3599, &mut next)
            .unwrap();
        let t = t["access_token"].as_str().unwrap().to_owned();
        assert!(matches!(
            auth.bearer(Some(&t), now),
            Bearer::Valid { sheets: false, .. }
        ));
        // Read-only scope gives a read-only token.
        let mut c = claims(now);
        c["scope"] = json!("https://www.googleapis.com/auth/spreadsheets.readonly");
        let t = auth
            .token(&form(&jwt(&key, &c)), now, 3599, &mut next)
            .unwrap();
        let t = t["access_token"].as_str().unwrap().to_owned();
        assert!(matches!(
            auth.bearer(Some(&t), now),
            Bearer::Valid { write: false, .. }
        ));
    }
}
