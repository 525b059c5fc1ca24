//! The fast path: flat records run through the steps without becoming maps.
//!
//! Most NDJSON streams are flat objects of scalars whose lines all share one
//! key order (one "shape"). For such a line the steps' effect on the keys
//! (rename, select, drop, reorder, normalize-keys, rename-regex, and the
//! fields that add, default, set and coalesce create) depends only on the
//! shape, so it is worked out once per shape into a [`Plan`]: which value
//! operations touch which slot, and which slot each output key writes.
//! Per line, the scanner only finds where each value's JSON text lies; a
//! value is turned into a [`Value`] only when a step reads or writes it,
//! and every other value is copied to the output as the text it came in as
//! (for strings without escapes, numbers and literals that text is exactly
//! what the record writer would write).
//!
//! Lines the fast path does not take go to the general path unchanged:
//! nested values, keys with escapes, repeated keys, invalid JSON (whose
//! error message the general path words), and shapes a plan cannot be made
//! for (unflatten of a key that contains the separator). Both paths run the
//! same step code on values (casts, masks, expressions, value steps) and
//! the same key rules (`steps::rename` on the plan's key list), and a
//! differential test holds them to the same output.

use etl_core::record::{is_json_number, next_json_special, write_str, write_value};
use etl_core::{Number, Record, Value};

use crate::access::{Access, Keyed};
use crate::expr::Lookup;
use crate::pipeline::Planned;
use crate::steps::{Ctx, Fields, Outcome, Step};

/// How many shapes are remembered; a stream with more (rare: keys in
/// varying order) recompiles the oldest slot's plan when it comes back.
const MAX_SHAPES: usize = 16;

/// Where one key and its value lie in the line (byte offsets).
#[derive(Debug, Clone, Copy)]
struct Span {
    key: (usize, usize),
    val: (usize, usize),
    /// A string value with a backslash escape (read with serde_json).
    escaped: bool,
}

/// The values of the current line, by slot: `raw[s]` while slot `s` is
/// still only its JSON text in the line, `vals[s]` once read or set by a
/// step. Slots of fields that steps create are set before they are read,
/// so `vals` is never cleared between lines (what a slot held for the last
/// line is overwritten, not dropped and rebuilt).
#[derive(Debug, Default)]
struct Cells {
    raw: Vec<Option<(usize, usize)>>,
    vals: Vec<Value>,
    /// A string value whose buffer is reused to hand a raw string to code
    /// that reads a `&Value` (casts) without a new allocation per line.
    scratch: Value,
}

impl Cells {
    /// The content of slot `s` while it is still a raw string without
    /// escapes (borrowed from the line).
    fn raw_str<'l>(&self, s: usize, line: &'l str) -> Option<&'l str> {
        let (a, b) = self.raw[s]?;
        (line.as_bytes()[a] == b'"').then(|| &line[a + 1..b - 1])
    }

    /// `text` as a string value, in the scratch buffer.
    fn fill_scratch(&mut self, text: &str) {
        match &mut self.scratch {
            Value::String(buf) => {
                buf.clear();
                buf.push_str(text);
            }
            other => *other = Value::String(text.to_owned()),
        }
    }

    /// Slot `s`'s value taken out to be rewritten (its last string buffer
    /// reused); [`Self::set`] puts it back.
    fn take(&mut self, s: usize) -> Value {
        std::mem::take(&mut self.vals[s])
    }

    /// Slot `s`'s value, read from its JSON text on first use.
    fn value(&mut self, s: usize, line: &str) -> &mut Value {
        if let Some((a, b)) = self.raw[s].take() {
            self.vals[s] = read(&line[a..b]);
        }
        &mut self.vals[s]
    }

    fn set(&mut self, s: usize, v: Value) {
        self.raw[s] = None;
        self.vals[s] = v;
    }

    /// Appends slot `s` as compact JSON.
    fn write(&self, out: &mut Vec<u8>, s: usize, line: &str) {
        match self.raw[s] {
            Some((a, b)) => out.extend_from_slice(&line.as_bytes()[a..b]),
            None => write_value(out, &self.vals[s]),
        }
    }
}

/// Where a field a step names is in the cells.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// The record has it, in this slot.
    Has(usize),
    /// The record does not have it; the step adds it in this slot.
    New(usize),
    /// The record does not have it.
    No,
}

