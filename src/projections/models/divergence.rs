//! `divergence`: per occurrence (a call, a meeting, a statement, an agreement stated, …), what
//! each source reported (its quotes and claims), which claims several sources share, and which
//! only one source makes. Later sources join the occurrence through `SourceReportAttached`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::EventId;
use crate::domain::diplomacy::{Category, EventKind, FuzzyTime, SourceAttribution};
use crate::projections::models::common::{
    ACTOR_STATUS, Contributions, Index, Origin, Registry, apply_fact, happened_key, replacement_of,
    target_of,
};
use crate::projections::{Fact, Model, Row, RowData, Want};

/// One source's report, as it came into the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The event that carried it: the occurrence itself or a later SourceReportAttached.
    pub origin: Origin,
    pub source_name: String,
    pub attribution: SourceAttribution,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Occurrence {
    pub event_id: EventId,
    /// The occurrence's own event (absent if it was retracted while reports remain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred: Option<FuzzyTime>,
    pub reports: Vec<Report>,
}

/// A claim and who makes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimSources {
    pub key: String,
    /// TOPIC, AGREEMENT, STATEMENT or FACT.
    pub kind: String,
    /// The sources that make it, with their wording.
    pub sources: Vec<SourceWording>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceWording {
    pub source: String,
    pub source_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceReport {
    pub source: String,
    pub source_name: String,
    pub reported_by: EventId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub quotes: Vec<QuoteView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuoteView {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub translation: Option<String>,
}

/// An occurrence's divergence as answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DivergenceView {
    pub occurrence: EventId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred: Option<FuzzyTime>,
    /// Each source's report, in log order.
    pub reports: Vec<SourceReport>,
    /// Claims more than one source makes.
    pub shared: Vec<ClaimSources>,
    /// Claims only one source makes.
    pub single_source: Vec<ClaimSources>,
}

impl Occurrence {
    pub fn view(&self) -> DivergenceView {
        let mut claims: BTreeMap<String, ClaimSources> = BTreeMap::new();
        for report in &self.reports {
            let source = report.attribution.source.to_string();
            for claim in &report.attribution.claims {
                let entry = claims
                    .entry(claim.key.as_str().to_owned())
                    .or_insert_with(|| ClaimSources {
                        key: claim.key.as_str().to_owned(),
                        kind: serde_json::to_value(claim.kind)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        sources: Vec::new(),
                    });
                if !entry.sources.iter().any(|s| s.source == source) {
                    entry.sources.push(SourceWording {
                        source: source.clone(),
                        source_name: report.source_name.clone(),
                        text: claim.text.clone(),
                    });
                }
            }
        }
        let (shared, single_source): (Vec<_>, Vec<_>) =
            claims.into_values().partition(|c| c.sources.len() > 1);
        DivergenceView {
            occurrence: self.event_id,
            stream_id: self.origin.as_ref().map(|o| o.stream_id.clone()),
            kind: self.kind.clone(),
            occurred: self.occurred.clone(),
            reports: self
                .reports
                .iter()
                .map(|r| SourceReport {
                    source: r.attribution.source.to_string(),
                    source_name: r.source_name.clone(),
                    reported_by: r.origin.event_id,
                    language: r
                        .attribution
                        .language
                        .as_ref()
                        .map(|l| l.as_str().to_owned()),
                    published_at: r.attribution.published_at,
                    url: r.attribution.url.clone(),
                    quotes: r
                        .attribution
                        .quotes
                        .iter()
                        .map(|q| QuoteView {
                            text: q.text.clone(),
                            language: q.language.as_ref().map(|l| l.as_str().to_owned()),
                            translation: q.translation.clone(),
                        })
                        .collect(),
                })
                .collect(),
            shared,
            single_source,
        }
    }
}

pub(crate) const PREFIX: &str = "occurrence:";
/// The small row of each `SourceReportAttached`, naming its occurrence: what a retraction or
/// a correction of the report needs to find the occurrence's row.
const ATTACHED_PREFIX: &str = "attached:";
/// The status of attachment rows, which lists leave out.
pub const ATTACHMENT_STATUS: &str = "attachment";

/// An attachment row's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Attachment {
    occurrence: EventId,
    origin: Origin,
}

