//! The reads behind the dashboard's browser of the log: streams by prefix, one stream's events
//! and one event, and the diplomatic events a filter selects, each a page of one statement as
//! of a position (the head, or an earlier bound). Pages go newest first (streams: by id) and
//! are keyed, never offset: `before` a key gives the page below it, `after` the page above.
//! It must not interpret events: what the filters compare are the recorder's metadata keys
//! (`recorder::metadata_keys`) and the payload's `sources` as stored.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::paging::{Page, SizedRow, sized_page};
use crate::store::RecordedEvent;

/// A stream as of a position: its version then (its events: versions are gapless from 1),
/// and the position and time of its last event then.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StreamSummary {
    pub stream_id: String,
    pub version: i64,
    pub last_position: i64,
    pub last_recorded_at: DateTime<Utc>,
}

/// An event without its payload and metadata, for lists.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventSummary {
    pub position: i64,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_id: uuid::Uuid,
    pub event_type: String,
    pub recorded_at: DateTime<Utc>,
    pub appended_by: String,
    /// The payload's length in bytes.
    pub bytes: i32,
}

/// Where a keyed page starts, in its list's order (events: newest first; streams: by id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKey<K> {
    /// The first page.
    First,
    /// The page that follows this key (older events; later ids).
    Following(K),
    /// The page that precedes this key (newer events; earlier ids), still in the list's order.
    Preceding(K),
}

/// The smallest string greater than every string that starts with `prefix`, in bytewise
/// (`collate "C"`, code point) order; `None` when there is none (the prefix is all
/// `char::MAX`) or the prefix is empty.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Up to `limit` streams whose id starts with `prefix` that had events by `until`, in
/// bytewise order of their ids (a page from `key`), each as it stood at `until`. The prefix
/// is a range of the index on `stream_id collate "C"` (see the migration
/// `streams_by_prefix`), each stream's last event by `until` one probe of the
/// `(stream_id, stream_version)` index.
pub async fn streams_by_prefix<'e>(
    executor: impl PgExecutor<'e>,
    prefix: &str,
    key: PageKey<&str>,
    until: u64,
    limit: i64,
) -> Result<Vec<StreamSummary>, sqlx::Error> {
    // $1 the prefix (where it starts), $2 where it ends, $3 the key, $4 until, $5 limit.
    macro_rules! streams {
        ($end:literal, $key:literal, $order:literal) => {
            concat!(
                "select s.stream_id, e.stream_version as version, e.position as last_position, \
                     e.recorded_at as last_recorded_at \
                 from streams s \
                 cross join lateral ( \
                     select stream_version, position, recorded_at from events \
                     where stream_id = s.stream_id and position <= $4 \
                     order by stream_version desc limit 1 \
                 ) e \
                 where s.stream_id collate \"C\" >= $1 and starts_with(s.stream_id, $1) ",
                $end,
                " ",
                $key,
                " order by s.stream_id collate \"C\" ",
                $order,
                " limit $5"
            )
        };
    }
    let end = prefix_end(prefix);
    let bounded = end.is_some();
    let (sql, key, descending) = match (bounded, key) {
        (true, PageKey::First) => (
            streams!(
                "and s.stream_id collate \"C\" < $2",
                "and $3::text is null",
                ""
            ),
            None,
            false,
        ),
        (false, PageKey::First) => (
            streams!("and $2::text is null", "and $3::text is null", ""),
            None,
            false,
        ),
        (true, PageKey::Following(key)) => (
            streams!(
                "and s.stream_id collate \"C\" < $2",
                "and s.stream_id collate \"C\" > $3",
                ""
            ),
            Some(key),
            false,
        ),
        (false, PageKey::Following(key)) => (
            streams!(
                "and $2::text is null",
                "and s.stream_id collate \"C\" > $3",
                ""
            ),
            Some(key),
            false,
        ),
        (true, PageKey::Preceding(key)) => (
            streams!(
                "and s.stream_id collate \"C\" < $2",
                "and s.stream_id collate \"C\" < $3",
                "desc"
            ),
            Some(key),
            true,
        ),
        (false, PageKey::Preceding(key)) => (
            streams!(
                "and $2::text is null",
                "and s.stream_id collate \"C\" < $3",
                "desc"
            ),
            Some(key),
            true,
        ),
    };
    let mut rows: Vec<StreamSummary> = sqlx::query_as(sql)
        .bind(prefix)
        .bind(end)
        .bind(key)
        .bind(until.min(i64::MAX as u64) as i64)
        .bind(limit)
        .fetch_all(executor)
        .await?;
    if descending {
        rows.reverse();
    }
    Ok(rows)
}

/// Up to `limit` of the events of `stream_id` recorded by `until`, newest first, a page from
/// `key` (a stream version).
pub async fn stream_events<'e>(
    executor: impl PgExecutor<'e>,
    stream_id: &str,
    key: PageKey<u64>,
    until: u64,
    limit: i64,
) -> Result<Vec<EventSummary>, sqlx::Error> {
    macro_rules! stream_page {
        ($key:literal, $order:literal) => {
            concat!(
                "select position, stream_id, stream_version, event_id, event_type, recorded_at, \
                     appended_by, octet_length(data_text) as bytes \
                 from events where stream_id = $1 and position <= $2 ",
                $key,
                " order by stream_version ",
                $order,
                " limit $4"
            )
        };
    }
    let (sql, key, ascending) = match key {
        PageKey::First => (stream_page!("and $3::bigint is null", "desc"), None, false),
        PageKey::Following(v) => (
            stream_page!("and stream_version < $3", "desc"),
            Some(v),
            false,
        ),
        PageKey::Preceding(v) => (stream_page!("and stream_version > $3", ""), Some(v), true),
    };
    let mut rows: Vec<EventSummary> = sqlx::query_as(sql)
        .bind(stream_id)
        .bind(until.min(i64::MAX as u64) as i64)
        .bind(key.map(|k| k.min(i64::MAX as u64) as i64))
        .bind(limit)
        .fetch_all(executor)
        .await?;
    if ascending {
        rows.reverse();
    }
    Ok(rows)
}

