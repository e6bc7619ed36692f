//! The small values diplomatic events are made of: actor ids, country codes, claim keys,
//! language tags and fuzzy times. Each parses on deserialization, so a value that exists is
//! valid; one that does not parse is a [`ValidationError`] saying what was expected.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::ValidationError;

/// Longest actor id, claim key or stream name accepted.
pub const MAX_ID_CHARS: usize = 100;

fn is_slug(raw: &str, separators: &[char]) -> bool {
    !raw.is_empty()
        && raw.len() <= MAX_ID_CHARS
        && raw.split(|c| separators.contains(&c)).all(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// A state by its ISO 3166-1 alpha-3 code, e.g. `RUS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode(isocountry::CountryCode);

impl CountryCode {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        isocountry::CountryCode::for_alpha3(raw)
            .map(Self)
            .map_err(|_| ValidationError::NotACountryCode {
                value: raw.to_owned(),
            })
    }

    pub fn alpha3(&self) -> &'static str {
        self.0.alpha3()
    }

    /// The English short name, e.g. "Russian Federation".
    pub fn name(&self) -> &'static str {
        self.0.name()
    }
}

impl TryFrom<String> for CountryCode {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, ValidationError> {
        Self::parse(&raw)
    }
}

impl From<CountryCode> for String {
    fn from(code: CountryCode) -> String {
        code.alpha3().to_owned()
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alpha3())
    }
}

/// An actor's stable id: a state's alpha-3 code (`RUS`), or lowercase `[a-z0-9]` words joined
/// by `.` or `-` for everything else (`sergey-lavrov`, `rus.mfa`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ActorId(String);

impl ActorId {
    pub fn parse(raw: impl Into<String>) -> Result<Self, ValidationError> {
        let raw = raw.into();
        if raw.len() == 3 && raw.chars().all(|c| c.is_ascii_uppercase()) {
            CountryCode::parse(&raw)?;
            return Ok(Self(raw));
        }
        if is_slug(&raw, &['.', '-']) {
            Ok(Self(raw))
        } else {
            Err(ValidationError::NotAnActorId {
                value: raw,
                max: MAX_ID_CHARS,
            })
        }
    }

