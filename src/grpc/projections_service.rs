//! `diplog.v1.Projections`: the read models over gRPC. Views become protobuf messages through
//! their JSON (the same mapping the diplomacy service uses), so no field is copied by hand.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::time::Instant;
use tonic::{Request, Response, Status};

use super::bridge;
use super::convert::timestamp;
use crate::domain::{ValidationError, ValidationErrors};
use crate::projections::catalog::NAMES;
use crate::projections::query::{Answer, AsOf, ListFilter, Page, Queries, QueryError, Source};
use crate::projections::store::Holder;
use crate::proto::{self, projections_server::Projections};

pub struct ProjectionsService {
    queries: Queries,
    /// The longest a read-your-writes wait may last (the server's request timeout).
    max_wait: Duration,
}

impl ProjectionsService {
    pub fn new(queries: Queries, max_wait: Duration) -> Self {
        Self { queries, max_wait }
    }

    /// Where to answer from: the live model (waiting for `min_position` until the call's
    /// deadline, bounded by the server's request timeout) or a replay as of a position or time.
    fn source<T>(
        &self,
        request: &Request<T>,
        read: Option<&proto::ReadOptions>,
    ) -> Result<Source, Status> {
        let read = read.cloned().unwrap_or_default();
        match read.as_of {
            // An as-of answer comes from the log itself: there is nothing to wait for, so a
            // `min_position` is moot.
            Some(proto::read_options::AsOf::AsOfPosition(position)) => {
                Ok(Source::AsOf(AsOf::Position(position)))
            }
            Some(proto::read_options::AsOf::AsOfTime(time)) => {
                let time =
                    timestamp(time).map_err(|e| invalid("read.as_of_time", e.to_string()))?;
                Ok(Source::AsOf(AsOf::Time(time)))
            }
            None => {
                let wait = grpc_timeout(request).map_or(self.max_wait, |t| t.min(self.max_wait));
                Ok(Source::Live {
                    min_position: read.min_position,
                    deadline: Instant::now() + wait,
                })
            }
        }
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

fn invalid(field: &str, message: String) -> Status {
    let mut errors = ValidationErrors::new();
    errors.push(field, ValidationError::Malformed(message));
    errors.into()
}

impl From<QueryError> for Status {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::Invalid { field, message } => invalid(field, message),
            QueryError::NotFound(message) => Status::not_found(message),
            QueryError::NotYet { .. } => Status::deadline_exceeded(error.to_string()),
            QueryError::Projection(error) => super::status::projection(error),
            QueryError::BadRow(_) => super::status::internal(&error),
        }
    }
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

/// A view as its protobuf message (`message`: the proto's full name).
fn message<V: Serialize, M: prost::Message + Default>(
    view: &V,
    message: &str,
) -> Result<M, Status> {
    let json = serde_json::to_value(view).map_err(|e| super::status::internal(&e))?;
    bridge::from_json(json, message).map_err(|(path, reason)| {
        tracing::error!(
            message,
            path,
            reason,
            "a projection view does not match its proto"
        );
        Status::internal("internal error")
    })
}

fn messages<V: Serialize, M: prost::Message + Default>(
    views: &[V],
    name: &str,
) -> Result<Vec<M>, Status> {
    views.iter().map(|v| message(v, name)).collect()
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
        return Err(invalid("key", format!("is required: the {what}")));
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

const EVERYTHING: Page = Page {
    size: crate::projections::query::MAX_PAGE_SIZE,
    token: String::new(),
};

#[tonic::async_trait]
impl Projections for ProjectionsService {
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
            channels: messages(&answer.items, "diplog.v1.Channel")?,
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
            channels: messages(&answer.items, "diplog.v1.Channel")?,
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
            summits: messages(&answer.items, "diplog.v1.Summit")?,
        }))
    }

    async fn get_summit(
        &self,
        request: Request<proto::GetRequest>,
    ) -> Result<Response<proto::SummitList>, Status> {
        let key = required_key(request.get_ref(), "summit's stream")?;
        let source = self.source(&request, request.get_ref().read.as_ref())?;
        let all = self
            .queries
            .summits(source, &ListFilter::default(), &EVERYTHING)
            .await?;
        let answer = only(&all, &key, "summit", |s| s.key == key)?;
        Ok(Response::new(proto::SummitList {
            info: Some(info(&answer)),
            summits: messages(&answer.items, "diplog.v1.Summit")?,
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
            commitments: messages(&answer.items, "diplog.v1.Commitment")?,
        }))
    }

    async fn get_commitment(
        &self,
        request: Request<proto::GetRequest>,
    ) -> Result<Response<proto::CommitmentList>, Status> {
        let key = required_key(request.get_ref(), "commitment's stream")?;
        let source = self.source(&request, request.get_ref().read.as_ref())?;
        let all = self
            .queries
            .commitments(source, &ListFilter::default(), &EVERYTHING)
            .await?;
        let answer = only(&all, &key, "commitment", |c| c.key == key)?;
        Ok(Response::new(proto::CommitmentList {
            info: Some(info(&answer)),
            commitments: messages(&answer.items, "diplog.v1.Commitment")?,
        }))
    }

    async fn get_timeline(
        &self,
        request: Request<proto::ListRequest>,
    ) -> Result<Response<proto::TimelineList>, Status> {
        if request.get_ref().actor.is_empty() {
            return Err(invalid("actor", "is required: whose timeline".into()));
        }
        let source = self.source(&request, request.get_ref().read.as_ref())?;
        let answer = self
            .queries
            .timeline(source, &request.get_ref().actor, &page(request.get_ref()))
            .await?;
        Ok(Response::new(proto::TimelineList {
            info: Some(info(&answer)),
            entries: messages(&answer.items, "diplog.v1.TimelineEntry")?,
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
            relations: messages(&answer.items, "diplog.v1.Relations")?,
        }))
    }

    async fn get_relations(
        &self,
        request: Request<proto::ListRequest>,
    ) -> Result<Response<proto::RelationList>, Status> {
        let Some(pair) = request.get_ref().state_pair.clone() else {
            return Err(invalid("state_pair", "is required: the two states".into()));
        };
        let source = self.source(&request, request.get_ref().read.as_ref())?;
        let answer = self.queries.relation(source, &pair.a, &pair.b).await?;
        Ok(Response::new(proto::RelationList {
            info: Some(info(&answer)),
            relations: messages(&answer.items, "diplog.v1.Relations")?,
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
            divergences: messages(&answer.items, "diplog.v1.Divergence")?,
        }))
    }

    async fn get_divergence(
        &self,
        request: Request<proto::GetRequest>,
    ) -> Result<Response<proto::DivergenceList>, Status> {
        if request.get_ref().key.is_empty() {
            return Err(invalid(
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
            divergences: messages(&answer.items, "diplog.v1.Divergence")?,
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
            return Err(invalid(
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
