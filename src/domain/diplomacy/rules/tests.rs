//! Each rule of `check_record`, given a log state, when a record is checked, then the field
//! at fault is named.

use chrono::TimeZone;
use serde_json::{Value, json};
use uuid::Uuid;

use super::streams::{Category, StreamName};
use super::*;
use crate::domain::diplomacy::ActorId;

// ---------------------------------------------------------------------------------------------
// Helpers

/// Asserts that `errors` holds an error at exactly `field` matching the pattern (and guard),
/// and that it is classed as a precondition failure exactly when `precondition` says so.
macro_rules! assert_error {
    ($errors:expr, $field:expr, $pattern:pat $(if $guard:expr)?, precondition: $precondition:expr) => {{
        let errors: &ValidationErrors = &$errors;
        let field: &str = $field;
        let found = errors
            .errors()
            .iter()
            .find(|found| found.field == field && matches!(&found.error, $pattern $(if $guard)?));
        match found {
            None => panic!(
                "expected {} at `{}`, got {:#?}",
                stringify!($pattern),
                field,
                errors.errors()
            ),
            Some(found) => assert_eq!(
                found.error.is_precondition(),
                $precondition,
                "is_precondition() of `{found}`"
            ),
        }
    }};
}

/// An error about the input itself (INVALID_ARGUMENT).
macro_rules! assert_invalid {
    ($errors:expr, $field:expr, $($pattern:tt)+) => {
        assert_error!($errors, $field, $($pattern)+, precondition: false)
    };
}

/// An error about what the log holds (FAILED_PRECONDITION).
macro_rules! assert_precondition {
    ($errors:expr, $field:expr, $($pattern:tt)+) => {
        assert_error!($errors, $field, $($pattern)+, precondition: true)
    };
}

/// The recorded time of every check: 2025-03-01T00:00:00Z.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap()
}

fn id(n: u128) -> EventId {
    EventId::from(Uuid::from_u128(n))
}

fn stream(raw: &str) -> StreamId {
    StreamId::parse(raw).expect("a valid stream id")
}

fn event(json: Value) -> DiplomaticEvent {
    DiplomaticEvent::from_json(json.clone())
        .unwrap_or_else(|(path, message)| panic!("{json} does not parse: {path}: {message}"))
}

/// Checks one record of events given as their wire JSON.
fn check(state: &mut LogState, stream_id: &str, events: Vec<(EventId, Value)>) -> ValidationErrors {
    let events: Vec<_> = events
        .into_iter()
        .map(|(id, json)| (id, event(json)))
        .collect();
    check_record(&stream(stream_id), &events, state, now())
}

/// A record the test's "given" needs: it must pass.
#[track_caller]
fn record(state: &mut LogState, stream_id: &str, events: Vec<(EventId, Value)>) {
    let errors = check(state, stream_id, events);
    assert!(
        errors.is_empty(),
        "the given record in {stream_id} was refused: {errors}"
    );
}

#[track_caller]
fn assert_passes(errors: &ValidationErrors) {
    assert!(errors.is_empty(), "expected no errors, got {errors}");
}

fn registration(actor: Value) -> Value {
    json!({"actor_registered": {"actor": actor}})
}

/// States first: an office, person or organisation names a registered state as its country.
/// Lavrov's country is registered; Rubio's is not, so `USA` reaches him only through his office.
fn founding_actors() -> Vec<Value> {
    vec![
        json!({"id": "RUS", "kind": "STATE", "name": "Russian Federation"}),
        json!({"id": "USA", "kind": "STATE", "name": "United States of America"}),
        json!({"id": "rus.foreign-minister", "kind": "OFFICE",
               "name": "Minister of Foreign Affairs of Russia", "country": "RUS"}),
        json!({"id": "usa.secretary-of-state", "kind": "OFFICE",
               "name": "United States Secretary of State", "country": "USA"}),
        json!({"id": "sergey-lavrov", "kind": "PERSON", "name": "Sergey Lavrov",
               "names": {"ru": "Сергей Лавров"}, "country": "RUS"}),
        json!({"id": "marco-rubio", "kind": "PERSON", "name": "Marco Rubio"}),
        json!({"id": "rus.mfa", "kind": "ORGANISATION",
               "name": "Ministry of Foreign Affairs of Russia", "country": "RUS"}),
    ]
}

/// A log holding the founding actors, each registered through `check_record` in `actor-<id>`.
fn founded() -> LogState {
    let mut state = LogState::new();
    for (n, actor) in founding_actors().into_iter().enumerate() {
        let stream_id = format!("actor-{}", actor["id"].as_str().unwrap());
        record(
            &mut state,
            &stream_id,
            vec![(id(0x1000 + n as u128), registration(actor))],
        );
    }
    state
}

const CALL: u128 = 0xca11;
const CALL_STREAM: &str = "occurrence-2025-02-15-rubio-lavrov-call";
const MEETING: u128 = 0x3ee7;
const MEETING_STREAM: &str = "occurrence-2025-02-27-istanbul-expert-talks";
const CHANNEL: &str = "channel-rus-usa.foreign-ministers";
const SUMMIT: &str = "summit-rus-usa.2025";
const COMMITMENT: &str = "commitment-rus-usa.missions";
const INVITATION: &str = "invitation-lavrov-rubio.moscow";

fn mfa_report() -> Value {
    json!([{"source": "rus.mfa", "quotes": [{"text": "Стороны договорились"}]}])
}

/// The call of 15 February 2025, as the Russian foreign ministry reported it.
fn founding_call() -> Value {
    json!({
        "occurred": {"day": "2025-02-15", "time_zone": "Europe/Moscow"},
        "sources": [{
            "source": "rus.mfa",
            "published_at": "2025-02-15T15:00:00Z",
            "language": "ru",
            "url": "https://mid.ru/ru/foreign_policy/news/",
            "quotes": [{"text": "Договорились о регулярных контактах"}],
            "claims": [{"kind": "AGREEMENT", "key": "regular-contacts"}]
        }],
        "call_held": {
            "participants": [
                {"actor": "sergey-lavrov", "acting_as": "rus.foreign-minister"},
                {"actor": "marco-rubio", "acting_as": "usa.secretary-of-state"}
            ],
            "initiator": "USA",
            "topics": ["ukraine-settlement"]
        }
    })
}

/// The founding call with other participants and initiator.
fn call_with(participants: Value, initiator: Option<&str>) -> Value {
    let mut call = founding_call();
    call["call_held"]["participants"] = participants;
    match initiator {
        Some(initiator) => call["call_held"]["initiator"] = json!(initiator),
        None => {
            call["call_held"]
                .as_object_mut()
                .unwrap()
                .remove("initiator");
        }
    }
    call
}

/// An event of `kind` (its proto field name) with `payload`, dated 20 February and reported
/// by the Russian foreign ministry.
fn step(kind: &str, payload: Value) -> Value {
    let mut event = json!({"occurred": {"day": "2025-02-20"}, "sources": mfa_report()});
    event[kind] = payload;
    event
}

fn expert_meeting() -> Value {
    step(
        "meeting_held",
        json!({"participants": [{"actor": "RUS"}, {"actor": "USA"}],
               "format": "THIRD_COUNTRY", "level": "EXPERTS",
               "place": {"name": "Istanbul", "country": "TUR"}}),
    )
}

fn agreement(parties: Value) -> Value {
    step(
        "agreement_stated",
        json!({"parties": parties, "kind": "REGULAR_CONTACTS",
               "subject": "to keep in regular contact"}),
    )
}

fn channel_established() -> Value {
    step(
        "channel_established",
        json!({"parties": ["rus.foreign-minister", "usa.secretary-of-state"],
               "purpose": "regular contacts between the ministers"}),
    )
}

fn summit_proposed() -> Value {
    step(
        "summit_proposed",
        json!({"parties": ["RUS", "USA"], "proposed_by": "USA"}),
    )
}

fn summit_scheduled() -> Value {
    step("summit_scheduled", json!({"date": {"month": "2025-06"}}))
}

fn commitment_stated() -> Value {
    step(
        "commitment_stated",
        json!({"parties": ["RUS", "USA"],
               "what": "hold expert talks on the work of the embassies",
               "due_text": "very soon"}),
    )
}

fn fulfilled_by(event: EventId) -> Value {
    step(
        "commitment_fulfilled",
        json!({"fulfilled_by": event.to_string()}),
    )
}

fn invitation_extended() -> Value {
    step(
        "invitation_extended",
        json!({"inviter": "sergey-lavrov", "invitee": "marco-rubio",
               "purpose": "a visit to Moscow"}),
    )
}

fn invitation_answered() -> Value {
    step("invitation_answered", json!({"answer": "ACCEPTED"}))
}

