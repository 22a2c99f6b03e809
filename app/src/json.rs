//! Just enough JSON to print one object on one line: string escaping and an
//! object builder that keeps its keys in the order they were added.

/// `value` as a JSON string literal, quotes included (RFC 8259, section 7).
pub fn string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            // Every other control character must be escaped too; everything
            // else, non-ASCII included, is valid as it is in UTF-8 JSON.
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON value, already rendered.
pub struct Value(String);

impl Value {
    pub fn str(value: &str) -> Value {
        Value(string(value))
    }

    /// A string, or `null` when there is none.
    pub fn opt(value: Option<&str>) -> Value {
        match value {
            Some(v) => Value::str(v),
            None => Value::null(),
        }
    }

    pub fn bool(value: bool) -> Value {
        Value(value.to_string())
    }

    pub fn null() -> Value {
        Value("null".to_string())
    }

    pub fn strings(values: &[String]) -> Value {
        let items: Vec<String> = values.iter().map(|v| string(v)).collect();
        Value(format!("[{}]", items.join(",")))
    }

    pub fn render(&self) -> &str {
        &self.0
    }
}

/// A JSON object whose keys come out in insertion order.
#[derive(Default)]
pub struct Object {
    fields: Vec<(String, Value)>,
}

impl Object {
    pub fn new() -> Object {
        Object::default()
    }

    pub fn field(mut self, key: &str, value: Value) -> Object {
        self.fields.push((key.to_string(), value));
        self
    }

    pub fn render(&self) -> String {
        let fields: Vec<String> = self
            .fields
            .iter()
            .map(|(key, value)| format!("{}:{}", string(key), value.render()))
            .collect();
        format!("{{{}}}", fields.join(","))
    }
}

impl From<Object> for Value {
    fn from(object: Object) -> Value {
        Value(object.render())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_strings_are_only_quoted() {
        assert_eq!(string("gpu"), r#""gpu""#);
        assert_eq!(string(""), r#""""#);
    }

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(string(r#"a "b" \c"#), r#""a \"b\" \\c""#);
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(string("a\nb\r\tc"), r#""a\nb\r\tc""#);
        assert_eq!(string("\u{08}\u{0c}"), r#""\b\f""#);
        assert_eq!(string("\u{0}\u{1b}\u{1f}"), r#""\u0000\u001b\u001f""#);
    }

    #[test]
    fn non_ascii_and_delete_pass_through() {
        assert_eq!(string("ü→\u{7f}"), "\"ü→\u{7f}\"");
    }

    #[test]
    fn objects_keep_key_order_and_nest() {
        let inner = Object::new().field("visible", Value::bool(false));
        let object = Object::new()
            .field("variant", Value::str("gpu"))
            .field("revision", Value::opt(None))
            .field("nodes", Value::strings(&["/dev/nvidia0".to_string()]))
            .field("gpu", inner.into());
        assert_eq!(
            object.render(),
            r#"{"variant":"gpu","revision":null,"nodes":["/dev/nvidia0"],"gpu":{"visible":false}}"#
        );
    }

    #[test]
    fn empty_collections() {
        assert_eq!(Object::new().render(), "{}");
        assert_eq!(Value::strings(&[]).render(), "[]");
    }
}
