//! The tables of a projection's generations (`migrations/…_projection_generations.sql`): one
//! per generation, under the projection's partition of `projection_rows`. A rebuild's
//! generation is a table of its own, without secondary indexes, until it is finished:
//! indexed once and attached, in the transaction before the swap. A replaced generation is
//! detached and dropped after the swap, never deleted row by row, and never waited for: a
//! step that would wait for its readers gives up and is tried again (`drop_others`). Only
//! the runner holding the projection's lock calls these.

use std::time::Instant;

use sqlx::{Connection, PgConnection};
use tracing::{info, warn};

use crate::projections::engine::error::ProjectionError;
use crate::projections::engine::tables::{history_prefix, history_table, quote};

/// Memory for building a generation's indexes (PostgreSQL's default, 64 MB, makes a GIN
/// index over a million rows spill to disk in many passes).
const INDEX_BUILD_MEMORY: &str = "256MB";

pub(super) use crate::projections::engine::tables::rows_table as table;

/// Creates generation `generation` of `name` as an empty table with its primary key only,
/// which readers cannot see, and its empty history table (leftovers of those names are
/// dropped first).
pub(super) async fn create(
    connection: &mut PgConnection,
    name: &str,
    generation: u64,
) -> Result<(), ProjectionError> {
    sqlx::query("select diplog_projection_generation_create($1, $2)")
        .bind(name)
        .bind(generation as i64)
        .execute(connection)
        .await?;
    Ok(())
}

/// The secondary indexes a lookup of a build needs before the build is finished: made at
/// the first lookup that needs them (only retractions and corrections do), then kept.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct LateIndexes {
    /// `(status, sort_key)`: a group of rows (a channel's contacts).
    pub status: bool,
    /// `states`: rows concerning some states (a pair's contacts).
    pub states: bool,
}

impl LateIndexes {
    /// The live generation's: indexed from the start.
    pub fn all() -> Self {
        Self {
            status: true,
            states: true,
        }
    }

    /// Makes sure `table` has the indexes a lookup by status (and by states) needs.
    pub(super) async fn ensure(
        &mut self,
        connection: &mut PgConnection,
        table: &str,
        status: bool,
        states: bool,
    ) -> Result<(), ProjectionError> {
        if status && !self.status {
            create_index(connection, table, "_status", "(status, sort_key)").await?;
            self.status = true;
        }
        if states && !self.states {
            create_index(connection, table, "_states", "using gin (states)").await?;
            self.states = true;
        }
        Ok(())
    }
}

/// Makes sure `table` has the index `definition` (what follows `on table`), named with
/// `suffix` as `diplog_projection_generation_finish` names it (which then finds it made).
async fn create_index(
    connection: &mut PgConnection,
    table: &str,
    suffix: &str,
    definition: &str,
) -> Result<(), ProjectionError> {
    let sql = format!(
        "create index if not exists {} on {table} {definition}",
        quote_suffix(table, suffix)
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(connection)
        .await?;
    Ok(())
}

/// `table` (quoted) with `suffix` appended inside the quotes, as the migration names indexes.
fn quote_suffix(table: &str, suffix: &str) -> String {
    format!("{}{suffix}\"", table.trim_end_matches('"'))
}

/// Builds the secondary indexes of generation `generation` of `name` and attaches it to the
/// projection's partition, in the caller's transaction: from its commit on, readers can see
/// the generation (they still read the live one, by the checkpoint's `generation`).
pub(super) async fn finish(
    connection: &mut PgConnection,
    name: &str,
    generation: u64,
) -> Result<(), ProjectionError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "set local maintenance_work_mem = '{INDEX_BUILD_MEMORY}'"
    )))
    .execute(&mut *connection)
    .await?;
    sqlx::query("select diplog_projection_generation_finish($1, $2)")
        .bind(name)
        .bind(generation as i64)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Makes sure the live generation has its table: the first time a projection's runner
/// starts, it creates it (empty, indexed, attached). `false` if the table was missing
/// although the checkpoint has moved (its rows are lost: the caller rebuilds).
pub(super) async fn ensure_live(
    connection: &mut PgConnection,
    name: &str,
    generation: u64,
    position: u64,
) -> Result<bool, ProjectionError> {
    let attached: bool = sqlx::query_scalar(
        "select exists (select from pg_inherits \
         where inhrelid = to_regclass(quote_ident(diplog_projection_table($1, $2))) \
         and not inhdetachpending)",
    )
    .bind(name)
    .bind(generation as i64)
    .fetch_one(&mut *connection)
    .await?;
    if attached {
        return Ok(true);
    }
    let mut tx = connection.begin().await?;
    create(&mut tx, name, generation).await?;
    finish(&mut tx, name, generation).await?;
    tx.commit().await?;
    if position > 0 {
        warn!(
            generation,
            position, "the live generation's table was missing: created it empty"
        );
        return Ok(false);
    }
    info!(generation, "created the projection's first generation");
    Ok(true)
}

/// How long each step of removing another generation's table may wait, for a lock or for
/// the transactions it must outlast, before it gives up until the runner's next attempt. A
/// concurrent detach waits for every transaction that has used the projection's partition
/// (any reader's, however long it stays open), and finishing an interrupted one waits for
/// every older snapshot in the database; unbounded, either held the runner, and so the
/// projection, for as long.
const REMOVAL_LOCK_TIMEOUT: &str = "200ms";

