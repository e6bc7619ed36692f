//! Streams: the categories of stream ids (`channel-…`, `summit-…`, …), how a stream id reads,
//! and the rule that each event goes into a stream of its kind's category (actor events into
//! their actor's, provenance and corrections into the stream of the event they refer to).

use super::Check;
use crate::domain::ValidationError;
use crate::domain::diplomacy::{DiplomaticEvent, EventKind};

/// Where a kind of event is recorded: the prefix of its stream's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Actor,
    Occurrence,
    Invitation,
    Channel,
    Summit,
    Commitment,
    Presence,
    /// Provenance and corrections: the stream of the event they refer to.
    Referenced,
}

impl Category {
    const PREFIXES: &[(&str, Category)] = &[
        ("actor", Category::Actor),
        ("occurrence", Category::Occurrence),
        ("invitation", Category::Invitation),
        ("channel", Category::Channel),
        ("summit", Category::Summit),
        ("commitment", Category::Commitment),
        ("presence", Category::Presence),
    ];

    pub fn prefix(self) -> Option<&'static str> {
        Self::PREFIXES
            .iter()
            .find(|(_, category)| *category == self)
            .map(|(prefix, _)| *prefix)
    }
}

/// A stream id read as `<category>-<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamName {
    pub category: Category,
    pub name: String,
}

impl StreamName {
    pub const MAX_NAME_CHARS: usize = 200;

    pub fn parse(stream_id: &str) -> Option<Self> {
        let (prefix, name) = stream_id.split_once('-')?;
        let category = Category::PREFIXES
            .iter()
            .find(|(known, _)| *known == prefix)
            .map(|(_, category)| *category)?;
        let name_ok = !name.is_empty()
            && name.len() <= Self::MAX_NAME_CHARS
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        name_ok.then(|| Self {
            category,
            name: name.to_owned(),
        })
    }
}

impl Check<'_> {
    /// The stream must be of the kind's category; actor events go into their actor's stream,
    /// provenance and corrections into the stream of the event they refer to.
    pub(super) fn stream_fits(&mut self, event: &DiplomaticEvent) {
        let kind = event.kind.name();
        let category = event.kind.category();
        let name = StreamName::parse(self.stream_id);
        let wrong = |expected: String| ValidationError::WrongStream {
            kind: kind.to_owned(),
            expected,
        };
        let error = match (category, &name) {
            (Category::Referenced, _) => {
                let target = match &event.kind {
                    EventKind::SourceReportAttached(attached) => attached.occurrence,
                    EventKind::EventCorrected(corrected) => corrected.event,
                    EventKind::EventRetracted(retracted) => retracted.event,
                    _ => unreachable!("only these kinds are Referenced"),
                };
                match self.state.events.get(&target) {
                    Some(facts) if facts.stream != self.stream_id => Some(wrong(format!(
                        "it belongs in {}, the stream of event {target}",
                        facts.stream
                    ))),
                    _ => None,
                }
            }
            (_, None) => Some(wrong(format!(
                "expected a stream id `{}-<name>` (name: 1 to {} of [A-Za-z0-9._-])",
                category.prefix().unwrap_or("?"),
                StreamName::MAX_NAME_CHARS
            ))),
            (_, Some(name)) if name.category != category => Some(wrong(format!(
                "expected a stream id starting with `{}-`",
                category.prefix().unwrap_or("?")
            ))),
            (Category::Actor, Some(name)) => {
                let actor = match &event.kind {
                    EventKind::ActorRegistered(registered) => registered.actor.id.as_str(),
                    EventKind::OfficeHolderChanged(change) => change.office.as_str(),
                    _ => unreachable!("only these kinds are Actor"),
                };
                (name.name != actor)
                    .then(|| wrong(format!("expected the actor's own stream, actor-{actor}")))
            }
            _ => None,
        };
        if let Some(error) = error {
            self.errors.push("stream_id", error);
        }
    }
}
