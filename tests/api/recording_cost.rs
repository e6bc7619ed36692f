//! What recording costs does not grow with how many sources reported an occurrence: a record
//! into an occurrence stream of 10,000 source reports reads as many events as one into a new
//! occurrence (the server's debug log says how many it read), and the read of a stream's steps
//! is served by the partial index that leaves the reports out. Counted, not timed.

use diplog::proto::{self, diplomacy_client::DiplomacyClient};
use serde_json::{Value, json};

use crate::helpers::{Serve, database_url_for, fresh_database, record_request, typed_event};

const REPORTS: usize = 10_000;

fn registered(actor: &str, kind: &str) -> proto::RecordRequest {
    record_request(
        &format!("actor-{actor}"),
        vec![typed_event(json!({
            "actor_registered": {"actor": {"id": actor, "kind": kind, "name": actor}}
        }))],
    )
}

fn call() -> proto::DiplomaticEvent {
    typed_event(json!({
        "occurred": {"day": "2025-02-15"},
        "sources": [{"source": "agency", "quotes": [{"text": "A call was held"}]}],
        "call_held": {"participants": [{"actor": "anna-one"}, {"actor": "boris-two"}]}
    }))
}

fn report(occurrence: &str) -> proto::DiplomaticEvent {
    typed_event(json!({
        "occurred": {"day": "2025-02-15"},
        "sources": [{"source": "agency", "quotes": [{"text": "Another source reports the call"}]}],
        "source_report_attached": {"occurrence": occurrence}
    }))
}

