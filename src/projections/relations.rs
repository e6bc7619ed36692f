//! `relations`: per pair of states, their contacts (by level), the last one, their channels and
//! their pending summits and commitments. Built on the channel, summit, commitment and timeline
//! models, which it carries inside (as internal rows), so one checkpoint covers it all.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::channels::{Channel, ChannelView, Channels};
use super::commitments::{Commitment, CommitmentView, Commitments};
use super::summits::{Summit, SummitView, Summits};
use super::timeline::{Timeline, TimelineEntry};
use super::{Fact, Model, Row};
use crate::domain::EventId;
use crate::domain::diplomacy::{CountryCode, FuzzyTime};

/// A contact between the two states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairContact {
    pub event_id: EventId,
    pub kind: String,
    pub level: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred: Option<FuzzyTime>,
}

#[derive(Debug, Clone, Default)]
struct Pair {
    states: [String; 2],
    /// Contacts by `happened_key`, so the last is the greatest.
    contacts: BTreeMap<String, PairContact>,
    /// Contacts counted by level, kept as contacts come and go.
    by_level: BTreeMap<String, u32>,
    channels: BTreeSet<String>,
    summits: BTreeSet<String>,
    commitments: BTreeSet<String>,
}

/// A pair's row: what does not depend on the time asked about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairRecord {
    pub states: [String; 2],
    pub contacts: u32,
    pub contacts_by_level: BTreeMap<String, u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_contact: Option<PairContact>,
    pub channels: Vec<Channel>,
    pub summits: Vec<Summit>,
    pub commitments: Vec<Commitment>,
}

/// The relations of two states as answered at a given time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelationView {
    pub states: Vec<String>,
    pub state_names: Vec<String>,
    pub contacts: u32,
    pub contacts_by_level: BTreeMap<String, u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_contact: Option<PairContact>,
    /// Channels between them that are not closed.
    pub open_channels: Vec<ChannelView>,
    pub pending_summits: Vec<SummitView>,
    /// Commitments neither fulfilled nor withdrawn (lapsed included).
    pub pending_commitments: Vec<CommitmentView>,
}

impl PairRecord {
    pub fn view(&self, reference: DateTime<Utc>, dormant_after: Duration) -> RelationView {
        RelationView {
            states: self.states.to_vec(),
            state_names: self
                .states
                .iter()
                .map(|s| CountryCode::parse(s).map_or_else(|_| s.clone(), |c| c.name().to_owned()))
                .collect(),
            contacts: self.contacts,
            contacts_by_level: self.contacts_by_level.clone(),
            last_contact: self.last_contact.clone(),
            open_channels: self
                .channels
                .iter()
                .map(|c| c.view(reference, dormant_after))
                .filter(|c| c.status != "CLOSED")
                .collect(),
            pending_summits: self
                .summits
                .iter()
                .filter_map(Summit::view)
                .filter(|s| s.pending)
                .collect(),
            pending_commitments: self
                .commitments
                .iter()
                .filter_map(|c| c.view(reference))
                .filter(|c| matches!(c.status.as_str(), "PENDING" | "SCHEDULED" | "LAPSED"))
                .collect(),
        }
    }
}

const PREFIX: &str = "pair:";
const INTERNAL: &str = "internal";

/// The key of the pair of two states, in alphabetical order.
pub fn pair_key(a: &str, b: &str) -> String {
    if a <= b {
        format!("{a}+{b}")
    } else {
        format!("{b}+{a}")
    }
}

fn pairs_of(states: &[String]) -> Vec<String> {
    let mut pairs = Vec::new();
    for (i, a) in states.iter().enumerate() {
        for b in &states[i + 1..] {
            if a != b {
                pairs.push(pair_key(a, b));
            }
        }
    }
    pairs
}

#[derive(Debug, Default)]
pub struct Relations {
    channels: Channels,
    summits: Summits,
    commitments: Commitments,
    timeline: Timeline,
    /// Internal row key -> the pairs it counts for.
    member_of: HashMap<String, Vec<String>>,
    /// Internal key of a timeline entry -> its key among its pairs' contacts.
    contact_keys: HashMap<String, String>,
    pairs: BTreeMap<String, Pair>,
}

/// Which inner model an internal key belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Inner {
    Channels,
    Summits,
    Commitments,
    Timeline,
}

impl Inner {
    const ALL: [Inner; 4] = [
        Inner::Channels,
        Inner::Summits,
        Inner::Commitments,
        Inner::Timeline,
    ];

