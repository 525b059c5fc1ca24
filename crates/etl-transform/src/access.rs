//! How the steps reach a record: one interface, two records.
//!
//! Every step is written once, in [`crate::steps::Step`], against these
//! two traits:
//!
//! - [`Keyed`], an ordered list of named fields, for the steps that change
//!   only which keys a record has and in which order (select, drop, rename,
//!   rename-regex, normalize-keys, reorder). The general path applies them
//!   to each record's map; the fast path applies the same code once per key
//!   shape, to its plan's list of names.
//! - [`Access`], the values, for every other step. A step addresses its
//!   fields by their position in [`crate::steps::Step::field_names`] and by
//!   name: the general record finds them by name, the fast path by the slot
//!   its plan worked out for that position. The fast path only plans slot
//!   positions; it has no step code of its own.

use etl_core::{Record, Value};

use crate::expr::Lookup;

/// An ordered list of named fields: a record, or the fast path's plan of
/// one record shape.
pub(crate) trait Keyed {
    /// How many fields.
    fn len(&self) -> usize;
    /// The name of the field at `i`.
    fn name_at(&self, i: usize) -> &str;
    /// The position of `name`.
    fn position(&self, name: &str) -> Option<usize>;
    /// Removes the field at `i`, keeping the order of the others.
    fn remove_at(&mut self, i: usize);
    /// Renames the field at `i`.
    fn rename_at(&mut self, i: usize, name: String);
    /// Moves the field at `i` to position `to`, shifting those between.
    fn move_to(&mut self, i: usize, to: usize);
    /// Keeps the first `n` fields.
    fn truncate(&mut self, n: usize);
}

/// A record's values as a step reads and writes them. `i` is the field's
/// position in the step's [`crate::steps::Step::field_names`], `name` its
/// name.
pub(crate) trait Access {
    /// The value of field `i`, `None` when the record has no such field.
    fn get(&mut self, i: usize, name: &str) -> Option<&mut Value>;

    /// Sets field `i`, adding it after the others when absent.
    fn set(&mut self, i: usize, name: &str, v: Value);

    /// Every value in turn (a value step on `*`).
    fn each(&mut self, f: impl FnMut(&mut Value));

    /// Rewrites field `i`: `f` reads its value and writes the new one to
    /// `out` (whose buffer it may reuse); the field takes `out` when `f`
    /// succeeds. `None` when the record has no such field.
    fn rewrite(
        &mut self,
        i: usize,
        name: &str,
        f: impl FnOnce(&Value, &mut Value) -> Result<(), String>,
    ) -> Option<Result<(), String>>;

    /// Appends field `i` as compact JSON to `out`; false when absent.
    fn write_json(&mut self, i: usize, name: &str, out: &mut Vec<u8>) -> bool;

    /// Runs `f` with the record as an expression sees it; the step's fields
    /// from position `from` on are the ones the expression reads.
    fn with_lookup<T>(&mut self, from: usize, f: impl FnOnce(&dyn Lookup) -> T) -> T;
}

impl Keyed for Record {
    fn len(&self) -> usize {
        Record::len(self)
    }
    fn name_at(&self, i: usize) -> &str {
        self.get_index(i).map_or("", |(k, _)| k.as_str())
    }
    fn position(&self, name: &str) -> Option<usize> {
        self.get_index_of(name)
    }
    fn remove_at(&mut self, i: usize) {
        self.shift_remove_index(i);
    }
    fn rename_at(&mut self, i: usize, name: String) {
        let _ = self.replace_index(i, name);
    }
    fn move_to(&mut self, i: usize, to: usize) {
        self.move_index(i, to);
    }
    fn truncate(&mut self, n: usize) {
        Record::truncate(self, n);
    }
}

impl Access for Record {
    fn get(&mut self, _: usize, name: &str) -> Option<&mut Value> {
        self.get_mut(name)
    }

    fn set(&mut self, _: usize, name: &str, v: Value) {
        match self.get_mut(name) {
            Some(slot) => *slot = v,
            None => {
                self.insert(name.to_owned(), v);
            }
        }
    }

    fn each(&mut self, f: impl FnMut(&mut Value)) {
        self.values_mut().for_each(f);
    }

    fn rewrite(
        &mut self,
        _: usize,
        name: &str,
        f: impl FnOnce(&Value, &mut Value) -> Result<(), String>,
    ) -> Option<Result<(), String>> {
        let v = self.get_mut(name)?;
        let mut out = Value::Null;
        let r = f(v, &mut out);
        if r.is_ok() {
            *v = out;
        }
        Some(r)
    }

    fn write_json(&mut self, _: usize, name: &str, out: &mut Vec<u8>) -> bool {
        self.get_mut(name)
            .map(|v| etl_core::record::write_value(out, v))
            .is_some()
    }

    fn with_lookup<T>(&mut self, _: usize, f: impl FnOnce(&dyn Lookup) -> T) -> T {
        f(&*self)
    }
}
