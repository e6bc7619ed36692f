//! Events, streams and appends: newtypes that can only hold valid values ("parse, don't
//! validate"), and the rules of an append and of a read.

use std::collections::BTreeMap;
use std::fmt;

use uuid::Uuid;

use super::validation::{ValidationError, ValidationErrors};

/// The documented input limits. Changing one is an API change: keep the README in step.
/// Three are defaults an operator may change (`--max-…`, README "Limits"): the payload size
/// and the events per append only downwards (these constants are also the domain's hard
/// ceilings), the request size either way.
pub mod limits {
    use super::ValidationError;

    pub const MAX_STREAM_ID_BYTES: usize = 256;
    pub const MAX_EVENT_TYPE_BYTES: usize = 128;
    /// One event's payload (its JSON text): the default and the ceiling of
    /// `--max-payload-bytes`.
    pub const MAX_DATA_BYTES: usize = 1024 * 1024;
    /// The default and the ceiling of `--max-events-per-append`.
    pub const MAX_EVENTS_PER_APPEND: usize = 1000;
    /// One gRPC request in all (the default of `--max-request-bytes`); larger messages are
    /// refused by the transport. Also what the CLI accepts in one response message.
    pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;
    pub const MAX_METADATA_ENTRIES: usize = 64;
    pub const MAX_METADATA_KEY_BYTES: usize = 128;
    pub const MAX_METADATA_VALUE_BYTES: usize = 4096;
    /// Event types one ReadAll may filter by.
    pub const MAX_TYPE_FILTERS: usize = 64;
    /// Entries of each list of one `ReadRecordingInputs` (a streamed import's chunk is at most
    /// 100,000 rows).
    pub const MAX_RECORDING_INPUTS: usize = 100_000;

    /// What an append may hold, as this server is configured (at most the ceilings above).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct AppendLimits {
        pub max_events: usize,
        pub max_payload_bytes: usize,
    }

    impl AppendLimits {
        /// Refuses more events than one append may hold (an empty append is refused elsewhere).
        pub fn check_events(&self, count: usize) -> Result<(), ValidationError> {
            over(Limit::EventsPerAppend, count, self.max_events)
        }

        /// Refuses a payload of more bytes than allowed.
        pub fn check_payload(&self, bytes: usize) -> Result<(), ValidationError> {
            over(Limit::PayloadBytes, bytes, self.max_payload_bytes)
        }
    }

    fn over(limit: Limit, value: usize, max: usize) -> Result<(), ValidationError> {
        if value > max {
            Err(ValidationError::OverLimit { limit, value, max })
        } else {
            Ok(())
        }
    }

    impl Default for AppendLimits {
        fn default() -> Self {
            Self {
                max_events: MAX_EVENTS_PER_APPEND,
                max_payload_bytes: MAX_DATA_BYTES,
            }
        }
    }

    /// A limit the operator sets, named in the error a client gets when it is exceeded, so
    /// the client knows which setting refused it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Limit {
        EventsPerAppend,
        PayloadBytes,
    }

    impl Limit {
        /// The server flag that sets it (its environment variable is `DIPLOG_` and the rest
        /// in capitals); `config.rs` has a test that these flags exist.
        pub fn flag(self) -> &'static str {
            match self {
                Limit::EventsPerAppend => "--max-events-per-append",
                Limit::PayloadBytes => "--max-payload-bytes",
            }
        }

        pub fn unit(self) -> &'static str {
            match self {
                Limit::EventsPerAppend => "events",
                Limit::PayloadBytes => "bytes",
            }
        }

        pub fn per(self) -> &'static str {
            match self {
                Limit::EventsPerAppend => "append",
                Limit::PayloadBytes => "event payload",
            }
        }
    }
}

fn check_length(raw: &str, max: usize) -> Result<(), ValidationError> {
    if raw.is_empty() {
        return Err(ValidationError::Empty);
    }
    if raw.len() > max {
        return Err(ValidationError::TooLong {
            len: raw.len(),
            max,
        });
    }
    Ok(())
}

/// The first Unicode format character (general category Cf: bidirectional overrides and
/// isolates, zero-width spaces and joiners, the byte order mark, …) in `raw`, if any. They are
/// invisible, so a name holding one looks like another name.
fn format_character(raw: &str) -> Option<char> {
    // Every Cf code point as of Unicode 16.
    const CF: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    raw.chars().find(|&c| {
        let c = u32::from(c);
        CF.iter().any(|&(first, last)| (first..=last).contains(&c))
    })
}

