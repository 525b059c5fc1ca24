//! What leaves the machine (alerts, the runs log, the lines etl-run passes
//! on from its pipeline) never carries a secret: the value of every
//! environment variable named like one (PASSWORD, TOKEN, SECRET, SALT, KEY,
//! CREDENTIAL, in any case) becomes `[redacted:NAME]`, and URL credentials
//! and query values become `***` (etl-core's [`etl_core::redact::urls_in`],
//! which the commands' own logs use).

use std::ffi::OsString;

const SECRET_WORDS: [&str; 6] = ["PASSWORD", "TOKEN", "SECRET", "SALT", "KEY", "CREDENTIAL"];

/// The secrets of one environment.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// (value, NAME), longest value first so a secret that contains another
    /// is masked whole.
    secrets: Vec<(String, String)>,
}

/// True for a variable name that says it holds a secret. A name ending in
/// `_FILE`, `_PATH` or `_DIR` holds where a secret is, not the secret.
pub fn is_secret_name(name: &str) -> bool {
    let up = name.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|w| up.contains(w))
        && !(up.ends_with("_FILE") || up.ends_with("_PATH") || up.ends_with("_DIR"))
}

impl Redactor {
    /// The secrets of this process's environment.
    pub fn from_env() -> Self {
        Self::from_vars(std::env::vars_os())
    }

    /// The secrets among `vars`.
    pub fn from_vars(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Self {
        let mut secrets = Vec::new();
        for (k, v) in vars {
            let (Some(k), Some(v)) = (k.to_str(), v.to_str()) else {
                continue;
            };
            if !is_secret_name(k) || v.chars().count() < 4 {
                continue;
            }
            secrets.push((v.to_owned(), k.to_owned()));
            // A multi-line secret (a private key) is masked line by line too.
            if v.contains('\n') {
                for line in v.lines().map(str::trim).filter(|l| l.len() >= 8) {
                    secrets.push((line.to_owned(), k.to_owned()));
                }
            }
        }
        secrets.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Self { secrets }
    }

    /// `text` with every secret masked: URLs first (so a secret inside a URL
    /// is masked the URL's way), then the variables' values.
    pub fn apply(&self, text: &str) -> String {
        let mut out = etl_core::redact::urls_in(text).into_owned();
        for (value, name) in &self.secrets {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), &format!("[redacted:{name}]"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(v: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        v.iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    #[test]
    fn secret_values_and_url_credentials_are_masked() {
        let r = Redactor::from_vars(vars(&[
            ("ETL_IMAP_PASSWORD", "hunter22"),
            ("ETL_MASK_SALT", "salty-5ecret"),
            ("api_token", "tok"),
            ("ETL_PASSWORD_FILE", "/run/secrets/pw"),
            ("HOME", "/root"),
        ]));
        assert_eq!(
            r.apply("pw hunter22 at https://etl:hunter22@h/x?token=abc, salt salty-5ecret in /root"),
            "pw [redacted:ETL_IMAP_PASSWORD] at https://etl:***@h/x?token=***, salt [redacted:ETL_MASK_SALT] in /root"
        );
        // Too short to mask without masking ordinary words; a path is not a secret.
        assert_eq!(r.apply("tok /run/secrets/pw"), "tok /run/secrets/pw");
    }

    #[test]
    fn a_multi_line_key_is_masked_line_by_line() {
        let key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkq\nhkiG9w0BAQEFAASC\n-----END KEY-----";
        let r = Redactor::from_vars(vars(&[("GOOGLE_PRIVATE_KEY", key)]));
        let out = r.apply("bad key line: hkiG9w0BAQEFAASC");
        assert_eq!(out, "bad key line: [redacted:GOOGLE_PRIVATE_KEY]");
    }
}
