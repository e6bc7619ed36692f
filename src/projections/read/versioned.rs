//! Answers as of a position from the versions the runner records, not from a replay of the
//! whole log: the rows as they stood after the last commit on record at or before the
//! position (`engine::versions`), and the events since (fewer than two of the checkpoint's
//! `versions_every`) replayed on top in a model that holds what they need, as a runner's does
//! (its resident rows, and the rows they want). So an answer deep in a large log costs what a
//! live one does, plus a short replay: lists page in SQL or pass one row at a time, with the
//! rows the replay changed merged in, in list order. Answers on a day start the same way from
//! the rows on record before the first event that happened after it (`log_dates`), and
//! replay the rest of the log on top through `OnDate`, reading only what may have happened.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use chrono::NaiveDate;
use futures::TryStreamExt;
use tracing::debug;

use crate::monitoring::AS_OF_REPLAYED_EVENTS;
use crate::projections::engine::listing::{PageFrom, order_key};
use crate::projections::engine::rows::{ProjectionStore, RowFilter};
use crate::projections::engine::versions::Versions;
use crate::projections::models::common::target_of;
use crate::projections::read::on_date::{self, OnDate};
use crate::projections::read::request::QueryError;
use crate::projections::read::snapshots::Changed;
use crate::projections::read::window::{RowsPage, passes};
use crate::projections::{Fact, Model, Row, Want, Wanted};

/// A projection's rows as of a position: those on record at a commit (`versions`), but the
/// ones the events since changed (`changed`).
pub(super) struct VersionedRows {
    versions: Versions,
    changed: Arc<Changed>,
}

/// The rows of `M` as of `position`, or `None` if its live generation's rows are not
/// versioned from its start or are another version's, or the projection is too far behind
/// `position` (more than twice `versions_every` to replay): the caller replays the log
/// instead.
pub(super) async fn versioned<M: Model>(
    store: &ProjectionStore,
    position: u64,
) -> Result<Option<VersionedRows>, QueryError> {
    let Some(mut versions) = on_record::<M>(store, position).await? else {
        return Ok(None);
    };
    let mut on_top = OnTop::<M>::new(&mut versions, position).await?;
    let mut facts = std::pin::pin!(store.facts_between(versions.at, position));
    while let Some(fact) = facts.try_next().await? {
        on_top.push(&mut versions, fact).await?;
    }
    let changed = Arc::new(on_top.changed(&mut versions).await?);
    Ok(Some(VersionedRows { versions, changed }))
}

/// The rows of `M` on `date` as the log up to `position` tells it, where a replay on `date`
/// lets every event up to `covered` in as it is (`log_dates`): the rows on record up to
/// there, and the rest of the log replayed on top through [`OnDate`]. `None` as for
/// [`versioned`], as of `covered`, when no rows are on record before it, and once more than
/// `most_on_top` events are let in on top: a log recorded far out of date order (old records
/// imported after recent ones) lets most of itself in there, where a replay from the log's
/// start costs less, and every page of this answer would merge all they changed.
pub(super) async fn on_day<M: Model>(
    store: &ProjectionStore,
    covered: u64,
    position: u64,
    date: NaiveDate,
    most_on_top: u64,
) -> Result<Option<VersionedRows>, QueryError> {
    // Nothing on record to start from (a log in reverse date order, say): the whole log on
    // top would cost more than a plain replay, and every page would merge all it changed.
    if covered == 0 {
        return Ok(None);
    }
    let Some(mut versions) = on_record::<M>(store, covered).await? else {
        return Ok(None);
    };
    if versions.at == 0 {
        return Ok(None);
    }
    let mut on_top = OnTop::<M>::new(&mut versions, position).await?;
    let mut on = OnDate::new(date);
    let at = versions.at;
    let mut facts =
        std::pin::pin!(store.facts_happened_between(at, position, on_date::end_of(date)));
    while let Some(fact) = facts.try_next().await? {
        // An event this correction names that `on` was not given: where it was recorded
        // (let in if before the versions' commit, else later), as a replay from the start
        // would know.
        if let Some(target) = on.unplaced(&fact)
            && let Some(original) = store.recorded_where(target, fact.position).await?
        {
            let position = original.position as u64;
            on.place(
                target,
                position,
                original.stream_id,
                original.recorded_at,
                position <= at,
            );
        }
        if let Some(fact) = on.admit(fact) {
            if on_top.pushed == most_on_top {
                debug!(
                    projection = M::NAME,
                    at,
                    most_on_top,
                    "too many events on top of the recorded rows: replaying from the start"
                );
                return Ok(None);
            }
            on_top.push(&mut versions, fact).await?;
        }
    }
    let changed = Arc::new(on_top.changed(&mut versions).await?);
    Ok(Some(VersionedRows { versions, changed }))
}

