//! The relations model as rows: a row per pair (`PAIR_STATUS`: its `PairRecord`), the inner
//! channel, summit and commitment models' rows wrapped as internal rows (`INTERNAL`), a row per
//! interaction (`INTERACTION_STATUS`: its contact in its channel and between states), the
//! actors'; and the `Model` implementation that writes them, takes them back, and keeps all
//! but the interactions resident.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::tally::Tally;
use super::{CONTACT_PREFIX, Contact, INTERACTION_PREFIX, Inner, PREFIX, Pair, Relations};
use crate::domain::EventId;
use crate::projections::models::channels::rows::CONTACT_STATUS;
use crate::projections::models::channels::{Channel, Channels};
use crate::projections::models::commitments::{Commitment, Commitments};
use crate::projections::models::common::{ACTOR_STATUS, Index, Records, Registry, target_of};
use crate::projections::models::summits::{Summit, Summits};
use crate::projections::{Fact, Model, Row, RowData, Want};

/// The status of pair rows.
const PAIR_STATUS: &str = "pair";
/// The status of the rows of the inner channel, summit and commitment models (which keep their
/// own status inside).
const INTERNAL: &str = "internal";
/// The status of interaction rows (under `INTERACTION_PREFIX`).
const INTERACTION_STATUS: &str = "interaction";

/// A pair's row: what does not depend on the time asked about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairRecord {
    pub states: [String; 2],
    /// The contacts of the readouts' interactions.
    pub readouts: Tally,
    /// The contacts of coded records.
    pub coded: Tally,
    pub channels: Vec<Channel>,
    pub summits: Vec<Summit>,
    pub commitments: Vec<Commitment>,
}

/// An interaction row's data: its contact in a channel (the inner channel model's contact row:
/// `interaction:<id>` holds `contact:<id>`, `interaction:<id>@<channel>` holds
/// `contact:<id>@<channel>`) and, in `interaction:<id>` only, its contact between states.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct InteractionData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    channel: Option<RowData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    contact: Option<Contact>,
}

/// An inner model's row as the relations model stores it (under status `INTERNAL`): the inner
/// row's own status and data.
#[derive(Serialize, Deserialize)]
struct InternalData {
    status: String,
    data: RowData,
}

impl Relations {
    fn record(&self, pair: &Pair) -> PairRecord {
        let decode = |keys: &BTreeSet<String>, inner: Inner| -> Vec<Row> {
            keys.iter()
                .filter_map(|k| Inner::of(k).and_then(|(_, key)| self.inner_row(inner, key)))
                .collect()
        };
        PairRecord {
            states: pair.states.clone(),
            readouts: pair.readouts.clone(),
            coded: pair.coded.clone(),
            channels: decode(&pair.channels, Inner::Channels)
                .iter()
                .filter_map(|r| crate::projections::models::channels::rows::channel_of(r).ok())
                .collect(),
            summits: decode(&pair.summits, Inner::Summits)
                .iter()
                .filter_map(|r| crate::projections::models::summits::summit_of(r).ok())
                .collect(),
            commitments: decode(&pair.commitments, Inner::Commitments)
                .iter()
                .filter_map(|r| crate::projections::models::commitments::commitment_of(r).ok())
                .collect(),
        }
    }

    fn interaction_row(&self, key: &str) -> Option<Row> {
        let id = key.strip_prefix(INTERACTION_PREFIX)?;
        let channel = self.channels.row(&format!("{CONTACT_PREFIX}{id}"));
        // Only `interaction:<id>` (not `…@<channel>`) holds the contact between states.
        let contact = EventId::parse(id)
            .ok()
            .and_then(|id| self.contacts.held.get(&id))
            .cloned();
        if channel.is_none() && contact.is_none() {
            return None;
        }
        let sort_key = channel
            .as_ref()
            .map(|row| row.sort_key.clone())
            .unwrap_or_default();
        let states = contact
            .as_ref()
            .map(|c| c.states.clone())
            .unwrap_or_default();
        let data = InteractionData {
            channel: channel.map(|row| row.data),
            contact,
        };
        Some(Row {
            key: key.to_owned(),
            data: RowData::new(&data).expect("an interaction serializes"),
            actors: Vec::new(),
            states,
            status: INTERACTION_STATUS.to_owned(),
            sort_key,
        })
    }

