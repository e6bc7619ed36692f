//! The server around the API: standard health and reflection services, graceful shutdown
//! that finishes in-flight appends, and a restart that keeps the data.

use std::time::Duration;

use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::{Expect, append_request, new_event, read_all_from, spawn_app, spawn_app_on};

#[tokio::test]
async fn the_standard_health_service_reports_the_event_log_serving() {
    let app = spawn_app().await;
    let mut health = HealthClient::new(app.channel().await);

    let overall = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    let event_log = health
        .check(HealthCheckRequest {
            service: "diplog.v1.EventLog".into(),
        })
        .await
        .unwrap();

    assert_eq!(overall.into_inner().status(), ServingStatus::Serving);
    assert_eq!(event_log.into_inner().status(), ServingStatus::Serving);
    let body = reqwest_like_get(app.http_addr, "/healthz").await;
    assert!(body.contains("\"status\":\"serving\""), "{body}");
    app.stop().await;
}

/// A minimal HTTP/1.1 GET, to avoid an HTTP client dependency for one check.
async fn reqwest_like_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_the_event_log_service() {
    let app = spawn_app().await;

    let v1 = {
        use tonic_reflection::pb::v1::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut client = ServerReflectionClient::new(app.channel().await);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = client
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        match responses.message().await.unwrap().unwrap().message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                list.service.into_iter().map(|s| s.name).collect::<Vec<_>>()
            }
            other => panic!("unexpected reflection answer {other:?}"),
        }
    };
    let v1alpha = {
        use tonic_reflection::pb::v1alpha::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut client = ServerReflectionClient::new(app.channel().await);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = client
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        match responses.message().await.unwrap().unwrap().message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                list.service.into_iter().map(|s| s.name).collect::<Vec<_>>()
            }
            other => panic!("unexpected reflection answer {other:?}"),
        }
    };

    for services in [v1, v1alpha] {
        assert!(
            services.contains(&"diplog.v1.EventLog".to_owned()),
            "{services:?}"
        );
        assert!(
            services.contains(&"grpc.health.v1.Health".to_owned()),
            "{services:?}"
        );
    }
    app.stop().await;
}

/// Appends in flight when shutdown begins are finished and acknowledged, or refused; every
/// acknowledged one is in the log after a restart on the same database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_finishes_in_flight_appends_and_a_restart_keeps_the_data() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let mut client = app.new_client().await;
        tasks.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut refused = false;
            // Bounded, but far more than fit before shutdown: the loop ends on refusal.
            for _ in 0..100_000 {
                let event = new_event("Tick", "{}");
                let id = event.id.clone();
                match client
                    .append(append_request(&format!("s-{i}"), Expect::Any, vec![event]))
                    .await
                {
                    Ok(response) => acknowledged.push((id, response.into_inner().positions[0])),
                    // Refused once shutdown began: not acknowledged, so free to be missing.
                    Err(_) => {
                        refused = true;
                        break;
                    }
                }
            }
            (acknowledged, refused)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let db_options = app.db_options.clone();
    app.stop().await;
    let mut acknowledged = Vec::new();
    let mut interrupted = 0;
    for task in tasks {
        let (acks, refused) = task.await.unwrap();
        acknowledged.extend(acks);
        interrupted += usize::from(refused);
    }
    assert_eq!(
        interrupted, 32,
        "every writer was still writing when shutdown began"
    );

    let restarted = spawn_app_on(db_options).await;
    let log = restarted.read_all(read_all_from(1)).await;

    assert!(!acknowledged.is_empty());
    for (id, position) in &acknowledged {
        let event = &log[(*position - 1) as usize];
        assert_eq!((&event.id, event.position), (id, *position));
    }
    assert_eq!(log.len() as i64, log.last().map_or(0, |e| e.position));
    let next = restarted
        .append("after-restart", Expect::Any, &[("A", "{}")])
        .await
        .unwrap();
    assert_eq!(next.positions, vec![log.len() as i64 + 1]);
    restarted.stop().await;
}

