//! The configurable limits (README "Limits"), each on a server configured with small ones: at
//! the limit an append, a record or a stream goes through; one over is refused with the right
//! code and a message naming the limit, its value and its flag, and nothing is written.

use std::time::Duration;

use diplog::config::ServerConfig;
use diplog::proto::{
    self, diplomacy_client::DiplomacyClient, projections_client::ProjectionsClient,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::Code;

use crate::helpers::{
    Expect, TestApp, append_request, error_info, fresh_database, new_event, read_all_from,
    record_events, spawn_app, spawn_app_with, typed_event, violated_fields,
};

fn limited(configure: impl FnOnce(&mut diplog::config::LimitsArgs)) -> ServerConfig {
    let mut config = ServerConfig::ephemeral();
    configure(&mut config.limits);
    config
}

fn assert_names(status: &tonic::Status, parts: &[&str]) {
    for part in parts {
        assert!(
            status.message().contains(part),
            "{part:?} not in {:?}",
            status.message()
        );
    }
}

fn person(id: &str, name: &str) -> proto::DiplomaticEvent {
    typed_event(json!({"actor_registered": {"actor": {"id": id, "kind": "PERSON", "name": name}}}))
}

#[tokio::test]
async fn an_append_of_more_events_than_the_limit_is_refused_naming_it() {
    let app = spawn_app_with(
        fresh_database().await,
        limited(|l| l.max_events_per_append = 3),
    )
    .await;
    let three = [("Noted", "{}"); 3];
    app.append("s", Expect::NoStream, &three)
        .await
        .expect("as many events as the limit");

    let status = app
        .append("s", Expect::Exact(3), &[("Noted", "{}"); 4])
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(&status), ["events"]);
    assert_names(
        &status,
        &[
            "has 4 events",
            "exceeds the limit of 3 events per append",
            "(--max-events-per-append)",
        ],
    );
    assert_eq!(app.event_count().await, 3, "nothing more is written");
    app.stop().await;
}

#[tokio::test]
async fn an_append_with_a_payload_over_the_limit_is_refused_naming_the_event() {
    let app = spawn_app_with(
        fresh_database().await,
        limited(|l| l.max_payload_bytes = 100),
    )
    .await;
    // A JSON string of exactly 100 bytes with its quotes.
    let at_limit = format!("\"{}\"", "x".repeat(98));
    let over = format!("\"{}\"", "x".repeat(99));
    app.append("s", Expect::NoStream, &[("Noted", &at_limit)])
        .await
        .expect("a payload of the limit's size");

    let status = app
        .append(
            "s",
            Expect::Exact(1),
            &[("Noted", "{}"), ("Noted", "{}"), ("Noted", &over)],
        )
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(&status), ["events[2].data"]);
    assert_names(
        &status,
        &[
            "events[2].data has 101 bytes",
            "exceeds the limit of 100 bytes per event payload",
            "(--max-payload-bytes)",
        ],
    );
    let log = app.read_all(read_all_from(0)).await;
    assert_eq!(log.len(), 1, "nothing more is written");
    assert_eq!(log[0].data, at_limit);
    app.stop().await;
}

