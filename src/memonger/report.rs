//! Hand-written JSON for the memory report and the arena plan (spec §5.5). Keys keep a fixed
//! order so the same plan always gives the same bytes.

use std::fmt::Write;

/// A JSON string literal for `s`.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A ratio as JSON (`null` when the denominator is 0), 6 decimals.
pub fn json_ratio(num: u64, den: u64) -> String {
    if den == 0 {
        "null".into()
    } else {
        format!("{:.6}", num as f64 / den as f64)
    }
}

/// Builds one JSON object, key by key.
#[derive(Default)]
pub struct ObjectWriter {
    body: String,
}

impl ObjectWriter {
    pub fn raw(&mut self, key: &str, value: impl AsRef<str>) -> &mut Self {
        if !self.body.is_empty() {
            self.body.push(',');
        }
        self.body.push_str(&json_str(key));
        self.body.push(':');
        self.body.push_str(value.as_ref());
        self
    }
    pub fn num(&mut self, key: &str, value: impl std::fmt::Display) -> &mut Self {
        self.raw(key, value.to_string())
    }
    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.raw(key, json_str(value))
    }
    pub fn strs<'a>(&mut self, key: &str, values: impl IntoIterator<Item = &'a str>) -> &mut Self {
        let items: Vec<String> = values.into_iter().map(json_str).collect();
        self.raw(key, format!("[{}]", items.join(",")))
    }
    pub fn finish(&self) -> String {
        format!("{{{}}}", self.body)
    }
}