fn retraction(event: EventId) -> Value {
    json!({"event_retracted": {"event": event.to_string(), "reason": "recorded by mistake"}})
}

fn correction(event: EventId, replacement: Value) -> Value {
    json!({"event_corrected": {"event": event.to_string(), "replacement": replacement}})
}

/// The founding actors, the founding call and the expert meeting.
fn with_call_and_meeting() -> LogState {
    let mut state = founded();
    record(&mut state, CALL_STREAM, vec![(id(CALL), founding_call())]);
    record(
        &mut state,
        MEETING_STREAM,
        vec![(id(MEETING), expert_meeting())],
    );
    state
}

// ---------------------------------------------------------------------------------------------
// The founding call, and events learned within a record

#[test]
fn the_founding_actors_can_be_registered_each_in_its_own_stream() {
    // Given an empty log, when each founding actor is registered in `actor-<id>`
    let state = founded();
    // then each is known.
    for actor in founding_actors() {
        let actor_id = ActorId::parse(actor["id"].as_str().unwrap()).unwrap();
        assert!(state.knows_actor(&actor_id), "{actor_id}");
    }
}

#[test]
fn a_valid_founding_call_passes() {
    // Given the founding actors
    let mut state = founded();
    // when the call is recorded in its occurrence stream
    let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), founding_call())]);
    // then it passes and the log knows it.
    assert_passes(&errors);
    assert!(state.knows_event(&id(CALL)));
}

#[test]
fn a_later_event_of_the_same_record_can_rest_on_an_earlier_one() {
    // Given the founding actors
    let mut state = founded();
    // when a record holds the call and an agreement resting on it by id
    let mut agreed = agreement(json!(["RUS", "USA"]));
    agreed["evidence"] = json!([id(CALL).to_string()]);
    let errors = check(
        &mut state,
        CALL_STREAM,
        vec![(id(CALL), founding_call()), (id(0xa9ee), agreed)],
    );
    // then both pass: the state learned the call before the agreement was checked.
    assert_passes(&errors);
    assert!(state.knows_event(&id(0xa9ee)));
}

#[test]
fn an_actor_learned_by_observing_the_log_can_be_named() {
    // Given a log state built by observing the founding registrations (as the server does)
    let mut state = LogState::new();
    for (n, actor) in founding_actors().into_iter().enumerate() {
        let stream_id = format!("actor-{}", actor["id"].as_str().unwrap());
        let registered = event(registration(actor));
        state.observe(
            &stream_id,
            id(0x1000 + n as u128),
            "ActorRegistered",
            Some(&registered),
        );
    }
    // when the call is checked
    let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), founding_call())]);
    // then it passes.
    assert_passes(&errors);
}

#[test]
fn an_event_that_failed_is_not_learned_by_later_events_of_the_record() {
    // Given the founding actors
    let mut state = founded();
    // when a call with one participant is followed by a statement about it
    let lonely = call_with(json!([{"actor": "sergey-lavrov"}]), None);
    let statement = step(
        "statement_issued",
        json!({"speaker": "rus.mfa", "form": "READOUT", "about": id(CALL).to_string()}),
    );
    let errors = check(
        &mut state,
        CALL_STREAM,
        vec![(id(CALL), lonely), (id(0x57a7), statement)],
    );
    // then the statement names an event the log does not hold.
    assert_invalid!(
        errors,
        "events[0].call_held.participants",
        ValidationError::TooFew { .. }
    );
    assert_precondition!(
        errors,
        "events[1].statement_issued.about",
        ValidationError::UnknownEvent { .. }
    );
    assert!(!state.knows_event(&id(CALL)));
}

// ---------------------------------------------------------------------------------------------
// Actors named by events

#[test]
fn an_unknown_participant_is_refused() {
    let mut state = founded();
    let call = call_with(
        json!([{"actor": "sergey-lavrov"}, {"actor": "steve-witkoff"}]),
        None,
    );
    let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), call)]);
    assert_precondition!(
        errors,
        "events[0].call_held.participants[1].actor",
        ValidationError::UnknownActor { id } if id == "steve-witkoff"
    );
}

#[test]
fn an_unknown_office_acted_through_is_refused() {
    let mut state = founded();
    let call = call_with(
        json!([{"actor": "sergey-lavrov", "acting_as": "rus.prime-minister"},
               {"actor": "marco-rubio"}]),
        None,
    );
    let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), call)]);
    assert_precondition!(
        errors,
        "events[0].call_held.participants[0].acting_as",
        ValidationError::UnknownActor { id } if id == "rus.prime-minister"
    );
}

#[test]
fn an_unknown_source_is_refused() {
    let mut state = founded();
    let mut call = founding_call();
    call["sources"][0]["source"] = json!("tass");
    let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), call)]);
    assert_precondition!(
        errors,
        "events[0].sources[0].source",
        ValidationError::UnknownActor { id } if id == "tass"
    );
}

#[test]
fn an_unknown_party_is_refused() {
    let mut state = founded();
    let errors = check(
        &mut state,
        CALL_STREAM,
        vec![(id(0xa9ee), agreement(json!(["RUS", "UKR"])))],
    );
    assert_precondition!(
        errors,
        "events[0].agreement_stated.parties[1]",
        ValidationError::UnknownActor { id } if id == "UKR"
    );
}

#[test]
fn acting_as_a_person_is_refused() {
    let mut state = founded();
    let call = call_with(
        json!([{"actor": "sergey-lavrov", "acting_as": "marco-rubio"},
               {"actor": "USA"}]),
        None,
    );
    let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), call)]);
    assert_precondition!(
        errors,
        "events[0].call_held.participants[0].acting_as",
        ValidationError::WrongActorKind { id, expected, actual }
            if id == "marco-rubio" && expected == "OFFICE" && actual == "PERSON"
    );
}

#[test]
fn an_unknown_visitor_is_named_at_the_visitor_field() {
    // `visitor` is a single participant, not a list: its path has no index.
    let mut state = founded();
    let visit = step(
        "visit_made",
        json!({"visitor": {"actor": "steve-witkoff"}, "host": "RUS"}),
    );
    let errors = check(
        &mut state,
        "occurrence-witkoff-visit",
        vec![(id(0x7151), visit)],
    );
    assert_precondition!(
        errors,
        "events[0].visit_made.visitor.actor",
        ValidationError::UnknownActor { .. }
    );
}

#[test]
fn a_visit_to_an_unregistered_state_is_refused() {
    let mut state = founded();
    let visit = step(
        "visit_made",
        json!({"visitor": {"actor": "sergey-lavrov", "acting_as": "rus.foreign-minister"},
               "host": "TUR"}),
    );
    let errors = check(
        &mut state,
        "occurrence-lavrov-visit",
        vec![(id(0x7151), visit)],
    );
    assert_precondition!(
        errors,
        "events[0].visit_made.host",
        ValidationError::UnknownActor { id } if id == "TUR"
    );
}

// ---------------------------------------------------------------------------------------------
// Participants and initiators

#[test]
fn a_call_with_one_participant_is_refused() {
    let mut state = founded();
    let call = call_with(json!([{"actor": "sergey-lavrov"}]), None);
    let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), call)]);
    assert_invalid!(
        errors,
        "events[0].call_held.participants",
        ValidationError::TooFew { count: 1, min: 2 }
    );
}

#[test]
fn a_repeated_participant_is_refused() {
    let mut state = founded();
    let call = call_with(
        json!([{"actor": "sergey-lavrov"},
               {"actor": "sergey-lavrov", "acting_as": "rus.foreign-minister"}]),
        None,
    );
    let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), call)]);
    assert_invalid!(
        errors,
        "events[0].call_held.participants[1].actor",
        ValidationError::Repeated { value } if value == "sergey-lavrov"
    );
}

#[test]
fn an_agreement_of_one_party_is_refused() {
    let mut state = founded();
    let errors = check(
        &mut state,
        CALL_STREAM,
        vec![(id(0xa9ee), agreement(json!(["RUS"])))],
    );
    assert_invalid!(
        errors,
        "events[0].agreement_stated.parties",
        ValidationError::TooFew { count: 1, min: 2 }
    );
}

#[test]
fn an_initiator_who_is_not_a_participant_is_refused() {
    let mut state = founded();
    let call = call_with(
        json!([{"actor": "sergey-lavrov", "acting_as": "rus.foreign-minister"},
               {"actor": "marco-rubio", "acting_as": "usa.secretary-of-state"}]),
        Some("rus.mfa"),
    );
    let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), call)]);
    assert_invalid!(
        errors,
        "events[0].call_held.initiator",
        ValidationError::InitiatorNotParticipant { initiator } if initiator == "rus.mfa"
    );
}

