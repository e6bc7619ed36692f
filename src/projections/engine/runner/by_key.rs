//! The runner's statements that find or delete rows of a generation by key, text and
//! arguments in one place: the lookup of the rows a batch wants (`rows::hydrate`), the
//! delete of removed rows and the move of the versions a commit replaces to the history
//! (`rows::write_rows`), and a live batch's single statement (`live.rs`), which does all
//! three.
//!
//! Each names `projection` and `generation` beside the keys, constant in a generation's
//! table. Its primary key is the key alone (`migrations/…_projection_row_keys.sql`); when it
//! led with those two columns, a lookup without them could not seek it and read the whole
//! generation (5 to 32 s per batch at 1M rows, measured in the bench's import).
//! `statements_by_key` hands the statements, as the runner runs them, to the tests that check
//! their plans.

use sqlx::Arguments;
use sqlx::postgres::PgArguments;

use super::generations;
use crate::projections::engine::tables::history_table;
use crate::projections::{Row, Wanted};

/// A statement of the runner: its text and its arguments, as it runs it.
#[derive(Debug)]
pub struct Statement {
    /// What it is for, to name it in a message.
    pub purpose: &'static str,
    pub sql: String,
    pub arguments: PgArguments,
}

/// The runner's statements that find or delete rows of generation `generation` of `name` by
/// key, each with `keys` as its keys (and nothing to write): every one must seek the
/// generation's primary key. For tests, to explain them.
pub fn statements_by_key(
    name: &str,
    generation: u64,
    keys: &[String],
) -> Result<Vec<Statement>, sqlx::Error> {
    let wanted = Wanted {
        keys: keys.to_vec(),
        ..Wanted::default()
    };
    Ok(vec![
        wanted_rows(name, generation, &wanted)?,
        delete(name, generation, keys)?,
        keep_replaced(name, generation, keys, 0)?,
        advance(name, generation, &[], keys, 0, 0)?,
    ])
}

/// Arguments from `add`, which adds them in order.
fn arguments(
    add: impl FnOnce(&mut PgArguments) -> Result<(), sqlx::error::BoxDynError>,
) -> Result<PgArguments, sqlx::Error> {
    let mut arguments = PgArguments::default();
    add(&mut arguments).map_err(sqlx::Error::Encode)?;
    Ok(arguments)
}

