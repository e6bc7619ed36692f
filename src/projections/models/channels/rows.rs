//! The channels model as rows: a row per channel (under its stored status, `CHANNEL_ROWS`,
//! sorted by when it was opened), a row per contact (`CONTACT_STATUS`, sorted under its
//! channel), the actors' and the changes of office holders' (`ACTOR_STATUS`); and the `Model`
//! implementation that writes them, takes them back, and keeps only the channels, the actors
//! and the holders resident.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{CONTACT_PREFIX, Channel, Channels, Contact, HOLDER_PREFIX, PREFIX, earliest, pairs};
use crate::domain::diplomacy::{ChannelStatus, ChannelStepKind};
use crate::projections::models::common::{
    ACTOR_STATUS, Index, Registry, apply_fact, interaction, party_states, replacement_of, target_of,
};
use crate::projections::{Fact, Model, Row, RowData, Want};

/// The status of contact rows, which lists leave out.
pub const CONTACT_STATUS: &str = "contact";
/// The statuses of the channels' own rows (not their contacts' nor the actors'): what a
/// list of channels reads.
pub const CHANNEL_ROWS: &[&str] = ChannelStatus::STORED;
const _: () = assert!(
    CHANNEL_ROWS.len() == 3,
    "`Channels::RESIDENT` names every one"
);

/// A contact's own row: which channel it went through, and the contact. An interaction has
/// one in each of its channels; the first (`contact:<id>`) names the others, so that a
/// retraction or a correction, which asks for it by key, can then ask for theirs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct ContactRow {
    pub(super) channel: String,
    pub(super) contact: Contact,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) others: Vec<String>,
}

impl Channel {
    /// When it was opened (for ordering).
    fn opened_key(&self) -> String {
        let opened = self
            .steps
            .iter()
            .filter(|s| s.step == ChannelStepKind::Established)
            .map(|s| (earliest(s.occurred.as_ref()), s.origin.position))
            .chain(
                self.contacts
                    .first
                    .iter()
                    .map(|c| (earliest(c.occurred.as_ref()), c.origin.position)),
            )
            .min_by_key(|(when, position)| (when.unwrap_or(DateTime::<Utc>::MAX_UTC), *position));
        match opened {
            Some((Some(when), position)) => format!("{}#{position:020}", when.to_rfc3339()),
            Some((None, position)) => format!("~#{position:020}"),
            None => "~".to_owned(),
        }
    }
}

impl Model for Channels {
    const NAME: &'static str = "channels";
    /// 3: contact rows sorted under their channel's key (so a channel's contacts can be read
    /// back together); a bounded working set. 4: rebuilt once, because a runner before batches
    /// were cut at amendments left a channel's summary short when a contact was retracted in
    /// the batch that recorded it. 5: pairwise channels (an interaction is a contact of every
    /// cross-state pair of its parties, and of their format when three or more states take
    /// part), a contact row per interaction and channel; the offices' holders at the last
    /// contact (a row per change of holder). 6: contacts' levels derived from the offices'
    /// where the interaction gives none. 7: coded records between people or offices are
    /// contacts.
    /// 8: versioned rows (the rows are the same; bumped so that a rebuild writes their
    /// history, and an older server, which would not, leaves them alone).
    const VERSION: i32 = 8;

    fn apply(&mut self, fact: &Fact) -> Vec<String> {
        apply_fact(self, fact)
    }

    fn row(&self, key: &str) -> Option<Row> {
        if Registry::is_row(key) {
            return self.registry.row(key);
        }
        if key.starts_with(HOLDER_PREFIX) {
            return self.holders.row(key);
        }
        if key.starts_with(CONTACT_PREFIX) {
            let row = self.contact_rows.get(key)?;
            return Some(Row {
                key: key.to_owned(),
                data: RowData::new(row).expect("a contact serializes"),
                actors: Vec::new(),
                states: Vec::new(),
                status: CONTACT_STATUS.to_owned(),
                sort_key: row.channel.clone(),
            });
        }
        let channel = self.channels.get(key.strip_prefix(PREFIX)?)?;
        let mut actors: Vec<String> = channel
            .parties
            .iter()
            .map(|p| p.id.clone())
            .chain(channel.people.iter().cloned())
            .collect();
        actors.sort();
        actors.dedup();
        Some(Row {
            key: key.to_owned(),
            data: RowData::new(channel).expect("a channel serializes"),
            actors,
            states: party_states(&channel.parties),
            status: channel.stored_status().stored().to_owned(),
            sort_key: channel.opened_key(),
        })
    }

