//! Watermark values and how they compare: numbers exactly (decimal, never
//! through f64), timestamps by instant, strings bytewise.
//!
//! A [`Mark`] is the comparable form; the [`Value`] stored in the state file
//! is kept alongside it so a number keeps its text (`12345678901234567890`
//! stays that) and a timestamp is stored normalised to UTC (comparable
//! without knowing the time zone it was read in).

use std::cmp::Ordering;
use std::str::FromStr;

use bigdecimal::BigDecimal;
use etl_core::Value;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// `--type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// RFC 3339 (`2026-11-21T06:00:00Z`, `+02:00`) or naive
    /// `YYYY-MM-DD HH:MM:SS[.fff]` (needs --timezone), compared by instant.
    Timestamp,
    /// Decimal numbers (JSON numbers or numeric strings), compared exactly.
    Number,
    /// Strings, compared bytewise.
    String,
}

impl Kind {
    /// The name stored in the state file's `type`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Timestamp => "timestamp",
            Kind::Number => "number",
            Kind::String => "string",
        }
    }
}

/// A comparable watermark value. Values of one run are always one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// An instant.
    Ts(Timestamp),
    /// An exact decimal.
    Num(BigDecimal),
    /// A string.
    Str(String),
}

impl PartialOrd for Mark {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (self, other) {
            (Mark::Ts(a), Mark::Ts(b)) => Some(a.cmp(b)),
            (Mark::Num(a), Mark::Num(b)) => Some(a.cmp(b)),
            (Mark::Str(a), Mark::Str(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            _ => None,
        }
    }
}

/// A parsed value with the form it is stored in.
#[derive(Debug, Clone)]
pub struct Seen {
    /// For comparisons.
    pub mark: Mark,
    /// For the state file.
    pub value: Value,
}

/// Parses the text of a timestamp.
pub fn parse_timestamp(s: &str, tz: Option<&TimeZone>) -> Result<Timestamp, String> {
    let t = s.trim();
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts);
    }
    let naive = t.parse::<jiff::civil::DateTime>().map_err(|_| {
        format!("{s:?} is not a timestamp (RFC 3339, or YYYY-MM-DD HH:MM:SS[.fff] with --timezone)")
    })?;
    let tz = tz.ok_or_else(|| {
        format!("{s:?} has no UTC offset: pass --timezone (e.g. --timezone Europe/Paris or UTC)")
    })?;
    naive
        .to_zoned(tz.clone())
        .map(|z| z.timestamp())
        .map_err(|e| format!("{s:?} in the given --timezone: {e}"))
}

/// Parses one value as `kind`. The error says what was wrong, for a reject
/// message that names the field.
pub fn parse(kind: Kind, v: &Value, tz: Option<&TimeZone>) -> Result<Seen, String> {
    match (kind, v) {
        (Kind::Number, Value::Number(n)) => BigDecimal::from_str(n.as_str())
            .map(|d| Seen {
                mark: Mark::Num(d),
                value: v.clone(),
            })
            .map_err(|e| format!("{n} is not a usable number: {e}")),
        (Kind::Number, Value::String(s)) => {
            let t = s.trim();
            let ok = !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
            match BigDecimal::from_str(t) {
                Ok(d) if ok => Ok(Seen {
                    mark: Mark::Num(d),
                    value: v.clone(),
                }),
                _ => Err(format!("{s:?} is not a number")),
            }
        }
        (Kind::Timestamp, Value::String(s)) => {
            let ts = parse_timestamp(s, tz)?;
            Ok(Seen {
                mark: Mark::Ts(ts),
                value: Value::String(format!("{ts}")),
            })
        }
        (Kind::String, Value::String(s)) => Ok(Seen {
            mark: Mark::Str(s.clone()),
            value: v.clone(),
        }),
        (Kind::String, Value::Number(n)) => Err(format!(
            "{n} is a number; strings compare bytewise (\"10\" < \"9\"): use --type number"
        )),
        (kind, other) => Err(format!(
            "expected a {}, found {}",
            kind.name(),
            other.type_name()
        )),
    }
}