/// `rows` as one JSON array of their text, for `json_to_recordset`: sent as text and cast to
/// `json`, so each row's data keeps the text its model wrote (`jsonb` would rewrite it).
pub(super) fn rows_json<T: serde::Serialize>(rows: &[T]) -> Result<String, sqlx::Error> {
    serde_json::to_string(rows).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// The stored rows of the generation that `wanted` names by key, by group and by key prefix
/// (its `with_states` aside), as `RowRecord`s.
pub fn wanted_rows(name: &str, generation: u64, wanted: &Wanted) -> Result<Statement, sqlx::Error> {
    let table = generations::table(name, generation);
    Ok(Statement {
        purpose: "the lookup of the rows a batch wants",
        sql: format!(
            "select key, data, actors, states, status, sort_key from {table} \
             where projection = $4 and generation = $5 and key = any($1) \
             union all \
             select r.key, r.data, r.actors, r.states, r.status, r.sort_key \
             from unnest($2::text[], $3::text[]) as g(status, sort_key) \
             join {table} r on r.status = g.status and r.sort_key = g.sort_key \
             union all \
             select r.key, r.data, r.actors, r.states, r.status, r.sort_key \
             from unnest($6::text[], $7::text[]) as p(prefix, prefix_end) \
             join {table} r on r.projection = $4 and r.generation = $5 \
                 and r.key >= p.prefix and r.key < p.prefix_end"
        ),
        arguments: arguments(|a| {
            a.add(&wanted.keys)?;
            a.add(&wanted.statuses)?;
            a.add(&wanted.sort_keys)?;
            a.add(name)?;
            a.add(generation as i64)?;
            a.add(&wanted.prefixes)?;
            a.add(&wanted.prefix_ends)
        })?,
    })
}

/// Deletes the generation's rows with keys `removed`.
pub(super) fn delete(
    name: &str,
    generation: u64,
    removed: &[String],
) -> Result<Statement, sqlx::Error> {
    Ok(Statement {
        purpose: "the delete of removed rows",
        sql: format!(
            "delete from {} where projection = $2 and generation = $3 and key = any($1)",
            generations::table(name, generation)
        ),
        arguments: arguments(|a| {
            a.add(removed)?;
            a.add(name)?;
            a.add(generation as i64)
        })?,
    })
}

/// Copies the stored versions of the rows with `keys` to the generation's history, as
/// replaced by the commit at position `until` (before that commit changes or removes them).
pub(super) fn keep_replaced(
    name: &str,
    generation: u64,
    keys: &[String],
    until: u64,
) -> Result<Statement, sqlx::Error> {
    Ok(Statement {
        purpose: "the move of replaced versions to the history",
        sql: format!(
            "insert into {history} \
                 (key, since, until, data, actors, states, status, sort_key) \
             select key, since, $4, data, actors, states, status, sort_key from {table} \
             where projection = $2 and generation = $3 and key = any($1)",
            table = generations::table(name, generation),
            history = history_table(name, generation),
        ),
        arguments: arguments(|a| {
            a.add(keys)?;
            a.add(name)?;
            a.add(generation as i64)?;
            a.add(until as i64)
        })?,
    })
}

/// A live batch in one statement (so one implicit transaction): moves the checkpoint from
/// `from` to `to`, and only if it was at `from`, upserts `rows` and deletes the rows with
/// keys `removed`, each as of `to`, the versions they replace kept in the history (the
/// statement's parts all see the rows as they were before it). Answers how many checkpoints
/// moved (1, or 0 if someone else moved it).
pub(super) fn advance(
    name: &str,
    generation: u64,
    rows: &[Row],
    removed: &[String],
    from: u64,
    to: u64,
) -> Result<Statement, sqlx::Error> {
    Ok(Statement {
        purpose: "a live batch's write",
        sql: format!(
            "with moved as ( \
                 update projection_checkpoints set position = $6, updated_at = now() \
                 where projection = $1 and generation = $2 and position = $5 \
                 returning 1 \
             ), replaced as ( \
                 insert into {history} \
                     (key, since, until, data, actors, states, status, sort_key) \
                 select key, since, $6, data, actors, states, status, sort_key from {table} \
                 where projection = $1 and generation = $2 and key = any($7) \
                   and exists (select from moved) \
             ), upserted as ( \
                 insert into {table} (projection, generation, key, data, actors, states, \
                     status, sort_key, since) \
                 select $1, $2, r.key, r.data, r.actors, r.states, r.status, r.sort_key, $6 \
                 from json_to_recordset($3::json) as r(key text, data json, actors text[], \
                     states text[], status text, sort_key text) \
                 where exists (select from moved) \
                 on conflict (key) do update \
                     set data = excluded.data, actors = excluded.actors, \
                         states = excluded.states, status = excluded.status, \
                         sort_key = excluded.sort_key, since = excluded.since \
             ), removed as ( \
                 delete from {table} \
                 where projection = $1 and generation = $2 and key = any($4) \
                   and exists (select from moved) \
             ) \
             select count(*) from moved",
            table = generations::table(name, generation),
            history = history_table(name, generation),
        ),
        arguments: arguments(|a| {
            a.add(name)?;
            a.add(generation as i64)?;
            a.add(rows_json(rows)?)?;
            a.add(removed)?;
            a.add(from as i64)?;
            a.add(to as i64)?;
            a.add(
                rows.iter()
                    .map(|row| row.key.as_str())
                    .chain(removed.iter().map(String::as_str))
                    .collect::<Vec<_>>(),
            )
        })?,
    })
}
