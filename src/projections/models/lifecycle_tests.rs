//! Lifecycles through the models, event by event: summits leave the pending list when held,
//! commitments are fulfilled by a later meeting, channels go dormant, are suspended and
//! resumed; corrections move dates and retractions take contacts out.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::domain::EventId;
use crate::domain::diplomacy::DiplomaticEvent;
use crate::projections::models::channels::Channels;
use crate::projections::models::commitments::Commitments;
use crate::projections::models::common::Records;
use crate::projections::models::divergence::Divergence;
use crate::projections::models::relations::Relations;
use crate::projections::models::relations::rows::pair_of;
use crate::projections::models::summits::Summits;
use crate::projections::models::timeline::Timeline;
use crate::projections::testing::{founding_facts, replay_settling, sorted_rows};
use crate::projections::{Fact, Model};

/// Builds facts after the founding scenario's, at increasing positions.
pub(super) struct Log {
    pub(super) facts: Vec<Fact>,
}

impl Log {
    pub(super) fn founding() -> Self {
        Self {
            facts: founding_facts(),
        }
    }

    fn id(&self, stream: &str, kind: &str) -> EventId {
        self.facts
            .iter()
            .find(|f| f.stream_id == stream && f.event.kind.name() == kind)
            .map(|f| f.event_id)
            .unwrap_or_else(|| panic!("no {kind} in {stream}"))
    }

    pub(super) fn push(&mut self, stream: &str, json: Value) -> EventId {
        let event =
            DiplomaticEvent::from_json(json).unwrap_or_else(|e| panic!("a valid event: {e:?}"));
        let id = EventId::generate();
        self.facts.push(Fact {
            position: self.facts.len() as u64 + 1,
            stream_id: stream.to_owned(),
            event_id: id,
            recorded_at: "2025-06-01T00:00:00Z".parse().unwrap(),
            event,
        });
        id
    }

    pub(super) fn model<M: Model>(&self) -> M {
        let mut model = M::default();
        for fact in &self.facts {
            model.apply(fact);
        }
        // Whatever the path, the rows must survive a reload.
        let again = M::from_rows(model.rows()).expect("rows load");
        assert_eq!(sorted_rows(&again), sorted_rows(&model));
        // And a runner that keeps only a working set in memory writes the same rows.
        for batch in [1, 3, self.facts.len()] {
            assert_eq!(
                replay_settling::<M>(&self.facts, batch),
                sorted_rows(&model),
                "{} with a working set, {batch} facts per batch",
                M::NAME
            );
        }
        model
    }
}

pub(super) fn at(time: &str) -> DateTime<Utc> {
    time.parse().unwrap()
}

fn experts_meeting(day: &str) -> Value {
    json!({
        "occurred": {"day": day},
        "sources": [{"source": "rus.mfa", "quotes": [{"text": "Встреча экспертов состоялась"}]}],
        "meeting_held": {"participants": [{"actor": "RUS"}, {"actor": "USA"}], "format": "THIRD_COUNTRY", "level": "EXPERTS"}
    })
}

fn ministers_call(day: &str) -> Value {
    json!({
        "occurred": {"day": day},
        "sources": [{"source": "rus.mfa", "quotes": [{"text": "Состоялся разговор"}]}],
        "call_held": {"participants": [{"actor": "sergey-lavrov", "acting_as": "rus.foreign-minister"},
                                       {"actor": "marco-rubio", "acting_as": "usa.secretary-of-state"}],
                      "level": "MINISTERS"}
    })
}

#[test]
fn a_summit_scheduled_then_held_leaves_the_pending_list() {
    let mut log = Log::founding();
    let stream = "summit-rus-usa-2025";
    let prepared = log.id(stream, "SummitPreparationAgreed");
    log.push(stream, json!({"occurred": {"day": "2025-07-01"}, "evidence": [prepared],
        "summit_scheduled": {"date": {"day": "2025-08-15"}, "place": {"name": "Anchorage", "country": "USA"}}}));
    let summits: Summits = log.model();
    let view = summits.summits().next().unwrap().view().unwrap();
    assert_eq!((view.stage.as_str(), view.pending), ("SCHEDULED", true));
    assert_eq!(view.scheduled_for.unwrap().to_string(), "2025-08-15");
    assert_eq!(view.place.unwrap().name.as_deref(), Some("Anchorage"));

    log.push(
        stream,
        json!({"occurred": {"day": "2025-08-15"}, "evidence": [prepared], "summit_held": {}}),
    );
    let summits: Summits = log.model();
    let view = summits.summits().next().unwrap().view().unwrap();
    assert_eq!((view.stage.as_str(), view.pending), ("HELD", false));
    let relations: Relations = log.model();
    let pair = pair_of(&relations.row("pair:RUS+USA").unwrap())
        .unwrap()
        .view(
            at("2025-09-01T00:00:00Z"),
            Duration::days(90),
            Records::Both,
        )
        .expect("a view");
    assert!(pair.pending_summits.is_empty());
}