/// How a committed and a pending value of one key compare, by the key's
/// type: `timestamp`, `number` and `string` as [`parse`] reads them; `mail`
/// (etl-fetch-mail's watermarks) by IMAP `(uidvalidity, uid)` (RFC 3501:
/// a new UIDVALIDITY is always greater), Maildir `(mtime_ns, name)` or mbox
/// `offset`. `None` when they cannot be compared (another type, a value of
/// another shape): the pending value is then taken as it is.
pub fn compare_stored(kind: &str, old: &Value, new: &Value) -> Option<Ordering> {
    let typed = match kind {
        "timestamp" => Some(Kind::Timestamp),
        "number" => Some(Kind::Number),
        "string" => Some(Kind::String),
        _ => None,
    };
    if let Some(k) = typed {
        let (a, b) = (parse(k, old, None).ok()?, parse(k, new, None).ok()?);
        return a.mark.partial_cmp(&b.mark);
    }
    if kind != "mail" {
        return None;
    }
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&old.to_json()).ok()?,
        serde_json::from_str(&new.to_json()).ok()?,
    );
    let num = |v: &serde_json::Value, f: &str| v.get(f).and_then(serde_json::Value::as_i64);
    let text = |v: &serde_json::Value, f: &str| {
        v.get(f)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let pair = |v: &serde_json::Value| -> Option<(i64, i64, String)> {
        if let (Some(validity), Some(uid)) = (num(v, "uidvalidity"), num(v, "uid")) {
            return Some((validity, uid, String::new()));
        }
        if let (Some(mtime), Some(name)) = (num(v, "mtime_ns"), text(v, "name")) {
            return Some((mtime, 0, name));
        }
        num(v, "offset").map(|o| (o, 0, String::new()))
    };
    let shape = |v: &serde_json::Value| {
        (
            v.get("uid").is_some(),
            v.get("name").is_some(),
            v.get("offset").is_some(),
        )
    };
    if shape(&a) != shape(&b) {
        return None;
    }
    Some(pair(&a)?.cmp(&pair(&b)?))
}

/// `--overlap`: how far before the committed watermark to start again.
#[derive(Debug, Clone)]
pub enum Overlap {
    /// For timestamps: a duration (`10m`, `2h`, `1d`, `PT1H`).
    Duration(SignedDuration),
    /// For numbers: an amount.
    Amount(BigDecimal),
}

/// Parses `--overlap` for `kind`.
pub fn parse_overlap(kind: Kind, s: &str) -> Result<Overlap, String> {
    match kind {
        Kind::Timestamp => {
            let span: jiff::Span = s.trim().parse().map_err(|e| {
                format!("--overlap {s:?}: not a duration (e.g. 10m, 2h, 1d, PT1H): {e}")
            })?;
            let d = span
                .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
                .map_err(|e| format!("--overlap {s:?}: {e}"))?;
            if d.is_negative() {
                return Err(format!("--overlap {s:?} must not be negative"));
            }
            Ok(Overlap::Duration(d))
        }
        Kind::Number => {
            let n = BigDecimal::from_str(s.trim())
                .map_err(|_| format!("--overlap {s:?}: not a number"))?;
            if n.sign() == bigdecimal::num_bigint::Sign::Minus {
                return Err(format!("--overlap {s:?} must not be negative"));
            }
            Ok(Overlap::Amount(n))
        }
        Kind::String => {
            Err("--overlap needs --type timestamp or number: strings have no distance".into())
        }
    }
}

/// The threshold `mark - overlap`.
pub fn minus(mark: &Mark, overlap: Option<&Overlap>) -> Result<Mark, String> {
    Ok(match (mark, overlap) {
        (m, None) => m.clone(),
        (Mark::Ts(t), Some(Overlap::Duration(d))) => Mark::Ts(
            t.checked_sub(*d)
                .map_err(|e| format!("watermark minus --overlap: {e}"))?,
        ),
        (Mark::Num(n), Some(Overlap::Amount(a))) => Mark::Num(n - a),
        _ => return Err("--overlap does not fit the watermark type".into()),
    })
}

