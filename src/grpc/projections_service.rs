//! `diplog.v1.Projections`: the read models over gRPC. Views become protobuf messages through
//! their JSON (the same mapping the diplomacy service uses), so no field is copied by hand.
//! Change feeds (`WatchProjection`) are `projections::feed` rendered as a response stream.

use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt, stream};
use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::convert::timestamp;
use super::status::invalid_request;
use super::{bridge, stream_slot};
use crate::projections::engine::catalog::NAMES;
use crate::projections::engine::rows::Holder;
use crate::projections::models::channels::view::ChannelView;
use crate::projections::models::commitments::CommitmentView;
use crate::projections::models::divergence::DivergenceView;
use crate::projections::models::summits::SummitView;
use crate::projections::read::feed::{self, Feed, FeedConfig, FeedEvent, FeedMessage, FeedRow};
use crate::projections::read::query::{Answer, AsOf, ListFilter, Page, Queries, Source};
use crate::proto::{self, projections_server::Projections};
use crate::stream_limit::StreamLimiter;

type ChangeStream = Pin<Box<dyn Stream<Item = Result<proto::ProjectionChange, Status>> + Send>>;

/// The projections `WatchProjection` takes, as the request names them.
const WATCHABLE: &str = "channels, summits, commitments, divergences";

/// The longest heartbeat interval a watcher may ask for, in seconds.
const MAX_HEARTBEAT_SECONDS: u32 = 3600;

/// The most bytes of rows in one message of a watch's snapshot (a larger row goes alone): the
/// snapshot of a large projection comes in parts, rendered one at a time as the client takes
/// them, never whole (see `ProjectionChange.snapshot_continues`).
const SNAPSHOT_PART_BYTES: usize = 1 << 20;

pub struct ProjectionsService {
    queries: Queries,
    /// The longest a read-your-writes wait may last (the server's request timeout).
    max_wait: Duration,
    /// Cancelled when the server shuts down: change feeds end then.
    shutdown: CancellationToken,
    /// Change feeds count against their client's streams.
    streams: StreamLimiter,
}

impl ProjectionsService {
    pub fn new(queries: Queries, max_wait: Duration, streams: StreamLimiter) -> Self {
        Self {
            queries,
            max_wait,
            shutdown: CancellationToken::new(),
            streams,
        }
    }

    /// Change feeds end (UNAVAILABLE) when `shutdown` is cancelled, so they do not hold the
    /// server's drain open until its grace period is over.
    pub fn with_shutdown(self, shutdown: CancellationToken) -> Self {
        Self { shutdown, ..self }
    }

    /// A feed of `T` rows as a response stream: the snapshot (read before answering, so a bad
    /// filter or an unreachable database fails the call itself) in parts of at most
    /// `SNAPSHOT_PART_BYTES`, then each change as the client pulls it. The feed is dropped,
    /// and its work ends, when the stream is (the client went away), after an error, or at
    /// shutdown.
    async fn watch<T: WatchedRow>(
        &self,
        filter: ListFilter,
        min_position: u64,
        deadline: Instant,
        config: FeedConfig,
    ) -> Result<ChangeStream, Status> {
        let (feed, snapshot) =
            Feed::<T>::start(self.queries.clone(), filter, min_position, deadline, config).await?;
        let mut parts = SnapshotParts::new(snapshot, SNAPSHOT_PART_BYTES);
        let first = parts.next().expect("a snapshot has a first part")?;
        // A part that cannot be rendered ends the stream (with its error).
        let parts = stream::iter(parts).scan(false, |failed, part| {
            let go_on = !*failed;
            *failed = part.is_err();
            std::future::ready(go_on.then_some(part))
        });
        let shutdown = self.shutdown.clone();
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

    /// Where to answer from: the live model (waiting for `min_position` until the call's
    /// deadline, bounded by the server's request timeout) or a replay as of a position or time.
    fn source<T>(
        &self,
        request: &Request<T>,
        read: Option<&proto::ReadOptions>,
    ) -> Result<Source, Status> {
        let read = read.cloned().unwrap_or_default();
        let as_of = match read.as_of {
            Some(proto::read_options::AsOf::AsOfPosition(position)) => {
                Some(AsOf::Position(position))
            }
            Some(proto::read_options::AsOf::AsOfTime(time)) => {
                Some(AsOf::Time(timestamp(time).map_err(|e| {
                    invalid_request("read.as_of_time", e.to_string())
                })?))
            }
            None => None,
        };
        // Answers about the past are the auditor's (the path alone does not say; the request
        // does).
        if as_of.is_some() {
            crate::auth::access::require(request, crate::auth::Role::Auditor, "an as-of read")?;
        }
        // An as-of answer comes from the log itself: there is nothing to wait for, so a
        // `min_position` is moot.
        let wait = grpc_timeout(request).map_or(self.max_wait, |t| t.min(self.max_wait));
        Ok(Source::of(as_of, read.min_position, wait))
    }
}

/// The call's deadline as the client set it (`grpc-timeout`, e.g. `500m`), if any.
fn grpc_timeout<T>(request: &Request<T>) -> Option<Duration> {
    let raw = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (value, unit) = raw.split_at(raw.len().checked_sub(1)?);
    let value: u64 = value.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(value * 3600),
        "M" => Duration::from_secs(value * 60),
        "S" => Duration::from_secs(value),
        "m" => Duration::from_millis(value),
        "u" => Duration::from_micros(value),
        "n" => Duration::from_nanos(value),
        _ => return None,
    })
}

