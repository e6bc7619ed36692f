//! Projections: read models derived from the log. Each model is a pure, in-memory state
//! machine (`Model`) that applies diplomatic events one at a time in position order and
//! exposes its state as rows. The same model serves three purposes, so they cannot disagree:
//! - the runner (`runner.rs`) keeps it current from a checkpoint and writes the rows it changed
//!   to PostgreSQL in the same transaction as the checkpoint;
//! - `as of` queries replay the log into a fresh model up to a position;
//! - a rebuild replays everything into a fresh model and swaps its rows in.
//!
//! Corrections and retractions are honoured by every model: each model remembers which of
//! its rows every event contributed to, so a retraction removes the event's contributions and
//! a correction replaces them with the replacement's, under the original id and position.
//!
//! A model may keep only a working set in memory (`Model::RESIDENT`, `wants`, `hydrate`,
//! `settle`): the runner loads only its resident rows at start-up, brings in the stored rows
//! each batch wants before applying it, and lets the model forget them once the batch is
//! committed. Its memory then follows what it keeps resident, not the length of the log. The
//! same `apply` runs either way; `as of` replays keep everything (see `query.rs`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::domain::EventId;
use crate::domain::diplomacy::DiplomaticEvent;

/// A diplomatic event as projections see it: the event and where the log put it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    pub position: u64,
    pub stream_id: String,
    pub event_id: EventId,
    pub recorded_at: DateTime<Utc>,
    pub event: DiplomaticEvent,
}

/// One row of a projection's read model: the entity's state as JSON, and the columns queries
/// filter and sort by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Unique within the projection.
    pub key: String,
    pub data: RowData,
    /// Actor ids the row concerns (persons, offices, organisations, states).
    pub actors: Vec<String>,
    /// Alpha-3 codes of the states the row concerns.
    pub states: Vec<String>,
    /// A status that does not depend on the time of the query (time-dependent statuses such as
    /// `dormant` or `lapsed` are derived when answering).
    pub status: String,
    /// Rows are listed in this order.
    pub sort_key: String,
}

impl Row {
    /// The row's data as a `T`; a failure names the row, as "`what` row `key`: …".
    pub fn decode<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, String> {
        serde_json::from_str(self.data.get()).map_err(|e| format!("{what} row {}: {e}", self.key))
    }
}

/// A row's data as JSON text. Models serialize their typed state straight into it and parse
/// it straight back (`serde_json::from_str(data.get())`): a rebuild writes every row, and a
/// `serde_json::Value` tree built, printed and dropped for each was most of the write path.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RowData(Box<RawValue>);

impl RowData {
    /// `value` as JSON text.
    pub fn new<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Self> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    /// The JSON text. As a model wrote it, or, for rows stored before projection rows were
    /// `json` (`migrations/…_projection_data_as_written.sql`), as PostgreSQL gave `jsonb` back
    /// (keys reordered, spaces added).
    pub fn get(&self) -> &str {
        self.0.get()
    }
}

/// The same JSON value, whatever the text's key order and spacing: rows read back from
/// PostgreSQL compare equal to the rows that were written.
impl PartialEq for RowData {
    fn eq(&self, other: &Self) -> bool {
        let value = |data: &Self| serde_json::from_str::<serde_json::Value>(data.get()).ok();
        self.get() == other.get() || value(self).is_some_and(|v| Some(v) == value(other))
    }
}

/// Stored rows a model wants back in memory before an event (see `Model::wants`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Want {
    /// The row under this key.
    Key(String),
    /// Every row with this status and sort key (a group the model files that way, e.g. a
    /// channel's contacts).
    Group { status: String, sort_key: String },
    /// Every row with this status whose states include all of these (e.g. the contacts of a
    /// pair of states).
    States { status: String, states: Vec<String> },
    /// Every row whose key starts with this (e.g. an event's documents).
    Prefix(String),
}

/// The least text above every text that starts with `prefix`, in byte order (as keys compare:
/// `collate "C"`), or `None` if there is none: the keys starting with `prefix` are those in
/// `prefix..end`.
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut end = prefix.to_owned();
    while let Some(last) = end.pop() {
        // The next scalar value (skipping the surrogates, which no text holds).
        let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(next) = next {
            end.push(next);
            return Some(end);
        }
    }
    None
}

