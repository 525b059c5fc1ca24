//! Cell formats: what `repeatCell` (and `copyPaste`) set, kept per cell as
//! the `userEnteredFormat` object the API carries, and the number formats
//! `FORMATTED_VALUE` renders with.
//!
//! Every part of a `userEnteredFormat` is kept and returned as it was sent
//! (bold text, colours, alignment...); only `numberFormat` changes what a
//! value reads as. Patterns follow Sheets' number-format syntax for the
//! parts clients use: digit placeholders `0` and `#`, the thousands
//! separator `,`, decimals, `%`, literal text (quoted, escaped with `\`, or
//! plain `$ € ...`), a second `;` section for negatives; and for dates and
//! times `yyyy yy mmmm mmm mm m dd d hh h mm ss am/pm`. `TEXT` shows the
//! value as entered.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::fields::Mask;

/// Sets the parts of `target` that `mask` names (the whole format for an
/// empty mask) from `given`; a named part `given` lacks is removed.
pub fn apply(target: &mut Option<Map<String, Value>>, given: Option<&Value>, mask: &Mask) {
    if mask.is_whole() {
        *target = given
            .and_then(Value::as_object)
            .filter(|m| !m.is_empty())
            .cloned();
        return;
    }
    let t = target.get_or_insert_with(Map::new);
    for (k, sub) in mask.parts() {
        let part = given.and_then(|g| g.get(k));
        let mut child = t.get(k).and_then(Value::as_object).cloned();
        if sub.is_whole() {
            match part {
                Some(v) => {
                    t.insert(k.clone(), v.clone());
                }
                None => {
                    t.remove(k);
                }
            }
            continue;
        }
        apply(&mut child, part, sub);
        match child {
            Some(c) => {
                t.insert(k.clone(), Value::Object(c));
            }
            None => {
                t.remove(k);
            }
        }
    }
    if t.is_empty() {
        *target = None;
    }
}

/// `n` as its `numberFormat` (`{"type": ..., "pattern": ...}`) shows it;
/// `None` when the format leaves the value as it is.
pub fn number(n: f64, nf: &Value) -> Option<String> {
    let ty = nf.get("type").and_then(Value::as_str).unwrap_or("NUMBER");
    let pattern = nf.get("pattern").and_then(Value::as_str).unwrap_or("");
    if ty == "TEXT" || (ty == "SCIENTIFIC" && pattern.is_empty()) {
        return None;
    }
    let pattern = if pattern.is_empty() {
        match ty {
            "PERCENT" => "0.00%",
            "CURRENCY" => "$#,##0.00",
            "DATE" => "yyyy-mm-dd",
            "TIME" => "hh:mm:ss",
            "DATE_TIME" => "yyyy-mm-dd hh:mm:ss",
            _ => "#,##0.00",
        }
    } else {
        pattern
    };
    let is_date = matches!(ty, "DATE" | "TIME" | "DATE_TIME")
        || (!pattern.contains('0')
            && !pattern.contains('#')
            && pattern
                .chars()
                .any(|c| "ymdhs".contains(c.to_ascii_lowercase())));
    if is_date {
        return date(n, pattern);
    }
    let mut sections = pattern.split(';');
    let pos = sections.next().unwrap_or("");
    match sections.next() {
        Some(neg) if n < 0.0 => Some(numeric(-n, neg)),
        _ if n < 0.0 => Some(format!("-{}", numeric(-n, pos))),
        _ => Some(numeric(n, pos)),
    }
}

