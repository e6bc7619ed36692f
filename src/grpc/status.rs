//! The one place where errors become `tonic::Status`, so handlers just use `?`: every domain
//! error's `From` conversion (records, appends, reads, subscriptions, stream limits,
//! projection queries, API tokens, audit proofs) and the helpers handlers use for the rest.
//! Invalid input: INVALID_ARGUMENT with `google.rpc.BadRequest` naming each field; a stale
//! expected version: ABORTED (the client redoes its read-modify-write); a reused event id:
//! ALREADY_EXISTS; a missing stream: NOT_FOUND; the database out of reach: UNAVAILABLE
//! (retry); anything else: INTERNAL with the cause logged, never shown.
//!
//! The one exception is authentication at the edge: `auth::layer` and `auth::access` build
//! their UNAUTHENTICATED and PERMISSION_DENIED answers themselves, because they refuse a call
//! before it reaches a handler (the layer is a tower layer in front of every service, with
//! no domain error to convert) and their answers carry authentication metadata of their own.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, PreconditionViolation, StatusExt};
use tracing::error;

use crate::audit::ProofError;
use crate::auth::tokens::TokenError;
use crate::domain::{ValidationError, ValidationErrors};
use crate::projections::read::request::QueryError;
use crate::recorder::RecordError;
use crate::store::{AppendError, ReadError};
use crate::stream_limit::TooManyStreams;
use crate::subscriptions::{SubscribeError, SubscriptionError};

/// Errors carried as details and in the message, at most; the rest are counted.
const MAX_REPORTED_VIOLATIONS: usize = 20;

/// The `google.rpc.ErrorInfo` domain of every diplog error.
pub const ERROR_DOMAIN: &str = "diplog";

impl From<RecordError> for Status {
    fn from(error: RecordError) -> Self {
        match error {
            RecordError::Invalid(errors)
                if errors.errors().iter().all(|e| e.error.is_precondition()) =>
            {
                precondition_failed(errors)
            }
            RecordError::Invalid(errors) => errors.into(),
            RecordError::Append(error) => error.into(),
            RecordError::Read(error) => error.into(),
        }
    }
}

/// A record that contradicts the log: FAILED_PRECONDITION with `google.rpc.PreconditionFailure`
/// whose violations name the rule broken as their type (`UNKNOWN_ACTOR`,
/// `LIFECYCLE_VIOLATION`, …) and the field at fault as their subject
/// (`events[1].summit_scheduled`, `events[0].call_held.participants[2].acting_as`).
fn precondition_failed(errors: ValidationErrors) -> Status {
    let shown = &errors.errors()[..errors.errors().len().min(MAX_REPORTED_VIOLATIONS)];
    let violations: Vec<PreconditionViolation> = shown
        .iter()
        .map(|e| {
            PreconditionViolation::new(
                e.error.precondition_type().unwrap_or("DIPLOMACY_RULE"),
                e.field.clone(),
                e.error.to_string(),
            )
        })
        .collect();
    let message = shown
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    Status::with_error_details(
        Code::FailedPrecondition,
        format!("the log does not allow this record: {message}"),
        ErrorDetails::with_precondition_failure(violations),
    )
}

impl From<ValidationErrors> for Status {
    fn from(errors: ValidationErrors) -> Self {
        let shown = &errors.errors()[..errors.errors().len().min(MAX_REPORTED_VIOLATIONS)];
        let violations: Vec<FieldViolation> = shown
            .iter()
            .map(|e| FieldViolation::new(e.field.clone(), e.error.to_string()))
            .collect();
        let mut message = shown
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let hidden = errors.errors().len() - shown.len();
        if hidden > 0 {
            message.push_str(&format!(" (and {hidden} more)"));
        }
        Status::with_error_details(
            Code::InvalidArgument,
            format!("invalid request: {message}"),
            ErrorDetails::with_bad_request(violations),
        )
    }
}

fn error_info(
    code: Code,
    message: String,
    reason: &str,
    metadata: HashMap<String, String>,
) -> Status {
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

impl From<AppendError> for Status {
    fn from(error: AppendError) -> Self {
        let message = error.to_string();
        match error {
            AppendError::WrongExpectedVersion {
                stream_id,
                expected,
                current,
            } => error_info(
                Code::Aborted,
                message,
                "WRONG_EXPECTED_VERSION",
                HashMap::from([
                    ("stream_id".to_owned(), stream_id),
                    ("expected".to_owned(), expected.to_string()),
                    ("current_version".to_owned(), current.to_string()),
                ]),
            ),
            AppendError::EventIdReused { event_id, .. } => error_info(
                Code::AlreadyExists,
                message,
                "EVENT_ID_REUSED",
                HashMap::from([("event_id".to_owned(), event_id.to_string())]),
            ),
            AppendError::PartialRetry { written, .. } => error_info(
                Code::AlreadyExists,
                message,
                "PARTIAL_RETRY",
                HashMap::from([(
                    "written_event_ids".to_owned(),
                    written
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                )]),
            ),
            AppendError::NotOneAppend { event_ids } => error_info(
                Code::AlreadyExists,
                message,
                "PARTIAL_RETRY",
                HashMap::from([(
                    "written_event_ids".to_owned(),
                    event_ids
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                )]),
            ),
            AppendError::Unavailable(_) | AppendError::ShuttingDown => Status::unavailable(message),
            AppendError::Database(_) => internal(&error),
        }
    }
}

impl From<ReadError> for Status {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::StreamNotFound(_) => Status::not_found(error.to_string()),
            ReadError::Unavailable(_) => Status::unavailable(error.to_string()),
            ReadError::Database(_) | ReadError::BrokeOff(_) => internal(&error),
        }
    }
}