#[derive(Debug, Default)]
pub struct Divergence {
    registry: Registry,
    occurrences: BTreeMap<EventId, Occurrence>,
    /// Report event -> the attachment (those held in memory).
    attached: HashMap<EventId, Attachment>,
    index: Index,
}

impl Divergence {
    pub fn occurrences(&self) -> impl Iterator<Item = &Occurrence> {
        self.occurrences.values()
    }

    fn reports(&self, fact: &Fact) -> Vec<Report> {
        fact.event
            .sources
            .iter()
            .map(|attribution| Report {
                origin: Origin::of(fact),
                source_name: self.registry.name(attribution.source.as_str()),
                attribution: attribution.clone(),
            })
            .collect()
    }

    fn entry(&mut self, id: EventId) -> &mut Occurrence {
        self.occurrences.entry(id).or_insert_with(|| Occurrence {
            event_id: id,
            origin: None,
            kind: None,
            occurred: None,
            reports: Vec::new(),
        })
    }
}

impl Contributions for Divergence {
    fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    fn add(&mut self, fact: &Fact) -> Vec<String> {
        let (target, own) = match &fact.event.kind {
            EventKind::SourceReportAttached(attached) => (attached.occurrence, false),
            kind if kind.category() == Category::Occurrence && !fact.event.sources.is_empty() => {
                (fact.event_id, true)
            }
            _ => return Vec::new(),
        };
        let reports = self.reports(fact);
        let occurrence = self.entry(target);
        if own {
            occurrence.origin = Some(Origin::of(fact));
            occurrence.kind = Some(fact.event.kind.name().to_owned());
            occurrence.occurred = fact.event.occurred.clone();
        }
        for report in reports {
            crate::projections::models::common::insert_by_position(
                &mut occurrence.reports,
                report,
                |r| r.origin.position,
            );
        }
        let key = format!("{PREFIX}{target}");
        let origin = Origin::of(fact);
        self.index.note(&origin, &key);
        if own {
            return vec![key];
        }
        let attached = format!("{ATTACHED_PREFIX}{}", fact.event_id);
        self.index.note(&origin, &attached);
        self.attached.insert(
            fact.event_id,
            Attachment {
                occurrence: target,
                origin,
            },
        );
        vec![key, attached]
    }

    fn remove(&mut self, id: EventId) -> (Vec<String>, Option<Origin>) {
        let Some((origin, keys)) = self.index.take(id) else {
            return (Vec::new(), None);
        };
        self.attached.remove(&id);
        for key in &keys {
            let Some(target) = key
                .strip_prefix(PREFIX)
                .and_then(|k| EventId::parse(k).ok())
            else {
                continue;
            };
            if let Some(occurrence) = self.occurrences.get_mut(&target) {
                occurrence.reports.retain(|r| r.origin.event_id != id);
                if target == id {
                    occurrence.origin = None;
                    occurrence.kind = None;
                    occurrence.occurred = None;
                }
                if occurrence.origin.is_none() && occurrence.reports.is_empty() {
                    self.occurrences.remove(&target);
                }
            }
        }
        (keys.into_iter().collect(), Some(origin))
    }
}

impl Model for Divergence {
    const NAME: &'static str = "divergence";
    /// 2: attachment rows; a bounded working set.
    /// 3: versioned rows (the rows are the same; bumped so that a rebuild writes their
    /// history, and an older server, which would not, leaves them alone).
    const VERSION: i32 = 3;

    fn apply(&mut self, fact: &Fact) -> Vec<String> {
        apply_fact(self, fact)
    }

