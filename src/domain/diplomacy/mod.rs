//! Diplomatic events: the typed vocabulary of the log (calls, meetings, statements,
//! agreements, channels, summits, commitments, corrections), their sources and claims, their
//! CAMEO/PLOVER coding, the stream each belongs in, and the rules that make a record valid.
//! Pure: no I/O. What the rules need to know about the log comes in as a [`LogState`].

mod coding;
mod kinds;
mod lifecycle;
mod rules;
#[cfg(test)]
mod samples;
mod stored;
mod values;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use coding::{Coding, PLOVER_TYPES, QuadClass, plover_type_of, quad_class_of};
pub use kinds::*;
pub use lifecycle::{
    ChannelStatus, ChannelStepKind, CommitmentStatus, CommitmentStepKind, SummitStage,
};
pub use rules::check_record;
pub use rules::log_state::LogState;
pub use rules::streams::{Category, StreamName};
#[cfg(test)]
pub(crate) use samples::sample_events;
pub use values::{ActorId, CountryCode, FuzzyTime, Key, Language, Precision, YearMonth};

use crate::domain::EventId;

/// One diplomatic event as a client records it: the envelope common to every kind, and the
/// kind. Its JSON (the proto3 JSON mapping of `diplog.v1.DiplomaticEvent`, without `id`) is
/// what the log stores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiplomaticEvent {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred: Option<FuzzyTime>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceAttribution>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<EventId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coding: Option<Coding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The envelope's fields, read apart from the kind so that errors keep their path (serde's
/// `flatten` loses it).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    occurred: Option<FuzzyTime>,
    #[serde(default)]
    sources: Vec<SourceAttribution>,
    #[serde(default)]
    evidence: Vec<EventId>,
    coding: Option<Coding>,
    note: Option<String>,
}

impl<'de> Deserialize<'de> for DiplomaticEvent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Self::from_json(value).map_err(|(path, message)| {
            serde::de::Error::custom(if path.is_empty() {
                message
            } else {
                format!("{path}: {message}")
            })
        })
    }
}

/// `CallHeld` -> `call_held`: the proto field (and JSON key) of a kind.
fn field_of(kind_name: &str) -> String {
    let mut field = String::new();
    for (index, c) in kind_name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if index > 0 {
                field.push('_');
            }
            field.push(c.to_ascii_lowercase());
        } else {
            field.push(c);
        }
    }
    field
}

/// One source's report of an occurrence: who, when, in what language, its verbatim quotes
/// and the claims it makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceAttribution {
    pub source: ActorId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quotes: Vec<Quote>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<Claim>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quote {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub translation: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClaimKind {
    Topic,
    Agreement,
    Statement,
    Fact,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    pub kind: ClaimKind,
    pub key: Key,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// Declares the kinds: the enum (externally tagged by the proto field name), each kind's
/// message name (the log's event type) and the stream category it belongs in, and the same
/// kinds without their payloads ([`KindName`]).
macro_rules! event_kinds {
    ($($variant:ident($payload:ty) => $category:ident),* $(,)?) => {
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum EventKind {
            $($variant($payload)),*
        }

        /// A kind of diplomatic event without its payload: what the log's `type` of a
        /// diplomatic event names, and what the rules know of the events a record refers to.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum KindName {
            $($variant),*
        }

        impl EventKind {
            /// Every kind's name, as stored in the log's `type`.
            pub const NAMES: &[&str] = &[$(stringify!($variant)),*];

            pub fn name(&self) -> &'static str {
                self.kind_name().as_str()
            }

            /// The kind, without its payload.
            pub fn kind_name(&self) -> KindName {
                match self {
                    $(Self::$variant(_) => KindName::$variant),*
                }
            }

            pub fn category(&self) -> Category {
                self.kind_name().category()
            }
        }

        impl KindName {
            /// The name, as stored in the log's `type`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($variant)),*
                }
            }

            /// The kind of this name; `None` for a name that is not a kind.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $(stringify!($variant) => Some(Self::$variant),)*
                    _ => None,
                }
            }

            /// The stream category it is recorded in.
            pub fn category(self) -> Category {
                match self {
                    $(Self::$variant => Category::$category),*
                }
            }
        }

        impl std::fmt::Display for KindName {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// The stream category of a kind given by name; `None` for a name that is not a kind.
        pub fn category_of(kind_name: &str) -> Option<Category> {
            KindName::parse(kind_name).map(KindName::category)
        }
    };
}

