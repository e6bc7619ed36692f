//! Payload JSON as PostgreSQL's jsonb takes it: a single pass over the text, without recursion,
//! that accepts exactly the JSON texts jsonb stores, so a payload jsonb would refuse is
//! refused here, naming the reason, before the database sees it. Also the canonical form of a
//! JSON value, to compare payloads as jsonb does.
//!
//! What jsonb refuses in valid JSON (PostgreSQL 15, `jsonb_in` and `numeric_in`):
//! - the escape `\u0000` (jsonb's text cannot hold U+0000);
//! - half of a UTF-16 surrogate pair (`\ud800` alone, or not followed by `\udc00`–`\udfff`);
//! - numbers outside `numeric`'s storage format: a display scale (digits after the decimal
//!   point, less the exponent) over 16383 (`NUMERIC_DSCALE_MAX`), a weight (the base-10000
//!   place of the first non-zero digit, `DEC_DIGITS` = 4 decimal digits to a place) over
//!   32767 (`NUMERIC_WEIGHT_MAX`: at most 131072 digits before the decimal point), or an
//!   exponent of magnitude at least `INT_MAX / 2` (checked before anything else, even for 0);
//! - nesting deeper than its stack allows (`max_stack_depth`), which depends on the server's
//!   settings: payloads are held to [`MAX_DEPTH`] levels, which jsonb accepts even at the
//!   smallest `max_stack_depth` (100 kB).

use std::collections::BTreeMap;

use super::validation::ValidationError;

/// The deepest nesting of arrays and objects a payload may have: `[]` is one level, `{"a":[]}`
/// two.
pub const MAX_DEPTH: usize = 100;

/// `numeric`'s largest display scale (`NUMERIC_DSCALE_MAX`).
const MAX_SCALE: i64 = 0x3FFF;
/// `numeric`'s largest weight (`NUMERIC_WEIGHT_MAX`), in places of `DEC_DIGITS` decimal digits.
const MAX_WEIGHT: i64 = i16::MAX as i64;
const MIN_WEIGHT: i64 = i16::MIN as i64;
const DEC_DIGITS: i64 = 4;
/// `numeric_in` refuses exponents of this magnitude or more (`INT_MAX / 2`) before looking at
/// the digits. (PostgreSQL 16 and later refuse only larger ones; this is the stricter rule.)
const MAX_EXPONENT: i64 = (i32::MAX / 2) as i64;

/// Checks that `text` is one JSON value that jsonb stores, nested at most [`MAX_DEPTH`] deep.
pub fn check(text: &str) -> Result<(), ValidationError> {
    Parser::new(text, Some(MAX_DEPTH)).run(&mut Check)
}

/// The canonical text of the JSON value `text` stands for: two texts have the same canonical
/// form exactly when jsonb holds them equal. Object members sorted by key, the last of
/// repeated keys kept (as jsonb keeps it), strings with their escapes resolved, numbers by
/// value (`1`, `1.0` and `10e-1` are one number). Not bounded in depth: it also reads texts
/// stored before [`MAX_DEPTH`] applied.
pub fn canonical(text: &str) -> Result<String, ValidationError> {
    let mut builder = Canonical::default();
    Parser::new(text, None).run(&mut builder)?;
    Ok(builder.done())
}

/// Whether two JSON texts stand for the same value, as jsonb compares them. A text that does
/// not parse equals nothing.
pub fn same_value(a: &str, b: &str) -> bool {
    a == b || matches!((canonical(a), canonical(b)), (Ok(a), Ok(b)) if a == b)
}

/// What a parse reports, in document order.
trait Sink {
    /// Whether strings are decoded and passed to `string` (otherwise they are only checked).
    const DECODES: bool;
    fn begin_array(&mut self) {}
    fn begin_object(&mut self) {}
    fn end(&mut self) {}
    /// A string: a member's key when `key`, else a value.
    fn string(&mut self, _value: &str, _key: bool) {}
    /// A number, already checked, by its digits (no leading or trailing zeros; empty for 0),
    /// its sign and the decimal exponent of its first digit.
    fn number(&mut self, _negative: bool, _digits: &str, _exponent: i64) {}
    fn literal(&mut self, _text: &'static str) {}
}

struct Check;

impl Sink for Check {
    const DECODES: bool = false;
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Container {
    Array,
    Object,
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    max_depth: Option<usize>,
    /// The open arrays and objects, innermost last.
    stack: Vec<Container>,
    /// A decoded string, reused.
    scratch: String,
    /// A number's significant digits, reused.
    digits: String,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, max_depth: Option<usize>) -> Self {
        Self {
            text,
            bytes: text.as_bytes(),
            at: 0,
            max_depth,
            stack: Vec::new(),
            scratch: String::new(),
            digits: String::new(),
        }
    }