#[test]
fn the_initiator_may_be_a_participating_person() {
    let mut state = founded();
    let call = call_with(
        json!([{"actor": "sergey-lavrov"}, {"actor": "marco-rubio"}]),
        Some("marco-rubio"),
    );
    assert_passes(&check(&mut state, CALL_STREAM, vec![(id(CALL), call)]));
}

#[test]
fn the_initiator_may_be_the_office_a_participant_acts_through() {
    let mut state = founded();
    let call = call_with(
        json!([{"actor": "sergey-lavrov"},
               {"actor": "marco-rubio", "acting_as": "usa.secretary-of-state"}]),
        Some("usa.secretary-of-state"),
    );
    assert_passes(&check(&mut state, CALL_STREAM, vec![(id(CALL), call)]));
}

#[test]
fn the_initiator_may_be_the_state_of_the_office_a_participant_acts_through() {
    // Rubio has no registered country; his office belongs to USA.
    let mut state = founded();
    let call = call_with(
        json!([{"actor": "sergey-lavrov"},
               {"actor": "marco-rubio", "acting_as": "usa.secretary-of-state"}]),
        Some("USA"),
    );
    assert_passes(&check(&mut state, CALL_STREAM, vec![(id(CALL), call)]));
}

#[test]
fn the_initiator_may_be_the_registered_state_of_a_participating_person() {
    // Lavrov is registered with country RUS and acts through no office here.
    let mut state = founded();
    let call = call_with(
        json!([{"actor": "sergey-lavrov"}, {"actor": "marco-rubio"}]),
        Some("RUS"),
    );
    assert_passes(&check(&mut state, CALL_STREAM, vec![(id(CALL), call)]));
}

#[test]
fn a_state_no_participant_belongs_to_is_not_the_initiator() {
    // Rubio, without his office, has no registered country: USA reaches no participant.
    let mut state = founded();
    let call = call_with(
        json!([{"actor": "sergey-lavrov"}, {"actor": "marco-rubio"}]),
        Some("USA"),
    );
    let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), call)]);
    assert_invalid!(
        errors,
        "events[0].call_held.initiator",
        ValidationError::InitiatorNotParticipant { initiator } if initiator == "USA"
    );
}

#[test]
fn a_meeting_initiator_follows_the_same_rule() {
    let mut state = founded();
    let mut meeting = expert_meeting();
    meeting["meeting_held"]["initiator"] = json!("rus.mfa");
    let errors = check(&mut state, MEETING_STREAM, vec![(id(MEETING), meeting)]);
    assert_invalid!(
        errors,
        "events[0].meeting_held.initiator",
        ValidationError::InitiatorNotParticipant { .. }
    );
}

// ---------------------------------------------------------------------------------------------
// Commitments

#[test]
fn a_fulfilment_in_a_stream_without_a_stated_commitment_is_refused() {
    let mut state = with_call_and_meeting();
    let errors = check(
        &mut state,
        COMMITMENT,
        vec![(id(0xf1), fulfilled_by(id(MEETING)))],
    );
    assert_precondition!(
        errors,
        "events[0].commitment_fulfilled",
        ValidationError::LifecycleViolation { kind, stream, .. }
            if kind == "CommitmentFulfilled" && stream == COMMITMENT
    );
}

#[test]
fn a_fulfilment_of_a_fulfilled_commitment_is_refused() {
    let mut state = with_call_and_meeting();
    record(
        &mut state,
        COMMITMENT,
        vec![
            (id(0xc0), commitment_stated()),
            (id(0xf1), fulfilled_by(id(MEETING))),
        ],
    );
    let errors = check(
        &mut state,
        COMMITMENT,
        vec![(id(0xf2), fulfilled_by(id(MEETING)))],
    );
    assert_precondition!(
        errors,
        "events[0].commitment_fulfilled",
        ValidationError::LifecycleViolation { reason, .. } if reason.contains("fulfilled")
    );
}

#[test]
fn a_fulfilment_of_a_withdrawn_commitment_is_refused() {
    let mut state = with_call_and_meeting();
    record(
        &mut state,
        COMMITMENT,
        vec![
            (id(0xc0), commitment_stated()),
            (id(0xd0), step("commitment_withdrawn", json!({"by": "USA"}))),
        ],
    );
    let errors = check(
        &mut state,
        COMMITMENT,
        vec![(id(0xf1), fulfilled_by(id(MEETING)))],
    );
    assert_precondition!(
        errors,
        "events[0].commitment_fulfilled",
        ValidationError::LifecycleViolation { reason, .. } if reason.contains("withdrawn")
    );
}

#[test]
fn a_stated_commitment_fulfilled_by_a_meeting_passes() {
    let mut state = with_call_and_meeting();
    record(
        &mut state,
        COMMITMENT,
        vec![
            (id(0xc0), commitment_stated()),
            (
                id(0xc1),
                step(
                    "commitment_scheduled",
                    json!({"date": {"day": "2025-02-27"}}),
                ),
            ),
        ],
    );
    let errors = check(
        &mut state,
        COMMITMENT,
        vec![(id(0xf1), fulfilled_by(id(MEETING)))],
    );
    assert_passes(&errors);
}

#[test]
fn a_fulfilment_by_an_unknown_event_is_refused() {
    let mut state = with_call_and_meeting();
    record(
        &mut state,
        COMMITMENT,
        vec![(id(0xc0), commitment_stated())],
    );
    let errors = check(
        &mut state,
        COMMITMENT,
        vec![(id(0xf1), fulfilled_by(id(0xdead)))],
    );
    assert_precondition!(
        errors,
        "events[0].commitment_fulfilled.fulfilled_by",
        ValidationError::UnknownEvent { id: unknown } if *unknown == id(0xdead).to_string()
    );
}

#[test]
fn a_fulfilment_by_an_event_that_is_not_an_occurrence_is_refused() {
    let mut state = with_call_and_meeting();
    record(&mut state, CHANNEL, vec![(id(0xc4), channel_established())]);
    record(
        &mut state,
        COMMITMENT,
        vec![(id(0xc0), commitment_stated())],
    );
    let errors = check(
        &mut state,
        COMMITMENT,
        vec![(id(0xf1), fulfilled_by(id(0xc4)))],
    );
    assert_precondition!(
        errors,
        "events[0].commitment_fulfilled.fulfilled_by",
        ValidationError::WrongEventKind { actual, .. } if actual == "ChannelEstablished"
    );
}

#[test]
fn a_fulfilment_by_an_event_outside_the_diplomatic_vocabulary_is_refused() {
    // Given an event appended through the generic log, which the state knows by kind name only
    let mut state = with_call_and_meeting();
    state.observe("notes-1", id(0x407e), "AnalystNote", None);
    record(
        &mut state,
        COMMITMENT,
        vec![(id(0xc0), commitment_stated())],
    );
    let errors = check(
        &mut state,
        COMMITMENT,
        vec![(id(0xf1), fulfilled_by(id(0x407e)))],
    );
    assert_precondition!(
        errors,
        "events[0].commitment_fulfilled.fulfilled_by",
        ValidationError::WrongEventKind { actual, .. } if actual == "AnalystNote"
    );
}

#[test]
fn a_fulfilment_by_a_coded_record_is_refused() {
    // Given a coded record of a consultation between the two states
    let mut state = founded();
    let mut coded = step(
        "coded_event_reported",
        json!({"sources": [{"actor": "RUS"}], "targets": [{"actor": "USA"}]}),
    );
    coded["coding"] = json!({"plover_type": "CONSULT"});
    record(&mut state, "occurrence-plover-1", vec![(id(0xc0de), coded)]);
    record(
        &mut state,
        COMMITMENT,
        vec![(id(0xc0), commitment_stated())],
    );
    // When it is given as what fulfilled the commitment, then it is refused
    let errors = check(
        &mut state,
        COMMITMENT,
        vec![(id(0xf1), fulfilled_by(id(0xc0de)))],
    );
    assert_precondition!(
        errors,
        "events[0].commitment_fulfilled.fulfilled_by",
        ValidationError::WrongEventKind { actual, expected, .. }
            if actual == "CodedEventReported" && expected.contains("not a coded record")
    );
}

#[test]
fn a_commitment_stated_twice_is_refused() {
    let mut state = founded();
    record(
        &mut state,
        COMMITMENT,
        vec![(id(0xc0), commitment_stated())],
    );
    let errors = check(
        &mut state,
        COMMITMENT,
        vec![(id(0xc1), commitment_stated())],
    );
    assert_precondition!(
        errors,
        "events[0].commitment_stated",
        ValidationError::LifecycleViolation { kind, .. } if kind == "CommitmentStated"
    );
}

