//! JSON inputs: NDJSON (validated, passed through byte-exact), a top-level
//! array of objects, or the array at `--json-path a.b` inside an object.
//!
//! Arrays are streamed element by element through a serde visitor, so a
//! 1 GB array never sits in memory; each element keeps its key order and
//! number text (etl-core's `Value`).

use std::fmt;
use std::io::{BufReader, Read};

use etl_core::reader::{Item, RejectInput};
use etl_core::{Error, Exit, RecordReader, Reject, Result, Run, Value};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::emit::{header_names, Emitter, Normalize, Origin};
use crate::input::Limits;

/// Passes NDJSON through, validating every line.
pub fn ndjson(
    input: Box<dyn Read + '_>,
    origin: &Origin,
    em: &mut Emitter,
    run: &mut Run,
    limits: &Limits,
) -> Result<()> {
    let name = origin.label.as_str();
    let mut r = RecordReader::new(
        BufReader::with_capacity(64 * 1024, input),
        run.max_line_bytes,
        Some(name.to_owned()),
    );
    let mut row = 0;
    loop {
        let item = r.next_item().map_err(|e| limits.read_error(name, &e))?;
        match item {
            None => return Ok(()),
            Some(Item::Reject(rej)) => {
                row += 1;
                run.records_in += 1;
                run.reject(&rej)?;
            }
            Some(Item::Record(_, rec)) => {
                row += 1;
                run.records_in += 1;
                run.progress.tick(r.raw_line().len() + 1);
                em.raw(r.raw_line(), rec.is_empty(), origin, row)
                    .map_err(|e| Error::stdout(&e))?;
                run.records_out += 1;
            }
        }
    }
}

/// Why streaming stopped early.
enum Stop {
    Fail(Error),
}

struct Sink<'a> {
    em: &'a mut Emitter,
    run: &'a mut Run,
    origin: &'a Origin,
    row: u64,
    stop: Option<Stop>,
    /// For an array of arrays: the first array names the columns.
    header: Option<Vec<String>>,
}

impl Sink<'_> {
    fn element(&mut self, raw: &RawValue) -> Result<()> {
        let value = Value::from_raw(raw);
        // An array of arrays whose first array holds scalars: a table with a header row.
        if let (Ok(Value::Array(items)), None, 0) = (&value, &self.header, self.row) {
            if items
                .iter()
                .all(|v| !matches!(v, Value::Array(_) | Value::Object(_)))
            {
                let names: Vec<String> = items.iter().map(Value::to_raw_text).collect();
                self.header = Some(header_names(
                    names.iter().map(String::as_str),
                    Normalize::None,
                ));
                return Ok(());
            }
        }
        self.row += 1;
        self.run.records_in += 1;
        self.run.progress.tick(raw.get().len());
        match value {
            Ok(Value::Object(rec)) => {
                self.em
                    .record(&rec, self.origin, self.row)
                    .map_err(|e| Error::stdout(&e))?;
                self.run.records_out += 1;
                Ok(())
            }
            Ok(Value::Array(items))
                if self.header.as_ref().is_some_and(|h| items.len() <= h.len()) =>
            {
                let header = self.header.as_deref().unwrap_or_default();
                let mut rec = etl_core::map_with_capacity(header.len());
                let mut items = items.into_iter();
                for name in header {
                    rec.insert(name.clone(), items.next().unwrap_or(Value::Null));
                }
                self.em
                    .record(&rec, self.origin, self.row)
                    .map_err(|e| Error::stdout(&e))?;
                self.run.records_out += 1;
                Ok(())
            }
            Ok(other) => self.run.reject(&Reject {
                line: self.row,
                error: format!(
                    "element {} is not an object (found {})",
                    self.row,
                    other.type_name()
                ),
                input: RejectInput::Value(other),
                source: Some(self.origin.label.clone()),
            }),
            Err(e) => self.run.reject(&Reject {
                line: self.row,
                error: format!("element {}: {e}", self.row),
                input: RejectInput::Raw(raw.get().to_owned()),
                source: Some(self.origin.label.clone()),
            }),
        }
    }
}

/// Streams the elements of an array.
struct Elements<'s, 'a>(&'s mut Sink<'a>);

impl<'de> Visitor<'de> for Elements<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            if let Err(e) = self.0.element(&raw) {
                self.0.stop = Some(Stop::Fail(e));
                return Err(de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
    /// A single object document (no --json-path): one record.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut rec = etl_core::Record::default();
        while let Some(key) = map.next_key::<String>()? {
            let raw: Box<RawValue> = map.next_value()?;
            rec.insert(key, Value::from_raw(&raw).map_err(de::Error::custom)?);
        }
        self.0.row += 1;
        self.0.run.records_in += 1;
        let origin = self.0.origin;
        if let Err(e) = self.0.em.record(&rec, origin, self.0.row) {
            self.0.stop = Some(Stop::Fail(Error::stdout(&e)));
            return Err(de::Error::custom("stopped"));
        }
        self.0.run.records_out += 1;
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Elements<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// Walks `path` down nested objects to the array of records.
struct AtPath<'p, 's, 'a> {
    path: &'p [String],
    sink: &'s mut Sink<'a>,
    found: &'s mut bool,
}

impl<'de> Visitor<'de> for AtPath<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "an object with key {:?}",
            self.path.first().map_or("", String::as_str)
        )
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let AtPath { path, sink, found } = self;
        while let Some(key) = map.next_key::<String>()? {
            if Some(&key) == path.first() && !*found {
                if path.len() == 1 {
                    *found = true;
                    map.next_value_seed(Elements(sink))?;
                } else {
                    map.next_value_seed(AtPath {
                        path: &path[1..],
                        sink: &mut *sink,
                        found: &mut *found,
                    })?;
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for AtPath<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

/// Parses a JSON document: an array of objects, a single object, or the
/// array at `json_path` (dot-separated keys).
pub fn document(
    input: Box<dyn Read + '_>,
    json_path: Option<&str>,
    origin: &Origin,
    em: &mut Emitter,
    run: &mut Run,
    limits: &Limits,
) -> Result<()> {
    let name = origin.label.clone();
    let mut sink = Sink {
        em,
        run,
        origin,
        row: 0,
        stop: None,
        header: None,
    };
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(64 * 1024, input));
    let mut found = false;
    let outcome = match json_path {
        Some(p) => {
            let path: Vec<String> = p.split('.').map(str::to_owned).collect();
            AtPath {
                path: &path,
                sink: &mut sink,
                found: &mut found,
            }
            .deserialize(&mut de)
        }
        None => Elements(&mut sink).deserialize(&mut de),
    }
    .and_then(|()| de.end());
    if let Some(Stop::Fail(e)) = sink.stop.take() {
        return Err(e);
    }
    if let Err(e) = outcome {
        if let Some(err) = limits.error(&name) {
            return Err(err);
        }
        if e.is_io() {
            return Err(Error::new(Exit::IoErr, format!("{name}: {e}")));
        }
        return Err(Error::data(format!("{name}: invalid JSON: {e}")));
    }
    if let (Some(p), false) = (json_path, found) {
        return Err(Error::data(format!("{name}: no array at --json-path {p}")));
    }
    Ok(())
}
