//! Fuzzing the request decoding and the domain validation with proptest: whatever a client
//! sends, decoding never panics, and every refusal is a list of field errors (each naming a
//! field) that the gRPC layer answers with INVALID_ARGUMENT.

use diplog::domain::diplomacy::DiplomaticEvent;
use diplog::domain::limits::AppendLimits;
use diplog::domain::{ReadAllQuery, ReadStreamQuery, ValidationErrors};
use diplog::proto;
use diplog::subscriptions::SubscriptionRequest;
use proptest::prelude::*;
use tonic::Code;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // No regression files in the source tree: a failure prints its minimal input.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Strings a client might send: arbitrary Unicode (control characters, white space, NUL),
/// near-valid values, and lengths around the limits.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z0-9._-]{0,12}",
        "\\PC{0,40}",
        Just(String::new()),
        Just(" padded ".to_owned()),
        Just("nul\u{0}inside".to_owned()),
        (250usize..=260).prop_map(|n| "s".repeat(n)),
        (120usize..=135).prop_map(|n| "T".repeat(n)),
    ]
}

/// Event ids: real UUIDs (and the nil one) as well as junk.
fn event_id() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
        Just(uuid::Uuid::nil().to_string()),
        Just("7a8b4a2e-0b65-4f4c-9f6e-7a3a1e2b4c5d".to_owned()),
        text(),
    ]
}

/// Arbitrary JSON values, nested a few levels.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(text(), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Payloads: JSON text (valid or not).
fn payload() -> impl Strategy<Value = String> {
    prop_oneof![json().prop_map(|v| v.to_string()), text()]
}

fn expected_version() -> impl Strategy<Value = Option<proto::ExpectedVersion>> {
    use proto::expected_version::Kind;
    prop::option::of(
        prop::option::of(prop_oneof![
            Just(Kind::Any(())),
            Just(Kind::NoStream(())),
            Just(Kind::StreamExists(())),
            any::<i64>().prop_map(Kind::Exact),
        ])
        .prop_map(|kind| proto::ExpectedVersion { kind }),
    )
}

fn metadata() -> impl Strategy<Value = Option<proto::Metadata>> {
    prop::option::of(
        (
            event_id(),
            event_id(),
            prop::collection::btree_map(text(), text(), 0..4),
        )
            .prop_map(|(correlation_id, causation_id, values)| proto::Metadata {
                correlation_id,
                causation_id,
                values,
            }),
    )
}

fn new_event() -> impl Strategy<Value = proto::NewEvent> {
    (event_id(), text(), payload(), metadata()).prop_map(|(id, r#type, data, metadata)| {
        proto::NewEvent {
            id,
            r#type,
            data,
            metadata,
        }
    })
}

fn append_request() -> impl Strategy<Value = proto::AppendRequest> {
    (
        text(),
        expected_version(),
        prop::collection::vec(new_event(), 0..5),
    )
        .prop_map(
            |(stream_id, expected_version, events)| proto::AppendRequest {
                stream_id,
                expected_version,
                events,
            },
        )
}

/// A refusal is well formed: at least one error, each naming a field this request has, and
/// the gRPC layer turns it into INVALID_ARGUMENT.
fn assert_clean_refusal(errors: ValidationErrors, fields: &[&str]) {
    assert!(!errors.is_empty(), "a refusal without a reason");
    for error in errors.errors() {
        assert!(
            fields.iter().any(|f| error.field.starts_with(f)),
            "an error at an unknown field: {error}"
        );
        assert!(!error.error.to_string().is_empty(), "{error:?}");
    }
    let status = tonic::Status::from(errors);
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn append_requests_decode_or_are_refused_field_by_field(request in append_request()) {
        let events = request.events.len();
        match diplog::grpc::append_batch(request, &AppendLimits::default()) {
            Ok(batch) => prop_assert_eq!(batch.events().len(), events),
            Err(errors) => assert_clean_refusal(errors, &["stream_id", "expected_version", "events"]),
        }
    }

    #[test]
    fn read_requests_decode_or_are_refused_field_by_field(
        stream_id in text(),
        prefix in text(),
        types in prop::collection::vec(text(), 0..70),
        from in prop::option::of(any::<i64>()),
        direction in prop_oneof![any::<i32>(), 0..2i32],
        limit in any::<i64>(),
    ) {
        let stream = proto::ReadStreamRequest {
            stream_id,
            from_version: from,
            direction,
            limit,
        };
        if let Err(errors) = ReadStreamQuery::try_from(stream) {
            assert_clean_refusal(errors, &["stream_id", "from_version", "direction", "limit"]);
        }
        let all = proto::ReadAllRequest {
            from_position: from,
            direction,
            limit,
            event_types: types,
            stream_prefix: prefix,
        };
        if let Err(errors) = ReadAllQuery::try_from(all) {
            assert_clean_refusal(
                errors,
                &["from_position", "direction", "limit", "event_types", "stream_prefix"],
            );
        }
    }

    #[test]
    fn subscribe_requests_decode_or_are_refused_field_by_field(
        from in prop::option::of(prop_oneof![
            Just(proto::subscribe_request::From::Start(())),
            Just(proto::subscribe_request::From::Now(())),
            any::<i64>().prop_map(proto::subscribe_request::From::AfterPosition),
        ]),
        types in prop::collection::vec(text(), 0..70),
        prefix in text(),
        actor in prop_oneof![text(), Just("RUS".to_owned()), Just("sergey-lavrov".to_owned())],
        interval in prop_oneof![any::<u32>(), 0..200u32],
        every in any::<u32>(),
    ) {
        let request = proto::SubscribeRequest {
            from,
            filter: Some(proto::SubscriptionFilter {
                event_types: types,
                stream_prefix: prefix,
                actor,
            }),
            checkpoint_interval_ms: interval,
            checkpoint_every: every,
        };
        if let Err(errors) = SubscriptionRequest::try_from(request) {
            assert_clean_refusal(
                errors,
                &["after_position", "filter.event_types", "filter.stream_prefix", "filter.actor",
                  "checkpoint_interval_ms"],
            );
        }
    }
}

