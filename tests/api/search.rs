//! Full-text search over gRPC on the founding report and statements recorded through the
//! Diplomacy service: Russian and English stemming, ranking, the marked words, filters,
//! paging, retractions and corrections, a rebuild, bad requests, and `diplog search`.

use std::time::{Duration, Instant};

use diplog::proto::{self, projections_client::ProjectionsClient};
use serde_json::json;
use tonic::Code;

use crate::helpers::{
    TestApp, diplog, import_founding, record, shown, spawn_app, text, violated_fields, within,
};

const TEST_TIMEOUT: Duration = Duration::from_secs(180);

async fn client(app: &TestApp) -> ProjectionsClient<tonic::transport::Channel> {
    ProjectionsClient::new(app.channel().await)
}

fn request(query: &str, min_position: u64) -> proto::SearchRequest {
    proto::SearchRequest {
        query: query.to_owned(),
        read: Some(proto::ReadOptions {
            min_position,
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn search(app: &TestApp, request: proto::SearchRequest) -> proto::SearchResults {
    client(app)
        .await
        .search(request)
        .await
        .unwrap_or_else(|status| panic!("search: {status:?}"))
        .into_inner()
}

/// The words a hit marks.
fn marked(hit: &proto::SearchHit) -> Vec<String> {
    let chars: Vec<char> = hit.text.chars().collect();
    hit.matches
        .iter()
        .map(|m| chars[m.start as usize..m.end as usize].iter().collect())
        .collect()
}

/// The ministry that reports a minister's statement.
fn source_of(speaker: &str) -> &'static str {
    if speaker == "marco-rubio" {
        "usa.state-department"
    } else {
        "rus.mfa"
    }
}

/// Records a statement by `speaker` on `day`; answers its id and position.
async fn statement(
    app: &TestApp,
    stream: &str,
    speaker: &str,
    day: &str,
    summary: &str,
) -> (String, u64) {
    record(
        app,
        stream,
        json!({"occurred": {"day": day}, "sources": [{"source": source_of(speaker)}],
               "statement_issued": {"speaker": speaker, "summary": summary}}),
    )
    .await
}

const STREAM: &str = "occurrence-2025-03-03-search-statements";

/// The founding report and three English statements about sanctions; answers the head.
async fn setup(app: &TestApp) -> (u64, [String; 3]) {
    import_founding(app).await;
    let (strong, _) = statement(
        app,
        STREAM,
        "marco-rubio",
        "2025-03-03",
        "Sanctions, sanctions and again sanctions: the sanctions stay",
    )
    .await;
    let (weak, _) = statement(
        app,
        STREAM,
        "sergey-lavrov",
        "2025-03-10",
        "The ministers spoke at length about many things, among them trade, travel, embassies \
         and, briefly, sanctions",
    )
    .await;
    let (april, head) = statement(
        app,
        STREAM,
        "sergey-lavrov",
        "2025-04-02",
        "Sanctioned banks were named",
    )
    .await;
    (head, [strong, weak, april])
}

#[tokio::test]
async fn words_are_found_by_their_stems_in_russian_and_english_ranked_and_marked() {
    within(TEST_TIMEOUT, async {
        let app = spawn_app().await;
        let (head, [strong, weak, _]) = setup(&app).await;

        // «контакты» finds «контактах» (a Russian quote, stemmed as Russian).
        let found = search(&app, request("контакты", head)).await;
        assert!(found.info.as_ref().unwrap().position >= head);
        let quote = found
            .hits
            .iter()
            .find(|h| {
                h.kind == "CallHeld" && h.text.contains("Договорились о регулярных контактах")
            })
            .unwrap_or_else(|| panic!("the quote: {found:?}"));
        assert_eq!(quote.config, "russian");
        assert_eq!(quote.language, "ru");
        assert!(
            quote.field.starts_with("sources[0].quotes["),
            "{}",
            quote.field
        );
        assert_eq!(marked(quote), ["контактах"]);
        assert_eq!(
            quote.highlighted.replace(['\u{E000}', '\u{E001}'], ""),
            quote.text
        );
        assert!(quote.highlighted.contains("\u{E000}контактах\u{E001}"));

        // "meetings of experts" finds the commitment's "meeting of experts"; the stop word is
        // not marked.
        let found = search(&app, request("meetings of experts", head)).await;
        let commitment = found
            .hits
            .iter()
            .find(|h| h.kind == "CommitmentStated")
            .unwrap_or_else(|| panic!("the commitment: {found:?}"));
        assert_eq!(commitment.field, "commitment_stated.what");
        assert_eq!(commitment.config, "english");
        assert_eq!(marked(commitment), ["meeting", "experts"]);

        // The better match first.
        let found = search(&app, request("sanctions", head)).await;
        let ids: Vec<&str> = found.hits.iter().map(|h| h.event_id.as_str()).collect();
        assert_eq!(ids.first(), Some(&strong.as_str()), "{found:?}");
        assert!(ids.contains(&weak.as_str()));
        assert!(found.hits[0].rank > found.hits[1].rank);
        assert_eq!(
            marked(&found.hits[0]),
            ["Sanctions", "sanctions", "sanctions", "sanctions"]
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn filters_narrow_and_pages_follow_each_other() {
    within(TEST_TIMEOUT, async {
        let app = spawn_app().await;
        let (head, [strong, weak, april]) = setup(&app).await;
        let ids = |found: &proto::SearchResults| -> Vec<String> {
            let mut ids: Vec<String> = found.hits.iter().map(|h| h.event_id.clone()).collect();
            ids.sort();
            ids
        };
        let sorted = |mut ids: Vec<String>| {
            ids.sort();
            ids
        };
        let all = search(&app, request("sanction", head)).await;
        assert_eq!(
            ids(&all),
            sorted(vec![strong.clone(), weak.clone(), april.clone()])
        );

        // Kind: the founding commitment, not the claim of the call that says the same.
        let found = search(
            &app,
            proto::SearchRequest {
                kinds: vec!["CommitmentStated".into()],
                ..request("meeting experts", head)
            },
        )
        .await;
        assert!(!found.hits.is_empty());
        assert!(found.hits.iter().all(|h| h.kind == "CommitmentStated"));
        let unfiltered = search(&app, request("meeting experts", head)).await;
        assert!(unfiltered.hits.len() > found.hits.len());

        // Actor: a person, and a state through its people.
        let by = |actor: &str| proto::SearchRequest {
            actor: actor.into(),
            ..request("sanction", head)
        };
        assert_eq!(
            ids(&search(&app, by("marco-rubio")).await),
            std::slice::from_ref(&strong)
        );
        assert_eq!(
            ids(&search(&app, by("RUS")).await),
            sorted(vec![weak.clone(), april.clone()])
        );

        // Date range: days overlapping [from, to).
        let at = |day: &str| {
            let time: chrono::DateTime<chrono::Utc> = format!("{day}T00:00:00Z").parse().unwrap();
            Some(prost_types::Timestamp {
                seconds: time.timestamp(),
                nanos: 0,
            })
        };
        let march = search(
            &app,
            proto::SearchRequest {
                occurred_from: at("2025-03-05"),
                occurred_to: at("2025-04-01"),
                ..request("sanction", head)
            },
        )
        .await;
        assert_eq!(ids(&march), std::slice::from_ref(&weak));
        let since = search(
            &app,
            proto::SearchRequest {
                occurred_from: at("2025-03-05"),
                ..request("sanction", head)
            },
        )
        .await;
        assert_eq!(ids(&since), sorted(vec![weak.clone(), april.clone()]));

        // Pages: one hit each, in rank order, the same hits as one page.
        let mut token = String::new();
        let mut paged = Vec::new();
        loop {
            let page = search(
                &app,
                proto::SearchRequest {
                    page_size: 1,
                    page_token: token.clone(),
                    ..request("sanction", head)
                },
            )
            .await;
            let info = page.info.unwrap();
            assert_eq!(info.total, 3);
            assert_eq!(page.hits.len(), 1);
            paged.push(page.hits[0].event_id.clone());
            if info.next_page_token.is_empty() {
                break;
            }
            token = info.next_page_token;
        }
        let whole: Vec<String> = all.hits.iter().map(|h| h.event_id.clone()).collect();
        assert_eq!(paged, whole);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn retractions_corrections_and_a_rebuild_keep_the_index_right() {
    within(TEST_TIMEOUT, async {
        let app = spawn_app().await;
        let (_, [strong, weak, _]) = setup(&app).await;
        record(
            &app,
            STREAM,
            json!({"event_retracted": {"event": strong, "reason": "test"}}),
        )
        .await;
        let (_, head) = record(
            &app,
            STREAM,
            json!({"event_corrected": {"event": weak, "replacement": {
                "occurred": {"day": "2025-03-10"}, "sources": [{"source": "rus.mfa"}],
                "statement_issued": {"speaker": "sergey-lavrov",
                                     "summary": "Embargoes were discussed at length"}}}}),
        )
        .await;
        let found = search(&app, request("sanctions", head)).await;
        let ids: Vec<&str> = found.hits.iter().map(|h| h.event_id.as_str()).collect();
        assert!(!ids.contains(&strong.as_str()), "retracted: {found:?}");
        assert!(!ids.contains(&weak.as_str()), "corrected away: {found:?}");
        let found = search(&app, request("embargo", head)).await;
        assert_eq!(found.hits.len(), 1, "{found:?}");
        assert_eq!(found.hits[0].event_id, weak);
        assert_eq!(marked(&found.hits[0]), ["Embargoes"]);

        // A rebuild gives the same hits.
        let queries = ["sanctions", "embargo", "контакты", "meeting experts"];
        let mut before = Vec::new();
        for query in queries {
            before.push(search(&app, request(query, head)).await.hits);
        }
        let mut projections = client(&app).await;
        let generation = |status: &proto::ProjectionStatusList| {
            status
                .projections
                .iter()
                .find(|p| p.name == "search")
                .map(|p| p.generation)
        };
        let was = generation(&projections.get_status(()).await.unwrap().into_inner());
        projections
            .rebuild(proto::RebuildRequest {
                name: "search".into(),
            })
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while generation(&projections.get_status(()).await.unwrap().into_inner()) == was {
            assert!(Instant::now() < deadline, "the rebuild did not finish");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for (query, before) in queries.iter().zip(before) {
            assert!(!before.is_empty(), "{query}");
            let after = search(&app, request(query, head)).await.hits;
            assert_eq!(after, before, "{query}");
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn bad_requests_are_invalid_arguments_naming_the_field() {
    within(TEST_TIMEOUT, async {
        let app = spawn_app().await;
        let mut projections = client(&app).await;
        let cases = [
            (request("", 0), "query"),
            (request("   ", 0), "query"),
            (request(&"слово ".repeat(200), 0), "query"),
            (
                proto::SearchRequest {
                    kinds: vec!["CallHeld".into(), "NoSuchKind".into()],
                    ..request("x", 0)
                },
                "kinds",
            ),
            (
                proto::SearchRequest {
                    actor: "Not An Actor".into(),
                    ..request("x", 0)
                },
                "actor",
            ),
            (
                proto::SearchRequest {
                    read: Some(proto::ReadOptions {
                        as_of: Some(proto::read_options::AsOf::AsOfPosition(1)),
                        ..Default::default()
                    }),
                    ..request("x", 0)
                },
                "read.as_of",
            ),
            (
                proto::SearchRequest {
                    read: Some(proto::ReadOptions {
                        on_day: "2025-02-15".into(),
                        ..Default::default()
                    }),
                    ..request("x", 0)
                },
                "read.on_day",
            ),
            (
                proto::SearchRequest {
                    occurred_from: Some(prost_types::Timestamp {
                        seconds: 100,
                        nanos: 0,
                    }),
                    occurred_to: Some(prost_types::Timestamp {
                        seconds: 50,
                        nanos: 0,
                    }),
                    ..request("x", 0)
                },
                "occurred_to",
            ),
            (
                proto::SearchRequest {
                    page_size: 5000,
                    ..request("x", 0)
                },
                "page_size",
            ),
            (
                proto::SearchRequest {
                    page_token: "nope".into(),
                    ..request("x", 0)
                },
                "page_token",
            ),
        ];
        for (request, field) in cases {
            let status = projections.search(request).await.unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
            assert_eq!(violated_fields(&status), [field], "{status:?}");
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn diplog_search_prints_the_hits_with_the_words_marked() {
    within(TEST_TIMEOUT, async {
        let app = spawn_app().await;
        let (head, _) = setup(&app).await;
        let server = app.server_url();
        let head = head.to_string();
        let output = diplog([
            "search",
            "регулярные",
            "контакты",
            "--server",
            &server,
            "--min-position",
            &head,
        ])
        .await;
        assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
        let stdout = text(&output.stdout);
        assert!(stdout.contains("[регулярных] [контактах]"), "{stdout}");
        assert!(stdout.contains("CallHeld"), "{stdout}");

        let output = diplog([
            "search",
            "sanctions",
            "--kind",
            "StatementIssued",
            "--actor",
            "marco-rubio",
            "--from",
            "2025-03-01",
            "--to",
            "2025-03-03",
            "--json",
            "--server",
            &server,
            "--min-position",
            &head,
        ])
        .await;
        assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
        let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let hits = answer["hits"].as_array().unwrap();
        assert_eq!(hits.len(), 1, "{answer}");
        assert_eq!(hits[0]["kind"], "StatementIssued");

        let output = diplog(["search", "--server", &server]).await;
        assert_eq!(output.status.code(), Some(2), "{}", shown(&output));
        app.stop().await;
    })
    .await;
}
