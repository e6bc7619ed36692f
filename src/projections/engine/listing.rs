//! The live rows a list reads: every row passing a filter, handed over one at a time (none
//! kept here), or one page of them with their count, both in list order and each read in one
//! statement (one snapshot) with the position the rows reflect, so rows and position agree
//! even while the runner writes or a rebuild swaps in. No rows and position 0 before the
//! projection's runner first started.

use futures::TryStreamExt;
use sqlx::Postgres;
use sqlx::postgres::PgArguments;
use sqlx::query::QueryAs;
use sqlx::types::Json;

use crate::projections::engine::counts::LiveCount;
use crate::projections::engine::rows::{ProjectionError, ProjectionStore, RowFilter};
use crate::projections::{Row, RowData};

/// The filter on rows `r` (of any generation or version), its values bound to `$2`-`$8` (see
/// [`filtered`]): only the parts `filter` sets, so that a list without them reads no more than
/// it must (an unfiltered one is counted from an index alone, and paged along one).
pub(super) fn conditions(filter: &RowFilter) -> String {
    let parts = [
        (filter.actor.is_some(), "r.actors @> array[$2::text]"),
        (!filter.states.is_empty(), "r.states @> $3::text[]"),
        (!filter.status.is_empty(), "r.status = any($4::text[])"),
        (
            !filter.without_status.is_empty(),
            "r.status <> all($5::text[])",
        ),
        (!filter.keys.is_empty(), "r.key = any($6::text[])"),
        (filter.at_path.is_some(), "r.data #>> $7::text[] = $8"),
    ];
    parts
        .iter()
        .filter(|(set, _)| *set)
        .fold("true".to_owned(), |all, (_, part)| {
            format!("{all} and {part}")
        })
}

/// The rows of the live generation (`c`) that pass `filter`, as `r`.
fn passing(filter: &RowFilter) -> String {
    format!(
        "r.projection = $1 and r.generation = c.generation and {}",
        conditions(filter)
    )
}

/// A list's order (byte order, as replayed models sort).
macro_rules! list_order {
    () => {
        "order by r.sort_key collate \"C\", r.key collate \"C\""
    };
}
pub(super) use list_order;

/// One page of the rows passing `filter` (`$1`-`$8`), from `$9` or, with `after`, from the
/// first row after `($11, $12)` in list order (found along the list-order index, however deep),
/// at most `$10`, with their count, the generation and the position: what
/// [`ProjectionStore::page_rows`] runs (public for the tests of its plan). The count is a
/// relation of one row joined once: a scalar subquery in the select list would be evaluated
/// again for every row of the page. It is not taken at all when the checkpoint still names the
/// generation `$13` and position `$14` of a count `$15` (null: none known) that an earlier page
/// took: the rows cannot have changed since.
pub fn page_rows_sql(filter: &RowFilter, after: bool) -> String {
    let passing = passing(filter);
    let after = if after {
        after_place(11)
    } else {
        String::new()
    };
    format!(
        "with c as ( \
             select generation, position from projection_checkpoints where projection = $1 \
         ), n as ( \
             select count(*) as total from c join projection_rows r on {passing} \
             where c.generation is distinct from $13 or c.position is distinct from $14 \
         ) \
         select c.generation, c.position, \
                case when c.generation = $13 and c.position = $14 then $15 else n.total end \
                    as total, \
                p.key, p.data, p.actors, p.states, p.status, p.sort_key \
         from c cross join n left join lateral ( \
             select r.key, r.data, r.actors, r.states, r.status, r.sort_key \
             from projection_rows r where {passing}{after} {} offset $9 limit $10 \
         ) p on true",
        list_order!()
    )
}

/// ` and` rows `r` after the place given as `$first` (sort key) and the next parameter (key)
/// in list order, in the list-order index's own terms (so it is the index's condition).
pub(super) fn after_place(first: u8) -> String {
    format!(
        " and (r.sort_key collate \"C\", r.key collate \"C\") \
         > (${first}::text collate \"C\", ${}::text collate \"C\")",
        first + 1
    )
}

/// What lists are ordered by, as bytes (`list_order!`'s collation): the sort key, then the key.
pub fn order_key(row: &Row) -> (&[u8], &[u8]) {
    (row.sort_key.as_bytes(), row.key.as_bytes())
}

/// A row's place in list order: its sort key, then its key (byte order, as `list_order!`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPlace {
    pub sort_key: String,
    pub key: String,
}

impl PageFrom {
    /// The offset to count from (0 after a place) and the place, if any.
    pub fn parts(&self) -> (u64, Option<&ListPlace>) {
        match self {
            PageFrom::Offset(offset) => (*offset, None),
            PageFrom::After(place) => (0, Some(place)),
        }
    }
}

impl ListPlace {
    pub fn of(row: &Row) -> Self {
        ListPlace {
            sort_key: row.sort_key.clone(),
            key: row.key.clone(),
        }
    }

    /// `row` comes after this place in list order.
    pub fn is_before(&self, row: &Row) -> bool {
        order_key(row) > (self.sort_key.as_bytes(), self.key.as_bytes())
    }
}

/// Where a page of a list starts: after so many rows, or right after a row's place (which
/// stays right however many rows come or go before it, and is found without counting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageFrom {
    Offset(u64),
    After(ListPlace),
}

/// One page of a list's rows.
#[derive(Debug, Clone, PartialEq)]
pub struct RowPage {
    pub rows: Vec<Row>,
    /// The rows passing the filter, on all pages.
    pub total: u64,
    /// More rows follow the page.
    pub more: bool,
    /// The log position the rows reflect.
    pub position: u64,
}

