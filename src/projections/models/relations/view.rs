//! The relations of a pair of states as answered at a given time: their contacts, and of
//! their channels, summits and commitments those still open or pending then.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::PairContact;
use super::rows::PairRecord;
use crate::domain::diplomacy::{ChannelStatus, CommitmentStatus, CountryCode};
use crate::projections::models::channels::view::ChannelView;
use crate::projections::models::commitments::CommitmentView;
use crate::projections::models::summits::{Summit, SummitView};

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
                .filter(|c| ChannelStatus::parse(&c.status).is_none_or(ChannelStatus::is_open))
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
                .filter(|c| {
                    CommitmentStatus::parse(&c.status).is_some_and(CommitmentStatus::is_open)
                })
                .collect(),
        }
    }
}