    fn row(&self, key: &str) -> Option<Row> {
        if Registry::is_row(key) {
            return self.registry.row(key);
        }
        if let Some(report) = key.strip_prefix(ATTACHED_PREFIX) {
            let attachment = self.attached.get(&EventId::parse(report).ok()?)?;
            return Some(Row {
                key: key.to_owned(),
                data: RowData::new(attachment).expect("an attachment serializes"),
                actors: Vec::new(),
                states: Vec::new(),
                status: ATTACHMENT_STATUS.to_owned(),
                sort_key: report.to_owned(),
            });
        }
        let id = EventId::parse(key.strip_prefix(PREFIX)?).ok()?;
        let occurrence = self.occurrences.get(&id)?;
        let sources: BTreeSet<String> = occurrence
            .reports
            .iter()
            .map(|r| r.attribution.source.to_string())
            .collect();
        let states: BTreeSet<String> = sources
            .iter()
            .filter_map(|s| self.registry.state_of(s))
            .collect();
        Some(Row {
            key: key.to_owned(),
            data: RowData::new(occurrence).expect("an occurrence serializes"),
            actors: sources.into_iter().collect(),
            states: states.into_iter().collect(),
            // An occurrence retracted while later reports remain is kept, but not listed.
            status: if occurrence.origin.is_some() {
                "occurrence".into()
            } else {
                "retracted".into()
            },
            sort_key: happened_key(
                occurrence.occurred.as_ref(),
                occurrence.origin.as_ref().map_or(u64::MAX, |o| o.position),
            ),
        })
    }

    fn rows(&self) -> Vec<Row> {
        self.registry
            .rows()
            .chain(
                self.occurrences
                    .keys()
                    .filter_map(|id| self.row(&format!("{PREFIX}{id}"))),
            )
            .chain(
                self.attached
                    .keys()
                    .filter_map(|id| self.row(&format!("{ATTACHED_PREFIX}{id}"))),
            )
            .collect()
    }

    fn from_rows(rows: Vec<Row>) -> Result<Self, String> {
        let mut model = Self::default();
        model.hydrate(rows)?;
        Ok(model)
    }

    /// Only the actors stay in memory: an occurrence is needed again when a report is
    /// attached to it or one of its events is retracted or corrected, and its key follows
    /// from the event (or, for a report, from the report's attachment row).
    const RESIDENT: Option<&'static [&'static str]> = Some(&[ACTOR_STATUS]);

    fn wants(&self, fact: &Fact) -> Vec<Want> {
        let mut keys = Vec::new();
        if let EventKind::SourceReportAttached(attached) = &fact.event.kind {
            keys.push(Want::Key(format!("{PREFIX}{}", attached.occurrence)));
        }
        if let Some(id) = target_of(fact) {
            keys.push(Want::Key(format!("{PREFIX}{id}")));
            keys.push(Want::Key(format!("{ATTACHED_PREFIX}{id}")));
            // Known once the attachment row is in (the runner asks again after hydrating).
            if let Some(attachment) = self.attached.get(&id) {
                keys.push(Want::Key(format!("{PREFIX}{}", attachment.occurrence)));
            }
        }
        if let Some(replacement) = replacement_of(fact) {
            keys.extend(self.wants(&replacement));
        }
        keys
    }

    fn hydrate(&mut self, rows: Vec<Row>) -> Result<(), String> {
        for row in rows {
            if self.registry.load(&row)? {
                continue;
            }
            if row.status == ATTACHMENT_STATUS {
                let attachment: Attachment = row.decode("attachment")?;
                if !self.attached.contains_key(&attachment.origin.event_id) {
                    self.index.note(&attachment.origin, &row.key);
                    self.attached.insert(attachment.origin.event_id, attachment);
                }
                continue;
            }
            let occurrence: Occurrence = row.decode("divergence")?;
            if self.occurrences.contains_key(&occurrence.event_id) {
                continue;
            }
            for origin in occurrence
                .origin
                .iter()
                .chain(occurrence.reports.iter().map(|r| &r.origin))
            {
                self.index.note(origin, &row.key);
            }
            self.occurrences.insert(occurrence.event_id, occurrence);
        }
        Ok(())
    }

    fn settle(&mut self) {
        self.occurrences = BTreeMap::new();
        self.attached = HashMap::new();
        self.index = Index::default();
    }
}

/// Decodes a divergence row.
pub fn occurrence_of(row: &Row) -> Result<Occurrence, String> {
    row.decode("divergence")
}