/// What a model wants for some events that was not asked for before, by kind, as the
/// look-ups of a runner (`runner::rows::hydrate`) and of an as-of replay
/// (`read::versioned`) read it.
#[derive(Debug, Default)]
pub struct Wanted {
    pub keys: Vec<String>,
    /// The groups `(statuses[i], sort_keys[i])`.
    pub statuses: Vec<String>,
    pub sort_keys: Vec<String>,
    /// `(status, states)`: the rows of that status concerning all of those states.
    pub with_states: Vec<(String, Vec<String>)>,
    /// The rows whose keys start with `prefixes[i]`: those from it up to `prefix_ends[i]`.
    pub prefixes: Vec<String>,
    pub prefix_ends: Vec<String>,
}

impl Wanted {
    /// What `model` wants for `facts` that `asked` does not hold yet (it holds it now).
    pub fn of<'f, M: Model>(
        model: &M,
        facts: impl IntoIterator<Item = &'f Fact>,
        asked: &mut std::collections::HashSet<Want>,
    ) -> Self {
        let mut wanted = Self::default();
        for want in facts.into_iter().flat_map(|fact| model.wants(fact)) {
            if !asked.insert(want.clone()) {
                continue;
            }
            match want {
                Want::Key(key) => wanted.keys.push(key),
                Want::Group { status, sort_key } => {
                    wanted.statuses.push(status);
                    wanted.sort_keys.push(sort_key);
                }
                Want::States { status, states } => wanted.with_states.push((status, states)),
                Want::Prefix(prefix) => {
                    // Only the empty prefix (every key) and prefixes of U+10FFFF alone have
                    // no end: a model asks for neither.
                    let end = prefix_end(&prefix).expect("a prefix with an end");
                    wanted.prefixes.push(prefix);
                    wanted.prefix_ends.push(end);
                }
            }
        }
        wanted
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
            && self.statuses.is_empty()
            && self.with_states.is_empty()
            && self.prefixes.is_empty()
    }
}

/// A projection's in-memory state machine.
pub trait Model: Default + Send + Sync + 'static {
    /// The projection's name (its checkpoint key, and what `diplog projections rebuild` takes).
    const NAME: &'static str;
    /// Bumped whenever `apply` or the row format changes: a stored projection of another
    /// version is rebuilt at start-up.
    const VERSION: i32;

    /// Applies one event; returns the keys of the rows it changed (created, updated or
    /// removed).
    fn apply(&mut self, fact: &Fact) -> Vec<String>;

    /// The row under `key`, or `None` if there is none (any more).
    fn row(&self, key: &str) -> Option<Row>;

    /// Every row.
    fn rows(&self) -> Vec<Row>;

    /// Every row, the model given up for them: a replay's last step, where a large model may
    /// let go of what each row was made from as it goes rather than hold both at once.
    fn into_rows(self) -> Vec<Row> {
        self.rows()
    }

    /// The state again from its rows (as `rows` gave them).
    fn from_rows(rows: Vec<Row>) -> Result<Self, String>;

    /// The statuses of the rows a runner loads at start-up, if the model keeps a bounded
    /// working set (`None`: every row). The rest it takes back through `wants` and `hydrate`
    /// when an event needs them.
    const RESIDENT: Option<&'static [&'static str]> = None;

    /// The keys of stored rows `fact` needs in memory before `apply` (rows it reads, or takes
    /// back out for a retraction or a correction) that `settle` may have let go. A model
    /// that never lets go wants none.
    fn wants(&self, _fact: &Fact) -> Vec<Want> {
        Vec::new()
    }

    /// Takes stored rows (named by `wants`, as `row` wrote them) back into memory; a row it
    /// holds already is left alone (what it holds is newer).
    fn hydrate(&mut self, _rows: Vec<Row>) -> Result<(), String> {
        Ok(())
    }

    /// Lets go of everything that lives in its rows and that `wants` can name again, so that
    /// the memory a runner holds does not grow with the log. The runner calls it once a
    /// batch's rows are committed; replays (`as of`) never do, and keep everything.
    fn settle(&mut self) {}
}

