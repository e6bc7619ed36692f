//! What a request asks for: the query parameters every page takes, and the same checked.

use chrono::NaiveDate;
use serde::Deserialize;

use crate::http::{Dashboard, HttpError};
use crate::projections::read::request::{AsOf, Records, Source, parse_day};

/// The query parameters every page takes.
#[derive(Debug, Default, Deserialize)]
pub(in crate::http) struct Params {
    /// A log position, an RFC 3339 time or a day: answer from the log as it was then.
    as_of: Option<String>,
    /// A day, YYYY-MM-DD: the state of affairs on that day, as the log knows it (or knew it
    /// `as_of`).
    on: Option<String>,
    /// Answer only once the projections reflect this position (what the live script sends).
    min_position: Option<String>,
    /// `1`: render only the page's `<main>`.
    fragment: Option<String>,
    /// Timeline and relations: `readouts`, `coded` or `both` (the default).
    records: Option<String>,
}

/// The parameters, checked.
pub(super) struct Ask {
    /// The `as_of` as given, and what it means.
    pub(super) as_of: Option<(String, AsOf)>,
    /// The `on` as given, and its day.
    pub(super) on: Option<(String, NaiveDate)>,
    pub(super) min_position: u64,
    pub(super) fragment: bool,
    /// Which records the timeline and relations count.
    pub(super) records: Records,
}

impl Ask {
    pub(super) fn parse(params: &Params) -> Result<Self, HttpError> {
        let as_of = match params.as_of.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some((
                raw.to_owned(),
                AsOf::parse(raw).map_err(|message| HttpError::BadRequest {
                    parameter: "as_of",
                    message,
                })?,
            )),
        };
        let on = match params.on.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some((
                raw.to_owned(),
                parse_day(raw).map_err(|message| HttpError::BadRequest {
                    parameter: "on",
                    message,
                })?,
            )),
        };
        let min_position = match params.min_position.as_deref().map(str::trim) {
            None | Some("") => 0,
            Some(raw) => raw.parse().map_err(|_| HttpError::BadRequest {
                parameter: "min_position",
                message: format!("{raw:?} is not a log position (digits)"),
            })?,
        };
        let fragment = matches!(params.fragment.as_deref(), Some("1" | "true"));
        let records = match params.records.as_deref().map(str::trim) {
            None | Some("" | "both") => Records::Both,
            Some("readouts") => Records::Readouts,
            Some("coded") => Records::Coded,
            Some(raw) => {
                return Err(HttpError::BadRequest {
                    parameter: "records",
                    message: format!("{raw:?} is not one of readouts, coded, both"),
                });
            }
        };
        Ok(Self {
            as_of,
            on,
            min_position,
            fragment,
            records,
        })
    }

    /// The records asked for, as the parameter spells them.
    pub(super) fn records_name(&self) -> &'static str {
        match self.records {
            Records::Both => "both",
            Records::Readouts => "readouts",
            Records::Coded => "coded",
        }
    }

    pub(super) fn as_of(&self) -> Option<AsOf> {
        self.as_of.as_ref().map(|(_, as_of)| *as_of)
    }

    pub(super) fn source(&self, dashboard: &Dashboard) -> Source {
        Source::of(
            self.as_of(),
            self.on.as_ref().map(|(_, day)| *day),
            self.min_position,
            dashboard.max_wait,
        )
    }
}

#[cfg(test)]
impl Params {
    /// The parameters of a page asked for as of `as_of`, once the log reaches `min_position`.
    pub(super) fn given(as_of: Option<&str>, min_position: Option<&str>) -> Self {
        Self {
            as_of: as_of.map(str::to_owned),
            on: None,
            min_position: min_position.map(str::to_owned),
            fragment: None,
            records: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_as_of_means_now_and_a_bad_one_names_the_parameter() {
        let now = Ask::parse(&Params::given(Some(" "), None)).unwrap_or_else(|_| panic!("now"));
        assert!(now.as_of.is_none());
        let past = Ask::parse(&Params::given(Some("2025-02-14"), Some("7")))
            .unwrap_or_else(|_| panic!("a day"));
        assert!(matches!(past.as_of(), Some(AsOf::Time(_))));
        assert_eq!(past.min_position, 7);
        assert!(matches!(
            Ask::parse(&Params::given(Some("banana"), None)),
            Err(HttpError::BadRequest {
                parameter: "as_of",
                ..
            })
        ));
        assert!(matches!(
            Ask::parse(&Params::given(None, Some("-1"))),
            Err(HttpError::BadRequest {
                parameter: "min_position",
                ..
            })
        ));
    }
}