    /// Takes an interaction row back into memory: its channel contact into the channel model,
    /// its contact into its pairs (which count it already).
    fn hydrate_interaction(&mut self, row: Row) -> Result<(), String> {
        let data: InteractionData = row.decode("relations")?;
        let id = row
            .key
            .strip_prefix(INTERACTION_PREFIX)
            .ok_or_else(|| format!("relations row {}: not an interaction", row.key))?;
        if let Some(channel) = data.channel {
            self.channels.hydrate(vec![Row {
                key: format!("{CONTACT_PREFIX}{id}"),
                data: channel,
                actors: Vec::new(),
                states: Vec::new(),
                status: CONTACT_STATUS.to_owned(),
                sort_key: row.sort_key,
            }])?;
        }
        if let Some(contact) = data.contact
            && !self.contacts.held.contains_key(&contact.origin.event_id)
        {
            for pair in contact.pairs() {
                self.pairs
                    .entry(pair.clone())
                    .or_insert_with(|| Pair::new(&pair))
                    .held
                    .insert(contact.when.clone(), contact.contact.clone());
            }
            self.contacts.index.note(&contact.origin, &row.key);
            self.contacts.held.insert(contact.origin.event_id, contact);
        }
        Ok(())
    }
}

impl Model for Relations {
    const NAME: &'static str = "relations";
    /// 3: one row per interaction (its channel contact and its contact between states) in
    /// place of the inner timeline's and channel contacts' rows; a bounded working set. 4: the
    /// inner summits keep a proposal's place and expected period. 5: pairwise channels, an
    /// interaction row per channel an interaction went through. 6: contacts' levels derived
    /// from the offices' where not given; the last contact's format and place. 7: coded
    /// records, and a tally each for readouts and coded records (by level, PLOVER type, quad
    /// class).
    /// 8: versioned rows (the rows are the same; bumped so that a rebuild writes their
    /// history, and an older server, which would not, leaves them alone).
    const VERSION: i32 = 8;

    fn apply(&mut self, fact: &Fact) -> Vec<String> {
        self.apply_to_all(fact)
    }

    fn row(&self, key: &str) -> Option<Row> {
        if let Some(pair_key) = key.strip_prefix(PREFIX) {
            let pair = self.pairs.get(pair_key)?;
            let record = self.record(pair);
            let empty = record.all().contacts == 0
                && record.channels.is_empty()
                && record.summits.is_empty()
                && record.commitments.is_empty();
            if empty {
                return None;
            }
            return Some(Row {
                key: key.to_owned(),
                data: RowData::new(&record).expect("a pair serializes"),
                actors: Vec::new(),
                states: pair.states.to_vec(),
                status: PAIR_STATUS.into(),
                sort_key: pair_key.to_owned(),
            });
        }
        if key.starts_with(INTERACTION_PREFIX) {
            return self.interaction_row(key);
        }
        if Registry::is_row(key) {
            return self.contacts.registry.row(key);
        }
        let (inner, inner_key) = Inner::of(key)?;
        let mut row = self.inner_row(inner, inner_key)?;
        row.key = key.to_owned();
        row.data = RowData::new(&InternalData {
            status: row.status,
            data: row.data,
        })
        .expect("an inner row serializes");
        row.status = INTERNAL.into();
        Some(row)
    }

    fn rows(&self) -> Vec<Row> {
        let mut keys: BTreeSet<String> = BTreeSet::new();
        for inner in Inner::ALL {
            for row in self.inner_rows(inner) {
                keys.insert(Self::outer_key(inner, &row.key));
            }
        }
        keys.extend(
            self.contacts
                .held
                .keys()
                .map(|id| format!("{INTERACTION_PREFIX}{id}")),
        );
        let actors = self.contacts.registry.rows();
        let pairs = self
            .pairs
            .keys()
            .filter_map(|p| self.row(&format!("{PREFIX}{p}")));
        keys.iter()
            .filter_map(|key| self.row(key))
            .chain(actors)
            .chain(pairs)
            .collect()
    }

