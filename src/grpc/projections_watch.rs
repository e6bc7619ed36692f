//! `Projections.WatchProjection`: a change feed (`projections::read::feed`) rendered as a
//! response stream. The snapshot comes in parts bounded in bytes, rendered one at a time as
//! the client takes them; then each change as the client pulls it; the stream ends when the
//! client goes away, after an error, or at shutdown.

use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt, stream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::convert::{list_filter, to_timestamp};
use super::lists::{ItemOf, Served, message};
use super::status::invalid_request;
use crate::projections::models::channels::view::ChannelView;
use crate::projections::models::commitments::CommitmentView;
use crate::projections::models::divergence::DivergenceView;
use crate::projections::models::summits::SummitView;
use crate::projections::read::feed::{self, Feed, FeedConfig, FeedEvent, FeedMessage};
use crate::projections::read::query::Queries;
use crate::projections::read::request::ListFilter;
use crate::proto;

pub(super) type ChangeStream =
    Pin<Box<dyn Stream<Item = Result<proto::ProjectionChange, Status>> + Send>>;

/// The projections `WatchProjection` takes, as the request names them.
const WATCHABLE: &str = "channels, summits, commitments, divergences";

/// The longest heartbeat interval a watcher may ask for, in seconds.
const MAX_HEARTBEAT_SECONDS: u32 = 3600;

/// The most bytes of rows in one message of a watch's snapshot (a larger row goes alone): the
/// snapshot of a large projection comes in parts, rendered one at a time as the client takes
/// them, never whole (see `ProjectionChange.snapshot_continues`).
const SNAPSHOT_PART_BYTES: usize = 1 << 20;

/// The change stream a watch request asks for: its snapshot (waiting for `min_position` until
/// `deadline`) read before answering, so a bad request or an unreachable database fails the
/// call itself.
pub(super) async fn watch(
    queries: &Queries,
    request: &proto::WatchProjectionRequest,
    deadline: Instant,
    shutdown: CancellationToken,
) -> Result<ChangeStream, Status> {
    let config = feed_config(request)?;
    let filter = list_filter(
        &request.actor,
        request.state_pair.as_ref(),
        &request.status,
        request.pending_only,
    );
    let min = request.min_position;
    match request.projection.as_str() {
        "channels" => {
            changes::<ChannelView>(queries, filter, min, deadline, config, shutdown).await
        }
        "summits" => changes::<SummitView>(queries, filter, min, deadline, config, shutdown).await,
        "commitments" => {
            changes::<CommitmentView>(queries, filter, min, deadline, config, shutdown).await
        }
        "divergences" | "divergence" => {
            changes::<DivergenceView>(queries, filter, min, deadline, config, shutdown).await
        }
        "" => Err(invalid_request(
            "projection",
            format!("is required: one of {WATCHABLE}"),
        )),
        other => Err(invalid_request(
            "projection",
            format!("{other:?} cannot be watched: one of {WATCHABLE}"),
        )),
    }
}

/// A feed of `T` rows as a response stream: the snapshot in parts of at most
/// `SNAPSHOT_PART_BYTES`, then each change as the client pulls it. The feed is dropped, and
/// its work ends, when the stream is (the client went away), after an error, or at shutdown
/// (UNAVAILABLE, so feeds do not hold the server's drain open).
async fn changes<T: WatchedRow>(
    queries: &Queries,
    filter: ListFilter,
    min_position: u64,
    deadline: Instant,
    config: FeedConfig,
    shutdown: CancellationToken,
) -> Result<ChangeStream, Status> {
    // Boxed: the snapshot's read nests deeply enough that the release build's layout of this
    // future overflowed the compiler's query depth.
    let (feed, snapshot) = Box::pin(Feed::<T>::start(
        queries.clone(),
        filter,
        min_position,
        deadline,
        config,
    ))
    .await?;
    let mut parts = SnapshotParts::new(snapshot, SNAPSHOT_PART_BYTES);
    let first = parts.next().expect("a snapshot has a first part")?;
    // A part that cannot be rendered ends the stream (with its error).
    let parts = stream::iter(parts).scan(false, |failed, part| {
        let go_on = !*failed;
        *failed = part.is_err();
        std::future::ready(go_on.then_some(part))
    });
    let rest = stream::unfold(Some(feed), move |feed| {
        let shutdown = shutdown.clone();
        async move {
            let mut feed = feed?;
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => Err(Status::unavailable(
                    "the server is shutting down: watch again for a new snapshot",
                )),
                next = feed.next() => next.map_err(Status::from).and_then(change),
            };
            Some(match next {
                Ok(message) => (Ok(message), Some(feed)),
                Err(status) => (Err(status), None),
            })
        }
    });
    Ok(stream::once(async { Ok(first) })
        .chain(parts)
        .chain(rest)
        .boxed())
}

