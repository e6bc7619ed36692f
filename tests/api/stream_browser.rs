//! The dashboard's browser of the log and its filtered events page, over plain HTTP: streams
//! by prefix and as of a past state, one stream's events paged, one event with its metadata,
//! payload and Merkle inclusion proof (checked here too, with the library's verifier); the
//! `/events` filters each narrowing the page to what they must, paging, and each bad
//! parameter a 400 naming it. In headless Chromium: the event page's script says "verified",
//! and "failed" once its proof is altered; screenshots of the pages.

use std::time::Duration;

use serde_json::{Value, json};

use crate::dashboard::{Browser, exists, get};
use crate::helpers::{Expect, TestApp, import_founding, record, spawn_app};
use diplog::proto;

/// A query parameter's value, percent-encoded.
fn encoded(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of `attribute="…"` in the first tag of `html` that has it.
fn attribute(html: &str, attribute: &str) -> Option<String> {
    let marker = format!("{attribute}=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// Every value of `attribute="…"` in `html`, in order.
fn attributes(html: &str, attribute: &str) -> Vec<String> {
    let marker = format!("{attribute}=\"");
    html.match_indices(&marker)
        .filter_map(|(at, _)| {
            let start = at + marker.len();
            let end = html[start..].find('"')? + start;
            Some(html[start..end].to_owned())
        })
        .collect()
}

/// The positions of the event cards on an `/events` page, in order.
fn card_positions(html: &str) -> Vec<u64> {
    html.match_indices("<article class=\"event\" id=\"event-")
        .filter_map(|(at, _)| {
            let rest = &html[at + "<article class=\"event\" id=\"event-".len()..];
            rest.split('"').next()?.parse().ok()
        })
        .collect()
}

/// Appends generic events through `EventStore.Append`; answers their positions.
async fn append(app: &TestApp, stream: &str, types: &[&str]) -> Vec<u64> {
    let events: Vec<(&str, &str)> = types.iter().map(|t| (*t, "{\"n\": 1}")).collect();
    let response: proto::AppendResponse = app
        .append(stream, Expect::Any, &events)
        .await
        .unwrap_or_else(|e| panic!("append to {stream}: {e}"));
    response.positions.iter().map(|p| *p as u64).collect()
}

/// The event page at `path` once the signed tree holds the event (the builder trails the log
/// by some milliseconds).
async fn proved(app: &TestApp, path: &str) -> String {
    for _ in 0..250 {
        let page = get(app.http_addr, path).await;
        assert_eq!(page.status, 200, "GET {path}: {}", page.body);
        if page.body.contains("id=\"proof\"") {
            return page.body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("GET {path}: no proof within 5 s");
}

fn hash(hex_text: &str) -> [u8; 32] {
    hex::decode(hex_text)
        .expect("hex")
        .try_into()
        .expect("32 bytes")
}

#[tokio::test]
async fn the_stream_browser_lists_streams_by_prefix_pages_a_stream_and_proves_an_event() {
    let app = spawn_app().await;
    let addr = app.http_addr;
    let first = append(&app, "browse-a", &["Alpha", "Beta"]).await; // 1, 2
    append(&app, "browse-b", &["Delta"]).await; // 3
    let gamma = append(&app, "browse-a", &["Gamma"]).await[0]; // 4
    append(&app, "other-c", &["Epsilon"]).await; // 5
    assert_eq!(first, [1, 2]);
    assert_eq!(gamma, 4);

    // By prefix: only the streams that start with it, by id, with version and last event.
    let streams = get(addr, "/streams?prefix=browse-").await;
    assert_eq!(streams.status, 200, "{}", streams.body);
    assert_eq!(
        attributes(&streams.body, "data-stream"),
        ["browse-a", "browse-b"],
        "{}",
        streams.body
    );
    assert!(streams.body.contains("href=\"/streams/browse-a\""));
    assert!(streams.body.contains("href=\"/log/4\""), "{}", streams.body);
    let all = get(addr, "/streams").await;
    assert_eq!(
        attributes(&all.body, "data-stream"),
        ["browse-a", "browse-b", "other-c"]
    );
    let none = get(addr, "/streams?prefix=zzz").await;
    assert!(
        none.body.contains("No streams starting with"),
        "{}",
        none.body
    );
    // As of position 3: browse-a at version 2, its last event at 2; other-c not yet.
    let then = get(addr, "/streams?as_of=3").await;
    assert_eq!(
        attributes(&then.body, "data-stream"),
        ["browse-a", "browse-b"]
    );
    assert!(
        then.body.contains("href=\"/log/2?as_of=3\""),
        "{}",
        then.body
    );
    assert!(!then.body.contains("href=\"/log/4"), "{}", then.body);

    // One stream: its events newest first, of any type; as of a past state, fewer.
    let stream = get(addr, "/streams/browse-a").await;
    assert_eq!(stream.status, 200, "{}", stream.body);
    assert_eq!(attributes(&stream.body, "data-version"), ["3", "2", "1"]);
    assert!(stream.body.contains(">Gamma</a>"), "{}", stream.body);
    let earlier = get(addr, "/streams/browse-a?as_of=3").await;
    assert_eq!(attributes(&earlier.body, "data-version"), ["2", "1"]);
    assert_eq!(get(addr, "/streams/browse-c").await.status, 404);
    assert_eq!(get(addr, "/streams/other-c?as_of=4").await.status, 404);

    // A stream of 101 events pages by version, older and newer.
    let many: Vec<&str> = vec!["Tick"; 101];
    append(&app, "browse-many", &many).await;
    let page = get(addr, "/streams/browse-many").await.body;
    let versions = attributes(&page, "data-version");
    assert_eq!(versions.len(), 100);
    assert_eq!((versions[0].as_str(), versions[99].as_str()), ("101", "2"));
    assert!(!page.contains("class=\"newer\""));
    let older = attribute(&page, "class=\"older\" rel=\"next\" href").expect("an older link");
    assert_eq!(older, "/streams/browse-many?before=2");
    let last = get(addr, &older).await.body;
    assert_eq!(attributes(&last, "data-version"), ["1"]);
    assert!(!last.contains("class=\"older\""));
    let newer = attribute(&last, "class=\"newer\" rel=\"prev\" href").expect("a newer link");
    assert_eq!(newer, "/streams/browse-many?after=1");
    let back = attributes(&get(addr, &newer).await.body, "data-version");
    assert_eq!((back.len(), back[0].as_str()), (100, "101"));

    // One event: its columns, metadata and payload, and its proof, which verifies.
    let event = proved(&app, "/log/4").await;
    assert!(event.contains("<dd>Gamma</dd>"), "{event}");
    assert!(event.contains("href=\"/streams/browse-a\">browse-a</a>"));
    assert!(event.contains("<dt>Version</dt><dd>3</dd>"), "{event}");
    assert!(event.contains("&#34;n&#34;: 1"), "{event}");
    let (index, size) = (
        attribute(&event, "data-index").unwrap(),
        attribute(&event, "data-size").unwrap(),
    );
    assert_eq!(index, "3");
    let path: Vec<[u8; 32]> = attribute(&event, "data-path")
        .unwrap()
        .split_whitespace()
        .map(hash)
        .collect();
    let leaf = hash(&attribute(&event, "data-leaf").unwrap());
    let entry = hex::decode(attribute(&event, "data-entry").unwrap()).unwrap();
    assert_eq!(diplog::domain::merkle::leaf_hash(&entry), leaf);
    diplog::domain::merkle::verify_inclusion(
        &leaf,
        3,
        size.parse().unwrap(),
        &path,
        &hash(&attribute(&event, "data-root").unwrap()),
    )
    .expect("the page's proof verifies");
    // The same event by its stream and version.
    let by_version = get(addr, "/streams/browse-a/3").await;
    assert!(
        by_version
            .body
            .contains("<dt>Position</dt><dd class=\"position-in-log\">4</dd>")
    );
    // As of a past state: the event is proved in the tree of that size.
    let past = proved(&app, "/log/2?as_of=3").await;
    assert_eq!(
        attribute(&past, "data-size").as_deref(),
        Some("3"),
        "{past}"
    );

    // What is not there is a 404; a bad parameter a 400 naming it.
    for path in [
        "/log/0",
        "/log/9999",
        "/log/abc",
        "/log/4?as_of=3",
        "/streams/browse-a/9",
    ] {
        assert_eq!(get(addr, path).await.status, 404, "GET {path}");
    }
    for (path, parameter) in [
        ("/streams?prefix=%0A", "prefix"),
        ("/streams/browse-a?before=x", "before"),
        ("/streams/browse-a?after=0", "after"),
        ("/streams/browse-a?before=2&after=1", "after"),
        ("/streams?before=a&after=b", "after"),
        ("/log/4?as_of=banana", "as_of"),
        ("/streams?on=2025-02-15", "on"),
    ] {
        let answer = get(addr, path).await;
        assert_eq!(answer.status, 400, "GET {path}: {}", answer.body);
        assert!(
            answer.body.contains(&format!("The {parameter} parameter")),
            "GET {path}: {}",
            answer.body
        );
    }
    app.stop().await;
}

/// A statement by `speaker`, reported by `source`, on `day`.
fn statement(day: &str, speaker: &str, source: &str, summary: &str) -> Value {
    json!({"occurred": {"day": day}, "sources": [{"source": source}],
           "statement_issued": {"speaker": speaker, "summary": summary}})
}

#[tokio::test]
async fn the_events_page_narrows_to_each_filter_pages_and_names_a_bad_parameter() {
    let app = spawn_app().await;
    let founded = import_founding(&app).await;
    let (_, a) = record(
        &app,
        "occurrence-2026-03-03-rubio-statement",
        statement(
            "2026-03-03",
            "marco-rubio",
            "usa.state-department",
            "The sanctions stay in force",
        ),
    )
    .await;
    let (_, b) = record(
        &app,
        "occurrence-2026-04-10-lavrov-statement",
        statement(
            "2026-04-10",
            "sergey-lavrov",
            "rus.mfa",
            "Consultations will continue",
        ),
    )
    .await;
    let (_, c) = record(
        &app,
        "occurrence-2026-05-20-call",
        json!({"occurred": {"day": "2026-05-20"}, "sources": [{"source": "rus.mfa"}],
               "call_held": {"participants": [{"actor": "sergey-lavrov"}, {"actor": "marco-rubio"}]}}),
    )
    .await;
    let addr = app.http_addr;
    let positions = |query: &str| {
        let path = format!("/events?{query}&min_position={c}");
        async move {
            let page = get(addr, &path).await;
            assert_eq!(page.status, 200, "GET {path}: {}", page.body);
            card_positions(&page.body)
        }
    };

    // Unfiltered: newest first, the founding report's events below ours.
    let everything = positions("").await;
    assert_eq!(&everything[..3], [c, b, a]);
    assert!(everything[3] <= founded);
    // Each filter narrows to what it must.
    let ours = "from=2026-01-01";
    assert_eq!(positions(ours).await, [c, b, a]);
    assert_eq!(positions("from=2026-04-01&to=2026-04-30").await, [b]);
    assert_eq!(positions("to=2026-03-31&from=2026-03-01").await, [a]);
    assert_eq!(
        positions(&format!("{ours}&kind=StatementIssued")).await,
        [b, a]
    );
    assert_eq!(positions(&format!("{ours}&kind=CallHeld")).await, [c]);
    assert_eq!(
        positions(&format!("{ours}&actor=marco-rubio")).await,
        [c, a]
    );
    assert_eq!(positions(&format!("{ours}&source=rus.mfa")).await, [c, b]);
    // A source by its registered name, too.
    assert_eq!(
        positions(&format!(
            "{ours}&source={}",
            encoded("United States Department of State")
        ))
        .await,
        [a]
    );
    // Words, as the search finds them (in any of their forms), with the other filters.
    assert_eq!(positions("q=sanctions").await, [a]);
    assert_eq!(
        positions("q=consultations&kind=CallHeld").await,
        Vec::<u64>::new()
    );
    assert_eq!(positions(&format!("q=continue&{ours}")).await, [b]);
    // As of a past state, only what the log had then; words too.
    assert_eq!(positions(&format!("{ours}&as_of={b}")).await, [b, a]);
    assert_eq!(
        positions(&format!("q=sanctions&as_of={founded}")).await,
        Vec::<u64>::new()
    );
    // On a day: what may have occurred by its end.
    assert_eq!(positions(&format!("{ours}&on=2026-04-10")).await, [b, a]);

    // The form shows what was asked.
    let form = get(addr, "/events?kind=CallHeld&source=rus.mfa&q=x")
        .await
        .body;
    assert!(
        form.contains("<option value=\"CallHeld\" selected>"),
        "{form}"
    );
    assert!(form.contains("name=\"source\" value=\"rus.mfa\""), "{form}");

    // Paging: 50 a page, older then newer, the filters kept.
    for n in 0..50 {
        record(
            &app,
            &format!("occurrence-2026-07-01-statement-{n}"),
            statement(
                "2026-07-01",
                "marco-rubio",
                "usa.state-department",
                "Filler",
            ),
        )
        .await;
    }
    let (_, head) = record(
        &app,
        "occurrence-2026-07-02-statement",
        statement("2026-07-02", "marco-rubio", "usa.state-department", "Last"),
    )
    .await;
    let first = get(
        addr,
        &format!("/events?actor=marco-rubio&{ours}&min_position={head}"),
    )
    .await;
    let page = card_positions(&first.body);
    assert_eq!((page.len(), page[0]), (50, head));
    assert!(!first.body.contains("class=\"newer\""));
    let older = attribute(&first.body, "class=\"older\" rel=\"next\" href")
        .expect("an older link")
        .replace("&#38;", "&");
    assert!(older.contains("actor=marco-rubio"), "{older}");
    assert!(older.contains(&format!("before={}", page[49])), "{older}");
    let second = get(addr, &older).await;
    // The last filler, then our call and statement.
    assert_eq!(card_positions(&second.body), [page[49] - 1, c, a]);
    let newer = attribute(&second.body, "class=\"newer\" rel=\"prev\" href")
        .expect("a newer link")
        .replace("&#38;", "&");
    assert_eq!(card_positions(&get(addr, &newer).await.body), page);

    // Bad parameters: a 400 naming each.
    let long = "a".repeat(1001);
    for (query, parameter) in [
        ("kind=Nope", "kind"),
        ("actor=Not%20An%20Actor", "actor"),
        ("from=2026-13-01", "from"),
        ("to=yesterday", "to"),
        ("from=2026-02-01&to=2026-01-01", "to"),
        ("source=not%20a%20source%21", "source"),
        ("before=x", "before"),
        ("after=-1", "after"),
        ("before=5&after=3", "after"),
        (&format!("q={long}") as &str, "q"),
        ("as_of=banana", "as_of"),
    ] {
        let answer = get(addr, &format!("/events?{query}")).await;
        assert_eq!(answer.status, 400, "GET /events?{query}: {}", answer.body);
        assert!(
            answer.body.contains(&format!("The {parameter} parameter")),
            "GET /events?{query}: {}",
            answer.body
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn the_event_page_checks_its_proof_in_the_browser() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app().await;
    let head = import_founding(&app).await;
    append(&app, "browse-generic", &["Alpha", "Beta"]).await;
    let base = format!("http://{}", app.http_addr);
    let page = |path: &str| format!("{base}{path}");

    browser.open(&page("/streams?prefix=occurrence-")).await;
    assert!(browser.count("tr.stream").await > 0);
    browser.screenshot("streams").await;

    browser.open(&page("/streams/browse-generic")).await;
    assert_eq!(browser.count("tr.log-event").await, 2);
    browser.screenshot("stream").await;

    // The event's proof: "verified" once the script has checked it.
    proved(&app, &format!("/log/{head}")).await;
    browser.open(&page(&format!("/log/{head}"))).await;
    let checked = "document.querySelector('#proof').dataset.checked";
    browser
        .until(
            &format!("{checked} === 'verified'"),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|| panic!("the proof is not verified in the page"));
    assert_eq!(browser.text("#proof-status").await, "verified");
    browser.screenshot("log-event").await;

    // A root altered in the page: the check again says "failed".
    browser
        .script(
            "var p = document.querySelector('#proof'); \
             var r = p.dataset.root; \
             p.dataset.root = (r[0] === '0' ? '1' : '0') + r.slice(1); \
             window.diplogCheckProofs(); return true;",
        )
        .await;
    browser
        .until(&format!("{checked} === 'failed'"), Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("an altered root does not fail"));
    assert!(browser.text("#proof-status").await.starts_with("failed"));
    // An altered payload: its bytes no longer hash to the leaf.
    browser.open(&page(&format!("/log/{head}"))).await;
    browser
        .until(
            &format!("{checked} === 'verified'"),
            Duration::from_secs(10),
        )
        .await
        .expect("verified again on a fresh page");
    browser
        .script(
            "var p = document.querySelector('#proof'); \
             p.dataset.entry = p.dataset.entry.slice(0, -2) + '00'; \
             window.diplogCheckProofs(); return true;",
        )
        .await;
    browser
        .until(&format!("{checked} === 'failed'"), Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("altered bytes do not fail"));
    assert!(
        browser.text("#proof-status").await.contains("leaf hash"),
        "{}",
        browser.text("#proof-status").await
    );
    browser.screenshot("log-event-failed").await;

    // A filtered events page.
    browser
        .open(&page(&format!(
            "/events?kind=CallHeld&source=report.rubio-lavrov-call-ru&min_position={head}"
        )))
        .await;
    browser
        .until(&exists("article.event"), Duration::from_secs(10))
        .await
        .expect("a call held, in the Russian report");
    browser.screenshot("events-filtered").await;
    browser.close().await;
    app.stop().await;
}
