//! Text for people: dates as "15 February 2025" or "15 Feb 2025, 14:03 UTC" (a fuzzy time
//! only as precise as it is known), codes as words ("PREPARATION_AGREED" -> "Preparation
//! agreed"), languages by name. Pure formatting; no I/O.

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::diplomacy::{FuzzyTime, Precision};

/// A day: "15 February 2025".
pub fn day(day: NaiveDate) -> String {
    day.format("%-d %B %Y").to_string()
}

/// An instant, in UTC: "15 Feb 2025, 14:03 UTC".
pub fn instant(time: DateTime<Utc>) -> String {
    time.format("%-d %b %Y, %H:%M UTC").to_string()
}

/// A time as precisely as it is known: an instant, a day ("15 February 2025") or a month
/// ("February 2025").
pub fn fuzzy(time: &FuzzyTime) -> String {
    match time.precision() {
        Precision::Instant(at) => instant(at),
        Precision::Day(d) => day(d),
        Precision::Month(month) => month.first_day().format("%B %Y").to_string(),
    }
}

/// The same time for machines (a `<time datetime>`): RFC 3339, `YYYY-MM-DD` or `YYYY-MM`.
pub fn machine(time: &FuzzyTime) -> String {
    match time.precision() {
        Precision::Instant(at) => at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        Precision::Day(d) => d.format("%Y-%m-%d").to_string(),
        Precision::Month(month) => month.to_string(),
    }
}

/// A code as words: `PREPARATION_AGREED` -> "Preparation agreed", `CallHeld` -> "Call held",
/// `palestine-and-middle-east` -> "Palestine and middle east".
pub fn label(code: &str) -> String {
    // CamelCase splits at its capitals; SCREAMING_SNAKE and kebab-case at their separators.
    let camel = code.chars().any(|c| c.is_lowercase()) && !code.contains(['_', '-']);
    let mut words = String::new();
    for (index, c) in code.chars().enumerate() {
        if c == '_' || c == '-' {
            words.push(' ');
        } else if index == 0 {
            words.extend(c.to_uppercase());
        } else {
            if camel && c.is_uppercase() {
                words.push(' ');
            }
            words.extend(c.to_lowercase());
        }
    }
    words
}

/// A language by its name in English (its code if it is not one of the common ones).
pub fn language(code: &str) -> String {
    let base = code.split(['-', '_']).next().unwrap_or(code);
    let name = match base.to_ascii_lowercase().as_str() {
        "ru" => "Russian",
        "en" => "English",
        "uk" => "Ukrainian",
        "fr" => "French",
        "de" => "German",
        "es" => "Spanish",
        "zh" => "Chinese",
        "ar" => "Arabic",
        "tr" => "Turkish",
        "fa" => "Persian",
        "he" => "Hebrew",
        "ja" => "Japanese",
        "pt" => "Portuguese",
        "it" => "Italian",
        "pl" => "Polish",
        _ => return code.to_owned(),
    };
    name.to_owned()
}

/// Encodes a path segment or a query value: everything but unreserved characters.
pub fn encode(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> FuzzyTime {
        serde_json::from_str(json).expect("a fuzzy time")
    }

    #[test]
    fn fuzzy_times_read_only_as_precisely_as_they_are_known() {
        assert_eq!(
            fuzzy(&parse(r#"{"day": "2025-02-15"}"#)),
            "15 February 2025"
        );
        assert_eq!(fuzzy(&parse(r#"{"month": "2025-03"}"#)), "March 2025");
        assert_eq!(
            fuzzy(&parse(r#"{"instant": "2025-02-15T14:03:27Z"}"#)),
            "15 Feb 2025, 14:03 UTC"
        );
        assert_eq!(machine(&parse(r#"{"day": "2025-02-05"}"#)), "2025-02-05");
    }

    #[test]
    fn codes_read_as_words() {
        assert_eq!(label("PREPARATION_AGREED"), "Preparation agreed");
        assert_eq!(label("CallHeld"), "Call held");
        assert_eq!(label("DORMANT"), "Dormant");
        assert_eq!(
            label("palestine-and-middle-east"),
            "Palestine and middle east"
        );
        assert_eq!(language("ru"), "Russian");
        assert_eq!(language("xx"), "xx");
    }

    #[test]
    fn encoding_keeps_unreserved_characters_only() {
        assert_eq!(encode("rus.foreign-minister"), "rus.foreign-minister");
        assert_eq!(
            encode("2025-02-15T12:00:00+03:00"),
            "2025-02-15T12%3A00%3A00%2B03%3A00"
        );
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }
}
