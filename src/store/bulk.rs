//! The benchmark's bulk paths over the log (`diplog bench`), never a running server's: a bulk
//! load that fills the log to a size at once, and the raw `COPY` read the bench sets beside
//! `ReadAll`. They live here, with the rest of the SQL over `events`, because the load is a
//! second append path and has to keep the log's invariants as the writer does: positions
//! gapless and following the head, taken under the head's row lock and the head moved in the
//! same transaction (so a reader tailing `position > n` misses nothing), and each stream's
//! version that of its last event.

use anyhow::Context;
use futures::Stream;
use sqlx::{PgConnection, PgPool};

/// Appends `count` copies of the events at positions `templates` (their type, payload and
/// metadata; new ids, recorded now or at the head's last time if later, appended by `bench`)
/// after the head, in streams of 100 events named `occurrence-bulk-<run>-<n>`, in one
/// transaction that locks the head, inserts the events and their streams and moves the head.
pub async fn load_copies(pool: &PgPool, templates: &[i64], count: u64) -> anyhow::Result<()> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut transaction = pool.begin().await?;
    sqlx::query(
        "with head as (select position, greatest(now(), last_recorded_at) as at \
                       from log_head for update), \
              templates as ( \
                  select (row_number() over (order by position)) - 1 as k, event_type, data, \
                         data_text, metadata \
                  from events where position = any($1)) \
         insert into events (position, event_id, stream_id, stream_version, event_type, data, \
                             data_text, metadata, recorded_at, appended_by) \
         select h.position + g, gen_random_uuid(), \
                'occurrence-bulk-' || $2 || '-' || ((g - 1) / 100), ((g - 1) % 100) + 1, \
                t.event_type, t.data, t.data_text, t.metadata, h.at, 'bench' \
         from head h cross join generate_series(1::bigint, $3) g \
         join templates t on t.k = g % cardinality($1)",
    )
    .bind(templates)
    .bind(&run)
    .bind(count as i64)
    .execute(&mut *transaction)
    .await
    .context("could not bulk-load the rebuild's events")?;
    sqlx::query(
        "insert into streams (stream_id, version, created_at, updated_at) \
         select 'occurrence-bulk-' || $1 || '-' || s, least(100, $2 - s * 100), now(), now() \
         from generate_series(0::bigint, ($2 - 1) / 100) s",
    )
    .bind(&run)
    .bind(count as i64)
    .execute(&mut *transaction)
    .await
    .context("could not write the bulk-loaded streams")?;
    sqlx::query(
        "update log_head set position = position + $1, \
                             last_recorded_at = greatest(now(), last_recorded_at)",
    )
    .bind(count as i64)
    .execute(&mut *transaction)
    .await?;
    // Statistics of the log as loaded, as autovacuum would gather them within a minute or so.
    // Without them, statements planned right after the load (a filtered subscription's pages
    // read through the event type's index and sorted, 8,192 rows for every page of 256) ran
    // at a third of their rate until it did (the bench's read-back: 9 runs in 30 slow).
    sqlx::query("analyze events")
        .execute(&mut *transaction)
        .await
        .context("could not analyze the loaded events")?;
    transaction.commit().await?;
    Ok(())
}

/// Starts `COPY ... TO STDOUT` (text format) of the columns a read returns, in position order,
/// up to `through`, on `connection`; answers the data as it comes, in chunks of whole or
/// partial rows (one row a line).
pub async fn copy_out(
    connection: &mut PgConnection,
    through: u64,
) -> Result<impl Stream<Item = Result<impl AsRef<[u8]>, sqlx::Error>> + Unpin + '_, sqlx::Error> {
    let statement = format!(
        "copy (select position, stream_id, stream_version, event_id, event_type, data_text, \
             correlation_id, causation_id, metadata, recorded_at, appended_by \
         from events where position <= {through} order by position) to stdout"
    );
    connection.copy_out_raw(&statement).await
}
