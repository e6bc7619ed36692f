//! What the streamed imports (GDELT, POLECAT) share: the tally of rows and events with its
//! progress line and summary, actors to register once per chunk, and recording one chunk of
//! items through [`super::import`] with each refused row reported, never dropped.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::io::IsTerminal;

use super::{GrpcChannel, ImportError, Item, OnInvalid, Origin, Problem, Report, import};
use crate::domain::diplomacy::{
    Actor, ActorId, ActorKind, ActorRegistered, DiplomaticEvent, EventKind, derived_event_id,
};

#[derive(Debug, thiserror::Error)]
pub enum StreamedImportError {
    #[error(transparent)]
    Read(#[from] super::tsv::ReadError),
    #[error(transparent)]
    Import(#[from] ImportError),
}

/// The counts of a streamed import, shown as a progress line and a final summary.
#[derive(Debug, Default)]
pub struct Tally {
    /// Data rows read (header rows not counted).
    pub rows: u64,
    /// Rows whose event (or report) is now in the log.
    pub imported: u64,
    /// Events the log did not have before (actor registrations included).
    pub written: usize,
    /// Events the log already had.
    pub already_present: usize,
    /// Rows not imported, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Other things worth counting (mentions deferred, codes without a state), by what.
    pub notes: BTreeMap<String, u64>,
    /// Whether a progress line is on the terminal, to be cleared before other output.
    progress_shown: bool,
}

impl Tally {
    pub fn skip(&mut self, reason: &str) {
        *self.skipped.entry(reason.to_owned()).or_default() += 1;
    }

    pub fn note(&mut self, what: &str) {
        *self.notes.entry(what.to_owned()).or_default() += 1;
    }

    pub fn skipped_rows(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Reports one row (or actor) that is not imported, on stderr, and counts it by `reason`.
    pub fn report(&mut self, problem: &Problem, reason: &str) {
        self.clear_progress();
        eprintln!("reported: {problem}");
        self.skip(reason);
    }

    /// The progress line, rewritten in place, when stderr is a terminal.
    pub fn show_progress(&mut self) {
        if std::io::stderr().is_terminal() {
            eprint!(
                "\r\x1b[K{} row(s) read, {} event(s) written, {} already in the log, {} skipped",
                self.rows,
                self.written,
                self.already_present,
                self.skipped_rows()
            );
            self.progress_shown = true;
        }
    }

    fn clear_progress(&mut self) {
        if std::mem::take(&mut self.progress_shown) {
            eprint!("\r\x1b[K");
        }
    }

    /// The final summary, several lines.
    pub fn summary(&mut self) -> String {
        self.clear_progress();
        let mut text = format!(
            "{} row(s) read: {} imported, {} skipped\n{} event(s) written, {} already in the log",
            self.rows,
            self.imported,
            self.skipped_rows(),
            self.written,
            self.already_present
        );
        for (reason, count) in &self.skipped {
            let _ = write!(text, "\nskipped: {count} {reason}");
        }
        for (what, count) in &self.notes {
            let _ = write!(text, "\nnoted: {count} {what}");
        }
        text
    }
}

/// The ids of the events a file has given so far, to report a row that repeats one (its id
/// reused with other contents would make the server refuse the chunk). Eight bytes of each id
/// (derived ids are hashes, so they do not collide in practice): the one thing an import keeps
/// beyond its chunk, about 80 MB for ten million events.
#[derive(Default)]
pub struct SeenIds(HashSet<u64>);

impl SeenIds {
    /// Whether the id is new.
    pub fn insert(&mut self, id: &crate::domain::EventId) -> bool {
        let bytes = id.as_uuid().into_bytes();
        let key = u64::from_le_bytes(bytes[..8].try_into().expect("eight bytes"));
        self.0.insert(key)
    }
}

/// An actor to register.
#[derive(Debug, Clone)]
pub struct NewActor {
    pub id: ActorId,
    pub kind: ActorKind,
    pub name: String,
    pub note: Option<String>,
}

/// The actors one chunk names, each once; the registrations go before the chunk's events, and
/// [`super::import`] leaves out those the log already holds.
#[derive(Default)]
pub struct Registrations {
    seen: HashSet<ActorId>,
    in_order: Vec<NewActor>,
}

impl Registrations {
    pub fn add(&mut self, actor: NewActor) {
        if self.seen.insert(actor.id.clone()) {
            self.in_order.push(actor);
        }
    }

    /// The registrations, their ids derived from `namespace` and the actor id.
    pub fn into_items(self, namespace: &str) -> Vec<Item> {
        self.in_order
            .into_iter()
            .map(|actor| Item {
                origin: Origin::Record(format!("actor {}", actor.id)),
                stream_id: format!("actor-{}", actor.id),
                id: derived_event_id(namespace, &format!("actor:{}", actor.id)),
                event: DiplomaticEvent {
                    occurred: None,
                    sources: Vec::new(),
                    evidence: Vec::new(),
                    coding: None,
                    note: actor.note,
                    kind: EventKind::ActorRegistered(ActorRegistered {
                        actor: Actor {
                            id: actor.id,
                            kind: actor.kind,
                            name: actor.name,
                            names: BTreeMap::new(),
                            country: None,
                            wikidata_id: None,
                            level: None,
                        },
                    }),
                },
            })
            .collect()
    }
}

/// An organisation actor `<prefix><slug of name>` (lowercase letters, digits, `.` and `-`,
/// at most 100 characters), or `None` when the name has nothing to make a slug of.
pub fn organisation(prefix: &str, name: &str, note: &str) -> Option<NewActor> {
    let mut slug = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let mut id = format!("{prefix}{}", slug.trim_matches(['-', '.']));
    id.truncate(100);
    let id = id.trim_end_matches(['-', '.']);
    if id.len() <= prefix.len() {
        return None;
    }
    Some(NewActor {
        id: ActorId::parse(id).ok()?,
        kind: ActorKind::Organisation,
        name: name.trim().to_owned(),
        note: Some(note.to_owned()),
    })
}

/// A problem with one row's field.
pub fn row_problem(line: u64, field: &str, message: impl Into<String>) -> Problem {
    Problem {
        origin: Origin::Line(line),
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Records one chunk's items (registrations first) and counts the outcome: every item the
/// rules refuse is reported. Returns the origins of the refused items, as written.
pub async fn record_chunk<T: GrpcChannel>(
    channel: T,
    items: Vec<Item>,
    tally: &mut Tally,
) -> Result<BTreeSet<String>, ImportError> {
    if items.is_empty() {
        return Ok(BTreeSet::new());
    }
    let report: Report = import(channel, items, OnInvalid::Report).await?;
    tally.written += report.written;
    tally.already_present += report.already_present;
    let mut refused = BTreeSet::new();
    for problem in &report.reported {
        tally.clear_progress();
        eprintln!("reported: {problem}");
        if refused.insert(problem.origin.to_string()) {
            let reason = match &problem.origin {
                Origin::Record(_) => "actor(s) refused by the log's rules",
                Origin::Line(_) => "row(s) refused by the log's rules",
            };
            *tally.skipped.entry(reason.to_owned()).or_default() += 1;
        }
    }
    Ok(refused)
}

/// `YYYYMMDDHHMMSS` (GDELT's times, UTC) as an RFC 3339 instant.
pub fn compact_instant(text: &str) -> Option<String> {
    let time = chrono::NaiveDateTime::parse_from_str(text.trim(), "%Y%m%d%H%M%S").ok()?;
    Some(
        time.and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organisations_are_named_by_a_slug() {
        let outlet = organisation("gdelt.source.", "BBC.co.uk", "an outlet").unwrap();
        assert_eq!(outlet.id.as_str(), "gdelt.source.bbc.co.uk");
        assert_eq!(outlet.name, "BBC.co.uk");
        let long = organisation("p.", &"Long name ".repeat(20), "x").unwrap();
        assert!(long.id.as_str().len() <= 100);
        assert!(organisation("p.", "¿¡", "x").is_none());
    }

    #[test]
    fn compact_times_are_utc_instants() {
        assert_eq!(
            compact_instant("20250215120000").as_deref(),
            Some("2025-02-15T12:00:00Z")
        );
        assert!(compact_instant("2025").is_none());
    }

    #[test]
    fn the_summary_counts_by_reason() {
        let mut tally = Tally {
            rows: 3,
            imported: 1,
            ..Default::default()
        };
        tally.skip("without an actor");
        tally.skip("without an actor");
        tally.note("mention(s) deferred");
        let summary = tally.summary();
        assert!(
            summary.contains("3 row(s) read: 1 imported, 2 skipped"),
            "{summary}"
        );
        assert!(summary.contains("skipped: 2 without an actor"), "{summary}");
        assert!(
            summary.contains("noted: 1 mention(s) deferred"),
            "{summary}"
        );
    }
}
