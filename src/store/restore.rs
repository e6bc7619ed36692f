//! Loading an exported log into an empty database: rows as they were recorded, positions,
//! times and principals included (the writer would assign its own).

use sqlx::PgConnection;

use super::RecordedEvent;

/// The log head, for checking that a database is empty before a restore.
pub async fn is_empty(connection: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let position: i64 = sqlx::query_scalar("select position from log_head for update")
        .fetch_one(&mut *connection)
        .await?;
    Ok(position == 0)
}

/// Inserts `events` (consecutive positions, following the head) and moves the head and the
/// streams' versions past them, in the caller's transaction.
pub async fn insert(
    connection: &mut PgConnection,
    events: &[RecordedEvent],
) -> Result<(), sqlx::Error> {
    let Some(last) = events.last() else {
        return Ok(());
    };
    let column = |f: fn(&RecordedEvent) -> String| events.iter().map(f).collect::<Vec<_>>();
    let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
    let versions: Vec<i64> = events.iter().map(|e| e.stream_version).collect();
    let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.event_id).collect();
    let correlations: Vec<Option<uuid::Uuid>> = events.iter().map(|e| e.correlation_id).collect();
    let causations: Vec<Option<uuid::Uuid>> = events.iter().map(|e| e.causation_id).collect();
    let times: Vec<chrono::DateTime<chrono::Utc>> = events.iter().map(|e| e.recorded_at).collect();
    let metadata: Vec<sqlx::types::Json<&std::collections::BTreeMap<String, String>>> = events
        .iter()
        .map(|e| sqlx::types::Json(&e.metadata.0))
        .collect();
    sqlx::query(
        "insert into events (position, event_id, stream_id, stream_version, event_type, data, \
             data_text, correlation_id, causation_id, metadata, recorded_at, appended_by) \
         select u.position, u.id, u.stream_id, u.version, u.event_type, u.data::jsonb, u.data, \
             u.correlation_id, u.causation_id, u.metadata, u.recorded_at, u.appended_by \
         from unnest($1::bigint[], $2::uuid[], $3::text[], $4::bigint[], $5::text[], $6::text[], \
             $7::uuid[], $8::uuid[], $9::jsonb[], $10::timestamptz[], $11::text[]) \
           as u(position, id, stream_id, version, event_type, data, correlation_id, \
             causation_id, metadata, recorded_at, appended_by)",
    )
    .bind(&positions)
    .bind(&ids)
    .bind(column(|e| e.stream_id.clone()))
    .bind(&versions)
    .bind(column(|e| e.event_type.clone()))
    .bind(column(|e| e.data_text.clone()))
    .bind(&correlations)
    .bind(&causations)
    .bind(&metadata)
    .bind(&times)
    .bind(column(|e| e.appended_by.clone()))
    .execute(&mut *connection)
    .await?;
    sqlx::query(
        "insert into streams (stream_id, version, created_at, updated_at) \
         select stream_id, max(version), min(recorded_at), max(recorded_at) \
         from unnest($1::text[], $2::bigint[], $3::timestamptz[]) as u(stream_id, version, recorded_at) \
         group by stream_id \
         on conflict (stream_id) do update \
             set version = greatest(streams.version, excluded.version), \
                 updated_at = greatest(streams.updated_at, excluded.updated_at)",
    )
    .bind(column(|e| e.stream_id.clone()))
    .bind(&versions)
    .bind(&times)
    .execute(&mut *connection)
    .await?;
    sqlx::query("update log_head set position = $1, last_recorded_at = $2")
        .bind(last.position)
        .bind(last.recorded_at)
        .execute(&mut *connection)
        .await?;
    Ok(())
}
