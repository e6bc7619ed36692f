//! A streamed import checks each chunk in one call, however many rows it holds: the GDELT
//! importers, through a channel that counts the calls by method, make a fixed number of calls
//! per chunk (no `ReadStream` per stream, no `GetEvent` per id), and a second import of the
//! same files writes nothing. Counted, not timed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use diplog::import::{gdelt, streamed::Tally};
use tonic::codegen::http;
use tonic::transport::Channel;

use crate::helpers::{head, spawn_app};

const EVENTS: &str = "tests/fixtures/gdelt/20250215120000.export.CSV";
const MENTIONS: &str = "tests/fixtures/gdelt/20250215120000.mentions.CSV";
/// Rows per chunk: the fixtures (33 events, 29 mentions after their headers) take 4 and 3.
const CHUNK_ROWS: usize = 10;

/// A channel that notes the method of every call made through it.
#[derive(Clone)]
struct Counting {
    inner: Channel,
    calls: Arc<Mutex<Vec<String>>>,
}

impl tower::Service<http::Request<tonic::body::Body>> for Counting {
    type Response = <Channel as tower::Service<http::Request<tonic::body::Body>>>::Response;
    type Error = <Channel as tower::Service<http::Request<tonic::body::Body>>>::Error;
    type Future = <Channel as tower::Service<http::Request<tonic::body::Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let method = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_owned();
        self.calls.lock().expect("not poisoned").push(method);
        self.inner.call(request)
    }
}

impl Counting {
    /// The calls made since the last look, by method.
    fn take(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for method in self.calls.lock().expect("not poisoned").drain(..) {
            *counts.entry(method).or_default() += 1;
        }
        counts
    }
}

fn count(calls: &BTreeMap<String, usize>, method: &str) -> usize {
    calls.get(method).copied().unwrap_or(0)
}

#[tokio::test]
async fn a_gdelt_import_checks_each_chunk_in_one_call_and_a_second_import_writes_nothing() {
    let app = spawn_app().await;
    let channel = Counting {
        inner: app.channel().await,
        calls: Arc::default(),
    };

    let mut events = Tally::default();
    gdelt::import_events(
        channel.clone(),
        PathBuf::from(EVENTS),
        CHUNK_ROWS,
        &mut events,
    )
    .await
    .expect("the events import");
    let calls = channel.take();
    let chunks = (events.rows as usize).div_ceil(CHUNK_ROWS);
    assert!(events.written > 0, "{calls:?}");
    // Per chunk: the check, and which of its events have mentions waiting.
    assert_eq!(
        count(&calls, "ReadRecordingInputs"),
        2 * chunks,
        "{calls:?}"
    );
    assert!(count(&calls, "RecordMany") <= chunks, "{calls:?}");
    assert_eq!(
        count(&calls, "ReadStream") + count(&calls, "GetEvent"),
        0,
        "{calls:?}"
    );

    let mut mentions = Tally::default();
    gdelt::import_mentions(
        channel.clone(),
        PathBuf::from(MENTIONS),
        CHUNK_ROWS,
        &mut mentions,
    )
    .await
    .expect("the mentions import");
    let calls = channel.take();
    let chunks = (mentions.rows as usize).div_ceil(CHUNK_ROWS);
    assert!(mentions.written > 0, "{calls:?}");
    // Per chunk: which of its events the log holds, and the check.
    assert!(
        count(&calls, "ReadRecordingInputs") <= 2 * chunks,
        "{calls:?}"
    );
    assert!(count(&calls, "RecordMany") <= chunks, "{calls:?}");
    assert_eq!(
        count(&calls, "ReadStream") + count(&calls, "GetEvent"),
        0,
        "{calls:?}"
    );

    let before = head(&app).await;
    for (path, events_file) in [(EVENTS, true), (MENTIONS, false)] {
        let mut again = Tally::default();
        let path = PathBuf::from(path);
        if events_file {
            gdelt::import_events(channel.clone(), path, CHUNK_ROWS, &mut again).await
        } else {
            gdelt::import_mentions(channel.clone(), path, CHUNK_ROWS, &mut again).await
        }
        .expect("the second import");
        assert_eq!(again.written, 0);
        assert!(again.already_present > 0);
    }
    assert_eq!(channel.take().get("RecordMany"), None);
    assert_eq!(head(&app).await, before);
    app.stop().await;
}