/// PostgreSQL's `lock_not_available`: a statement gave up at `lock_timeout`.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// A table of another generation than the live one.
#[derive(sqlx::FromRow)]
struct Leftover {
    name: String,
    attached: bool,
    detach_pending: bool,
}

/// What [`drop_others`] left: how many tables it dropped, and how many are still there
/// (in use: tried again later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Removal {
    pub dropped: usize,
    pub left: usize,
}

/// Drops every generation of `name` but `live`: one replaced by a swap (detached first,
/// CONCURRENTLY, so the projection's readers are never blocked; a detach that was
/// interrupted is finished) and a build's table, whole or interrupted. Outside any
/// transaction (a concurrent detach must be). Never waits long: a step that would wait past
/// `REMOVAL_LOCK_TIMEOUT` (a reader still using the old generation) is left for the next
/// call, which carries on where it stopped. A detach still pending comes first (PostgreSQL
/// starts no other detach of the projection's partition until it is finished), then the
/// tables never attached (nothing waits on them).
pub(super) async fn drop_others(
    connection: &mut PgConnection,
    name: &str,
    live: u64,
) -> Result<Removal, ProjectionError> {
    let leftovers: Vec<Leftover> = sqlx::query_as(
        "select name, attached, detach_pending from diplog_projection_leftovers($1, $2) \
         order by detach_pending desc, attached, name",
    )
    .bind(name)
    .bind(live as i64)
    .fetch_all(&mut *connection)
    .await?;
    let parent = quote(&format!("projection_rows_{name}"));
    let mut removal = Removal {
        dropped: 0,
        left: leftovers.len(),
    };
    for leftover in &leftovers {
        let table = quote(&leftover.name);
        if leftover.attached {
            let how = if leftover.detach_pending {
                "finalize"
            } else {
                "concurrently"
            };
            let started = Instant::now();
            let detached = within_lock_timeout(
                connection,
                format!("alter table {parent} detach partition {table} {how}"),
            )
            .await?;
            info!(
                step = "detach",
                table = leftover.name,
                how,
                detached,
                elapsed_ms = elapsed_ms(started),
                "detaching a generation's table"
            );
            if !detached {
                // Pending now (or still): nothing else of this projection detaches first.
                break;
            }
        }
        let started = Instant::now();
        let dropped =
            within_lock_timeout(connection, format!("drop table if exists {table}")).await?;
        info!(
            step = "drop",
            table = leftover.name,
            dropped,
            elapsed_ms = elapsed_ms(started),
            "dropping a generation's table"
        );
        if dropped {
            removal.dropped += 1;
            removal.left -= 1;
        }
    }
    drop_histories(connection, name, live, &mut removal).await?;
    Ok(removal)
}

/// Drops the history tables of `name`'s generations other than `live` whose rows' table is
/// gone (a reader of a generation as of a position reads both), adding to `removal`.
async fn drop_histories(
    connection: &mut PgConnection,
    name: &str,
    live: u64,
    removal: &mut Removal,
) -> Result<(), ProjectionError> {
    let prefix = history_prefix(name);
    let generations: Vec<i64> = sqlx::query_scalar(
        "select substr(c.relname, length($1) + 1)::bigint from pg_class c \
         where c.relnamespace = (select oid from pg_namespace where nspname = current_schema()) \
           and c.relkind = 'r' and left(c.relname, length($1)) = $1 \
           and substr(c.relname, length($1) + 1) ~ '^[0-9]{1,18}$' \
           and to_regclass(quote_ident(diplog_projection_table($2, \
               substr(c.relname, length($1) + 1)::bigint))) is null",
    )
    .bind(&prefix)
    .bind(name)
    .fetch_all(&mut *connection)
    .await?;
    for generation in generations.into_iter().map(|g| g as u64) {
        if generation == live {
            continue;
        }
        removal.left += 1;
        let table = history_table(name, generation);
        if within_lock_timeout(connection, format!("drop table if exists {table}")).await? {
            info!(step = "drop", table, "dropped a generation's history");
            removal.dropped += 1;
            removal.left -= 1;
        }
    }
    Ok(())
}

/// Runs `sql`, one statement outside any transaction, with `lock_timeout` at
/// `REMOVAL_LOCK_TIMEOUT`: `false` if it gave up waiting. The session's own setting is back
/// in force afterwards.
async fn within_lock_timeout(
    connection: &mut PgConnection,
    sql: String,
) -> Result<bool, ProjectionError> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "set lock_timeout = '{REMOVAL_LOCK_TIMEOUT}'"
    )))
    .execute(&mut *connection)
    .await?;
    let outcome = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut *connection)
        .await;
    sqlx::raw_sql("reset lock_timeout")
        .execute(&mut *connection)
        .await?;
    match outcome {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(error))
            if error.code().as_deref() == Some(LOCK_NOT_AVAILABLE) =>
        {
            Ok(false)
        }
        Err(error) => Err(error.into()),
    }
}

/// Milliseconds since `started`, for the steps' log entries.
pub(super) fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generation_table_is_named_as_the_migration_names_it() {
        assert_eq!(table("channels", 3), "\"projection_rows_channels_3\"");
        assert_eq!(
            quote_suffix(&table("search", 12), "_status"),
            "\"projection_rows_search_12_status\""
        );
    }
}