event_kinds! {
    ActorRegistered(ActorRegistered) => Actor,
    OfficeHolderChanged(OfficeHolderChanged) => Actor,
    CallHeld(CallHeld) => Occurrence,
    MeetingHeld(MeetingHeld) => Occurrence,
    VisitMade(VisitMade) => Occurrence,
    NegotiationRoundHeld(NegotiationRoundHeld) => Occurrence,
    StatementIssued(StatementIssued) => Occurrence,
    AgreementStated(AgreementStated) => Occurrence,
    IntentExpressed(IntentExpressed) => Occurrence,
    InvitationExtended(InvitationExtended) => Invitation,
    InvitationAnswered(InvitationAnswered) => Invitation,
    RequestMade(RequestMade) => Occurrence,
    ProposalRejected(ProposalRejected) => Occurrence,
    ChannelEstablished(ChannelEstablished) => Channel,
    ChannelSuspended(Reason) => Channel,
    ChannelResumed(Reason) => Channel,
    ChannelClosed(Reason) => Channel,
    SummitProposed(SummitProposed) => Summit,
    SummitPreparationAgreed(SummitPreparationAgreed) => Summit,
    SummitScheduled(Scheduled) => Summit,
    SummitHeld(SummitHeld) => Summit,
    SummitPostponed(SummitPostponed) => Summit,
    SummitCancelled(Reason) => Summit,
    CommitmentStated(CommitmentStated) => Commitment,
    CommitmentScheduled(Scheduled) => Commitment,
    CommitmentFulfilled(CommitmentFulfilled) => Commitment,
    CommitmentWithdrawn(CommitmentWithdrawn) => Commitment,
    DiplomatsExpelled(DiplomatsExpelled) => Presence,
    MissionsRestored(MissionsRestored) => Presence,
    SourceReportAttached(SourceReportAttached) => Referenced,
    EventCorrected(EventCorrected) => Referenced,
    EventRetracted(EventRetracted) => Referenced,
    CodedEventReported(CodedEventReported) => Occurrence,
}

impl DiplomaticEvent {
    /// Parses the stored or transmitted JSON of an event (without its id); the error names the
    /// field at fault, e.g. `call_held.participants[0].actor: "X" is not an actor id`.
    pub fn from_json(value: serde_json::Value) -> Result<Self, (String, String)> {
        /// Deserializes without tracking where it is (most values are valid, and tracking
        /// costs); only a value that fails is deserialized again, tracked, to name the field.
        fn parse<T: serde::de::DeserializeOwned>(
            value: serde_json::Value,
        ) -> Result<T, (String, String)> {
            if let Ok(parsed) = T::deserialize(&value) {
                return Ok(parsed);
            }
            serde_path_to_error::deserialize(value).map_err(|error| {
                let path = error.path().to_string();
                let path = if path == "." { String::new() } else { path };
                (path, error.into_inner().to_string())
            })
        }
        static FIELDS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
            EventKind::NAMES.iter().map(|name| field_of(name)).collect()
        });
        let serde_json::Value::Object(mut object) = value else {
            return Err((String::new(), "an event must be an object".to_owned()));
        };
        let fields: &[String] = &FIELDS;
        let present: Vec<String> = object
            .keys()
            .filter(|key| fields.contains(key))
            .cloned()
            .collect();
        let [kind_field] = present.as_slice() else {
            let message = if present.is_empty() {
                format!("give the event's kind, one of: {}", fields.join(", "))
            } else {
                format!("give exactly one kind, not {}", present.join(" and "))
            };
            return Err((String::new(), message));
        };
        let kind_value = object.remove(kind_field).unwrap_or_default();
        let kind: EventKind = parse(serde_json::json!({ kind_field.clone(): kind_value }))?;
        let envelope: Envelope = parse(serde_json::Value::Object(object))?;
        Ok(Self {
            occurred: envelope.occurred,
            sources: envelope.sources,
            evidence: envelope.evidence,
            coding: envelope.coding,
            note: envelope.note,
            kind,
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a diplomatic event always serializes")
    }

    /// The event with its coding filled from its kind where the client left it out.
    pub fn with_default_coding(mut self) -> Self {
        if self.coding.as_ref().is_none_or(Coding::is_empty) {
            self.coding = coding::default_for(&self.kind);
        }
        self
    }

    /// Every string value the event holds. The actors and events it names are among them, so
    /// a caller can gather what the rules need without knowing every kind's fields.
    pub fn strings(&self) -> std::collections::BTreeSet<String> {
        let mut strings = std::collections::BTreeSet::new();
        json_strings(&self.to_json(), &mut |s| {
            strings.insert(s.to_owned());
        });
        strings
    }

    /// The proto field name of the kind, e.g. `call_held`: the prefix of its field paths.
    pub fn kind_field(&self) -> String {
        field_of(self.kind.name())
    }
}

/// Who makes which claim about one occurrence: each claim key with the sources that make it.
/// Give it every attribution of the occurrence (the occurrence's own and those attached later).
pub fn claims_by_source<'a>(
    attributions: impl IntoIterator<Item = &'a SourceAttribution>,
) -> std::collections::BTreeMap<Key, std::collections::BTreeSet<ActorId>> {
    let mut claims: std::collections::BTreeMap<Key, std::collections::BTreeSet<ActorId>> =
        Default::default();
    for attribution in attributions {
        for claim in &attribution.claims {
            claims
                .entry(claim.key.clone())
                .or_default()
                .insert(attribution.source.clone());
        }
    }
    claims
}

