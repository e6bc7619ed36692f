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
use sqlx::error::BoxDynError;
use sqlx::postgres::PgArguments;

use super::generations;
use crate::projections::engine::copy_text::array_literal;
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
pub(super) fn arguments(
    add: impl FnOnce(&mut PgArguments) -> Result<(), BoxDynError>,
) -> Result<PgArguments, sqlx::Error> {
    let mut arguments = PgArguments::default();
    add(&mut arguments).map_err(sqlx::Error::Encode)?;
    Ok(arguments)
}

/// Rows sent as one array per column and taken apart by `unnest` (as `r(key, data, actors,
/// states, status, sort_key)`), for an upsert. A row's data is its JSON text, cast to `json`
/// row by row, so it keeps the text its model wrote; its actors and states go as array
/// literals (rows name different numbers of them, and PostgreSQL's arrays cannot be ragged),
/// each cast back to `text[]`. `json_to_recordset` over one JSON array of the rows lexed each
/// row's data three times (the array's cast, the record's fields, the `json` column) and
/// built a table of each row's fields: taking 20,000 of the relations' rows apart, in
/// statements of 100, cost PostgreSQL about 14 µs a row that way and 2 this way, and the
/// whole upsert into a table with a live generation's indexes 19-28 µs a row against 14-16.
pub(super) struct RowColumns<'a> {
    keys: Vec<&'a str>,
    data: Vec<&'a str>,
    actors: Vec<String>,
    states: Vec<String>,
    statuses: Vec<&'a str>,
    sort_keys: Vec<&'a str>,
}

impl<'a> RowColumns<'a> {
    pub(super) fn of<I: IntoIterator<Item = &'a Row>>(rows: I) -> Self
    where
        I::IntoIter: ExactSizeIterator,
    {
        let rows = rows.into_iter();
        let mut columns = Self {
            keys: Vec::with_capacity(rows.len()),
            data: Vec::with_capacity(rows.len()),
            actors: Vec::with_capacity(rows.len()),
            states: Vec::with_capacity(rows.len()),
            statuses: Vec::with_capacity(rows.len()),
            sort_keys: Vec::with_capacity(rows.len()),
        };
        for row in rows {
            columns.keys.push(&row.key);
            columns.data.push(row.data.get());
            columns.actors.push(array_literal(&row.actors));
            columns.states.push(array_literal(&row.states));
            columns.statuses.push(&row.status);
            columns.sort_keys.push(&row.sort_key);
        }
        columns
    }

    /// The relation `r` of the rows, from the six arguments from `$first` on.
    fn relation(first: usize) -> String {
        let [key, data, actors, states, status, sort_key] =
            std::array::from_fn::<usize, 6, _>(|i| first + i);
        format!(
            "(select u.key, u.data::json as data, u.actors::text[] as actors, \
                 u.states::text[] as states, u.status, u.sort_key \
             from unnest(${key}::text[], ${data}::text[], ${actors}::text[], \
                 ${states}::text[], ${status}::text[], ${sort_key}::text[]) \
                 as u(key, data, actors, states, status, sort_key)) as r"
        )
    }

    /// The upsert of the rows (`relation(first)`) into `table`, as of `since` (a parameter),
    /// filtered by `condition`; the projection and the generation are `$1` and `$2`.
    pub(super) fn upsert(table: &str, first: usize, since: &str, condition: &str) -> String {
        format!(
            "insert into {table} \
                 (projection, generation, key, data, actors, states, status, sort_key, since) \
             select $1, $2, r.key, r.data, r.actors, r.states, r.status, r.sort_key, {since} \
             from {rows} {condition} \
             on conflict (key) do update \
                 set data = excluded.data, actors = excluded.actors, \
                     states = excluded.states, status = excluded.status, \
                     sort_key = excluded.sort_key, since = excluded.since",
            rows = Self::relation(first),
        )
    }

    /// Adds the six arguments, in `relation`'s order.
    pub(super) fn add_to(self, arguments: &mut PgArguments) -> Result<(), BoxDynError> {
        arguments.add(self.keys)?;
        arguments.add(self.data)?;
        arguments.add(self.actors)?;
        arguments.add(self.states)?;
        arguments.add(self.statuses)?;
        arguments.add(self.sort_keys)
    }
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
    let table = generations::table(name, generation);
    Ok(Statement {
        purpose: "a live batch's write",
        sql: format!(
            "with moved as ( \
                 update projection_checkpoints set position = $5, updated_at = now() \
                 where projection = $1 and generation = $2 and position = $4 \
                 returning 1 \
             ), replaced as ( \
                 insert into {history} \
                     (key, since, until, data, actors, states, status, sort_key) \
                 select key, since, $5, data, actors, states, status, sort_key from {table} \
                 where projection = $1 and generation = $2 and key = any($6) \
                   and exists (select from moved) \
             ), upserted as ( \
                 {upsert} \
             ), removed as ( \
                 delete from {table} \
                 where projection = $1 and generation = $2 and key = any($3) \
                   and exists (select from moved) \
             ) \
             select count(*) from moved",
            history = history_table(name, generation),
            upsert = RowColumns::upsert(&table, 7, "$5", "where exists (select from moved)"),
        ),
        arguments: arguments(|a| {
            a.add(name)?;
            a.add(generation as i64)?;
            a.add(removed)?;
            a.add(from as i64)?;
            a.add(to as i64)?;
            a.add(
                rows.iter()
                    .map(|row| row.key.as_str())
                    .chain(removed.iter().map(String::as_str))
                    .collect::<Vec<_>>(),
            )?;
            RowColumns::of(rows).add_to(a)
        })?,
    })
}
