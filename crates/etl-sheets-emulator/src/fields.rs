//! The `fields` system parameter (partial responses): `a,b.c`, `a/b`,
//! `sheets(properties(title,sheetId))`, `*`. Applied to every response.

use std::collections::BTreeMap;

use serde_json::Value;

/// A parsed selector: an empty map selects the whole value.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Mask(BTreeMap<String, Mask>);

impl Mask {
    /// True when it selects the whole value (no parts named, or `*`).
    pub fn is_whole(&self) -> bool {
        self.0.is_empty() || self.0.contains_key("*")
    }

    /// The named parts and what is selected within each.
    pub fn parts(&self) -> impl Iterator<Item = (&String, &Mask)> {
        self.0.iter()
    }
}

/// Parses a `fields` value; the error is Google's wording.
pub fn parse(s: &str) -> Result<Mask, String> {
    let mut p = P {
        s: s.as_bytes(),
        i: 0,
    };
    let m = p.list()?;
    if p.i != p.s.len() {
        return Err(format!("Invalid field selection {s}"));
    }
    Ok(m)
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn list(&mut self) -> Result<Mask, String> {
        let mut m = Mask::default();
        loop {
            self.path(&mut m)?;
            if self.s.get(self.i) == Some(&b',') {
                self.i += 1;
                continue;
            }
            return Ok(m);
        }
    }

    fn path(&mut self, into: &mut Mask) -> Result<(), String> {
        while self.s.get(self.i) == Some(&b' ') {
            self.i += 1;
        }
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'*')
        {
            self.i += 1;
        }
        if start == self.i {
            return Err(format!(
                "Invalid field selection {}",
                String::from_utf8_lossy(self.s)
            ));
        }
        let name = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        let child = into.0.entry(name).or_default();
        match self.s.get(self.i) {
            Some(b'.' | b'/') => {
                self.i += 1;
                self.path(child)
            }
            Some(b'(') => {
                self.i += 1;
                let inner = self.list()?;
                if self.s.get(self.i) != Some(&b')') {
                    return Err(format!(
                        "Invalid field selection {}",
                        String::from_utf8_lossy(self.s)
                    ));
                }
                self.i += 1;
                child.0.extend(inner.0);
                Ok(())
            }
            _ => {
                child.0.clear();
                Ok(())
            }
        }
    }
}

/// Keeps only the selected parts of `v` (arrays apply the mask to each item).
pub fn apply(v: &mut Value, m: &Mask) {
    if m.0.is_empty() || m.0.contains_key("*") {
        return;
    }
    match v {
        Value::Object(o) => {
            o.retain(|k, _| m.0.contains_key(k));
            for (k, child) in o.iter_mut() {
                apply(child, &m.0[k]);
            }
        }
        Value::Array(a) => {
            for item in a {
                apply(item, m);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_three_spellings() {
        let v = json!({"spreadsheetId": "x", "properties": {"title": "t", "locale": "en"},
            "sheets": [{"properties": {"sheetId": 1, "title": "a", "index": 0}}, {"properties": {"sheetId": 2, "title": "b", "index": 1}}]});
        for f in [
            "sheets.properties.title,spreadsheetId",
            "sheets/properties/title,spreadsheetId",
            "spreadsheetId,sheets(properties(title))",
        ] {
            let mut w = v.clone();
            apply(&mut w, &parse(f).unwrap());
            assert_eq!(
                w,
                json!({"spreadsheetId": "x", "sheets": [{"properties": {"title": "a"}}, {"properties": {"title": "b"}}]}),
                "{f}"
            );
        }
        let mut w = v.clone();
        apply(&mut w, &parse("*").unwrap());
        assert_eq!(w, v);
        assert!(parse("sheets(properties").is_err());
        assert!(parse("a,,b").is_err());
    }
}