/// The claims only one source makes, with that source: where readouts diverge.
pub fn single_source_claims<'a>(
    attributions: impl IntoIterator<Item = &'a SourceAttribution>,
) -> Vec<(Key, ActorId)> {
    claims_by_source(attributions)
        .into_iter()
        .filter(|(_, sources)| sources.len() == 1)
        .filter_map(|(key, sources)| sources.into_iter().next().map(|source| (key, source)))
        .collect()
}

/// A namespace for the ids of events imported from files: the same file imported twice gives
/// the same ids, so the second import writes nothing.
pub fn derived_event_id(namespace: &str, key: &str) -> EventId {
    const DIPLOG: uuid::Uuid = uuid::Uuid::from_u128(0x6d1f_1c0e_2b8a_4c3e_9a57_d1b0_c0de_0001);
    let scope = uuid::Uuid::new_v5(&DIPLOG, namespace.as_bytes());
    EventId::from(uuid::Uuid::new_v5(&scope, key.as_bytes()))
}

/// Calls `each` with every string in `value` (object keys left out), at any depth: what an
/// event's JSON names (actors, events, streams) among them.
pub fn json_strings(value: &serde_json::Value, each: &mut impl FnMut(&str)) {
    match value {
        serde_json::Value::String(s) => each(s),
        serde_json::Value::Array(items) => items.iter().for_each(|item| json_strings(item, each)),
        serde_json::Value::Object(fields) => {
            fields.values().for_each(|item| json_strings(item, each))
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_call_parses_from_its_wire_json_and_writes_the_same_json_back() {
        let wire = json!({
            "occurred": {"day": "2025-02-15", "time_zone": "Europe/Moscow"},
            "sources": [{
                "source": "rus.mfa",
                "published_at": "2025-02-15T15:00:00Z",
                "language": "ru",
                "quotes": [{"text": "Договорились о регулярных контактах"}],
                "claims": [{"kind": "AGREEMENT", "key": "regular-contacts"}]
            }],
            "call_held": {
                "participants": [{"actor": "sergey-lavrov", "acting_as": "rus.foreign-minister"},
                                 {"actor": "marco-rubio"}],
                "initiator": "USA",
                "topics": ["ukraine-settlement"]
            }
        });
        let event = DiplomaticEvent::from_json(wire.clone()).unwrap();
        assert_eq!(event.kind.name(), "CallHeld");
        assert_eq!(event.kind_field(), "call_held");
        assert_eq!(event.to_json(), wire);
    }

    #[test]
    fn a_bad_value_is_reported_with_its_path() {
        let wire = json!({
            "call_held": {"participants": [{"actor": "Lavrov"}]}
        });
        let (path, message) = DiplomaticEvent::from_json(wire).unwrap_err();
        assert_eq!(path, "call_held.participants[0].actor");
        assert!(message.contains("not an actor id"), "{message}");
    }

    #[test]
    fn every_kind_has_a_stream_category() {
        for name in EventKind::NAMES {
            assert!(category_of(name).is_some(), "{name}");
        }
        assert_eq!(category_of("Unknown"), None);
    }

    #[test]
    fn kind_names_parse_back_to_their_kinds() {
        for name in EventKind::NAMES {
            assert_eq!(KindName::parse(name).map(KindName::as_str), Some(*name));
        }
        assert_eq!(KindName::parse("channel_closed"), None);
    }

    #[test]
    fn a_claim_only_one_source_makes_is_singled_out() {
        let attribution = |source: &str, keys: &[&str]| -> SourceAttribution {
            serde_json::from_value(json!({
                "source": source,
                "claims": keys.iter().map(|key| json!({"kind": "TOPIC", "key": key})).collect::<Vec<_>>(),
            }))
            .unwrap()
        };
        let mfa = attribution("rus.mfa", &["ukraine", "middle-east"]);
        let state = attribution("usa.state-department", &["ukraine", "bilateral-issues"]);
        let single: Vec<(String, String)> = single_source_claims([&mfa, &state])
            .into_iter()
            .map(|(key, source)| (key.as_str().to_owned(), source.to_string()))
            .collect();
        assert_eq!(
            single,
            [
                (
                    "bilateral-issues".to_owned(),
                    "usa.state-department".to_owned()
                ),
                ("middle-east".to_owned(), "rus.mfa".to_owned()),
            ]
        );
    }

    #[test]
    fn derived_ids_are_stable_and_scoped() {
        assert_eq!(derived_event_id("a", "k"), derived_event_id("a", "k"));
        assert_ne!(derived_event_id("a", "k"), derived_event_id("b", "k"));
    }
}