impl Slot {
    fn has(self) -> Option<usize> {
        match self {
            Slot::Has(s) => Some(s),
            _ => None,
        }
    }
}

/// The fields one step names (see `Step::field_names`), or for a value
/// step on `*` every field, each with its slot. `None` for the steps
/// the plan has done (the key steps).
type StepPlan = Option<Vec<(Box<str>, Slot)>>;

/// The plan of one shape.
#[derive(Debug)]
struct Plan {
    /// The input keys, as their bytes in the line.
    keys: Vec<Box<[u8]>>,
    /// False when the general path must take this shape.
    ok: bool,
    /// Slots: the input values, then the fields steps create.
    slots: usize,
    /// What each step reads and writes.
    steps: Vec<StepPlan>,
    /// Output fields in order: `"key":` as JSON text, the key, the slot.
    out: Vec<(Box<[u8]>, String, usize)>,
}

/// The plan's view of the keys while it is made: name and slot.
struct Names(Vec<(String, usize)>);

impl Keyed for Names {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn name_at(&self, i: usize) -> &str {
        &self.0[i].0
    }
    fn position(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|(k, _)| k == name)
    }
    fn remove_at(&mut self, i: usize) {
        self.0.remove(i);
    }
    fn rename_at(&mut self, i: usize, name: String) {
        self.0[i].0 = name;
    }
    fn move_to(&mut self, i: usize, to: usize) {
        let f = self.0.remove(i);
        self.0.insert(to, f);
    }
    fn truncate(&mut self, n: usize) {
        self.0.truncate(n);
    }
}

impl Names {
    fn slot(&self, name: &str) -> Option<usize> {
        self.position(name).map(|i| self.0[i].1)
    }

    /// The slot of `name`, appended as a new field when absent.
    fn slot_or_add(&mut self, name: &str, slots: &mut usize) -> usize {
        self.slot(name).unwrap_or_else(|| {
            *slots += 1;
            self.0.push((name.to_owned(), *slots - 1));
            *slots - 1
        })
    }
}

impl Plan {
    /// Works out what `steps` do to records of this shape.
    #[allow(clippy::too_many_lines)] // one arm per step, each short
    fn new(keys: Vec<Box<[u8]>>, steps: &[Planned]) -> Self {
        let mut plan = Plan {
            keys,
            ok: false,
            slots: 0,
            steps: Vec::with_capacity(steps.len()),
            out: Vec::new(),
        };
        let mut names = Names(Vec::with_capacity(plan.keys.len()));
        for (i, k) in plan.keys.iter().enumerate() {
            let Ok(k) = std::str::from_utf8(k) else {
                return plan;
            };
            if names.position(k).is_some() {
                return plan; // a repeated key: the general path's rules
            }
            names.0.push((k.to_owned(), i));
        }
        let mut slots = names.0.len();
        for p in steps {
            let step = &p.step;
            let planned = match step {
                // Values on this path are never objects: nothing to flatten.
                Step::Flatten(_) => None,
                Step::Unflatten(sep) => {
                    if names.0.iter().any(|(k, _)| k.contains(sep.as_str())) {
                        return plan;
                    }
                    None
                }
                _ if step.is_key_step() => {
                    step.apply_keys(&mut names);
                    None
                }
                _ if matches!(step.value_fields(), Some(Fields::All)) => Some(
                    names
                        .0
                        .iter()
                        .map(|(k, s)| (k.as_str().into(), Slot::Has(*s)))
                        .collect(),
                ),
                _ => {
                    // Every name is looked up before the step adds its
                    // first field (an expression reading the field it
                    // sets sees it absent).
                    let mut fields: Vec<(Box<str>, Slot)> = step
                        .field_names()
                        .into_iter()
                        .map(|n| (n.into(), names.slot(n).map_or(Slot::No, Slot::Has)))
                        .collect();
                    if step.adds_field() {
                        if let Some((n, slot @ Slot::No)) = fields.first_mut() {
                            *slot = Slot::New(names.slot_or_add(n, &mut slots));
                        }
                    }
                    Some(fields)
                }
            };
            plan.steps.push(planned);
        }
        plan.out = names
            .0
            .into_iter()
            .map(|(k, s)| {
                let mut prefix = Vec::with_capacity(k.len() + 3);
                write_str(&mut prefix, &k);
                prefix.push(b':');
                (prefix.into_boxed_slice(), k, s)
            })
            .collect();
        plan.slots = slots;
        plan.ok = true;
        plan
    }

