//! The rules a record must follow: the stream it goes into, the actors and events it names,
//! the lifecycle of channels, summits, commitments and invitations, and times. Rules about the
//! input alone need nothing else; rules about the log read a [`LogState`]: the part of the log
//! the record refers to, gathered by the caller (from PostgreSQL on the server, from the server
//! and the file itself in the importer).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use super::kinds::*;
use super::lifecycle::{ChannelStatus, ChannelStepKind};
use super::values::{ActorId, CountryCode, FuzzyTime, Precision, YearMonth};
use super::{DiplomaticEvent, EventKind, KindName};
use crate::domain::{EventId, StreamId, ValidationError, ValidationErrors};

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

#[derive(Debug, Clone)]
struct ActorFacts {
    kind: ActorKind,
    country: Option<CountryCode>,
}

#[derive(Debug, Clone)]
struct EventFacts {
    stream: String,
    /// Its kind; `None` for an event that is not a diplomatic event.
    kind: Option<KindName>,
    /// Its kind as messages name it: the name it was observed under.
    label: String,
    retracted: bool,
}

/// What the rules know about the log: registered actors, events by id, and the kinds of the
/// events of the streams being written, in order.
#[derive(Debug, Clone, Default)]
pub struct LogState {
    actors: HashMap<ActorId, ActorFacts>,
    events: HashMap<EventId, EventFacts>,
    streams: HashMap<String, Vec<EventId>>,
}

impl LogState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes note of one event of the log. `event` is `None` for an event that is not a
    /// diplomatic event (appended through the generic log); only its kind name is kept.
    pub fn observe(
        &mut self,
        stream_id: &str,
        id: EventId,
        kind_name: &str,
        event: Option<&DiplomaticEvent>,
    ) {
        if self.events.contains_key(&id) {
            return;
        }
        self.events.insert(
            id,
            EventFacts {
                stream: stream_id.to_owned(),
                kind: KindName::parse(kind_name),
                label: kind_name.to_owned(),
                retracted: false,
            },
        );
        self.streams
            .entry(stream_id.to_owned())
            .or_default()
            .push(id);
        match event.map(|event| &event.kind) {
            Some(EventKind::ActorRegistered(registered)) => {
                let actor = &registered.actor;
                self.actors.insert(
                    actor.id.clone(),
                    ActorFacts {
                        kind: actor.kind,
                        country: actor.country,
                    },
                );
            }
            Some(EventKind::EventRetracted(retraction)) => {
                if let Some(target) = self.events.get_mut(&retraction.event) {
                    target.retracted = true;
                }
            }
            _ => {}
        }
    }

    /// Takes note of an event as the log stores it: its type and JSON data, and whether the
    /// recorder wrote it. Only such events count as diplomatic events; any other (a generic
    /// append that happens to use a kind's name) is known by its id, under a label that no
    /// rule accepts as a kind.
    pub fn observe_stored(
        &mut self,
        stream_id: &str,
        id: EventId,
        event_type: &str,
        recorded_as_diplomatic: bool,
        data: &str,
    ) {
        let kind = KindName::parse(event_type);
        if !(recorded_as_diplomatic && kind.is_some()) {
            let label = format!("{event_type} (not a diplomatic event)");
            return self.observe(stream_id, id, &label, None);
        }
        // Only these kinds' payloads add facts; the rest are known by kind, which spares
        // parsing every event of a long stream.
        let payload_matters = matches!(
            kind,
            Some(KindName::ActorRegistered | KindName::EventRetracted)
        );
        let parsed = payload_matters
            .then(|| serde_json::from_str(data).ok())
            .flatten()
            .and_then(|json| DiplomaticEvent::from_json(json).ok());
        self.observe(stream_id, id, event_type, parsed.as_ref());
    }

    pub fn knows_event(&self, id: &EventId) -> bool {
        self.events.contains_key(id)
    }

    pub fn knows_actor(&self, id: &ActorId) -> bool {
        self.actors.contains_key(id)
    }

    /// The kinds of a stream's events that still count (not retracted), in order, `None` for
    /// an event that is not a diplomatic event. Corrections, retractions and source reports
    /// are about other events, not steps of the stream's own.
    fn live_kinds(&self, stream_id: &str) -> Vec<Option<KindName>> {
        self.streams
            .get(stream_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.events.get(id))
            .filter(|facts| !facts.retracted)
            .filter(|facts| facts.kind.map(KindName::category) != Some(Category::Referenced))
            .map(|facts| facts.kind)
            .collect()
    }
}

