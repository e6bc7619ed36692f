//! `GET /live`: server-sent events that tell open pages where the log's head is, as
//! `data: {"position": N}`: once at connection, then whenever it moves. Pages then fetch
//! themselves again with `min_position=N`. Fed by a log subscription from now, so appends
//! through other servers on the same database reach open pages too.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::Extensions;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt, future};

use super::{Dashboard, HttpError};
use crate::domain::{LogFilter, SubscriptionStart};
use crate::stream_limit::ClientKey;
use crate::subscriptions::{SubscribeError, SubscriptionRequest};

/// Positions announced together at most: a burst of appends is one message, not thousands.
const COALESCE: usize = 1024;

/// The log positions to announce: the head at connection first, then each new one (positions
/// that come in quick succession are announced as the last of them). Ends when the server
/// shuts down, or when the client stops reading (browsers reconnect by themselves).
pub async fn positions(
    dashboard: &Dashboard,
) -> Result<impl Stream<Item = u64> + Send + use<>, SubscribeError> {
    let subscription = dashboard
        .subscriptions
        .subscribe(SubscriptionRequest {
            start: SubscriptionStart::Now,
            filter: LogFilter::default(),
            checkpoint_interval: None,
            checkpoint_every: None,
        })
        .await?;
    let mut announced = None;
    Ok(subscription
        .take_while(|message| future::ready(message.is_ok()))
        .filter_map(|message| future::ready(message.ok().map(|m| m.position())))
        .ready_chunks(COALESCE)
        .filter_map(move |positions| {
            // Heartbeat checkpoints repeat the position: announce only a move.
            let last = positions.into_iter().max();
            let moved = last.filter(|&p| announced.is_none_or(|a| p > a));
            if moved.is_some() {
                announced = moved;
            }
            future::ready(moved)
        }))
}

/// The live stream counts against its client's open streams (`--max-streams-per-client`):
/// a client by its principal if the request carries one, else by its address.
pub async fn live(
    State(dashboard): State<Dashboard>,
    extensions: Extensions,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, HttpError> {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    let slot = dashboard
        .streams
        .acquire(ClientKey::of(&extensions, peer))?;
    let positions = positions(&dashboard)
        .await
        .map_err(|error| HttpError::Internal(error.to_string()))?;
    let events = positions.boxed().map(|position| {
        Ok(Event::default().data(serde_json::json!({ "position": position }).to_string()))
    });
    Ok(Sse::new(slot.hold(events)).keep_alive(KeepAlive::default()))
}