    fn matches(&self, line: &[u8], spans: &[Span]) -> bool {
        self.keys.len() == spans.len()
            && self
                .keys
                .iter()
                .zip(spans)
                .all(|(k, s)| **k == line[s.key.0..s.key.1])
    }
}

/// The current line's cells as one step reads and writes them: its
/// fields by the slots the plan found for them.
struct Slots<'a> {
    fields: &'a [(Box<str>, Slot)],
    cells: &'a mut Cells,
    line: &'a str,
}

impl Slots<'_> {
    fn slot(&self, i: usize) -> Slot {
        self.fields.get(i).map_or(Slot::No, |f| f.1)
    }
}

impl Access for Slots<'_> {
    fn get(&mut self, i: usize, _: &str) -> Option<&mut Value> {
        let s = self.slot(i).has()?;
        Some(self.cells.value(s, self.line))
    }

    fn set(&mut self, i: usize, _: &str, v: Value) {
        if let Slot::Has(s) | Slot::New(s) = self.slot(i) {
            self.cells.set(s, v);
        }
    }

    fn each(&mut self, mut f: impl FnMut(&mut Value)) {
        for &(_, slot) in self.fields {
            if let Some(s) = slot.has() {
                f(self.cells.value(s, self.line));
            }
        }
    }

    /// A raw string goes through the scratch buffer (no value built for
    /// it), and the result into the slot's last value (its buffer reused).
    fn rewrite(
        &mut self,
        i: usize,
        _: &str,
        f: impl FnOnce(&Value, &mut Value) -> Result<(), String>,
    ) -> Option<Result<(), String>> {
        let s = self.slot(i).has()?;
        let cells = &mut *self.cells;
        if let Some(text) = cells.raw_str(s, self.line) {
            cells.fill_scratch(text);
            let mut out = cells.take(s);
            let r = f(&cells.scratch, &mut out);
            cells.set(s, out);
            return Some(r);
        }
        cells.value(s, self.line);
        let v = cells.take(s);
        let mut out = Value::Null;
        let r = f(&v, &mut out);
        cells.set(s, if r.is_ok() { out } else { v });
        Some(r)
    }

    fn write_json(&mut self, i: usize, _: &str, out: &mut Vec<u8>) -> bool {
        self.slot(i)
            .has()
            .map(|s| self.cells.write(out, s, self.line))
            .is_some()
    }

    fn with_lookup<T>(&mut self, from: usize, f: impl FnOnce(&dyn Lookup) -> T) -> T {
        let fields = self.fields.get(from..).unwrap_or_default();
        for &(_, slot) in fields {
            if let Some(s) = slot.has() {
                self.cells.value(s, self.line);
            }
        }
        f(&Bound {
            fields,
            cells: self.cells,
        })
    }
}

/// The cells an expression reads, by name (read into values first).
struct Bound<'c> {
    fields: &'c [(Box<str>, Slot)],
    cells: &'c Cells,
}

impl Lookup for Bound<'_> {
    fn field(&self, name: &str) -> Option<&Value> {
        let s = self.fields.iter().find(|(n, _)| &**n == name)?.1.has()?;
        Some(&self.cells.vals[s])
    }
}

/// The fast path's state: remembered plans and the current line's cells.
#[derive(Debug, Default)]
pub struct Fast {
    plans: Vec<Plan>,
    /// The plan of the current line.
    cur: usize,
    /// Round-robin victim when all plan slots are taken.
    next_victim: usize,
    spans: Vec<Span>,
    cells: Cells,
}

