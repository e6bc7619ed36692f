//! Streams held open at once by one client (`--max-streams-per-client`): the gRPC
//! server-streaming RPCs and the dashboard's `/live`. Owns the counting and the slot that
//! releases a stream's place when it ends or its client goes away; the front ends take a
//! slot before they start a stream and keep it inside the stream they return. Of the
//! request it reads only the extensions (`http::Extensions`, which tonic and axum share).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::Stream;
use tonic::codegen::http;

use crate::auth::{Credential, Principal};

/// Who a stream is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// An authenticated caller, by name, wherever it connects from.
    Principal(String),
    /// Anyone else, by address: every connection from one IP address is one client.
    Address(IpAddr),
    /// No principal and no address (not over TCP): all such callers share one budget.
    Unknown,
}

impl ClientKey {
    /// The principal the authentication layer put in the request, unless it is the open
    /// server's (which everyone is, so it tells clients apart by nothing); else the address.
    pub fn of(extensions: &http::Extensions, peer: Option<SocketAddr>) -> Self {
        match extensions.get::<Principal>() {
            Some(principal) if principal.credential != Credential::Open => {
                Self::Principal(principal.name.clone())
            }
            _ => peer.map_or(Self::Unknown, |peer| Self::Address(peer.ip())),
        }
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Principal(name) => write!(f, "principal {name:?}"),
            Self::Address(ip) => write!(f, "client {ip}"),
            Self::Unknown => f.write_str("this client"),
        }
    }
}

/// The stream a client asked for would be one too many.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{client} already has {open} streams open, the limit per client \
     (--max-streams-per-client); end one first"
)]
pub struct TooManyStreams {
    pub client: ClientKey,
    pub open: usize,
}

/// The open streams of every client; cheap to clone (one shared count).
#[derive(Debug, Clone)]
pub struct StreamLimiter {
    max: usize,
    open: Arc<Mutex<HashMap<ClientKey, usize>>>,
}

impl StreamLimiter {
    pub fn new(max_per_client: usize) -> Self {
        Self {
            max: max_per_client,
            open: Arc::default(),
        }
    }

    /// A slot for one more stream of `client`, or the refusal when it holds the most already.
    pub fn acquire(&self, client: ClientKey) -> Result<StreamSlot, TooManyStreams> {
        let mut open = self
            .open
            .lock()
            .expect("the stream counts are never poisoned");
        let count = open.entry(client.clone()).or_default();
        if *count >= self.max {
            metrics::counter!(crate::monitoring::STREAM_LIMIT_REFUSALS).increment(1);
            return Err(TooManyStreams {
                client,
                open: *count,
            });
        }
        *count += 1;
        Ok(StreamSlot {
            open: self.open.clone(),
            client,
        })
    }

    /// The streams `client` holds open now.
    pub fn open(&self, client: &ClientKey) -> usize {
        let open = self
            .open
            .lock()
            .expect("the stream counts are never poisoned");
        open.get(client).copied().unwrap_or(0)
    }
}

/// One stream's place in its client's count, given back when dropped.
#[derive(Debug)]
pub struct StreamSlot {
    open: Arc<Mutex<HashMap<ClientKey, usize>>>,
    client: ClientKey,
}