/// Checks the events of one record, in order, against the log as `state` knows it, and takes
/// note of each valid event in `state` so later events of the same record can refer to it.
/// `now` is the recorded time: nothing may have happened after it.
pub fn check_record(
    stream_id: &StreamId,
    events: &[(EventId, DiplomaticEvent)],
    state: &mut LogState,
    now: DateTime<Utc>,
) -> ValidationErrors {
    let mut errors = ValidationErrors::new();
    for (index, (id, event)) in events.iter().enumerate() {
        let before = errors.errors().len();
        let mut check = Check {
            stream_id: stream_id.as_str(),
            field: format!("events[{index}]"),
            state,
            now,
            errors: &mut errors,
        };
        check.event(event, true);
        if errors.errors().len() == before {
            state.observe(stream_id.as_str(), *id, event.kind.name(), Some(event));
        }
    }
    errors
}

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

/// What kind of event a reference must name: a description for the message, and the test on
/// the named event's kind (`None`: not a diplomatic event).
type KindExpectation<'e> = (&'e str, &'e dyn Fn(Option<KindName>) -> bool);

struct Check<'a> {
    stream_id: &'a str,
    /// The path of the event being checked, e.g. `events[2]`.
    field: String,
    state: &'a LogState,
    now: DateTime<Utc>,
    errors: &'a mut ValidationErrors,
}