#[test]
fn a_commitment_whose_statement_was_retracted_is_not_open() {
    let mut state = with_call_and_meeting();
    record(
        &mut state,
        COMMITMENT,
        vec![
            (id(0xc0), commitment_stated()),
            (id(0xc1), retraction(id(0xc0))),
        ],
    );
    let errors = check(
        &mut state,
        COMMITMENT,
        vec![(id(0xf1), fulfilled_by(id(MEETING)))],
    );
    assert_precondition!(
        errors,
        "events[0].commitment_fulfilled",
        ValidationError::LifecycleViolation { kind, .. } if kind == "CommitmentFulfilled"
    );
}

#[test]
fn a_commitment_whose_statement_was_retracted_can_be_stated_anew() {
    // Projections ignore the retracted statement: the stream holds no commitment.
    let mut state = founded();
    record(
        &mut state,
        COMMITMENT,
        vec![
            (id(0xc0), commitment_stated()),
            (id(0xc1), retraction(id(0xc0))),
        ],
    );
    let errors = check(
        &mut state,
        COMMITMENT,
        vec![(id(0xc2), commitment_stated())],
    );
    assert_passes(&errors);
}

#[test]
fn a_commitment_with_a_blank_step_is_refused() {
    let mut state = founded();
    let mut stated = commitment_stated();
    stated["commitment_stated"]["what"] = json!("   ");
    let errors = check(&mut state, COMMITMENT, vec![(id(0xc0), stated)]);
    assert_invalid!(
        errors,
        "events[0].commitment_stated.what",
        ValidationError::Empty
    );
}

// ---------------------------------------------------------------------------------------------
// Corrections and retractions

#[test]
fn a_correction_of_an_unknown_event_is_refused() {
    let mut state = with_call_and_meeting();
    let errors = check(
        &mut state,
        CALL_STREAM,
        vec![(id(0xc044), correction(id(0xdead), founding_call()))],
    );
    assert_precondition!(
        errors,
        "events[0].event_corrected.event",
        ValidationError::UnknownEvent { .. }
    );
}

#[test]
fn a_retraction_of_an_unknown_event_is_refused() {
    let mut state = with_call_and_meeting();
    let errors = check(
        &mut state,
        CALL_STREAM,
        vec![(id(0x4e7), retraction(id(0xdead)))],
    );
    assert_precondition!(
        errors,
        "events[0].event_retracted.event",
        ValidationError::UnknownEvent { .. }
    );
}

#[test]
fn a_valid_correction_in_the_events_stream_passes() {
    let mut state = with_call_and_meeting();
    let mut corrected = founding_call();
    corrected["occurred"] = json!({"day": "2025-02-14", "time_zone": "Europe/Moscow"});
    let errors = check(
        &mut state,
        CALL_STREAM,
        vec![(id(0xc044), correction(id(CALL), corrected))],
    );
    assert_passes(&errors);
}

#[test]
fn a_correction_with_a_replacement_of_another_kind_is_refused() {
    let mut state = with_call_and_meeting();
    let errors = check(
        &mut state,
        CALL_STREAM,
        vec![(id(0xc044), correction(id(CALL), expert_meeting()))],
    );
    assert_precondition!(
        errors,
        "events[0].event_corrected.event",
        ValidationError::WrongEventKind { actual, .. } if actual == "CallHeld"
    );
}

#[test]
fn a_correction_outside_the_corrected_events_stream_is_refused() {
    let mut state = with_call_and_meeting();
    let errors = check(
        &mut state,
        MEETING_STREAM,
        vec![(id(0xc044), correction(id(CALL), founding_call()))],
    );
    assert_invalid!(
        errors,
        "stream_id",
        ValidationError::WrongStream { kind, expected }
            if kind == "EventCorrected" && expected.contains(CALL_STREAM)
    );
}

#[test]
fn a_replacement_breaking_a_rule_is_reported_under_the_replacement() {
    let mut state = with_call_and_meeting();
    let mut replacement = call_with(json!([{"actor": "sergey-lavrov"}]), None);
    replacement["sources"][0]["quotes"][0]["text"] = json!("");
    let errors = check(
        &mut state,
        CALL_STREAM,
        vec![(id(0xc044), correction(id(CALL), replacement))],
    );
    assert_invalid!(
        errors,
        "events[0].event_corrected.replacement.call_held.participants",
        ValidationError::TooFew { count: 1, min: 2 }
    );
    assert_invalid!(
        errors,
        "events[0].event_corrected.replacement.sources[0].quotes[0].text",
        ValidationError::Empty
    );
}

#[test]
fn a_replacement_naming_an_unknown_actor_is_reported_under_the_replacement() {
    let mut state = with_call_and_meeting();
    let replacement = call_with(
        json!([{"actor": "sergey-lavrov"}, {"actor": "steve-witkoff"}]),
        None,
    );
    let errors = check(
        &mut state,
        CALL_STREAM,
        vec![(id(0xc044), correction(id(CALL), replacement))],
    );
    assert_precondition!(
        errors,
        "events[0].event_corrected.replacement.call_held.participants[1].actor",
        ValidationError::UnknownActor { .. }
    );
}

#[test]
fn a_replacement_that_is_itself_a_retraction_is_refused() {
    let mut state = with_call_and_meeting();
    let errors = check(
        &mut state,
        CALL_STREAM,
        vec![(id(0xc044), correction(id(CALL), retraction(id(CALL))))],
    );
    assert_invalid!(
        errors,
        "events[0].event_corrected.replacement",
        ValidationError::Malformed(_)
    );
}

#[test]
fn retracting_an_event_twice_is_refused() {
    let mut state = with_call_and_meeting();
    record(
        &mut state,
        CALL_STREAM,
        vec![(id(0x4e7), retraction(id(CALL)))],
    );
    let errors = check(
        &mut state,
        CALL_STREAM,
        vec![(id(0x4e8), retraction(id(CALL)))],
    );
    assert_precondition!(
        errors,
        "events[0].event_retracted.event",
        ValidationError::LifecycleViolation { kind, .. } if kind == "EventRetracted"
    );
}

#[test]
fn retracting_an_event_twice_in_one_record_is_refused() {
    let mut state = with_call_and_meeting();
    let errors = check(
        &mut state,
        CALL_STREAM,
        vec![
            (id(0x4e7), retraction(id(CALL))),
            (id(0x4e8), retraction(id(CALL))),
        ],
    );
    assert_eq!(errors.errors().len(), 1, "{errors}");
    assert_precondition!(
        errors,
        "events[1].event_retracted.event",
        ValidationError::LifecycleViolation { .. }
    );
}

#[test]
fn retracting_a_retraction_is_refused() {
    let mut state = with_call_and_meeting();
    record(
        &mut state,
        CALL_STREAM,
        vec![(id(0x4e7), retraction(id(CALL)))],
    );
    let errors = check(
        &mut state,
        CALL_STREAM,
        vec![(id(0x4e8), retraction(id(0x4e7)))],
    );
    assert_precondition!(
        errors,
        "events[0].event_retracted.event",
        ValidationError::WrongEventKind { actual, .. } if actual == "EventRetracted"
    );
}

// ---------------------------------------------------------------------------------------------
// Dates

#[test]
fn an_event_in_the_future_of_the_recorded_time_is_refused() {
    let mut state = founded();
    let mut call = founding_call();
    call["occurred"] = json!({"instant": "2025-03-01T00:00:01Z"});
    let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), call)]);
    assert_invalid!(
        errors,
        "events[0].occurred",
        ValidationError::InFuture { value, .. } if value.starts_with("2025-03-01T00:00:01")
    );
}

#[test]
fn a_future_day_is_refused() {
    let mut state = founded();
    let mut call = founding_call();
    call["occurred"] = json!({"day": "2025-03-02"});
    let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), call)]);
    assert_invalid!(
        errors,
        "events[0].occurred",
        ValidationError::InFuture { .. }
    );
}

#[test]
fn a_day_that_has_begun_somewhere_is_not_in_the_future() {
    // 1 March without a time zone has begun in UTC+14 at 2025-02-28T10:00Z.
    let mut state = founded();
    let mut call = founding_call();
    call["occurred"] = json!({"day": "2025-03-01"});
    assert_passes(&check(&mut state, CALL_STREAM, vec![(id(CALL), call)]));
}

#[test]
fn an_event_before_1800_is_refused() {
    let mut state = founded();
    let mut call = founding_call();
    call["occurred"] = json!({"day": "1799-12-31", "time_zone": "UTC"});
    let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), call)]);
    assert_invalid!(
        errors,
        "events[0].occurred",
        ValidationError::TooEarly { value, .. } if value.starts_with("1799-12-31")
    );
}