    fn run<S: Sink>(mut self, sink: &mut S) -> Result<(), ValidationError> {
        self.skip_white_space();
        // Each turn reads one value (after a key, if in an object) and what follows it.
        loop {
            self.value(sink)?;
            // After a value: a comma, or the end of its container (perhaps several), or of the
            // text.
            loop {
                self.skip_white_space();
                let Some(&container) = self.stack.last() else {
                    if self.at < self.bytes.len() {
                        return Err(self.syntax("trailing characters"));
                    }
                    return Ok(());
                };
                match (self.peek(), container) {
                    (Some(b','), _) => {
                        self.at += 1;
                        self.skip_white_space();
                        if container == Container::Object {
                            self.key(sink)?;
                        }
                        break;
                    }
                    (Some(b']'), Container::Array) | (Some(b'}'), Container::Object) => {
                        self.at += 1;
                        self.stack.pop();
                        sink.end();
                    }
                    (None, _) => return Err(self.syntax("EOF while parsing a value")),
                    (_, Container::Array) => {
                        return Err(self.syntax("expected `,` or `]`"));
                    }
                    (_, Container::Object) => {
                        return Err(self.syntax("expected `,` or `}`"));
                    }
                }
            }
        }
    }

    /// One value at `at` (after white space): a scalar, or the start of an array or object
    /// (up to its first value, or its end when empty).
    fn value<S: Sink>(&mut self, sink: &mut S) -> Result<(), ValidationError> {
        loop {
            match self.peek() {
                Some(b'[') | Some(b'{') => {
                    let container = if self.peek() == Some(b'[') {
                        Container::Array
                    } else {
                        Container::Object
                    };
                    if let Some(max) = self.max_depth
                        && self.stack.len() >= max
                    {
                        return Err(ValidationError::JsonTooDeep { max });
                    }
                    self.at += 1;
                    self.stack.push(container);
                    match container {
                        Container::Array => sink.begin_array(),
                        Container::Object => sink.begin_object(),
                    }
                    self.skip_white_space();
                    let close = match container {
                        Container::Array => b']',
                        Container::Object => b'}',
                    };
                    if self.peek() == Some(close) {
                        // Empty: the caller reads what follows it.
                        self.at += 1;
                        self.stack.pop();
                        sink.end();
                        return Ok(());
                    }
                    if container == Container::Object {
                        self.key(sink)?;
                    }
                    // The container's first value.
                }
                Some(b'"') => {
                    self.string(sink, false)?;
                    return Ok(());
                }
                Some(b'-' | b'0'..=b'9') => return self.number(sink),
                Some(b't') => return self.literal(sink, "true"),
                Some(b'f') => return self.literal(sink, "false"),
                Some(b'n') => return self.literal(sink, "null"),
                Some(_) => return Err(self.syntax("expected value")),
                None => return Err(self.syntax("EOF while parsing a value")),
            }
        }
    }

    /// A member's key and its colon, leaving `at` at its value.
    fn key<S: Sink>(&mut self, sink: &mut S) -> Result<(), ValidationError> {
        match self.peek() {
            Some(b'"') => self.string(sink, true)?,
            None => return Err(self.syntax("EOF while parsing an object")),
            Some(_) => return Err(self.syntax("key must be a string")),
        }
        self.skip_white_space();
        if self.peek() != Some(b':') {
            return Err(self.syntax("expected `:`"));
        }
        self.at += 1;
        self.skip_white_space();
        Ok(())
    }