    fn name(self) -> &'static str {
        match self {
            Inner::Channels => "channels",
            Inner::Summits => "summits",
            Inner::Commitments => "commitments",
            Inner::Timeline => "timeline",
        }
    }

    fn of(key: &str) -> Option<(Inner, &str)> {
        let (name, inner) = key.split_once('/')?;
        Inner::ALL
            .into_iter()
            .find(|i| i.name() == name)
            .map(|i| (i, inner))
    }
}

impl Relations {
    fn inner_row(&self, inner: Inner, key: &str) -> Option<Row> {
        match inner {
            Inner::Channels => self.channels.row(key),
            Inner::Summits => self.summits.row(key),
            Inner::Commitments => self.commitments.row(key),
            Inner::Timeline => self.timeline.row(key),
        }
    }

    /// Moves an internal row to the pairs it now counts for; returns the pairs touched.
    fn refile(&mut self, internal_key: &str) -> BTreeSet<String> {
        let mut touched: BTreeSet<String> = BTreeSet::new();
        let old_contact = self.contact_keys.remove(internal_key);
        for pair in self.member_of.remove(internal_key).unwrap_or_default() {
            if let Some(entry) = self.pairs.get_mut(&pair) {
                if let Some(contact) = old_contact.as_ref().and_then(|k| entry.contacts.remove(k))
                    && let Some(count) = entry.by_level.get_mut(&contact.level)
                {
                    *count -= 1;
                    if *count == 0 {
                        entry.by_level.remove(&contact.level);
                    }
                }
                entry.channels.remove(internal_key);
                entry.summits.remove(internal_key);
                entry.commitments.remove(internal_key);
            }
            touched.insert(pair);
        }
        let Some((inner, key)) = Inner::of(internal_key) else {
            return touched;
        };
        let Some(row) = self
            .inner_row(inner, key)
            .filter(|r| r.status != super::common::ACTOR_STATUS)
        else {
            return touched;
        };
        let pairs = pairs_of(&row.states);
        for pair in &pairs {
            let (a, b) = pair.split_once('+').expect("a pair key");
            let entry = self.pairs.entry(pair.clone()).or_insert_with(|| Pair {
                states: [a.to_owned(), b.to_owned()],
                ..Pair::default()
            });
            match inner {
                Inner::Timeline => {
                    if let Ok(timeline) = super::timeline::entry_of(&row) {
                        let contact = contact(&timeline);
                        *entry.by_level.entry(contact.level.clone()).or_insert(0) += 1;
                        entry.contacts.insert(row.sort_key.clone(), contact);
                        self.contact_keys
                            .insert(internal_key.to_owned(), row.sort_key.clone());
                    }
                }
                Inner::Channels => {
                    entry.channels.insert(internal_key.to_owned());
                }
                Inner::Summits => {
                    entry.summits.insert(internal_key.to_owned());
                }
                Inner::Commitments => {
                    entry.commitments.insert(internal_key.to_owned());
                }
            }
            touched.insert(pair.clone());
        }
        self.member_of.insert(internal_key.to_owned(), pairs);
        touched
    }

    fn record(&self, pair: &Pair) -> PairRecord {
        let decode = |keys: &BTreeSet<String>, inner: Inner| -> Vec<Row> {
            keys.iter()
                .filter_map(|k| Inner::of(k).and_then(|(_, key)| self.inner_row(inner, key)))
                .collect()
        };
        PairRecord {
            states: pair.states.clone(),
            contacts: pair.contacts.len() as u32,
            contacts_by_level: pair.by_level.clone(),
            last_contact: pair.contacts.values().next_back().cloned(),
            channels: decode(&pair.channels, Inner::Channels)
                .iter()
                .filter_map(|r| super::channels::channel_of(r).ok())
                .collect(),
            summits: decode(&pair.summits, Inner::Summits)
                .iter()
                .filter_map(|r| super::summits::summit_of(r).ok())
                .collect(),
            commitments: decode(&pair.commitments, Inner::Commitments)
                .iter()
                .filter_map(|r| super::commitments::commitment_of(r).ok())
                .collect(),
        }
    }
}

fn contact(entry: &TimelineEntry) -> PairContact {
    PairContact {
        event_id: entry.origin.event_id,
        kind: entry.kind.clone(),
        level: entry.level.clone(),
        occurred: entry.occurred.clone(),
    }
}