/// The rows of `M` from what an earlier answer's replay on top of recorded versions changed
/// (`versioned`, `on_day`), if the rows it started from are still on record.
pub(super) async fn versioned_again<M: Model>(
    store: &ProjectionStore,
    changed: Arc<Changed>,
) -> Result<Option<VersionedRows>, QueryError> {
    // Rows of another generation (a rebuild swapped in since) are not mixed with these.
    let versions = on_record::<M>(store, changed.at).await?;
    Ok(versions
        .filter(|versions| versions.at == changed.at && versions.generation() == changed.generation)
        .map(|versions| VersionedRows { versions, changed }))
}

impl VersionedRows {
    /// What the replay on top of the rows on record changed.
    pub(super) fn changed(&self) -> Arc<Changed> {
        self.changed.clone()
    }
}

/// The rows of `M` on record at or before `position`, unless they are not versioned from the
/// generation's start, are another version's, or end more than twice `versions_every` before
/// `position`.
async fn on_record<M: Model>(
    store: &ProjectionStore,
    position: u64,
) -> Result<Option<Versions>, QueryError> {
    let versions = store.versions(M::NAME, M::VERSION, position).await?;
    Ok(versions.filter(|versions| position - versions.at <= 2 * versions.every))
}

/// Events applied in a model that holds what they need, as a runner's does (its resident
/// rows, and the rows each segment of events wants), and the keys of the rows they changed.
struct OnTop<M> {
    model: Option<M>,
    segment: Vec<Fact>,
    keys: BTreeSet<String>,
    /// The events pushed so far.
    pushed: u64,
}

/// Most events applied after one load of the rows they want.
const SEGMENT: usize = 512;

/// Whether `fact` starts a new segment after `segment`: a retraction or a correction does
/// (what a model wants for it depends on what it holds once every event before it is
/// applied), as does a full segment.
fn starts_segment(segment: &[Fact], fact: &Fact) -> bool {
    !segment.is_empty() && (target_of(fact).is_some() || segment.len() >= SEGMENT)
}

impl<M: Model> OnTop<M> {
    /// A model for the rows on record in `versions`, to apply events up to `position` on top.
    /// Loads its resident rows only if there are events to apply.
    async fn new(versions: &mut Versions, position: u64) -> Result<Self, QueryError> {
        let model = if versions.at < position {
            let resident = versions.resident(M::RESIDENT).await?;
            Some(M::from_rows(resident).map_err(QueryError::BadRow)?)
        } else {
            None
        };
        Ok(Self {
            model,
            segment: Vec::new(),
            keys: BTreeSet::new(),
            pushed: 0,
        })
    }

    async fn push(&mut self, versions: &mut Versions, fact: Fact) -> Result<(), QueryError> {
        metrics::counter!(AS_OF_REPLAYED_EVENTS).increment(1);
        self.pushed += 1;
        if starts_segment(&self.segment, &fact) {
            self.apply_segment(versions).await?;
        }
        self.segment.push(fact);
        Ok(())
    }

    async fn apply_segment(&mut self, versions: &mut Versions) -> Result<(), QueryError> {
        let model = self
            .model
            .as_mut()
            .expect("events to apply come only after a model is made for them");
        hydrate(versions, model, &self.segment, &self.keys).await?;
        for fact in self.segment.drain(..) {
            self.keys.extend(model.apply(&fact));
        }
        Ok(())
    }

    /// Each row the events changed: as it is now, or `None` if gone.
    async fn changed(mut self, versions: &mut Versions) -> Result<Changed, QueryError> {
        if !self.segment.is_empty() {
            self.apply_segment(versions).await?;
        }
        let rows = match self.model {
            Some(model) => self
                .keys
                .into_iter()
                .map(|key| {
                    let row = model.row(&key);
                    (key, row)
                })
                .collect(),
            None => BTreeMap::new(),
        };
        Ok(Changed::new(versions.at, versions.generation(), rows))
    }
}

/// Brings into `model` the rows on record that `facts` want, asking again after each load (a
/// row loaded can name further rows), as a runner does. Rows the replay has changed already
/// (`changed`) are left out: the model holds the newer ones, or removed them.
async fn hydrate<M: Model>(
    versions: &mut Versions,
    model: &mut M,
    facts: &[Fact],
    changed: &BTreeSet<String>,
) -> Result<(), QueryError> {
    let mut asked: HashSet<Want> = HashSet::new();
    loop {
        let wanted = Wanted::of(model, facts, &mut asked);
        if wanted.is_empty() {
            return Ok(());
        }
        let mut rows = versions.wanted(&wanted).await?;
        rows.retain(|row| !changed.contains(&row.key));
        model.hydrate(rows).map_err(QueryError::BadRow)?;
    }
}

