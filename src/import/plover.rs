//! PLOVER records (the JSON of the PLOVER project's gold-standard files): to be written.

use super::{Item, Problem};

/// A PLOVER file read into items to import and records reported as not importable.
#[derive(Debug, Default)]
pub struct PloverFile {
    /// Actor registrations first, then one event per importable record.
    pub items: Vec<Item>,
    /// Records that cannot be imported, by id, with the reason.
    pub reported: Vec<Problem>,
    /// Coded event records in the file (documentation records not counted).
    pub event_records: usize,
    /// Documentation records (`"event": "DOCUMENT"`), which describe the file.
    pub documentation_records: usize,
}

pub fn parse(_text: &str) -> Result<PloverFile, String> {
    Err("PLOVER import is not written yet".into())
}