impl Model for Relations {
    const NAME: &'static str = "relations";
    const VERSION: i32 = 2;

    fn apply(&mut self, fact: &Fact) -> Vec<String> {
        let mut internal: Vec<String> = Vec::new();
        for inner in Inner::ALL {
            let keys = match inner {
                Inner::Channels => self.channels.apply(fact),
                Inner::Summits => self.summits.apply(fact),
                Inner::Commitments => self.commitments.apply(fact),
                Inner::Timeline => self.timeline.apply(fact),
            };
            internal.extend(keys.into_iter().map(|k| format!("{}/{k}", inner.name())));
        }
        let mut pairs = BTreeSet::new();
        for key in &internal {
            pairs.extend(self.refile(key));
        }
        let mut changed = internal;
        changed.extend(pairs.into_iter().map(|p| format!("{PREFIX}{p}")));
        changed
    }

    fn row(&self, key: &str) -> Option<Row> {
        if let Some(pair_key) = key.strip_prefix(PREFIX) {
            let pair = self.pairs.get(pair_key)?;
            let record = self.record(pair);
            let empty = record.contacts == 0
                && record.channels.is_empty()
                && record.summits.is_empty()
                && record.commitments.is_empty();
            if empty {
                return None;
            }
            return Some(Row {
                key: key.to_owned(),
                data: serde_json::to_value(&record).expect("a pair serializes"),
                actors: Vec::new(),
                states: pair.states.to_vec(),
                status: "pair".into(),
                sort_key: pair_key.to_owned(),
            });
        }
        let (inner, inner_key) = Inner::of(key)?;
        let mut row = self.inner_row(inner, inner_key)?;
        row.key = key.to_owned();
        row.data = serde_json::json!({"status": row.status, "data": row.data});
        row.status = INTERNAL.into();
        Some(row)
    }

    fn rows(&self) -> Vec<Row> {
        let inner_rows = Inner::ALL.into_iter().flat_map(|inner| {
            let rows = match inner {
                Inner::Channels => self.channels.rows(),
                Inner::Summits => self.summits.rows(),
                Inner::Commitments => self.commitments.rows(),
                Inner::Timeline => self.timeline.rows(),
            };
            rows.into_iter()
                .filter_map(move |r| self.row(&format!("{}/{}", inner.name(), r.key)))
        });
        inner_rows
            .chain(
                self.pairs
                    .keys()
                    .filter_map(|p| self.row(&format!("{PREFIX}{p}"))),
            )
            .collect()
    }

    fn from_rows(rows: Vec<Row>) -> Result<Self, String> {
        let mut by_inner: HashMap<&'static str, Vec<Row>> = HashMap::new();
        for row in rows {
            if row.status != INTERNAL {
                continue; // pair rows are derived again below
            }
            let (inner, inner_key) = Inner::of(&row.key)
                .ok_or_else(|| format!("relations row {}: no inner model", row.key))?;
            let status = row
                .data
                .get("status")
                .and_then(|s| s.as_str())
                .unwrap_or_default()
                .to_owned();
            let data = row.data.get("data").cloned().unwrap_or_default();
            by_inner.entry(inner.name()).or_default().push(Row {
                key: inner_key.to_owned(),
                data,
                status,
                ..row
            });
        }
        let mut take = |name: &str| by_inner.remove(name).unwrap_or_default();
        let mut model = Self {
            channels: Channels::from_rows(take("channels"))?,
            summits: Summits::from_rows(take("summits"))?,
            commitments: Commitments::from_rows(take("commitments"))?,
            timeline: Timeline::from_rows(take("timeline"))?,
            ..Self::default()
        };
        let keys: Vec<String> = Inner::ALL
            .into_iter()
            .flat_map(|inner| {
                let rows = match inner {
                    Inner::Channels => model.channels.rows(),
                    Inner::Summits => model.summits.rows(),
                    Inner::Commitments => model.commitments.rows(),
                    Inner::Timeline => model.timeline.rows(),
                };
                rows.into_iter()
                    .map(move |r| format!("{}/{}", inner.name(), r.key))
            })
            .collect();
        for key in keys {
            model.refile(&key);
        }
        Ok(model)
    }
}

/// Decodes a pair row.
pub fn pair_of(row: &Row) -> Result<PairRecord, String> {
    serde_json::from_value(row.data.clone()).map_err(|e| format!("relations row {}: {e}", row.key))
}