    fn from_rows(rows: Vec<Row>) -> Result<Self, String> {
        let mut by_inner: HashMap<&'static str, Vec<Row>> = HashMap::new();
        let mut interactions = Vec::new();
        let mut model = Self::default();
        for row in rows {
            match row.status.as_str() {
                INTERNAL => {
                    let (inner, inner_key) = Inner::of(&row.key)
                        .ok_or_else(|| format!("relations row {}: no inner model", row.key))?;
                    let InternalData { status, data } = row.decode("relations")?;
                    by_inner.entry(inner.name()).or_default().push(Row {
                        key: inner_key.to_owned(),
                        data,
                        status,
                        ..row
                    });
                }
                ACTOR_STATUS => {
                    model.contacts.registry.load(&row)?;
                }
                PAIR_STATUS => {
                    let record = pair_of(&row)?;
                    let key = row.key.strip_prefix(PREFIX).unwrap_or(&row.key).to_owned();
                    model.pairs.insert(
                        key.clone(),
                        Pair {
                            readouts: record.readouts,
                            coded: record.coded,
                            ..Pair::new(&key)
                        },
                    );
                }
                INTERACTION_STATUS => interactions.push(row),
                other => return Err(format!("relations row {}: status {other:?}", row.key)),
            }
        }
        let mut take = |name: &str| by_inner.remove(name).unwrap_or_default();
        model.channels = Channels::from_rows(take("channels"))?;
        model.summits = Summits::from_rows(take("summits"))?;
        model.commitments = Commitments::from_rows(take("commitments"))?;
        let keys: Vec<String> = Inner::ALL
            .into_iter()
            .flat_map(|inner| {
                model
                    .inner_rows(inner)
                    .into_iter()
                    .map(move |r| Self::outer_key(inner, &r.key))
            })
            .collect();
        for key in keys {
            model.refile(&key);
        }
        for row in interactions {
            model.hydrate_interaction(row)?;
        }
        Ok(model)
    }

    /// Everything but the interactions stays in memory: the pairs' summaries, the channels,
    /// summits and commitments and the actors (their number does not grow with the log).
    const RESIDENT: Option<&'static [&'static str]> = Some(&[INTERNAL, ACTOR_STATUS, PAIR_STATUS]);

    fn wants(&self, fact: &Fact) -> Vec<Want> {
        let mut wants: Vec<Want> = self
            .channels
            .wants(fact)
            .into_iter()
            .map(|want| match want {
                Want::Key(key) => Want::Key(Self::outer_key(Inner::Channels, &key)),
                Want::Group { status, sort_key } if status == CONTACT_STATUS => Want::Group {
                    status: INTERACTION_STATUS.to_owned(),
                    sort_key,
                },
                other => other,
            })
            .collect();
        if let Some(id) = target_of(fact) {
            wants.push(Want::Key(format!("{INTERACTION_PREFIX}{id}")));
            // Known once its row is in (the runner asks again after hydrating): taking it out
            // of a pair may need the pair's next contact.
            if let Some(contact) = self.contacts.held.get(&id) {
                for pair in contact.pairs() {
                    let (a, b) = pair.split_once('+').expect("a pair key");
                    wants.push(Want::States {
                        status: INTERACTION_STATUS.to_owned(),
                        states: vec![a.to_owned(), b.to_owned()],
                    });
                }
            }
        }
        wants
    }

    fn hydrate(&mut self, rows: Vec<Row>) -> Result<(), String> {
        for row in rows {
            if row.status == INTERACTION_STATUS {
                self.hydrate_interaction(row)?;
            }
        }
        Ok(())
    }

    fn settle(&mut self) {
        self.channels.settle();
        self.contacts.held = HashMap::new();
        self.contacts.index = Index::default();
        for pair in self.pairs.values_mut() {
            pair.held = BTreeMap::new();
        }
    }
}

impl PairRecord {
    /// The contacts of these records: one tally, or both merged.
    pub fn tally(&self, records: Records) -> Tally {
        match records {
            Records::Both => self.readouts.merge(&self.coded),
            Records::Readouts => self.readouts.clone(),
            Records::Coded => self.coded.clone(),
        }
    }

    /// Every contact, readouts' and coded.
    pub fn all(&self) -> Tally {
        self.tally(Records::Both)
    }
}

/// Decodes a pair row.
pub fn pair_of(row: &Row) -> Result<PairRecord, String> {
    row.decode("relations")
}
