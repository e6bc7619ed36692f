//! The frame around every page, the links it makes, and the pieces pages are made of (links,
//! times). The error page (`http::error`) is rendered in the same frame, so what the layout
//! reads is visible in `crate::http`; the rest only in `pages`.

use axum::http::Uri;
use chrono::{DateTime, Utc};

use super::request::Ask;
use crate::audit::{Auditor, ProofError};
use crate::domain::EventId;
use crate::domain::diplomacy::FuzzyTime;
use crate::http::HttpError;
use crate::http::readable::{self, encode};

/// What the layout shows around a page's content: title, navigation, the "as of" control and
/// banner, and the position the page reflects (which the live script compares with the log's).
pub(in crate::http) struct Frame {
    pub(in crate::http) title: String,
    section: &'static str,
    /// The page's path, without parameters.
    pub(in crate::http) path: String,
    /// The `as_of` as given; empty: now.
    pub(in crate::http) as_of: String,
    /// For the banner: the time the answer is about.
    pub(in crate::http) as_of_label: String,
    /// The `on` (a day) as given; empty: the state now.
    pub(in crate::http) on: String,
    pub(in crate::http) position: u64,
    pub(in crate::http) fragment: bool,
    /// An error page: no live updates.
    pub(in crate::http) error: bool,
    /// The words of the search box (the search page's; empty elsewhere).
    pub(in crate::http) query: String,
    /// As of a past state: the signed tree of the log the page reflects, to cite.
    pub(in crate::http) citation: Option<Citation>,
}

/// The log at the size a page reflects: its root and its checkpoint (C2SP signed note).
pub(in crate::http) struct Citation {
    pub(in crate::http) size: u64,
    pub(in crate::http) root: String,
    pub(in crate::http) checkpoint: String,
}

impl Frame {
    pub(super) fn new(
        ask: &Ask,
        title: impl Into<String>,
        section: &'static str,
        uri: &Uri,
    ) -> Self {
        Self {
            title: title.into(),
            section,
            path: uri.path().to_owned(),
            as_of: ask
                .as_of
                .as_ref()
                .map(|(raw, _)| raw.clone())
                .unwrap_or_default(),
            as_of_label: String::new(),
            on: ask
                .on
                .as_ref()
                .map(|(raw, _)| raw.clone())
                .unwrap_or_default(),
            position: 0,
            fragment: ask.fragment,
            error: false,
            query: String::new(),
            citation: None,
        }
    }

    /// The frame of an error page.
    pub(in crate::http) fn error(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            section: "",
            path: "/".to_owned(),
            as_of: String::new(),
            as_of_label: String::new(),
            on: String::new(),
            position: 0,
            fragment: false,
            error: true,
            query: String::new(),
            citation: None,
        }
    }

    /// Notes what the answer reflects; as of a past state, with the checkpoint of the log of
    /// that size (none while the signed tree has not reached it).
    pub(super) async fn answered(
        &mut self,
        position: u64,
        reference: DateTime<Utc>,
        auditor: &Auditor,
    ) -> Result<(), HttpError> {
        self.position = position;
        self.as_of_label = readable::instant(reference);
        if self.as_of.is_empty() || self.error {
            return Ok(());
        }
        match auditor.signed_head_at(Some(position)).await {
            Ok(signed) => {
                self.citation = Some(Citation {
                    size: signed.head.size,
                    root: hex::encode(signed.head.root),
                    checkpoint: auditor.checkpoint(&signed.head),
                });
                Ok(())
            }
            Err(ProofError::PastHead { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Whether the page follows the log (not as of a past state nor on a day, not an error).
    pub(in crate::http) fn live(&self) -> bool {
        self.as_of.is_empty() && self.on.is_empty() && !self.error
    }

    /// A link to `path` that keeps the "as of" and the "on" of this page.
    pub(in crate::http) fn link(&self, path: &str) -> String {
        let mut query = Vec::new();
        if !self.as_of.is_empty() {
            query.push(format!("as_of={}", encode(&self.as_of)));
        }
        if !self.on.is_empty() {
            query.push(format!("on={}", encode(&self.on)));
        }
        if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{}", query.join("&"))
        }
    }

    pub(in crate::http) fn is(&self, section: &str) -> bool {
        self.section == section
    }

    pub(super) fn actor(&self, id: &str, name: &str) -> Link {
        Link {
            href: self.link(&format!("/actors/{}", encode(id))),
            text: name.to_owned(),
        }
    }

    /// The page of an event: its occurrence's readouts side by side, if it has sources, else
    /// the event itself.
    pub(super) fn event(&self, id: EventId) -> String {
        self.link(&format!("/occurrences/{id}"))
    }

    pub(super) fn pair(&self, a: &str, b: &str) -> String {
        self.link(&format!("/relations/{}/{}", encode(a), encode(b)))
    }
}

// ---------------------------------------------------------------------------------------------
// Pieces of pages

pub(super) struct Link {
    pub(super) href: String,
    pub(super) text: String,
}

/// A time for people, and for machines (`<time datetime>`).
pub(super) struct Stamp {
    pub(super) text: String,
    pub(super) machine: String,
}

pub(super) fn stamp(time: Option<&FuzzyTime>) -> Option<Stamp> {
    time.map(|t| Stamp {
        text: readable::fuzzy(t),
        machine: readable::machine(t),
    })
}

pub(super) fn stamp_at(time: DateTime<Utc>) -> Stamp {
    Stamp {
        text: readable::instant(time),
        machine: time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

#[cfg(test)]
mod tests {
    use super::super::request::Params;
    use super::*;

    #[test]
    fn links_keep_the_as_of() {
        let ask = Ask::parse(&Params::given(Some("2025-02-15T12:00:00+03:00"), None))
            .unwrap_or_else(|_| panic!("a time"));
        let frame = Frame::new(&ask, "t", "", &Uri::from_static("/channels"));
        assert_eq!(
            frame.link("/summits"),
            "/summits?as_of=2025-02-15T12%3A00%3A00%2B03%3A00"
        );
        assert!(!frame.live());
    }
}
