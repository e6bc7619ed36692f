//! The relations of a pair of states as answered at a given time: their contacts (of the
//! readouts, of the coded records, or both), and of their channels, summits and commitments
//! those still open or pending then. Channels, summits and commitments are lifecycles that
//! typed records step through (a coded record never does), so an answer about coded records
//! only leaves them out.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::PairContact;
use super::rows::PairRecord;
use crate::domain::diplomacy::{ChannelStatus, CommitmentStatus, CountryCode};
use crate::projections::models::channels::view::ChannelView;
use crate::projections::models::commitments::CommitmentView;
use crate::projections::models::common::Records;
use crate::projections::models::summits::{Summit, SummitView};

/// The relations of two states as answered at a given time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelationView {
    pub states: Vec<String>,
    pub state_names: Vec<String>,
    pub contacts: u32,
    pub contacts_by_level: BTreeMap<String, u32>,
    pub contacts_by_plover_type: BTreeMap<String, u32>,
    pub contacts_by_quad_class: BTreeMap<String, u32>,
    /// Of `contacts`, how many are coded records.
    pub coded_contacts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_contact: Option<PairContact>,
    /// Channels between them that are not closed.
    pub open_channels: Vec<ChannelView>,
    pub pending_summits: Vec<SummitView>,
    /// Commitments neither fulfilled nor withdrawn (lapsed included).
    pub pending_commitments: Vec<CommitmentView>,
}

impl PairRecord {
    /// The pair as answered at `reference`, counting `records`. None when those records say
    /// nothing of it (coded records only, and there are none).
    pub fn view(
        &self,
        reference: DateTime<Utc>,
        dormant_after: Duration,
        records: Records,
    ) -> Option<RelationView> {
        let tally = self.tally(records);
        let lifecycles = records != Records::Coded;
        let view = RelationView {
            states: self.states.to_vec(),
            state_names: self
                .states
                .iter()
                .map(|s| CountryCode::parse(s).map_or_else(|_| s.clone(), |c| c.name().to_owned()))
                .collect(),
            contacts: tally.contacts,
            contacts_by_level: tally.contacts_by_level,
            contacts_by_plover_type: tally.contacts_by_plover_type,
            contacts_by_quad_class: tally.contacts_by_quad_class,
            coded_contacts: if records.keeps(true) {
                self.coded.contacts
            } else {
                0
            },
            last_contact: tally.last_contact,
            open_channels: self
                .channels
                .iter()
                .filter(|_| lifecycles)
                .map(|c| c.view(reference, dormant_after))
                .filter(|c| ChannelStatus::parse(&c.status).is_none_or(ChannelStatus::is_open))
                .collect(),
            pending_summits: self
                .summits
                .iter()
                .filter(|_| lifecycles)
                .filter_map(Summit::view)
                .filter(|s| s.pending)
                .collect(),
            pending_commitments: self
                .commitments
                .iter()
                .filter(|_| lifecycles)
                .filter_map(|c| c.view(reference))
                .filter(|c| {
                    CommitmentStatus::parse(&c.status).is_some_and(CommitmentStatus::is_open)
                })
                .collect(),
        };
        let says_something = view.contacts > 0
            || !view.open_channels.is_empty()
            || !view.pending_summits.is_empty()
            || !view.pending_commitments.is_empty();
        (records == Records::Both || says_something).then_some(view)
    }
}
