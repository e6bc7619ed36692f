//! A projection's rows as they stood after a commit of its live generation, read from the
//! versions its runner records (`since` on each row, and the history of replaced versions:
//! `migrations/…_projection_versions.sql`), for answers as of a position. One read-only
//! transaction at repeatable read holds a read: its statements see one snapshot, and the
//! generation's tables, once read, cannot be dropped under it (a rebuild drops a replaced
//! generation only when no reader holds it: `runner::generations::drop_others`).

use futures::TryStreamExt;
use sqlx::{Postgres, Transaction};

use crate::projections::engine::listing::{
    PageFrom, after_place, conditions, filtered, list_order, total_of,
};
use crate::projections::engine::rows::{ProjectionError, ProjectionStore, RowFilter, RowRecord};
use crate::projections::engine::tables::{history_table, rows_table};
use crate::projections::{Row, Wanted};

/// An open read of a projection's rows as they stood after the commit at position `at`.
pub struct Versions {
    tx: Transaction<'static, Postgres>,
    name: &'static str,
    generation: u64,
    /// The commit whose rows these are.
    pub at: u64,
    /// The checkpoint's `versions_every`.
    pub every: u64,
}

impl ProjectionStore {
    /// The rows of `name` as they stood after the last commit on record at or before
    /// `position`: the live position if the projection has not passed `position`, else the
    /// last multiple of the checkpoint's `versions_every` (each is a commit's position).
    /// `None` if the live generation's rows are not versioned from its start, or were written
    /// by another version of the model than `version` (a replay on top of them would mix the
    /// two: during an upgrade's rebuild).
    pub async fn versions(
        &self,
        name: &'static str,
        version: i32,
        position: u64,
    ) -> Result<Option<Versions>, ProjectionError> {
        // A rebuild may swap in a new generation and drop the one just read before its
        // tables are locked: then the new one is read. A checkpoint whose generation has no
        // tables (written by a server from before `runner::load` made both in one
        // transaction) has no versions on record (`None`: the caller replays).
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.versions_once(name, version, position).await {
                Err(ProjectionError::Database(sqlx::Error::Database(error)))
                    if error.code().as_deref() == Some(UNDEFINED_TABLE) =>
                {
                    if attempts == 3 {
                        return Ok(None);
                    }
                }
                outcome => return outcome,
            }
        }
    }

    async fn versions_once(
        &self,
        name: &'static str,
        version: i32,
        position: u64,
    ) -> Result<Option<Versions>, ProjectionError> {
        let mut tx = self.pool().begin().await?;
        // Plans made for each statement's values: a generic plan cannot know how many keys
        // a page leaves out, and one made for a few would compare every row with each.
        sqlx::raw_sql(
            "set transaction isolation level repeatable read, read only; \
             set local plan_cache_mode = force_custom_plan",
        )
        .execute(&mut *tx)
        .await?;
        let checkpoint: Option<(i64, i64, Option<i64>)> = sqlx::query_as(
            "select generation, position, versions_every from projection_checkpoints \
             where projection = $1 and version = $2",
        )
        .bind(name)
        .bind(version)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((generation, live, Some(every))) = checkpoint else {
            return Ok(None);
        };
        let generation = generation as u64;
        // Held until the transaction ends: the runner cannot drop them meanwhile.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "lock table {}, {} in access share mode",
            rows_table(name, generation),
            history_table(name, generation)
        )))
        .execute(&mut *tx)
        .await?;
        let (live, every) = (live as u64, every as u64);
        let at = if live <= position {
            live
        } else {
            position / every * every
        };
        Ok(Some(Versions {
            tx,
            name,
            generation,
            at,
            every,
        }))
    }
}

/// The columns of a row `r`.
const ROW: &str = "r.key, r.data, r.actors, r.states, r.status, r.sort_key";

/// PostgreSQL's `undefined_table`.
const UNDEFINED_TABLE: &str = "42P01";

