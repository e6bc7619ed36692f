//! The dashboard's pictures (server-rendered SVG): an actor's and a pair's contacts over time,
//! the network of relations and one state's part of it, and the lifecycles of summits and
//! commitments; on the founding report and the delegations' meeting, and on a generated
//! scenario of hundreds of calls. Over plain HTTP (what each picture must contain, now, as of
//! and on a day), then in headless Chromium (drawn, screenshots in
//! `target/dashboard-screenshots/chart-*.png`, and a picture updating live).

use std::fmt::Write as _;
use std::time::Duration;

use diplog::import::{self, OnInvalid, scenario};
use serde_json::json;

use crate::dashboard::{Browser, exists, get};
use crate::helpers::{TestApp, head, import_founding, record, spawn_app};

const DELEGATIONS: &str = include_str!("../../scenarios/delegations-meeting.yaml");

/// States of the generated scenario beside the founding report's three.
const STATES: &[(&str, &str)] = &[
    ("FRA", "France"),
    ("DEU", "Germany"),
    ("CHN", "China"),
    ("TUR", "Turkey"),
    ("IND", "India"),
    ("BRA", "Brazil"),
    ("ZAF", "South Africa"),
    ("EGY", "Egypt"),
];
/// Calls of France's foreign minister in the generated scenario: more than a timeline chart
/// draws one by one (600).
const GENERATED_CALLS: usize = 650;

async fn import_yaml(app: &TestApp, yaml: &str) -> u64 {
    let parsed = scenario::parse(yaml).expect("the scenario parses");
    import::import(app.channel().await, parsed.items, OnInvalid::RefuseAll)
        .await
        .expect("the scenario imports");
    head(app).await
}

/// A scenario of the generated states, each with a foreign minister, and France's minister
/// calling the others (and the founding report's Lavrov and Rubio) every other day from
/// 2023, at changing levels.
fn generated_scenario() -> String {
    let mut yaml = String::from("scenario: generated-charts\nevents:\n");
    for (code, name) in STATES {
        let lower = code.to_ascii_lowercase();
        let _ = write!(
            yaml,
            "  - key: state-{lower}\n    stream: actor-{code}\n    actor_registered:\n      \
             actor: {{id: {code}, kind: STATE, name: {name}}}\n\
             \x20 - key: minister-{lower}\n    stream: actor-minister-{lower}\n    actor_registered:\n      \
             actor: {{id: minister-{lower}, kind: PERSON, name: Foreign minister of {name}, country: {code}}}\n"
        );
    }
    let counterparts: Vec<String> = STATES[1..]
        .iter()
        .map(|(code, _)| format!("minister-{}", code.to_ascii_lowercase()))
        .chain(["sergey-lavrov".to_owned(), "marco-rubio".to_owned()])
        .collect();
    let levels = ["MINISTERS", "LEADERS", "EXPERTS", "MINISTERS"];
    let start = chrono::NaiveDate::from_ymd_opt(2023, 1, 2).unwrap();
    for index in 0..GENERATED_CALLS {
        let day = start + chrono::Duration::days(2 * index as i64);
        let other = &counterparts[index % counterparts.len()];
        let _ = write!(
            yaml,
            "  - key: call-{index}\n    stream: occurrence-generated-call-{index}\n    \
             occurred: {{day: \"{day}\"}}\n    sources: [{{source: rus.mfa, language: en}}]\n    call_held:\n      participants:\n        \
             - {{actor: minister-fra}}\n        - {{actor: {other}}}\n      level: {}\n",
            levels[index % levels.len()]
        );
    }
    yaml
}

/// How many times `needle` occurs in `text`.
fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

