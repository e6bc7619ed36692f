//! Sending an import's checked events as atomic records (`RecordMany` calls), several at once
//! where they do not depend on each other.
//!
//! One call at a time left the machine idle more than half the time (measured in the bench's
//! GDELT import: the server decodes, checks and writes one call on one core while PostgreSQL
//! waits, then the other way round). A record may be sent while earlier ones are still in
//! flight when it writes to none of their streams and names none of the events and actors
//! they write: then the server's answer to it cannot depend on whether they are in yet.

use std::collections::{HashMap, HashSet};

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::{GrpcChannel, ImportError, Item};
use crate::domain::diplomacy::{EventKind, json_strings};
use crate::grpc::bridge;
use crate::proto::{self, diplomacy_client::DiplomacyClient};

/// How an import sends its records.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sending {
    /// Events one atomic record holds at most.
    pub unit_events: usize,
    /// Atomic records in flight at most.
    pub in_flight: usize,
}

impl Sending {
    /// A scenario: as few records as hold the file, one at a time (so a file refused part-way
    /// is left with only its first records in).
    pub const FILE: Self = Self {
        unit_events: crate::domain::limits::MAX_EVENTS_PER_APPEND,
        in_flight: 1,
    };

    /// An external dataset (each refused event reported, the rest imported): smaller records,
    /// several at once, so a chunk keeps both the server and PostgreSQL busy.
    pub const DATASET: Self = Self {
        unit_events: 500,
        in_flight: 4,
    };
}

/// The encoded events one atomic record of an import carries at most: half the default
/// request limit (`MAX_REQUEST_BYTES`, 16 MiB), which leaves room for the records' framing and
/// for a server configured with a lower `--max-request-bytes`.
const MAX_UNIT_BYTES: usize = crate::domain::limits::MAX_REQUEST_BYTES / 2;

/// An event as it is sent: its stream and its protobuf.
struct Outgoing {
    stream_id: String,
    event: proto::DiplomaticEvent,
}

/// One atomic record (a `RecordMany` call) and what it writes and reads.
pub(super) struct Unit {
    events: Vec<Outgoing>,
    /// The streams it writes to, the ids of its events and the actors it registers.
    writes: HashSet<String>,
    /// The streams it writes to and every string its events hold (the actors and events they
    /// name among them).
    touches: HashSet<String>,
}

impl Unit {
    fn new() -> Self {
        Self {
            events: Vec::new(),
            writes: HashSet::new(),
            touches: HashSet::new(),
        }
    }

    fn push(&mut self, item: Item, json: serde_json::Value, event: proto::DiplomaticEvent) {
        if let EventKind::ActorRegistered(registered) = &item.event.kind {
            self.writes.insert(registered.actor.id.to_string());
        }
        json_strings(&json, &mut |s| {
            self.touches.insert(s.to_owned());
        });
        self.writes.insert(item.id.to_string());
        self.writes.insert(item.stream_id.clone());
        self.touches.insert(item.stream_id.clone());
        self.events.push(Outgoing {
            stream_id: item.stream_id,
            event,
        });
    }

    /// Whether it must wait for `earlier` to be written first.
    fn depends_on(&self, earlier: &Unit) -> bool {
        !self.touches.is_disjoint(&earlier.writes)
    }

    /// Consecutive events of one stream, each run one record of the call.
    fn request(&self) -> proto::RecordManyRequest {
        let records = runs_by_stream(&self.events)
            .into_iter()
            .map(|run| proto::RecordRequest {
                stream_id: run[0].stream_id.clone(),
                expected_version: None,
                events: run.iter().map(|outgoing| outgoing.event.clone()).collect(),
            })
            .collect();
        proto::RecordManyRequest { records }
    }

    pub(super) fn len(&self) -> usize {
        self.events.len()
    }
}

/// The items as they are sent, cut into atomic records, in order: one for the whole file when
/// it fits in one (at most `unit_events` events and `MAX_UNIT_BYTES` of encoded events), else
/// as few as hold it. Each is written all or nothing; a file cut in several may be left with
/// some of its records written if another fails (with one record in flight, its first ones),
/// and the CLI says how many records a file took.
pub(super) fn atomic_units(items: Vec<Item>, unit_events: usize) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let json = item.event.to_json();
        let event = bridge::event_from_json(json.clone(), &item.id.to_string())
            .expect("a domain event always maps onto the proto");
        let size = prost::Message::encoded_len(&event);
        let fits = units
            .last()
            .is_some_and(|unit| unit.len() < unit_events && bytes + size <= MAX_UNIT_BYTES);
        if !fits {
            bytes = 0;
            units.push(Unit::new());
        }
        bytes += size;
        units
            .last_mut()
            .expect("a unit was just pushed")
            .push(item, json, event);
    }
    units
}