fn check_format_characters(raw: &str) -> Result<(), ValidationError> {
    match format_character(raw) {
        Some(character) => Err(ValidationError::FormatCharacter { character }),
        None => Ok(()),
    }
}

/// The name of a stream: 1 to 256 bytes, no control characters, no Unicode format characters,
/// no surrounding white space.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(String);

impl StreamId {
    pub fn parse(raw: impl Into<String>) -> Result<Self, ValidationError> {
        let raw = raw.into();
        check_length(&raw, limits::MAX_STREAM_ID_BYTES)?;
        if raw.chars().any(char::is_control) || raw.trim() != raw {
            return Err(ValidationError::BadCharacters);
        }
        check_format_characters(&raw)?;
        Ok(Self(raw))
    }

    /// A prefix to filter streams by: may be empty, otherwise as long as a stream id at most
    /// and free of control characters (white space is allowed, since ids may contain it).
    pub fn parse_prefix(raw: &str) -> Result<Option<String>, ValidationError> {
        if raw.is_empty() {
            return Ok(None);
        }
        check_length(raw, limits::MAX_STREAM_ID_BYTES)?;
        if raw.chars().any(char::is_control) {
            return Err(ValidationError::BadCharacters);
        }
        Ok(Some(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An event's type name: 1 to 128 bytes without white space, control characters or Unicode
/// format characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventType(String);

impl EventType {
    pub fn parse(raw: impl Into<String>) -> Result<Self, ValidationError> {
        let raw = raw.into();
        check_length(&raw, limits::MAX_EVENT_TYPE_BYTES)?;
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ValidationError::ContainsWhiteSpace);
        }
        check_format_characters(&raw)?;
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client-chosen event id. The nil UUID is refused: it is what a client sends by mistake.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(Uuid);

impl TryFrom<String> for EventId {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, ValidationError> {
        Self::parse(&raw)
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> String {
        id.0.to_string()
    }
}

impl EventId {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let id = parse_uuid(raw)?;
        if id.is_nil() {
            return Err(ValidationError::NilUuid);
        }
        Ok(Self(id))
    }

    /// A fresh, time-ordered id for events whose client did not choose one.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for EventId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A UUID in its hyphenated form only (8-4-4-4-12 hexadecimal digits, either case): the
/// others `Uuid::try_parse` takes (no hyphens, braces, `urn:uuid:`) would read back different
/// from what the client sent.
fn parse_uuid(raw: &str) -> Result<Uuid, ValidationError> {
    if raw.is_empty() {
        return Err(ValidationError::Empty);
    }
    let hyphenated = raw.len() == 36
        && raw
            .bytes()
            .enumerate()
            .all(|(i, b)| matches!(i, 8 | 13 | 18 | 23) == (b == b'-'));
    hyphenated
        .then(|| Uuid::try_parse(raw).ok())
        .flatten()
        .ok_or_else(|| ValidationError::NotAUuid {
            value: raw.chars().take(64).collect(),
        })
}

/// An event's payload: a JSON text of at most 1 MiB that PostgreSQL's jsonb accepts (see
/// [`super::json`]: no `\u0000`, no half surrogate pairs, numbers in numeric's range, at most
/// 100 levels deep), kept byte for byte as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload(String);

impl Payload {
    pub fn parse(raw: impl Into<String>) -> Result<Self, ValidationError> {
        let raw = raw.into();
        if raw.len() > limits::MAX_DATA_BYTES {
            return Err(ValidationError::TooLong {
                len: raw.len(),
                max: limits::MAX_DATA_BYTES,
            });
        }
        if raw.trim().is_empty() {
            return Err(ValidationError::Empty);
        }
        super::json::check(&raw)?;
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Metadata keys with this prefix are written by the server only (e.g. the marker of a typed
/// diplomatic event), so a client cannot forge them.
pub const RESERVED_METADATA_PREFIX: &str = "diplog.";

/// Correlation, causation and free key/values carried with an event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata {
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    pub values: BTreeMap<String, String>,
}

impl Metadata {
    /// Parses the raw parts, recording each problem under `field` (e.g. `events[0].metadata`):
    /// an entry's under its key (`events[0].metadata["source"]`), too many entries under
    /// `events[0].metadata.values`.
    pub fn parse(
        field: &str,
        correlation_id: &str,
        causation_id: &str,
        values: impl IntoIterator<Item = (String, String)>,
        errors: &mut ValidationErrors,
    ) -> Option<Self> {
        let before = errors.errors().len();
        let correlation_id = parse_optional_uuid(correlation_id)
            .map_err(|e| errors.push(format!("{field}.correlation_id"), e))
            .ok()
            .flatten();
        let causation_id = parse_optional_uuid(causation_id)
            .map_err(|e| errors.push(format!("{field}.causation_id"), e))
            .ok()
            .flatten();
        let values: BTreeMap<String, String> = values.into_iter().collect();
        if values.len() > limits::MAX_METADATA_ENTRIES {
            errors.push(
                format!("{field}.values"),
                ValidationError::TooMany {
                    count: values.len(),
                    max: limits::MAX_METADATA_ENTRIES,
                },
            );
        }
        for (key, value) in &values {
            // The entry at fault, by its key: `events[0].metadata["source"]`.
            let entry = || format!("{field}[{key:?}]");
            if let Err(e) = check_length(key, limits::MAX_METADATA_KEY_BYTES) {
                errors.push(entry(), e);
            } else if key.chars().any(char::is_control) {
                errors.push(entry(), ValidationError::BadCharacters);
            } else if key.starts_with(RESERVED_METADATA_PREFIX) {
                errors.push(
                    entry(),
                    ValidationError::Reserved {
                        prefix: RESERVED_METADATA_PREFIX,
                    },
                );
            }
            if value.len() > limits::MAX_METADATA_VALUE_BYTES {
                errors.push(
                    entry(),
                    ValidationError::TooLong {
                        len: value.len(),
                        max: limits::MAX_METADATA_VALUE_BYTES,
                    },
                );
            }
            if value.contains('\0') {
                errors.push(entry(), ValidationError::NulCharacter);
            }
        }
        (errors.errors().len() == before).then_some(Self {
            correlation_id,
            causation_id,
            values,
        })
    }
}

fn parse_optional_uuid(raw: &str) -> Result<Option<Uuid>, ValidationError> {
    if raw.is_empty() {
        Ok(None)
    } else {
        parse_uuid(raw).map(Some)
    }
}

/// What the client believes a stream's version to be; the append fails if it is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpectedVersion {
    #[default]
    Any,
    NoStream,
    StreamExists,
    Exact(u64),
}

impl ExpectedVersion {
    pub fn exact(raw: i64) -> Result<Self, ValidationError> {
        u64::try_from(raw)
            .map(Self::Exact)
            .map_err(|_| ValidationError::Negative { value: raw })
    }

    /// Whether a stream at `current` version (0: no stream) satisfies this expectation.
    pub fn is_met_by(self, current: u64) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => current == 0,
            Self::StreamExists => current > 0,
            Self::Exact(expected) => current == expected,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::NoStream => f.write_str("no-stream"),
            Self::StreamExists => f.write_str("exists"),
            Self::Exact(version) => write!(f, "{version}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub id: EventId,
    pub event_type: EventType,
    pub data: Payload,
    pub metadata: Metadata,
}

/// Records under `events[i].id` each id that an earlier event of the same request already used.
pub fn check_distinct_ids(ids: impl IntoIterator<Item = EventId>, errors: &mut ValidationErrors) {
    let mut first_use = std::collections::HashMap::new();
    for (index, id) in ids.into_iter().enumerate() {
        if let Some(&first_index) = first_use.get(&id) {
            errors.push(
                format!("events[{index}].id"),
                ValidationError::DuplicateEventId {
                    id: id.as_uuid(),
                    first_index,
                },
            );
        } else {
            first_use.insert(id, index);
        }
    }
}

/// One append: events for one stream, written all or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendBatch {
    stream_id: StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
}

impl AppendBatch {
    /// Checks the rules that span events: 1 to 1000 of them, each id used once.
    pub fn new(
        stream_id: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        check_batch_size(events.len(), &mut errors);
        check_distinct_ids(events.iter().map(|event| event.id), &mut errors);
        errors.into_result(|| Self {
            stream_id,
            expected,
            events,
        })
    }

    pub fn stream_id(&self) -> &StreamId {
        &self.stream_id
    }

    pub fn expected(&self) -> ExpectedVersion {
        self.expected
    }

    pub fn events(&self) -> &[NewEvent] {
        &self.events
    }
}

/// Records an error under `events` unless `count` is within 1..=MAX_EVENTS_PER_APPEND.
fn check_batch_size(count: usize, errors: &mut ValidationErrors) {
    if count == 0 {
        errors.push("events", ValidationError::Empty);
    } else if count > limits::MAX_EVENTS_PER_APPEND {
        errors.push(
            "events",
            ValidationError::TooMany {
                count,
                max: limits::MAX_EVENTS_PER_APPEND,
            },
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    Forward,
    Backward,
}

/// Parses a non-negative count or position from the wire, where 0 or unset may mean "none".
pub fn non_negative(raw: i64) -> Result<u64, ValidationError> {
    u64::try_from(raw).map_err(|_| ValidationError::Negative { value: raw })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadStreamQuery {
    pub stream_id: StreamId,
    /// First version returned (inclusive); `None`: the start (forward) or the end (backward).
    pub from_version: Option<u64>,
    pub direction: Direction,
    /// `None`: no limit.
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadAllQuery {
    /// First position returned (inclusive); `None`: the start (forward) or the head (backward).
    pub from_position: Option<u64>,
    pub direction: Direction,
    /// `None`: no limit.
    pub limit: Option<u64>,
    /// Any of these types; empty: all.
    pub event_types: Vec<EventType>,
    pub stream_prefix: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> NewEvent {
        NewEvent {
            id: EventId::parse(id).unwrap(),
            event_type: EventType::parse("CallHeld").unwrap(),
            data: Payload::parse("{}").unwrap(),
            metadata: Metadata::default(),
        }
    }

    #[test]
    fn an_empty_stream_id_is_rejected() {
        assert_eq!(StreamId::parse(""), Err(ValidationError::Empty));
    }

    #[test]
    fn a_stream_id_over_256_bytes_is_rejected() {
        assert_eq!(
            StreamId::parse("a".repeat(256)).unwrap().as_str().len(),
            256
        );
        assert_eq!(
            StreamId::parse("a".repeat(257)),
            Err(ValidationError::TooLong { len: 257, max: 256 })
        );
    }

    #[test]
    fn a_stream_id_with_control_characters_or_padding_is_rejected() {
        assert_eq!(StreamId::parse("a\nb"), Err(ValidationError::BadCharacters));
        assert_eq!(
            StreamId::parse(" call"),
            Err(ValidationError::BadCharacters)
        );
        assert!(StreamId::parse("channel-RUS USA").is_ok());
        assert!(StreamId::parse("звонок-2025-02-15").is_ok());
    }

    #[test]
    fn an_empty_event_type_or_one_with_spaces_is_rejected() {
        assert_eq!(EventType::parse(""), Err(ValidationError::Empty));
        assert_eq!(
            EventType::parse("Call Held"),
            Err(ValidationError::ContainsWhiteSpace)
        );
    }

    #[test]
    fn names_with_unicode_format_characters_are_rejected() {
        for c in [
            '\u{202E}',
            '\u{2066}',
            '\u{200B}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{E0001}',
        ] {
            assert_eq!(
                StreamId::parse(format!("call-{c}1")),
                Err(ValidationError::FormatCharacter { character: c })
            );
            assert_eq!(
                EventType::parse(format!("Call{c}Held")),
                Err(ValidationError::FormatCharacter { character: c })
            );
        }
        assert_eq!(
            ValidationError::FormatCharacter {
                character: '\u{202E}'
            }
            .to_string(),
            "contains U+202E, an invisible Unicode format character (such as a bidirectional \
             override or a zero-width space), which is not allowed"
        );
        // Visible letters and marks of any script are fine.
        assert!(StreamId::parse("مكالمة-٢٠٢٥").is_ok());
        assert!(EventType::parse("Überprüfung").is_ok());
    }

    #[test]
    fn event_ids_are_taken_only_in_the_hyphenated_form() {
        let id = "7f1d7c1e-8d0a-4d7e-9a53-3c1e2b7d9f10";
        for raw in [
            id.replace('-', ""),
            format!("{{{id}}}"),
            format!("urn:uuid:{id}"),
            format!("{id} "),
            "7f1d7c1e8-d0a-4d7e-9a53-3c1e2b7d9f10".to_owned(),
            "7f1d7c1e-8d0a-4d7e-9a53-3c1e2b7d9f1g".to_owned(),
        ] {
            assert!(
                matches!(EventId::parse(&raw), Err(ValidationError::NotAUuid { .. })),
                "{raw}"
            );
        }
        assert_eq!(
            EventId::parse(&id.to_uppercase()),
            EventId::parse(id),
            "either case, one id"
        );
    }

    #[test]
    fn a_malformed_or_nil_event_id_is_rejected() {
        assert!(matches!(
            EventId::parse("not-a-uuid"),
            Err(ValidationError::NotAUuid { .. })
        ));
        assert_eq!(
            EventId::parse("00000000-0000-0000-0000-000000000000"),
            Err(ValidationError::NilUuid)
        );
        assert!(EventId::parse("7f1d7c1e-8d0a-4d7e-9a53-3c1e2b7d9f10").is_ok());
    }

    #[test]
    fn invalid_json_is_rejected_and_valid_json_kept_byte_for_byte() {
        assert!(matches!(
            Payload::parse("{\"a\": }"),
            Err(ValidationError::InvalidJson { .. })
        ));
        assert_eq!(Payload::parse("  "), Err(ValidationError::Empty));
        let text = "{ \"b\": 1,\n  \"a\": [1.50, \"Лавров\"] }";
        assert_eq!(Payload::parse(text).unwrap().as_str(), text);
    }

    #[test]
    fn a_payload_with_an_escaped_nul_is_rejected_but_an_escaped_backslash_is_not() {
        assert_eq!(
            Payload::parse(r#"{"a": "x\u0000y"}"#),
            Err(ValidationError::NulCharacter)
        );
        assert!(Payload::parse(r#"{"a": "x\\u0000y"}"#).is_ok());
    }

    #[test]
    fn a_payload_over_one_mebibyte_is_rejected() {
        let big = format!("\"{}\"", "x".repeat(limits::MAX_DATA_BYTES));
        assert!(matches!(
            Payload::parse(big),
            Err(ValidationError::TooLong { .. })
        ));
    }

    #[test]
    fn a_negative_exact_version_is_rejected() {
        assert_eq!(
            ExpectedVersion::exact(-1),
            Err(ValidationError::Negative { value: -1 })
        );
    }

    #[test]
    fn expected_versions_are_met_as_documented() {
        assert!(ExpectedVersion::Any.is_met_by(0));
        assert!(ExpectedVersion::Any.is_met_by(7));
        assert!(ExpectedVersion::NoStream.is_met_by(0));
        assert!(!ExpectedVersion::NoStream.is_met_by(1));
        assert!(ExpectedVersion::StreamExists.is_met_by(1));
        assert!(!ExpectedVersion::StreamExists.is_met_by(0));
        assert!(ExpectedVersion::Exact(0).is_met_by(0));
        assert!(!ExpectedVersion::Exact(2).is_met_by(3));
    }

    #[test]
    fn metadata_errors_name_their_field() {
        let mut errors = ValidationErrors::new();
        let parsed = Metadata::parse(
            "events[1].metadata",
            "nope",
            "",
            [("".to_owned(), "x".to_owned())],
            &mut errors,
        );
        assert!(parsed.is_none());
        let fields: Vec<_> = errors.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "events[1].metadata.correlation_id",
                r#"events[1].metadata[""]"#
            ]
        );
    }

    #[test]
    fn an_append_without_events_or_with_too_many_is_rejected() {
        let stream = StreamId::parse("s").unwrap();
        let errors = AppendBatch::new(stream.clone(), ExpectedVersion::Any, vec![]).unwrap_err();
        assert_eq!(errors.errors()[0].field, "events");
        let many = (0..=limits::MAX_EVENTS_PER_APPEND)
            .map(|_| NewEvent {
                id: EventId::generate(),
                ..event("7f1d7c1e-8d0a-4d7e-9a53-3c1e2b7d9f10")
            })
            .collect();
        let errors = AppendBatch::new(stream, ExpectedVersion::Any, many).unwrap_err();
        assert!(matches!(
            errors.errors()[0].error,
            ValidationError::TooMany { count: 1001, .. }
        ));
    }

    #[test]
    fn an_append_that_repeats_an_event_id_is_rejected_at_the_repeat() {
        let id = "7f1d7c1e-8d0a-4d7e-9a53-3c1e2b7d9f10";
        let errors = AppendBatch::new(
            StreamId::parse("s").unwrap(),
            ExpectedVersion::Any,
            vec![event(id), event(id)],
        )
        .unwrap_err();
        assert_eq!(errors.errors()[0].field, "events[1].id");
    }
}
