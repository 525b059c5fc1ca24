//! The steps: one vocabulary for flags and spec files.
//!
//! Every step is parsed once from the same text a flag takes (`--rename
//! 'a=b'` and `rename = "a=b"` go through [`Step::parse`]), so the two
//! front ends cannot drift apart. Applying a step works on the record in
//! place: keys are renamed where they stand, values are rewritten without a
//! copy of the record, and regexes, expressions and casts were compiled
//! before the first record arrived.

use std::collections::HashSet;

use etl_core::record::Map;
use etl_core::{Record, Value};
use regex::Regex;
use sha2::{Digest, Sha256};

use crate::access::{Access, Keyed};
use crate::cast::{Cast, CastOptions};
use crate::expr::{Env, Expr};

/// The step names, as flags (`--rename-regex`) and spec keys (`rename-regex`
/// or `rename_regex`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Select,
    Drop,
    Rename,
    RenameRegex,
    Reorder,
    NormalizeKeys,
    Flatten,
    Unflatten,
    Cast,
    Trim,
    CollapseSpaces,
    Lower,
    Upper,
    Replace,
    Default,
    NullIf,
    Coalesce,
    Filter,
    Set,
    Require,
    Unique,
    Mask,
    Add,
    AddRunId,
    AddLoadedAt,
}

impl Kind {
    /// Every step, in `--help` order.
    pub const ALL: [Kind; 25] = [
        Kind::Select,
        Kind::Drop,
        Kind::Rename,
        Kind::RenameRegex,
        Kind::Reorder,
        Kind::NormalizeKeys,
        Kind::Flatten,
        Kind::Unflatten,
        Kind::Cast,
        Kind::Trim,
        Kind::CollapseSpaces,
        Kind::Lower,
        Kind::Upper,
        Kind::Replace,
        Kind::Default,
        Kind::NullIf,
        Kind::Coalesce,
        Kind::Filter,
        Kind::Set,
        Kind::Require,
        Kind::Unique,
        Kind::Mask,
        Kind::Add,
        Kind::AddRunId,
        Kind::AddLoadedAt,
    ];

    /// The flag name without dashes (also the clap id).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Select => "select",
            Kind::Drop => "drop",
            Kind::Rename => "rename",
            Kind::RenameRegex => "rename-regex",
            Kind::Reorder => "reorder",
            Kind::NormalizeKeys => "normalize-keys",
            Kind::Flatten => "flatten",
            Kind::Unflatten => "unflatten",
            Kind::Cast => "cast",
            Kind::Trim => "trim",
            Kind::CollapseSpaces => "collapse-spaces",
            Kind::Lower => "lower",
            Kind::Upper => "upper",
            Kind::Replace => "replace",
            Kind::Default => "default",
            Kind::NullIf => "null-if",
            Kind::Coalesce => "coalesce",
            Kind::Filter => "filter",
            Kind::Set => "set",
            Kind::Require => "require",
            Kind::Unique => "unique",
            Kind::Mask => "mask",
            Kind::Add => "add",
            Kind::AddRunId => "add-run-id",
            Kind::AddLoadedAt => "add-loaded-at",
        }
    }

    /// Looks a step up by flag or spec key (`-` or `_`).
    pub fn from_name(s: &str) -> Option<Self> {
        let s = s.replace('_', "-");
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Steps whose argument may be left out (a spec says `unflatten = true`).
    pub fn takes_no_value(self) -> bool {
        matches!(
            self,
            Kind::Flatten | Kind::Unflatten | Kind::AddRunId | Kind::AddLoadedAt
        )
    }
}

/// A problem in a step's argument, with the byte offset in it when known.
#[derive(Debug, Clone)]
pub struct StepError {
    /// Offset in the argument text.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

fn bad<T>(m: impl Into<String>) -> Result<T, StepError> {
    Err(StepError {
        offset: 0,
        message: m.into(),
    })
}

/// Which fields a value step touches.
#[derive(Debug, Clone)]
pub enum Fields {
    /// `*`: every string value.
    All,
    /// Named fields.
    Some(Vec<String>),
}

impl Fields {
    fn parse(s: &str) -> Result<Self, StepError> {
        if s.trim() == "*" {
            return Ok(Fields::All);
        }
        Ok(Fields::Some(list(s)?))
    }
}

/// `a,b,c` (names trimmed; empty names refused).
fn list(s: &str) -> Result<Vec<String>, StepError> {
    let v: Vec<String> = s.split(',').map(|p| p.trim().to_owned()).collect();
    if v.iter().any(String::is_empty) {
        return bad(format!("{s:?}: expected NAME[,NAME...]"));
    }
    Ok(v)
}

/// Splits at commas outside parentheses; a piece without `=` belongs to the
/// previous one (a date format may contain a comma: `d=date:%b %d, %Y`).
fn assignments(s: &str) -> Result<Vec<(String, String)>, StepError> {
    let mut pieces: Vec<String> = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                pieces.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    pieces.push(cur);
    let mut out: Vec<(String, String)> = Vec::new();
    for p in pieces {
        match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => out.push((k.trim().to_owned(), v.to_owned())),
            _ => match out.last_mut() {
                Some(last) => {
                    last.1.push(',');
                    last.1.push_str(&p);
                }
                None => return bad(format!("{s:?}: expected NAME=VALUE")),
            },
        }
    }
    Ok(out)
}