#[tokio::test]
async fn a_record_of_more_events_than_the_limit_is_refused_naming_it() {
    let app = spawn_app_with(
        fresh_database().await,
        limited(|l| l.max_events_per_append = 2),
    )
    .await;
    record_events(
        &app,
        "actor-RUS",
        vec![typed_event(json!({"actor_registered": {"actor":
        {"id": "RUS", "kind": "STATE", "name": "Russia"}}}))],
    )
    .await
    .unwrap();
    record_events(
        &app,
        "actor-vladimir-putin",
        vec![person("vladimir-putin", "Vladimir Putin")],
    )
    .await
    .unwrap();
    let office = typed_event(json!({"actor_registered": {"actor":
        {"id": "rus.president", "kind": "OFFICE", "name": "President of Russia", "country": "RUS"}}}));
    let holder = typed_event(json!({"occurred": {"day": "2012-05-07"},
        "office_holder_changed": {"office": "rus.president", "holder": "vladimir-putin"}}));
    let before = app.event_count().await;

    let status = record_events(
        &app,
        "actor-rus.president",
        vec![office.clone(), holder.clone(), person("x", "X")],
    )
    .await
    .unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(&status), ["events"]);
    assert_names(
        &status,
        &[
            "has 3 events",
            "limit of 2 events per append",
            "(--max-events-per-append)",
        ],
    );
    assert_eq!(app.event_count().await, before, "nothing is written");
    let response = record_events(&app, "actor-rus.president", vec![office, holder])
        .await
        .expect("as many events as the limit");
    assert_eq!(response.positions.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn a_record_whose_payload_is_over_the_limit_is_refused_naming_the_event() {
    // The server makes a record's payload (the event's JSON): measure it on one server, then
    // set the limit of another to what a 60-character name makes.
    let measure = spawn_app().await;
    record_events(
        &measure,
        "actor-person-aa",
        vec![person("person-aa", "0123456789")],
    )
    .await
    .unwrap();
    let ten = measure.read_all(read_all_from(0)).await[0].data.len();
    measure.stop().await;
    let limit = ten - 10 + 60;
    let app = spawn_app_with(
        fresh_database().await,
        limited(|l| l.max_payload_bytes = limit as u32),
    )
    .await;
    record_events(
        &app,
        "actor-person-ab",
        vec![person("person-ab", &"x".repeat(60))],
    )
    .await
    .expect("a payload of the limit's size");

    let status = record_events(
        &app,
        "actor-person-ac",
        vec![person("person-ac", &"x".repeat(61))],
    )
    .await
    .unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(&status), ["events[0]"]);
    assert_names(
        &status,
        &[
            &format!("has {} bytes", limit + 1),
            &format!("exceeds the limit of {limit} bytes per event payload"),
            "(--max-payload-bytes)",
        ],
    );
    let log = app.read_all(read_all_from(0)).await;
    assert_eq!(log.len(), 1, "nothing more is written");
    assert_eq!(
        log[0].data.len(),
        limit,
        "the first was exactly at the limit"
    );
    app.stop().await;
}

/// An append whose encoded request is exactly `bytes` long.
fn append_of_size(stream: &str, bytes: usize) -> proto::AppendRequest {
    let sized = |n: usize| {
        let data = format!("\"{}\"", "x".repeat(n));
        append_request(stream, Expect::Any, vec![new_event("Big", &data)])
    };
    let overhead = prost::Message::encoded_len(&sized(0));
    // A longer string can take a longer length prefix: step back until it fits exactly.
    let mut n = bytes - overhead;
    while prost::Message::encoded_len(&sized(n)) > bytes {
        n -= 1;
    }
    let request = sized(n);
    assert_eq!(prost::Message::encoded_len(&request), bytes);
    request
}

#[tokio::test]
async fn a_request_over_the_size_limit_is_resource_exhausted_naming_it() {
    const LIMIT: usize = 64 * 1024;
    let app = spawn_app_with(
        fresh_database().await,
        limited(|l| l.max_request_bytes = LIMIT as u64),
    )
    .await;
    app.client
        .clone()
        .append(append_of_size("at-limit", LIMIT))
        .await
        .expect("a request of the limit's size");

    let status = app
        .client
        .clone()
        .append(append_of_size("over", LIMIT + 1))
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        status.message(),
        format!(
            "the request is {} bytes, which exceeds the limit of {LIMIT} bytes per request \
             (--max-request-bytes)",
            LIMIT + 1
        )
    );
    // The same limit guards the typed front end.
    let huge = person("someone", &"x".repeat(LIMIT));
    let status = record_events(&app, "actor-someone", vec![huge])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_names(&status, &["(--max-request-bytes)"]);
    let log = app.read_all(read_all_from(0)).await;
    assert_eq!(
        log.iter().map(|e| e.stream_id.as_str()).collect::<Vec<_>>(),
        ["at-limit"],
        "nothing else is written"
    );
    app.stop().await;
}

type Subscription = tonic::Streaming<proto::SubscriptionMessage>;

/// A live subscription, once the server has answered it (its caught-up checkpoint came).
async fn subscribe(app: &TestApp) -> Result<Subscription, tonic::Status> {
    let mut subscription = app
        .new_client()
        .await
        .subscribe(proto::SubscribeRequest {
            from: Some(proto::subscribe_request::From::Now(())),
            ..Default::default()
        })
        .await?
        .into_inner();
    subscription
        .message()
        .await
        .expect("a readable subscription")
        .expect("a first message");
    Ok(subscription)
}

fn assert_too_many(status: &tonic::Status, open: usize) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_names(
        status,
        &[
            &format!("already has {open} streams open"),
            "(--max-streams-per-client)",
        ],
    );
}

/// The status line of `GET /live` (the stream itself is left unread).
async fn live_status(app: &TestApp) -> (u16, TcpStream) {
    let addr = app.http_addr;
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("the dashboard answers");
    let request =
        format!("GET /live HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("sent");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
            .await
            .expect("a status line in time")
            .expect("readable");
        assert!(read > 0, "the connection closed: {head:?}");
        head.push(byte[0]);
    }
    let line = String::from_utf8(head).unwrap();
    let status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, stream)
}