    /// The state this id names, if it is a country code.
    pub fn as_country(&self) -> Option<CountryCode> {
        CountryCode::parse(&self.0).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ActorId {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, ValidationError> {
        Self::parse(raw)
    }
}

impl From<ActorId> for String {
    fn from(id: ActorId) -> String {
        id.0
    }
}

impl From<CountryCode> for ActorId {
    fn from(code: CountryCode) -> Self {
        Self(code.alpha3().to_owned())
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A normalised key for a topic or a claim: lowercase `[a-z0-9]` words joined by `-`, e.g.
/// `ukraine-settlement`. Claims with equal keys are the same claim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Key(String);

impl Key {
    pub fn parse(raw: impl Into<String>) -> Result<Self, ValidationError> {
        let raw = raw.into();
        if is_slug(&raw, &['-']) {
            Ok(Self(raw))
        } else {
            Err(ValidationError::NotAKey {
                value: raw,
                max: MAX_ID_CHARS,
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Key {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, ValidationError> {
        Self::parse(raw)
    }
}

impl From<Key> for String {
    fn from(key: Key) -> String {
        key.0
    }
}

/// A BCP 47 language tag in its common short form: a 2–3 letter language, optionally followed
/// by subtags (`ru`, `en`, `en-US`, `zh-Hant`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Language(String);

impl Language {
    pub fn parse(raw: impl Into<String>) -> Result<Self, ValidationError> {
        let raw = raw.into();
        let mut parts = raw.split('-');
        let primary_ok = parts.next().is_some_and(|p| {
            (2..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_lowercase())
        });
        let rest_ok = parts
            .all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
        if primary_ok && rest_ok {
            Ok(Self(raw))
        } else {
            Err(ValidationError::NotALanguageTag { value: raw })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Language {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, ValidationError> {
        Self::parse(raw)
    }
}

impl From<Language> for String {
    fn from(language: Language) -> String {
        language.0
    }
}

/// A calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct YearMonth {
    first_day: NaiveDate,
}

impl YearMonth {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let bad = || ValidationError::NotAMonth {
            value: raw.to_owned(),
        };
        let (year, month) = raw.split_once('-').ok_or_else(bad)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(bad());
        }
        let year = i32::from_str(year).map_err(|_| bad())?;
        let month = u32::from_str(month).map_err(|_| bad())?;
        NaiveDate::from_ymd_opt(year, month, 1)
            .map(|first_day| Self { first_day })
            .ok_or_else(bad)
    }

    pub fn first_day(&self) -> NaiveDate {
        self.first_day
    }

    fn first_day_of_next(&self) -> NaiveDate {
        let (year, month) = (self.first_day.year(), self.first_day.month());
        let (year, month) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        NaiveDate::from_ymd_opt(year, month, 1).expect("the first of a month exists")
    }
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}",
            self.first_day.year(),
            self.first_day.month()
        )
    }
}

/// How precisely a time is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Instant(DateTime<Utc>),
    Day(NaiveDate),
    Month(YearMonth),
}

/// When something happened, as precisely as the source says, with its time zone when known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawFuzzyTime", into = "RawFuzzyTime")]
pub struct FuzzyTime {
    precision: Precision,
    time_zone: Option<chrono_tz::Tz>,
}

/// The wire shape of a fuzzy time (the proto3 JSON mapping of `diplog.v1.FuzzyTime`).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFuzzyTime {
    #[serde(skip_serializing_if = "Option::is_none")]
    instant: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    day: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    month: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_zone: Option<String>,
}

impl TryFrom<RawFuzzyTime> for FuzzyTime {
    type Error = ValidationError;
    fn try_from(raw: RawFuzzyTime) -> Result<Self, ValidationError> {
        let precision = match (raw.instant, raw.day, raw.month) {
            (Some(instant), None, None) => Precision::Instant(instant),
            (None, Some(day), None) => Precision::Day(
                NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                    .map_err(|_| ValidationError::NotADay { value: day.clone() })?,
            ),
            (None, None, Some(month)) => Precision::Month(YearMonth::parse(&month)?),
            _ => return Err(ValidationError::NotOnePrecision),
        };
        let time_zone = raw
            .time_zone
            .filter(|zone| !zone.is_empty())
            .map(|zone| {
                zone.parse::<chrono_tz::Tz>()
                    .map_err(|_| ValidationError::NotATimeZone { value: zone })
            })
            .transpose()?;
        Ok(Self {
            precision,
            time_zone,
        })
    }
}

impl From<FuzzyTime> for RawFuzzyTime {
    fn from(time: FuzzyTime) -> Self {
        let (instant, day, month) = match time.precision {
            Precision::Instant(instant) => (Some(instant), None, None),
            Precision::Day(day) => (None, Some(day.format("%Y-%m-%d").to_string()), None),
            Precision::Month(month) => (None, None, Some(month.to_string())),
        };
        Self {
            instant,
            day,
            month,
            time_zone: time.time_zone.map(|zone| zone.name().to_owned()),
        }
    }
}

impl FuzzyTime {
    pub fn instant(instant: DateTime<Utc>) -> Self {
        Self {
            precision: Precision::Instant(instant),
            time_zone: None,
        }
    }

    pub fn day(day: NaiveDate, time_zone: Option<chrono_tz::Tz>) -> Self {
        Self {
            precision: Precision::Day(day),
            time_zone,
        }
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    pub fn time_zone(&self) -> Option<chrono_tz::Tz> {
        self.time_zone
    }

    /// The earliest instant this time can mean. A day or month without a time zone starts
    /// in the first time zone to reach it (UTC+14).
    pub fn earliest(&self) -> DateTime<Utc> {
        match self.precision {
            Precision::Instant(instant) => instant,
            Precision::Day(day) => self.start_of(day),
            Precision::Month(month) => self.start_of(month.first_day()),
        }
    }

    /// The instant just after the latest instant this time can mean (exclusive). A day or
    /// month without a time zone ends in the last time zone to leave it (UTC−12).
    pub fn end(&self) -> DateTime<Utc> {
        match self.precision {
            Precision::Instant(instant) => instant,
            Precision::Day(day) => self.start_of_latest(day.succ_opt().unwrap_or(day)),
            Precision::Month(month) => self.start_of_latest(month.first_day_of_next()),
        }
    }

    fn start_of(&self, day: NaiveDate) -> DateTime<Utc> {
        let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
        match self.time_zone {
            Some(zone) => zone
                .from_local_datetime(&midnight)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| midnight.and_utc() - Duration::hours(14)),
            None => midnight.and_utc() - Duration::hours(14),
        }
    }

    fn start_of_latest(&self, day: NaiveDate) -> DateTime<Utc> {
        let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
        match self.time_zone {
            Some(zone) => zone
                .from_local_datetime(&midnight)
                .latest()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| midnight.and_utc() + Duration::hours(12)),
            None => midnight.and_utc() + Duration::hours(12),
        }
    }
}

impl fmt::Display for FuzzyTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.precision {
            Precision::Instant(instant) => write!(f, "{}", instant.to_rfc3339()),
            Precision::Day(day) => write!(f, "{}", day.format("%Y-%m-%d")),
            Precision::Month(month) => write!(f, "{month}"),
        }?;
        if let Some(zone) = self.time_zone {
            write!(f, " ({})", zone.name())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fuzzy(json: &str) -> Result<FuzzyTime, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn states_are_alpha3_codes_and_other_actors_are_lowercase_slugs() {
        assert!(ActorId::parse("RUS").is_ok());
        assert!(ActorId::parse("sergey-lavrov").is_ok());
        assert!(ActorId::parse("usa.secretary-of-state").is_ok());
        assert!(
            ActorId::parse("XYZ")
                .unwrap_err()
                .to_string()
                .contains("alpha-3")
        );
        assert!(ActorId::parse("Sergey").is_err());
        assert!(ActorId::parse("a..b").is_err());
        assert!(ActorId::parse("").is_err());
    }

    #[test]
    fn a_day_in_moscow_spans_its_local_midnights() {
        let day = fuzzy(r#"{"day":"2025-02-15","time_zone":"Europe/Moscow"}"#).unwrap();
        assert_eq!(day.earliest().to_rfc3339(), "2025-02-14T21:00:00+00:00");
        assert_eq!(day.end().to_rfc3339(), "2025-02-15T21:00:00+00:00");
    }

    #[test]
    fn a_day_without_a_time_zone_spans_every_time_zone() {
        let day = fuzzy(r#"{"day":"2025-02-15"}"#).unwrap();
        assert_eq!(day.earliest().to_rfc3339(), "2025-02-14T10:00:00+00:00");
        assert_eq!(day.end().to_rfc3339(), "2025-02-16T12:00:00+00:00");
    }

    #[test]
    fn a_month_spans_the_whole_month() {
        let month = fuzzy(r#"{"month":"2024-12","time_zone":"UTC"}"#).unwrap();
        assert_eq!(month.earliest().to_rfc3339(), "2024-12-01T00:00:00+00:00");
        assert_eq!(month.end().to_rfc3339(), "2025-01-01T00:00:00+00:00");
    }

    #[test]
    fn exactly_one_precision_is_required() {
        assert!(fuzzy(r#"{}"#).unwrap_err().contains("exactly one"));
        assert!(
            fuzzy(r#"{"day":"2025-02-15","month":"2025-02"}"#)
                .unwrap_err()
                .contains("exactly one")
        );
        assert!(
            fuzzy(r#"{"day":"2025-02-30"}"#)
                .unwrap_err()
                .contains("not a day")
        );
        assert!(
            fuzzy(r#"{"month":"2025-13"}"#)
                .unwrap_err()
                .contains("not a month")
        );
        assert!(
            fuzzy(r#"{"day":"2025-02-15","time_zone":"Mars/Olympus"}"#)
                .unwrap_err()
                .contains("IANA")
        );
    }

    #[test]
    fn fuzzy_times_round_trip_through_their_wire_shape() {
        for json in [
            r#"{"instant":"2025-02-15T12:30:00Z"}"#,
            r#"{"day":"2025-02-15","time_zone":"Europe/Moscow"}"#,
            r#"{"month":"2025-02"}"#,
        ] {
            let time = fuzzy(json).unwrap();
            assert_eq!(serde_json::to_string(&time).unwrap(), json);
        }
    }

    #[test]
    fn language_tags_and_keys_are_checked() {
        assert!(Language::parse("ru").is_ok());
        assert!(Language::parse("en-US").is_ok());
        assert!(Language::parse("Russian").is_err());
        assert!(Key::parse("ukraine-settlement").is_ok());
        assert!(Key::parse("Ukraine").is_err());
        assert!(Key::parse("a.b").is_err());
    }

    /// The texts clients see (as field violations, and through serde in an event's JSON).
    #[test]
    fn bad_values_are_named_with_what_was_expected() {
        let message = |error: ValidationError| error.to_string();
        assert_eq!(
            message(CountryCode::parse("XYZ").unwrap_err()),
            r#""XYZ" is not an ISO 3166-1 alpha-3 country code"#
        );
        assert_eq!(
            message(ActorId::parse("XYZ").unwrap_err()),
            r#""XYZ" is not an ISO 3166-1 alpha-3 country code"#
        );
        assert_eq!(
            message(ActorId::parse("Sergey").unwrap_err()),
            r#""Sergey" is not an actor id (an ISO 3166-1 alpha-3 code such as RUS, or lowercase [a-z0-9] words joined by '.' or '-', at most 100 characters)"#
        );
        assert_eq!(
            message(Key::parse("a.b").unwrap_err()),
            r#""a.b" is not a key (lowercase [a-z0-9] words joined by '-', at most 100 characters)"#
        );
        assert_eq!(
            message(Language::parse("Russian").unwrap_err()),
            r#""Russian" is not a BCP 47 language tag such as "ru" or "en-US""#
        );
        assert_eq!(
            message(YearMonth::parse("2025-13").unwrap_err()),
            r#""2025-13" is not a month (YYYY-MM)"#
        );
        assert_eq!(
            fuzzy(r#"{"day":"2025-02-30"}"#).unwrap_err(),
            r#""2025-02-30" is not a day (YYYY-MM-DD)"#
        );
        assert_eq!(
            fuzzy(r#"{"day":"2025-02-15","time_zone":"Mars/Olympus"}"#).unwrap_err(),
            r#""Mars/Olympus" is not an IANA time zone such as Europe/Moscow"#
        );
        assert_eq!(
            fuzzy("{}").unwrap_err(),
            "give exactly one of instant, day or month"
        );
        assert_eq!(
            serde_json::from_str::<ActorId>(r#""a..b""#)
                .unwrap_err()
                .to_string(),
            message(ActorId::parse("a..b").unwrap_err())
        );
    }
}