/// A non-negative `n` in one numeric section of a pattern.
fn numeric(n: f64, pattern: &str) -> String {
    let p: Vec<char> = pattern.chars().collect();
    let is_ph = |c: char| c == '0' || c == '#';
    let (Some(mut first), Some(last)) = (
        p.iter().position(|&c| is_ph(c)),
        p.iter().rposition(|&c| is_ph(c)),
    ) else {
        return literal(&p).0;
    };
    if first > 0 && p[first - 1] == '.' {
        first -= 1;
    }
    let (prefix, pct_a) = literal(&p[..first]);
    let (suffix, pct_b) = literal(&p[last + 1..]);
    let n = n * 100f64.powi(i32::from(pct_a) + i32::from(pct_b));
    let digits: String = p[first..=last].iter().collect();
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((&digits, ""));
    let decimals = frac_part.chars().filter(|&c| is_ph(c)).count();
    let min_decimals = frac_part.chars().filter(|c| *c == '0').count();
    let min_int = int_part.chars().filter(|c| *c == '0').count();
    let grouped = int_part.contains(',');
    let text = format!("{n:.decimals$}");
    let (i, f) = text.split_once('.').unwrap_or((&text, ""));
    let mut f = f.to_owned();
    while f.len() > min_decimals && f.ends_with('0') {
        f.pop();
    }
    let i = i.trim_start_matches('0');
    let i = format!("{i:0>min_int$}");
    let i = if grouped { group(&i) } else { i };
    let mut out = prefix;
    out.push_str(&i);
    if !f.is_empty() {
        out.push('.');
        out.push_str(&f);
    }
    out.push_str(&suffix);
    out
}

/// The literal text of a pattern part (quoted text, `\x`, plain
/// characters; `_x` and `*x` take no room here) and whether it holds `%`.
fn literal(p: &[char]) -> (String, bool) {
    let (mut out, mut pct) = (String::new(), false);
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '"' => {
                i += 1;
                while i < p.len() && p[i] != '"' {
                    out.push(p[i]);
                    i += 1;
                }
            }
            '\\' => {
                if let Some(&c) = p.get(i + 1) {
                    out.push(c);
                }
                i += 1;
            }
            '_' | '*' => i += 1,
            '%' => {
                pct = true;
                out.push('%');
            }
            c => out.push(c),
        }
        i += 1;
    }
    (out, pct)
}

