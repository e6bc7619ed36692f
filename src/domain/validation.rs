//! Validation errors: each names the request field at fault, so every front end (gRPC, CLI)
//! can point the user at it.

use std::fmt;

/// What is wrong with one value, independent of where it appeared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("must not be empty")]
    Empty,
    #[error("is {len} bytes; the limit is {max}")]
    TooLong { len: usize, max: usize },
    #[error("must not contain control characters or leading or trailing white space")]
    BadCharacters,
    #[error("must not contain white space or control characters")]
    ContainsWhiteSpace,
    #[error(
        "contains U+{:04X}, an invisible Unicode format character (such as a bidirectional \
         override or a zero-width space), which is not allowed",
        u32::from(*.character)
    )]
    FormatCharacter { character: char },
    #[error(
        "{value:?} is not a UUID in the hyphenated form: 8-4-4-4-12 hexadecimal digits, lower \
         or upper case (7f1d7c1e-8d0a-4d7e-9a53-3c1e2b7d9f10)"
    )]
    NotAUuid { value: String },
    #[error("must not be the nil UUID")]
    NilUuid,
    #[error("is not valid JSON: {reason}")]
    InvalidJson { reason: String },
    #[error("contains the character U+0000, which PostgreSQL cannot store in JSON")]
    NulCharacter,
    #[error("nests arrays and objects more than {max} levels deep, the limit")]
    JsonTooDeep { max: usize },
    #[error(
        "has the escape {escape} at line {line} column {column}, half of a UTF-16 surrogate \
         pair without the other half, which PostgreSQL's jsonb cannot store"
    )]
    LoneSurrogate {
        escape: String,
        line: usize,
        column: usize,
    },
    #[error("has the number {number}, which PostgreSQL's numeric cannot store: {reason}")]
    NumberOutOfRange { number: String, reason: String },
    #[error("must not be negative (got {value})")]
    Negative { value: i64 },
    #[error("has {count} entries; the limit is {max}")]
    TooMany { count: usize, max: usize },
    #[error("is {value}; it must be from {min} to {max}")]
    OutOfRange { value: i64, min: i64, max: i64 },
    /// Over a limit the server's operator set (see `limits::Limit`).
    #[error(
        "has {value} {unit}, which exceeds the limit of {max} {unit} per {per} ({flag})",
        unit = .limit.unit(),
        per = .limit.per(),
        flag = .limit.flag()
    )]
    OverLimit {
        limit: super::limits::Limit,
        value: usize,
        max: usize,
    },
    #[error("{value} is not one of the allowed values")]
    NotAnOption { value: String },
    #[error("repeats event id {id}, already used by events[{first_index}]")]
    DuplicateEventId { id: uuid::Uuid, first_index: usize },
    #[error("repeats event id {id}, already used by {first}")]
    EventIdUsedBefore { id: uuid::Uuid, first: String },
    #[error("has {count} events in all its parts; the limit is {max}")]
    TooManyEventsInAll { count: usize, max: usize },

    #[error("starts with {prefix:?}, which is reserved for the server")]
    Reserved { prefix: &'static str },

    // The small values diplomatic events are made of (`diplomacy::values`).
    #[error("{value:?} is not an ISO 3166-1 alpha-3 country code")]
    NotACountryCode { value: String },
    #[error(
        "{value:?} is not an actor id (an ISO 3166-1 alpha-3 code such as RUS, or lowercase \
         [a-z0-9] words joined by '.' or '-', at most {max} characters)"
    )]
    NotAnActorId { value: String, max: usize },
    #[error(
        "{value:?} is not a key (lowercase [a-z0-9] words joined by '-', at most {max} characters)"
    )]
    NotAKey { value: String, max: usize },
    #[error("{value:?} is not a BCP 47 language tag such as \"ru\" or \"en-US\"")]
    NotALanguageTag { value: String },
    #[error("{value:?} is not a month (YYYY-MM)")]
    NotAMonth { value: String },
    #[error("{value:?} is not a day (YYYY-MM-DD)")]
    NotADay { value: String },
    #[error("{value:?} is not an IANA time zone such as Europe/Moscow")]
    NotATimeZone { value: String },
    #[error("give exactly one of instant, day or month")]
    NotOnePrecision,

    // Diplomatic events: rules about the input itself.
    #[error("{0}")]
    Malformed(String),
    #[error("is required")]
    Missing,
    #[error("has {count}, and at least {min} are required")]
    TooFew { count: usize, min: usize },
    #[error("repeats {value}")]
    Repeated { value: String },
    #[error("{initiator} is not a participant, the office of one, or the state of one")]
    InitiatorNotParticipant { initiator: String },
    #[error("{value} is in the future of the recorded time {now}")]
    InFuture { value: String, now: String },
    #[error("{value} is before the earliest date accepted, {earliest}")]
    TooEarly { value: String, earliest: String },
    #[error("does not fit a {kind} event: {expected}")]
    WrongStream { kind: String, expected: String },

    // Diplomatic events: rules that depend on what the log already holds (FAILED_PRECONDITION).
    #[error("names actor {id}, which is not registered in the log")]
    UnknownActor { id: String },
    #[error("names {id}, which is registered as {actual}, not as {expected}")]
    WrongActorKind {
        id: String,
        expected: String,
        actual: String,
    },
    #[error("names event {id}, which is not in the log")]
    UnknownEvent { id: String },
    #[error("names event {id}, a {actual}, where {expected} is needed")]
    WrongEventKind {
        id: String,
        expected: String,
        actual: String,
    },
    #[error("a {kind} cannot be recorded in {stream}: {reason}")]
    LifecycleViolation {
        kind: String,
        stream: String,
        reason: String,
    },
}