    fn literal<S: Sink>(
        &mut self,
        sink: &mut S,
        word: &'static str,
    ) -> Result<(), ValidationError> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            sink.literal(word);
            Ok(())
        } else {
            Err(self.syntax("expected value"))
        }
    }

    /// A string at `at` (its opening quote).
    fn string<S: Sink>(&mut self, sink: &mut S, key: bool) -> Result<(), ValidationError> {
        self.at += 1;
        self.scratch.clear();
        let mut run_start = self.at;
        loop {
            let Some(&byte) = self.bytes.get(self.at) else {
                return Err(self.syntax("EOF while parsing a string"));
            };
            match byte {
                b'"' => {
                    if S::DECODES {
                        self.scratch.push_str(&self.text[run_start..self.at]);
                        sink.string(&self.scratch, key);
                    }
                    self.at += 1;
                    return Ok(());
                }
                b'\\' => {
                    if S::DECODES {
                        self.scratch.push_str(&self.text[run_start..self.at]);
                    }
                    self.escape::<S>()?;
                    run_start = self.at;
                }
                0x00..=0x1F => {
                    return Err(self.syntax("control character in a string (escape it)"));
                }
                _ => self.at += 1,
            }
        }
    }

    /// An escape at `at` (its backslash), decoded onto `scratch` if `S` decodes.
    fn escape<S: Sink>(&mut self) -> Result<(), ValidationError> {
        let start = self.at;
        let decoded = match self.bytes.get(self.at + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let unit = self.hex4(self.at + 2)?;
                self.at += 6;
                let c = match unit {
                    0 => return Err(ValidationError::NulCharacter),
                    0xD800..=0xDBFF => {
                        let low = if self.bytes[self.at..].starts_with(b"\\u") {
                            Some(self.hex4(self.at + 2)?)
                        } else {
                            None
                        };
                        match low {
                            Some(low @ 0xDC00..=0xDFFF) => {
                                self.at += 6;
                                let c = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                                char::from_u32(c).expect("a surrogate pair is a character")
                            }
                            _ => return Err(self.lone_surrogate(start)),
                        }
                    }
                    0xDC00..=0xDFFF => return Err(self.lone_surrogate(start)),
                    unit => char::from_u32(unit).expect("not a surrogate"),
                };
                if S::DECODES {
                    self.scratch.push(c);
                }
                return Ok(());
            }
            Some(_) => return Err(self.syntax("invalid escape")),
            None => return Err(self.syntax("EOF while parsing a string")),
        };
        self.at += 2;
        if S::DECODES {
            self.scratch.push(decoded);
        }
        Ok(())
    }

    fn hex4(&self, from: usize) -> Result<u32, ValidationError> {
        let hex = self
            .bytes
            .get(from..from + 4)
            .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
            .ok_or_else(|| self.syntax_at(from, "invalid \\u escape"))?;
        let hex = std::str::from_utf8(hex).expect("ASCII hex digits");
        Ok(u32::from_str_radix(hex, 16).expect("four hex digits"))
    }

    fn lone_surrogate(&self, escape: usize) -> ValidationError {
        let (line, column) = self.line_and_column(escape);
        ValidationError::LoneSurrogate {
            escape: self.text[escape..escape + 6].to_owned(),
            line,
            column,
        }
    }

    /// A number at `at`: JSON's grammar, then numeric's range.
    fn number<S: Sink>(&mut self, sink: &mut S) -> Result<(), ValidationError> {
        let start = self.at;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let integer = self.digit_run();
        if integer.is_empty() {
            return Err(self.syntax("expected a digit"));
        }
        if integer.len() > 1 && integer.starts_with('0') {
            return Err(self.syntax_at(start, "a number must not start with 0"));
        }
        let mut fraction = "";
        if self.peek() == Some(b'.') {
            self.at += 1;
            fraction = self.digit_run();
            if fraction.is_empty() {
                return Err(self.syntax("expected a digit after the decimal point"));
            }
        }
        let mut exponent: i64 = 0;
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            let exponent_negative = match self.peek() {
                Some(b'-') => {
                    self.at += 1;
                    true
                }
                Some(b'+') => {
                    self.at += 1;
                    false
                }
                _ => false,
            };
            let digits = self.digit_run();
            if digits.is_empty() {
                return Err(self.syntax("expected a digit in the exponent"));
            }
            for digit in digits.bytes() {
                exponent = exponent
                    .saturating_mul(10)
                    .saturating_add(i64::from(digit - b'0'));
            }
            if exponent_negative {
                exponent = -exponent;
            }
        }
        let text = &self.text[start..self.at];
        let out_of_range = |reason: String| ValidationError::NumberOutOfRange {
            number: abbreviate(text),
            reason,
        };
        if exponent.abs() >= MAX_EXPONENT {
            return Err(out_of_range(format!(
                "its exponent is {MAX_EXPONENT} or more, or -{MAX_EXPONENT} or less"
            )));
        }
        let scale = (fraction.len() as i64 - exponent).max(0);
        if scale > MAX_SCALE {
            return Err(out_of_range(format!(
                "it has {scale} digits after the decimal point, and at most {MAX_SCALE} are \
                 allowed"
            )));
        }
        // The first non-zero digit and its decimal place (10^place).
        let all = integer.bytes().chain(fraction.bytes());
        let first = all.clone().position(|d| d != b'0');
        if let Some(first) = first {
            let place = integer.len() as i64 - 1 - first as i64 + exponent;
            let weight = place.div_euclid(DEC_DIGITS);
            if !(MIN_WEIGHT..=MAX_WEIGHT).contains(&weight) {
                return Err(out_of_range(format!(
                    "it has {} digits before the decimal point, and at most {} are allowed",
                    place + 1,
                    (MAX_WEIGHT + 1) * DEC_DIGITS
                )));
            }
            if S::DECODES {
                self.digits.clear();
                self.digits.extend(all.skip(first).map(char::from));
                let significant = self.digits.trim_end_matches('0').len();
                self.digits.truncate(significant);
                sink.number(negative, &self.digits, place);
            }
        } else if S::DECODES {
            sink.number(false, "", 0);
        }
        Ok(())
    }

    /// The ASCII digits from `at` on, consumed.
    fn digit_run(&mut self) -> &'a str {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        &self.text[start..self.at]
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// JSON's white space only (space, tab, line feed, carriage return), as jsonb's.
    fn skip_white_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn syntax(&self, what: &str) -> ValidationError {
        self.syntax_at(self.at, what)
    }

    fn syntax_at(&self, at: usize, what: &str) -> ValidationError {
        let (line, column) = self.line_and_column(at);
        ValidationError::InvalidJson {
            reason: format!("{what} at line {line} column {column}"),
        }
    }

    /// 1-based, counting characters.
    fn line_and_column(&self, at: usize) -> (usize, usize) {
        let before = &self.text[..at.min(self.text.len())];
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }
}