#[test]
fn a_commitment_is_fulfilled_by_a_later_meeting_and_lapses_if_not() {
    let mut log = Log::founding();
    let stream = "commitment-rus-usa-missions-expert-meeting";
    let commitments: Commitments = log.model();
    let open = commitments.commitments().next().unwrap();
    assert_eq!(
        open.view(at("2025-03-01T00:00:00Z")).unwrap().status,
        "PENDING"
    );

    let meeting = log.push(
        "occurrence-2025-02-27-istanbul",
        experts_meeting("2025-02-27"),
    );
    log.push(
        stream,
        json!({"occurred": {"day": "2025-02-27"}, "evidence": [meeting],
        "commitment_fulfilled": {"fulfilled_by": meeting}}),
    );
    let commitments: Commitments = log.model();
    let view = commitments
        .commitments()
        .next()
        .unwrap()
        .view(at("2025-03-01T00:00:00Z"))
        .unwrap();
    assert_eq!(view.status, "FULFILLED");
    assert_eq!(view.fulfilled_by, Some(meeting));

    // A commitment with a due date that passes unfulfilled lapses.
    log.push("commitment-visa-talks", json!({"occurred": {"day": "2025-03-01"}, "sources": [{"source": "rus.mfa"}],
        "commitment_stated": {"parties": ["RUS", "USA"], "what": "Talks on visas", "due": {"month": "2025-04"}}}));
    let commitments: Commitments = log.model();
    let visas = commitments
        .commitments()
        .find(|c| c.key == "commitment-visa-talks")
        .unwrap();
    assert_eq!(
        visas.view(at("2025-04-15T00:00:00Z")).unwrap().status,
        "PENDING"
    );
    assert_eq!(
        visas.view(at("2025-05-02T00:00:00Z")).unwrap().status,
        "LAPSED"
    );
}

#[test]
fn a_channel_goes_dormant_is_suspended_resumed_and_closed() {
    let mut log = Log::founding();
    let stream = "channel-rus-usa-foreign-ministers";
    let key = "rus.foreign-minister+usa.secretary-of-state";
    let status = |log: &Log, when: &str| {
        let channels: Channels = log.model();
        channels
            .channels()
            .find(|c| c.key == key)
            .unwrap()
            .view(at(when), Duration::days(90))
            .status
    };
    assert_eq!(status(&log, "2025-03-01T00:00:00Z"), "ACTIVE");
    assert_eq!(status(&log, "2025-06-01T00:00:00Z"), "DORMANT");
    // A new call wakes it.
    log.push("occurrence-2025-05-20-call", ministers_call("2025-05-20"));
    assert_eq!(status(&log, "2025-06-01T00:00:00Z"), "ACTIVE");
    let channels: Channels = log.model();
    assert_eq!(
        channels
            .channels()
            .find(|c| c.key == key)
            .unwrap()
            .view(at("2025-06-01T00:00:00Z"), Duration::days(90))
            .contacts,
        2
    );

    log.push(stream, json!({"occurred": {"day": "2025-06-02"}, "sources": [{"source": "rus.mfa"}], "channel_suspended": {"reason": "r"}}));
    assert_eq!(status(&log, "2025-06-03T00:00:00Z"), "SUSPENDED");
    log.push(stream, json!({"occurred": {"day": "2025-06-10"}, "sources": [{"source": "rus.mfa"}], "channel_resumed": {}}));
    assert_eq!(status(&log, "2025-06-11T00:00:00Z"), "ACTIVE");
    log.push(stream, json!({"occurred": {"day": "2025-07-01"}, "sources": [{"source": "rus.mfa"}], "channel_closed": {}}));
    assert_eq!(status(&log, "2025-07-02T00:00:00Z"), "CLOSED");
}