impl Check<'_> {
    fn at(&self, path: &str) -> String {
        if path.is_empty() {
            self.field.clone()
        } else {
            format!("{}.{path}", self.field)
        }
    }

    fn fail(&mut self, path: &str, error: ValidationError) {
        let field = self.at(path);
        self.errors.push(field, error);
    }

    /// `top_level` is false for a correction's replacement, which is not recorded in a stream
    /// of its own.
    fn event(&mut self, event: &DiplomaticEvent, top_level: bool) {
        let kind = event.kind_field();
        self.envelope(event, &kind);
        if top_level {
            self.stream_fits(event);
        }
        self.actors_known(event, &kind);
        self.events_known(event, &kind);
        self.kind_rules(event, &kind);
        if top_level {
            self.lifecycle(event);
        }
    }

    fn envelope(&mut self, event: &DiplomaticEvent, kind: &str) {
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

    /// The stream must be of the kind's category; actor events go into their actor's stream,
    /// provenance and corrections into the stream of the event they refer to.
    fn stream_fits(&mut self, event: &DiplomaticEvent) {
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

    fn actor(&mut self, path: &str, id: &ActorId, expected: Option<ActorKind>) {
        match self.state.actors.get(id) {
            None => self.fail(path, ValidationError::UnknownActor { id: id.to_string() }),
            Some(facts) => {
                if let Some(expected) = expected
                    && facts.kind != expected
                {
                    self.fail(
                        path,
                        ValidationError::WrongActorKind {
                            id: id.to_string(),
                            expected: kind_name(expected),
                            actual: kind_name(facts.kind),
                        },
                    );
                }
            }
        }
    }

    fn state_actor(&mut self, path: &str, code: &CountryCode) {
        self.actor(path, &ActorId::from(*code), Some(ActorKind::State));
    }

    fn participants(&mut self, path: &str, participants: &[Participant], min: usize) {
        if participants.len() < min {
            self.fail(
                path,
                ValidationError::TooFew {
                    count: participants.len(),
                    min,
                },
            );
        }
        let mut seen = HashSet::new();
        for (index, participant) in participants.iter().enumerate() {
            let at = format!("{path}[{index}]");
            if !seen.insert(&participant.actor) {
                self.fail(
                    &format!("{at}.actor"),
                    ValidationError::Repeated {
                        value: participant.actor.to_string(),
                    },
                );
            }
            self.participant(&at, participant);
        }
    }

    /// One participant at `at`: a registered actor, acting through a registered office.
    fn participant(&mut self, at: &str, participant: &Participant) {
        self.actor(&format!("{at}.actor"), &participant.actor, None);
        if let Some(office) = &participant.acting_as {
            self.actor(&format!("{at}.acting_as"), office, Some(ActorKind::Office));
        }
    }

    fn parties(&mut self, path: &str, parties: &[ActorId], min: usize) {
        if parties.len() < min {
            self.fail(
                path,
                ValidationError::TooFew {
                    count: parties.len(),
                    min,
                },
            );
        }
        let mut seen = HashSet::new();
        for (index, party) in parties.iter().enumerate() {
            if !seen.insert(party) {
                self.fail(
                    &format!("{path}[{index}]"),
                    ValidationError::Repeated {
                        value: party.to_string(),
                    },
                );
            }
            self.actor(&format!("{path}[{index}]"), party, None);
        }
    }

    fn actors_known(&mut self, event: &DiplomaticEvent, kind: &str) {
        use EventKind as K;
        for (index, source) in event.sources.iter().enumerate() {
            self.actor(&format!("sources[{index}].source"), &source.source, None);
        }
        let k = |field: &str| format!("{kind}.{field}");
        match &event.kind {
            K::ActorRegistered(registered) => {
                let actor = &registered.actor;
                if self.state.actors.contains_key(&actor.id) {
                    self.fail(
                        &k("actor.id"),
                        ValidationError::LifecycleViolation {
                            kind: KindName::ActorRegistered.to_string(),
                            stream: self.stream_id.to_owned(),
                            reason: format!("actor {} is already registered", actor.id),
                        },
                    );
                }
                let is_state = actor.id.as_country().is_some();
                if is_state != (actor.kind == ActorKind::State) {
                    self.fail(
                        &k("actor.kind"),
                        ValidationError::Malformed(
                            "states have their alpha-3 code as id, and only states do".into(),
                        ),
                    );
                }
                if actor.name.trim().is_empty() {
                    self.fail(&k("actor.name"), ValidationError::Empty);
                }
                if let Some(wikidata) = &actor.wikidata_id
                    && !(wikidata.starts_with('Q')
                        && wikidata.len() > 1
                        && wikidata[1..].chars().all(|c| c.is_ascii_digit()))
                {
                    self.fail(
                        &k("actor.wikidata_id"),
                        ValidationError::Malformed(format!(
                            "{wikidata:?} is not a Wikidata id such as Q17520"
                        )),
                    );
                }
                if let Some(country) = &actor.country
                    && actor.kind != ActorKind::State
                {
                    self.state_actor(&k("actor.country"), country);
                }
            }
            K::OfficeHolderChanged(change) => {
                self.actor(&k("office"), &change.office, Some(ActorKind::Office));
                if let Some(holder) = &change.holder {
                    self.actor(&k("holder"), holder, Some(ActorKind::Person));
                }
            }
            K::CallHeld(call) => self.participants(&k("participants"), &call.participants, 2),
            K::MeetingHeld(meeting) => {
                self.participants(&k("participants"), &meeting.participants, 2)
            }
            K::NegotiationRoundHeld(round) => {
                self.participants(&k("participants"), &round.participants, 2)
            }
            K::VisitMade(visit) => {
                self.participant(&k("visitor"), &visit.visitor);
                self.state_actor(&k("host"), &visit.host);
            }
            K::StatementIssued(statement) => self.actor(&k("speaker"), &statement.speaker, None),
            K::AgreementStated(agreement) => self.parties(&k("parties"), &agreement.parties, 2),
            K::IntentExpressed(intent) => self.parties(&k("actors"), &intent.actors, 1),
            K::InvitationExtended(invitation) => {
                self.actor(&k("inviter"), &invitation.inviter, None);
                self.actor(&k("invitee"), &invitation.invitee, None);
            }
            K::RequestMade(request) => {
                self.actor(&k("requester"), &request.requester, None);
                self.actor(&k("addressee"), &request.addressee, None);
            }
            K::ProposalRejected(rejection) => {
                self.actor(&k("rejecter"), &rejection.rejecter, None);
                if let Some(proposer) = &rejection.proposer {
                    self.actor(&k("proposer"), proposer, None);
                }
            }
            K::ChannelEstablished(channel) => self.parties(&k("parties"), &channel.parties, 2),
            K::SummitProposed(summit) => {
                self.parties(&k("parties"), &summit.parties, 2);
                if let Some(by) = &summit.proposed_by {
                    self.actor(&k("proposed_by"), by, None);
                }
            }
            K::SummitPreparationAgreed(summit) => {
                let opening = self.state.live_kinds(self.stream_id).is_empty();
                self.parties(&k("parties"), &summit.parties, if opening { 2 } else { 0 });
            }
            K::CommitmentStated(commitment) => self.parties(&k("parties"), &commitment.parties, 1),
            K::CommitmentWithdrawn(withdrawal) => {
                if let Some(by) = &withdrawal.by {
                    self.actor(&k("by"), by, None);
                }
            }
            K::DiplomatsExpelled(expulsion) => {
                self.state_actor(&k("expelling_state"), &expulsion.expelling_state);
                self.state_actor(&k("expelled_state"), &expulsion.expelled_state);
                if expulsion.expelling_state == expulsion.expelled_state {
                    self.fail(
                        &k("expelled_state"),
                        ValidationError::Malformed("a state cannot expel its own diplomats".into()),
                    );
                }
            }
            K::MissionsRestored(restored) => {
                if restored.states.len() != 2 || restored.states[0] == restored.states[1] {
                    self.fail(
                        &k("states"),
                        ValidationError::Malformed("give the two states".into()),
                    );
                }
                for (index, state) in restored.states.iter().enumerate() {
                    self.state_actor(&k(&format!("states[{index}]")), state);
                }
            }
            K::CodedEventReported(coded) => {
                if coded.sources.is_empty() {
                    self.fail(&k("sources"), ValidationError::TooFew { count: 0, min: 1 });
                }
                for (index, actor) in coded.sources.iter().enumerate() {
                    self.actor(&k(&format!("sources[{index}].actor")), &actor.actor, None);
                }
                for (index, actor) in coded.targets.iter().enumerate() {
                    self.actor(&k(&format!("targets[{index}].actor")), &actor.actor, None);
                }
            }
            K::InvitationAnswered(_)
            | K::ChannelSuspended(_)
            | K::ChannelResumed(_)
            | K::ChannelClosed(_)
            | K::SummitScheduled(_)
            | K::SummitHeld(_)
            | K::SummitPostponed(_)
            | K::SummitCancelled(_)
            | K::CommitmentScheduled(_)
            | K::CommitmentFulfilled(_)
            | K::SourceReportAttached(_)
            | K::EventCorrected(_)
            | K::EventRetracted(_) => {}
        }
    }

    /// An event that `path` names: it must be in the log, and (if `expected` is given) one of
    /// those kinds or categories. Whether the log holds it.
    fn event_ref(&mut self, path: &str, id: &EventId, expected: Option<KindExpectation>) -> bool {
        match self.state.events.get(id) {
            None => {
                self.fail(path, ValidationError::UnknownEvent { id: id.to_string() });
                false
            }
            Some(facts) => {
                if let Some((description, accepts)) = expected
                    && !accepts(facts.kind)
                {
                    let actual = facts.label.clone();
                    self.fail(
                        path,
                        ValidationError::WrongEventKind {
                            id: id.to_string(),
                            expected: description.to_owned(),
                            actual,
                        },
                    );
                }
                true
            }
        }
    }

    fn events_known(&mut self, event: &DiplomaticEvent, kind: &str) {
        use EventKind as K;
        for (index, id) in event.evidence.iter().enumerate() {
            self.event_ref(&format!("evidence[{index}]"), id, None);
        }
        let is_occurrence =
            |kind: Option<KindName>| kind.map(KindName::category) == Some(Category::Occurrence);
        let k = |field: &str| format!("{kind}.{field}");
        match &event.kind {
            K::StatementIssued(statement) => {
                if let Some(about) = &statement.about {
                    self.event_ref(&k("about"), about, Some(("an occurrence", &is_occurrence)));
                }
            }
            K::SummitHeld(held) => {
                if let Some(meeting) = &held.meeting {
                    self.event_ref(
                        &k("meeting"),
                        meeting,
                        Some(("a MeetingHeld", &|kind| kind == Some(KindName::MeetingHeld))),
                    );
                }
            }
            K::CommitmentFulfilled(fulfilment) => {
                self.event_ref(
                    &k("fulfilled_by"),
                    &fulfilment.fulfilled_by,
                    Some(("an occurrence", &is_occurrence)),
                );
            }
            K::SourceReportAttached(attached) => {
                self.event_ref(
                    &k("occurrence"),
                    &attached.occurrence,
                    Some(("an occurrence", &is_occurrence)),
                );
            }
            K::EventRetracted(retraction) => {
                let not_referenced = |kind: Option<KindName>| {
                    kind.map(KindName::category) != Some(Category::Referenced)
                };
                if self.event_ref(
                    &k("event"),
                    &retraction.event,
                    Some((
                        "an event that is not itself a correction or report",
                        &not_referenced,
                    )),
                ) && self
                    .state
                    .events
                    .get(&retraction.event)
                    .is_some_and(|facts| facts.retracted)
                {
                    self.fail(
                        &k("event"),
                        ValidationError::LifecycleViolation {
                            kind: KindName::EventRetracted.to_string(),
                            stream: self.stream_id.to_owned(),
                            reason: format!("event {} is already retracted", retraction.event),
                        },
                    );
                }
            }
            K::EventCorrected(correction) => {
                let replacement_kind = correction.replacement.kind.kind_name();
                if correction.replacement.kind.category() == Category::Referenced {
                    self.fail(
                        &k("replacement"),
                        ValidationError::Malformed(
                            "a replacement cannot itself be a correction, retraction or report"
                                .into(),
                        ),
                    );
                } else {
                    let same_kind = move |kind: Option<KindName>| kind == Some(replacement_kind);
                    let description = format!("a {replacement_kind} (the replacement's kind)");
                    self.event_ref(
                        &k("event"),
                        &correction.event,
                        Some((&description, &same_kind)),
                    );
                }
                // The replacement follows the same rules as any event of its kind.
                let inner = self.at(&k("replacement"));
                let outer = std::mem::replace(&mut self.field, inner);
                self.event(&correction.replacement, false);
                self.field = outer;
            }
            _ => {}
        }
    }

    fn required_text(&mut self, path: &str, text: &str) {
        if text.trim().is_empty() {
            self.fail(path, ValidationError::Empty);
        }
    }

    fn kind_rules(&mut self, event: &DiplomaticEvent, kind: &str) {
        use EventKind as K;
        let k = |field: &str| format!("{kind}.{field}");
        match &event.kind {
            K::CallHeld(call) => {
                if let Some(initiator) = &call.initiator {
                    self.initiator(&k("initiator"), initiator, &call.participants);
                }
            }
            K::MeetingHeld(meeting) => {
                if let Some(initiator) = &meeting.initiator {
                    self.initiator(&k("initiator"), initiator, &meeting.participants);
                }
            }
            K::NegotiationRoundHeld(round) if round.round == Some(0) => {
                self.fail(
                    &k("round"),
                    ValidationError::Malformed("rounds are numbered from 1".into()),
                );
            }
            K::VisitMade(visit) => {
                if let Some(until) = &visit.until_day {
                    match NaiveDate::parse_from_str(until, "%Y-%m-%d") {
                        Err(_) => self.fail(
                            &k("until_day"),
                            ValidationError::NotADay {
                                value: until.clone(),
                            },
                        ),
                        Ok(until) => {
                            if let Some(Precision::Day(first)) =
                                event.occurred.as_ref().map(|o| o.precision())
                                && until < first
                            {
                                self.fail(
                                    &k("until_day"),
                                    ValidationError::Malformed(
                                        "ends before the visit began (occurred)".into(),
                                    ),
                                );
                            }
                        }
                    }
                }
            }
            K::AgreementStated(agreement) => self.required_text(&k("subject"), &agreement.subject),
            K::IntentExpressed(intent) => self.required_text(&k("intent"), &intent.intent),
            K::InvitationExtended(invitation) => {
                self.required_text(&k("purpose"), &invitation.purpose);
                if invitation.inviter == invitation.invitee {
                    self.fail(
                        &k("invitee"),
                        ValidationError::Malformed("an actor cannot invite itself".into()),
                    );
                }
            }
            K::RequestMade(request) => self.required_text(&k("request"), &request.request),
            K::ProposalRejected(rejection) => {
                self.required_text(&k("proposal"), &rejection.proposal)
            }
            K::CommitmentStated(commitment) => self.required_text(&k("what"), &commitment.what),
            _ => {}
        }
    }

    /// The initiator must be a participant, the office one acts through, or the state of one.
    fn initiator(&mut self, path: &str, initiator: &ActorId, participants: &[Participant]) {
        let state = self.state;
        let country_of = |id: &ActorId| {
            id.as_country()
                .or_else(|| state.actors.get(id).and_then(|facts| facts.country))
        };
        let matches = participants.iter().any(|participant| {
            let ids = std::iter::once(&participant.actor).chain(participant.acting_as.as_ref());
            ids.into_iter().any(|id| {
                id == initiator
                    || country_of(id).is_some_and(|country| initiator.as_country() == Some(country))
            })
        });
        if !matches {
            self.fail(
                path,
                ValidationError::InitiatorNotParticipant {
                    initiator: initiator.to_string(),
                },
            );
        }
    }

    /// Channels, summits, commitments, invitations and actors move through states; an event
    /// that does not fit the stream's current state is refused.
    fn lifecycle(&mut self, event: &DiplomaticEvent) {
        use EventKind as K;
        use KindName as N;
        let history = self.state.live_kinds(self.stream_id);
        let has = |kind: KindName| history.contains(&Some(kind));
        let last_of = |kinds: &[KindName]| {
            history
                .iter()
                .rev()
                .flatten()
                .find(|kind| kinds.contains(kind))
                .copied()
        };
        let stream = self.stream_id;
        let refusal: Option<String> = match &event.kind {
            K::ActorRegistered(_) if !history.is_empty() => {
                Some("the actor's stream already exists".into())
            }
            K::OfficeHolderChanged(_) if !has(N::ActorRegistered) => {
                Some("the office is not registered".into())
            }
            K::ChannelEstablished(_) if !history.is_empty() => {
                Some("the channel is already established".into())
            }
            K::ChannelSuspended(_) | K::ChannelResumed(_) | K::ChannelClosed(_) => {
                // Where the channel's own steps so far left it.
                let status = history
                    .iter()
                    .rev()
                    .flatten()
                    .find_map(|kind| ChannelStepKind::of(*kind))
                    .map(ChannelStepKind::status_after);
                match (event.kind.kind_name(), status) {
                    (_, None) => Some("no channel was established in this stream".into()),
                    (_, Some(ChannelStatus::Closed)) => Some("the channel is closed".into()),
                    (N::ChannelSuspended, Some(ChannelStatus::Suspended)) => {
                        Some("the channel is already suspended".into())
                    }
                    (N::ChannelResumed, Some(status)) if status != ChannelStatus::Suspended => {
                        Some("the channel is not suspended".into())
                    }
                    _ => None,
                }
            }
            K::SummitProposed(_) if !history.is_empty() => {
                Some("the summit was already proposed or agreed; record its next step".into())
            }
            K::SummitPreparationAgreed(_) if has(N::SummitPreparationAgreed) => {
                Some("preparation was already agreed".into())
            }
            K::SummitScheduled(_)
            | K::SummitHeld(_)
            | K::SummitPostponed(_)
            | K::SummitCancelled(_)
                if history.is_empty() =>
            {
                Some("no summit was proposed or agreed in this stream".into())
            }
            K::SummitPostponed(_) if !has(N::SummitScheduled) => {
                Some("the summit was never scheduled".into())
            }
            K::CommitmentStated(_) if !history.is_empty() => {
                Some("the commitment was already stated".into())
            }
            K::CommitmentScheduled(_) | K::CommitmentFulfilled(_) | K::CommitmentWithdrawn(_) => {
                match last_of(&[
                    N::CommitmentStated,
                    N::CommitmentFulfilled,
                    N::CommitmentWithdrawn,
                ]) {
                    None => Some(format!(
                        "{stream} holds no stated commitment, so there is no open commitment"
                    )),
                    Some(N::CommitmentFulfilled) => Some(format!(
                        "the commitment in {stream} is already fulfilled, not open"
                    )),
                    Some(N::CommitmentWithdrawn) => Some(format!(
                        "the commitment in {stream} was withdrawn, not open"
                    )),
                    _ => None,
                }
            }
            K::InvitationExtended(_) if !history.is_empty() => {
                Some("the invitation was already extended".into())
            }
            K::InvitationAnswered(_) if !has(N::InvitationExtended) => {
                Some("no invitation was extended in this stream".into())
            }
            K::InvitationAnswered(_) if has(N::InvitationAnswered) => {
                Some("the invitation was already answered".into())
            }
            _ => None,
        };
        let refusal = refusal.or_else(|| {
            // Nothing follows a summit that was held or cancelled.
            let ended = last_of(&[N::SummitHeld, N::SummitCancelled]);
            match (&event.kind, ended) {
                (
                    K::SummitPreparationAgreed(_)
                    | K::SummitScheduled(_)
                    | K::SummitHeld(_)
                    | K::SummitPostponed(_)
                    | K::SummitCancelled(_),
                    Some(end),
                ) => Some(format!("the summit has ended ({end})")),
                _ => None,
            }
        });
        if let Some(reason) = refusal {
            self.fail(
                "",
                ValidationError::LifecycleViolation {
                    kind: event.kind.name().to_owned(),
                    stream: stream.to_owned(),
                    reason,
                },
            );
        }
    }
}

fn kind_name(kind: ActorKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