/// A watchable item and the `ProjectionRow` its message becomes.
trait WatchedRow: Served {
    fn row(message: ItemOf<Self>) -> proto::projection_row::Row;
}

impl WatchedRow for ChannelView {
    fn row(message: proto::Channel) -> proto::projection_row::Row {
        proto::projection_row::Row::Channel(message)
    }
}

impl WatchedRow for SummitView {
    fn row(message: proto::Summit) -> proto::projection_row::Row {
        proto::projection_row::Row::Summit(message)
    }
}

impl WatchedRow for CommitmentView {
    fn row(message: proto::Commitment) -> proto::projection_row::Row {
        proto::projection_row::Row::Commitment(message)
    }
}

impl WatchedRow for DivergenceView {
    fn row(message: proto::Divergence) -> proto::projection_row::Row {
        proto::projection_row::Row::Divergence(message)
    }
}

fn projection_row<T: WatchedRow>(view: &T) -> Result<proto::ProjectionRow, Status> {
    Ok(proto::ProjectionRow {
        row: Some(T::row(message(view)?)),
    })
}

fn projection_rows<T: WatchedRow>(views: &[T]) -> Result<Vec<proto::ProjectionRow>, Status> {
    views.iter().map(projection_row).collect()
}

/// A feed's message as one `ProjectionChange` (a watch sends its snapshot through
/// [`SnapshotParts`] instead).
fn change<T: WatchedRow>(message: FeedMessage<T>) -> Result<proto::ProjectionChange, Status> {
    use proto::projection_change::Change;
    let change = match message.event {
        FeedEvent::Snapshot(rows) => Change::Snapshot(proto::ProjectionRows {
            rows: rows
                .iter()
                .map(|row| projection_row(row.as_ref()))
                .collect::<Result<_, _>>()?,
        }),
        FeedEvent::Changed(changes) => Change::Diff(proto::ProjectionDiff {
            upserted: projection_rows(&changes.upserted)?,
            removed: changes.removed,
        }),
        FeedEvent::Heartbeat => Change::Heartbeat(()),
    };
    Ok(proto::ProjectionChange {
        position: message.position,
        reference_time: Some(to_timestamp(message.reference)),
        change: Some(change),
        snapshot_continues: false,
    })
}

/// A snapshot as messages of at most `max_bytes` of encoded rows each (a larger row alone),
/// each rendered when it is asked for: the first a `snapshot`, the others `diff`s that only
/// upsert, all at the snapshot's position, each but the last with `snapshot_continues`. The
/// rows are the feed's own (shared), so a watcher's snapshot costs the server one part at a
/// time, however large the list.
struct SnapshotParts<T> {
    rows: std::vec::IntoIter<std::sync::Arc<T>>,
    /// A row rendered for the previous part that did not fit in it.
    carried: Option<proto::ProjectionRow>,
    max_bytes: usize,
    position: u64,
    reference: DateTime<Utc>,
    first: bool,
    done: bool,
}

impl<T: WatchedRow> SnapshotParts<T> {
    /// `snapshot`: the feed's first message.
    fn new(snapshot: FeedMessage<T>, max_bytes: usize) -> Self {
        let FeedEvent::Snapshot(rows) = snapshot.event else {
            unreachable!("a feed's first message is its snapshot")
        };
        Self {
            rows: rows.into_iter(),
            carried: None,
            max_bytes,
            position: snapshot.position,
            reference: snapshot.reference,
            first: true,
            done: false,
        }
    }
}

impl<T: WatchedRow> Iterator for SnapshotParts<T> {
    type Item = Result<proto::ProjectionChange, Status>;

    fn next(&mut self) -> Option<Self::Item> {
        use proto::projection_change::Change;
        if self.done {
            return None;
        }
        let mut rows: Vec<proto::ProjectionRow> = self.carried.take().into_iter().collect();
        let mut bytes: usize = rows.iter().map(prost::Message::encoded_len).sum();
        for view in self.rows.by_ref() {
            let row = match projection_row(view.as_ref()) {
                Ok(row) => row,
                Err(status) => {
                    self.done = true;
                    return Some(Err(status));
                }
            };
            let size = prost::Message::encoded_len(&row);
            if !rows.is_empty() && bytes.saturating_add(size) > self.max_bytes {
                self.carried = Some(row);
                break;
            }
            bytes += size;
            rows.push(row);
        }
        let continues = self.carried.is_some();
        self.done = !continues;
        let change = if std::mem::take(&mut self.first) {
            Change::Snapshot(proto::ProjectionRows { rows })
        } else {
            Change::Diff(proto::ProjectionDiff {
                upserted: rows,
                removed: Vec::new(),
            })
        };
        Some(Ok(proto::ProjectionChange {
            position: self.position,
            reference_time: Some(to_timestamp(self.reference)),
            change: Some(change),
            snapshot_continues: continues,
        }))
    }
}

