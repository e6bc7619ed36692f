//! The global log: gapless positions in commit order under concurrency, rollbacks leaving no
//! hole, and immutability enforced by PostgreSQL itself.

use std::collections::HashMap;
use std::time::Duration;

use tonic::Code;

use crate::helpers::{
    Expect, TestApp, append_request, new_event, read_all_from, spawn_app, spawn_app_on,
};

/// Many writers on many streams while a reader tails the log by position: the reader must
/// see every acknowledged event exactly once, in position order, with no hole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tailing_reader_sees_every_acknowledged_event_once_in_order_without_holes() {
    let app = spawn_app().await;
    tail_while_writing(&[&app]).await;
    app.stop().await;
}

/// Servers sharing one database serialize on its log head: positions stay gapless and in
/// commit order across all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_sharing_a_database_keep_positions_gapless_and_in_commit_order() {
    let first = spawn_app().await;
    let second = spawn_app_on(first.db_options.clone()).await;
    let third = spawn_app_on(first.db_options.clone()).await;
    tail_while_writing(&[&first, &second, &third]).await;
    for app in [first, second, third] {
        app.stop().await;
    }
}

/// Writers spread round-robin over `apps`, a reader tailing through the first.
async fn tail_while_writing(apps: &[&TestApp]) {
    let app = apps[0];
    const WRITERS: usize = 16;
    const APPENDS_PER_WRITER: usize = 40;

    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let mut client = apps[writer % apps.len()].new_client().await;
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for append in 0..APPENDS_PER_WRITER {
                let size = 1 + (writer + append) % 3;
                let events: Vec<_> = (0..size).map(|_| new_event("Tick", "{}")).collect();
                let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
                let stream = format!("stream-{}", (writer * 7 + append) % 23);
                let response = client
                    .append(append_request(&stream, Expect::Any, events))
                    .await
                    .expect("append")
                    .into_inner();
                acknowledged.extend(ids.into_iter().zip(response.positions));
            }
            acknowledged
        }));
    }
    let tail_client = app.new_client().await;
    let reader = tokio::spawn(async move {
        let mut seen: Vec<(i64, String)> = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let expected_total: usize = (0..WRITERS)
            .flat_map(|w| (0..APPENDS_PER_WRITER).map(move |a| 1 + (w + a) % 3))
            .sum();
        while seen.len() < expected_total {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the reader fell behind"
            );
            let from = seen.last().map_or(1, |(p, _)| p + 1);
            let mut stream = tail_client
                .clone()
                .read_all(read_all_from(from))
                .await
                .expect("read_all")
                .into_inner();
            while let Some(event) = stream.message().await.expect("read") {
                seen.push((event.position, event.id));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        seen
    });

    let mut acknowledged: HashMap<String, i64> = HashMap::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    let seen = reader.await.unwrap();

    let positions: Vec<i64> = seen.iter().map(|(p, _)| *p).collect();
    let expected_positions: Vec<i64> = (1..=acknowledged.len() as i64).collect();
    assert_eq!(
        positions, expected_positions,
        "positions are gapless and in order"
    );
    for (position, id) in &seen {
        assert_eq!(acknowledged.get(id), Some(position), "event {id}");
    }
    assert_eq!(seen.len(), acknowledged.len());
}

/// A transaction that fails inside PostgreSQL (here a trigger that rejects one stream) rolls
/// back without leaving a hole, and appends that shared its group commit still succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolled_back_append_leaves_no_hole_and_spares_its_neighbours() {
    let app = spawn_app().await;
    sqlx::raw_sql(
        "create function reject_poison() returns trigger language plpgsql as $$
         begin raise exception 'poisoned stream'; end $$;
         create trigger reject_poison before insert on events
             for each row when (new.stream_id = 'poison') execute function reject_poison();",
    )
    .execute(&app.pool)
    .await
    .unwrap();

    let mut tasks = Vec::new();
    for i in 0..40 {
        let mut client = app.new_client().await;
        let stream = if i % 5 == 0 {
            "poison".to_owned()
        } else {
            format!("ok-{i}")
        };
        tasks.push(tokio::spawn(async move {
            let request = append_request(&stream, Expect::Any, vec![new_event("A", "{}")]);
            (stream, client.append(request).await)
        }));
    }
    let mut succeeded = 0;
    for task in tasks {
        let (stream, result) = task.await.unwrap();
        match result {
            Ok(_) => {
                assert_ne!(stream, "poison");
                succeeded += 1;
            }
            Err(status) => {
                assert_eq!(stream, "poison", "{status:?}");
                assert_eq!(status.code(), Code::Internal);
                assert_eq!(
                    status.message(),
                    "internal error",
                    "no database detail leaks"
                );
            }
        }
    }

    let positions: Vec<i64> = app
        .read_all(read_all_from(1))
        .await
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(succeeded, 32);
    assert_eq!(positions, (1..=32).collect::<Vec<_>>());
    let next = app
        .append("after", Expect::Any, &[("A", "{}")])
        .await
        .unwrap();
    assert_eq!(next.positions, vec![33]);
    app.stop().await;
}

#[tokio::test]
async fn recorded_at_never_decreases_along_the_log() {
    let app = spawn_app().await;
    for i in 0..20 {
        app.append(
            &format!("s-{}", i % 3),
            Expect::Any,
            &[("A", "{}"), ("B", "{}")],
        )
        .await
        .unwrap();
    }
    let times: Vec<_> = app
        .read_all(read_all_from(1))
        .await
        .iter()
        .map(|e| {
            let t = e.recorded_at.unwrap();
            (t.seconds, t.nanos)
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    app.stop().await;
}

#[tokio::test]
async fn postgres_itself_refuses_to_update_delete_or_truncate_events() {
    let app = spawn_app().await;
    app.append(
        "s",
        Expect::Any,
        &[("CallHeld", r#"{"day": "2025-02-15"}"#)],
    )
    .await
    .unwrap();

    for statement in [
        "update events set data = '{\"day\": \"2025-02-16\"}'",
        "delete from events",
        "truncate events",
        "truncate events cascade",
    ] {
        let error = sqlx::raw_sql(statement)
            .execute(&app.pool)
            .await
            .expect_err(statement);
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }
    let data: String = sqlx::query_scalar("select data_text from events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(data, r#"{"day": "2025-02-15"}"#);
    app.stop().await;
}