#[test]
fn an_event_of_a_month_before_1800_is_refused() {
    let mut state = founded();
    let mut call = founding_call();
    call["occurred"] = json!({"month": "1799-12"});
    let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), call)]);
    assert_invalid!(
        errors,
        "events[0].occurred",
        ValidationError::TooEarly { .. }
    );
}

#[test]
fn an_event_on_the_first_day_of_1800_is_accepted() {
    // "Not before 1800": the first day of 1800 is in 1800, in whatever time zone it is read.
    for occurred in [
        json!({"day": "1800-01-01"}),
        json!({"day": "1800-01-01", "time_zone": "Europe/Moscow"}),
        json!({"month": "1800-01"}),
        json!({"instant": "1800-01-01T00:00:00Z"}),
    ] {
        let mut state = founded();
        let mut call = founding_call();
        call["occurred"] = occurred.clone();
        let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), call)]);
        assert!(errors.is_empty(), "{occurred}: {errors}");
    }
}

#[test]
fn a_report_published_in_the_future_is_refused() {
    let mut state = founded();
    let mut call = founding_call();
    call["sources"][0]["published_at"] = json!("2025-03-02T09:00:00Z");
    let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), call)]);
    assert_invalid!(
        errors,
        "events[0].sources[0].published_at",
        ValidationError::InFuture { .. }
    );
}

#[test]
fn a_call_without_a_date_is_refused() {
    let mut state = founded();
    let mut call = founding_call();
    call.as_object_mut().unwrap().remove("occurred");
    let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), call)]);
    assert_invalid!(errors, "events[0].occurred", ValidationError::Missing);
}

#[test]
fn a_channel_step_without_a_date_is_refused() {
    let mut state = founded();
    let mut established = channel_established();
    established.as_object_mut().unwrap().remove("occurred");
    let errors = check(&mut state, CHANNEL, vec![(id(0xc4), established)]);
    assert_invalid!(errors, "events[0].occurred", ValidationError::Missing);
}

// ---------------------------------------------------------------------------------------------
// Sources, quotes, claims and evidence

#[test]
fn an_empty_quote_is_refused() {
    let mut state = founded();
    let mut call = founding_call();
    call["sources"][0]["quotes"][0]["text"] = json!("");
    let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), call)]);
    assert_invalid!(
        errors,
        "events[0].sources[0].quotes[0].text",
        ValidationError::Empty
    );
}

#[test]
fn a_quote_of_white_space_is_refused() {
    let mut state = founded();
    let mut agreed = agreement(json!(["RUS", "USA"]));
    agreed["sources"][0]["quotes"][0]["text"] = json!(" \t\n ");
    let errors = check(
        &mut state,
        CALL_STREAM,
        vec![(id(CALL), founding_call()), (id(0xa9ee), agreed)],
    );
    assert_invalid!(
        errors,
        "events[1].sources[0].quotes[0].text",
        ValidationError::Empty
    );
}

#[test]
fn a_call_without_sources_is_refused() {
    let mut state = founded();
    let mut call = founding_call();
    call.as_object_mut().unwrap().remove("sources");
    let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), call)]);
    assert_invalid!(
        errors,
        "events[0].sources",
        ValidationError::TooFew { count: 0, min: 1 }
    );
}

#[test]
fn an_invitation_without_sources_is_refused() {
    let mut state = founded();
    let mut extended = invitation_extended();
    extended.as_object_mut().unwrap().remove("sources");
    let errors = check(&mut state, INVITATION, vec![(id(0x1a), extended)]);
    assert_invalid!(
        errors,
        "events[0].sources",
        ValidationError::TooFew { count: 0, min: 1 }
    );
}

#[test]
fn a_source_url_that_is_not_http_is_refused() {
    let mut state = founded();
    let mut call = founding_call();
    call["sources"][0]["url"] = json!("ftp://mid.ru/readout.txt");
    let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), call)]);
    assert_invalid!(
        errors,
        "events[0].sources[0].url",
        ValidationError::Malformed(_)
    );
}

#[test]
fn a_claim_key_repeated_within_a_source_is_refused() {
    let mut state = founded();
    let mut call = founding_call();
    call["sources"][0]["claims"] = json!([
        {"kind": "AGREEMENT", "key": "regular-contacts"},
        {"kind": "TOPIC", "key": "regular-contacts"}
    ]);
    let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), call)]);
    assert_invalid!(
        errors,
        "events[0].sources[0].claims[1].key",
        ValidationError::Repeated { value } if value == "regular-contacts"
    );
}

#[test]
fn evidence_naming_an_unknown_event_is_refused() {
    let mut state = founded();
    let mut agreed = agreement(json!(["RUS", "USA"]));
    agreed["evidence"] = json!([id(0xdead).to_string()]);
    let errors = check(&mut state, CALL_STREAM, vec![(id(0xa9ee), agreed)]);
    assert_precondition!(
        errors,
        "events[0].evidence[0]",
        ValidationError::UnknownEvent { .. }
    );
}

#[test]
fn evidence_naming_an_event_twice_is_refused() {
    let mut state = with_call_and_meeting();
    let mut agreed = agreement(json!(["RUS", "USA"]));
    agreed["evidence"] = json!([id(CALL).to_string(), id(CALL).to_string()]);
    let errors = check(&mut state, CALL_STREAM, vec![(id(0xa9ee), agreed)]);
    assert_invalid!(
        errors,
        "events[0].evidence[1]",
        ValidationError::Repeated { .. }
    );
}

#[test]
fn a_lifecycle_step_resting_on_nothing_is_refused() {
    let mut state = founded();
    let mut established = channel_established();
    established.as_object_mut().unwrap().remove("sources");
    let errors = check(&mut state, CHANNEL, vec![(id(0xc4), established)]);
    assert_invalid!(errors, "events[0].evidence", ValidationError::Malformed(_));
}

#[test]
fn a_lifecycle_step_may_rest_on_evidence_alone() {
    let mut state = with_call_and_meeting();
    let mut established = channel_established();
    established.as_object_mut().unwrap().remove("sources");
    established["evidence"] = json!([id(CALL).to_string()]);
    assert_passes(&check(&mut state, CHANNEL, vec![(id(0xc4), established)]));
}

#[test]
fn a_statement_about_an_event_that_is_not_an_occurrence_is_refused() {
    let mut state = founded();
    record(&mut state, CHANNEL, vec![(id(0xc4), channel_established())]);
    let statement = step(
        "statement_issued",
        json!({"speaker": "rus.mfa", "about": id(0xc4).to_string()}),
    );
    let errors = check(
        &mut state,
        "occurrence-mfa-comment",
        vec![(id(0x57a7), statement)],
    );
    assert_precondition!(
        errors,
        "events[0].statement_issued.about",
        ValidationError::WrongEventKind { actual, .. } if actual == "ChannelEstablished"
    );
}

// ---------------------------------------------------------------------------------------------
// Which stream an event goes into

#[test]
fn a_call_in_a_channel_stream_is_refused() {
    let mut state = founded();
    let errors = check(&mut state, "channel-x", vec![(id(CALL), founding_call())]);
    assert_invalid!(
        errors,
        "stream_id",
        ValidationError::WrongStream { kind, expected }
            if kind == "CallHeld" && expected.contains("occurrence-")
    );
}

#[test]
fn a_call_in_a_stream_without_a_category_is_refused() {
    let mut state = founded();
    let errors = check(&mut state, "calls-1", vec![(id(CALL), founding_call())]);
    assert_invalid!(
        errors,
        "stream_id",
        ValidationError::WrongStream { kind, .. } if kind == "CallHeld"
    );
}

#[test]
fn a_call_in_a_stream_whose_name_has_spaces_is_refused() {
    let mut state = founded();
    let errors = check(
        &mut state,
        "occurrence-rubio lavrov call",
        vec![(id(CALL), founding_call())],
    );
    assert_invalid!(errors, "stream_id", ValidationError::WrongStream { .. });
}

#[test]
fn an_actor_registered_in_another_actors_stream_is_refused() {
    let mut state = founded();
    let errors = check(
        &mut state,
        "actor-FRA",
        vec![(
            id(0x1100),
            registration(json!({"id": "UKR", "kind": "STATE", "name": "Ukraine"})),
        )],
    );
    assert_invalid!(
        errors,
        "stream_id",
        ValidationError::WrongStream { kind, expected }
            if kind == "ActorRegistered" && expected.contains("actor-UKR")
    );
}

