//! Atomic records across streams (`EventLog.AppendMany`, `Diplomacy.RecordMany`): every part
//! written at consecutive positions or none; each part's own expected version, judged after
//! the earlier parts; errors naming the part at fault; retries of the whole unit answered as
//! replays and partial ones refused; concurrent units that overlap on a stream; a server killed
//! under a load of units, which leaves every unit whole or absent.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diplog::proto::{self, diplomacy_client::DiplomacyClient, event_log_client::EventLogClient};
use serde_json::json;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{
    Expect, Serve, TestApp, append_request, database_url_for, error_info, fresh_database,
    new_event, read_all_from, record_request, spawn_app, typed_event, violated_fields,
};

fn many(appends: Vec<proto::AppendRequest>) -> proto::AppendManyRequest {
    proto::AppendManyRequest { appends }
}

fn one(stream: &str, expect: Expect, data: &str) -> proto::AppendRequest {
    append_request(stream, expect, vec![new_event("Noted", data)])
}

async fn append_many(
    app: &TestApp,
    request: proto::AppendManyRequest,
) -> Result<proto::AppendManyResponse, tonic::Status> {
    app.new_client()
        .await
        .append_many(request)
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn the_appends_of_one_request_land_together_at_consecutive_positions() {
    let app = spawn_app().await;
    app.append("other", Expect::Any, &[("Noted", "{}")])
        .await
        .unwrap();

    let response = append_many(
        &app,
        many(vec![
            append_request(
                "occurrence-a",
                Expect::NoStream,
                vec![
                    new_event("CallHeld", "{}"),
                    new_event("AgreementStated", "{}"),
                ],
            ),
            one("commitment-a", Expect::NoStream, "{}"),
            // The same stream again: its expectation is judged after the first part.
            one("occurrence-a", Expect::Exact(2), "{}"),
        ]),
    )
    .await
    .expect("written");

    let answered: Vec<(i64, Vec<i64>, bool)> = response
        .appends
        .iter()
        .map(|a| (a.stream_version, a.positions.clone(), a.idempotent_replay))
        .collect();
    assert_eq!(
        answered,
        [
            (2, vec![2, 3], false),
            (1, vec![4], false),
            (3, vec![5], false)
        ]
    );
    let stored: Vec<(i64, String, i64)> = app
        .read_all(read_all_from(2))
        .await
        .into_iter()
        .map(|e| (e.position, e.stream_id, e.stream_version))
        .collect();
    assert_eq!(
        stored,
        [
            (2, "occurrence-a".into(), 1),
            (3, "occurrence-a".into(), 2),
            (4, "commitment-a".into(), 1),
            (5, "occurrence-a".into(), 3),
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn one_failed_expectation_fails_the_whole_request_and_writes_nothing() {
    let app = spawn_app().await;
    app.append("commitment-b", Expect::Any, &[("Noted", "{}")])
        .await
        .unwrap();
    let before = app.event_count().await;

    // The second part expects a stream that does not exist yet; it is at version 1.
    let status = append_many(
        &app,
        many(vec![
            one("occurrence-b", Expect::NoStream, "{}"),
            one("commitment-b", Expect::NoStream, "{}"),
        ]),
    )
    .await
    .expect_err("refused");
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    let info = error_info(&status);
    assert_eq!(info["reason"], "WRONG_EXPECTED_VERSION");
    assert_eq!(info["stream_id"], "commitment-b");
    assert_eq!(info["current_version"], "1");

    // A stream named twice, both parts expecting it new: the second finds it at 1.
    let status = append_many(
        &app,
        many(vec![
            one("occurrence-c", Expect::NoStream, "{}"),
            one("occurrence-c", Expect::NoStream, "{}"),
        ]),
    )
    .await
    .expect_err("refused");
    assert_eq!(status.code(), Code::Aborted, "{status:?}");

    assert_eq!(app.event_count().await, before, "nothing written");
    let head: i64 = sqlx::query_scalar("select position from log_head")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(head, before, "the head did not move");
    app.stop().await;
}

#[tokio::test]
async fn bad_input_names_the_append_at_fault_and_writes_nothing() {
    let app = spawn_app().await;
    let mut bad_id = one("occurrence-d", Expect::Any, "{}");
    bad_id.events[0].id = "not-a-uuid".into();
    let reused = one("occurrence-d", Expect::Any, "{}");
    let mut repeated = one("commitment-d", Expect::Any, "{}");
    repeated.events[0].id = reused.events[0].id.clone();

    let cases = [
        (
            many(vec![one("ok", Expect::Any, "{}"), bad_id]),
            "appends[1].events[0].id",
        ),
        (
            many(vec![
                one("ok", Expect::Any, "{}"),
                one("", Expect::Any, "{}"),
            ]),
            "appends[1].stream_id",
        ),
        (many(vec![reused, repeated]), "appends[1].events[0].id"),
        (many(vec![]), "appends"),
        (
            many(
                (0..3)
                    .map(|i| {
                        let events = (0..400).map(|_| new_event("Noted", "{}")).collect();
                        append_request(&format!("s-{i}"), Expect::Any, events)
                    })
                    .collect(),
            ),
            "appends",
        ),
    ];
    for (request, field) in cases {
        let status = append_many(&app, request).await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(
            violated_fields(&status).contains(&field.to_owned()),
            "{field}: {status:?}"
        );
    }
    assert_eq!(app.event_count().await, 0, "nothing written");
    app.stop().await;
}

#[tokio::test]
async fn a_retry_of_the_whole_request_is_a_replay_and_of_part_of_it_is_refused() {
    let app = spawn_app().await;
    let request = many(vec![
        one("occurrence-e", Expect::NoStream, r#"{"n":1}"#),
        one("commitment-e", Expect::NoStream, r#"{"n":2}"#),
    ]);
    let first = append_many(&app, request.clone()).await.unwrap();
    let again = append_many(&app, request.clone()).await.unwrap();
    assert!(again.appends.iter().all(|a| a.idempotent_replay));
    let positions = |r: &proto::AppendManyResponse| -> Vec<Vec<i64>> {
        r.appends.iter().map(|a| a.positions.clone()).collect()
    };
    assert_eq!(positions(&again), positions(&first));

    // The first part again beside a new one: neither is written.
    let partial = many(vec![
        request.appends[0].clone(),
        one("summit-e", Expect::Any, "{}"),
    ]);
    let status = append_many(&app, partial).await.expect_err("refused");
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert_eq!(error_info(&status)["reason"], "PARTIAL_RETRY");
    assert_eq!(app.event_count().await, 2, "nothing more written");
    app.stop().await;
}

/// Sixteen clients each move a shared counter stream (by its exact version) together with a
/// stream of their own, in one request, until each has done it ten times; conflicts send them
/// back to read the counter. Every unit is whole: each counter event sits right before its own
/// stream's event, and the streams hold exactly what was acknowledged.
#[tokio::test]
async fn concurrent_requests_that_overlap_on_a_stream_each_land_whole_or_not_at_all() {
    let app = spawn_app().await;
    const CLIENTS: usize = 16;
    const ROUNDS: usize = 10;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let url = app.server_url();
            tokio::spawn(async move {
                let mut client = EventLogClient::connect(url).await.unwrap();
                let mut conflicts = 0;
                let mut round = 0;
                while round < ROUNDS {
                    let version = match client
                        .read_stream(proto::ReadStreamRequest {
                            stream_id: "counter".into(),
                            ..Default::default()
                        })
                        .await
                    {
                        Ok(events) => crate::helpers::collect(events).await.len() as i64,
                        Err(status) if status.code() == Code::NotFound => 0,
                        Err(status) => panic!("{status:?}"),
                    };
                    let data = format!(r#"{{"client":{c},"round":{round}}}"#);
                    // The counter second: a refused unit has its first part planned and undone.
                    let request = many(vec![
                        one(&format!("own-{c}"), Expect::Exact(round as i64), &data),
                        one("counter", Expect::Exact(version), &data),
                    ]);
                    match client.append_many(request).await {
                        Ok(_) => round += 1,
                        Err(status) if status.code() == Code::Aborted => conflicts += 1,
                        Err(status) => panic!("{status:?}"),
                    }
                }
                conflicts
            })
        })
        .collect();
    let mut conflicts = 0;
    for task in tasks {
        conflicts += tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .expect("the clients finish")
            .unwrap();
    }
    println!("{conflicts} conflicts refused");
    assert!(conflicts > 0, "the clients did contend for the counter");

    let events = app.read_all(read_all_from(1)).await;
    assert_eq!(events.len(), 2 * CLIENTS * ROUNDS);
    let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
    assert_eq!(
        positions,
        (1..=events.len() as i64).collect::<Vec<_>>(),
        "no hole"
    );
    for (index, pair) in events.chunks(2).enumerate() {
        assert!(pair[0].stream_id.starts_with("own-"), "{pair:?}");
        assert_eq!(pair[1].stream_id, "counter");
        assert_eq!(pair[1].stream_version, index as i64 + 1);
        assert_eq!(
            pair[0].data, pair[1].data,
            "one unit at consecutive positions"
        );
    }
    app.stop().await;
}

fn registered(actor: &str, name: &str) -> proto::RecordRequest {
    record_request(
        &format!("actor-{actor}"),
        vec![typed_event(json!({
            "occurred": {"day": "2025-02-15"},
            "actor_registered": {"actor": {"id": actor, "kind": "PERSON", "name": name}}
        }))],
    )
}

fn call(stream: &str, participants: &[&str]) -> proto::RecordRequest {
    let participants: Vec<_> = participants.iter().map(|a| json!({"actor": a})).collect();
    record_request(
        stream,
        vec![typed_event(json!({
            "occurred": {"day": "2025-02-16"},
            "sources": [{"source": participants[0]["actor"], "quotes": [{"text": "A call was held"}]}],
            "call_held": {"participants": participants}
        }))],
    )
}

#[tokio::test]
async fn record_many_checks_the_records_against_each_other_and_writes_all_or_nothing() {
    let app = spawn_app().await;
    let mut diplomacy = DiplomacyClient::new(app.channel().await);

    // Two people registered and their call, in one request: the call names actors that only
    // the same request creates.
    let written = diplomacy
        .record_many(proto::RecordManyRequest {
            records: vec![
                registered("anna-one", "Anna One"),
                registered("boris-two", "Boris Two"),
                call("occurrence-first-call", &["anna-one", "boris-two"]),
            ],
        })
        .await
        .expect("recorded")
        .into_inner();
    let positions: Vec<Vec<i64>> = written
        .appends
        .iter()
        .map(|a| a.positions.clone())
        .collect();
    assert_eq!(positions, [vec![1], vec![2], vec![3]]);

    // A new person and a call naming someone nobody registered: refused as a whole, the
    // subject naming the record and the field; the registration is not written either.
    let status = diplomacy
        .record_many(proto::RecordManyRequest {
            records: vec![
                registered("clara-three", "Clara Three"),
                call("occurrence-second-call", &["clara-three", "nobody-known"]),
            ],
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let subjects: Vec<String> = status
        .get_error_details()
        .precondition_failure()
        .expect("a PreconditionFailure")
        .violations
        .iter()
        .map(|v| v.subject.clone())
        .collect();
    assert_eq!(
        subjects,
        ["records[1].events[0].call_held.participants[1].actor"]
    );

    // A registration with a stale expectation beside a valid call: nothing written.
    let mut stale = registered("dmitri-four", "Dmitri Four");
    stale.expected_version = Some(crate::helpers::expected(Expect::Exact(3)));
    let status = diplomacy
        .record_many(proto::RecordManyRequest {
            records: vec![
                call("occurrence-third-call", &["anna-one", "boris-two"]),
                stale,
            ],
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    assert_eq!(error_info(&status)["stream_id"], "actor-dmitri-four");

    // Input wrong in itself names the record too.
    let mut nameless = registered("eva-five", "");
    nameless.stream_id = "actor-eva-five".into();
    let status = diplomacy
        .record_many(proto::RecordManyRequest {
            records: vec![
                call("occurrence-fourth-call", &["anna-one", "boris-two"]),
                nameless,
            ],
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        violated_fields(&status)
            .iter()
            .all(|field| field.starts_with("records[1].events[0]")),
        "{status:?}"
    );

    assert_eq!(app.event_count().await, 3, "only the first request wrote");
    app.stop().await;
}

/// Clients send units of two to four appends to streams of their own until the server is
/// killed; after a restart every unit is in the log whole (all its events, at consecutive
/// positions) or not at all, and every acknowledged one is there.
#[tokio::test]
async fn a_server_killed_under_a_load_of_atomic_appends_leaves_each_unit_whole_or_absent() {
    let database = fresh_database().await;
    let url = database_url_for(&database);
    let mut server = Serve::on_database(&url).start().await;
    let address = server.grpc.clone();

    let acknowledged = Arc::new(Mutex::new(Vec::<proto::AppendManyRequest>::new()));
    let unanswered = Arc::new(Mutex::new(Vec::<proto::AppendManyRequest>::new()));
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (address, acknowledged, unanswered) =
                (address.clone(), acknowledged.clone(), unanswered.clone());
            tokio::spawn(async move {
                let mut client = EventLogClient::connect(address).await.unwrap();
                for i in 0.. {
                    let request = many(
                        (0..2 + i % 3)
                            .map(|part| {
                                let data = format!(r#"{{"client":{c},"unit":{i},"part":{part}}}"#);
                                one(&format!("c{c}-p{part}"), Expect::Any, &data)
                            })
                            .collect(),
                    );
                    match client.append_many(request.clone()).await {
                        Ok(_) => acknowledged.lock().unwrap().push(request),
                        Err(_) => {
                            unanswered.lock().unwrap().push(request);
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    server.kill().await;
    for client in clients {
        tokio::time::timeout(Duration::from_secs(30), client)
            .await
            .expect("every client notices the server is gone")
            .unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let unanswered = unanswered.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 20,
        "load before the kill: {}",
        acknowledged.len()
    );

    // What PostgreSQL committed is what the log holds: no restart of the server is needed to
    // see it.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let rows: Vec<(i64, uuid::Uuid)> =
        sqlx::query_as("select position, event_id from events order by position")
            .fetch_all(&pool)
            .await
            .unwrap();
    let position_of: BTreeMap<uuid::Uuid, i64> = rows.iter().map(|(p, id)| (*id, *p)).collect();
    let ids = |unit: &proto::AppendManyRequest| -> Vec<uuid::Uuid> {
        unit.appends
            .iter()
            .flat_map(|a| a.events.iter().map(|e| e.id.parse().unwrap()))
            .collect()
    };
    let mut landed_unanswered = 0;
    for unit in acknowledged.iter().chain(&unanswered) {
        let positions: Vec<Option<i64>> = ids(unit)
            .iter()
            .map(|id| position_of.get(id).copied())
            .collect();
        if positions.iter().all(Option::is_none) {
            continue;
        }
        let positions: Vec<i64> = positions
            .into_iter()
            .map(|p| p.expect("a unit is whole or absent"))
            .collect();
        let first = positions[0];
        assert_eq!(
            positions,
            (first..first + positions.len() as i64).collect::<Vec<_>>(),
            "a unit's events are consecutive"
        );
        landed_unanswered += usize::from(unanswered.contains(unit));
    }
    let expected: HashSet<uuid::Uuid> = acknowledged.iter().flat_map(ids).collect();
    assert!(
        expected.iter().all(|id| position_of.contains_key(id)),
        "every acknowledged unit is there"
    );
    println!(
        "acknowledged {} units; {} unanswered, {landed_unanswered} of them landed",
        acknowledged.len(),
        unanswered.len()
    );
    pool.close().await;
}