impl Versions {
    /// The live generation whose rows these are.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The rows as of `at` (`$9`) that pass `filter` (`$2`-`$8`) and whose keys are not
    /// among `$11`, in the live table if no commit up to `at` replaced them since (`live`) or
    /// in the history: a version written at or before `at` that no commit up to `at`
    /// replaced. Each table is the generation's own, so a row's projection and generation go
    /// without saying (and an unfiltered count needs nothing but the list-order index).
    ///
    /// The keys the replay changed (thousands, after a few thousand events) are left out by
    /// an anti-join, which hashes them once, rather than by `<> all`, which would look
    /// through them for every row.
    fn passing(&self, filter: &RowFilter, live: bool, select: &str) -> String {
        let (table, current) = if live {
            (rows_table(self.name, self.generation), "r.since <= $9")
        } else {
            (
                history_table(self.name, self.generation),
                "r.since <= $9 and r.until > $9",
            )
        };
        format!(
            "select {select} from {table} r where {current} and {} \
             and not exists (select from unnest($11::text[]) as x(key) where x.key = r.key)",
            conditions(filter)
        )
    }

    /// Hands `each` the rows passing `filter`, but those with keys in `excluded`, in list
    /// order, as they arrive.
    pub async fn each_row<E: From<ProjectionError>>(
        &mut self,
        filter: &RowFilter,
        excluded: &[String],
        mut each: impl FnMut(Row) -> Result<(), E>,
    ) -> Result<(), E> {
        let sql = format!(
            "select r.* from ({} union all {}) r {}",
            self.passing(filter, true, ROW),
            self.passing(filter, false, ROW),
            list_order!()
        );
        let mut records = filtered(sqlx::AssertSqlSafe(sql), self.name, filter)
            .bind(self.at as i64)
            .bind(self.generation as i64)
            .bind(excluded)
            .fetch(&mut *self.tx);
        while let Some(record) = records.try_next().await.map_err(ProjectionError::from)? {
            if let (_, Some(row)) = record.split() {
                each(row)?;
            }
        }
        Ok(())
    }

