//! What an answer on a day needs of the log besides whole events: when each diplomatic event
//! says it happened (without reading the rest of it), and where an event was recorded.

use sqlx::PgExecutor;

/// When diplomatic events say they happened, as the JSON text of their `occurred` (for a
/// correction: its replacement's; none for a retraction or an event that gives no date), and
/// the first position that says so.
#[derive(Debug, sqlx::FromRow)]
pub struct OccurrenceDate {
    pub position: i64,
    pub occurred: Option<String>,
}

/// Each date (see [`OccurrenceDate`]) the diplomatic events after `after` and up to
/// `through` give, once, with the first of their positions to give it. (A diplomatic event's
/// type is its kind's name.)
pub async fn first_occurrence_dates<'e>(
    executor: impl PgExecutor<'e>,
    after: u64,
    through: u64,
) -> Result<Vec<OccurrenceDate>, sqlx::Error> {
    sqlx::query_as(
        "select min(position) as position, occurred from ( \
             select position, \
                 (case event_type \
                      when 'EventCorrected' then data #> '{event_corrected,replacement,occurred}' \
                      when 'EventRetracted' then null \
                      else data -> 'occurred' end)::text as occurred \
             from events \
             where position > $1 and position <= $2 \
             and metadata->>'diplog.schema' = 'diplog.v1.DiplomaticEvent' \
         ) dated group by occurred",
    )
    .bind(after.min(i64::MAX as u64) as i64)
    .bind(through.min(i64::MAX as u64) as i64)
    .fetch_all(executor)
    .await
}

/// Where a diplomatic event was recorded.
#[derive(Debug, sqlx::FromRow)]
pub struct RecordedWhere {
    pub position: i64,
    pub stream_id: String,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
}

/// Where the diplomatic event with this id was recorded, if the log has one that no
/// retraction before `before` took back. (A retraction is in the stream of what it retracts:
/// `rules::streams`.)
pub async fn recorded_where<'e>(
    executor: impl PgExecutor<'e>,
    event_id: uuid::Uuid,
    before: u64,
) -> Result<Option<RecordedWhere>, sqlx::Error> {
    sqlx::query_as(
        "select e.position, e.stream_id, e.recorded_at from events e \
         where e.event_id = $1 \
         and e.metadata->>'diplog.schema' = 'diplog.v1.DiplomaticEvent' \
         and not exists (select 1 from events r \
             where r.stream_id = e.stream_id and r.position < $2 \
             and r.data #>> '{event_retracted,event}' = $1::text)",
    )
    .bind(event_id)
    .bind(before.min(i64::MAX as u64) as i64)
    .fetch_optional(executor)
    .await
}
