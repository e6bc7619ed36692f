//! `diplog.v1.Projections`: the read models over gRPC. Every list and get is one generic
//! call over the item's [`Served`] description (its query, its list message); views become
//! protobuf messages through their JSON (`lists::message`), so no field is copied by hand.
//! `WatchProjection` is `projections_watch`.

use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::convert::{list_filter, records, timestamp, to_timestamp};
use super::lists::{ListMessage, Served, message};
use super::projections_watch::{ChangeStream, watch};
use super::status::invalid_request;
use super::stream_slot;
use crate::projections::engine::catalog::NAMES;
use crate::projections::engine::rows::Holder;
use crate::projections::models::channels::view::ChannelView;
use crate::projections::models::commitments::CommitmentView;
use crate::projections::models::divergence::DivergenceView;
use crate::projections::models::relations::view::RelationView;
use crate::projections::models::summits::SummitView;
use crate::projections::models::timeline::TimelineEntry;
use crate::projections::read::query::Queries;
use crate::projections::read::request::{Answer, AsOf, ListFilter, Page, Source, parse_day};
use crate::projections::read::search::SearchRequest;
use crate::proto::{self, projections_server::Projections};
use crate::stream_limit::StreamLimiter;

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

    /// The call's wait for its read position: the client's deadline, bounded by the server's
    /// request timeout.
    fn wait<T>(&self, request: &Request<T>) -> Duration {
        grpc_timeout(request).map_or(self.max_wait, |t| t.min(self.max_wait))
    }

    /// One page of `V`'s list as the request filters it.
    async fn list<V: Served>(
        &self,
        request: Request<proto::ListRequest>,
    ) -> Result<Response<V::List>, Status> {
        let source = self.source(&request, request.get_ref().read.as_ref())?;
        let request = request.get_ref();
        let filter = ListFilter {
            records: records(request.records)?,
            ..list_filter(
                &request.actor,
                request.state_pair.as_ref(),
                &request.status,
                request.pending_only,
            )
        };
        let page = Page {
            size: request.page_size as usize,
            token: request.page_token.clone(),
        };
        answered(self.queries.list::<V>(source, &filter, &page).await?)
    }

    /// The items of `V` the request's key names; `what` says what the key is.
    async fn get<V: Served>(
        &self,
        request: Request<proto::GetRequest>,
        what: &str,
    ) -> Result<Response<V::List>, Status> {
        let key = &request.get_ref().key;
        if key.is_empty() {
            return Err(invalid_request("key", format!("is required: {what}")));
        }
        let source = self.source(&request, request.get_ref().read.as_ref())?;
        let answer = self
            .queries
            .get::<V>(source, &ListFilter::default(), key)
            .await?;
        answered(answer)
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
        let on = (!read.on_day.is_empty())
            .then(|| parse_day(&read.on_day))
            .transpose()
            .map_err(|message| invalid_request("read.on_day", message))?;
        Ok(Source::of(as_of, on, read.min_position, self.wait(request)))
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

/// What an answer reflects, and where its next page starts.
fn answer_info<T>(answer: &Answer<T>) -> proto::AnswerInfo {
    proto::AnswerInfo {
        position: answer.position,
        reference_time: Some(to_timestamp(answer.reference)),
        next_page_token: answer.next_page_token.clone(),
        total: answer.total as u32,
    }
}

/// A list answer: its info and its items' messages.
fn answered<V: Served>(answer: Answer<V>) -> Result<Response<V::List>, Status> {
    let items = answer.items.iter().map(message).collect::<Result<_, _>>()?;
    Ok(Response::new(V::List::new(answer_info(&answer), items)))
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
        // The snapshot's read-your-writes wait is bounded as a list's is.
        let deadline = Instant::now() + self.wait(&request);
        let changes = watch(
            &self.queries,
            request.get_ref(),
            deadline,
            self.shutdown.clone(),
        )
        .await?;
        Ok(Response::new(slot.hold(changes).boxed()))
    }

    async fn list_channels(
        &self,
        request: Request<proto::ListRequest>,
    ) -> Result<Response<proto::ChannelList>, Status> {
        self.list::<ChannelView>(request).await
    }

    async fn get_channel(
        &self,
        request: Request<proto::GetRequest>,
    ) -> Result<Response<proto::ChannelList>, Status> {
        self.get::<ChannelView>(request, "the channel's key or stream")
            .await
    }

    async fn list_summits(
        &self,
        request: Request<proto::ListRequest>,
    ) -> Result<Response<proto::SummitList>, Status> {
        self.list::<SummitView>(request).await
    }

    async fn get_summit(
        &self,
        request: Request<proto::GetRequest>,
    ) -> Result<Response<proto::SummitList>, Status> {
        self.get::<SummitView>(request, "the summit's stream").await
    }

    async fn list_commitments(
        &self,
        request: Request<proto::ListRequest>,
    ) -> Result<Response<proto::CommitmentList>, Status> {
        self.list::<CommitmentView>(request).await
    }

    async fn get_commitment(
        &self,
        request: Request<proto::GetRequest>,
    ) -> Result<Response<proto::CommitmentList>, Status> {
        self.get::<CommitmentView>(request, "the commitment's stream")
            .await
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
        self.list::<TimelineEntry>(request).await
    }

    async fn list_relations(
        &self,
        request: Request<proto::ListRequest>,
    ) -> Result<Response<proto::RelationList>, Status> {
        self.list::<RelationView>(request).await
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
        let records = records(request.get_ref().records)?;
        answered(
            self.queries
                .relation(source, &pair.a, &pair.b, records)
                .await?,
        )
    }

    async fn list_divergences(
        &self,
        request: Request<proto::ListRequest>,
    ) -> Result<Response<proto::DivergenceList>, Status> {
        self.list::<DivergenceView>(request).await
    }

    async fn get_divergence(
        &self,
        request: Request<proto::GetRequest>,
    ) -> Result<Response<proto::DivergenceList>, Status> {
        self.get::<DivergenceView>(request, "the occurrence's event id or stream")
            .await
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
                updated_at: s.updated_at.map(to_timestamp),
            })
            .collect();
        Ok(Response::new(proto::ProjectionStatusList { projections }))
    }

    async fn search(
        &self,
        request: Request<proto::SearchRequest>,
    ) -> Result<Response<proto::SearchResults>, Status> {
        let read = request.get_ref().read.clone().unwrap_or_default();
        // Refused before `source`, which would ask an as-of reader for the auditor role.
        if read.as_of.is_some() {
            return Err(invalid_request(
                "read.as_of",
                "search answers from the live projection only; leave as_of out".into(),
            ));
        }
        let source = self.source(&request, Some(&read))?;
        let request = request.into_inner();
        let time = |field: &'static str, value: Option<prost_types::Timestamp>| {
            value
                .map(timestamp)
                .transpose()
                .map_err(|e| invalid_request(field, e.to_string()))
        };
        let search = SearchRequest {
            from: time("occurred_from", request.occurred_from)?,
            to: time("occurred_to", request.occurred_to)?,
            query: request.query,
            kinds: request.kinds,
            actor: (!request.actor.is_empty()).then_some(request.actor),
            records: records(request.records)?,
        };
        let page = Page {
            size: request.page_size as usize,
            token: request.page_token,
        };
        let answer = self.queries.search(source, &search, &page).await?;
        let hits = answer.items.iter().map(message).collect::<Result<_, _>>()?;
        Ok(Response::new(proto::SearchResults {
            info: Some(answer_info(&answer)),
            hits,
        }))
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