    /// The rows passing `filter`, but those with keys in `excluded`, in list order: `limit`
    /// of them from `from`, and how many there are in all (`known` if given: not counted).
    pub async fn page_rows(
        &mut self,
        filter: &RowFilter,
        excluded: &[String],
        from: &PageFrom,
        limit: u64,
        known: Option<u64>,
    ) -> Result<(Vec<Row>, u64), ProjectionError> {
        let (offset, after) = from.parts();
        let after_place = if after.is_some() {
            after_place(15)
        } else {
            String::new()
        };
        // The count is a relation of one row joined once (see `listing::page_rows_sql`). The
        // page is chosen by key from the first `$14` (offset and limit) of each table in list
        // order (the live table's along its list-order index), after the place `$15`, `$16`
        // if one is given, and only its rows are read.
        let total = match known {
            Some(_) => "$17::bigint".to_owned(),
            None => format!(
                "({}) + ({})",
                self.passing(filter, true, "count(*)"),
                self.passing(filter, false, "count(*)")
            ),
        };
        let sql = format!(
            "with n as ( \
                 select {total} as total \
             ), k as ( \
                 select r.key, r.sort_key, r.until from ( \
                     ({keys_live}{after_place} {order} limit $14) \
                     union all ({keys_history}{after_place} {order} limit $14) \
                 ) r {order} offset $12 limit $13 \
             ) \
             select n.total, p.key, p.data, p.actors, p.states, p.status, p.sort_key \
             from n left join lateral ( \
                 select v.key, v.data, v.actors, v.states, v.status, v.sort_key \
                 from k cross join lateral ( \
                     select {ROW} from {rows} r where k.until is null \
                       and r.projection = $1 and r.generation = $10 and r.key = k.key \
                     union all \
                     select {ROW} from {history} r where r.key = k.key and r.until = k.until \
                 ) v order by k.sort_key collate \"C\", k.key collate \"C\" \
             ) p on true",
            keys_live = self.passing(filter, true, "r.key, r.sort_key, null::bigint as until"),
            keys_history = self.passing(filter, false, "r.key, r.sort_key, r.until"),
            order = list_order!(),
            rows = rows_table(self.name, self.generation),
            history = history_table(self.name, self.generation),
        );
        let records = filtered(sqlx::AssertSqlSafe(sql), self.name, filter)
            .bind(self.at as i64)
            .bind(self.generation as i64)
            .bind(excluded)
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(offset.saturating_add(limit)).unwrap_or(i64::MAX))
            .bind(after.map(|place| &place.sort_key))
            .bind(after.map(|place| &place.key))
            .bind(known.map(|total| i64::try_from(total).unwrap_or(i64::MAX)))
            .fetch_all(&mut *self.tx)
            .await?;
        let total = total_of(&records);
        let rows = records
            .into_iter()
            .filter_map(|record| record.split().1)
            .collect();
        Ok((rows, total))
    }

    /// The rows a model replaying the events after `at` wants (`Model::wants`): those with
    /// its keys, those of its groups, those under its key prefixes, and those of a status
    /// concerning all of some states, as the runner's look-up reads them
    /// (`runner::rows::hydrate`). Each part seeks an index of the live table.
    pub async fn wanted(&mut self, wanted: &Wanted) -> Result<Vec<Row>, ProjectionError> {
        let rows = rows_table(self.name, self.generation);
        let history = history_table(self.name, self.generation);
        let sql = format!(
            "select key, data, actors, states, status, sort_key from {rows} \
             where projection = $1 and generation = $6 and since <= $5 and key = any($2) \
             union all \
             select key, data, actors, states, status, sort_key from {history} \
             where key = any($2) and since <= $5 and until > $5 \
             union all \
             select r.key, r.data, r.actors, r.states, r.status, r.sort_key \
             from unnest($3::text[], $4::text[]) as g(status, sort_key) \
             join {rows} r on r.status = g.status and r.sort_key = g.sort_key \
             where r.since <= $5 \
             union all \
             select h.key, h.data, h.actors, h.states, h.status, h.sort_key \
             from unnest($3::text[], $4::text[]) as g(status, sort_key) \
             join {history} h on h.status = g.status and h.sort_key = g.sort_key \
             where h.since <= $5 and h.until > $5 \
             union all \
             select r.key, r.data, r.actors, r.states, r.status, r.sort_key \
             from unnest($7::text[], $8::text[]) as p(prefix, prefix_end) \
             join {rows} r on r.projection = $1 and r.generation = $6 \
                 and r.key >= p.prefix and r.key < p.prefix_end \
             where r.since <= $5 \
             union all \
             select h.key, h.data, h.actors, h.states, h.status, h.sort_key \
             from unnest($7::text[], $8::text[]) as p(prefix, prefix_end) \
             join {history} h on h.key >= p.prefix and h.key < p.prefix_end \
             where h.since <= $5 and h.until > $5"
        );
        let records: Vec<RowRecord> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(self.name)
            .bind(&wanted.keys)
            .bind(&wanted.statuses)
            .bind(&wanted.sort_keys)
            .bind(self.at as i64)
            .bind(self.generation as i64)
            .bind(&wanted.prefixes)
            .bind(&wanted.prefix_ends)
            .fetch_all(&mut *self.tx)
            .await?;
        let mut found: Vec<Row> = records.into_iter().map(Row::from).collect();
        for (status, states) in &wanted.with_states {
            let filter = RowFilter {
                status: vec![status.clone()],
                states: states.clone(),
                ..RowFilter::default()
            };
            self.each_row::<ProjectionError>(&filter, &[], |row| {
                found.push(row);
                Ok(())
            })
            .await?;
        }
        Ok(found)
    }

    /// The rows with the statuses a runner loads at start-up (`Model::RESIDENT`; every row
    /// if `None`).
    pub async fn resident(
        &mut self,
        statuses: Option<&[&str]>,
    ) -> Result<Vec<Row>, ProjectionError> {
        let filter = RowFilter {
            status: statuses
                .unwrap_or_default()
                .iter()
                .map(|status| (*status).to_owned())
                .collect(),
            ..RowFilter::default()
        };
        let mut rows = Vec::new();
        self.each_row::<ProjectionError>(&filter, &[], |row| {
            rows.push(row);
            Ok(())
        })
        .await?;
        Ok(rows)
    }
}
