//! Append: versions, expected-version conflicts, idempotent retries, exact payloads, and
//! bad input answered with INVALID_ARGUMENT naming the field, with nothing written.

use diplog::proto;
use tonic::Code;

use crate::helpers::{
    Expect, append_request, error_info, new_event, read_all_from, spawn_app, violated_fields,
};

#[tokio::test]
async fn appends_answer_stream_versions_and_consecutive_positions() {
    let app = spawn_app().await;

    let first = app
        .append(
            "call-1",
            Expect::NoStream,
            &[("CallHeld", "{}"), ("StatementIssued", "{}")],
        )
        .await
        .unwrap();
    let second = app
        .append("call-2", Expect::Any, &[("CallHeld", "{}")])
        .await
        .unwrap();
    let third = app
        .append(
            "call-1",
            Expect::Exact(2),
            &[("SourceReportAttached", "{}")],
        )
        .await
        .unwrap();

    assert_eq!((first.stream_version, first.positions), (2, vec![1, 2]));
    assert_eq!((second.stream_version, second.positions), (1, vec![3]));
    assert_eq!((third.stream_version, third.positions), (3, vec![4]));
    assert!(!third.idempotent_replay);
    let events = app.read_all(read_all_from(1)).await;
    let appended: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.position,
                e.stream_id.as_str(),
                e.stream_version,
                e.appended_by.as_str(),
            )
        })
        .collect();
    assert_eq!(
        appended,
        [
            (1, "call-1", 1, "anonymous"),
            (2, "call-1", 2, "anonymous"),
            (3, "call-2", 1, "anonymous"),
            (4, "call-1", 3, "anonymous"),
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_stale_expected_version_is_aborted_with_the_current_version_and_writes_nothing() {
    let app = spawn_app().await;
    app.append(
        "channel-RUS-USA",
        Expect::NoStream,
        &[("ChannelEstablished", "{}")],
    )
    .await
    .unwrap();

    let status = app
        .append("channel-RUS-USA", Expect::Exact(0), &[("CallHeld", "{}")])
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    let info = error_info(&status);
    assert_eq!(info["reason"], "WRONG_EXPECTED_VERSION");
    assert_eq!(info["current_version"], "1");
    assert_eq!(info["expected"], "0");
    assert_eq!(info["stream_id"], "channel-RUS-USA");
    assert_eq!(app.event_count().await, 1);
    app.stop().await;
}

#[tokio::test]
async fn each_kind_of_expected_version_is_enforced() {
    let app = spawn_app().await;
    let refused = |result: Result<proto::AppendResponse, tonic::Status>| {
        result.expect_err("should be refused").code()
    };

    assert_eq!(
        refused(app.append("s", Expect::Exists, &[("A", "{}")]).await),
        Code::Aborted
    );
    assert_eq!(
        refused(app.append("s", Expect::Exact(1), &[("A", "{}")]).await),
        Code::Aborted
    );
    app.append("s", Expect::Exact(0), &[("A", "{}")])
        .await
        .unwrap();
    assert_eq!(
        refused(app.append("s", Expect::NoStream, &[("A", "{}")]).await),
        Code::Aborted
    );
    app.append("s", Expect::Exists, &[("A", "{}")])
        .await
        .unwrap();
    app.append("s", Expect::Exact(2), &[("A", "{}")])
        .await
        .unwrap();
    let last = app.append("s", Expect::Any, &[("A", "{}")]).await.unwrap();

    assert_eq!(last.stream_version, 4);
    assert_eq!(app.event_count().await, 4);
    app.stop().await;
}

#[tokio::test]
async fn of_many_concurrent_appends_with_the_same_expected_version_exactly_one_wins() {
    let app = spawn_app().await;
    app.append(
        "summit-RUS-USA",
        Expect::NoStream,
        &[("SummitProposed", "{}")],
    )
    .await
    .unwrap();
    const CONTENDERS: usize = 24;

    let mut tasks = Vec::new();
    for _ in 0..CONTENDERS {
        let mut client = app.new_client().await;
        tasks.push(tokio::spawn(async move {
            client
                .append(append_request(
                    "summit-RUS-USA",
                    Expect::Exact(1),
                    vec![new_event("SummitPreparationAgreed", "{}")],
                ))
                .await
        }));
    }
    let mut codes = Vec::new();
    for task in tasks {
        codes.push(task.await.unwrap().map_err(|s| s.code()).err());
    }

    let winners = codes.iter().filter(|code| code.is_none()).count();
    assert_eq!(winners, 1, "{codes:?}");
    assert!(
        codes.iter().flatten().all(|code| *code == Code::Aborted),
        "{codes:?}"
    );
    assert_eq!(app.event_count().await, 2);
    app.stop().await;
}

#[tokio::test]
async fn retrying_an_append_answers_the_original_positions_and_writes_nothing() {
    let app = spawn_app().await;
    let events = vec![
        new_event("CallHeld", r#"{"participants": ["RUS", "USA"]}"#),
        new_event("StatementIssued", r#"{"by": "MFA RUS"}"#),
    ];
    app.append("other", Expect::Any, &[("X", "{}")])
        .await
        .unwrap();
    let request = append_request("call-1", Expect::NoStream, events.clone());
    let original = app
        .client
        .clone()
        .append(request.clone())
        .await
        .unwrap()
        .into_inner();
    app.append("other", Expect::Any, &[("X", "{}")])
        .await
        .unwrap();

    // The retry's expected version (no stream) no longer holds, yet it is the same append.
    let retry = app
        .client
        .clone()
        .append(request)
        .await
        .unwrap()
        .into_inner();

    assert_eq!(original.positions, vec![2, 3]);
    assert!(!original.idempotent_replay);
    assert_eq!(retry.positions, original.positions);
    assert_eq!(retry.stream_version, original.stream_version);
    assert!(retry.idempotent_replay);
    assert_eq!(app.event_count().await, 4);
    app.stop().await;
}

#[tokio::test]
async fn a_retry_whose_json_is_spelled_differently_is_still_the_same_append() {
    let app = spawn_app().await;
    let mut event = new_event("CallHeld", r#"{"a": 1, "b": [true]}"#);
    app.client
        .clone()
        .append(append_request("s", Expect::Any, vec![event.clone()]))
        .await
        .unwrap();

    event.data = r#"{"b":[true],"a":1}"#.to_owned();
    let retry = app
        .client
        .clone()
        .append(append_request("s", Expect::Any, vec![event]))
        .await
        .unwrap()
        .into_inner();

    assert!(retry.idempotent_replay);
    assert_eq!(app.event_count().await, 1);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_retries_of_one_append_write_it_once() {
    let app = spawn_app().await;
    let request = append_request("s", Expect::NoStream, vec![new_event("A", "{}")]);

    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut client = app.new_client().await;
        let request = request.clone();
        tasks.push(tokio::spawn(async move { client.append(request).await }));
    }
    let mut positions = Vec::new();
    for task in tasks {
        positions.push(task.await.unwrap().unwrap().into_inner().positions);
    }

    assert!(positions.iter().all(|p| *p == vec![1]), "{positions:?}");
    assert_eq!(app.event_count().await, 1);
    app.stop().await;
}

#[tokio::test]
async fn an_event_id_reused_with_different_content_is_already_exists() {
    let app = spawn_app().await;
    let event = new_event("CallHeld", r#"{"day": "2025-02-15"}"#);
    app.client
        .clone()
        .append(append_request("s", Expect::Any, vec![event.clone()]))
        .await
        .unwrap();

    let mut changed_payload = event.clone();
    changed_payload.data = r#"{"day": "2025-02-12"}"#.to_owned();
    let changed_stream = append_request("elsewhere", Expect::Any, vec![event.clone()]);
    let partial = append_request("s", Expect::Any, vec![event.clone(), new_event("B", "{}")]);

    for request in [
        append_request("s", Expect::Any, vec![changed_payload]),
        changed_stream,
        partial,
    ] {
        let status = app.client.clone().append(request).await.unwrap_err();
        assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
        assert!(status.message().contains(&event.id), "{}", status.message());
    }
    assert_eq!(app.event_count().await, 1);
    app.stop().await;
}

#[tokio::test]
async fn payloads_read_back_byte_for_byte_and_are_queryable_as_jsonb() {
    let app = spawn_app().await;
    let text =
        "{ \"quote\": \"Подтвердили готовность работать вместе\",\n  \"n\": 1.50, \"a\": {} }";
    let mut event = new_event("StatementIssued", text);
    event.metadata = Some(proto::Metadata {
        correlation_id: uuid::Uuid::new_v4().to_string(),
        causation_id: String::new(),
        values: [("language".to_owned(), "ru".to_owned())].into(),
    });
    app.client
        .clone()
        .append(append_request(
            "statement-1",
            Expect::Any,
            vec![event.clone()],
        ))
        .await
        .unwrap();

    let read = app.read_all(read_all_from(1)).await;
    let quote: String = sqlx::query_scalar("select data->>'quote' from events where position = 1")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    assert_eq!(read[0].data, text);
    assert_eq!(read[0].id, event.id);
    assert_eq!(read[0].metadata, event.metadata);
    assert!(read[0].recorded_at.is_some());
    assert_eq!(quote, "Подтвердили готовность работать вместе");
    app.stop().await;
}

#[tokio::test]
async fn bad_appends_are_invalid_argument_naming_the_field_and_write_nothing() {
    let app = spawn_app().await;
    let good = || new_event("CallHeld", "{}");
    let with = |change: fn(&mut proto::NewEvent)| {
        let mut event = good();
        change(&mut event);
        vec![event]
    };
    let too_many: Vec<_> = (0..1001).map(|_| good()).collect();
    let duplicate = good();
    let cases: Vec<(&str, proto::AppendRequest)> = vec![
        ("stream_id", append_request("", Expect::Any, vec![good()])),
        (
            "stream_id",
            append_request(&"s".repeat(257), Expect::Any, vec![good()]),
        ),
        (
            "stream_id",
            append_request("tab\there", Expect::Any, vec![good()]),
        ),
        (
            "events[0].id",
            append_request("s", Expect::Any, with(|e| e.id = "42".into())),
        ),
        (
            "events[0].id",
            append_request("s", Expect::Any, with(|e| e.id = String::new())),
        ),
        (
            "events[0].type",
            append_request("s", Expect::Any, with(|e| e.r#type = String::new())),
        ),
        (
            "events[0].data",
            append_request("s", Expect::Any, with(|e| e.data = "{".into())),
        ),
        (
            "events[0].data",
            append_request("s", Expect::Any, with(|e| e.data = String::new())),
        ),
        (
            "events[0].data",
            append_request(
                "s",
                Expect::Any,
                with(|e| e.data = format!("\"{}\"", "x".repeat(1024 * 1024))),
            ),
        ),
        (
            "events[0].metadata.causation_id",
            append_request(
                "s",
                Expect::Any,
                with(|e| {
                    e.metadata = Some(proto::Metadata {
                        causation_id: "nope".into(),
                        ..Default::default()
                    })
                }),
            ),
        ),
        (
            "expected_version.exact",
            append_request("s", Expect::Exact(-1), vec![good()]),
        ),
        ("events", append_request("s", Expect::Any, vec![])),
        ("events", append_request("s", Expect::Any, too_many)),
        (
            "events[1].id",
            append_request("s", Expect::Any, vec![duplicate.clone(), duplicate]),
        ),
    ];

    for (field, request) in cases {
        let status = app.client.clone().append(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            violated_fields(&status).contains(&field.to_owned()),
            "expected {field} in {:?} ({})",
            violated_fields(&status),
            status.message()
        );
    }
    assert_eq!(app.event_count().await, 0);
    let streams: i64 = sqlx::query_scalar("select count(*) from streams")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(streams, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_request_with_several_problems_names_them_all() {
    let app = spawn_app().await;
    let mut event = new_event("", "not json");
    event.id = "x".into();

    let status = app
        .client
        .clone()
        .append(append_request("", Expect::Any, vec![event]))
        .await
        .unwrap_err();

    assert_eq!(
        violated_fields(&status),
        [
            "stream_id",
            "events[0].id",
            "events[0].type",
            "events[0].data"
        ]
    );
    app.stop().await;
}

/// A request over the transport's 16 MiB limit is refused before it is decoded, with the
/// limit named, and nothing is written.
#[tokio::test]
async fn a_request_over_sixteen_mebibytes_is_refused_naming_the_limit() {
    let app = spawn_app().await;
    let payload = format!("\"{}\"", "x".repeat(1024 * 1024 - 16));
    let events = (0..17).map(|_| new_event("Big", &payload)).collect();

    let status = app
        .client
        .clone()
        .max_encoding_message_size(64 * 1024 * 1024)
        .append(append_request("s", Expect::Any, events))
        .await
        .unwrap_err();

    // tonic's decode limit answers OUT_OF_RANGE; the server makes it RESOURCE_EXHAUSTED.
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .contains("exceeds the limit of 16777216 bytes per request (--max-request-bytes)"),
        "{}",
        status.message()
    );
    assert_eq!(app.event_count().await, 0);
    app.stop().await;
}

/// Valid JSON that jsonb cannot store (issue 16, item 3) is refused as bad input naming the
/// event's `data`, before the database sees it: not INTERNAL, and nothing is written.
#[tokio::test]
async fn json_that_jsonb_cannot_store_is_invalid_argument_naming_the_payload() {
    let app = spawn_app().await;
    let cases = [
        (
            "a lone surrogate",
            r#"{"a":"\ud800"}"#.to_owned(),
            "surrogate",
        ),
        ("a huge exponent", r#"{"a":1e999999}"#.to_owned(), "numeric"),
        (
            "a tiny exponent",
            r#"{"a":1e-999999}"#.to_owned(),
            "numeric",
        ),
        (
            "200,000 digits",
            format!(r#"{{"a":{}}}"#, "7".repeat(200_000)),
            "numeric",
        ),
        (
            "100,000 levels",
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
            "levels deep",
        ),
        ("U+0000", r#"{"a":"x\u0000"}"#.to_owned(), "U+0000"),
    ];
    for (what, data, named) in cases {
        let events = vec![new_event("Fine", "{}"), new_event("Bad", &data)];
        let status = app
            .client
            .clone()
            .append(append_request("s", Expect::Any, events))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert_eq!(violated_fields(&status), ["events[1].data"], "{what}");
        assert!(
            status.message().contains(named),
            "{what}: {}",
            status.message()
        );
    }
    assert_eq!(app.event_count().await, 0);
    app.stop().await;
}

/// The payload check and jsonb agree on texts at each edge of what jsonb stores: the numbers
/// at numeric's limits, the surrogate escapes, the nesting limit.
#[tokio::test]
async fn the_payload_check_agrees_with_jsonb_at_its_edges() {
    use sqlx::{ConnectOptions, Connection};

    let mut db = crate::helpers::fresh_database()
        .await
        .connect()
        .await
        .unwrap();
    let nested = |depth: usize| {
        format!(
            "{}1{}",
            r#"{"a":["#.repeat(depth / 2),
            "]}".repeat(depth / 2)
        )
    };
    let texts = [
        "1e131071".to_owned(),
        "1e131072".to_owned(),
        "0.1e131072".to_owned(),
        "0.1e131073".to_owned(),
        "9999e131068".to_owned(),
        "99999e131068".to_owned(),
        "1e-16383".to_owned(),
        "1e-16384".to_owned(),
        "0e-16383".to_owned(),
        "0e-16384".to_owned(),
        "1.5e-16382".to_owned(),
        "1.55e-16382".to_owned(),
        "-1e999999".to_owned(),
        "1e-999999".to_owned(),
        "0e1073741822".to_owned(),
        "0e99999999999999999999".to_owned(),
        "1e-1073741823".to_owned(),
        "9".repeat(131_072),
        "9".repeat(131_073),
        format!("0.{}", "1".repeat(16_383)),
        format!("0.{}", "1".repeat(16_384)),
        format!("[{}.5e-3]", "1".repeat(1000)),
        r#""\ud800\udc00""#.to_owned(),
        r#""\ud800""#.to_owned(),
        r#""\udfff""#.to_owned(),
        r#""\ud800\u0041""#.to_owned(),
        r#""\udbff\udfff""#.to_owned(),
        r#""\u0000""#.to_owned(),
        r#""\\u0000""#.to_owned(),
        nested(100),
        "[".repeat(100_000) + &"]".repeat(100_000),
        r#"{"a":1,"a":[1.0,-0,"é"]}"#.to_owned(),
    ];
    for text in &texts {
        let ours = diplog::domain::Payload::parse(text.as_str()).is_ok();
        let jsonb = sqlx::query("select $1::jsonb")
            .bind(text)
            .execute(&mut db)
            .await
            .is_ok();
        let shown: String = text.chars().take(40).collect();
        assert_eq!(
            ours,
            jsonb,
            "{shown}… ({} bytes): ours {ours}, jsonb {jsonb}",
            text.len()
        );
    }
    // The depth limit holds at jsonb's smallest stack (max_stack_depth's minimum).
    sqlx::query("set max_stack_depth = '100kB'")
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("select $1::jsonb")
        .bind(nested(100))
        .execute(&mut db)
        .await
        .expect("jsonb stores the deepest payload accepted, even on the smallest stack");
    db.close().await.unwrap();
}

/// A retry repeats exactly one earlier append, the same ids in the same order; anything else
/// that repeats written ids is ALREADY_EXISTS with the reason PARTIAL_RETRY.
#[tokio::test]
async fn a_retry_must_repeat_exactly_one_earlier_append() {
    let app = spawn_app().await;
    let (a, b, c, d) = (
        new_event("A", "{}"),
        new_event("B", "{}"),
        new_event("C", "{}"),
        new_event("D", "{}"),
    );
    let append = |events: Vec<proto::NewEvent>| {
        let mut client = app.client.clone();
        async move {
            client
                .append(append_request("s", Expect::Any, events))
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let first = append(vec![a.clone(), b.clone()]).await.unwrap();
    append(vec![c.clone()]).await.unwrap();
    append(vec![d.clone()]).await.unwrap();

    for (what, events) in [
        ("the first alone", vec![a.clone()]),
        ("the second alone", vec![b.clone()]),
        ("both in the other order", vec![b.clone(), a.clone()]),
        ("two appends as one", vec![c.clone(), d.clone()]),
        ("across two appends", vec![b.clone(), c.clone()]),
    ] {
        let status = append(events).await.unwrap_err();
        assert_eq!(status.code(), Code::AlreadyExists, "{what}: {status:?}");
        assert_eq!(error_info(&status)["reason"], "PARTIAL_RETRY", "{what}");
    }
    let retry = append(vec![a, b]).await.unwrap();
    assert!(retry.idempotent_replay);
    assert_eq!(retry.positions, first.positions);
    assert_eq!(retry.stream_version, 2);
    assert!(append(vec![d]).await.unwrap().idempotent_replay);
    assert_eq!(app.event_count().await, 4);
    app.stop().await;
}

/// Payloads compare as jsonb compares them: numbers by value, exactly.
#[tokio::test]
async fn a_retry_compares_numbers_by_value() {
    let app = spawn_app().await;
    let mut event = new_event("N", r#"{"x":1,"big":12345678901234567890123}"#);
    app.client
        .clone()
        .append(append_request("s", Expect::Any, vec![event.clone()]))
        .await
        .unwrap();
    for (data, same) in [
        (r#"{"x":1.0,"big":12345678901234567890123}"#, true),
        (r#"{"big":1.2345678901234567890123e22,"x":10e-1}"#, true),
        (r#"{"x":2,"big":12345678901234567890123}"#, false),
        (r#"{"x":1,"big":12345678901234567890124}"#, false),
    ] {
        event.data = data.to_owned();
        let result = app
            .client
            .clone()
            .append(append_request("s", Expect::Any, vec![event.clone()]))
            .await;
        match result {
            Ok(response) => assert!(same && response.into_inner().idempotent_replay, "{data}"),
            Err(status) => {
                assert!(!same, "{data}: {status:?}");
                assert_eq!(status.code(), Code::AlreadyExists, "{data}");
                assert!(status.message().contains("another payload"), "{data}");
            }
        }
    }
    assert_eq!(app.event_count().await, 1);
    app.stop().await;
}

/// A metadata problem names the key at fault, not the whole map.
#[tokio::test]
async fn metadata_errors_name_the_key() {
    let app = spawn_app().await;
    let with_values = |values: &[(&str, String)]| {
        let mut event = new_event("A", "{}");
        event.metadata = Some(proto::Metadata {
            values: values
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            ..Default::default()
        });
        append_request("s", Expect::Any, vec![event])
    };
    for (request, field) in [
        (
            with_values(&[("", "x".into())]),
            r#"events[0].metadata[""]"#,
        ),
        (
            with_values(&[("source", "x".repeat(4097))]),
            r#"events[0].metadata["source"]"#,
        ),
        (
            with_values(&[("a\tb", "x".into())]),
            r#"events[0].metadata["a\tb"]"#,
        ),
        (
            with_values(&[("diplog.schema", "x".into())]),
            r#"events[0].metadata["diplog.schema"]"#,
        ),
    ] {
        let status = app.client.clone().append(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(violated_fields(&status), [field], "{status:?}");
    }
    assert_eq!(app.event_count().await, 0);
    app.stop().await;
}

/// Event ids only in the hyphenated 8-4-4-4-12 form; stream ids and event types without
/// Unicode format characters (bidirectional overrides, zero-width characters).
#[tokio::test]
async fn ids_in_other_forms_and_names_with_format_characters_are_refused() {
    let app = spawn_app().await;
    let id = "7f1d7c1e-8d0a-4d7e-9a53-3c1e2b7d9f10";
    let with_id = |raw: String| {
        let mut event = new_event("A", "{}");
        event.id = raw;
        append_request("s", Expect::Any, vec![event])
    };
    let with_type = |raw: &str| append_request("s", Expect::Any, vec![new_event(raw, "{}")]);
    let in_stream = |raw: &str| append_request(raw, Expect::Any, vec![new_event("A", "{}")]);
    let mut cases = vec![
        (with_id(id.replace('-', "")), "events[0].id"),
        (with_id(format!("{{{id}}}")), "events[0].id"),
        (with_id(format!("urn:uuid:{id}")), "events[0].id"),
    ];
    for c in [
        '\u{202A}',
        '\u{202E}',
        '\u{2066}',
        '\u{2069}',
        '\u{200B}',
        '\u{200F}',
        '\u{2060}',
        '\u{FEFF}',
        '\u{00AD}',
        '\u{061C}',
        '\u{E0001}',
    ] {
        cases.push((in_stream(&format!("call{c}1")), "stream_id"));
        cases.push((with_type(&format!("Call{c}Held")), "events[0].type"));
    }
    for (request, field) in cases {
        let status = app
            .client
            .clone()
            .append(request.clone())
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{request:?}: {status:?}"
        );
        assert_eq!(violated_fields(&status), [field], "{status:?}");
    }
    let status = app
        .client
        .clone()
        .append(with_id(format!("urn:uuid:{id}")))
        .await
        .unwrap_err();
    assert!(
        status.message().contains("8-4-4-4-12"),
        "{}",
        status.message()
    );
    assert_eq!(app.event_count().await, 0);

    // Upper case is the same id: a retry in it is the same append.
    let first = app
        .client
        .clone()
        .append(with_id(id.to_owned()))
        .await
        .unwrap();
    let retry = app
        .client
        .clone()
        .append(with_id(id.to_uppercase()))
        .await
        .unwrap()
        .into_inner();
    assert!(retry.idempotent_replay);
    assert_eq!(retry.positions, first.into_inner().positions);
    app.stop().await;
}

/// Events that do not record their append (written before the log recorded it, or restored
/// from an export: `append_events` is null) keep the earlier rule: a retry needs every id
/// written with the same content, in the same stream.
#[tokio::test]
async fn a_retry_of_events_without_a_recorded_append_needs_only_the_same_content() {
    let app = spawn_app().await;
    let (a, b) = (new_event("A", "{}"), new_event("B", "{}"));
    for (position, event) in [(1_i64, &a), (2, &b)] {
        sqlx::query(
            "insert into events (position, event_id, stream_id, stream_version, event_type, \
                 data, data_text, recorded_at, appended_by) \
             values ($1, $2::uuid, 's', $1, $3, '{}', '{}', now(), 'restored')",
        )
        .bind(position)
        .bind(&event.id)
        .bind(&event.r#type)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    sqlx::query("insert into streams values ('s', 2, now(), now())")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("update log_head set position = 2, last_recorded_at = now()")
        .execute(&app.pool)
        .await
        .unwrap();

    let retry = app
        .client
        .clone()
        .append(append_request("s", Expect::Any, vec![b.clone()]))
        .await
        .unwrap()
        .into_inner();
    assert!(retry.idempotent_replay);
    assert_eq!(retry.positions, [2]);
    let mut changed = b;
    changed.data = r#"{"x":1}"#.into();
    let status = app
        .client
        .clone()
        .append(append_request("s", Expect::Any, vec![changed]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(app.event_count().await, 2);
    app.stop().await;
}