fn one_assignment(s: &str) -> Result<(String, String), StepError> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => bad(format!("{s:?}: expected NAME=VALUE")),
    }
}

/// `--normalize-keys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    Snake,
    Lower,
    Trim,
}

/// `--mask` methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskKind {
    Hash,
    Redact,
    Truncate(usize),
    EmailDomain,
}

/// What a redacted value becomes.
pub const REDACTED: &str = "[REDACTED]";

/// One compiled step.
#[derive(Debug)]
pub enum Step {
    Select(Vec<String>),
    Drop(Vec<String>),
    Rename(Vec<(String, String)>),
    RenameRegex(Regex, String),
    Reorder(Vec<String>),
    NormalizeKeys(Norm),
    Flatten(String),
    Unflatten(String),
    Cast(Vec<(String, Cast)>),
    Trim(Fields),
    CollapseSpaces(Fields),
    Lower(Fields),
    Upper(Fields),
    Replace(Fields, Regex, String, bool),
    Default(String, String),
    NullIf(Fields, String),
    Coalesce(String, Vec<String>),
    Filter(Expr),
    Set(String, Expr),
    Require(Vec<String>),
    Unique(Vec<String>, HashSet<Box<[u8]>>),
    Mask(Vec<(String, MaskKind)>),
    Add(String, String),
    AddRunId,
    AddLoadedAt,
}

/// What happened to a record in one step.
#[derive(Debug)]
pub enum Outcome {
    /// Go on to the next step.
    Keep,
    /// A filter dropped it.
    Filtered,
    /// It cannot be processed: the message names the field.
    Reject(String),
}

/// Run-wide settings the steps read.
#[derive(Debug)]
pub struct Ctx<'t> {
    /// Cast options.
    pub cast: CastOptions,
    /// `--on-cast-error null`.
    pub cast_error_null: bool,
    /// Expression environment.
    pub env: Env<'t>,
    /// The mask salt (checked present before the run when a hash mask is used).
    pub salt: Option<Vec<u8>>,
    /// `_run_id`.
    pub run_id: String,
    /// `_loaded_at`.
    pub loaded_at: String,
}

impl Step {
    /// Parses one step from its flag text.
    #[allow(clippy::too_many_lines)] // one arm per step, each short
    pub fn parse(kind: Kind, arg: &str) -> Result<Self, StepError> {
        Ok(match kind {
            Kind::Select => Step::Select(list(arg)?),
            Kind::Drop => Step::Drop(list(arg)?),
            Kind::Rename => {
                let pairs = assignments(arg)?;
                for (_, new) in &pairs {
                    if new.trim().is_empty() {
                        return bad(format!("{arg:?}: empty new name"));
                    }
                }
                Step::Rename(
                    pairs
                        .into_iter()
                        .map(|(o, n)| (o, n.trim().to_owned()))
                        .collect(),
                )
            }
            Kind::RenameRegex => {
                let (pat, rep) = split_unescaped_eq(arg)
                    .ok_or_else(|| err0(format!("{arg:?}: expected PATTERN=REPLACEMENT")))?;
                let re = Regex::new(&pat).map_err(|e| err0(format!("bad regex: {e}")))?;
                Step::RenameRegex(re, rep)
            }
            Kind::Reorder => Step::Reorder(list(arg)?),
            Kind::NormalizeKeys => Step::NormalizeKeys(match arg.trim() {
                "snake" => Norm::Snake,
                "lower" => Norm::Lower,
                "trim" => Norm::Trim,
                other => return bad(format!("{other:?}: expected snake, lower or trim")),
            }),
            Kind::Flatten => Step::Flatten(if arg.is_empty() || arg == "true" {
                ".".into()
            } else {
                arg.to_owned()
            }),
            Kind::Unflatten => Step::Unflatten(if arg.is_empty() || arg == "true" {
                ".".into()
            } else {
                arg.to_owned()
            }),
            Kind::Cast => {
                let mut casts = Vec::new();
                for (f, t) in assignments(arg)? {
                    let c = Cast::parse(&t).map_err(|e| err0(format!("{f}: {e}")))?;
                    casts.push((f, c));
                }
                Step::Cast(casts)
            }
            Kind::Trim => Step::Trim(Fields::parse(arg)?),
            Kind::CollapseSpaces => Step::CollapseSpaces(Fields::parse(arg)?),
            Kind::Lower => Step::Lower(Fields::parse(arg)?),
            Kind::Upper => Step::Upper(Fields::parse(arg)?),
            Kind::Replace => {
                let (f, rest) = one_assignment(arg)?;
                let (re, rep, all) = parse_sed(&rest).map_err(|m| {
                    err0(format!("{arg:?}: {m} (expected F=/REGEX/REPLACEMENT/[gi])"))
                })?;
                Step::Replace(Fields::parse(&f)?, re, rep, all)
            }
            Kind::Default => {
                let (f, v) = one_assignment(arg)?;
                Step::Default(f, v)
            }
            Kind::NullIf => {
                let (f, v) = one_assignment(arg)?;
                Step::NullIf(Fields::parse(&f)?, v)
            }
            Kind::Coalesce => {
                let (t, srcs) = one_assignment(arg)?;
                Step::Coalesce(t, list(&srcs)?)
            }
            Kind::Filter => Step::Filter(Expr::parse(arg).map_err(|e| StepError {
                offset: e.offset,
                message: format!("bad expression: {}", e.message),
            })?),
            Kind::Set => {
                let (f, e) = one_assignment(arg)?;
                let prefix = arg.find('=').map_or(0, |i| i + 1);
                Step::Set(
                    f,
                    Expr::parse(&e).map_err(|e| StepError {
                        offset: prefix + e.offset,
                        message: format!("bad expression: {}", e.message),
                    })?,
                )
            }
            Kind::Require => Step::Require(list(arg)?),
            Kind::Unique => Step::Unique(list(arg)?, HashSet::new()),
            Kind::Mask => {
                let mut masks = Vec::new();
                for (f, m) in assignments(arg)? {
                    let m = m.trim();
                    let kind = match m {
                        "hash" => MaskKind::Hash,
                        "redact" => MaskKind::Redact,
                        "email-domain" | "email_domain" => MaskKind::EmailDomain,
                        _ => match m.strip_prefix("truncate:").map(|n| n.trim().parse()) {
                            Some(Ok(n)) => MaskKind::Truncate(n),
                            _ => {
                                return bad(format!(
                                "{f}: unknown mask {m:?} (hash, redact, truncate:N, email-domain)"
                            ))
                            }
                        },
                    };
                    masks.push((f, kind));
                }
                Step::Mask(masks)
            }
            Kind::Add => {
                let (f, v) = one_assignment(arg)?;
                Step::Add(f, v)
            }
            Kind::AddRunId | Kind::AddLoadedAt if !matches!(arg.trim(), "" | "true") => {
                return bad(format!("takes no value, found {arg:?}"))
            }
            Kind::AddRunId => Step::AddRunId,
            Kind::AddLoadedAt => Step::AddLoadedAt,
        })
    }

