//! `projection_rows` lines in PostgreSQL's COPY text format, for the runner's bulk writes.
//! Only encodes; the runner sends them.
//!
//! Each field is escaped as COPY's text format requires (backslash, tab, newline and carriage
//! return as backslash sequences); a `text[]` is written as an array literal whose elements are
//! all double-quoted (with `"` and `\` backslash-escaped inside), which PostgreSQL reads back
//! as exactly those strings whatever they contain.

use crate::projections::Row;

/// Appends one line for `row` of `projection`'s `generation`, the version written at `since`,
/// to `out`.
pub fn push_row(out: &mut Vec<u8>, projection: &str, generation: u64, row: &Row, since: u64) {
    push_field(out, projection);
    out.push(b'\t');
    out.extend_from_slice(generation.to_string().as_bytes());
    out.push(b'\t');
    push_field(out, &row.key);
    out.push(b'\t');
    // JSON text has no raw tab or newline (strings escape every control character), but it
    // may have backslashes.
    push_field(out, row.data.get());
    out.push(b'\t');
    push_field(out, &array_literal(&row.actors));
    out.push(b'\t');
    push_field(out, &array_literal(&row.states));
    out.push(b'\t');
    push_field(out, &row.status);
    out.push(b'\t');
    push_field(out, &row.sort_key);
    out.push(b'\t');
    out.extend_from_slice(since.to_string().as_bytes());
    out.push(b'\n');
}

/// A field, escaped for COPY's text format. Copies the runs between escapes whole: the JSON
/// data makes up most of a line.
fn push_field(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    let mut run = 0;
    for (i, byte) in bytes.iter().enumerate() {
        let escaped: &[u8] = match byte {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        out.extend_from_slice(&bytes[run..i]);
        out.extend_from_slice(escaped);
        run = i + 1;
    }
    out.extend_from_slice(&bytes[run..]);
}

/// A `text[]` literal with every element quoted: `{"a","b \"c\""}`.
pub fn array_literal(items: &[String]) -> String {
    let mut literal = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            literal.push(',');
        }
        literal.push('"');
        for c in item.chars() {
            if c == '"' || c == '\\' {
                literal.push('\\');
            }
            literal.push(c);
        }
        literal.push('"');
    }
    literal.push('}');
    literal
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projections::RowData;

    #[test]
    fn a_line_escapes_backslashes_tabs_and_newlines_and_quotes_array_elements() {
        let row = Row {
            key: "k\t1".to_owned(),
            data: RowData::new(&serde_json::json!({"t": "x\\y"})).unwrap(),
            actors: vec!["a\"b".to_owned()],
            states: Vec::new(),
            status: "open".to_owned(),
            sort_key: "s\nt".to_owned(),
        };
        let mut out = Vec::new();
        push_row(&mut out, "channels", 7, &row, 40);
        let expected = [
            "channels",
            "7",
            r"k\t1",
            r#"{"t":"x\\\\y"}"#,
            r#"{"a\\"b"}"#,
            "{}",
            "open",
            r"s\nt",
            "40",
        ]
        .join("\t")
            + "\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn escapes_at_the_ends_and_side_by_side_are_each_escaped() {
        let mut out = Vec::new();
        push_field(&mut out, "\\a\t\tb\r\n");
        assert_eq!(String::from_utf8(out).unwrap(), r"\\a\t\tb\r\n");
    }

    #[test]
    fn array_elements_are_always_quoted() {
        assert_eq!(array_literal(&[]), "{}");
        assert_eq!(array_literal(&["".to_owned()]), r#"{""}"#);
        assert_eq!(
            array_literal(&["NULL".to_owned(), "{a,b}".to_owned(), r"c\d".to_owned()]),
            r#"{"NULL","{a,b}","c\\d"}"#
        );
    }
}