/// A number as shown in an error: whole if short, else its start and length.
fn abbreviate(number: &str) -> String {
    const SHOWN: usize = 24;
    if number.len() <= SHOWN {
        number.to_owned()
    } else {
        format!("{}… ({} characters)", &number[..SHOWN], number.len())
    }
}

/// Builds the canonical text (see [`canonical`]). Arrays are written straight into the text
/// of whatever holds them; each object member's value gets a text of its own, so that the
/// members can be sorted by key when the object ends. Values in arrays are so copied once, and
/// those in objects once per enclosing object.
struct Canonical {
    open: Vec<Open>,
    /// The texts being written: the whole value's first, then one per object member whose
    /// value is being read, innermost last.
    texts: Vec<String>,
}

impl Default for Canonical {
    fn default() -> Self {
        Self {
            open: Vec::new(),
            texts: vec![String::new()],
        }
    }
}

enum Open {
    Array {
        empty: bool,
    },
    Object {
        members: BTreeMap<String, String>,
        key: Option<String>,
    },
}

impl Canonical {
    fn text(&mut self) -> &mut String {
        self.texts.last_mut().expect("the whole value's text")
    }

    /// Before a value: the comma that separates it from the one before in its array.
    fn begin_value(&mut self) {
        if let Some(Open::Array { empty }) = self.open.last_mut() {
            let first = std::mem::replace(empty, false);
            if !first {
                self.text().push(',');
            }
        }
    }

    /// After a value: a member's value goes into its object.
    fn end_value(&mut self) {
        if let Some(Open::Object { members, key }) = self.open.last_mut() {
            let key = key.take().expect("a member's key comes before its value");
            let value = self.texts.pop().expect("the member's text");
            // A repeated key keeps its last value, as in jsonb.
            members.insert(key, value);
        }
    }

    fn done(mut self) -> String {
        self.texts.swap_remove(0)
    }
}

fn push_quoted(text: &mut String, value: &str) {
    text.push_str(&serde_json::to_string(value).expect("a string serializes"));
}

impl Sink for Canonical {
    const DECODES: bool = true;

    fn begin_array(&mut self) {
        self.begin_value();
        self.text().push('[');
        self.open.push(Open::Array { empty: true });
    }

