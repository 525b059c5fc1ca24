//! Field-name normalisation shared by `etl-parse --normalize-headers` and
//! `etl-transform --normalize-keys`, so both commands agree on a name.

/// snake_case: words split at non-alphanumerics and lower-to-upper steps
/// (`Order ID` -> `order_id`, `updatedAt` -> `updated_at`).
pub fn snake(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev: Option<char> = None;
    for c in s.trim().chars() {
        if c.is_alphanumeric() {
            if c.is_uppercase()
                && prev.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit())
                && !out.ends_with('_')
            {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
        prev = Some(c);
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::snake;

    #[test]
    fn snake_case_names() {
        assert_eq!(snake("Order ID"), "order_id");
        assert_eq!(snake("updatedAt"), "updated_at");
        assert_eq!(snake("  Amount (EUR) "), "amount_eur");
        assert_eq!(snake("Straße Nr."), "straße_nr");
        assert_eq!(snake("--"), "");
    }
}