impl ProjectionStore {
    /// Hands `each` the live rows of `name` that pass `filter`, in list order, as they arrive
    /// from PostgreSQL (memory stays bounded however many there are), and answers the position
    /// they reflect. Stops at the first error `each` answers.
    #[tracing::instrument(skip(self, each))]
    pub async fn each_row<E: From<ProjectionError>>(
        &self,
        name: &str,
        filter: &RowFilter,
        mut each: impl FnMut(Row) -> Result<(), E>,
    ) -> Result<u64, E> {
        // The left join keeps the checkpoint's position when no row passes the filter.
        let sql = format!(
            "with c as ( \
                 select generation, position from projection_checkpoints where projection = $1 \
             ) \
             select c.position, r.key, r.data, r.actors, r.states, r.status, r.sort_key \
             from c left join projection_rows r on {} {}",
            passing(filter),
            list_order!()
        );
        let mut records = filtered(sqlx::AssertSqlSafe(sql), name, filter).fetch(self.pool());
        let mut position = 0;
        while let Some(record) = records.try_next().await.map_err(ProjectionError::from)? {
            let (at, row) = record.split();
            position = at;
            if let Some(row) = row {
                each(row)?;
            }
        }
        Ok(position)
    }

    /// The live rows of `name` passing `filter`, in list order: `limit` of them from `from`,
    /// with how many pass in all and whether more follow. PostgreSQL counts and pages; only
    /// the page (and one row more) is read. The count is remembered for the next page, which
    /// takes it unless the rows have moved.
    #[tracing::instrument(skip(self))]
    pub async fn page_rows(
        &self,
        name: &str,
        filter: &RowFilter,
        from: &PageFrom,
        limit: u64,
    ) -> Result<RowPage, ProjectionError> {
        let (offset, after) = from.parts();
        let counted = (name.to_owned(), filter.clone());
        let known = self.live_counts().get(&counted);
        let sql = page_rows_sql(filter, after.is_some());
        let records = filtered(sqlx::AssertSqlSafe(sql), name, filter)
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .bind(i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX))
            .bind(after.map(|place| &place.sort_key))
            .bind(after.map(|place| &place.key))
            .bind(known.map(|count| count.generation as i64))
            .bind(known.map(|count| count.position as i64))
            .bind(known.map(|count| i64::try_from(count.total).unwrap_or(i64::MAX)))
            .fetch_all(self.pool())
            .await?;
        let total = total_of(&records);
        let generation = records.first().and_then(|record| record.generation);
        let mut page = RowPage {
            rows: Vec::with_capacity(records.len()),
            total,
            more: false,
            position: 0,
        };
        for record in records {
            let (position, row) = record.split();
            page.position = position;
            page.rows.extend(row);
        }
        // No checkpoint yet (no generation): nothing to remember.
        if let Some(generation) = generation {
            let count = LiveCount {
                generation: generation as u64,
                position: page.position,
                total,
            };
            if known != Some(count) {
                self.live_counts().note(counted, count);
            }
        }
        page.more = page.rows.len() as u64 > limit;
        page.rows
            .truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(page)
    }

    /// Every live row of `name` passing `filter`, in list order, and the position they
    /// reflect (for tests and tools; a list reads through `each_row` or `page_rows`).
    pub async fn load_rows(
        &self,
        name: &str,
        filter: &RowFilter,
    ) -> Result<(Vec<Row>, u64), ProjectionError> {
        let mut rows = Vec::new();
        let position = self
            .each_row::<ProjectionError>(name, filter, |row| {
                rows.push(row);
                Ok(())
            })
            .await?;
        Ok((rows, position))
    }
}

/// `sql` with the projection `name` and `filter` bound to `$1`-`$8` (see [`conditions`]).
pub(super) fn filtered<'q>(
    sql: impl sqlx::SqlSafeStr,
    name: &'q str,
    filter: &'q RowFilter,
) -> QueryAs<'q, Postgres, FilteredRow, PgArguments> {
    sqlx::query_as(sql)
        .bind(name)
        .bind(&filter.actor)
        .bind(&filter.states)
        .bind(&filter.status)
        .bind(&filter.without_status)
        .bind(&filter.keys)
        .bind(filter.at_path.as_ref().map(|(path, _)| path))
        .bind(filter.at_path.as_ref().map(|(_, value)| value))
}

/// The count a page's rows carry (each the same).
pub(super) fn total_of(records: &[FilteredRow]) -> u64 {
    records.first().and_then(|r| r.total).unwrap_or(0) as u64
}

/// A list's result row: the checkpoint's position, its generation and the count when asked
/// for, and, unless no row passed, a row.
#[derive(sqlx::FromRow)]
pub(super) struct FilteredRow {
    /// The live generation, when asked for.
    #[sqlx(default)]
    generation: Option<i64>,
    #[sqlx(default)]
    position: Option<i64>,
    #[sqlx(default)]
    total: Option<i64>,
    key: Option<String>,
    data: Option<Json<RowData>>,
    actors: Option<Vec<String>>,
    states: Option<Vec<String>>,
    status: Option<String>,
    sort_key: Option<String>,
}

impl FilteredRow {
    pub(super) fn split(self) -> (u64, Option<Row>) {
        let row = match (
            self.key,
            self.data,
            self.actors,
            self.states,
            self.status,
            self.sort_key,
        ) {
            (
                Some(key),
                Some(Json(data)),
                Some(actors),
                Some(states),
                Some(status),
                Some(sort_key),
            ) => Some(Row {
                key,
                data,
                actors,
                states,
                status,
                sort_key,
            }),
            _ => None,
        };
        (self.position.unwrap_or(0) as u64, row)
    }
}