    fn begin_object(&mut self) {
        self.begin_value();
        self.open.push(Open::Object {
            members: BTreeMap::new(),
            key: None,
        });
    }

    fn end(&mut self) {
        match self.open.pop().expect("an open container") {
            Open::Array { .. } => self.text().push(']'),
            Open::Object { members, .. } => {
                let text = self.text();
                text.push('{');
                for (index, (key, value)) in members.iter().enumerate() {
                    if index > 0 {
                        text.push(',');
                    }
                    push_quoted(text, key);
                    text.push(':');
                    text.push_str(value);
                }
                text.push('}');
            }
        }
        self.end_value();
    }

    fn string(&mut self, value: &str, key: bool) {
        if key {
            if let Some(Open::Object { key, .. }) = self.open.last_mut() {
                *key = Some(value.to_owned());
            }
            self.texts.push(String::new());
        } else {
            self.begin_value();
            push_quoted(self.text(), value);
            self.end_value();
        }
    }

    fn number(&mut self, negative: bool, digits: &str, exponent: i64) {
        self.begin_value();
        let text = self.text();
        if digits.is_empty() {
            text.push('0');
        } else {
            use std::fmt::Write;
            let sign = if negative { "-" } else { "" };
            write!(text, "{sign}0.{digits}e{}", exponent + 1).expect("writing to a String");
        }
        self.end_value();
    }