impl Fast {
    /// Takes `line` when it is a flat object whose shape has a plan (made
    /// now if new); false leaves it to the general path.
    pub fn load(&mut self, line: &str, steps: &[Planned]) -> bool {
        let bytes = line.as_bytes();
        let same_shape = self
            .plans
            .get(self.cur)
            .is_some_and(|p| scan_as(&p.keys, bytes, &mut self.spans).is_some());
        if !same_shape {
            if scan(bytes, &mut self.spans).is_none() {
                return false;
            }
            self.cur = self.plan_of(bytes, steps);
        }
        let plan = &self.plans[self.cur];
        if !plan.ok {
            return false;
        }
        let cells = &mut self.cells;
        if cells.vals.len() < plan.slots {
            cells.vals.resize_with(plan.slots, Value::default);
        }
        cells.raw.clear();
        for (i, s) in self.spans.iter().enumerate() {
            if s.escaped {
                match serde_json::from_str::<String>(&line[s.val.0..s.val.1]) {
                    Ok(t) => cells.vals[i] = Value::String(t),
                    Err(_) => return false,
                }
                cells.raw.push(None);
            } else {
                cells.raw.push(Some(s.val));
            }
        }
        cells.raw.resize(plan.slots, None);
        true
    }

    /// The index of the plan for the shape of the scanned line, made now
    /// when the shape is new.
    fn plan_of(&mut self, bytes: &[u8], steps: &[Planned]) -> usize {
        if let Some(i) = self
            .plans
            .iter()
            .position(|p| p.matches(bytes, &self.spans))
        {
            return i;
        }
        let keys = self
            .spans
            .iter()
            .map(|s| bytes[s.key.0..s.key.1].into())
            .collect();
        let plan = Plan::new(keys, steps);
        if self.plans.len() < MAX_SHAPES {
            self.plans.push(plan);
            self.plans.len() - 1
        } else {
            let i = self.next_victim;
            self.next_victim = (i + 1) % MAX_SHAPES;
            self.plans[i] = plan;
            i
        }
    }

    /// Runs step `i` on the current line's cells (nothing for the steps
    /// its plan has done).
    pub fn apply(&mut self, i: usize, step: &mut Step, ctx: &Ctx<'_>, line: &str) -> Outcome {
        let Some(fields) = &self.plans[self.cur].steps[i] else {
            return Outcome::Keep;
        };
        let mut slots = Slots {
            fields,
            cells: &mut self.cells,
            line,
        };
        step.apply_values(&mut slots, ctx)
    }

    /// Writes the current record as compact JSON (no newline).
    pub fn write(&self, out: &mut Vec<u8>, line: &str) {
        out.push(b'{');
        for (i, (prefix, _, s)) in self.plans[self.cur].out.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(prefix);
            self.cells.write(out, *s, line);
        }
        out.push(b'}');
    }

    /// The current record as a map (for the schema check).
    pub fn record(&self, line: &str) -> Record {
        let out = &self.plans[self.cur].out;
        let mut rec = etl_core::map_with_capacity(out.len());
        for (_, k, s) in out {
            let v = match self.cells.raw[*s] {
                Some((a, b)) => read(&line[a..b]),
                None => self.cells.vals[*s].clone(),
            };
            rec.insert(k.clone(), v);
        }
        rec
    }
}

/// A scalar's JSON text as a value (strings without escapes: the scanner
/// sends escaped ones through serde_json).
fn read(text: &str) -> Value {
    match text.as_bytes().first() {
        Some(b'"') => Value::String(text[1..text.len() - 1].to_owned()),
        Some(b't') => Value::Bool(true),
        Some(b'f') => Value::Bool(false),
        Some(b'n') | None => Value::Null,
        // The scanner checked the number grammar, which `parse` checks again.
        Some(_) => Number::parse(text).map_or(Value::Null, Value::Number),
    }
}

// ---------------------------------------------------------------- scanner

fn ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The end of the string starting at `b[i] == '"'` (past its closing
/// quote) and whether it has an escape; None when it is not closed or holds
/// a raw control character.
fn string(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        j = next_json_special(b, j);
        match *b.get(j)? {
            b'"' => return Some((j + 1, escaped)),
            b'\\' => {
                escaped = true;
                j += 2;
            }
            c if c < 0x20 => return None,
            _ => j += 1,
        }
    }
}

fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    b[i..].starts_with(word).then_some(i + word.len())
}

fn number(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    while matches!(
        b.get(j),
        Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
    ) {
        j += 1;
    }
    // ASCII bytes only, so the slice is UTF-8.
    let text = std::str::from_utf8(&b[i..j]).ok()?;
    is_json_number(text).then_some(j)
}

