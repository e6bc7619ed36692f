//! The payload of each kind of diplomatic event. Field names and enum values follow the
//! proto3 JSON mapping of `proto/diplog/v1/diplomacy.proto` (proto field names), because that
//! JSON is what the log stores; a unit test round-trips every kind through the proto.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::DiplomaticEvent;
use super::values::{ActorId, CountryCode, FuzzyTime, Key};
use crate::domain::EventId;

/// `Vec` fields are optional on the wire (proto3 leaves empty lists out).
fn is_empty<T>(items: &[T]) -> bool {
    items.is_empty()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActorKind {
    State,
    Office,
    Person,
    Organisation,
    Media,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub id: ActorId,
    pub kind: ActorKind,
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub names: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<CountryCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wikidata_id: Option<String>,
    /// An office's: the level of the interactions held through it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorRegistered {
    pub actor: Actor,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfficeHolderChanged {
    pub office: ActorId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<ActorId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Participant {
    pub actor: ActorId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acting_as: Option<ActorId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Place {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<CountryCode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallHeld {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub participants: Vec<Participant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiator: Option<ActorId>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub topics: Vec<Key>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<MeetingFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track: Option<Key>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MeetingFormat {
    Bilateral,
    ThirdCountry,
    Multilateral,
    Video,
}

/// The rank of an interaction, from the highest (the order is the rank's: `Ord`);
/// parliamentarians are not ranked among the executive's and come last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Level {
    Leaders,
    Ministers,
    Deputies,
    Envoys,
    Experts,
    Parliamentary,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeetingHeld {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub participants: Vec<Participant>,
    pub format: MeetingFormat,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub topics: Vec<Key>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiator: Option<ActorId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track: Option<Key>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitMade {
    pub visitor: Participant,
    pub host: CountryCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_day: Option<String>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub topics: Vec<Key>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<MeetingFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track: Option<Key>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NegotiationRoundHeld {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub participants: Vec<Participant>,
    pub track: Key,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub topics: Vec<Key>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<MeetingFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StatementForm {
    Readout,
    Statement,
    Interview,
    Communique,
    Post,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementIssued {
    pub speaker: ActorId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub form: Option<StatementForm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub about: Option<EventId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AgreementKind {
    MaintainChannel,
    PrepareSummit,
    OrganiseMeeting,
    RegularContacts,
    Cooperate,
    RestoreDialogue,
    VisitEachOther,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgreementStated {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub parties: Vec<ActorId>,
    pub kind: AgreementKind,
    pub subject: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentExpressed {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub actors: Vec<ActorId>,
    pub intent: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvitationExtended {
    pub inviter: ActorId,
    pub invitee: ActorId,
    pub purpose: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Answer {
    Accepted,
    Declined,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvitationAnswered {
    pub answer: Answer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestMade {
    pub requester: ActorId,
    pub addressee: ActorId,
    pub request: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalRejected {
    pub rejecter: ActorId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposer: Option<ActorId>,
    pub proposal: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelEstablished {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub parties: Vec<ActorId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

/// The payload of a channel or summit step that only gives a reason.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummitProposed {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub parties: Vec<ActorId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposed_by: Option<ActorId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<FuzzyTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummitPreparationAgreed {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub parties: Vec<ActorId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<FuzzyTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scheduled {
    pub date: FuzzyTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummitHeld {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meeting: Option<EventId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummitPostponed {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_date: Option<FuzzyTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitmentStated {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub parties: Vec<ActorId>,
    pub what: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due: Option<FuzzyTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitmentFulfilled {
    pub fulfilled_by: EventId,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitmentWithdrawn {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<ActorId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiplomatsExpelled {
    pub expelling_state: CountryCode,
    pub expelled_state: CountryCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissionsRestored {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub states: Vec<CountryCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceReportAttached {
    pub occurrence: EventId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventCorrected {
    pub event: EventId,
    pub replacement: Box<DiplomaticEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRetracted {
    pub event: EventId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodedActor {
    pub actor: ActorId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sector: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodedEventReported {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub sources: Vec<CodedActor>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub targets: Vec<CodedActor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    // What GDELT measures of an event; absent for datasets that do not (PLOVER, POLECAT), so
    // their events' JSON is unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goldstein_scale: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quad_class: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_place: Option<CodedPlace>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mentions: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub articles: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub average_tone: Option<f64>,
}

impl CodedEventReported {
    /// Measures outside their ranges, as (field, message) pairs: GDELT's scales are bounded,
    /// and a value past them is a mistake, not a finding.
    pub fn measure_problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        let mut bounded = |field: &'static str, value: Option<f64>, min: f64, max: f64| {
            if let Some(value) = value
                && !(min..=max).contains(&value)
            {
                problems.push((field, format!("{value} is outside {min} to {max}")));
            }
        };
        bounded("goldstein_scale", self.goldstein_scale, -10.0, 10.0);
        bounded("average_tone", self.average_tone, -100.0, 100.0);
        bounded("quad_class", self.quad_class.map(f64::from), 1.0, 4.0);
        if let Some(place) = &self.action_place {
            bounded("action_place.latitude", place.latitude, -90.0, 90.0);
            bounded("action_place.longitude", place.longitude, -180.0, 180.0);
        }
        problems
    }
}

/// A place as an event dataset geocodes it (the proto's `CodedPlace`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodedPlace {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// As the dataset gives it (GDELT: FIPS 10-4, not ISO).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
}