#[test]
fn an_office_holder_change_goes_into_the_offices_stream() {
    let mut state = founded();
    let change = json!({"occurred": {"day": "2025-01-21"},
                        "office_holder_changed": {"office": "usa.secretary-of-state",
                                                  "holder": "marco-rubio"}});
    assert_passes(&check(
        &mut state,
        "actor-usa.secretary-of-state",
        vec![(id(0x1100), change.clone())],
    ));
    let errors = check(&mut state, "actor-marco-rubio", vec![(id(0x1101), change)]);
    assert_invalid!(
        errors,
        "stream_id",
        ValidationError::WrongStream { kind, .. } if kind == "OfficeHolderChanged"
    );
}

#[test]
fn a_source_report_in_the_occurrences_stream_passes() {
    let mut state = with_call_and_meeting();
    let report = json!({
        "sources": [{"source": "rus.mfa", "quotes": [{"text": "Состоялся телефонный разговор"}]}],
        "source_report_attached": {"occurrence": id(CALL).to_string()}
    });
    assert_passes(&check(&mut state, CALL_STREAM, vec![(id(0x5e1), report)]));
}

#[test]
fn a_source_report_in_another_stream_is_refused() {
    let mut state = with_call_and_meeting();
    let report = json!({
        "sources": mfa_report(),
        "source_report_attached": {"occurrence": id(CALL).to_string()}
    });
    let errors = check(&mut state, MEETING_STREAM, vec![(id(0x5e1), report)]);
    assert_invalid!(
        errors,
        "stream_id",
        ValidationError::WrongStream { kind, .. } if kind == "SourceReportAttached"
    );
}

#[test]
fn a_source_report_without_a_source_is_refused() {
    let mut state = with_call_and_meeting();
    let report = json!({"source_report_attached": {"occurrence": id(CALL).to_string()}});
    let errors = check(&mut state, CALL_STREAM, vec![(id(0x5e1), report)]);
    assert_invalid!(
        errors,
        "events[0].sources",
        ValidationError::TooFew { count: 0, min: 1 }
    );
}

#[test]
fn a_source_report_of_an_event_that_is_not_an_occurrence_is_refused() {
    let mut state = founded();
    record(&mut state, CHANNEL, vec![(id(0xc4), channel_established())]);
    let report = json!({
        "sources": mfa_report(),
        "source_report_attached": {"occurrence": id(0xc4).to_string()}
    });
    let errors = check(&mut state, CHANNEL, vec![(id(0x5e1), report)]);
    assert_precondition!(
        errors,
        "events[0].source_report_attached.occurrence",
        ValidationError::WrongEventKind { .. }
    );
}

#[test]
fn stream_names_are_a_category_and_a_name() {
    let name = StreamName::parse("commitment-rus-usa.missions_1").expect("a stream name");
    assert_eq!(name.category, Category::Commitment);
    assert_eq!(name.name, "rus-usa.missions_1");
    assert_eq!(
        StreamName::parse("actor-RUS").map(|name| name.category),
        Some(Category::Actor)
    );
}

#[test]
fn stream_names_without_a_known_category_or_a_valid_name_are_refused() {
    for refused in [
        "commitment-".to_owned(),
        "commitment".to_owned(),
        "foo-bar".to_owned(),
        "Commitment-x".to_owned(),
        "commitment-rus usa".to_owned(),
        "commitment-rus/usa".to_owned(),
        format!("commitment-{}", "x".repeat(StreamName::MAX_NAME_CHARS + 1)),
    ] {
        assert_eq!(StreamName::parse(&refused), None, "{refused}");
    }
}

#[test]
fn a_stream_name_of_the_maximum_length_is_accepted() {
    let longest = format!("summit-{}", "x".repeat(StreamName::MAX_NAME_CHARS));
    assert!(StreamName::parse(&longest).is_some());
}

// ---------------------------------------------------------------------------------------------
// Channels

#[test]
fn a_channel_may_be_established_suspended_resumed_and_closed() {
    let mut state = founded();
    let errors = check(
        &mut state,
        CHANNEL,
        vec![
            (id(0xc4), channel_established()),
            (
                id(0xc5),
                step("channel_suspended", json!({"reason": "sanctions"})),
            ),
            (id(0xc6), step("channel_resumed", json!({}))),
            (id(0xc7), step("channel_closed", json!({}))),
        ],
    );
    assert_passes(&errors);
}

#[test]
fn a_channel_step_before_the_channel_is_established_is_refused() {
    let mut state = founded();
    let errors = check(
        &mut state,
        CHANNEL,
        vec![(id(0xc5), step("channel_suspended", json!({})))],
    );
    assert_precondition!(
        errors,
        "events[0].channel_suspended",
        ValidationError::LifecycleViolation { kind, .. } if kind == "ChannelSuspended"
    );
}

#[test]
fn a_channel_established_twice_is_refused() {
    let mut state = founded();
    record(&mut state, CHANNEL, vec![(id(0xc4), channel_established())]);
    let errors = check(&mut state, CHANNEL, vec![(id(0xc5), channel_established())]);
    assert_precondition!(
        errors,
        "events[0].channel_established",
        ValidationError::LifecycleViolation { kind, .. } if kind == "ChannelEstablished"
    );
}

#[test]
fn a_channel_suspended_twice_is_refused() {
    let mut state = founded();
    record(
        &mut state,
        CHANNEL,
        vec![
            (id(0xc4), channel_established()),
            (id(0xc5), step("channel_suspended", json!({}))),
        ],
    );
    let errors = check(
        &mut state,
        CHANNEL,
        vec![(id(0xc6), step("channel_suspended", json!({})))],
    );
    assert_precondition!(
        errors,
        "events[0].channel_suspended",
        ValidationError::LifecycleViolation { reason, .. } if reason.contains("already suspended")
    );
}

#[test]
fn a_channel_resumed_when_not_suspended_is_refused() {
    let mut state = founded();
    record(&mut state, CHANNEL, vec![(id(0xc4), channel_established())]);
    let errors = check(
        &mut state,
        CHANNEL,
        vec![(id(0xc6), step("channel_resumed", json!({})))],
    );
    assert_precondition!(
        errors,
        "events[0].channel_resumed",
        ValidationError::LifecycleViolation { kind, .. } if kind == "ChannelResumed"
    );
}

#[test]
fn nothing_is_recorded_in_a_closed_channel() {
    let mut closed = founded();
    record(
        &mut closed,
        CHANNEL,
        vec![
            (id(0xc4), channel_established()),
            (id(0xc7), step("channel_closed", json!({}))),
        ],
    );
    for kind in [
        "channel_suspended",
        "channel_resumed",
        "channel_closed",
        "channel_established",
    ] {
        let mut state = closed.clone();
        let next = if kind == "channel_established" {
            channel_established()
        } else {
            step(kind, json!({}))
        };
        let errors = check(&mut state, CHANNEL, vec![(id(0xc8), next)]);
        assert_precondition!(
            errors,
            &format!("events[0].{kind}"),
            ValidationError::LifecycleViolation { .. }
        );
    }
}

#[test]
fn a_channel_of_one_party_is_refused() {
    let mut state = founded();
    let mut established = channel_established();
    established["channel_established"]["parties"] = json!(["rus.foreign-minister"]);
    let errors = check(&mut state, CHANNEL, vec![(id(0xc4), established)]);
    assert_invalid!(
        errors,
        "events[0].channel_established.parties",
        ValidationError::TooFew { count: 1, min: 2 }
    );
}

// ---------------------------------------------------------------------------------------------
// Summits

#[test]
fn a_summit_may_be_proposed_prepared_scheduled_postponed_and_held() {
    let mut state = with_call_and_meeting();
    let errors = check(
        &mut state,
        SUMMIT,
        vec![
            (id(0x50), summit_proposed()),
            (id(0x51), step("summit_preparation_agreed", json!({}))),
            (id(0x52), summit_scheduled()),
            (
                id(0x53),
                step(
                    "summit_postponed",
                    json!({"new_date": {"month": "2025-08"}}),
                ),
            ),
            (id(0x54), summit_scheduled()),
            (
                id(0x55),
                step("summit_held", json!({"meeting": id(MEETING).to_string()})),
            ),
        ],
    );
    assert_passes(&errors);
}

#[test]
fn a_summit_may_be_proposed_and_prepared_with_a_place_and_an_expected_period() {
    let mut state = founded();
    let geneva = json!({"name": "Geneva", "country": "CHE"});
    let errors = check(
        &mut state,
        SUMMIT,
        vec![
            (
                id(0x50),
                step(
                    "summit_proposed",
                    json!({"parties": ["RUS", "USA"], "place": geneva,
                           "expected": {"month": "2025-05"}, "expected_text": "in the spring"}),
                ),
            ),
            (
                id(0x51),
                step(
                    "summit_preparation_agreed",
                    json!({"place": geneva, "expected": {"day": "2025-05-20"}}),
                ),
            ),
        ],
    );
    assert_passes(&errors);
}