/// A list's order: by sort key, then key, byte by byte (as `collate "C"` in SQL).
fn in_order(a: &Row, b: &Row) -> Ordering {
    order_key(a).cmp(&order_key(b))
}

impl VersionedRows {
    /// The keys whose stored rows do not count (the replay changed them).
    fn excluded(&self) -> Vec<String> {
        self.changed.rows.keys().cloned().collect()
    }

    /// Hands `each` the rows passing `filter`, in list order, one at a time.
    pub(super) async fn each_row(
        &mut self,
        filter: &RowFilter,
        mut each: impl FnMut(&Row) -> Result<(), QueryError>,
    ) -> Result<(), QueryError> {
        let excluded = self.excluded();
        let mut changed = changed_passing(&self.changed.rows, filter)
            .into_iter()
            .peekable();
        self.versions
            .each_row(filter, &excluded, |row| {
                while let Some(before) = changed.next_if(|c| in_order(c, &row).is_lt()) {
                    each(before)?;
                }
                each(&row)
            })
            .await?;
        changed.try_for_each(each)
    }

    /// `size` rows passing `filter` from `from`, in list order, how many pass in all and
    /// whether more follow.
    pub(super) async fn page_rows(
        &mut self,
        filter: &RowFilter,
        from: &PageFrom,
        size: usize,
    ) -> Result<RowsPage, QueryError> {
        let excluded = self.excluded();
        let changed = changed_passing(&self.changed.rows, filter);
        // One row more than the page: whether more follow.
        let limit = size as u64 + 1;
        let known = self.changed.stored_count(filter);
        let extra = changed.len() as u64;
        let (mut rows, stored) = match from {
            PageFrom::Offset(offset) => {
                // A stored row lands at most `changed.len()` places after its own index:
                // reading that many more, from that many earlier, covers every one that can
                // land on the page.
                let start = offset.saturating_sub(extra);
                let (window, stored) = self
                    .versions
                    .page_rows(
                        filter,
                        &excluded,
                        &PageFrom::Offset(start),
                        limit + extra,
                        known,
                    )
                    .await?;
                let page = merge_page(window, start, stored, &changed, *offset, limit);
                (page, stored)
            }
            PageFrom::After(place) => {
                let (window, stored) = self
                    .versions
                    .page_rows(filter, &excluded, from, limit, known)
                    .await?;
                // The changed rows are in list order: those after the place are a suffix.
                let first = changed.partition_point(|row| !place.is_before(row));
                (merge_first(window, &changed[first..], limit), stored)
            }
        };
        self.changed.note_stored_count(filter, stored);
        let more = rows.len() > size;
        rows.truncate(size);
        Ok(RowsPage {
            rows,
            total: stored + extra,
            more,
        })
    }
}

/// The first `limit` rows, in list order, of two lists each in list order.
fn merge_first(stored: Vec<Row>, changed: &[&Row], limit: u64) -> Vec<Row> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut changed = changed.iter().copied().peekable();
    let mut page = Vec::new();
    for row in stored {
        while let Some(before) = changed.next_if(|c| in_order(c, &row).is_lt()) {
            page.push(before.clone());
        }
        page.push(row);
        if page.len() >= limit {
            break;
        }
    }
    // Only as many of the changed rows left as the page has room for.
    let room = limit.saturating_sub(page.len());
    page.extend(changed.take(room).cloned());
    page.truncate(limit);
    page
}

/// The rows a replay changed (`changed`) that exist and pass `filter`, in list order.
fn changed_passing<'r>(
    changed: &'r BTreeMap<String, Option<Row>>,
    filter: &RowFilter,
) -> Vec<&'r Row> {
    let mut rows: Vec<&Row> = changed
        .values()
        .flatten()
        .filter(|row| passes(row, filter))
        .collect();
    rows.sort_by(|a, b| in_order(a, b));
    rows
}