/// The end of the scalar value at `b[i]` and whether it is a string with
/// an escape; None for anything else (objects, arrays, invalid JSON).
fn scalar(b: &[u8], i: usize) -> Option<(usize, bool)> {
    match *b.get(i)? {
        b'"' => string(b, i),
        b't' => literal(b, i, b"true").map(|e| (e, false)),
        b'f' => literal(b, i, b"false").map(|e| (e, false)),
        b'n' => literal(b, i, b"null").map(|e| (e, false)),
        b'-' | b'0'..=b'9' => number(b, i).map(|e| (e, false)),
        _ => None,
    }
}

/// The `:` after a key ending before `i`, and the value after it.
fn member(b: &[u8], key: (usize, usize), i: usize) -> Option<Span> {
    let i = ws(b, i);
    if b.get(i) != Some(&b':') {
        return None;
    }
    let start = ws(b, i + 1);
    let (end, escaped) = scalar(b, start)?;
    Some(Span {
        key,
        val: (start, end),
        escaped,
    })
}

/// True when `b[i..]` is `}` and whitespace.
fn closes(b: &[u8], i: usize) -> bool {
    b.get(i) == Some(&b'}') && ws(b, i + 1) == b.len()
}

/// Finds the key and value spans of a flat JSON object line; None when the
/// line is anything else (nested values, escaped keys, invalid JSON).
fn scan(b: &[u8], spans: &mut Vec<Span>) -> Option<()> {
    spans.clear();
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return closes(b, i).then_some(());
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let (key_end, key_escaped) = string(b, i)?;
        if key_escaped {
            return None;
        }
        let span = member(b, (i + 1, key_end - 1), key_end)?;
        i = ws(b, span.val.1);
        spans.push(span);
        match *b.get(i)? {
            b',' => i = ws(b, i + 1),
            _ => return closes(b, i).then_some(()),
        }
    }
}

/// [`scan`] of a line expected to have exactly `keys` in that order (the
/// last line's shape): each key is compared where it should be instead of
/// scanned for. None when the line differs in any way (then [`scan`]
/// decides).
fn scan_as(keys: &[Box<[u8]>], b: &[u8], spans: &mut Vec<Span>) -> Option<()> {
    spans.clear();
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(b, i + 1);
    for (n, k) in keys.iter().enumerate() {
        if n > 0 {
            if b.get(i) != Some(&b',') {
                return None;
            }
            i = ws(b, i + 1);
        }
        let end = i + 1 + k.len();
        if b.get(i) != Some(&b'"') || b.get(i + 1..end) != Some(&k[..]) || b.get(end) != Some(&b'"')
        {
            return None;
        }
        let span = member(b, (i + 1, end), end + 1)?;
        i = ws(b, span.val.1);
        spans.push(span);
    }
    closes(b, i).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(line: &str) -> Option<Vec<(String, String)>> {
        let mut v = Vec::new();
        scan(line.as_bytes(), &mut v)?;
        Some(
            v.iter()
                .map(|s| {
                    (
                        line[s.key.0..s.key.1].to_owned(),
                        line[s.val.0..s.val.1].to_owned(),
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn scanner_splits_flat_objects() {
        assert_eq!(
            spans(r#" { "a" : "x y" ,"b":-1.5e3, "c":true,"d":null,"e":false} "#).unwrap(),
            [
                ("a", "\"x y\""),
                ("b", "-1.5e3"),
                ("c", "true"),
                ("d", "null"),
                ("e", "false")
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(spans("{}").unwrap(), []);
        assert_eq!(spans(r#"{"s":"a\"b"}"#).unwrap()[0].1, r#""a\"b""#);
    }

    #[test]
    fn scanner_leaves_the_rest_to_the_general_path() {
        for line in [
            r#"{"a":{"b":1}}"#,
            r#"{"a":[1]}"#,
            r#"{"a\u0062":1}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":-}"#,
            r#"{"a":tru}"#,
            r#"{"a":truex}"#,
            r#"{"a":1,}"#,
            r#"{"a":1} x"#,
            r#"{"a":1"#,
            r#"{"a" 1}"#,
            "{\"a\":\"\t\"}",
            r#"{"a":"x}"#,
            r#"{"a":"x\"}"#,
            "[1]",
            "{,}",
            r#"{"a":1,"b"}"#,
            "",
        ] {
            assert!(spans(line).is_none(), "{line}");
        }
    }
}