    /// True for a `mask` with a `hash` method (which needs the salt).
    pub fn needs_salt(&self) -> bool {
        matches!(self, Step::Mask(m) if m.iter().any(|(_, k)| *k == MaskKind::Hash))
    }

    /// The renames a `rename-regex` or `normalize-keys` step makes of these
    /// keys, in key order (empty for other steps).
    pub(crate) fn key_renames<'k>(
        &self,
        keys: impl Iterator<Item = &'k str>,
    ) -> Vec<(String, String)> {
        let mut renames = Vec::new();
        for k in keys {
            let n = match self {
                Step::RenameRegex(re, rep) if re.is_match(k) => {
                    re.replace_all(k, rep.as_str()).into_owned()
                }
                Step::NormalizeKeys(Norm::Snake) => snake(k),
                Step::NormalizeKeys(Norm::Lower) => k.trim().to_lowercase(),
                Step::NormalizeKeys(Norm::Trim) => k.trim().to_owned(),
                _ => continue,
            };
            if n != k {
                renames.push((k.to_owned(), n));
            }
        }
        renames
    }

    /// The fields of a value step (see [`Self::value_op`]).
    pub(crate) fn value_fields(&self) -> Option<&Fields> {
        match self {
            Step::Trim(f)
            | Step::CollapseSpaces(f)
            | Step::Lower(f)
            | Step::Upper(f)
            | Step::Replace(f, ..)
            | Step::NullIf(f, _) => Some(f),
            _ => None,
        }
    }

    /// What a value step (trim, collapse-spaces, lower, upper, replace,
    /// null-if) does to one of its fields' values; nothing for other steps.
    pub(crate) fn value_op(&self, v: &mut Value) {
        match self {
            Step::Trim(_) => {
                if let Value::String(s) = v {
                    trim_in_place(s);
                }
            }
            Step::CollapseSpaces(_) => {
                if let Value::String(s) = v {
                    if has_space_run(s) {
                        *s = collapse(s);
                    }
                }
            }
            Step::Lower(_) => {
                if let Value::String(s) = v {
                    if s.is_ascii() {
                        s.make_ascii_lowercase();
                    } else {
                        *s = s.to_lowercase();
                    }
                }
            }
            Step::Upper(_) => {
                if let Value::String(s) = v {
                    if s.is_ascii() {
                        s.make_ascii_uppercase();
                    } else {
                        *s = s.to_uppercase();
                    }
                }
            }
            Step::Replace(_, re, rep, all) => {
                if let Value::String(s) = v {
                    let r = if *all {
                        re.replace_all(s, rep.as_str())
                    } else {
                        re.replace(s, rep.as_str())
                    };
                    if let std::borrow::Cow::Owned(o) = r {
                        *s = o;
                    }
                }
            }
            Step::NullIf(_, val) => {
                let hit = match v {
                    Value::String(s) => s == val,
                    Value::Number(n) => n.as_str() == val,
                    Value::Bool(b) => (if *b { "true" } else { "false" }) == val,
                    _ => false,
                };
                if hit {
                    *v = Value::Null;
                }
            }
            _ => {}
        }
    }

    /// The fields the step reads or writes, in the order its code
    /// addresses them (the `i` of [`Access`]); the fast path plans one slot
    /// for each. Empty for the key steps and for value steps on `*`.
    pub(crate) fn field_names(&self) -> Vec<&str> {
        match self {
            Step::Cast(casts) => casts.iter().map(|(f, _)| f.as_str()).collect(),
            Step::Mask(masks) => masks.iter().map(|(f, _)| f.as_str()).collect(),
            Step::Default(f, _) | Step::Add(f, _) => vec![f.as_str()],
            Step::AddRunId => vec!["_run_id"],
            Step::AddLoadedAt => vec!["_loaded_at"],
            Step::Coalesce(target, srcs) => std::iter::once(target)
                .chain(srcs)
                .map(String::as_str)
                .collect(),
            Step::Require(names) | Step::Unique(names, _) => {
                names.iter().map(String::as_str).collect()
            }
            Step::Filter(e) => e.field_names(),
            Step::Set(f, e) => std::iter::once(f.as_str()).chain(e.field_names()).collect(),
            _ => match self.value_fields() {
                Some(Fields::Some(names)) => names.iter().map(String::as_str).collect(),
                _ => Vec::new(),
            },
        }
    }

    /// True when the step writes its first field, adding it when absent
    /// (default, coalesce, set, add, add-run-id, add-loaded-at).
    pub(crate) fn adds_field(&self) -> bool {
        matches!(
            self,
            Step::Default(..)
                | Step::Coalesce(..)
                | Step::Set(..)
                | Step::Add(..)
                | Step::AddRunId
                | Step::AddLoadedAt
        )
    }

    /// True for the steps that change only which keys a record has and in
    /// which order ([`Self::apply_keys`]).
    pub(crate) fn is_key_step(&self) -> bool {
        matches!(
            self,
            Step::Select(_)
                | Step::Drop(_)
                | Step::Rename(_)
                | Step::RenameRegex(..)
                | Step::NormalizeKeys(_)
                | Step::Reorder(_)
        )
    }

    /// A key step on an ordered list of names: a record's, or the fast
    /// path's plan of one key shape. Nothing for other steps.
    pub(crate) fn apply_keys(&self, rec: &mut impl Keyed) {
        match self {
            Step::Select(names) => {
                // The listed fields, in the list's order, and no others.
                let n = to_front(rec, names);
                rec.truncate(n);
            }
            Step::Drop(names) => {
                for n in names {
                    if let Some(i) = rec.position(n) {
                        rec.remove_at(i);
                    }
                }
            }
            Step::Rename(pairs) => {
                for (old, new) in pairs {
                    rename(rec, old, new);
                }
            }
            Step::RenameRegex(..) | Step::NormalizeKeys(_) => {
                let renames = self.key_renames((0..rec.len()).map(|i| rec.name_at(i)));
                for (old, new) in renames {
                    rename(rec, &old, &new);
                }
            }
            Step::Reorder(names) => {
                to_front(rec, names);
            }
            _ => {}
        }
    }

    /// Applies the step to one record (the general path).
    pub fn apply(&mut self, rec: &mut Record, ctx: &Ctx<'_>) -> Outcome {
        match self {
            Step::Flatten(sep) => {
                if rec.values().any(|v| matches!(v, Value::Object(_))) {
                    let old = std::mem::take(rec);
                    let mut out = etl_core::map_with_capacity(old.len() + 4);
                    for (k, v) in old {
                        flatten_into(&mut out, k, v, sep, 0);
                    }
                    *rec = out;
                }
            }
            Step::Unflatten(sep) => {
                if rec.keys().any(|k| k.contains(sep.as_str())) {
                    let old = std::mem::take(rec);
                    let mut out = etl_core::map_with_capacity(old.len());
                    for (k, v) in old {
                        if let Err(m) = unflatten_into(&mut out, &k, v, sep) {
                            return Outcome::Reject(m);
                        }
                    }
                    *rec = out;
                }
            }
            step if step.is_key_step() => step.apply_keys(rec),
            step => return step.apply_values(rec, ctx),
        }
        Outcome::Keep
    }

    /// A value step on one record: the general record or the fast path's
    /// cells (see [`Access`]). Nothing for the key steps.
    #[allow(clippy::too_many_lines)] // one arm per step, each short
    pub(crate) fn apply_values(&mut self, rec: &mut impl Access, ctx: &Ctx<'_>) -> Outcome {
        match self {
            Step::Cast(casts) => {
                for (i, (f, c)) in casts.iter().enumerate() {
                    match rec.rewrite(i, f, |v, out| c.apply_into(v, &ctx.cast, out)) {
                        None | Some(Ok(())) => {}
                        Some(Err(_)) if ctx.cast_error_null => rec.set(i, f, Value::Null),
                        Some(Err(m)) => return Outcome::Reject(format!("field {f}: {m}")),
                    }
                }
            }
            Step::Default(f, val) => match rec.get(0, f) {
                Some(v) => {
                    if is_empty(v) {
                        *v = Value::String(val.clone());
                    }
                }
                None => rec.set(0, f, Value::String(val.clone())),
            },
            Step::Trim(_)
            | Step::CollapseSpaces(_)
            | Step::Lower(_)
            | Step::Upper(_)
            | Step::Replace(..)
            | Step::NullIf(..) => {
                let this = &*self;
                match this.value_fields() {
                    Some(Fields::All) => rec.each(|v| this.value_op(v)),
                    Some(Fields::Some(names)) => {
                        for (i, n) in names.iter().enumerate() {
                            if let Some(v) = rec.get(i, n) {
                                this.value_op(v);
                            }
                        }
                    }
                    None => {}
                }
            }
            Step::Coalesce(target, srcs) => {
                let mut found = Value::Null;
                for (i, n) in srcs.iter().enumerate() {
                    if let Some(v) = rec.get(i + 1, n) {
                        if !is_empty(v) {
                            found = v.clone();
                            break;
                        }
                    }
                }
                rec.set(0, target, found);
            }
            Step::Filter(e) => match rec.with_lookup(0, |l| e.holds(l, &ctx.env)) {
                Ok(true) => {}
                Ok(false) => return Outcome::Filtered,
                Err(m) => return Outcome::Reject(format!("`{}`: {m}", e.source)),
            },
            Step::Set(f, e) => {
                let v = rec.with_lookup(1, |l| {
                    e.eval(l, &ctx.env).and_then(crate::expr::Val::into_value)
                });
                match v {
                    Ok(v) => rec.set(0, f, v),
                    Err(m) => return Outcome::Reject(format!("field {f} = `{}`: {m}", e.source)),
                }
            }
            Step::Require(names) => {
                let mut missing = Vec::new();
                for (i, n) in names.iter().enumerate() {
                    if rec.get(i, n).is_none_or(|v| is_empty(v)) {
                        missing.push(n.as_str());
                    }
                }
                if !missing.is_empty() {
                    return Outcome::Reject(format!(
                        "required field(s) missing or empty: {}",
                        missing.join(", ")
                    ));
                }
            }
            Step::Unique(keys, seen) => {
                let json = |rec: &mut _, i, n: &str, out: &mut Vec<u8>| {
                    if !Access::write_json(rec, i, n, out) {
                        out.extend_from_slice(b"null");
                    }
                };
                let mut k = Vec::with_capacity(32);
                for (i, n) in keys.iter().enumerate() {
                    json(rec, i, n, &mut k);
                    k.push(0x1f);
                }
                if seen.contains(k.as_slice()) {
                    let mut shown = Vec::with_capacity(keys.len());
                    for (i, n) in keys.iter().enumerate() {
                        let mut t = Vec::new();
                        json(rec, i, n, &mut t);
                        shown.push(format!("{n}={}", String::from_utf8_lossy(&t)));
                    }
                    return Outcome::Reject(format!("duplicate key {}", shown.join(", ")));
                }
                seen.insert(k.into_boxed_slice());
            }
            Step::Mask(masks) => {
                let salt = ctx.salt.as_deref();
                for (i, (f, m)) in masks.iter().enumerate() {
                    if let Some(Err(msg)) = rec.rewrite(i, f, |v, out| mask_into(v, *m, salt, out))
                    {
                        return Outcome::Reject(format!("field {f}: {msg}"));
                    }
                }
            }
            Step::Add(f, val) => rec.set(0, f, Value::String(val.clone())),
            Step::AddRunId => rec.set(0, "_run_id", Value::String(ctx.run_id.clone())),
            Step::AddLoadedAt => rec.set(0, "_loaded_at", Value::String(ctx.loaded_at.clone())),
            // The key steps, flatten and unflatten: not value steps.
            _ => {}
        }
        Outcome::Keep
    }
}

