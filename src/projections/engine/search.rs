//! Full-text search over the live generation of the `search` projection's rows, in SQL: the
//! query is parsed (`websearch_to_tsquery`) in every configuration and OR-ed, which the GIN
//! index on `search_vector` answers; each candidate then has to match the query as parsed in
//! its own document's configuration (so a Russian text is matched by Russian stems), is ranked
//! by `ts_rank_cd` and highlighted by `ts_headline` in that configuration, with the markers
//! of `models/search.rs` around each matched word.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use crate::projections::engine::error::ProjectionError;
use crate::projections::engine::rows::ProjectionStore;
use crate::projections::models::search::{CONFIGS, Document, START, STOP};

/// What to look for, and which part of the ranked hits.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// `websearch_to_tsquery` syntax: words, "a phrase", `or`, `-word`.
    pub words: String,
    /// Only documents of these event kinds (empty: any).
    pub kinds: Vec<String>,
    /// Only documents concerning this actor.
    pub actor: Option<String>,
    /// Only documents concerning every one of these states.
    pub states: Vec<String>,
    /// Only documents whose event may have occurred at or after `from` and before `to`
    /// (its possible times overlap the range); either bound given leaves out events without
    /// an occurrence time.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub offset: usize,
    pub limit: usize,
}

/// One ranked document, with its text as `ts_headline` marked it.
#[derive(Debug, Clone)]
pub struct SearchHit {
    pub key: String,
    pub document: Document,
    pub rank: f32,
    pub highlighted: String,
}

/// A page of hits, how many there are in all, and the position the projection reflects.
#[derive(Debug, Clone)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    pub total: u64,
    pub position: u64,
}

#[derive(sqlx::FromRow)]
struct HitRecord {
    position: i64,
    total: Option<i64>,
    key: Option<String>,
    data: Option<Json<Document>>,
    rank: Option<f32>,
    highlighted: Option<String>,
}

/// The query in every configuration, OR-ed: what the index can answer.
fn any_configuration() -> String {
    CONFIGS
        .iter()
        .map(|config| format!("websearch_to_tsquery('{config}', $1)"))
        .collect::<Vec<_>>()
        .join(" || ")
}

/// A document row's language is its `status`; the projection's other rows (actors, and an
/// older version's markers) hold other words there and have no vector. The planner may test
/// a condition on the query before the one on the vector (through the GIN index of actors,
/// say), so the cast is made for rows with a vector only.
static SEARCH_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "with checkpoint as ( \
             select generation, position from projection_checkpoints where projection = 'search' \
         ), candidates as ( \
             select r.key, r.data, r.status, r.search_vector, \
                 websearch_to_tsquery(case when r.search_vector is not null \
                     then r.status::regconfig end, $1) as query \
             from checkpoint c \
             join projection_rows r on r.projection = 'search' and r.generation = c.generation \
             where r.search_vector @@ ({any}) \
             and (cardinality($2::text[]) = 0 or r.data->>'kind' = any($2::text[])) \
             and ($3::text is null or r.actors @> array[$3::text]) \
             and r.states @> $4::text[] \
             and ($5::timestamptz is null or (r.data->>'occurred_end')::timestamptz > $5) \
             and ($6::timestamptz is null or (r.data->>'occurred_from')::timestamptz < $6) \
         ), ranked as ( \
             select key, data, status, query, ts_rank_cd(search_vector, query) as rank, \
                 (data->'origin'->>'position')::bigint as at, count(*) over () as total \
             from candidates where search_vector @@ query \
             order by rank desc, at desc, key collate \"C\" \
             offset $7 limit $8 \
         ) \
         select c.position, r.total, r.key, r.data, r.rank, \
             ts_headline(r.status::regconfig, r.data->>'text', r.query, $9) as highlighted \
         from checkpoint c left join ranked r on true \
         order by r.rank desc, r.at desc, r.key collate \"C\"",
        any = any_configuration()
    )
});

