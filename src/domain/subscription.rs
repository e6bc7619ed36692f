//! What a subscription asks for: where to start and which events to deliver.

use super::EventType;

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionStart {
    /// Every event after this position (0: the whole log). Resuming from a checkpoint, or from
    /// the last event received, is `After(that position)`.
    After(u64),
    /// Only events committed after the subscription began.
    Now,
}

/// Which events a subscription (or a page of the log) selects; empty parts select everything.
/// Positions that the filter skips still advance the subscription's checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogFilter {
    /// Any of these types; empty: all.
    pub event_types: Vec<EventType>,
    /// Streams whose id starts with this.
    pub stream_prefix: Option<String>,
    /// Typed diplomatic events that name this actor (their `diplog.actors` metadata).
    pub actor: Option<String>,
}

impl LogFilter {
    pub fn is_everything(&self) -> bool {
        self.event_types.is_empty() && self.stream_prefix.is_none() && self.actor.is_none()
    }

    /// The same selection as the SQL of `store::read::events_page`: keep the two in step.
    pub fn matches(&self, event_type: &str, stream_id: &str, actors: Option<&str>) -> bool {
        (self.event_types.is_empty() || self.event_types.iter().any(|t| t.as_str() == event_type))
            && self
                .stream_prefix
                .as_deref()
                .is_none_or(|prefix| stream_id.starts_with(prefix))
            && self.actor.as_deref().is_none_or(|actor| {
                actors.is_some_and(|listed| listed.contains(&format!(" {actor} ")))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(types: &[&str], prefix: Option<&str>, actor: Option<&str>) -> LogFilter {
        LogFilter {
            event_types: types
                .iter()
                .map(|t| EventType::parse(*t).unwrap())
                .collect(),
            stream_prefix: prefix.map(str::to_owned),
            actor: actor.map(str::to_owned),
        }
    }

    #[test]
    fn an_empty_filter_matches_everything() {
        let all = LogFilter::default();
        assert!(all.is_everything());
        assert!(all.matches("X", "s", None));
    }

    #[test]
    fn types_are_any_of() {
        let f = filter(&["CallHeld", "MeetingHeld"], None, None);
        assert!(f.matches("MeetingHeld", "s", None));
        assert!(!f.matches("CallHeldX", "s", None));
    }

    #[test]
    fn the_prefix_is_a_prefix() {
        let f = filter(&[], Some("actor-"), None);
        assert!(f.matches("X", "actor-RUS", None));
        assert!(!f.matches("X", "occurrence-actor-", None));
    }

    #[test]
    fn the_actor_is_a_whole_listed_id() {
        let f = filter(&[], None, Some("RUS"));
        assert!(f.matches("X", "s", Some(" USA RUS ")));
        assert!(!f.matches("X", "s", Some(" RUSX USA ")));
        assert!(!f.matches("X", "s", None), "untyped events name no actor");
    }

    #[test]
    fn all_parts_must_match() {
        let f = filter(&["CallHeld"], Some("occurrence-"), Some("RUS"));
        assert!(f.matches("CallHeld", "occurrence-x", Some(" RUS ")));
        assert!(!f.matches("CallHeld", "actor-x", Some(" RUS ")));
    }
}