fn err0(message: String) -> StepError {
    StepError { offset: 0, message }
}

/// Null, or a string that is empty after trimming.
pub(crate) fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// Moves the fields `names` lists to the front, in the list's order (a
/// name listed twice or absent is skipped); how many were moved.
fn to_front(rec: &mut impl Keyed, names: &[String]) -> usize {
    let mut at = 0;
    for n in names {
        if let Some(i) = rec.position(n).filter(|&i| i >= at) {
            rec.move_to(i, at);
            at += 1;
        }
    }
    at
}

/// Renames `old` to `new` where it stands; a field already called `new`
/// elsewhere is replaced (its value is lost, as with a SQL `AS`).
pub(crate) fn rename(rec: &mut impl Keyed, old: &str, new: &str) {
    if old == new {
        return;
    }
    let Some(i) = rec.position(old) else {
        return;
    };
    if let Some(j) = rec.position(new) {
        rec.remove_at(j);
        let i = if j < i { i - 1 } else { i };
        rec.rename_at(i, new.to_owned());
    } else {
        rec.rename_at(i, new.to_owned());
    }
}

/// `PATTERN=REPLACEMENT`, split at the first `=` not escaped as `\=`.
fn split_unescaped_eq(s: &str) -> Option<(String, String)> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == b'=' {
            return Some((s[..i].to_owned(), s[i + 1..].to_owned()));
        }
        i += 1;
    }
    None
}