#[tokio::test]
async fn the_charts_draw_the_founding_report_now_as_of_and_on_a_day() {
    let app = spawn_app().await;
    import_founding(&app).await;
    let head = import_yaml(&app, DELEGATIONS).await;
    let addr = app.http_addr;

    // Lavrov's contacts: the founding call and the Riyadh meeting, as ministers.
    let actor = get(addr, &format!("/actors/sergey-lavrov?min_position={head}")).await;
    assert_eq!(actor.status, 200, "{}", actor.body);
    assert!(
        actor.body.contains(r#"<svg class="contacts""#),
        "{}",
        actor.body
    );
    assert_eq!(count(&actor.body, "mark kind-call"), 1, "{}", actor.body);
    assert_eq!(count(&actor.body, "mark kind-meeting"), 1, "{}", actor.body);
    assert!(actor.body.contains(">Ministers</text>"), "{}", actor.body);
    assert!(
        actor.body.contains("<title>Call held, 15 February 2025: "),
        "{}",
        actor.body
    );

    // The pair: both founding calls and the meeting, the summit's and commitments' steps.
    // After the head too: the relations may lag the timeline the actor's page waited for (a
    // full run answered 404).
    let pair = get(addr, &format!("/relations/RUS/USA?min_position={head}")).await;
    assert_eq!(pair.status, 200, "{}", pair.body);
    assert!(pair.body.contains(r#"id="pair-chart""#), "{}", pair.body);
    assert_eq!(count(&pair.body, "mark kind-call"), 2, "{}", pair.body);
    assert_eq!(count(&pair.body, "mark kind-meeting"), 1, "{}", pair.body);
    assert!(count(&pair.body, "mark step-summit") >= 1, "{}", pair.body);
    assert!(
        count(&pair.body, "mark step-commitment") >= 1,
        "{}",
        pair.body
    );
    assert!(pair.body.contains(">Leaders</text>"), "{}", pair.body);

    // The network: Russia, the United States and Ukraine; two pairs with contacts. Seen from
    // today the last contacts are long past; on 20 February 2025 the Russian-American one
    // was days old.
    let network = get(addr, &format!("/network?min_position={head}")).await;
    assert_eq!(network.status, 200);
    assert_eq!(
        count(&network.body, r#"class="node state""#),
        3,
        "{}",
        network.body
    );
    assert_eq!(
        count(&network.body, r#"<line class="edge"#),
        2,
        "{}",
        network.body
    );
    for name in ["Russia", "United States", "Ukraine"] {
        assert!(
            network.body.contains(&format!(">{name}</text>")),
            "{name}: {}",
            network.body
        );
    }
    assert!(
        network.body.contains("/relations/RUS/USA"),
        "an edge leads to the pair"
    );
    assert!(
        network.body.contains(r#"href="/network/RUS""#),
        "a node leads to the state"
    );
    assert_eq!(
        count(&network.body, "edge recent-older"),
        2,
        "{}",
        network.body
    );
    let on_day = get(addr, "/network?on=2025-02-20").await;
    assert_eq!(on_day.status, 200);
    assert_eq!(count(&on_day.body, "edge recent-30"), 2, "{}", on_day.body);

    // One click in: Russia's offices and people, their counterparts under their state.
    let russia = get(addr, &format!("/network/RUS?min_position={head}")).await;
    assert_eq!(russia.status, 200, "{}", russia.body);
    assert!(
        russia
            .body
            .contains("Minister of Foreign Affairs of Russia (Sergey Lavrov)"),
        "{}",
        russia.body
    );
    assert!(
        russia.body.contains(r#"class="heading""#),
        "{}",
        russia.body
    );
    // Offices and people apart, by how they are registered (an office whose holder is not
    // known is still an office).
    assert_eq!(
        count(&russia.body, r#"class="node office""#),
        7,
        "{}",
        russia.body
    );
    assert_eq!(
        count(&russia.body, r#"class="node person""#),
        1,
        "{}",
        russia.body
    );
    assert!(
        russia.body.contains(">United States</text>"),
        "{}",
        russia.body
    );
    assert!(
        count(&russia.body, r#"<line class="edge"#) >= 9,
        "{}",
        russia.body
    );
    assert_eq!(get(addr, "/network/XYZ").await.status, 404);

    // Lifecycles: the summit preparation and the commitments, still open, to the line of now.
    let lifecycle = get(addr, &format!("/lifecycle?min_position={head}")).await;
    assert_eq!(lifecycle.status, 200, "{}", lifecycle.body);
    assert!(
        lifecycle.body.contains(r#"<svg class="lifecycle""#),
        "{}",
        lifecycle.body
    );
    assert!(
        lifecycle.body.contains("bar stage-preparation_agreed"),
        "{}",
        lifecycle.body
    );
    assert!(lifecycle.body.contains("bar stage-"), "{}", lifecycle.body);
    assert!(lifecycle.body.contains(r#"<line class="now""#));
    assert!(
        lifecycle.body.contains("A meeting of experts"),
        "{}",
        lifecycle.body
    );

    // As of the first position nothing had happened; a bad as_of is named.
    for path in ["/network", "/lifecycle"] {
        let empty = get(addr, &format!("{path}?as_of=1")).await;
        assert_eq!(empty.status, 200, "{path}");
        assert!(
            empty.body.contains(r#"class="none""#),
            "{path}: {}",
            empty.body
        );
        assert!(!empty.body.contains("<svg class="), "{path}");
        let bad = get(addr, &format!("{path}?as_of=yesterday")).await;
        assert_eq!(bad.status, 400, "{path}");
        assert!(bad.body.contains("as_of"), "{path}: {}", bad.body);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_large_scenario_is_counted_per_period_and_its_network_drawn_whole() {
    let app = spawn_app().await;
    import_founding(&app).await;
    let head = import_yaml(&app, &generated_scenario()).await;
    let addr = app.http_addr;

    let actor = get(addr, &format!("/actors/minister-fra?min_position={head}")).await;
    assert_eq!(actor.status, 200);
    // Too many to draw one by one: bars per period, in the three levels' lanes.
    assert_eq!(count(&actor.body, "mark kind-call"), 0);
    let bins = count(&actor.body, r#"<rect class="bin""#);
    assert!((30..=240).contains(&bins), "{bins} bins");
    for lane in ["Leaders", "Ministers", "Experts"] {
        assert!(actor.body.contains(&format!(">{lane}</text>")), "{lane}");
    }
    assert!(
        actor
            .body
            .contains(&format!("{GENERATED_CALLS} contact(s) over time")),
        "{}",
        actor.body
    );
    // The counts add up to the calls.
    let counted: usize = actor
        .body
        .match_indices("<title>")
        .filter_map(|(at, _)| {
            let rest = &actor.body[at + 7..];
            rest.split_once(" contact(s), ")
                .and_then(|(n, _)| n.parse::<usize>().ok())
        })
        .sum();
    assert_eq!(counted, GENERATED_CALLS);

    // Every state with contacts is a node: the eight generated and Russia, the United States
    // and Ukraine; France's edges are the heaviest. (After the head: the relations behind
    // the network may still be behind the timeline the actor's page waited for.)
    let network = get(addr, &format!("/network?min_position={head}")).await;
    assert_eq!(
        count(&network.body, r#"class="node state""#),
        11,
        "{}",
        network.body
    );
    assert_eq!(
        count(&network.body, r#"<line class="edge"#),
        11,
        "{}",
        network.body
    );
    app.stop().await;
}

#[tokio::test]
async fn the_charts_in_a_headless_browser() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app().await;
    import_founding(&app).await;
    let head = import_yaml(&app, DELEGATIONS).await;
    let base = format!("http://{}", app.http_addr);
    let page = |path: &str| format!("{base}{path}");

    browser
        .open(&page(&format!("/actors/sergey-lavrov?min_position={head}")))
        .await;
    assert_eq!(browser.count("#timeline-chart svg path.mark").await, 2);
    // Drawn: the marks have a size on the page.
    let width = browser
        .script(
            "return document.querySelector('#timeline-chart svg').getBoundingClientRect().width;",
        )
        .await;
    assert!(width.as_f64() > Some(500.0), "{width}");
    browser.screenshot("chart-actor").await;

    browser.open(&page("/relations/RUS/USA")).await;
    assert!(browser.count("#pair-chart path.mark.step-summit").await >= 1);
    browser.screenshot("chart-relation").await;

    browser.open(&page("/network/RUS")).await;
    assert!(browser.count("#network-chart line.edge").await >= 9);
    browser.screenshot("chart-network-state").await;

    browser.open(&page("/lifecycle")).await;
    assert!(browser.count("#lifecycle-chart rect.bar").await >= 2);
    browser.screenshot("chart-lifecycle").await;

    // The network follows the log: a first Russian-Ukrainian contact adds an edge without a
    // reload.
    browser.open(&page("/network")).await;
    assert_eq!(browser.count("#network-chart line.edge").await, 2);
    browser.screenshot("chart-network").await;
    browser
        .until(&exists("#live-status.connected"), Duration::from_secs(10))
        .await
        .expect("the page connects to /live");
    record(
        &app,
        "occurrence-2025-03-01-lavrov-sybiha-call",
        json!({
            "occurred": {"day": "2025-03-01"},
            "sources": [{"source": "rus.mfa", "language": "ru"}],
            "call_held": {
                "participants": [{"actor": "sergey-lavrov"}, {"actor": "volodymyr-zelensky"}],
                "level": "MINISTERS"
            }
        }),
    )
    .await;
    browser
        .until(
            "document.querySelectorAll('#network-chart line.edge').length === 3",
            Duration::from_secs(10),
        )
        .await
        .expect("the new pair's edge appears within 10 s");

    // A larger picture.
    import_yaml(&app, &generated_scenario()).await;
    browser.open(&page("/network")).await;
    browser
        .until(
            "document.querySelectorAll('#network-chart circle.state').length === 11",
            Duration::from_secs(10),
        )
        .await
        .expect("all eleven states");
    browser.screenshot("chart-network-large").await;
    browser.open(&page("/actors/minister-fra")).await;
    assert!(browser.count("#timeline-chart rect.bin").await >= 30);
    browser.screenshot("chart-actor-large").await;

    browser.close().await;
    app.stop().await;
}