/// How a threshold is shown in logs.
pub fn display(mark: &Mark) -> String {
    match mark {
        Mark::Ts(t) => t.to_string(),
        Mark::Num(n) => n.to_string(),
        Mark::Str(s) => s.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> Mark {
        parse(Kind::Number, &Value::parse(s).unwrap(), None)
            .unwrap()
            .mark
    }

    #[test]
    fn numbers_compare_exactly_beyond_f64() {
        // As f64 these two are the same number.
        assert!(num("12345678901234567891") > num("12345678901234567890"));
        assert!(num("0.30000000000000000001") > num("0.3"));
        assert!(num("1e400") > num("9e399"));
        assert_eq!(num("1.0").partial_cmp(&num("1")), Some(Ordering::Equal));
        assert!(
            num("\"10\"") > num("\"9\""),
            "numeric strings compare as numbers"
        );
        assert!(parse(Kind::Number, &Value::from("12abc"), None).is_err());
        assert!(parse(Kind::Number, &Value::from(""), None).is_err());
        assert!(parse(Kind::Number, &Value::Bool(true), None).is_err());
    }

    #[test]
    fn timestamps_compare_by_instant_and_store_utc() {
        let a = parse(
            Kind::Timestamp,
            &Value::from("2026-11-21T08:00:00+02:00"),
            None,
        )
        .unwrap();
        let b = parse(
            Kind::Timestamp,
            &Value::from("2026-11-21T06:00:00.5Z"),
            None,
        )
        .unwrap();
        assert!(b.mark > a.mark);
        assert_eq!(a.value.as_str(), Some("2026-11-21T06:00:00Z"));
    }

    #[test]
    fn naive_timestamps_need_a_zone() {
        let v = Value::from("2026-11-21 06:00:00.250");
        let e = parse(Kind::Timestamp, &v, None).unwrap_err();
        assert!(e.contains("--timezone"), "{e}");
        let paris = TimeZone::get("Europe/Paris").unwrap();
        let s = parse(Kind::Timestamp, &v, Some(&paris)).unwrap();
        assert_eq!(s.value.as_str(), Some("2026-11-21T05:00:00.25Z"));
        assert!(parse(Kind::Timestamp, &Value::from("yesterday"), Some(&paris)).is_err());
    }

    #[test]
    fn strings_compare_bytewise_and_refuse_numbers() {
        let s = |x: &str| parse(Kind::String, &Value::from(x), None).unwrap().mark;
        assert!(s("b") > s("a") && s("a") > s("B"));
        assert!(parse(Kind::String, &Value::from(5_u64), None)
            .unwrap_err()
            .contains("--type number"));
    }

    #[test]
    fn stored_values_compare_by_their_type() {
        let v = |s: &str| Value::parse(s).unwrap();
        let c = |k: &str, a: &str, b: &str| compare_stored(k, &v(a), &v(b));
        assert_eq!(c("number", "9", "5"), Some(Ordering::Greater));
        assert_eq!(c("number", "\"10\"", "\"9\""), Some(Ordering::Greater));
        assert_eq!(
            c(
                "timestamp",
                "\"2026-11-21T06:00:00Z\"",
                "\"2026-11-21T07:00:00+02:00\""
            ),
            Some(Ordering::Greater)
        );
        assert_eq!(c("string", "\"b\"", "\"a\""), Some(Ordering::Greater));
        let imap = |validity: u32, uid: u32| format!(r#"{{"uidvalidity":{validity},"uid":{uid}}}"#);
        assert_eq!(c("mail", &imap(7, 9), &imap(7, 5)), Some(Ordering::Greater));
        assert_eq!(
            c("mail", &imap(7, 9), &imap(8, 1)),
            Some(Ordering::Less),
            "a new UIDVALIDITY is greater"
        );
        assert_eq!(
            c(
                "mail",
                r#"{"mtime_ns":5,"name":"b"}"#,
                r#"{"mtime_ns":5,"name":"a"}"#
            ),
            Some(Ordering::Greater)
        );
        assert_eq!(
            c("mail", r#"{"offset":90}"#, r#"{"offset":100}"#),
            Some(Ordering::Less)
        );
        assert_eq!(
            c("mail", r#"{"offset":90}"#, &imap(1, 1)),
            None,
            "other shapes"
        );
        assert_eq!(c("number", "9", "\"x\""), None);
        assert_eq!(c("mail-actions", "1", "2"), None);
    }

    #[test]
    fn overlap_subtracts() {
        let t = parse(Kind::Timestamp, &Value::from("2026-11-21T06:00:00Z"), None)
            .unwrap()
            .mark;
        let o = parse_overlap(Kind::Timestamp, "1d 2h").unwrap();
        assert_eq!(
            display(&minus(&t, Some(&o)).unwrap()),
            "2026-11-20T04:00:00Z"
        );
        let o = parse_overlap(Kind::Timestamp, "PT30M").unwrap();
        assert_eq!(
            display(&minus(&t, Some(&o)).unwrap()),
            "2026-11-21T05:30:00Z"
        );
        let n = parse_overlap(Kind::Number, "100").unwrap();
        assert_eq!(
            minus(&num("12345678901234567890"), Some(&n)).unwrap(),
            num("12345678901234567790")
        );
        assert!(parse_overlap(Kind::String, "1").is_err());
        assert!(parse_overlap(Kind::Number, "-1").is_err());
        assert!(parse_overlap(Kind::Timestamp, "soon").is_err());
    }
}