/// `/REGEX/REPLACEMENT/[gi]` with any delimiter (the first character).
fn parse_sed(s: &str) -> Result<(Regex, String, bool), String> {
    let mut chars = s.chars();
    let d = chars.next().ok_or("empty")?;
    if d.is_alphanumeric() || d == '\\' || d.is_whitespace() {
        return Err(format!("{d:?} cannot be the delimiter"));
    }
    let rest = chars.as_str();
    let mut parts: Vec<String> = vec![String::new()];
    let mut it = rest.chars().peekable();
    let mut cur = String::new();
    while let Some(c) = it.next() {
        if c == '\\' && it.peek() == Some(&d) {
            cur.push(d);
            it.next();
        } else if c == d {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    parts.remove(0);
    if parts.len() != 3 {
        return Err("expected three delimiters".into());
    }
    let flags = &parts[2];
    let mut all = false;
    let mut ci = false;
    for f in flags.chars() {
        match f {
            'g' => all = true,
            'i' => ci = true,
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    let pat = if ci {
        format!("(?i){}", parts[0])
    } else {
        parts[0].clone()
    };
    let re = Regex::new(&pat).map_err(|e| format!("bad regex: {e}"))?;
    Ok((re, parts[1].clone(), all))
}

fn trim_in_place(s: &mut String) {
    let end = s.trim_end().len();
    s.truncate(end);
    let start = s.len() - s.trim_start().len();
    if start > 0 {
        s.drain(..start);
    }
}

fn has_space_run(s: &str) -> bool {
    let mut prev = false;
    for c in s.chars() {
        let w = c.is_whitespace();
        if w && (prev || c != ' ') {
            return true;
        }
        prev = w;
    }
    false
}

/// Runs of whitespace become one space.
fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev = false;
    for c in s.chars() {
        if c.is_whitespace() {
            if !prev {
                out.push(' ');
            }
            prev = true;
        } else {
            out.push(c);
            prev = false;
        }
    }
    out
}

pub use etl_core::names::snake;

fn flatten_into(out: &mut Map, key: String, v: Value, sep: &str, depth: usize) {
    match v {
        Value::Object(m) if !m.is_empty() && depth < 64 => {
            for (k, v) in m {
                flatten_into(out, format!("{key}{sep}{k}"), v, sep, depth + 1);
            }
        }
        other => {
            out.insert(key, other);
        }
    }
}

fn unflatten_into(out: &mut Map, key: &str, v: Value, sep: &str) -> Result<(), String> {
    let mut parts = key.split(sep);
    let first = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() || first.is_empty() || rest.iter().any(|p| p.is_empty()) {
        out.insert(key.to_owned(), v);
        return Ok(());
    }
    let mut cur = out
        .entry(first.to_owned())
        .or_insert_with(|| Value::Object(Map::default()));
    for (i, p) in rest.iter().enumerate() {
        let Value::Object(m) = cur else {
            return Err(format!(
                "field {key}: cannot unflatten under {:?}, which is not an object",
                key.split(sep).take(i + 1).collect::<Vec<_>>().join(sep)
            ));
        };
        if i + 1 == rest.len() {
            m.insert((*p).to_owned(), v);
            return Ok(());
        }
        cur = m
            .entry((*p).to_owned())
            .or_insert_with(|| Value::Object(Map::default()));
    }
    Ok(())
}

/// A mask of value `v` into `out` (whose string buffer it reuses); null
/// stays null.
pub(crate) fn mask_into(
    v: &Value,
    m: MaskKind,
    salt: Option<&[u8]>,
    out: &mut Value,
) -> Result<(), String> {
    let json;
    let text = match v {
        Value::Null => {
            *out = Value::Null;
            return Ok(());
        }
        Value::String(s) => s.as_str(),
        Value::Number(n) => n.as_str(),
        Value::Bool(b) => {
            if *b {
                "true"
            } else {
                "false"
            }
        }
        other => {
            json = other.to_json();
            json.as_str()
        }
    };
    let mut buf = match std::mem::take(out) {
        Value::String(buf) => buf,
        _ => String::with_capacity(if m == MaskKind::Hash { 64 } else { text.len() }),
    };
    let r = mask_text_into(text, m, salt, &mut buf);
    *out = Value::String(buf);
    r
}

/// What a mask makes of a value's text, into `out` (cleared first; its
/// buffer is reused).
fn mask_text_into(
    text: &str,
    m: MaskKind,
    salt: Option<&[u8]>,
    out: &mut String,
) -> Result<(), String> {
    let domain = match m {
        MaskKind::EmailDomain if !text.trim().is_empty() => match text.trim().rsplit_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Some(domain),
            _ => return Err("not an email address".into()),
        },
        _ => None,
    };
    let salt = match m {
        MaskKind::Hash => Some(salt.ok_or("no mask salt (ETL_MASK_SALT)")?),
        _ => None,
    };
    out.clear();
    match (m, salt, domain) {
        (MaskKind::Hash, Some(salt), _) => hash_hex_into(salt, text, out),
        (MaskKind::Redact, ..) => out.push_str(REDACTED),
        (MaskKind::Truncate(n), ..) => out.extend(text.chars().take(n)),
        (MaskKind::EmailDomain, _, Some(domain)) => {
            out.push_str(domain);
            out.make_ascii_lowercase();
        }
        _ => out.push_str(text),
    }
    Ok(())
}

/// Every byte's two hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 15]];
        i += 1;
    }
    t
};