/// The event at `position`, if the log has one.
pub async fn event_at<'e>(
    executor: impl PgExecutor<'e>,
    position: u64,
) -> Result<Option<RecordedEvent>, sqlx::Error> {
    sqlx::query_as(select_events!("where position = $1"))
        .bind(position.min(i64::MAX as u64) as i64)
        .fetch_optional(executor)
        .await
}

/// The event of `stream_id` at `version`, if the stream has one.
pub async fn event_of_stream<'e>(
    executor: impl PgExecutor<'e>,
    stream_id: &str,
    version: u64,
) -> Result<Option<RecordedEvent>, sqlx::Error> {
    sqlx::query_as(select_events!(
        "where stream_id = $1 and stream_version = $2"
    ))
    .bind(stream_id)
    .bind(version.min(i64::MAX as u64) as i64)
    .fetch_optional(executor)
    .await
}

/// What the events page selects of the diplomatic events (those the recorder wrote). Each
/// part left `None` selects everything.
#[derive(Debug, Clone, Default)]
pub struct DiplomaticFilter {
    /// The event's kind (its type).
    pub kind: Option<String>,
    /// An actor the event names (`diplog.actors`).
    pub actor: Option<String>,
    /// The event may have occurred at or after this instant (`diplog.occurred_end` is after
    /// it) and before `occurred_until` (`diplog.occurred_from` is before it): the fixed-width
    /// RFC 3339 text the metadata holds (`recorder::metadata_time`). Either bound leaves out
    /// events without an occurrence time.
    pub occurred_from: Option<String>,
    pub occurred_until: Option<String>,
    /// A source (its actor id) among the event's `sources`.
    pub source: Option<String>,
    /// Only the events at these positions (what a text search found).
    pub positions: Option<Vec<i64>>,
}

/// Up to `limit` diplomatic events recorded by `until` that `filter` selects, newest first, a
/// page from `key` (a position), and bounded in bytes as every page of events is
/// (`PAGE_BYTES`). One statement along the primary key (or the positions given).
pub async fn diplomatic_page<'e>(
    executor: impl PgExecutor<'e>,
    filter: &DiplomaticFilter,
    key: PageKey<u64>,
    until: u64,
    limit: i64,
) -> Result<DiplomaticSlice, sqlx::Error> {
    macro_rules! filtered {
        ($key:literal, $order:literal) => {
            sized_page!(
                $order,
                "$10",
                concat!(
                    "where position <= $1 ",
                    $key,
                    " and metadata->>'diplog.schema' = 'diplog.v1.DiplomaticEvent' \
                     and ($3::text is null or event_type = $3) \
                     and ($4::text is null \
                         or strpos(metadata->>'diplog.actors', ' ' || $4 || ' ') > 0) \
                     and ($5::text is null or metadata->>'diplog.occurred_end' > $5) \
                     and ($6::text is null or metadata->>'diplog.occurred_from' < $6) \
                     and ($7::jsonb is null or data @> $7) \
                     and ($8::bigint[] is null or position = any($8)) \
                     order by ",
                    $order,
                    " limit $9"
                )
            )
        };
    }
    let (sql, key, ascending) = match key {
        PageKey::First => (
            filtered!("and $2::bigint is null", "position desc"),
            None,
            false,
        ),
        PageKey::Following(p) => (
            filtered!("and position < $2", "position desc"),
            Some(p),
            false,
        ),
        PageKey::Preceding(p) => (filtered!("and position > $2", "position"), Some(p), true),
    };
    let source = filter
        .source
        .as_ref()
        .map(|source| serde_json::json!({ "sources": [{ "source": source }] }));
    let rows: Vec<SizedRow> = sqlx::query_as(sql)
        .bind(until.min(i64::MAX as u64) as i64)
        .bind(key.map(|k| k.min(i64::MAX as u64) as i64))
        .bind(&filter.kind)
        .bind(&filter.actor)
        .bind(&filter.occurred_from)
        .bind(&filter.occurred_until)
        .bind(source)
        .bind(&filter.positions)
        .bind(limit)
        .bind(super::paging::PAGE_BYTES)
        .fetch_all(executor)
        .await?;
    let page = Page::new(rows, limit);
    let mut events = page.events;
    if ascending {
        events.reverse();
    }
    Ok(DiplomaticSlice {
        events,
        ends_at_last_row: page.ends_at_last_row,
    })
}

/// What [`diplomatic_page`] answers: the events, and whether more may lie beyond the last
/// one read (the page is full, or was cut short by its bytes).
#[derive(Debug)]
pub struct DiplomaticSlice {
    pub events: Vec<RecordedEvent>,
    pub ends_at_last_row: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_ends_where_its_last_character_is_one_more() {
        assert_eq!(prefix_end("channel-"), Some("channel.".to_owned()));
        assert_eq!(prefix_end("ab\u{10FFFF}"), Some("ac".to_owned()));
        // Past the surrogates, which are not characters.
        assert_eq!(prefix_end("a\u{D7FF}"), Some("a\u{E000}".to_owned()));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        assert_eq!(prefix_end(""), None);
    }
}