/// A client that opens a long read and stops consuming it must not hold shutdown open.
#[tokio::test]
async fn a_stalled_reader_does_not_keep_the_server_from_stopping() {
    let app = spawn_app().await;
    let payload = format!("{{\"pad\": \"{}\"}}", "x".repeat(2000));
    for _ in 0..5 {
        let events: Vec<_> = (0..1000).map(|_| ("Tick", payload.as_str())).collect();
        app.append("ticks", Expect::Any, &events).await.unwrap();
    }
    let mut stalled = app
        .client
        .clone()
        .read_all(read_all_from(1))
        .await
        .unwrap()
        .into_inner();
    stalled.message().await.unwrap().expect("a first event");

    app.stop().await; // asserts a clean stop within 5 s
    drop(stalled);
}

/// A client that knows only the reflection service can decode the details of an error: it
/// asks for the file that defines `google.rpc.Status` and for each file that one imports,
/// builds a descriptor pool from what the server sent, and reads the `BadRequest` of a refused
/// append from it (here with prost-reflect, as grpcurl or Postman do with their own).
#[tokio::test]
async fn a_client_that_learns_the_api_by_reflection_decodes_the_error_details() {
    use prost::Message as _;
    use prost_reflect::{DescriptorPool, DynamicMessage, Value};
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };

    let app = spawn_app().await;
    let status = app
        .new_client()
        .await
        .append(append_request(
            "",
            Expect::Any,
            vec![new_event("CallHeld", "{}")],
        ))
        .await
        .expect_err("an append without a stream is refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);

    let mut reflection = ServerReflectionClient::new(app.channel().await);
    let mut ask = async |request: MessageRequest| {
        let mut answers = reflection
            .server_reflection_info(tokio_stream::iter([ServerReflectionRequest {
                host: String::new(),
                message_request: Some(request),
            }]))
            .await
            .unwrap()
            .into_inner();
        match answers.message().await.unwrap().unwrap().message_response {
            Some(MessageResponse::FileDescriptorResponse(files)) => files.file_descriptor_proto,
            other => panic!("no file for the request: {other:?}"),
        }
    };
    // The file defining google.rpc.Status, then whatever it and the files it names import.
    let mut files: Vec<prost_types::FileDescriptorProto> = ask(
        MessageRequest::FileContainingSymbol("google.rpc.Status".into()),
    )
    .await
    .iter()
    .map(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap())
    .collect();
    for symbol in [
        "google.rpc.BadRequest",
        "google.rpc.ErrorInfo",
        "google.rpc.PreconditionFailure",
    ] {
        for bytes in ask(MessageRequest::FileContainingSymbol(symbol.into())).await {
            files.push(prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap());
        }
    }
    loop {
        let known: Vec<String> = files.iter().map(|f| f.name().to_owned()).collect();
        let missing: Vec<String> = files
            .iter()
            .flat_map(|f| f.dependency.clone())
            .filter(|d| !known.contains(d))
            .collect();
        let Some(next) = missing.first() else { break };
        for bytes in ask(MessageRequest::FileByFilename(next.clone())).await {
            files.push(prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap());
        }
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(f.name().to_owned()));
    let pool =
        DescriptorPool::from_file_descriptor_set(prost_types::FileDescriptorSet { file: files })
            .expect("the files the server serves make a pool");

    let status_message = pool.get_message_by_name("google.rpc.Status").unwrap();
    let decoded = DynamicMessage::decode(status_message, status.details()).unwrap();
    let Value::List(details) = decoded.get_field_by_name("details").unwrap().into_owned() else {
        panic!("details is a list");
    };
    let mut fields = Vec::new();
    for detail in details {
        let Value::Message(any) = detail else {
            panic!("an Any")
        };
        let type_url = any.get_field_by_name("type_url").unwrap();
        let name = type_url
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        let value = any.get_field_by_name("value").unwrap();
        let message = pool
            .get_message_by_name(&name)
            .unwrap_or_else(|| panic!("the server describes {name}"));
        let detail = DynamicMessage::decode(message, value.as_bytes().unwrap().clone()).unwrap();
        if name == "google.rpc.BadRequest" {
            let Value::List(violations) = detail
                .get_field_by_name("field_violations")
                .unwrap()
                .into_owned()
            else {
                panic!("field_violations is a list");
            };
            for violation in violations {
                let Value::Message(violation) = violation else {
                    panic!("a violation")
                };
                fields.push(
                    violation
                        .get_field_by_name("field")
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            }
        }
    }
    assert_eq!(fields, ["stream_id"]);
    app.stop().await;
}