fn feed_config(request: &proto::WatchProjectionRequest) -> Result<FeedConfig, Status> {
    let heartbeat = match request.heartbeat_seconds {
        0 => feed::DEFAULT_HEARTBEAT,
        seconds if seconds > MAX_HEARTBEAT_SECONDS => {
            return Err(invalid_request(
                "heartbeat_seconds",
                format!("{seconds} is more than the limit of {MAX_HEARTBEAT_SECONDS}"),
            ));
        }
        seconds => Duration::from_secs(u64::from(seconds)),
    };
    Ok(FeedConfig {
        heartbeat,
        ..FeedConfig::default()
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::projections::models::channels::Channels;
    use crate::projections::testing::{founding_facts, replay};

    fn channel_views() -> Vec<ChannelView> {
        let model: Channels = replay(&founding_facts());
        let reference: DateTime<Utc> = "2025-03-01T00:00:00Z".parse().unwrap();
        model
            .channels()
            .map(|c| c.view(reference, chrono::Duration::days(90)))
            .collect()
    }

    fn snapshot_of(views: &[ChannelView]) -> FeedMessage<ChannelView> {
        FeedMessage {
            event: FeedEvent::Snapshot(views.iter().cloned().map(Arc::new).collect()),
            position: 42,
            reference: "2025-03-01T00:00:00Z".parse().unwrap(),
        }
    }

    fn keys(rows: &[proto::ProjectionRow]) -> Vec<String> {
        rows.iter()
            .map(|row| match &row.row {
                Some(proto::projection_row::Row::Channel(channel)) => channel.key.clone(),
                other => panic!("a channel, not {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_large_snapshot_comes_in_parts_bounded_in_bytes_that_add_up_to_the_list() {
        use proto::projection_change::Change;
        let views = channel_views();
        assert!(views.len() >= 3, "{} channels", views.len());
        let whole: Vec<proto::ProjectionRow> = projection_rows(&views).unwrap();
        let sizes: Vec<usize> = whole.iter().map(prost::Message::encoded_len).collect();
        // Room for the largest row: every part holds one row at least, and parts break
        // before the row that would not fit.
        let max_bytes = *sizes.iter().max().unwrap();
        let parts: Vec<proto::ProjectionChange> =
            SnapshotParts::new(snapshot_of(&views), max_bytes)
                .collect::<Result<_, _>>()
                .unwrap();
        assert!(parts.len() > 1, "{} parts", parts.len());
        let mut rows = Vec::new();
        for (index, part) in parts.iter().enumerate() {
            assert_eq!(part.position, 42);
            assert_eq!(
                part.snapshot_continues,
                index + 1 < parts.len(),
                "part {index}"
            );
            let part_rows = match (index, &part.change) {
                (0, Some(Change::Snapshot(snapshot))) => &snapshot.rows,
                (1.., Some(Change::Diff(diff))) => {
                    assert!(diff.removed.is_empty());
                    &diff.upserted
                }
                other => panic!("part {index}: {other:?}"),
            };
            assert!(!part_rows.is_empty());
            let bytes: usize = part_rows.iter().map(prost::Message::encoded_len).sum();
            assert!(bytes <= max_bytes, "part {index}: {bytes} bytes");
            // Full: the next row would not have fitted.
            if let Some(next) = whole.get(rows.len() + part_rows.len())
                && part.snapshot_continues
            {
                assert!(bytes + prost::Message::encoded_len(next) > max_bytes);
            }
            rows.extend(part_rows.iter().cloned());
        }
        assert_eq!(keys(&rows), keys(&whole));
        assert_eq!(rows, whole);
    }

    #[test]
    fn a_small_snapshot_is_one_message_and_an_empty_one_too() {
        let views = channel_views();
        let parts: Vec<_> = SnapshotParts::new(snapshot_of(&views), SNAPSHOT_PART_BYTES)
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(parts.len(), 1);
        assert!(!parts[0].snapshot_continues);
        let empty: Vec<_> = SnapshotParts::new(snapshot_of(&[]), SNAPSHOT_PART_BYTES)
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(empty.len(), 1);
        assert!(matches!(
            &empty[0].change,
            Some(proto::projection_change::Change::Snapshot(rows)) if rows.rows.is_empty()
        ));
        // One row larger than the bound goes alone.
        let alone: Vec<_> = SnapshotParts::new(snapshot_of(&views[..2]), 1)
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(alone.len(), 2);
    }
}