/// Logs the cause and answers a bare INTERNAL: database details are not for clients.
pub fn internal(error: &(dyn std::error::Error + 'static)) -> Status {
    error!(error = %error, source = ?error.source(), "internal error");
    Status::internal("internal error")
}

/// A projection failure: the database out of reach is UNAVAILABLE, anything else INTERNAL.
pub fn projection(error: crate::projections::engine::rows::ProjectionError) -> Status {
    use crate::projections::engine::rows::ProjectionError;
    match error {
        ProjectionError::UnknownProjection(_) => Status::not_found(error.to_string()),
        ProjectionError::Unavailable(_) | ProjectionError::ConnectTimedOut(_) => {
            Status::unavailable(error.to_string())
        }
        _ => internal(&error),
    }
}

impl From<SubscribeError> for Status {
    fn from(error: SubscribeError) -> Self {
        match error {
            SubscribeError::PastHead { .. } => Status::with_error_details(
                Code::OutOfRange,
                error.to_string(),
                ErrorDetails::with_bad_request_violation("after_position", error.to_string()),
            ),
            SubscribeError::Read(error) => error.into(),
        }
    }
}

/// An end the server decided: RESOURCE_EXHAUSTED for a subscriber that does not read,
/// UNAVAILABLE at shutdown; both say how to resume.
impl From<SubscriptionError> for Status {
    fn from(error: SubscriptionError) -> Self {
        let code = match error {
            SubscriptionError::TooSlow { .. } => Code::ResourceExhausted,
            SubscriptionError::ShuttingDown => Code::Unavailable,
        };
        Status::new(code, error.to_string())
    }
}

/// One stream too many for its client: RESOURCE_EXHAUSTED, with the count and the setting in
/// `google.rpc.ErrorInfo` as well as in the message.
impl From<TooManyStreams> for Status {
    fn from(error: TooManyStreams) -> Self {
        error_info(
            Code::ResourceExhausted,
            error.to_string(),
            "TOO_MANY_STREAMS",
            HashMap::from([
                ("open_streams".to_owned(), error.open.to_string()),
                ("limit".to_owned(), "--max-streams-per-client".to_owned()),
            ]),
        )
    }
}

/// One bad request field, as the admin and audit services answer it: INVALID_ARGUMENT with
/// the message `{field}: {message}` and a `google.rpc.BadRequest` naming the field.
pub fn invalid(field: &str, message: String) -> Status {
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{field}: {message}"),
        ErrorDetails::with_bad_request_violation(field, message),
    )
}

/// One bad request field, as the projections service answers it: the same answer as a
/// [`ValidationErrors`] of that one field (`invalid request: {field} {message}`).
pub fn invalid_request(field: &str, message: String) -> Status {
    let mut errors = ValidationErrors::new();
    errors.push(field, ValidationError::Malformed(message));
    errors.into()
}

impl From<QueryError> for Status {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::Invalid { field, message } => invalid_request(field, message),
            QueryError::NotFound(message) => Status::not_found(message),
            QueryError::NotYet { .. } => Status::deadline_exceeded(error.to_string()),
            QueryError::Projection(error) => projection(error),
            QueryError::BadRow(_) => internal(&error),
            QueryError::TooMany { .. } => Status::resource_exhausted(error.to_string()),
        }
    }
}

impl From<TokenError> for Status {
    fn from(error: TokenError) -> Self {
        match &error {
            TokenError::InvalidName(_) => invalid("name", error.to_string()),
            TokenError::NoRoles => invalid("roles", error.to_string()),
            TokenError::ExpiryPast(_) => invalid("expires_at", error.to_string()),
            TokenError::AlreadyExists(_) => Status::already_exists(error.to_string()),
            TokenError::NotFound(_) => Status::not_found(error.to_string()),
            TokenError::Random(_) | TokenError::CorruptRole(_) | TokenError::Database(_) => {
                internal(&error)
            }
        }
    }
}

impl From<ProofError> for Status {
    fn from(error: ProofError) -> Self {
        match &error {
            ProofError::PastHead { field, .. } => Status::with_error_details(
                Code::OutOfRange,
                error.to_string(),
                ErrorDetails::with_bad_request_violation(*field, error.to_string()),
            ),
            ProofError::OldAfterNew { .. } => invalid("old_size", error.to_string()),
            ProofError::NotInTree { .. } => Status::out_of_range(error.to_string()),
            ProofError::UnknownEvent(_) => Status::not_found(error.to_string()),
            ProofError::Tree(crate::audit::tree::TreeError::Database(db))
                if crate::store::is_unavailable(db) =>
            {
                Status::unavailable("the database is unavailable")
            }
            ProofError::Tree(_) => {
                tracing::error!(error = %error, "audit query failed");
                Status::internal("internal error")
            }
        }
    }
}
