//! As-of answers deep in the log: each projection that answers as of a past position is asked
//! for its answer at 90% of the log's head (whatever log the earlier sections left: the
//! rebuild's bulk load when it ran), twice. The bench's server answers both from the versions
//! its projections record (the rows as of the mark below the position, and the events since
//! replayed on top: `read/versioned.rs`); a server with `--as-of-from replay` would replay the
//! log from the start, then answer the second from the rows the first kept, if they fit its
//! `--as-of-cache-mib`. Each ask is timed, with the
//! bench process's peak RSS during it (VmHWM reset before it; the server's replay and the
//! client together). An ask that takes the process past a memory cap is cancelled and
//! reported as stopped, so a replay that does not bound its memory cannot take the machine
//! down. Before them, the same first page is asked of the live projection, timed the same
//! way: what a dashboard asks, paged by PostgreSQL where it can be (`listing.rs`), so its
//! memory is one page's however long the list. Changes nothing on the server.

use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::PgPool;
use tonic::transport::Channel;

use super::report::{AsOfAnswer, AsOfRun, peak_rss_mib, reset_peak_rss, rss_mib};
use crate::proto::{self, projections_client::ProjectionsClient};

/// Every as-of answer the bench asks for: the projection and the RPC (search answers from
/// the live projection only).
const ASKS: &[(&str, &str)] = &[
    ("channels", "ListChannels"),
    ("summits", "ListSummits"),
    ("commitments", "ListCommitments"),
    ("timeline", "GetTimeline"),
    ("relations", "ListRelations"),
    ("divergence", "ListDivergences"),
];

/// How often the process's RSS is checked against the cap during an ask.
const RSS_POLL: Duration = Duration::from_millis(100);

pub async fn measure(url: &str, pool: &PgPool, max_rss_mib: f64) -> anyhow::Result<AsOfRun> {
    let head = crate::store::head(pool).await?;
    let position = (head * 9 / 10).max(1);
    let mut client = ProjectionsClient::new(Channel::from_shared(url.to_owned())?.connect().await?);
    let rss_before = rss_mib();
    let mut answers = Vec::with_capacity(ASKS.len());
    for &(projection, rpc) in ASKS {
        let live = timed(&mut client, rpc, None, max_rss_mib)
            .await
            .with_context(|| format!("the live {rpc} failed"))?;
        let position = Some(position);
        let first = timed(&mut client, rpc, position, max_rss_mib)
            .await
            .with_context(|| format!("the as-of {rpc} failed"))?;
        let (again, stopped) = match first.stopped_at {
            Some(rss) => (None, Some(rss)),
            None => (
                Some(
                    timed(&mut client, rpc, position, max_rss_mib)
                        .await
                        .with_context(|| format!("the second as-of {rpc} failed"))?,
                ),
                None,
            ),
        };
        answers.push(AsOfAnswer {
            projection,
            rpc,
            live_secs: live.elapsed.as_secs_f64(),
            live_peak_rss_mib: live.peak_mib,
            live_total: live.total,
            rss_before_mib: first.rss_before_mib,
            first_secs: first.elapsed.as_secs_f64(),
            again_secs: again.as_ref().map(|again| again.elapsed.as_secs_f64()),
            first_peak_rss_mib: first.peak_mib,
            again_peak_rss_mib: again.as_ref().and_then(|again| again.peak_mib),
            total: first.total,
            stopped_at_rss_mib: stopped.or(again.and_then(|again| again.stopped_at)),
        });
    }
    Ok(AsOfRun {
        head,
        position,
        rss_before_mib: rss_before,
        answers,
    })
}

/// One ask, timed, with its peak RSS.
struct Timed {
    rss_before_mib: f64,
    elapsed: Duration,
    peak_mib: Option<f64>,
    total: u32,
    /// The RSS at which the ask was cancelled, if it passed the cap.
    stopped_at: Option<f64>,
}

async fn timed(
    client: &mut ProjectionsClient<Channel>,
    rpc: &str,
    position: Option<u64>,
    max_rss_mib: f64,
) -> anyhow::Result<Timed> {
    let rss_before_mib = rss_mib();
    let reset = reset_peak_rss();
    let started = Instant::now();
    let call = ask(client, rpc, position);
    tokio::pin!(call);
    let mut poll = tokio::time::interval(RSS_POLL);
    let (total, stopped_at) = loop {
        tokio::select! {
            answered = &mut call => break (answered?, None),
            _ = poll.tick() => {
                let rss = rss_mib();
                // Dropping the call cancels the request, and with it the server's replay.
                if rss > max_rss_mib {
                    break (0, Some(rss));
                }
            }
        }
    };
    Ok(Timed {
        rss_before_mib,
        elapsed: started.elapsed(),
        peak_mib: reset.then(peak_rss_mib),
        total,
        stopped_at,
    })
}

/// The first page of `rpc`'s answer as of `position` (none: live); answers its total.
async fn ask(
    client: &mut ProjectionsClient<Channel>,
    rpc: &str,
    position: Option<u64>,
) -> anyhow::Result<u32> {
    let request = proto::ListRequest {
        read: Some(proto::ReadOptions {
            as_of: position.map(proto::read_options::AsOf::AsOfPosition),
            ..Default::default()
        }),
        ..Default::default()
    };
    let info = match rpc {
        "ListChannels" => client.list_channels(request).await?.into_inner().info,
        "ListSummits" => client.list_summits(request).await?.into_inner().info,
        "ListCommitments" => client.list_commitments(request).await?.into_inner().info,
        // The actor every bulk-loaded call involves half the time.
        "GetTimeline" => {
            let request = proto::ListRequest {
                actor: "bench-a".into(),
                ..request
            };
            client.get_timeline(request).await?.into_inner().info
        }
        "ListRelations" => client.list_relations(request).await?.into_inner().info,
        "ListDivergences" => client.list_divergences(request).await?.into_inner().info,
        other => anyhow::bail!("no as-of ask named {other}"),
    };
    Ok(info.map_or(0, |info| info.total))
}