#[test]
fn a_retracted_call_no_longer_counts_and_a_corrected_date_moves_it() {
    let mut log = Log::founding();
    let call = log.push("occurrence-2025-05-20-call", ministers_call("2025-05-20"));
    let key = "rus.foreign-minister+usa.secretary-of-state";
    let channels: Channels = log.model();
    let view = channels
        .channels()
        .find(|c| c.key == key)
        .unwrap()
        .view(at("2025-06-01T00:00:00Z"), Duration::days(90));
    assert_eq!((view.contacts, view.last_contact_by), (2, Some(call)));

    // The date was wrong: 10 May, not 20 May.
    let mut replacement = ministers_call("2025-05-10");
    replacement.as_object_mut().unwrap().remove("sources");
    log.push(
        "occurrence-2025-05-20-call",
        json!({"event_corrected": {"event": call, "replacement": replacement}}),
    );
    let timeline: Timeline = log.model();
    let entry = timeline
        .entries()
        .find(|e| e.origin.event_id == call)
        .unwrap();
    assert_eq!(entry.occurred.as_ref().unwrap().to_string(), "2025-05-10");
    let channels: Channels = log.model();
    let view = channels
        .channels()
        .find(|c| c.key == key)
        .unwrap()
        .view(at("2025-06-01T00:00:00Z"), Duration::days(90));
    assert_eq!(view.last_contact_on.unwrap().to_string(), "2025-05-10");

    // Then it is retracted altogether: one contact again, everywhere.
    log.push(
        "occurrence-2025-05-20-call",
        json!({"event_retracted": {"event": call, "reason": "never happened"}}),
    );
    let channels: Channels = log.model();
    let view = channels
        .channels()
        .find(|c| c.key == key)
        .unwrap()
        .view(at("2025-06-01T00:00:00Z"), Duration::days(90));
    assert_eq!(view.contacts, 1);
    let timeline: Timeline = log.model();
    assert!(timeline.entries().all(|e| e.origin.event_id != call));
    let relations: Relations = log.model();
    let pair = pair_of(&relations.row("pair:RUS+USA").unwrap()).unwrap();
    assert_eq!(
        pair.all().contacts,
        2,
        "the two founding calls between Russia and the US"
    );
    let divergence: Divergence = log.model();
    assert!(divergence.occurrences().all(|o| o.event_id != call));
}

#[test]
fn a_retracted_source_report_leaves_the_divergence() {
    let mut log = Log::founding();
    let stream = "occurrence-2025-02-15-rubio-lavrov-call";
    let report = log.id(stream, "SourceReportAttached");
    log.push(stream, json!({"event_retracted": {"event": report}}));
    let divergence: Divergence = log.model();
    let call = log.id(stream, "CallHeld");
    let view = divergence
        .occurrences()
        .find(|o| o.event_id == call)
        .unwrap()
        .view();
    assert_eq!(view.reports.len(), 1);
    assert!(view.shared.is_empty(), "one source left: nothing is shared");
}

/// Every batch size, every model: a runner with a working set writes exactly the rows a full
/// replay gives.
pub(super) fn assert_every_batching_agrees(facts: &[Fact]) {
    fn check<M: Model>(facts: &[Fact]) {
        let full: M = crate::projections::testing::replay(facts);
        let expected = sorted_rows(&full);
        for batch in 1..=facts.len() {
            assert_eq!(
                replay_settling::<M>(facts, batch),
                expected,
                "{} in batches of {batch}",
                M::NAME
            );
        }
    }
    check::<Channels>(facts);
    check::<Summits>(facts);
    check::<Commitments>(facts);
    check::<Timeline>(facts);
    check::<Relations>(facts);
    check::<Divergence>(facts);
    check::<super::search::Search>(facts);
}

#[test]
fn a_call_retracted_right_after_it_was_recorded_leaves_everything_as_before() {
    let mut log = Log::founding();
    let call = log.push("occurrence-2025-05-20-call", ministers_call("2025-05-20"));
    log.push(
        "occurrence-2025-05-20-call",
        json!({"event_retracted": {"event": call, "reason": "never happened"}}),
    );
    assert_every_batching_agrees(&log.facts);
}

#[test]
fn the_last_contact_of_a_pair_taken_back_gives_way_to_the_one_before_in_every_batching() {
    let mut log = Log::founding();
    let first = log.push("occurrence-2025-05-20-call", ministers_call("2025-05-20"));
    let second = log.push("occurrence-2025-05-25-call", ministers_call("2025-05-25"));
    // The second call was in fact before the first: the first is the last contact now.
    let mut replacement = ministers_call("2025-05-10");
    replacement.as_object_mut().unwrap().remove("sources");
    log.push(
        "occurrence-2025-05-25-call",
        json!({"event_corrected": {"event": second, "replacement": replacement}}),
    );
    log.push(
        "occurrence-2025-05-20-call",
        json!({"event_retracted": {"event": first, "reason": "never happened"}}),
    );
    log.push(
        "occurrence-2025-06-01-meeting",
        experts_meeting("2025-06-01"),
    );
    let stream = "occurrence-2025-02-15-rubio-lavrov-call";
    let report = log.id(stream, "SourceReportAttached");
    log.push(stream, json!({"event_retracted": {"event": report}}));
    assert_every_batching_agrees(&log.facts);

    let relations: Relations = log.model();
    let pair = pair_of(&relations.row("pair:RUS+USA").unwrap()).unwrap();
    assert_eq!(
        pair.all().contacts,
        4,
        "the two founding calls, the second call, the meeting"
    );
    assert_eq!(
        pair.all().last_contact.as_ref().map(|c| c.kind.as_str()),
        Some("MeetingHeld")
    );
    let log_without_meeting = Log {
        facts: log.facts[..log.facts.len() - 2].to_vec(),
    };
    let relations: Relations = log_without_meeting.model();
    let pair = pair_of(&relations.row("pair:RUS+USA").unwrap()).unwrap();
    assert_eq!(pair.all().last_contact.map(|c| c.event_id), Some(second));
}