#[test]
fn a_blank_expected_period_or_a_bad_expected_month_names_its_field() {
    let mut state = founded();
    let errors = check(
        &mut state,
        SUMMIT,
        vec![(
            id(0x50),
            step(
                "summit_proposed",
                json!({"parties": ["RUS", "USA"], "expected_text": "  "}),
            ),
        )],
    );
    assert_invalid!(
        errors,
        "events[0].summit_proposed.expected_text",
        ValidationError::Empty
    );
    for (kind, month) in [
        ("summit_proposed", json!({"month": "2025-13"})),
        ("summit_preparation_agreed", json!({"day": "2025-02-30"})),
    ] {
        let event = step(kind, json!({"parties": ["RUS", "USA"], "expected": month}));
        let (path, message) = DiplomaticEvent::from_json(event).unwrap_err();
        assert_eq!(path, format!("{kind}.expected"), "{message}");
        assert!(message.contains("is not a"), "{message}");
    }
}

#[test]
fn a_summit_step_before_any_proposal_is_refused() {
    let founded = founded();
    for kind in [
        "summit_scheduled",
        "summit_held",
        "summit_postponed",
        "summit_cancelled",
    ] {
        let mut state = founded.clone();
        let next = if kind == "summit_scheduled" {
            summit_scheduled()
        } else {
            step(kind, json!({}))
        };
        let errors = check(&mut state, SUMMIT, vec![(id(0x52), next)]);
        assert_precondition!(
            errors,
            &format!("events[0].{kind}"),
            ValidationError::LifecycleViolation { .. }
        );
    }
}

#[test]
fn a_summit_step_after_its_only_proposal_was_retracted_is_refused() {
    let mut state = founded();
    record(
        &mut state,
        SUMMIT,
        vec![
            (id(0x50), summit_proposed()),
            (id(0x5f), retraction(id(0x50))),
        ],
    );
    let errors = check(&mut state, SUMMIT, vec![(id(0x52), summit_scheduled())]);
    assert_precondition!(
        errors,
        "events[0].summit_scheduled",
        ValidationError::LifecycleViolation { kind, .. } if kind == "SummitScheduled"
    );
}

#[test]
fn a_summit_preparation_opening_the_stream_names_two_parties() {
    let mut state = founded();
    let errors = check(
        &mut state,
        SUMMIT,
        vec![(
            id(0x51),
            step("summit_preparation_agreed", json!({"parties": ["RUS"]})),
        )],
    );
    assert_invalid!(
        errors,
        "events[0].summit_preparation_agreed.parties",
        ValidationError::TooFew { count: 1, min: 2 }
    );
}

#[test]
fn a_summit_postponed_without_a_schedule_is_refused() {
    let mut state = founded();
    record(&mut state, SUMMIT, vec![(id(0x50), summit_proposed())]);
    let errors = check(
        &mut state,
        SUMMIT,
        vec![(id(0x53), step("summit_postponed", json!({})))],
    );
    assert_precondition!(
        errors,
        "events[0].summit_postponed",
        ValidationError::LifecycleViolation { kind, .. } if kind == "SummitPostponed"
    );
}

#[test]
fn a_summit_proposed_twice_is_refused() {
    let mut state = founded();
    record(&mut state, SUMMIT, vec![(id(0x50), summit_proposed())]);
    let errors = check(&mut state, SUMMIT, vec![(id(0x51), summit_proposed())]);
    assert_precondition!(
        errors,
        "events[0].summit_proposed",
        ValidationError::LifecycleViolation { kind, .. } if kind == "SummitProposed"
    );
}

#[test]
fn nothing_follows_a_summit_that_was_held_or_cancelled() {
    for end in ["summit_held", "summit_cancelled"] {
        let mut ended = founded();
        record(
            &mut ended,
            SUMMIT,
            vec![
                (id(0x50), summit_proposed()),
                (id(0x52), summit_scheduled()),
                (id(0x55), step(end, json!({}))),
            ],
        );
        for kind in [
            "summit_proposed",
            "summit_preparation_agreed",
            "summit_scheduled",
            "summit_held",
            "summit_postponed",
            "summit_cancelled",
        ] {
            let mut state = ended.clone();
            let next = match kind {
                "summit_proposed" => summit_proposed(),
                "summit_scheduled" => summit_scheduled(),
                _ => step(kind, json!({})),
            };
            let errors = check(&mut state, SUMMIT, vec![(id(0x56), next)]);
            assert_precondition!(
                errors,
                &format!("events[0].{kind}"),
                ValidationError::LifecycleViolation { .. }
            );
        }
    }
}

#[test]
fn a_summit_held_as_a_call_is_refused() {
    let mut state = with_call_and_meeting();
    record(&mut state, SUMMIT, vec![(id(0x50), summit_proposed())]);
    let errors = check(
        &mut state,
        SUMMIT,
        vec![(
            id(0x55),
            step("summit_held", json!({"meeting": id(CALL).to_string()})),
        )],
    );
    assert_precondition!(
        errors,
        "events[0].summit_held.meeting",
        ValidationError::WrongEventKind { actual, .. } if actual == "CallHeld"
    );
}

// ---------------------------------------------------------------------------------------------
// Invitations

#[test]
fn an_invitation_may_be_extended_and_answered() {
    let mut state = founded();
    let errors = check(
        &mut state,
        INVITATION,
        vec![
            (id(0x1a), invitation_extended()),
            (id(0x1b), invitation_answered()),
        ],
    );
    assert_passes(&errors);
}

#[test]
fn an_invitation_answered_twice_is_refused() {
    let mut state = founded();
    record(
        &mut state,
        INVITATION,
        vec![
            (id(0x1a), invitation_extended()),
            (id(0x1b), invitation_answered()),
        ],
    );
    let errors = check(
        &mut state,
        INVITATION,
        vec![(id(0x1c), invitation_answered())],
    );
    assert_precondition!(
        errors,
        "events[0].invitation_answered",
        ValidationError::LifecycleViolation { reason, .. } if reason.contains("already answered")
    );
}

#[test]
fn an_answer_without_an_invitation_is_refused() {
    let mut state = founded();
    let errors = check(
        &mut state,
        INVITATION,
        vec![(id(0x1b), invitation_answered())],
    );
    assert_precondition!(
        errors,
        "events[0].invitation_answered",
        ValidationError::LifecycleViolation { kind, .. } if kind == "InvitationAnswered"
    );
}

#[test]
fn an_actor_inviting_itself_is_refused() {
    let mut state = founded();
    let mut extended = invitation_extended();
    extended["invitation_extended"]["invitee"] = json!("sergey-lavrov");
    let errors = check(&mut state, INVITATION, vec![(id(0x1a), extended)]);
    assert_invalid!(
        errors,
        "events[0].invitation_extended.invitee",
        ValidationError::Malformed(_)
    );
}

// ---------------------------------------------------------------------------------------------
// Actors

#[test]
fn an_actor_registered_twice_is_refused() {
    let mut state = founded();
    let errors = check(
        &mut state,
        "actor-RUS",
        vec![(
            id(0x1100),
            registration(json!({"id": "RUS", "kind": "STATE", "name": "Russia"})),
        )],
    );
    assert_precondition!(
        errors,
        "events[0].actor_registered.actor.id",
        ValidationError::LifecycleViolation { kind, .. } if kind == "ActorRegistered"
    );
    assert_precondition!(
        errors,
        "events[0].actor_registered",
        ValidationError::LifecycleViolation { .. }
    );
}

#[test]
fn an_office_of_an_unregistered_state_is_refused() {
    let mut state = founded();
    let errors = check(
        &mut state,
        "actor-ukr.foreign-minister",
        vec![(
            id(0x1100),
            registration(json!({"id": "ukr.foreign-minister", "kind": "OFFICE",
                                "name": "Minister of Foreign Affairs of Ukraine",
                                "country": "UKR"})),
        )],
    );
    assert_precondition!(
        errors,
        "events[0].actor_registered.actor.country",
        ValidationError::UnknownActor { id } if id == "UKR"
    );
}

#[test]
fn only_states_have_alpha3_ids() {
    let mut state = founded();
    let errors = check(
        &mut state,
        "actor-tur",
        vec![(
            id(0x1100),
            registration(json!({"id": "tur", "kind": "STATE", "name": "Türkiye"})),
        )],
    );
    assert_invalid!(
        errors,
        "events[0].actor_registered.actor.kind",
        ValidationError::Malformed(_)
    );
    let errors = check(
        &mut state,
        "actor-TUR",
        vec![(
            id(0x1101),
            registration(json!({"id": "TUR", "kind": "ORGANISATION", "name": "Türkiye"})),
        )],
    );
    assert_invalid!(
        errors,
        "events[0].actor_registered.actor.kind",
        ValidationError::Malformed(_)
    );
}