/// Consecutive events of one stream: the records of one atomic unit.
fn runs_by_stream(events: &[Outgoing]) -> Vec<&[Outgoing]> {
    events.chunk_by(|a, b| a.stream_id == b.stream_id).collect()
}

/// Sends the units, at most `in_flight` at once, each only after every earlier one it depends
/// on is written. Answers in the order the calls finished. The first failure ends the import
/// (records in flight then may or may not be written; importing again completes them).
pub(super) async fn send<T: GrpcChannel>(
    diplomacy: &DiplomacyClient<T>,
    units: Vec<Unit>,
    in_flight: usize,
) -> Result<Vec<proto::AppendManyResponse>, ImportError> {
    let mut answers = Vec::with_capacity(units.len());
    let mut flying: HashMap<usize, Unit> = HashMap::new();
    let mut calls = FuturesUnordered::new();
    let finished = |answer: Result<tonic::Response<proto::AppendManyResponse>, tonic::Status>| {
        answer.map(tonic::Response::into_inner)
    };
    for (index, unit) in units.into_iter().enumerate() {
        while flying.len() >= in_flight.max(1)
            || flying.values().any(|earlier| unit.depends_on(earlier))
        {
            let (done, answer) = calls.next().await.expect("a call is in flight");
            flying.remove(&done);
            answers.push(finished(answer)?);
        }
        let mut client = diplomacy.clone();
        let request = unit.request();
        calls.push(async move { (index, client.record_many(request).await) });
        flying.insert(index, unit);
    }
    while let Some((_, answer)) = calls.next().await {
        answers.push(finished(answer)?);
    }
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::scenario;

    #[test]
    fn a_file_is_one_atomic_record_unless_it_is_over_the_limit_of_events() {
        let founding = scenario::parse(scenario::FOUNDING_SCENARIO)
            .expect("the founding scenario parses")
            .items;
        assert_eq!(
            atomic_units(founding.clone(), Sending::FILE.unit_events).len(),
            1
        );

        let many: Vec<Item> = std::iter::repeat_n(founding, 30).flatten().collect();
        let total = many.len();
        let units = atomic_units(many, Sending::FILE.unit_events);
        let sizes: Vec<usize> = units.iter().map(Unit::len).collect();
        assert_eq!(
            sizes,
            [crate::domain::limits::MAX_EVENTS_PER_APPEND, total - 1000]
        );
        // Runs of one stream become the records of a unit, in order.
        let request = units[1].request();
        assert!(
            request
                .records
                .iter()
                .all(|record| !record.events.is_empty())
        );
        assert_eq!(
            request
                .records
                .iter()
                .map(|record| record.events.len())
                .sum::<usize>(),
            total - 1000
        );
        assert!(
            request
                .records
                .windows(2)
                .all(|pair| pair[0].stream_id != pair[1].stream_id)
        );
    }

    #[test]
    fn a_record_waits_for_earlier_ones_that_write_what_it_names_or_its_streams() {
        let founding = scenario::parse(scenario::FOUNDING_SCENARIO)
            .expect("the founding scenario parses")
            .items;
        let units = atomic_units(founding.clone(), Sending::FILE.unit_events);
        let first = &units[0];
        // The founding scenario registers its actors, then records events naming them.
        let (registrations, rest): (Vec<Item>, Vec<Item>) = founding
            .into_iter()
            .partition(|item| matches!(item.event.kind, EventKind::ActorRegistered(_)));
        // Outside the actors' own streams (which also hold their later steps).
        let elsewhere: Vec<Item> = rest
            .into_iter()
            .filter(|item| !item.stream_id.starts_with("actor-"))
            .collect();
        let registering = &atomic_units(registrations, Sending::FILE.unit_events)[0];
        let naming = &atomic_units(elsewhere, Sending::FILE.unit_events)[0];
        assert!(naming.depends_on(registering));
        assert!(!registering.depends_on(naming));
        assert!(first.depends_on(first), "a unit shares its own streams");
    }

    #[test]
    fn records_of_unrelated_streams_do_not_wait_for_each_other() {
        let founding = scenario::parse(scenario::FOUNDING_SCENARIO)
            .expect("the founding scenario parses")
            .items;
        let registrations: Vec<Item> = founding
            .into_iter()
            .filter(|item| matches!(item.event.kind, EventKind::ActorRegistered(_)))
            .collect();
        assert!(registrations.len() >= 2);
        let one = &atomic_units(vec![registrations[0].clone()], Sending::FILE.unit_events)[0];
        let other = &atomic_units(vec![registrations[1].clone()], Sending::FILE.unit_events)[0];
        assert!(!one.depends_on(other) && !other.depends_on(one));
    }
}