/// `1234567` to `1,234,567`.
fn group(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (k, c) in digits.chars().enumerate() {
        if k > 0 && (digits.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A serial date-time (days since 1899-12-30) in a date pattern; `None`
/// outside years 1 to 9999.
// The serial is checked to lie within those years: the casts are exact.
#[allow(clippy::cast_possible_truncation)]
fn date(serial: f64, pattern: &str) -> Option<String> {
    if !(-693_593.0..2_958_466.0).contains(&serial) {
        return None;
    }
    let days = serial.floor();
    let secs = ((serial - days) * 86_400.0).round() as i64;
    let epoch = jiff::civil::date(1899, 12, 30);
    let d = epoch
        .checked_add(jiff::Span::new().days(days as i64))
        .ok()?;
    let (h, mi, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let twelve = pattern.to_ascii_lowercase().contains("am/pm");
    let p: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut after_hour = false;
    while i < p.len() {
        let c = p[i].to_ascii_lowercase();
        let run = p[i..]
            .iter()
            .take_while(|x| x.to_ascii_lowercase() == c)
            .count();
        match c {
            'y' => {
                if run >= 3 {
                    let _ = write!(out, "{:04}", d.year());
                } else {
                    let _ = write!(out, "{:02}", d.year() % 100);
                }
            }
            'm' if after_hour && run <= 2 => {
                let _ = write!(out, "{mi:0run$}");
                after_hour = false;
            }
            'm' => match run {
                1 => out.push_str(&d.month().to_string()),
                2 => {
                    let _ = write!(out, "{:02}", d.month());
                }
                3 => out.push_str(&MONTHS[usize::try_from(d.month() - 1).unwrap_or(0)][..3]),
                _ => out.push_str(MONTHS[usize::try_from(d.month() - 1).unwrap_or(0)]),
            },
            'd' => match run {
                1 => out.push_str(&d.day().to_string()),
                _ => {
                    let _ = write!(out, "{:02}", d.day());
                }
            },
            'h' => {
                let hh = if twelve { (h + 11) % 12 + 1 } else { h };
                let _ = write!(out, "{hh:0run$}");
                after_hour = true;
            }
            's' => {
                let _ = write!(out, "{s:0run$}");
            }
            'a' if p[i..]
                .iter()
                .collect::<String>()
                .to_ascii_lowercase()
                .starts_with("am/pm") =>
            {
                out.push_str(if h < 12 { "AM" } else { "PM" });
                i += 5;
                continue;
            }
            '"' => {
                let end = p[i + 1..]
                    .iter()
                    .position(|&x| x == '"')
                    .map_or(p.len(), |k| i + 1 + k);
                out.extend(&p[i + 1..end]);
                i = end + 1;
                continue;
            }
            '\\' => {
                if let Some(&x) = p.get(i + 1) {
                    out.push(x);
                }
                i += 2;
                continue;
            }
            _ => {
                out.push(p[i]);
                i += 1;
                continue;
            }
        }
        i += run;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn n(x: f64, pattern: &str) -> String {
        number(x, &json!({"type": "NUMBER", "pattern": pattern})).unwrap()
    }

    #[test]
    fn number_patterns() {
        assert_eq!(n(1234.5, "#,##0.00"), "1,234.50");
        assert_eq!(n(1234.5, "0.00"), "1234.50");
        assert_eq!(n(1234.567, "#,##0"), "1,235");
        assert_eq!(n(0.5, "0.0%"), "50.0%");
        assert_eq!(n(-3.0, "#,##0.00"), "-3.00");
        assert_eq!(n(-3.0, "#,##0.00;(#,##0.00)"), "(3.00)");
        assert_eq!(n(12.0, "\"$\"#,##0.00"), "$12.00");
        assert_eq!(n(12.0, "$#,##0.00"), "$12.00");
        assert_eq!(n(1_234_567.0, "#,##0"), "1,234,567");
        assert_eq!(n(0.25, "0.###"), "0.25");
        assert_eq!(n(7.0, "000"), "007");
    }

    #[test]
    fn date_patterns() {
        // 2026-11-22 is serial 46348; 10:30 is 0.4375 of a day.
        let d = |x: f64, p: &str| number(x, &json!({"type": "DATE", "pattern": p})).unwrap();
        assert_eq!(d(46348.0, "yyyy-mm-dd"), "2026-11-22");
        assert_eq!(d(46348.0, "dd/mm/yyyy"), "22/11/2026");
        assert_eq!(d(46348.4375, "yyyy-mm-dd hh:mm"), "2026-11-22 10:30");
        assert_eq!(d(46348.0, "d mmm yy"), "22 Nov 26");
        assert_eq!(d(46348.0, "mmmm d, yyyy"), "November 22, 2026");
        assert_eq!(d(46348.9375, "h:mm am/pm"), "10:30 PM");
    }

    #[test]
    fn odd_patterns_and_values_never_panic() {
        let patterns = [
            "",
            ";",
            ";;;",
            "0.0.0",
            "\"unterminated",
            "\\",
            "_",
            "*",
            "%%",
            "#,##0.00\"",
            "yyyy",
            "\"",
            "am/pm",
            "a",
            "hh:mm:ss.000",
            "mmmmmm",
            "0000000000000000000000.0000000000",
            "General",
            "[Red]0.00",
            "ÿ0é",
        ];
        let values = [
            0.0,
            -0.0,
            1e300,
            -1e300,
            f64::MAX,
            f64::MIN_POSITIVE,
            3e6,
            -7e5,
            0.5,
        ];
        for p in patterns {
            for ty in [
                "NUMBER",
                "DATE",
                "TIME",
                "DATE_TIME",
                "PERCENT",
                "CURRENCY",
                "TEXT",
                "X",
            ] {
                for v in values {
                    let _ = number(v, &json!({"type": ty, "pattern": p}));
                }
            }
        }
    }

    #[test]
    fn masks_set_and_remove_parts() {
        let mut f = None;
        let bold = json!({"textFormat": {"bold": true}, "numberFormat": {"type": "NUMBER", "pattern": "0.00"}});
        apply(
            &mut f,
            Some(&bold),
            &crate::fields::parse("userEnteredFormat")
                .unwrap()
                .parts()
                .next()
                .unwrap()
                .1
                .clone(),
        );
        assert_eq!(f.as_ref().map(Map::len), Some(2));
        let mask = crate::fields::parse("numberFormat").unwrap();
        apply(&mut f, Some(&json!({})), &mask);
        assert_eq!(
            Value::Object(f.clone().unwrap()),
            json!({"textFormat": {"bold": true}})
        );
        let mask = crate::fields::parse("textFormat.bold").unwrap();
        apply(&mut f, Some(&json!({"textFormat": {}})), &mask);
        assert_eq!(f, None);
    }
}
