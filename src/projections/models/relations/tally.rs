//! A pair's contacts added up, one tally for the readouts' interactions and one for the coded
//! records: how many, by level, by PLOVER type and by quad class, and the last one. A reader
//! asks for either or both (`Records`); both is the two tallies merged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::PairContact;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Tally {
    pub contacts: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub contacts_by_level: BTreeMap<String, u32>,
    /// By the PLOVER type of the contact's coding (a typed interaction's default coding
    /// included: a call is CONSULT); contacts without one are not counted here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub contacts_by_plover_type: BTreeMap<String, u32>,
    /// By quad class (`VERBAL_COOPERATION`, …), derived from the PLOVER type.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub contacts_by_quad_class: BTreeMap<String, u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_contact: Option<PairContact>,
    /// Where the last contact stands among the pair's contacts (its `happened_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_contact_key: Option<String>,
}

fn count_in(map: &mut BTreeMap<String, u32>, key: Option<&String>) {
    if let Some(key) = key {
        *map.entry(key.clone()).or_insert(0) += 1;
    }
}

fn count_out(map: &mut BTreeMap<String, u32>, key: Option<&String>) {
    if let Some(key) = key
        && let Some(count) = map.get_mut(key)
    {
        *count -= 1;
        if *count == 0 {
            map.remove(key);
        }
    }
}

fn merged(a: &BTreeMap<String, u32>, b: &BTreeMap<String, u32>) -> BTreeMap<String, u32> {
    let mut sum = a.clone();
    for (key, count) in b {
        *sum.entry(key.clone()).or_insert(0) += count;
    }
    sum
}

impl Tally {
    /// Counts a contact that happened at `when` (its `happened_key`).
    pub fn add(&mut self, when: &str, contact: &PairContact) {
        self.contacts += 1;
        count_in(&mut self.contacts_by_level, Some(&contact.level));
        count_in(
            &mut self.contacts_by_plover_type,
            contact.plover_type.as_ref(),
        );
        count_in(
            &mut self.contacts_by_quad_class,
            contact.quad_class.as_ref(),
        );
        if self
            .last_contact_key
            .as_deref()
            .is_none_or(|last| when > last)
        {
            self.last_contact = Some(contact.clone());
            self.last_contact_key = Some(when.to_owned());
        }
    }

    /// Takes a contact out; `held` is the pair's contacts of this tally's kind left after it
    /// (all of them in memory), from which the last one is found again if it was the last.
    pub fn remove<'h>(
        &mut self,
        when: &str,
        contact: &PairContact,
        mut held: impl DoubleEndedIterator<Item = (&'h String, &'h PairContact)>,
    ) {
        self.contacts = self.contacts.saturating_sub(1);
        count_out(&mut self.contacts_by_level, Some(&contact.level));
        count_out(
            &mut self.contacts_by_plover_type,
            contact.plover_type.as_ref(),
        );
        count_out(
            &mut self.contacts_by_quad_class,
            contact.quad_class.as_ref(),
        );
        if self.last_contact_key.as_deref() == Some(when) {
            let last = held.next_back();
            self.last_contact_key = last.map(|(when, _)| when.clone());
            self.last_contact = last.map(|(_, contact)| contact.clone());
        }
    }

    /// Both tallies as one: the sums, and the later last contact.
    pub fn merge(&self, other: &Tally) -> Tally {
        let later = if other.last_contact_key > self.last_contact_key {
            other
        } else {
            self
        };
        Tally {
            contacts: self.contacts + other.contacts,
            contacts_by_level: merged(&self.contacts_by_level, &other.contacts_by_level),
            contacts_by_plover_type: merged(
                &self.contacts_by_plover_type,
                &other.contacts_by_plover_type,
            ),
            contacts_by_quad_class: merged(
                &self.contacts_by_quad_class,
                &other.contacts_by_quad_class,
            ),
            last_contact: later.last_contact.clone(),
            last_contact_key: later.last_contact_key.clone(),
        }
    }
}
