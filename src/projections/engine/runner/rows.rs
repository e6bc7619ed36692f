//! A runner's reads and writes of rows and checkpoints, on its own connection: loading a
//! generation's rows, bringing in the rows a batch wants, and writing changed rows (new ones
//! by COPY, the others by an upsert). Each goes straight to the generation's own table
//! (`generations::table`): a build's is not attached to `projection_rows` until it is
//! finished.

use std::collections::HashSet;
use std::sync::Arc;

use sqlx::{Arguments, PgConnection};
use tracing::warn;

use super::by_key::{self, RowColumns};
use super::generations::{self, LateIndexes};
use crate::projections::engine::copy_text;
use crate::projections::engine::error::ProjectionError;
use crate::projections::engine::rows::{
    Checkpoint, CheckpointRecord, RowRecord, select_checkpoints,
};
use crate::projections::{Fact, Model, Row, Want, Wanted};

/// Rows per upsert statement, to keep statements moderate however many rows a chunk touched.
pub(super) const ROWS_PER_STATEMENT: usize = 500;

/// Above this many rows, a write COPYs in the rows new to the generation (cheaper than upserting
/// them, but more round trips).
const COPY_ABOVE: usize = 64;

/// COPY data is sent in pieces of about this size.
const COPY_SEND_BYTES: usize = 1 << 20;

pub(super) async fn read_checkpoint(
    connection: &mut PgConnection,
    name: &str,
) -> Result<Option<Checkpoint>, ProjectionError> {
    let record: Option<CheckpointRecord> =
        sqlx::query_as(select_checkpoints!("where projection = $1"))
            .bind(name)
            .fetch_optional(connection)
            .await?;
    Ok(record.map(Checkpoint::from))
}

/// The rows of `generation` (only those of `statuses`, if given).
pub(super) async fn load_rows(
    connection: &mut PgConnection,
    name: &str,
    generation: u64,
    statuses: Option<&[&str]>,
) -> Result<Vec<Row>, ProjectionError> {
    let records: Vec<RowRecord> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select key, data, actors, states, status, sort_key from {} \
         where ($1::text[] is null or status = any($1)) order by key",
        generations::table(name, generation)
    )))
    .bind(statuses)
    .fetch_all(connection)
    .await?;
    Ok(records.into_iter().map(Row::from).collect())
}

/// Hydrates `model` with stored rows, noting their keys in `loaded`.
fn take_in<M: Model>(
    model: &mut M,
    records: Vec<RowRecord>,
    loaded: &mut HashSet<String>,
) -> Result<(), ProjectionError> {
    let rows: Vec<Row> = records.into_iter().map(Row::from).collect();
    loaded.extend(rows.iter().map(|row| row.key.clone()));
    model
        .hydrate(rows)
        .map_err(|reason| ProjectionError::UnloadableRows {
            projection: M::NAME,
            reason,
        })
}

/// Brings into `model` the stored rows of `generation` that `facts` want (see
/// `Model::wants`), asking again after each load: a row loaded can name further rows.
/// Answers the keys of the rows it brought in. `indexes`: what the generation has of the
/// indexes lookups by status or states need (a build's get them when first needed).
pub(super) async fn hydrate<M: Model>(
    connection: &mut PgConnection,
    model: &mut M,
    generation: u64,
    indexes: &mut LateIndexes,
    facts: &[Arc<Fact>],
) -> Result<HashSet<String>, ProjectionError> {
    let table = generations::table(M::NAME, generation);
    let mut asked: HashSet<Want> = HashSet::new();
    let mut loaded: HashSet<String> = HashSet::new();
    loop {
        let wanted = Wanted::of(model, facts.iter().map(|fact| &**fact), &mut asked);
        if wanted.is_empty() {
            return Ok(loaded);
        }
        let by_status = !wanted.statuses.is_empty() || !wanted.with_states.is_empty();
        indexes
            .ensure(
                connection,
                &table,
                by_status,
                !wanted.with_states.is_empty(),
            )
            .await?;
        // Rare (retractions and corrections): a statement each.
        for (status, states) in &wanted.with_states {
            let records: Vec<RowRecord> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "select key, data, actors, states, status, sort_key from {table} \
                 where status = $1 and states @> $2"
            )))
            .bind(status)
            .bind(states)
            .fetch_all(&mut *connection)
            .await?;
            take_in(model, records, &mut loaded)?;
        }
        let lookup = by_key::wanted_rows(M::NAME, generation, &wanted)?;
        let records: Vec<RowRecord> =
            sqlx::query_as_with(sqlx::AssertSqlSafe(lookup.sql), lookup.arguments)
                .fetch_all(&mut *connection)
                .await?;
        take_in(model, records, &mut loaded)?;
    }
}