// The models: pure state machines, one file per read model.
pub mod models;
// The engine: runners, rebuilds, checkpoints and rows, the shared read of the log.
pub mod engine;
// The read side: queries (lists, gets, as of) and change feeds.
pub mod read;

pub use engine::catalog::NAMES;

/// Test support: the founding scenario as facts, without a database.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// The recorded time every test fact gets (after everything in the scenario happened).
    pub fn recorded_at() -> DateTime<Utc> {
        "2025-03-01T00:00:00Z".parse().expect("a valid time")
    }

    /// Facts from scenario items, positions from 1.
    pub fn facts(items: Vec<crate::import::Item>) -> Vec<Fact> {
        items
            .into_iter()
            .enumerate()
            .map(|(index, item)| Fact {
                position: index as u64 + 1,
                stream_id: item.stream_id,
                event_id: item.id,
                recorded_at: recorded_at(),
                event: item.event,
            })
            .collect()
    }

    pub fn founding_facts() -> Vec<Fact> {
        let scenario = crate::import::scenario::parse(crate::import::scenario::FOUNDING_SCENARIO)
            .expect("the founding scenario parses");
        facts(scenario.items)
    }

    /// A model fed every fact.
    pub fn replay<M: Model>(facts: &[Fact]) -> M {
        let mut model = M::default();
        for fact in facts {
            model.apply(fact);
        }
        model
    }

    /// A row with only its place in list order to tell it apart (tests of paging).
    pub fn row_at(sort_key: &str, key: &str) -> Row {
        Row {
            key: key.to_owned(),
            data: RowData::new(&0).expect("json"),
            actors: Vec::new(),
            states: Vec::new(),
            status: "s".to_owned(),
            sort_key: sort_key.to_owned(),
        }
    }

    /// Rows in key order, for comparisons.
    pub fn sorted_rows<M: Model>(model: &M) -> Vec<Row> {
        let mut rows = model.rows();
        rows.sort_by(|a, b| a.key.cmp(&b.key));
        rows
    }

    /// `facts` cut as a runner cuts them: `batch` at a time, and a retraction or a
    /// correction always starting a batch.
    pub fn batches(facts: &[Fact], batch: usize) -> Vec<&[Fact]> {
        let mut batches = Vec::new();
        let mut start = 0;
        while start < facts.len() {
            let mut end = (start + batch).min(facts.len());
            if let Some(cut) = facts[start + 1..end]
                .iter()
                .position(|fact| super::models::common::target_of(fact).is_some())
            {
                end = start + 1 + cut;
            }
            batches.push(&facts[start..end]);
            start = end;
        }
        batches
    }

    /// The stored rows, in key order, after feeding `facts` as a runner does with a bounded
    /// working set: in `batches`, each batch hydrated with the stored rows it wants (asking
    /// again until it wants nothing new), its changed rows written, then the model settled.
    /// Every other batch starts from a model loaded as at a restart (only the resident rows).
    pub fn replay_settling<M: Model>(facts: &[Fact], batch: usize) -> Vec<Row> {
        let mut stored: std::collections::BTreeMap<String, Row> = Default::default();
        let mut model = M::default();
        for (round, chunk) in batches(facts, batch).into_iter().enumerate() {
            if round % 2 == 1 {
                let resident = stored
                    .values()
                    .filter(|row| M::RESIDENT.is_none_or(|s| s.contains(&row.status.as_str())))
                    .cloned()
                    .collect();
                model = M::from_rows(resident).expect("resident rows load");
            }
            let mut asked = std::collections::HashSet::new();
            loop {
                let keys: Vec<Want> = chunk
                    .iter()
                    .flat_map(|fact| model.wants(fact))
                    .filter(|key| asked.insert(key.clone()))
                    .collect();
                if keys.is_empty() {
                    break;
                }
                let rows = stored
                    .values()
                    .filter(|row| {
                        keys.iter().any(|want| match want {
                            Want::Key(key) => *key == row.key,
                            Want::Group { status, sort_key } => {
                                *status == row.status && *sort_key == row.sort_key
                            }
                            Want::States { status, states } => {
                                *status == row.status
                                    && states.iter().all(|state| row.states.contains(state))
                            }
                            Want::Prefix(prefix) => row.key.starts_with(prefix.as_str()),
                        })
                    })
                    .cloned()
                    .collect();
                model.hydrate(rows).expect("wanted rows load");
            }
            let mut changed = std::collections::BTreeSet::new();
            for fact in chunk {
                changed.extend(model.apply(fact));
            }
            for key in changed {
                match model.row(&key) {
                    Some(row) => stored.insert(key, row),
                    None => stored.remove(&key),
                };
            }
            model.settle();
        }
        stored.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::models::{channels, commitments, divergence, relations, summits, timeline};
    use super::testing::*;
    use super::*;
    use chrono::Duration;

    fn reference() -> DateTime<Utc> {
        "2025-03-01T00:00:00Z".parse().unwrap()
    }

    fn assert_round_trips<M: Model>(model: &M) {
        let again = M::from_rows(model.rows()).expect("rows load");
        assert_eq!(
            sorted_rows(&again),
            sorted_rows(model),
            "{} rows round-trip",
            M::NAME
        );
        let mut given_up = again.into_rows();
        given_up.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(given_up, sorted_rows(model), "{} into_rows", M::NAME);
    }

    #[test]
    fn a_prefix_ends_at_the_least_text_above_every_text_it_starts() {
        assert_eq!(prefix_end("doc:7:").as_deref(), Some("doc:7;"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("x\u{D7FF}").as_deref(), Some("x\u{E000}"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        assert_eq!(prefix_end(""), None);
        let end = prefix_end("doc:7:").unwrap();
        for key in ["doc:7:", "doc:7:summary", "doc:7:\u{10FFFF}\u{10FFFF}"] {
            assert!(key >= "doc:7:" && key < end.as_str(), "{key}");
        }
        for key in ["doc:7", "doc:7;", "doc:70:summary", "doc:8:"] {
            assert!(!(key >= "doc:7:" && key < end.as_str()), "{key}");
        }
    }

    #[test]
    fn row_data_compares_as_json_whatever_its_text() {
        let written = RowData::new(&serde_json::json!({"b": [1, "x"], "a": null})).unwrap();
        // As PostgreSQL gives `jsonb` back: keys reordered, spaces added.
        let stored: RowData = serde_json::from_str(r#"{"a": null, "b": [1, "x"]}"#).unwrap();
        assert_eq!(written, stored);
        let other: RowData = serde_json::from_str(r#"{"a": null, "b": [2, "x"]}"#).unwrap();
        assert_ne!(written, other);
    }

    #[test]
    fn the_founding_report_opens_the_foreign_ministers_and_the_presidents_channels() {
        let model: channels::Channels = replay(&founding_facts());
        assert_round_trips(&model);
        let views: Vec<_> = model
            .channels()
            .map(|c| c.view(reference(), Duration::days(90)))
            .collect();
        let ministers = views
            .iter()
            .find(|v| v.key == "rus.foreign-minister+usa.secretary-of-state")
            .expect("the foreign ministers' channel");
        assert_eq!(ministers.status, "ACTIVE");
        assert_eq!(
            ministers.established_on.as_ref().unwrap().to_string(),
            "2025-02-15 (Europe/Moscow)"
        );
        assert_eq!(ministers.contacts, 1);
        assert!(ministers.stream_id.is_some());
        let presidents = views
            .iter()
            .find(|v| v.key == "rus.president+usa.president")
            .expect("the presidents' channel");
        assert_eq!(
            presidents.established_on.as_ref().unwrap().to_string(),
            "2025-02-12"
        );
        assert!(views.iter().any(|v| v.key == "ukr.president+usa.president"));
        // Long after, with no contact since, the channel is dormant.
        let later = model
            .channels()
            .find(|c| c.key == ministers.key)
            .unwrap()
            .view("2025-12-01T00:00:00Z".parse().unwrap(), Duration::days(90));
        assert_eq!(later.status, "DORMANT");
    }

    #[test]
    fn the_founding_report_leaves_a_summit_preparation_and_the_expert_meeting_pending() {
        let facts = founding_facts();
        let summits: summits::Summits = replay(&facts);
        assert_round_trips(&summits);
        let summit = summits
            .summits()
            .next()
            .expect("one summit")
            .view()
            .unwrap();
        assert_eq!(
            (summit.key.as_str(), summit.stage.as_str(), summit.pending),
            ("summit-rus-usa-2025", "PREPARATION_AGREED", true)
        );
        assert_eq!(
            summit.since.as_ref().unwrap().to_string(),
            "2025-02-15 (Europe/Moscow)"
        );
        assert_eq!(
            summit
                .parties
                .iter()
                .map(|p| p.id.as_str())
                .collect::<Vec<_>>(),
            ["RUS", "USA"]
        );

        let commitments: commitments::Commitments = replay(&facts);
        assert_round_trips(&commitments);
        let commitment = commitments
            .commitments()
            .next()
            .expect("one commitment")
            .view(reference())
            .unwrap();
        assert_eq!(commitment.status, "PENDING");
        assert!(commitment.what.contains("meeting of experts"));
        assert!(
            commitment
                .due_text
                .as_deref()
                .unwrap()
                .contains("very soon")
        );
        assert_eq!(
            commitment.stated_on.as_ref().unwrap().to_string(),
            "2025-02-15 (Europe/Moscow)"
        );
        assert_eq!(commitment.age_days, Some(14));
    }

    #[test]
    fn the_divergence_of_the_call_shows_what_only_one_side_says() {
        let model: divergence::Divergence = replay(&founding_facts());
        assert_round_trips(&model);
        let call = model
            .occurrences()
            .map(|o| o.view())
            .find(|v| {
                v.stream_id.as_deref() == Some("occurrence-2025-02-15-rubio-lavrov-call")
                    && v.kind.as_deref() == Some("CallHeld")
            })
            .expect("the call's divergence");
        assert_eq!(call.reports.len(), 2);
        let only = |source: &str| -> Vec<String> {
            call.single_source
                .iter()
                .filter(|c| c.sources[0].source == source)
                .map(|c| c.key.clone())
                .collect()
        };
        assert!(only("rus.mfa").contains(&"palestine-and-middle-east".to_owned()));
        assert!(only("usa.state-department").contains(&"bilateral-issues".to_owned()));
        assert!(call.shared.iter().any(|c| c.key == "ukraine"));
    }

    #[test]
    fn relations_and_timelines_follow_from_the_founding_report() {
        let facts = founding_facts();
        let relations: relations::Relations = replay(&facts);
        assert_round_trips(&relations);
        let row = relations
            .row("pair:RUS+USA")
            .expect("Russia and the US have relations");
        let view = relations::rows::pair_of(&row)
            .unwrap()
            .view(
                reference(),
                Duration::days(90),
                crate::projections::models::common::Records::Both,
            )
            .expect("a view");
        assert_eq!(view.contacts, 2);
        assert_eq!(view.contacts_by_level.get("LEADERS"), Some(&1));
        assert_eq!(view.contacts_by_level.get("MINISTERS"), Some(&1));
        assert_eq!(view.open_channels.len(), 2);
        assert_eq!(view.pending_summits.len(), 1);
        assert_eq!(view.pending_commitments.len(), 1);
        assert!(relations.row("pair:UKR+USA").is_some());

        let timeline: timeline::Timeline = replay(&facts);
        assert_round_trips(&timeline);
        let lavrov: Vec<_> = timeline
            .entries()
            .filter(|e| timeline::names(e, "sergey-lavrov"))
            .collect();
        assert_eq!(lavrov.len(), 1);
        let usa: Vec<_> = timeline
            .entries()
            .filter(|e| timeline::names(e, "USA"))
            .collect();
        assert_eq!(usa.len(), 3);
    }
}