#[tokio::test]
async fn a_record_into_a_stream_of_ten_thousand_reports_reads_what_one_into_a_new_stream_reads() {
    let database = fresh_database().await;
    let url = database_url_for(&database);
    let mut server = Serve::on_database(&url)
        .env("RUST_LOG", "info,diplog::recorder=debug")
        .start()
        .await;
    let mut client = DiplomacyClient::new(server.channel().await);
    let mut record = async |request: proto::RecordRequest| {
        client.record(request).await.expect("recorded");
    };
    for (actor, kind) in [
        ("anna-one", "PERSON"),
        ("boris-two", "PERSON"),
        ("agency", "MEDIA"),
    ] {
        record(registered(actor, kind)).await;
    }
    let long_call = call();
    let long_id = long_call.id.clone();
    record(record_request("occurrence-long", vec![long_call])).await;
    for _ in 0..REPORTS / 1000 {
        let reports = (0..1000).map(|_| report(&long_id)).collect();
        record(record_request("occurrence-long", reports)).await;
    }
    let short_call = call();
    let short_id = short_call.id.clone();
    record(record_request("occurrence-short", vec![short_call])).await;

    // Skip the log entries of the records above.
    for _ in 0..3 + 1 + REPORTS / 1000 + 1 {
        server.log_entry("read what the rules need").await;
    }
    record(record_request("occurrence-long", vec![report(&long_id)])).await;
    let into_long = server.log_entry("read what the rules need").await;
    record(record_request("occurrence-short", vec![report(&short_id)])).await;
    let into_short = server.log_entry("read what the rules need").await;

    let read = |entry: &Value| {
        entry["fields"]["events_read"]
            .as_u64()
            .expect("events_read")
    };
    println!(
        "events read: {} into the stream of {REPORTS} reports, {} into a new one",
        read(&into_long),
        read(&into_short)
    );
    assert_eq!(read(&into_long), read(&into_short));
    assert!(read(&into_long) < 10, "{into_long}");

    // The steps of the long stream are found through the partial index, which holds its call
    // alone: the reports are never visited. (The predicate is the store's, word for word.)
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query("analyze events").execute(&pool).await.unwrap();
    let plan: Vec<String> = sqlx::query_scalar(
        "explain select position from events \
         where stream_id = any(array['occurrence-long']) \
           and metadata->>'diplog.schema' = 'diplog.v1.DiplomaticEvent' \
           and event_type not in ('SourceReportAttached', 'EventCorrected')",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        plan.iter()
            .any(|line| line.contains("events_stream_steps_idx")),
        "{plan:#?}"
    );
    let indexed: i64 = sqlx::query_scalar(
        "select count(*) from events where stream_id = 'occurrence-long' \
           and metadata->>'diplog.schema' = 'diplog.v1.DiplomaticEvent' \
           and event_type not in ('SourceReportAttached', 'EventCorrected')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(indexed, 1, "the call is the stream's one step");
    pool.close().await;
    server.terminate(std::time::Duration::from_secs(20)).await;
}

/// A call between two of the actors `a-0` … `a-15`, the `i`th and the next.
fn call_between(i: usize) -> proto::DiplomaticEvent {
    typed_event(json!({
        "occurred": {"day": "2025-02-15"},
        "sources": [{"source": "agency", "quotes": [{"text": "A call was held"}]}],
        "call_held": {"participants": [
            {"actor": format!("a-{}", i % 16)}, {"actor": format!("a-{}", (i + 1) % 16)}
        ]}
    }))
}

#[tokio::test]
async fn concurrent_records_are_read_together_and_each_sees_only_what_it_names() {
    const CLIENTS: usize = 24;
    let database = fresh_database().await;
    let url = database_url_for(&database);
    let mut server = Serve::on_database(&url)
        .env(
            "RUST_LOG",
            "info,diplog::recorder=debug,diplog::store::read::recording=debug",
        )
        .start()
        .await;
    let channel = server.channel().await;
    let mut client = DiplomacyClient::new(channel.clone());
    client
        .record(registered("agency", "MEDIA"))
        .await
        .expect("registered");
    for i in 0..16 {
        client
            .record(registered(&format!("a-{i}"), "PERSON"))
            .await
            .expect("registered");
    }
    let mut recorded = 17;
    let mut most_together = 0;
    for round in 0..5 {
        // Every client's record names two actors of its own (and the source); one names an
        // actor nobody registered.
        let records = (0..CLIENTS).map(|i| {
            let mut client = DiplomacyClient::new(channel.clone());
            let event = if i == CLIENTS - 1 {
                typed_event(json!({
                    "occurred": {"day": "2025-02-15"},
                    "sources": [{"source": "agency", "quotes": [{"text": "A call"}]}],
                    "call_held": {"participants": [{"actor": "a-0"}, {"actor": "ghost"}]}
                }))
            } else {
                call_between(i)
            };
            let request = record_request(&format!("occurrence-{round}-{i}"), vec![event]);
            async move { client.record(request).await }
        });
        let answers = futures::future::join_all(records).await;
        for (i, answer) in answers.iter().enumerate() {
            if i == CLIENTS - 1 {
                let status = answer.as_ref().expect_err("an unknown actor is refused");
                assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
            } else {
                answer.as_ref().expect("recorded");
            }
        }
        // What each record read (its two actors' and the source's registrations, whatever
        // it was read with), and how many were read together: the log in order (both
        // messages start "read ").
        let (mut asked, mut checked) = (0, 0);
        let mut events_read: Vec<u64> = Vec::new();
        while asked < CLIENTS + recorded || checked < CLIENTS + recorded {
            let entry = server.log_entry("read ").await;
            if let Some(asks) = entry["fields"]["asks"].as_u64() {
                most_together = most_together.max(asks as usize);
                asked += asks as usize;
            } else {
                checked += 1;
                if checked > recorded {
                    events_read.push(
                        entry["fields"]["events_read"]
                            .as_u64()
                            .expect("events_read"),
                    );
                }
            }
        }
        assert_eq!(asked, CLIENTS + recorded, "every record read once");
        let (known, ghost) = events_read
            .iter()
            .fold((0, 0), |(known, ghost), &n| match n {
                3 => (known + 1, ghost),
                2 => (known, ghost + 1),
                _ => (known, ghost),
            });
        assert_eq!(
            (known, ghost),
            (CLIENTS - 1, 1),
            "each record read its actors' registrations and no other's: {events_read:?}"
        );
        recorded = 0;
        if most_together > 1 {
            break;
        }
    }
    assert!(
        most_together > 1,
        "concurrent records were read together at least once in five rounds"
    );
}