impl StreamSlot {
    /// `stream`, holding this slot until it ends or is dropped (the client went away).
    pub fn hold<S>(self, stream: S) -> Held<S> {
        Held {
            stream,
            slot: Some(self),
        }
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .open
            .lock()
            .expect("the stream counts are never poisoned");
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            // Forget clients with nothing open, so the map does not grow with every address.
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

/// A stream that holds a [`StreamSlot`]: given back at the stream's end, or when dropped.
pub struct Held<S> {
    stream: S,
    slot: Option<StreamSlot>,
}

impl<S: Stream + Unpin> Stream for Held<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let next = Pin::new(&mut self.stream).poll_next(cx);
        if let Poll::Ready(None) = next {
            self.slot = None;
        }
        next
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.stream.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::auth::Role;

    fn ip(last: u8) -> ClientKey {
        ClientKey::Address(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn a_client_gets_as_many_slots_as_the_limit_and_no_more() {
        let limiter = StreamLimiter::new(2);
        let first = limiter.acquire(ip(1)).unwrap();
        let _second = limiter.acquire(ip(1)).unwrap();

        let refused = limiter.acquire(ip(1)).unwrap_err();

        assert_eq!(
            refused,
            TooManyStreams {
                client: ip(1),
                open: 2
            }
        );
        assert_eq!(
            refused.to_string(),
            "client 10.0.0.1 already has 2 streams open, the limit per client \
             (--max-streams-per-client); end one first"
        );
        drop(first);
        assert_eq!(limiter.open(&ip(1)), 1);
        let _third = limiter
            .acquire(ip(1))
            .expect("a dropped slot is free again");
    }

    #[test]
    fn each_client_has_its_own_count() {
        let limiter = StreamLimiter::new(1);
        let _a = limiter.acquire(ip(1)).unwrap();
        let _b = limiter.acquire(ip(2)).expect("another address");
        let _alice = limiter
            .acquire(ClientKey::Principal("alice".into()))
            .unwrap();
        let _bob = limiter
            .acquire(ClientKey::Principal("bob".into()))
            .expect("another principal");
        assert!(
            limiter
                .acquire(ClientKey::Principal("alice".into()))
                .is_err()
        );
    }

    #[test]
    fn a_client_with_nothing_open_is_forgotten() {
        let limiter = StreamLimiter::new(3);
        let slots: Vec<_> = (0..3).map(|_| limiter.acquire(ip(1)).unwrap()).collect();
        assert_eq!(limiter.open(&ip(1)), 3);
        drop(slots);
        assert_eq!(limiter.open(&ip(1)), 0);
        assert!(limiter.open.lock().unwrap().is_empty());
    }

    fn principal(name: &str, credential: Credential) -> http::Extensions {
        let mut extensions = http::Extensions::new();
        extensions.insert(Principal {
            name: name.to_owned(),
            roles: vec![Role::Reader],
            credential,
        });
        extensions
    }

    #[test]
    fn a_client_is_its_principal_else_its_address() {
        let here: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let elsewhere: SocketAddr = "10.0.0.2:6000".parse().unwrap();
        let alice = principal("alice", Credential::Token);

        assert_eq!(
            ClientKey::of(&alice, Some(here)),
            ClientKey::of(&alice, Some(elsewhere)),
            "one principal from two addresses is one client"
        );
        assert_eq!(
            ClientKey::of(&alice, Some(here)),
            ClientKey::Principal("alice".into())
        );
        assert_eq!(
            ClientKey::of(&principal("carol", Credential::Certificate), None),
            ClientKey::Principal("carol".into())
        );
        // On an open server everyone is the same principal: count by address instead.
        let open = principal("anonymous", Credential::Open);
        assert_eq!(ClientKey::of(&open, Some(here)), ip(1));
        assert_ne!(
            ClientKey::of(&open, Some(here)),
            ClientKey::of(&open, Some(elsewhere))
        );
        assert_eq!(
            ClientKey::of(
                &http::Extensions::new(),
                Some("10.0.0.1:7000".parse().unwrap())
            ),
            ip(1),
            "two connections from one address are one client"
        );
        assert_eq!(
            ClientKey::of(&http::Extensions::new(), None),
            ClientKey::Unknown
        );
    }

    #[tokio::test]
    async fn a_held_stream_gives_its_slot_back_when_it_ends_or_is_dropped() {
        let limiter = StreamLimiter::new(2);
        let mut ended = limiter
            .acquire(ip(1))
            .unwrap()
            .hold(futures::stream::iter([1, 2]));
        let dropped = limiter
            .acquire(ip(1))
            .unwrap()
            .hold(futures::stream::pending::<()>());
        assert_eq!(limiter.open(&ip(1)), 2);

        assert_eq!(ended.next().await, Some(1));
        assert_eq!(ended.next().await, Some(2));
        assert_eq!(limiter.open(&ip(1)), 2, "open until its end");
        assert_eq!(ended.next().await, None);
        assert_eq!(
            limiter.open(&ip(1)),
            1,
            "released at its end, not yet dropped"
        );
        drop(dropped);
        assert_eq!(limiter.open(&ip(1)), 0);
        drop(ended);
    }
}
