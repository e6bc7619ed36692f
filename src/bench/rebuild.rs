//! Rebuilding every projection over a large log. The log is filled to the target size by a
//! bulk INSERT of copies of typed events the recorder wrote (their type, payload and
//! metadata, so they are exactly what the projections read as diplomatic events; new ids,
//! streams of 100 events each, positions after the head), in one transaction that moves the
//! head as the writer would (`store::bulk::load_copies`). Then, once the live runners have caught up, a rebuild of every
//! projection is requested and timed until each has swapped in at the head.

use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::PgPool;
use tonic::transport::Channel;

use super::appends::call_held;
use super::report::RebuildRun;
use crate::projections::NAMES;
use crate::projections::engine::rows::ProjectionStore;
use crate::proto::{self, diplomacy_client::DiplomacyClient};

/// How often progress is polled.
const POLL: Duration = Duration::from_millis(50);

pub async fn measure(
    url: &str,
    pool: &PgPool,
    projections: &ProjectionStore,
    target: u64,
) -> anyhow::Result<RebuildRun> {
    let templates = record_templates(url).await?;
    let head = crate::store::head(pool).await?;
    let bulk = target.saturating_sub(head);
    if bulk > 0 {
        crate::store::bulk::load_copies(pool, &templates, bulk).await?;
    }
    let loaded = Instant::now();
    let head = crate::store::head(pool).await?;
    let deadline = Duration::from_secs(120).max(Duration::from_millis(head / 2));

    // The live runners first catch up with what was loaded.
    wait_until(projections, deadline, |status| {
        status.position >= head && status.rebuilding.is_none()
    })
    .await
    .context("the projections did not catch up with the loaded events")?;
    let catch_up = loaded.elapsed();

    let generations: Vec<(String, u64)> = projections
        .statuses()
        .await?
        .into_iter()
        .map(|status| (status.name, status.generation))
        .collect();
    let started = Instant::now();
    for name in NAMES {
        projections.request_rebuild(name).await?;
    }
    wait_until(projections, deadline, |status| {
        let before = generations
            .iter()
            .find(|(name, _)| *name == status.name)
            .map(|(_, generation)| *generation);
        before.is_some_and(|before| status.generation > before)
            && !status.rebuild_requested
            && status.rebuilding.is_none()
            && status.position >= head
    })
    .await
    .context("the rebuild did not finish")?;
    let rebuild = started.elapsed();

    let diplomatic = crate::store::count_diplomatic(pool, head).await?;
    Ok(RebuildRun {
        events: head,
        diplomatic_events: diplomatic,
        projections: NAMES.len(),
        catch_up_secs: catch_up.as_secs_f64(),
        catch_up_events_per_sec: bulk as f64 / catch_up.as_secs_f64(),
        rebuild_secs: rebuild.as_secs_f64(),
        events_per_sec: head as f64 / rebuild.as_secs_f64(),
    })
}

/// Records a few typed calls between different pairs of bench actors and answers their
/// positions: the rows the bulk load copies.
async fn record_templates(url: &str) -> anyhow::Result<Vec<i64>> {
    let mut client = DiplomacyClient::new(Channel::from_shared(url.to_owned())?.connect().await?);
    let pairs = [
        ("bench-a", "bench-b"),
        ("bench-a", "bench-c"),
        ("bench-b", "bench-d"),
        ("bench-c", "bench-d"),
    ];
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut positions = Vec::new();
    for (first, second) in pairs {
        let event = proto::DiplomaticEvent {
            id: uuid::Uuid::now_v7().to_string(),
            ..call_held(first, second)?
        };
        let response = client
            .record(proto::RecordRequest {
                stream_id: format!("occurrence-bench-template-{run}-{first}-{second}"),
                expected_version: None,
                events: vec![event],
            })
            .await
            .context("could not record the rebuild's template events")?
            .into_inner();
        positions.extend(response.positions);
    }
    Ok(positions)
}

/// Waits until every projection's status passes `done`; answers how long that took.
pub(super) async fn wait_until(
    projections: &ProjectionStore,
    limit: Duration,
    done: impl Fn(&crate::projections::engine::rows::ProjectionStatus) -> bool,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let statuses = projections.statuses().await?;
        let all = NAMES.iter().all(|name| {
            statuses
                .iter()
                .any(|status| status.name == *name && done(status))
        });
        if all {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(started.elapsed() < limit, "gave up after {limit:?}");
        tokio::time::sleep(POLL).await;
    }
}