impl ValidationError {
    /// True for rules about the log's current state rather than about the input itself:
    /// answered with FAILED_PRECONDITION instead of INVALID_ARGUMENT.
    pub fn is_precondition(&self) -> bool {
        self.precondition_type().is_some()
    }

    /// For a rule about the log, a stable machine-readable name of the rule broken (the
    /// `type` of a `google.rpc.PreconditionFailure` violation); `None` for the others.
    pub fn precondition_type(&self) -> Option<&'static str> {
        match self {
            Self::UnknownActor { .. } => Some("UNKNOWN_ACTOR"),
            Self::WrongActorKind { .. } => Some("WRONG_ACTOR_KIND"),
            Self::UnknownEvent { .. } => Some("UNKNOWN_EVENT"),
            Self::WrongEventKind { .. } => Some("WRONG_EVENT_KIND"),
            Self::LifecycleViolation { .. } => Some("LIFECYCLE_VIOLATION"),
            _ => None,
        }
    }
}

/// A validation error at a named field, such as `events[2].id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub error: ValidationError,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.error)
    }
}

/// Every problem found in one request: validation does not stop at the first, so a user can
/// fix them all at once.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, field: impl Into<String>, error: ValidationError) {
        self.0.push(FieldError {
            field: field.into(),
            error,
        });
    }

    /// Runs `result`, recording its error under `field`; `None` when it failed.
    pub fn check<T>(
        &mut self,
        field: impl Into<String>,
        result: Result<T, ValidationError>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.push(field, error);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// Moves every error under `prefix`: `events[0].id` becomes `records[2].events[0].id`.
    pub fn within(self, prefix: &str) -> Self {
        Self(
            self.0
                .into_iter()
                .map(|error| FieldError {
                    field: format!("{prefix}.{}", error.field),
                    error: error.error,
                })
                .collect(),
        )
    }

    /// Adds every error of `other`.
    pub fn extend(&mut self, other: Self) {
        self.0.extend(other.0);
    }

    /// `Ok(value)` when nothing was recorded.
    pub fn into_result<T>(self, value: impl FnOnce() -> T) -> Result<T, Self> {
        if self.is_empty() {
            Ok(value())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::limits::AppendLimits;
    use super::*;

    #[test]
    fn a_configured_limit_is_named_with_its_value_and_flag() {
        let limits = AppendLimits {
            max_events: 3,
            max_payload_bytes: 10,
        };
        assert_eq!(limits.check_events(3), Ok(()));
        assert_eq!(limits.check_payload(10), Ok(()));
        let mut errors = ValidationErrors::new();
        errors.check("events", limits.check_events(4));
        errors.check("events[2].data", limits.check_payload(11));
        assert_eq!(
            errors.to_string(),
            "events has 4 events, which exceeds the limit of 3 events per append \
             (--max-events-per-append); events[2].data has 11 bytes, which exceeds the limit \
             of 10 bytes per event payload (--max-payload-bytes)"
        );
    }
}