/// JSON shaped like a diplomatic event: a kind field (or two, or none) with arbitrary content,
/// next to arbitrary envelope fields.
fn event_json() -> impl Strategy<Value = serde_json::Value> {
    let kinds = prop::sample::select(vec![
        "call_held",
        "meeting_held",
        "statement_made",
        "summit_proposed",
        "commitment_made",
        "actor_registered",
        "event_corrected",
        "coded_event_reported",
        "nonsense",
    ]);
    let envelope = prop::sample::select(vec!["occurred", "sources", "evidence", "notes", "x"]);
    (
        prop::collection::vec((kinds, json()), 0..3),
        prop::collection::vec((envelope, json()), 0..4),
    )
        .prop_map(|(kinds, envelope)| {
            let mut object = serde_json::Map::new();
            for (key, value) in kinds.into_iter().chain(envelope) {
                object.insert(key.to_owned(), value);
            }
            serde_json::Value::Object(object)
        })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn diplomatic_event_json_parses_or_names_what_is_wrong(
        value in prop_oneof![json(), event_json()],
        id in event_id(),
    ) {
        if let Err((_path, message)) = DiplomaticEvent::from_json(value.clone()) {
            prop_assert!(!message.is_empty());
        }
        if let Err((_path, message)) = diplog::grpc::bridge::event_from_json(value, &id) {
            prop_assert!(!message.is_empty());
        }
    }
}

/// `AppendRequest` as it goes over the wire, with bytes where the real message has strings:
/// lets a client send what no generated client would, such as invalid UTF-8.
#[derive(Clone, PartialEq, prost::Message)]
struct RawAppendRequest {
    #[prost(bytes = "vec", tag = "1")]
    stream_id: Vec<u8>,
    #[prost(message, repeated, tag = "3")]
    events: Vec<RawNewEvent>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RawNewEvent {
    #[prost(bytes = "vec", tag = "1")]
    id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    r#type: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    data: Vec<u8>,
}

/// Bytes: arbitrary, or valid UTF-8 (valid ids and JSON included, so some appends succeed).
fn raw_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40),
        text().prop_map(String::into_bytes),
        event_id().prop_map(String::into_bytes),
        payload().prop_map(String::into_bytes),
    ]
}

fn raw_append_request() -> impl Strategy<Value = RawAppendRequest> {
    let event = (raw_bytes(), raw_bytes(), raw_bytes())
        .prop_map(|(id, r#type, data)| RawNewEvent { id, r#type, data });
    (raw_bytes(), prop::collection::vec(event, 0..3))
        .prop_map(|(stream_id, events)| RawAppendRequest { stream_id, events })
}

/// Random bytes as stream ids, event ids, types and payloads through the real server: each
/// append is either written or refused as INVALID_ARGUMENT, never an internal error.
#[test]
fn random_bytes_through_the_server_are_written_or_invalid_argument() {
    use proptest::test_runner::TestRunner;
    use tonic::client::Grpc;

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (app, channel) = runtime.block_on(async {
        let app = crate::helpers::spawn_app().await;
        let channel = app.channel().await;
        (app, channel)
    });
    let codes = std::cell::RefCell::new(std::collections::BTreeMap::<String, u32>::new());
    let mut runner = TestRunner::new(config(128));
    let outcome = runner.run(&raw_append_request(), |request| {
        let code = runtime.block_on(async {
            let mut grpc = Grpc::new(channel.clone());
            grpc.ready().await.unwrap();
            let codec =
                tonic_prost::ProstCodec::<RawAppendRequest, proto::AppendResponse>::default();
            let path =
                tonic::codegen::http::uri::PathAndQuery::from_static("/diplog.v1.EventLog/Append");
            match grpc.unary(tonic::Request::new(request), path, codec).await {
                Ok(_) => (Code::Ok, String::new()),
                Err(status) => (status.code(), status.message().to_owned()),
            }
        });
        *codes
            .borrow_mut()
            .entry(format!("{:?}", code.0))
            .or_default() += 1;
        prop_assert!(
            matches!(code.0, Code::Ok | Code::InvalidArgument),
            "{:?}: {}",
            code.0,
            code.1
        );
        Ok(())
    });
    runtime.block_on(app.stop());
    println!("answers: {:?}", codes.borrow());
    outcome.unwrap();
}