/// Hex SHA-256 of salt, a NUL separator, and the value's text.
pub fn hash_hex(salt: &[u8], text: &str) -> String {
    let mut out = String::with_capacity(64);
    hash_hex_into(salt, text, &mut out);
    out
}

/// [`hash_hex`] appended to `out`.
fn hash_hex_into(salt: &[u8], text: &str, out: &mut String) {
    let mut h = Sha256::new();
    h.update(salt);
    h.update([0u8]);
    h.update(text.as_bytes());
    let mut hex = [0u8; 64];
    for (pair, &b) in hex.chunks_exact_mut(2).zip(h.finalize().iter()) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(b)]);
    }
    // Hex digits are ASCII: the check cannot fail.
    out.push_str(std::str::from_utf8(&hex).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::tz::TimeZone;

    fn ctx(tz: &TimeZone) -> Ctx<'_> {
        Ctx {
            cast: CastOptions::default(),
            cast_error_null: false,
            env: Env {
                now: "2026-11-21T06:00:00Z".parse().unwrap(),
                tz,
                decimal_comma: false,
            },
            salt: Some(b"pepper".to_vec()),
            run_id: "R1".into(),
            loaded_at: "2026-11-21T06:00:00Z".into(),
        }
    }

    fn apply(kind: Kind, arg: &str, rec: &str) -> String {
        let tz = TimeZone::UTC;
        let mut step = Step::parse(kind, arg).unwrap_or_else(|e| panic!("{arg}: {}", e.message));
        let mut r = etl_core::record::parse_record(rec).unwrap();
        match step.apply(&mut r, &ctx(&tz)) {
            Outcome::Keep => Value::Object(r).to_json(),
            Outcome::Filtered => "filtered".into(),
            Outcome::Reject(m) => format!("reject: {m}"),
        }
    }

    #[test]
    fn column_steps() {
        let r = r#"{"a":1,"b":2,"c":3}"#;
        assert_eq!(apply(Kind::Select, "c,a,zz", r), r#"{"c":3,"a":1}"#);
        assert_eq!(apply(Kind::Drop, "b", r), r#"{"a":1,"c":3}"#);
        assert_eq!(apply(Kind::Rename, "b=B,a=x", r), r#"{"x":1,"B":2,"c":3}"#);
        assert_eq!(apply(Kind::Rename, "a=c", r), r#"{"c":1,"b":2}"#);
        assert_eq!(
            apply(Kind::RenameRegex, "^([a-b])$=col_$1", r),
            r#"{"col_a":1,"col_b":2,"c":3}"#
        );
        assert_eq!(apply(Kind::Reorder, "c,b", r), r#"{"c":3,"b":2,"a":1}"#);
        assert_eq!(
            apply(
                Kind::NormalizeKeys,
                "snake",
                r#"{"Order ID":1,"unitPrice":2}"#
            ),
            r#"{"order_id":1,"unit_price":2}"#
        );
        assert_eq!(
            apply(Kind::NormalizeKeys, "lower", r#"{" A ":1}"#),
            r#"{"a":1}"#
        );
        assert_eq!(
            apply(Kind::Flatten, "", r#"{"a":{"b":1,"c":{"d":2}},"e":3}"#),
            r#"{"a.b":1,"a.c.d":2,"e":3}"#
        );
        assert_eq!(
            apply(Kind::Unflatten, "", r#"{"a.b":1,"e":3,"a.c.d":2}"#),
            r#"{"a":{"b":1,"c":{"d":2}},"e":3}"#
        );
        assert!(apply(Kind::Unflatten, "", r#"{"a":1,"a.b":2}"#).starts_with("reject"));
    }

    #[test]
    fn value_steps() {
        let r = r#"{"a":"  x  y ","b":"N/A","c":"","n":5}"#;
        assert_eq!(
            apply(Kind::Trim, "*", r),
            r#"{"a":"x  y","b":"N/A","c":"","n":5}"#
        );
        assert_eq!(
            apply(Kind::CollapseSpaces, "a", r),
            r#"{"a":" x y ","b":"N/A","c":"","n":5}"#
        );
        assert_eq!(
            apply(Kind::Lower, "b", r),
            r#"{"a":"  x  y ","b":"n/a","c":"","n":5}"#
        );
        assert_eq!(apply(Kind::Upper, "a", r#"{"a":"é"}"#), r#"{"a":"É"}"#);
        assert_eq!(
            apply(Kind::Replace, "b=|/|-|", r),
            r#"{"a":"  x  y ","b":"N-A","c":"","n":5}"#
        );
        assert_eq!(
            apply(Kind::Replace, "a=/ +/_/g", r#"{"a":" a  b"}"#),
            r#"{"a":"_a_b"}"#
        );
        assert_eq!(
            apply(Kind::Replace, "a=/X/y/i", r#"{"a":"xx"}"#),
            r#"{"a":"yx"}"#
        );
        assert_eq!(
            apply(Kind::Default, "c=0", r),
            r#"{"a":"  x  y ","b":"N/A","c":"0","n":5}"#
        );
        assert_eq!(
            apply(Kind::Default, "z=1", r#"{"a":1}"#),
            r#"{"a":1,"z":"1"}"#
        );
        assert_eq!(
            apply(Kind::NullIf, "*=N/A", r),
            r#"{"a":"  x  y ","b":null,"c":"","n":5}"#
        );
        assert_eq!(
            apply(Kind::Coalesce, "z=c,b,a", r),
            r#"{"a":"  x  y ","b":"N/A","c":"","n":5,"z":"N/A"}"#
        );
        assert_eq!(
            apply(Kind::Add, "src=mail", r#"{"a":1}"#),
            r#"{"a":1,"src":"mail"}"#
        );
        assert_eq!(
            apply(Kind::AddRunId, "", r#"{"a":1}"#),
            r#"{"a":1,"_run_id":"R1"}"#
        );
    }

    #[test]
    fn checks_filter_set_mask() {
        assert_eq!(apply(Kind::Filter, "n > 3", r#"{"n":5}"#), r#"{"n":5}"#);
        assert_eq!(apply(Kind::Filter, "n > 7", r#"{"n":5}"#), "filtered");
        assert!(apply(Kind::Filter, "n > 7", r#"{"n":"x"}"#).contains("field n"));
        assert_eq!(
            apply(Kind::Set, "t=0.1 + 0.2", r#"{"n":5}"#),
            r#"{"n":5,"t":0.3}"#
        );
        assert_eq!(
            apply(Kind::Set, "n=n * 2", r#"{"n":5,"m":1}"#),
            r#"{"n":10,"m":1}"#
        );
        assert!(apply(Kind::Require, "a,b", r#"{"a":" "}"#).contains("a, b"));
        assert_eq!(apply(Kind::Require, "a", r#"{"a":0}"#), r#"{"a":0}"#);
        assert_eq!(
            apply(
                Kind::Mask,
                "e=email-domain,p=truncate:3,s=redact",
                r#"{"e":"Ann@Example.com","p":"+33612","s":"x"}"#
            ),
            r#"{"e":"example.com","p":"+33","s":"[REDACTED]"}"#
        );
        let h = apply(Kind::Mask, "e=hash", r#"{"e":"a@b.c"}"#);
        assert_eq!(h, format!(r#"{{"e":"{}"}}"#, hash_hex(b"pepper", "a@b.c")));
        assert!(apply(Kind::Mask, "e=email-domain", r#"{"e":"nope"}"#).starts_with("reject"));
        let tz = TimeZone::UTC;
        let mut u = Step::parse(Kind::Unique, "id").unwrap();
        let c = ctx(&tz);
        let mut r1 = etl_core::record::parse_record(r#"{"id":1}"#).unwrap();
        assert!(matches!(u.apply(&mut r1.clone(), &c), Outcome::Keep));
        assert!(matches!(u.apply(&mut r1, &c), Outcome::Reject(_)));
    }

    #[test]
    fn cast_step_names_field_value_and_type() {
        let r = apply(
            Kind::Cast,
            "a=decimal(12,2),b=date:%d/%m/%Y|%Y-%m-%d",
            r#"{"a":"1,5","b":"x"}"#,
        );
        assert!(
            r.contains("field a") && r.contains("\"1,5\"") && r.contains("decimal(12,2)"),
            "{r}"
        );
        assert_eq!(
            apply(
                Kind::Cast,
                "a=decimal(12,2), b=date:%d/%m/%Y|%Y-%m-%d",
                r#"{"a":"1.5","b":"01/02/2026"}"#
            ),
            r#"{"a":1.50,"b":"2026-02-01"}"#
        );
        assert_eq!(
            apply(Kind::Cast, "b=date:%b %d, %Y", r#"{"b":"Feb 01, 2026"}"#),
            r#"{"b":"2026-02-01"}"#
        );
    }

    #[test]
    fn bad_arguments_are_refused() {
        for (k, a) in [
            (Kind::Rename, "novalue"),
            (Kind::RenameRegex, "(=x"),
            (Kind::NormalizeKeys, "kebab"),
            (Kind::Cast, "a=money"),
            (Kind::Replace, "a=/x/"),
            (Kind::Mask, "a=scramble"),
            (Kind::Filter, "a >"),
            (Kind::Set, "=1"),
            (Kind::Select, "a,,b"),
        ] {
            assert!(Step::parse(k, a).is_err(), "{a}");
        }
        assert_eq!(Step::parse(Kind::Set, "x=a >").unwrap_err().offset, 5);
    }
}
