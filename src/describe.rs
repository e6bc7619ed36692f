//! Errors as a person reads them: an error with its causes, and a gRPC status with its code
//! name and every field at fault. The command-line client prints them; the importer and the
//! CLI's TLS client, which the command-line client uses, word their errors with them too.

use tonic_types::StatusExt;

/// An error and its causes, as `outer: inner: innermost` (tonic's transport error alone says
/// only "transport error").
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some layers repeat their inner error's message; say it once.
        if !text.ends_with(&cause_text) {
            text.push_str(&format!(": {cause_text}"));
        }
        source = cause.source();
    }
    text
}

/// The canonical name of a gRPC status code, as in the gRPC spec (`INVALID_ARGUMENT`).
pub fn code_name(code: tonic::Code) -> String {
    let camel = format!("{code:?}");
    let mut name = String::with_capacity(camel.len() + 4);
    for (index, c) in camel.chars().enumerate() {
        if c.is_uppercase() && index > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// The status code, its message, and each field violation or error detail on its own line.
pub fn describe_status(status: &tonic::Status) -> String {
    let mut text = format!("{}: {}", code_name(status.code()), status.message());
    // A call that failed below gRPC says only "transport error": add why (a TLS alert, say).
    if let Some(source) = std::error::Error::source(status) {
        let causes = with_causes(source);
        match causes.strip_prefix(status.message()) {
            Some(rest) => text.push_str(rest),
            None => text.push_str(&format!(": {causes}")),
        }
    }
    let details = status.get_error_details();
    if let Some(bad_request) = details.bad_request() {
        for violation in &bad_request.field_violations {
            text.push_str(&format!(
                "\n  field {}: {}",
                violation.field, violation.description
            ));
        }
    }
    if let Some(failure) = details.precondition_failure() {
        for violation in &failure.violations {
            text.push_str(&format!(
                "\n  field {}: {}",
                violation.subject, violation.description
            ));
        }
    }
    if let Some(info) = details.error_info() {
        let mut metadata: Vec<_> = info.metadata.iter().collect();
        metadata.sort();
        for (key, value) in metadata {
            text.push_str(&format!("\n  {key}: {value}"));
        }
    }
    text
}
