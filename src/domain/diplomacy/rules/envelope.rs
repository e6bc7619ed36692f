//! The envelope of one event, whatever its kind: when it occurred (not in the future of the
//! recorded time, not before 1800), its sources (their dates, URLs, quotes and claims), its
//! evidence and its CAMEO/PLOVER coding.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use super::Check;
use super::streams::Category;
use crate::domain::ValidationError;
use crate::domain::diplomacy::{DiplomaticEvent, EventKind, FuzzyTime, Precision, YearMonth};

/// The earliest time an event may be dated.
fn earliest_accepted() -> DateTime<Utc> {
    Utc.from_utc_datetime(
        &NaiveDate::from_ymd_opt(1800, 1, 1)
            .and_then(|day| day.and_hms_opt(0, 0, 0))
            .expect("a valid date"),
    )
}

/// Whether a time lies before 1800 on its own calendar: a day or month is compared by its
/// date, not by the instant it begins in its (or the earliest) time zone, which for
/// 1800-01-01 is still in 1799.
fn before_earliest_accepted(time: &FuzzyTime) -> bool {
    let first_day = earliest_accepted().date_naive();
    match time.precision() {
        Precision::Instant(instant) => instant < earliest_accepted(),
        Precision::Day(day) => day < first_day,
        Precision::Month(month) => month < YearMonth::parse("1800-01").expect("a valid month"),
    }
}

impl Check<'_> {
    pub(super) fn envelope(&mut self, event: &DiplomaticEvent, kind: &str) {
        use EventKind as K;
        let undated_allowed = matches!(
            event.kind,
            K::ActorRegistered(_)
                | K::SourceReportAttached(_)
                | K::EventCorrected(_)
                | K::EventRetracted(_)
        );
        match &event.occurred {
            Some(occurred) => self.time(
                "occurred",
                occurred.earliest(),
                before_earliest_accepted(occurred),
                &occurred.to_string(),
            ),
            None if !undated_allowed => self.fail("occurred", ValidationError::Missing),
            None => {}
        }

        let needs_sources = matches!(
            event.kind.category(),
            Category::Occurrence | Category::Invitation
        ) || matches!(event.kind, K::SourceReportAttached(_));
        let is_lifecycle_step = matches!(
            event.kind.category(),
            Category::Channel | Category::Summit | Category::Commitment | Category::Presence
        );
        if needs_sources && event.sources.is_empty() {
            self.fail("sources", ValidationError::TooFew { count: 0, min: 1 });
        }
        if is_lifecycle_step && event.sources.is_empty() && event.evidence.is_empty() {
            self.fail(
                "evidence",
                ValidationError::Malformed(
                    "a step of a channel, summit, commitment or presence needs the events it rests on (evidence) or a source".into(),
                ),
            );
        }
        for (index, source) in event.sources.iter().enumerate() {
            let path = format!("sources[{index}]");
            if let Some(published_at) = source.published_at {
                self.time(
                    &format!("{path}.published_at"),
                    published_at,
                    published_at < earliest_accepted(),
                    &published_at.to_rfc3339(),
                );
            }
            if source
                .url
                .as_deref()
                .is_some_and(|url| !url.starts_with("http://") && !url.starts_with("https://"))
            {
                self.fail(
                    &format!("{path}.url"),
                    ValidationError::Malformed("must be an http or https URL".into()),
                );
            }
            for (quote_index, quote) in source.quotes.iter().enumerate() {
                if quote.text.trim().is_empty() {
                    self.fail(
                        &format!("{path}.quotes[{quote_index}].text"),
                        ValidationError::Empty,
                    );
                }
            }
            let mut keys = HashSet::new();
            for (claim_index, claim) in source.claims.iter().enumerate() {
                if !keys.insert(&claim.key) {
                    self.fail(
                        &format!("{path}.claims[{claim_index}].key"),
                        ValidationError::Repeated {
                            value: claim.key.as_str().to_owned(),
                        },
                    );
                }
            }
        }
        let mut seen = HashSet::new();
        for (index, id) in event.evidence.iter().enumerate() {
            if !seen.insert(id) {
                self.fail(
                    &format!("evidence[{index}]"),
                    ValidationError::Repeated {
                        value: id.to_string(),
                    },
                );
            }
        }
        if let Some(coding) = &event.coding {
            for (sub_field, problem) in coding.problems() {
                self.fail(
                    &format!("coding.{sub_field}"),
                    ValidationError::Malformed(problem),
                );
            }
        }
        if let K::CodedEventReported(coded) = &event.kind {
            for (sub_field, problem) in coded.measure_problems() {
                self.fail(
                    &format!("{kind}.{sub_field}"),
                    ValidationError::Malformed(problem),
                );
            }
        }
        if let K::CodedEventReported(_) = event.kind
            && event
                .coding
                .as_ref()
                .is_none_or(|coding| coding.plover_type.is_none() && coding.cameo.is_none())
        {
            self.fail(
                "coding",
                ValidationError::Malformed(
                    "an externally coded event needs its CAMEO code or PLOVER type".into(),
                ),
            );
        }
        let _ = kind;
    }

    /// `earliest` is the earliest instant the time can mean; `too_early` whether it lies
    /// before 1800.
    fn time(&mut self, path: &str, earliest: DateTime<Utc>, too_early: bool, shown: &str) {
        if earliest > self.now {
            let now = self.now.to_rfc3339();
            self.fail(
                path,
                ValidationError::InFuture {
                    value: shown.to_owned(),
                    now,
                },
            );
        } else if too_early {
            self.fail(
                path,
                ValidationError::TooEarly {
                    value: shown.to_owned(),
                    earliest: "1800-01-01".into(),
                },
            );
        }
    }
}