/// Writes `rows` and deletes `removed` in `generation` as of the commit at position `since`,
/// inside the caller's transaction, first keeping the versions they replace in the history.
/// Many rows: those the generation may have (`stored`) by an upsert, the others by COPY (the
/// cheapest way in, by far); few rows: all by the upsert.
pub(super) async fn write_rows(
    connection: &mut PgConnection,
    name: &str,
    generation: u64,
    rows: &[Row],
    removed: &[String],
    stored: &(dyn Fn(&str) -> bool + Sync),
    since: u64,
) -> Result<(), ProjectionError> {
    let version = Version {
        name,
        generation,
        since,
    };
    let (old, new): (Vec<&Row>, Vec<&Row>) = if rows.len() > COPY_ABOVE {
        rows.iter().partition(|row| stored(&row.key))
    } else {
        (rows.iter().collect(), Vec::new())
    };
    let replaced: Vec<String> = old
        .iter()
        .map(|row| row.key.clone())
        .chain(removed.iter().cloned())
        .collect();
    keep_replaced(connection, &version, &replaced).await?;
    copy_rows(connection, &version, &new).await?;
    upsert_rows(connection, &version, &old).await?;
    if !removed.is_empty() {
        let delete = by_key::delete(name, generation, removed)?;
        sqlx::query_with(sqlx::AssertSqlSafe(delete.sql), delete.arguments)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// What a write writes to: a generation of a projection, as of a commit's position.
pub(super) struct Version<'a> {
    pub name: &'a str,
    pub generation: u64,
    pub since: u64,
}

/// Copies the stored versions of the rows with `keys` to the history, as replaced now.
async fn keep_replaced(
    connection: &mut PgConnection,
    version: &Version<'_>,
    keys: &[String],
) -> Result<(), ProjectionError> {
    if keys.is_empty() {
        return Ok(());
    }
    let keep = by_key::keep_replaced(version.name, version.generation, keys, version.since)?;
    sqlx::query_with(sqlx::AssertSqlSafe(keep.sql), keep.arguments)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Inserts `rows`, which the generation should not have, by one COPY. Should one of them be
/// there after all (a model that changed a stored row it did not hold), the COPY is undone and
/// they are upserted instead: slower, never wrong.
pub(super) async fn copy_rows(
    connection: &mut PgConnection,
    version: &Version<'_>,
    rows: &[&Row],
) -> Result<(), ProjectionError> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query("savepoint copy_rows")
        .execute(&mut *connection)
        .await?;
    match copy_in(connection, version, rows).await {
        Ok(()) => {
            sqlx::query("release savepoint copy_rows")
                .execute(&mut *connection)
                .await?;
            Ok(())
        }
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("23505") => {
            warn!(
                error = %error,
                "a row written as new was already stored; upserting the batch's rows instead"
            );
            sqlx::query("rollback to savepoint copy_rows")
                .execute(&mut *connection)
                .await?;
            let keys: Vec<String> = rows.iter().map(|row| row.key.clone()).collect();
            keep_replaced(connection, version, &keys).await?;
            upsert_rows(connection, version, rows).await
        }
        Err(error) => Err(error.into()),
    }
}

pub(super) async fn copy_in(
    connection: &mut PgConnection,
    version: &Version<'_>,
    rows: &[&Row],
) -> Result<(), sqlx::Error> {
    let mut copy = connection
        .copy_in_raw(&format!(
            "copy {} (projection, generation, key, data, actors, states, status, sort_key, \
             since) from stdin",
            generations::table(version.name, version.generation)
        ))
        .await?;
    let mut buffer = Vec::with_capacity(COPY_SEND_BYTES + 64 * 1024);
    for row in rows {
        copy_text::push_row(
            &mut buffer,
            version.name,
            version.generation,
            row,
            version.since,
        );
        if buffer.len() >= COPY_SEND_BYTES {
            copy.send(std::mem::take(&mut buffer)).await?;
        }
    }
    if !buffer.is_empty() {
        copy.send(buffer).await?;
    }
    copy.finish().await?;
    Ok(())
}

/// Upserts `rows`, a column array of each per statement (`by_key::RowColumns`).
pub(super) async fn upsert_rows(
    connection: &mut PgConnection,
    version: &Version<'_>,
    rows: &[&Row],
) -> Result<(), ProjectionError> {
    let sql = RowColumns::upsert(
        &generations::table(version.name, version.generation),
        4,
        "$3",
        "",
    );
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let arguments = by_key::arguments(|a| {
            a.add(version.name)?;
            a.add(version.generation as i64)?;
            a.add(version.since as i64)?;
            RowColumns::of(chunk.iter().copied()).add_to(a)
        })?;
        sqlx::query_with(sqlx::AssertSqlSafe(sql.as_str()), arguments)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}
