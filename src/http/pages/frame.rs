//! The frame around every page, the links it makes, and the pieces pages are made of (links,
//! times). The error page (`http::error`) is rendered in the same frame, so what the layout
//! reads is visible in `crate::http`; the rest only in `pages`.

use axum::http::Uri;
use chrono::{DateTime, Utc};

use super::request::Ask;
use crate::audit::ProofError;
use crate::domain::EventId;
use crate::domain::diplomacy::FuzzyTime;
use crate::http::readable::{self, encode};
use crate::http::{Dashboard, HttpError};

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
    /// A live page whose projections had not reached the log's head when it was answered.
    pub(in crate::http) behind: Option<Behind>,
}

/// How far behind the log a live page's answer was: the head, and the projections short of
/// it (a big import, a rebuild), so that a reader does not take a view that is catching up
/// for the whole story.
pub(in crate::http) struct Behind {
    pub(in crate::http) head: u64,
    pub(in crate::http) projections: Vec<Lagging>,
}

/// A projection short of the head: where its live rows are, and where a rebuild under way
/// (of a projection far behind, or asked for) has got to.
pub(in crate::http) struct Lagging {
    pub(in crate::http) name: String,
    pub(in crate::http) position: u64,
    pub(in crate::http) rebuilding: Option<u64>,
}

impl Behind {
    /// "The log is at position 1350: the views are catching up (channels at 1200, rebuilding
    /// from the start, at 400000; relations at 1340)."
    pub(in crate::http) fn describe(&self) -> String {
        let projections: Vec<String> = self
            .projections
            .iter()
            .map(|p| match p.rebuilding {
                Some(at) => format!(
                    "{} at {}, rebuilding from the start, at {at}",
                    p.name, p.position
                ),
                None => format!("{} at {}", p.name, p.position),
            })
            .collect();
        let which = if projections.is_empty() {
            String::new()
        } else {
            format!(" ({})", projections.join("; "))
        };
        format!(
            "The log is at position {}: the views are catching up{which}.",
            self.head
        )
    }
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
            behind: None,
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
            behind: None,
        }
    }

    /// Notes what the answer reflects: live, how far behind the log's head it is, if at all;
    /// as of a past state, the checkpoint of the log of that size (none while the signed tree
    /// has not reached it).
    pub(super) async fn answered(
        &mut self,
        position: u64,
        reference: DateTime<Utc>,
        dashboard: &Dashboard,
    ) -> Result<(), HttpError> {
        self.position = position;
        self.as_of_label = readable::instant(reference);
        if self.live() {
            self.behind = behind(dashboard, position).await;
            return Ok(());
        }
        if self.as_of.is_empty() || self.error {
            return Ok(());
        }
        let auditor = &dashboard.auditor;
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

/// How far the projections are behind the head, if the answer at `position` is: read only
/// then, and left out (the page answers regardless) if the database cannot say.
async fn behind(dashboard: &Dashboard, position: u64) -> Option<Behind> {
    let head = dashboard.store.head().await.ok()?;
    if head <= position {
        return None;
    }
    let statuses = match dashboard.queries.store().statuses().await {
        Ok(statuses) => statuses,
        Err(error) => {
            tracing::debug!(%error, "a page could not read the projections' statuses");
            return None;
        }
    };
    Some(Behind {
        head,
        projections: statuses
            .into_iter()
            .filter(|status| status.position < status.head)
            .map(|status| Lagging {
                name: status.name,
                position: status.position,
                rebuilding: status.rebuilding,
            })
            .collect(),
    })
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

    #[test]
    fn a_page_behind_names_the_projections_short_of_the_head_and_any_rebuild() {
        let lagging = |name: &str, position, rebuilding| Lagging {
            name: name.to_owned(),
            position,
            rebuilding,
        };
        let behind = Behind {
            head: 1350,
            projections: vec![
                lagging("channels", 1200, Some(400)),
                lagging("relations", 1340, None),
            ],
        };
        assert_eq!(
            behind.describe(),
            "The log is at position 1350: the views are catching up (channels at 1200, \
             rebuilding from the start, at 400; relations at 1340)."
        );
        let unnamed = Behind {
            head: 7,
            projections: Vec::new(),
        };
        assert_eq!(
            unnamed.describe(),
            "The log is at position 7: the views are catching up."
        );
    }
}