fn info<T>(answer: &Answer<T>) -> proto::AnswerInfo {
    proto::AnswerInfo {
        position: answer.position,
        reference_time: Some(to_timestamp(answer.reference)),
        next_page_token: answer.next_page_token.clone(),
        total: answer.total as u32,
    }
}

fn to_timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

/// A view as its protobuf message.
fn message<V: Serialize, M: prost::Message + prost::Name + Default>(view: &V) -> Result<M, Status> {
    let json = serde_json::to_value(view).map_err(|e| super::status::internal(&e))?;
    bridge::from_json(json).map_err(|(path, reason)| {
        tracing::error!(
            message = M::full_name(),
            path,
            reason,
            "a projection view does not match its proto"
        );
        Status::internal("internal error")
    })
}

fn messages<V: Serialize, M: prost::Message + prost::Name + Default>(
    views: &[V],
) -> Result<Vec<M>, Status> {
    views.iter().map(message).collect()
}

fn list_filter(request: &proto::ListRequest) -> ListFilter {
    ListFilter {
        actor: (!request.actor.is_empty()).then(|| request.actor.clone()),
        state_pair: request
            .state_pair
            .as_ref()
            .map(|p| (p.a.clone(), p.b.clone())),
        status: request.status.clone(),
        pending_only: request.pending_only,
    }
}

fn page(request: &proto::ListRequest) -> Page {
    Page {
        size: request.page_size as usize,
        token: request.page_token.clone(),
    }
}

/// The key of a get request: required.
fn required_key(request: &proto::GetRequest, what: &str) -> Result<String, Status> {
    if request.key.is_empty() {
        return Err(invalid_request("key", format!("is required: the {what}")));
    }
    Ok(request.key.clone())
}

/// Finds one item of a list by key, or NOT_FOUND.
fn only<T: Clone>(
    answer: &Answer<T>,
    key: &str,
    what: &str,
    matches: impl Fn(&T) -> bool,
) -> Result<Answer<T>, Status> {
    let found: Vec<T> = answer
        .items
        .iter()
        .filter(|item| matches(item))
        .cloned()
        .collect();
    if found.is_empty() {
        return Err(Status::not_found(format!("no {what} {key:?}")));
    }
    Ok(Answer {
        items: found,
        position: answer.position,
        reference: answer.reference,
        next_page_token: String::new(),
        total: 1,
    })
}

/// A watchable view and the `ProjectionRow` it becomes.
trait WatchedRow: FeedRow + Serialize {
    type Message: prost::Message + prost::Name + Default;
    fn row(message: Self::Message) -> proto::projection_row::Row;
}

impl WatchedRow for ChannelView {
    type Message = proto::Channel;
    fn row(message: proto::Channel) -> proto::projection_row::Row {
        proto::projection_row::Row::Channel(message)
    }
}

impl WatchedRow for SummitView {
    type Message = proto::Summit;
    fn row(message: proto::Summit) -> proto::projection_row::Row {
        proto::projection_row::Row::Summit(message)
    }
}

impl WatchedRow for CommitmentView {
    type Message = proto::Commitment;
    fn row(message: proto::Commitment) -> proto::projection_row::Row {
        proto::projection_row::Row::Commitment(message)
    }
}