#[test]
fn an_actor_without_a_name_or_with_a_bad_wikidata_id_is_refused() {
    let mut state = founded();
    let errors = check(
        &mut state,
        "actor-TUR",
        vec![(
            id(0x1100),
            registration(json!({"id": "TUR", "kind": "STATE", "name": " ",
                                "wikidata_id": "43"})),
        )],
    );
    assert_invalid!(
        errors,
        "events[0].actor_registered.actor.name",
        ValidationError::Empty
    );
    assert_invalid!(
        errors,
        "events[0].actor_registered.actor.wikidata_id",
        ValidationError::Malformed(_)
    );
}

#[test]
fn an_office_holder_must_be_a_person() {
    let mut state = founded();
    let change = json!({"occurred": {"day": "2025-01-21"},
                        "office_holder_changed": {"office": "usa.secretary-of-state",
                                                  "holder": "USA"}});
    let errors = check(
        &mut state,
        "actor-usa.secretary-of-state",
        vec![(id(0x1100), change)],
    );
    assert_precondition!(
        errors,
        "events[0].office_holder_changed.holder",
        ValidationError::WrongActorKind { expected, actual, .. }
            if expected == "PERSON" && actual == "STATE"
    );
}

#[test]
fn a_holder_change_of_an_unregistered_office_is_refused() {
    let mut state = founded();
    let change = json!({"occurred": {"day": "2025-01-21"},
                        "office_holder_changed": {"office": "usa.president"}});
    let errors = check(
        &mut state,
        "actor-usa.president",
        vec![(id(0x1100), change)],
    );
    assert_precondition!(
        errors,
        "events[0].office_holder_changed.office",
        ValidationError::UnknownActor { .. }
    );
    assert_precondition!(
        errors,
        "events[0].office_holder_changed",
        ValidationError::LifecycleViolation { kind, .. } if kind == "OfficeHolderChanged"
    );
}

// ---------------------------------------------------------------------------------------------
// Coding

#[test]
fn a_cameo_code_that_is_not_digits_is_refused() {
    let mut state = founded();
    let mut call = founding_call();
    call["coding"] = json!({"cameo": "41a"});
    let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), call)]);
    assert_invalid!(
        errors,
        "events[0].coding.cameo",
        ValidationError::Malformed(_)
    );
}

#[test]
fn an_unknown_plover_type_is_refused() {
    let mut state = founded();
    let mut call = founding_call();
    call["coding"] = json!({"cameo": "041", "plover_type": "HUG"});
    let errors = check(&mut state, CALL_STREAM, vec![(id(CALL), call)]);
    assert_invalid!(
        errors,
        "events[0].coding.plover_type",
        ValidationError::Malformed(message) if message.contains("HUG")
    );
    assert_eq!(errors.errors().len(), 1, "{errors}");
}

#[test]
fn an_externally_coded_event_without_a_code_is_refused() {
    let mut state = founded();
    let coded = step(
        "coded_event_reported",
        json!({"sources": [{"actor": "RUS"}], "targets": [{"actor": "USA"}],
               "event_text": "agreed cooperate"}),
    );
    let errors = check(&mut state, "occurrence-plover-1", vec![(id(0xc0de), coded)]);
    assert_invalid!(errors, "events[0].coding", ValidationError::Malformed(_));
}

#[test]
fn gdelt_measures_out_of_their_ranges_are_refused_and_those_in_range_pass() {
    let mut state = founded();
    let mut coded = step(
        "coded_event_reported",
        json!({"sources": [{"actor": "RUS"}], "goldstein_scale": -10.0, "quad_class": 4,
               "average_tone": 0.0, "mentions": 0,
               "action_place": {"name": "Moscow", "latitude": 90.0, "longitude": -180.0}}),
    );
    coded["coding"] = json!({"cameo": "190"});
    let errors = check(
        &mut state,
        "occurrence-gdelt-1",
        vec![(id(0x9d1), coded.clone())],
    );
    assert!(errors.is_empty(), "{errors}");

    coded["coded_event_reported"]["quad_class"] = json!(5);
    coded["coded_event_reported"]["goldstein_scale"] = json!(10.5);
    coded["coded_event_reported"]["action_place"]["latitude"] = json!(91.0);
    let errors = check(&mut state, "occurrence-gdelt-2", vec![(id(0x9d2), coded)]);
    for field in ["goldstein_scale", "quad_class", "action_place.latitude"] {
        assert_invalid!(
            errors,
            &format!("events[0].coded_event_reported.{field}"),
            ValidationError::Malformed(_)
        );
    }
    assert_eq!(errors.errors().len(), 3, "{errors}");
}

// ---------------------------------------------------------------------------------------------
// Other kinds' own rules

#[test]
fn a_visit_ending_before_it_began_is_refused() {
    let mut state = founded();
    let visit = step(
        "visit_made",
        json!({"visitor": {"actor": "sergey-lavrov", "acting_as": "rus.foreign-minister"},
               "host": "USA", "until_day": "2025-02-19"}),
    );
    let errors = check(
        &mut state,
        "occurrence-lavrov-visit",
        vec![(id(0x7151), visit)],
    );
    assert_invalid!(
        errors,
        "events[0].visit_made.until_day",
        ValidationError::Malformed(_)
    );
}

#[test]
fn a_negotiation_round_numbered_zero_is_refused() {
    let mut state = founded();
    let round = step(
        "negotiation_round_held",
        json!({"participants": [{"actor": "RUS"}, {"actor": "USA"}],
               "track": "rus-usa-missions", "round": 0}),
    );
    let errors = check(&mut state, "occurrence-round-0", vec![(id(0x40), round)]);
    assert_invalid!(
        errors,
        "events[0].negotiation_round_held.round",
        ValidationError::Malformed(_)
    );
}

#[test]
fn a_state_expelling_its_own_diplomats_is_refused() {
    let mut state = founded();
    let expulsion = step(
        "diplomats_expelled",
        json!({"expelling_state": "RUS", "expelled_state": "RUS"}),
    );
    let errors = check(&mut state, "presence-RUS-USA", vec![(id(0xe1), expulsion)]);
    assert_invalid!(
        errors,
        "events[0].diplomats_expelled.expelled_state",
        ValidationError::Malformed(_)
    );
}

#[test]
fn missions_are_restored_between_two_states() {
    let mut state = founded();
    let restored = step("missions_restored", json!({"states": ["RUS"]}));
    let errors = check(&mut state, "presence-RUS-USA", vec![(id(0xe2), restored)]);
    assert_invalid!(
        errors,
        "events[0].missions_restored.states",
        ValidationError::Malformed(_)
    );
    let restored = step("missions_restored", json!({"states": ["RUS", "USA"]}));
    assert_passes(&check(
        &mut state,
        "presence-RUS-USA",
        vec![(id(0xe3), restored)],
    ));
}

// ---------------------------------------------------------------------------------------------
// Errors are collected

#[test]
fn every_fault_of_a_record_is_reported_not_only_the_first() {
    // Given the founding actors
    let mut state = founded();
    // when one record holds a call with four faults and an agreement with two
    let mut call = call_with(json!([{"actor": "sergey-lavrov"}]), None);
    call["occurred"] = json!({"day": "2026-01-01"});
    call["sources"][0]["quotes"][0]["text"] = json!("");
    call["coding"] = json!({"cameo": "41a"});
    let mut agreed = agreement(json!(["RUS", "UKR"]));
    agreed["agreement_stated"]["subject"] = json!("");
    let errors = check(
        &mut state,
        CALL_STREAM,
        vec![(id(CALL), call), (id(0xa9ee), agreed)],
    );
    // then every one is named.
    assert_invalid!(
        errors,
        "events[0].occurred",
        ValidationError::InFuture { .. }
    );
    assert_invalid!(
        errors,
        "events[0].call_held.participants",
        ValidationError::TooFew { .. }
    );
    assert_invalid!(
        errors,
        "events[0].sources[0].quotes[0].text",
        ValidationError::Empty
    );
    assert_invalid!(
        errors,
        "events[0].coding.cameo",
        ValidationError::Malformed(_)
    );
    assert_precondition!(
        errors,
        "events[1].agreement_stated.parties[1]",
        ValidationError::UnknownActor { .. }
    );
    assert_invalid!(
        errors,
        "events[1].agreement_stated.subject",
        ValidationError::Empty
    );
    assert_eq!(errors.errors().len(), 6, "{errors}");
}