/// The rows `[offset, offset + limit)` of the merge, in list order, of the stored rows `S`
/// (`stored` of them in all, of which `window` holds those from index `from`) with `changed`
/// (all of them, in list order, none of them in `S`). `from` is at most `changed.len()` below
/// `offset` and `window` holds `limit + changed.len()` rows or reaches the end of `S`, so
/// every row that can land on the page is at hand, and so is each one's index in the merge:
/// a stored row's is its own plus the changed rows before it; a changed row's is the stored
/// rows before it plus the changed rows before it, exact where the window shows where it
/// falls, and past either end of the window known to land off the page.
fn merge_page(
    window: Vec<Row>,
    from: u64,
    stored: u64,
    changed: &[&Row],
    offset: u64,
    limit: u64,
) -> Vec<Row> {
    let on_page = |index: u64| index >= offset && index < offset.saturating_add(limit);
    let mut placed: Vec<(u64, Row)> = Vec::new();
    let reaches_end = from + window.len() as u64 >= stored;
    for (i, row) in changed.iter().enumerate() {
        let before_window = from > 0 && window.first().is_none_or(|w| in_order(row, w).is_lt());
        let after_window = !reaches_end && window.last().is_none_or(|w| in_order(row, w).is_gt());
        if before_window || after_window {
            continue;
        }
        let stored_before = from + window.partition_point(|w| in_order(w, row).is_lt()) as u64;
        let index = stored_before + i as u64;
        if on_page(index) {
            placed.push((index, (*row).clone()));
        }
    }
    for (j, row) in window.into_iter().enumerate() {
        let changed_before = changed.partition_point(|c| in_order(c, &row).is_lt()) as u64;
        let index = from + j as u64 + changed_before;
        if on_page(index) {
            placed.push((index, row));
        }
    }
    placed.sort_by_key(|(index, _)| *index);
    placed.into_iter().map(|(_, row)| row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projections::engine::listing::ListPlace;
    use crate::projections::testing::row_at as row;

    fn keys(rows: &[Row]) -> Vec<String> {
        rows.iter()
            .map(|r| format!("{}/{}", r.sort_key, r.key))
            .collect()
    }

    /// A small deterministic generator (xorshift), so a failure names its case.
    struct Random(u64);

    impl Random {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    #[test]
    fn a_merged_page_is_the_page_of_the_whole_merge_for_every_offset_and_size() {
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        for case in 0..400 {
            let (stored_count, changed_count) = (random.below(30), random.below(8));
            // Distinct rows, some sharing sort keys; each goes to one side.
            let mut all: Vec<Row> = (0..stored_count + changed_count)
                .map(|i| row(&format!("{:02}", random.below(12)), &format!("k{i:02}")))
                .collect();
            all.sort_by(in_order);
            let mut stored = Vec::new();
            let mut changed = Vec::new();
            for row in &all {
                if changed.len() < changed_count as usize && random.below(3) == 0 {
                    changed.push(row.clone());
                } else {
                    stored.push(row.clone());
                }
            }
            let extra = changed.len() as u64;
            for offset in 0..=all.len() as u64 + 1 {
                for limit in 1..=5 {
                    let from = offset.saturating_sub(extra);
                    let window: Vec<Row> = stored
                        .iter()
                        .skip(from as usize)
                        .take((limit + extra) as usize)
                        .cloned()
                        .collect();
                    let page = merge_page(
                        window,
                        from,
                        stored.len() as u64,
                        &changed.iter().collect::<Vec<_>>(),
                        offset,
                        limit,
                    );
                    let expected: Vec<Row> = all
                        .iter()
                        .skip(offset as usize)
                        .take(limit as usize)
                        .cloned()
                        .collect();
                    assert_eq!(
                        keys(&page),
                        keys(&expected),
                        "case {case}, offset {offset}, limit {limit}"
                    );
                    // The page after the place of the row before `offset` (what a token
                    // names): the stored rows after it, merged with the changed ones after it.
                    let Some(last) = offset.checked_sub(1).and_then(|i| all.get(i as usize)) else {
                        continue;
                    };
                    let place = ListPlace::of(last);
                    let window: Vec<Row> = stored
                        .iter()
                        .filter(|row| place.is_before(row))
                        .take(limit as usize)
                        .cloned()
                        .collect();
                    let after: Vec<&Row> =
                        changed.iter().filter(|row| place.is_before(row)).collect();
                    assert_eq!(
                        keys(&merge_first(window, &after, limit)),
                        keys(&expected),
                        "case {case}, after item {offset}, limit {limit}"
                    );
                }
            }
        }
    }

    #[test]
    fn segments_start_at_each_amendment_but_the_first_event_and_when_full() {
        let mut facts = crate::projections::testing::founding_facts();
        // Retractions of the third and the fifth event, between the others.
        for (at, target) in [(6, 2), (3, 4)] {
            let retraction = Fact {
                event_id: crate::domain::EventId::generate(),
                event: on_date::retraction_of(facts[target].event_id),
                ..facts[target].clone()
            };
            facts.insert(at, retraction);
        }
        let mut segments: Vec<Vec<Fact>> = Vec::new();
        let mut segment: Vec<Fact> = Vec::new();
        for fact in &facts {
            if starts_segment(&segment, fact) {
                segments.push(std::mem::take(&mut segment));
            }
            segment.push(fact.clone());
        }
        segments.push(segment);
        assert_eq!(segments.len(), 3, "cut before each retraction");
        for segment in &segments {
            assert!(segment.len() <= SEGMENT);
            assert!(segment[1..].iter().all(|fact| target_of(fact).is_none()));
        }
        let full: Vec<Fact> = vec![facts[0].clone(); SEGMENT];
        assert!(starts_segment(&full, &facts[0]));
        assert!(!starts_segment(&full[1..], &facts[0]));
    }
}