impl WatchedRow for DivergenceView {
    type Message = proto::Divergence;
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

fn watch_filter(request: &proto::WatchProjectionRequest) -> ListFilter {
    ListFilter {
        actor: (!request.actor.is_empty()).then(|| request.actor.clone()),
        state_pair: request
            .state_pair
            .as_ref()
            .map(|p| (p.a.clone(), p.b.clone())),
        status: request.status.clone(),
        pending_only: request.pending_only,
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

#[tonic::async_trait]
impl Projections for ProjectionsService {
    type WatchProjectionStream = ChangeStream;

    #[tracing::instrument(skip_all, fields(projection = %request.get_ref().projection))]
    async fn watch_projection(
        &self,
        request: Request<proto::WatchProjectionRequest>,
    ) -> Result<Response<Self::WatchProjectionStream>, Status> {
        let slot = stream_slot(&self.streams, &request)?;
        let watch = request.get_ref();
        let config = feed_config(watch)?;
        let filter = watch_filter(watch);
        // The snapshot's read-your-writes wait is bounded as a list's is.
        let wait = grpc_timeout(&request).map_or(self.max_wait, |t| t.min(self.max_wait));
        let deadline = Instant::now() + wait;
        let min = watch.min_position;
        let changes = match watch.projection.as_str() {
            "channels" => {
                self.watch::<ChannelView>(filter, min, deadline, config)
                    .await?
            }
            "summits" => {
                self.watch::<SummitView>(filter, min, deadline, config)
                    .await?
            }
            "commitments" => {
                self.watch::<CommitmentView>(filter, min, deadline, config)
                    .await?
            }
            "divergences" | "divergence" => {
                self.watch::<DivergenceView>(filter, min, deadline, config)
                    .await?
            }
            "" => {
                return Err(invalid_request(
                    "projection",
                    format!("is required: one of {WATCHABLE}"),
                ));
            }
            other => {
                return Err(invalid_request(
                    "projection",
                    format!("{other:?} cannot be watched: one of {WATCHABLE}"),
                ));
            }
        };
        Ok(Response::new(slot.hold(changes).boxed()))
    }

    async fn list_channels(
        &self,
        request: Request<proto::ListRequest>,
    ) -> Result<Response<proto::ChannelList>, Status> {
        let source = self.source(&request, request.get_ref().read.as_ref())?;
        let answer = self
            .queries
            .channels(
                source,
                &list_filter(request.get_ref()),
                &page(request.get_ref()),
            )
            .await?;
        Ok(Response::new(proto::ChannelList {
            info: Some(info(&answer)),
            channels: messages(&answer.items)?,
        }))
    }

    async fn get_channel(
        &self,
        request: Request<proto::GetRequest>,
    ) -> Result<Response<proto::ChannelList>, Status> {
        let key = required_key(request.get_ref(), "channel's key or stream")?;
        let source = self.source(&request, request.get_ref().read.as_ref())?;
        let answer = self.queries.channel(source, &key).await?;
        Ok(Response::new(proto::ChannelList {
            info: Some(info(&answer)),
            channels: messages(&answer.items)?,
        }))
    }

    async fn list_summits(
        &self,
        request: Request<proto::ListRequest>,
    ) -> Result<Response<proto::SummitList>, Status> {
        let source = self.source(&request, request.get_ref().read.as_ref())?;
        let answer = self
            .queries
            .summits(
                source,
                &list_filter(request.get_ref()),
                &page(request.get_ref()),
            )
            .await?;
        Ok(Response::new(proto::SummitList {
            info: Some(info(&answer)),
            summits: messages(&answer.items)?,
        }))
    }

    async fn get_summit(
        &self,
        request: Request<proto::GetRequest>,
    ) -> Result<Response<proto::SummitList>, Status> {
        let key = required_key(request.get_ref(), "summit's stream")?;
        let source = self.source(&request, request.get_ref().read.as_ref())?;
        // Searched among all of them, not the first page only.
        let all = self
            .queries
            .all_summits(source, &ListFilter::default())
            .await?;
        let answer = only(&all, &key, "summit", |s| s.key == key)?;
        Ok(Response::new(proto::SummitList {
            info: Some(info(&answer)),
            summits: messages(&answer.items)?,
        }))
    }

    async fn list_commitments(
        &self,
        request: Request<proto::ListRequest>,
    ) -> Result<Response<proto::CommitmentList>, Status> {
        let source = self.source(&request, request.get_ref().read.as_ref())?;
        let answer = self
            .queries
            .commitments(
                source,
                &list_filter(request.get_ref()),
                &page(request.get_ref()),
            )
            .await?;
        Ok(Response::new(proto::CommitmentList {
            info: Some(info(&answer)),
            commitments: messages(&answer.items)?,
        }))
    }

    async fn get_commitment(
        &self,
        request: Request<proto::GetRequest>,
    ) -> Result<Response<proto::CommitmentList>, Status> {
        let key = required_key(request.get_ref(), "commitment's stream")?;
        let source = self.source(&request, request.get_ref().read.as_ref())?;
        // Searched among all of them, not the first page only.
        let all = self
            .queries
            .all_commitments(source, &ListFilter::default())
            .await?;
        let answer = only(&all, &key, "commitment", |c| c.key == key)?;
        Ok(Response::new(proto::CommitmentList {
            info: Some(info(&answer)),
            commitments: messages(&answer.items)?,
        }))
    }

    async fn get_timeline(
        &self,
        request: Request<proto::ListRequest>,
    ) -> Result<Response<proto::TimelineList>, Status> {
        if request.get_ref().actor.is_empty() {
            return Err(invalid_request(
                "actor",
                "is required: whose timeline".into(),
            ));
        }
        let source = self.source(&request, request.get_ref().read.as_ref())?;
        let answer = self
            .queries
            .timeline(source, &request.get_ref().actor, &page(request.get_ref()))
            .await?;
        Ok(Response::new(proto::TimelineList {
            info: Some(info(&answer)),
            entries: messages(&answer.items)?,
        }))
    }

    async fn list_relations(
        &self,
        request: Request<proto::ListRequest>,
    ) -> Result<Response<proto::RelationList>, Status> {
        let source = self.source(&request, request.get_ref().read.as_ref())?;
        let answer = self
            .queries
            .relations(
                source,
                &list_filter(request.get_ref()),
                &page(request.get_ref()),
            )
            .await?;
        Ok(Response::new(proto::RelationList {
            info: Some(info(&answer)),
            relations: messages(&answer.items)?,
        }))
    }

    async fn get_relations(
        &self,
        request: Request<proto::ListRequest>,
    ) -> Result<Response<proto::RelationList>, Status> {
        let Some(pair) = request.get_ref().state_pair.clone() else {
            return Err(invalid_request(
                "state_pair",
                "is required: the two states".into(),
            ));
        };
        let source = self.source(&request, request.get_ref().read.as_ref())?;
        let answer = self.queries.relation(source, &pair.a, &pair.b).await?;
        Ok(Response::new(proto::RelationList {
            info: Some(info(&answer)),
            relations: messages(&answer.items)?,
        }))
    }

    async fn list_divergences(
        &self,
        request: Request<proto::ListRequest>,
    ) -> Result<Response<proto::DivergenceList>, Status> {
        let source = self.source(&request, request.get_ref().read.as_ref())?;
        let answer = self
            .queries
            .divergences(
                source,
                &list_filter(request.get_ref()),
                &page(request.get_ref()),
            )
            .await?;
        Ok(Response::new(proto::DivergenceList {
            info: Some(info(&answer)),
            divergences: messages(&answer.items)?,
        }))
    }

    async fn get_divergence(
        &self,
        request: Request<proto::GetRequest>,
    ) -> Result<Response<proto::DivergenceList>, Status> {
        if request.get_ref().key.is_empty() {
            return Err(invalid_request(
                "key",
                "is required: the occurrence's event id or stream".into(),
            ));
        }
        let source = self.source(&request, request.get_ref().read.as_ref())?;
        let answer = self
            .queries
            .divergence(source, &request.get_ref().key)
            .await?;
        Ok(Response::new(proto::DivergenceList {
            info: Some(info(&answer)),
            divergences: messages(&answer.items)?,
        }))
    }

    async fn get_status(
        &self,
        _request: Request<()>,
    ) -> Result<Response<proto::ProjectionStatusList>, Status> {
        let statuses = self
            .queries
            .store()
            .statuses()
            .await
            .map_err(super::status::projection)?;
        let projections = statuses
            .into_iter()
            .map(|s| proto::ProjectionStatus {
                name: s.name,
                version: s.version,
                generation: s.generation,
                position: s.position,
                head: s.head,
                lag: s.lag,
                rebuilding_at: s.rebuilding,
                rebuild_requested: s.rebuild_requested,
                holder: match s.holder {
                    Holder::ThisServer => "THIS_SERVER",
                    Holder::AnotherServer => "ANOTHER_SERVER",
                    Holder::Nobody => "NOBODY",
                }
                .to_owned(),
                updated_at: Some(to_timestamp(s.updated_at)),
            })
            .collect();
        Ok(Response::new(proto::ProjectionStatusList { projections }))
    }

    async fn rebuild(
        &self,
        request: Request<proto::RebuildRequest>,
    ) -> Result<Response<()>, Status> {
        let name = &request.get_ref().name;
        if !NAMES.contains(&name.as_str()) {
            return Err(invalid_request(
                "name",
                format!("{name:?} is not a projection ({})", NAMES.join(", ")),
            ));
        }
        self.queries
            .store()
            .request_rebuild(name)
            .await
            .map_err(super::status::projection)?;
        Ok(Response::new(()))
    }
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