    fn rows(&self) -> Vec<Row> {
        self.registry
            .rows()
            .chain(self.holders.rows())
            .chain(
                self.channels
                    .keys()
                    .filter_map(|key| self.row(&format!("{PREFIX}{key}"))),
            )
            .chain(self.contact_rows.keys().filter_map(|key| self.row(key)))
            .collect()
    }

    fn from_rows(rows: Vec<Row>) -> Result<Self, String> {
        let mut model = Self::default();
        model.hydrate(rows)?;
        Ok(model)
    }

    /// The actors and the channels stay in memory (their number does not grow with the
    /// log); contacts come back only for a retraction or a correction, and then all of the
    /// channel's (its summary needs them all).
    const RESIDENT: Option<&'static [&'static str]> = Some(&[
        ACTOR_STATUS,
        // Every channel row (`CHANNEL_ROWS`, three of them: checked below).
        CHANNEL_ROWS[0],
        CHANNEL_ROWS[1],
        CHANNEL_ROWS[2],
    ]);

    fn wants(&self, fact: &Fact) -> Vec<Want> {
        let contacts_of = |channel: String| Want::Group {
            status: CONTACT_STATUS.to_owned(),
            sort_key: channel,
        };
        let mut wants = Vec::new();
        if let Some(id) = target_of(fact) {
            wants.push(Want::Key(format!("{CONTACT_PREFIX}{id}")));
            // Known once the first contact row is in (the runner asks again after hydrating):
            // every channel the interaction went through, whose rows hold its other contacts.
            if let Some(row) = self.contact_rows.get(&format!("{CONTACT_PREFIX}{id}")) {
                for channel in std::iter::once(&row.channel).chain(&row.others) {
                    wants.push(contacts_of(channel.clone()));
                }
            }
        }
        // A replacement takes its original's place among its channels' contacts.
        if let Some(replacement) = replacement_of(fact)
            && let Some(interaction) = interaction(&replacement.event)
        {
            for through in pairs::channels_of(&self.registry, &interaction) {
                wants.push(contacts_of(through.key));
            }
        }
        wants
    }

    fn hydrate(&mut self, rows: Vec<Row>) -> Result<(), String> {
        for row in rows {
            // Holders' changes share the actors' status: before the registry.
            if let Some(origin) = self.holders.load(&row) {
                self.index.note(&origin?.clone(), &row.key);
                continue;
            }
            if self.registry.load(&row)? {
                continue;
            }
            if row.status == CONTACT_STATUS {
                let contact: ContactRow = row.decode("contact")?;
                if self.contact_rows.contains_key(&row.key) {
                    continue;
                }
                let origin = &contact.contact.origin;
                self.index
                    .note(origin, &format!("{PREFIX}{}", contact.channel));
                self.index.note(origin, &row.key);
                // Filed without touching the channel's summary, which counts them already.
                self.contacts
                    .entry(contact.channel.clone())
                    .or_default()
                    .insert(contact.contact.clone());
                self.contact_rows.insert(row.key, contact);
                continue;
            }
            let channel: Channel = row.decode("channel")?;
            if self.channels.contains_key(&channel.key) {
                continue;
            }
            for step in &channel.steps {
                self.index.note(&step.origin, &row.key);
            }
            if let Some(stream) = &channel.stream_id {
                self.streams.insert(stream.clone(), channel.key.clone());
            }
            self.channels.insert(channel.key.clone(), channel);
        }
        Ok(())
    }

    fn settle(&mut self) {
        self.contacts = HashMap::new();
        self.contact_rows = HashMap::new();
        self.index = Index::default();
        for (origin, key) in self.holders.origins() {
            self.index.note(origin, &key);
        }
        for channel in self.channels.values() {
            for step in &channel.steps {
                self.index
                    .note(&step.origin, &format!("{PREFIX}{}", channel.key));
            }
        }
    }
}

/// Decodes a channel row (as `Channels::row` wrote it).
pub fn channel_of(row: &Row) -> Result<Channel, String> {
    row.decode("channel")
}