    fn literal(&mut self, word: &'static str) {
        self.begin_value();
        self.text().push_str(word);
        self.end_value();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn valid_json_is_accepted() {
        for text in [
            "{}",
            "[]",
            "0",
            "-0",
            "1.5e10",
            "-0.0E-3",
            "\"x\"",
            "true",
            "null",
            " { \"a\" : [ 1 , { } , [ ] , \"\\u00e9\\ud83d\\ude00\\n\" ] , \"b\" : false } ",
            "{\"a\":1,\"a\":2}",
            "\"Лавров\"",
        ] {
            assert_eq!(check(text), Ok(()), "{text}");
        }
    }

    #[test]
    fn invalid_json_is_refused_with_where() {
        for text in [
            "",
            " ",
            "{",
            "[1,]",
            "{\"a\"}",
            "{\"a\":}",
            "{a:1}",
            "01",
            "1.",
            ".5",
            "1e",
            "+1",
            "[1 2]",
            "tru",
            "nul",
            "\"a",
            "\"\\x\"",
            "\"\\u12\"",
            "\"a\tb\"",
            "1 2",
            "NaN",
            "Infinity",
            "{\"a\":1,}",
            "[",
            "\u{feff}{}",
            "[1]]",
        ] {
            assert!(
                matches!(check(text), Err(ValidationError::InvalidJson { .. })),
                "{text:?}: {:?}",
                check(text)
            );
        }
        assert_eq!(
            check("{\n  \"a\": }").unwrap_err().to_string(),
            "is not valid JSON: expected value at line 2 column 8"
        );
    }

    #[test]
    fn nesting_is_held_to_the_limit_without_recursion() {
        assert_eq!(check(&nested(MAX_DEPTH)), Ok(()));
        assert_eq!(
            check(&nested(MAX_DEPTH + 1)),
            Err(ValidationError::JsonTooDeep { max: MAX_DEPTH })
        );
        let deep = "[".repeat(1_000_000);
        assert_eq!(
            check(&deep),
            Err(ValidationError::JsonTooDeep { max: MAX_DEPTH })
        );
        // The canonical form has no limit and no recursion either.
        let deep = nested(200_000);
        assert_eq!(canonical(&deep).unwrap(), deep.replace('1', "0.1e1"));
    }

    #[test]
    fn escapes_jsonb_refuses_are_refused() {
        assert_eq!(
            check(r#"{"a":"x\u0000y"}"#),
            Err(ValidationError::NulCharacter)
        );
        assert!(check(r#"{"a":"x\\u0000y"}"#).is_ok());
        for text in [
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud800\u0041""#,
            r#""\ud800x""#,
            r#""\udbff\ud800""#,
        ] {
            assert!(
                matches!(check(text), Err(ValidationError::LoneSurrogate { .. })),
                "{text}"
            );
        }
        assert!(check(r#""\ud800\udc00\uDBFF\uDFFF""#).is_ok());
        assert_eq!(
            check("{\"a\":\n \"x\\uD800\"}").unwrap_err().to_string(),
            "has the escape \\uD800 at line 2 column 4, half of a UTF-16 surrogate pair \
             without the other half, which PostgreSQL's jsonb cannot store"
        );
    }

    #[test]
    fn numbers_are_held_to_numerics_range() {
        for text in [
            "1e131071",
            "0.1e131072",
            "12e131070",
            "1e-16383",
            "0e-16383",
            "0e1073741822",
            "1.5e-16382",
            &format!("1{}", "0".repeat(131_071)),
            &format!("0.{}1", "0".repeat(16_382)),
        ] {
            assert_eq!(check(text), Ok(()), "{}", abbreviate(text));
        }
        for text in [
            "1e999999",
            "1e-999999",
            "1e131072",
            "10e131071",
            "1e-16384",
            "0e-16384",
            "0e1073741823",
            "1e99999999999999999999999",
            &format!("1{}", "0".repeat(131_072)),
            &format!("0.{}1", "0".repeat(16_383)),
        ] {
            assert!(
                matches!(check(text), Err(ValidationError::NumberOutOfRange { .. })),
                "{}: {:?}",
                abbreviate(text),
                check(text)
            );
        }
        assert_eq!(
            check(&"9".repeat(200_000)).unwrap_err().to_string(),
            "has the number 999999999999999999999999… (200000 characters), which PostgreSQL's \
             numeric cannot store: it has 200000 digits before the decimal point, and at most \
             131072 are allowed"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 4000,
            failure_persistence: None,
            ..Default::default()
        })]

        /// On JSON's grammar the check agrees with serde_json: what it refuses as invalid JSON
        /// serde_json refuses, and what it refuses for jsonb's sake (numbers, escapes, depth)
        /// serde_json accepts as JSON.
        #[test]
        fn the_grammar_is_json_s(text in "[\\[\\]{}\",:0-9.eE+ \t\nabtrufnls\\\\-]{0,32}") {
            let ours = check(&text);
            let theirs = serde_json::from_str::<serde::de::IgnoredAny>(&text);
            match ours {
                Err(ValidationError::InvalidJson { .. }) => {
                    proptest::prop_assert!(theirs.is_err(), "{text:?}: serde_json accepts it")
                }
                _ => proptest::prop_assert!(theirs.is_ok(), "{text:?}: {:?}, serde_json {theirs:?}", ours),
            }
        }

        /// Any JSON value, written compactly or pretty, passes the check, and both texts
        /// are the same value; its canonical form is JSON for the same value again.
        #[test]
        fn a_value_is_the_same_however_written(value in json_value()) {
            let compact = value.to_string();
            let pretty = serde_json::to_string_pretty(&value).expect("serializes");
            proptest::prop_assert_eq!(check(&compact), Ok(()));
            proptest::prop_assert_eq!(check(&pretty), Ok(()));
            proptest::prop_assert!(same_value(&compact, &pretty));
            let form = canonical(&compact).expect("valid JSON");
            proptest::prop_assert_eq!(check(&form), Ok(()));
            proptest::prop_assert_eq!(canonical(&form).ok(), Some(form));
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "\\PC{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("\\PC{0,6}", inner, 0..6)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn the_canonical_form_is_the_value() {
        let same = [
            ("1", "1.0"),
            ("1", "10e-1"),
            ("100", "1e2"),
            ("0", "-0.000"),
            ("-1.50", "-15E-1"),
            (
                r#"{"b":[true],"a":1}"#,
                r#" { "a" : 1.0, "b" : [ true ] } "#,
            ),
            (r#""\u00e9\/""#, "\"é/\""),
            (r#"{"a":1,"a":2}"#, r#"{"a":2}"#),
        ];
        for (a, b) in same {
            assert!(same_value(a, b), "{a} = {b}");
        }
        let different = [
            ("1", "2"),
            ("1", "-1"),
            ("12345678901234567890123", "12345678901234567890124"),
            ("1", "\"1\""),
            ("[1,2]", "[2,1]"),
            (r#"{"a":1}"#, r#"{"a":1,"b":null}"#),
            ("{}", "[]"),
            ("null", "false"),
            ("not json", "not json either"),
        ];
        for (a, b) in different {
            assert!(!same_value(a, b), "{a} ≠ {b}");
        }
    }
}