/// The positions of the events whose texts match a query, a page of them, newest first.
#[derive(Debug, Clone, Default)]
pub struct MatchQuery {
    /// As `SearchQuery::words`.
    pub words: String,
    /// As `SearchQuery::kinds`, `from` and `to`.
    pub kinds: Vec<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only events at positions up to `until`, and below `before` or above `after` (then the
    /// page nearest `after`, still answered newest first).
    pub until: u64,
    pub before: Option<u64>,
    pub after: Option<u64>,
    pub limit: usize,
}

/// The events whose texts match, by position: the candidates as `SEARCH_SQL` finds them (the
/// GIN index, then the query in each document's own configuration), without ranking.
static MATCHING_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "with checkpoint as ( \
             select generation, position from projection_checkpoints where projection = 'search' \
         ), candidates as ( \
             select r.search_vector, (r.data->'origin'->>'position')::bigint as at, \
                 websearch_to_tsquery(case when r.search_vector is not null \
                     then r.status::regconfig end, $1) as query \
             from checkpoint c \
             join projection_rows r on r.projection = 'search' and r.generation = c.generation \
             where r.search_vector @@ ({any}) \
             and (cardinality($2::text[]) = 0 or r.data->>'kind' = any($2::text[])) \
             and ($3::timestamptz is null or (r.data->>'occurred_end')::timestamptz > $3) \
             and ($4::timestamptz is null or (r.data->>'occurred_from')::timestamptz < $4) \
         ), matched as ( \
             select distinct at from candidates \
             where search_vector @@ query and at <= $5 \
             and ($6::bigint is null or at < $6) and ($7::bigint is null or at > $7) \
         ), page as ( \
             select at from matched \
             order by case when $7::bigint is null then -at else at end limit $8 \
         ) \
         select c.position, p.at from checkpoint c left join page p on true \
         order by p.at desc",
        any = any_configuration()
    )
});

impl ProjectionStore {
    /// A page of the positions of the events whose texts match `query` (see [`MatchQuery`]),
    /// newest first, and the position the projection reflects, in one statement.
    #[tracing::instrument(skip(self))]
    pub async fn matching_positions(
        &self,
        query: &MatchQuery,
    ) -> Result<(Vec<u64>, u64), ProjectionError> {
        let clamp = |p: u64| p.min(i64::MAX as u64) as i64;
        // Built once from the fixed list of configurations: no input in it.
        let rows: Vec<(i64, Option<i64>)> =
            sqlx::query_as(sqlx::AssertSqlSafe(MATCHING_SQL.as_str()))
                .bind(&query.words)
                .bind(&query.kinds)
                .bind(query.from)
                .bind(query.to)
                .bind(clamp(query.until))
                .bind(query.before.map(clamp))
                .bind(query.after.map(clamp))
                .bind(query.limit as i64)
                .fetch_all(self.pool())
                .await?;
        let position = rows.first().map_or(0, |(position, _)| *position as u64);
        let positions = rows
            .into_iter()
            .filter_map(|(_, at)| at.map(|at| at as u64))
            .collect();
        Ok((positions, position))
    }

    /// One page of the documents matching `query`, best first (then the latest in the log),
    /// from the live generation, with the position it reflects, in one statement (one
    /// snapshot). Nothing and position 0 before the search runner first started.
    #[tracing::instrument(skip(self))]
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchPage, ProjectionError> {
        // The whole text, every match marked (a headline's fragments would cut quotes).
        let options = format!("StartSel=\"{START}\", StopSel=\"{STOP}\", HighlightAll=true");
        let records: Vec<HitRecord> = // Built once from the fixed list of configurations: no input in it.
        sqlx::query_as(sqlx::AssertSqlSafe(SEARCH_SQL.as_str()))
            .bind(&query.words)
            .bind(&query.kinds)
            .bind(&query.actor)
            .bind(&query.states)
            .bind(query.from)
            .bind(query.to)
            .bind(query.offset as i64)
            .bind(query.limit as i64)
            .bind(options)
            .fetch_all(self.pool())
            .await?;
        let position = records.first().map_or(0, |r| r.position as u64);
        // Counted over every match before the page is cut (a page past the end counts 0).
        let total = records.first().and_then(|r| r.total).unwrap_or(0) as u64;
        let hits = records
            .into_iter()
            .filter_map(|r| {
                Some(SearchHit {
                    key: r.key?,
                    document: r.data?.0,
                    rank: r.rank?,
                    highlighted: r.highlighted?,
                })
            })
            .collect();
        Ok(SearchPage {
            hits,
            total,
            position,
        })
    }
}
