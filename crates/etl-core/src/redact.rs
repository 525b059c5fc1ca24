//! Secrets out of what a command says about its work: URL credentials and
//! query values are masked in every log line, summary and reject message.
//!
//! The log writer, the summary file and the rejects file call [`urls_in`] on
//! the text they write (messages, string fields, reject errors and sources),
//! so no command has to remember to: a URL that reaches a log through an
//! error message of a library (reqwest, tokio-postgres) is covered too.
//! Data (record values, a reject's `input`) is never rewritten.
//!
//! What is masked, as in the URLs curl and psql print:
//! `https://user:pw@host/p?token=abc&x=1#k=v` becomes
//! `https://user:***@host/p?token=***&x=***#k=***`. A user name without a
//! password (`https://TOKEN@host`) is masked whole; the scheme, host, port
//! and path stay, so a message still says where the request went.

use std::borrow::Cow;

/// The mask written in place of a secret.
pub const MASK: &str = "***";

/// Masks the credentials and query values of every `scheme://` URL in
/// `text`. Text without `://` is returned as it is, without a copy.
pub fn urls_in(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        // The scheme: letters, digits, + - . before "://".
        let scheme_start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let body = &rest[at + 3..];
        let mut end = body
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(body.len());
        // Punctuation that ends a sentence is not part of the URL.
        while end > 0 && body[..end].ends_with(['.', ',', ';', ':', ')', ']']) {
            end -= 1;
        }
        out.push_str(&rest[..at + 3]);
        if scheme_start == at {
            // "://" with no scheme: not a URL.
            rest = body;
            continue;
        }
        mask_url_body(&body[..end], &mut out);
        rest = &body[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Masks one URL (as [`urls_in`] does for each URL of a text).
pub fn url(u: &str) -> Cow<'_, str> {
    urls_in(u)
}

/// `body` is what follows `scheme://`.
fn mask_url_body(body: &str, out: &mut String) {
    let auth_end = body.find(['/', '?', '#']).unwrap_or(body.len());
    let (authority, tail) = body.split_at(auth_end);
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(MASK);
                }
                None => out.push_str(MASK),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    // Path, then query and fragment with their values masked.
    let q = tail.find(['?', '#']).unwrap_or(tail.len());
    out.push_str(&tail[..q]);
    let mut rest = &tail[q..];
    while let Some(sep) = rest.chars().next() {
        out.push(sep);
        rest = &rest[1..];
        let next = rest.find(['&', '#', ';']).unwrap_or(rest.len());
        let pair = &rest[..next];
        match pair.split_once('=') {
            Some((k, v)) if !v.is_empty() => {
                out.push_str(k);
                out.push('=');
                out.push_str(MASK);
            }
            Some(_) => out.push_str(pair),
            // A bare value (`?abcdef`) can be a token as well.
            None if !pair.is_empty() => out.push_str(MASK),
            None => {}
        }
        rest = &rest[next..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_query_values_are_masked() {
        assert_eq!(
            urls_in("https://u:pw@host.example:8443/a/b.csv?token=abc&x=1#k=v"),
            "https://u:***@host.example:8443/a/b.csv?token=***&x=***#k=***"
        );
        assert_eq!(
            urls_in("GET https://ghp_SECRET@github.example/x failed"),
            "GET https://***@github.example/x failed"
        );
        assert_eq!(
            urls_in("postgres://etl:hunter2@db:5432/w?sslmode=require"),
            "postgres://etl:***@db:5432/w?sslmode=***"
        );
        assert_eq!(urls_in("http://h/p?abcdef"), "http://h/p?***");
    }

    #[test]
    fn text_around_urls_is_kept() {
        assert_eq!(
            urls_in("https://h/r.csv?sig=XYZ: HTTP 500 (attempt 2), see https://h/doc."),
            "https://h/r.csv?sig=***: HTTP 500 (attempt 2), see https://h/doc."
        );
        assert_eq!(
            urls_in("error sending request for url (https://h/x?key=K1)"),
            "error sending request for url (https://h/x?key=***)"
        );
        assert_eq!(
            urls_in("{\"url\":\"https://a:b@h/\"}"),
            "{\"url\":\"https://a:***@h/\"}"
        );
        let plain = "no url here: 3 rows";
        assert!(matches!(urls_in(plain), Cow::Borrowed(_)));
        assert_eq!(urls_in("odd :// text"), "odd :// text");
        assert_eq!(urls_in("https://h/p?a=&b"), "https://h/p?a=&***");
    }

    #[test]
    fn non_ascii_is_safe() {
        assert_eq!(
            urls_in("é https://ü:é@h/é?é=é é"),
            "é https://ü:***@h/é?é=*** é"
        );
    }
}