#[tokio::test]
async fn a_client_holding_the_most_streams_is_refused_another_until_one_ends() {
    const MAX: usize = 3;
    let app = spawn_app_with(
        fresh_database().await,
        limited(|l| l.max_streams_per_client = MAX as u32),
    )
    .await;
    app.append("s", Expect::Any, &[("Noted", "{}")])
        .await
        .unwrap();
    // Streams that end give their slot back: many reads one after another are fine.
    for _ in 0..2 * MAX {
        assert_eq!(app.read_all(read_all_from(0)).await.len(), 1);
    }
    let mut open = Vec::new();
    for _ in 0..MAX - 1 {
        open.push(subscribe(&app).await.expect("under the limit"));
    }
    let (status, live) = live_status(&app).await;
    assert_eq!(
        status, 200,
        "the dashboard's live stream counts as the third"
    );

    // Every streaming RPC of this client (all from one address) is refused now.
    let status = subscribe(&app).await.unwrap_err();
    assert_too_many(&status, MAX);
    assert_eq!(error_info(&status)["reason"], "TOO_MANY_STREAMS");
    assert_eq!(error_info(&status)["open_streams"], MAX.to_string());
    let status = app
        .client
        .clone()
        .read_all(read_all_from(0))
        .await
        .unwrap_err();
    assert_too_many(&status, MAX);
    let status = app
        .client
        .clone()
        .read_stream(proto::ReadStreamRequest {
            stream_id: "s".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_too_many(&status, MAX);
    let status = DiplomacyClient::new(app.channel().await)
        .read_events(proto::ReadEventsRequest::default())
        .await
        .unwrap_err();
    assert_too_many(&status, MAX);
    let status = ProjectionsClient::new(app.channel().await)
        .watch_projection(proto::WatchProjectionRequest {
            projection: "channels".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_too_many(&status, MAX);
    let (status, _refused) = live_status(&app).await;
    assert_eq!(status, 429);
    // Unary calls are not streams.
    app.append("s", Expect::Any, &[("Noted", "{}")])
        .await
        .expect("an append while the streams are all taken");

    // A client that goes away frees its slot (the server notices the stream's reset).
    drop(open.pop());
    let freed = poll_for_a_slot(&app).await;
    // And so does a dashboard page that closes.
    drop(live);
    let also_freed = poll_for_a_slot(&app).await;
    let status = subscribe(&app).await.unwrap_err();
    assert_too_many(&status, MAX);
    drop((open, freed, also_freed));
    app.stop().await;
}

/// Subscribes until a slot is free, for up to 5 s.
async fn poll_for_a_slot(app: &TestApp) -> Subscription {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match subscribe(app).await {
            Ok(subscription) => return subscription,
            Err(status) if tokio::time::Instant::now() < deadline => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(status) => panic!("no slot freed within 5 s: {status:?}"),
        }
    }
}

/// `diplog import` sends a scenario in one atomic `RecordMany`: against a server with a lower
/// limit it is refused as a whole with the limit named, nothing written; importing again once
/// the limit allows writes all of it.
#[tokio::test]
async fn an_import_into_a_server_with_a_lower_event_limit_fails_naming_it_and_can_resume() {
    use diplog::import::{self, OnInvalid, scenario};
    let items = || {
        scenario::parse(scenario::FOUNDING_SCENARIO)
            .expect("the founding scenario parses")
            .items
    };
    let database = fresh_database().await;
    let low = spawn_app_with(database.clone(), limited(|l| l.max_events_per_append = 4)).await;

    let refused = import::import(low.channel().await, items(), OnInvalid::RefuseAll)
        .await
        .unwrap_err();

    let message = refused.to_string();
    assert!(message.contains("INVALID_ARGUMENT"), "{message}");
    assert!(
        message.contains(&format!(
            "records has {} events, which exceeds the limit of 4 events per append \
             (--max-events-per-append)",
            items().len()
        )),
        "{message}"
    );
    assert_eq!(low.event_count().await, 0, "nothing written");
    low.stop().await;

    let default = crate::helpers::spawn_app_on(database).await;
    let report = import::import(default.channel().await, items(), OnInvalid::RefuseAll)
        .await
        .expect("the import resumes");
    assert_eq!(report.already_present, 0);
    assert_eq!(report.records, 1, "one atomic record");
    assert_eq!(default.event_count().await, report.written as i64);
    default.stop().await;
}
