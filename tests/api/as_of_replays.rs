//! As-of answers by replay (`--as-of-from replay`) hold bounded memory: the rows a replay ends with are kept within
//! `--as-of-cache-mib`, so the same position again is answered without a replay and a later
//! one replays only the events since; a server that keeps nothing replays from the start each
//! time and answers the same; replays take turns (`--as-of-replays 1`), and asks made all at
//! once still get the right answers. Answers on a day replay once for their day and position:
//! readers asking at once wait for one replay, and the later pages of an answer take its rows.
//! Counted on `/metrics` of servers of their own (processes: their counters are theirs
//! alone), not timed.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use diplog::import::{self, OnInvalid, scenario};
use diplog::proto::event_log_client::EventLogClient;
use diplog::proto::{self, projections_client::ProjectionsClient};

use crate::helpers::{
    Expect, Serve, ServeProcess, append_request, database_url_for, fresh_database, new_event,
    violated_fields,
};
use crate::metrics::{scrape, value};
use crate::projections::{as_of, assert_same, everything_at, without_age};
use crate::random_history::random_history;

const REPLAYED: &str = "diplog_as_of_replayed_events_total";
const KEPT_BYTES: &str = "diplog_as_of_kept_bytes";

/// The projections `everything_at` asks (its timelines and relations several times each).
const PROJECTIONS_ASKED: f64 = 6.0;

fn answers_from(samples: &BTreeMap<String, f64>, from: &str) -> f64 {
    value(
        samples,
        &format!("diplog_as_of_answers_total{{from=\"{from}\"}}"),
    )
}

fn http(server: &ServeProcess) -> SocketAddr {
    server.http().parse().expect("an address")
}

/// How far each counter moved between two scrapes.
fn moved(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> [f64; 4] {
    let delta = |f: &dyn Fn(&BTreeMap<String, f64>) -> f64| f(after) - f(before);
    [
        delta(&|s| value(s, REPLAYED)),
        delta(&|s| answers_from(s, "log")),
        delta(&|s| answers_from(s, "snapshot")),
        delta(&|s| answers_from(s, "kept")),
    ]
}

/// Imports the founding scenario and a random history of `events` events (`seed`) through
/// `server`; answers the log's head.
pub(crate) async fn founding_and_history(server: &ServeProcess, seed: u64, events: usize) -> u64 {
    let founding = scenario::parse(scenario::FOUNDING_SCENARIO).expect("parses");
    import::import(server.channel().await, founding.items, OnInvalid::RefuseAll)
        .await
        .expect("the founding scenario imports");
    import::import(
        server.channel().await,
        random_history(seed, events),
        OnInvalid::Report,
    )
    .await
    .expect("the history imports");
    EventLogClient::new(server.channel().await)
        .get_head(())
        .await
        .expect("the head")
        .into_inner()
        .position as u64
}

/// `actor`'s timeline read with `read` in pages of `size`, each asked by the token of the one
/// before, an event appended to the log between pages: each page must be at `position`.
pub(crate) async fn timeline_paged_while_appending(
    server: &ServeProcess,
    actor: &str,
    read: Option<proto::ReadOptions>,
    size: u32,
    position: u64,
) -> Vec<proto::TimelineEntry> {
    let mut projections = ProjectionsClient::new(server.channel().await);
    let mut log = EventLogClient::new(server.channel().await);
    let (mut paged, mut token) = (Vec::new(), String::new());
    loop {
        let page = projections
            .get_timeline(proto::ListRequest {
                read: read.clone(),
                actor: actor.to_owned(),
                page_size: size,
                page_token: token,
                ..Default::default()
            })
            .await
            .expect("a page")
            .into_inner();
        let info = page.info.expect("info");
        assert_eq!(
            info.position, position,
            "every page at the first one's position"
        );
        paged.extend(page.entries);
        token = info.next_page_token;
        if token.is_empty() {
            return paged;
        }
        let between = vec![new_event("Noted", r#"{"between": "pages"}"#)];
        log.append(append_request("noted-between-pages", Expect::Any, between))
            .await
            .expect("an event between the pages");
    }
}

#[tokio::test]
async fn as_of_answers_start_from_rows_kept_within_a_budget_and_replays_take_turns() {
    let database = fresh_database().await;
    let url = database_url_for(&database);
    let keeping = Serve::on_database(&url)
        .arg("--as-of-from")
        .arg("replay")
        .arg("--as-of-cache-mib")
        .arg("64")
        .arg("--as-of-replays")
        .arg("1")
        .start()
        .await;
    let forgetting = Serve::on_database(&url)
        .arg("--as-of-from")
        .arg("replay")
        .arg("--as-of-cache-mib")
        .arg("0")
        .start()
        .await;

    let head = founding_and_history(&keeping, 7, 120).await;
    let middle = head / 2;
    let (middle_f, head_f) = (middle as f64, head as f64);

    // The first answers as of the middle replay each projection once from the start (every
    // event is a diplomatic one); the other asks of the same projection take its kept rows.
    let before = scrape(http(&keeping)).await;
    let at_middle = everything_at(keeping.channel().await, as_of(middle)).await;
    let after_middle = scrape(http(&keeping)).await;
    let asks = at_middle.len() as f64;
    assert_eq!(
        moved(&before, &after_middle),
        [
            PROJECTIONS_ASKED * middle_f,
            PROJECTIONS_ASKED,
            0.0,
            asks - PROJECTIONS_ASKED
        ],
        "replayed events, answers from the log, from a snapshot, from kept rows"
    );

    // As of the head: each replays only what came after the middle.
    let at_head = everything_at(keeping.channel().await, as_of(head)).await;
    let after_head = scrape(http(&keeping)).await;
    assert_eq!(
        moved(&after_middle, &after_head),
        [
            PROJECTIONS_ASKED * (head_f - middle_f),
            0.0,
            PROJECTIONS_ASKED,
            asks - PROJECTIONS_ASKED
        ]
    );
    // Again: nothing replays, and the answers are the same.
    let again = everything_at(keeping.channel().await, as_of(head)).await;
    let after_again = scrape(http(&keeping)).await;
    assert_eq!(moved(&after_head, &after_again), [0.0, 0.0, 0.0, asks]);
    assert_eq!(again, at_head);
    let held = value(&after_again, KEPT_BYTES);
    assert!(
        held > 0.0 && held <= 64.0 * 1024.0 * 1024.0,
        "kept {held} bytes"
    );

    // A server that keeps nothing answers the same, replaying from the start every time.
    let forgotten = scrape(http(&forgetting)).await;
    assert_same(
        &without_age(&at_middle),
        &without_age(&everything_at(forgetting.channel().await, as_of(middle)).await),
        "as of the middle, from kept rows and from the start",
    );
    assert_same(
        &without_age(&at_head),
        &without_age(&everything_at(forgetting.channel().await, as_of(head)).await),
        "as of the head, from a snapshot and from the start",
    );
    let after_forgetting = scrape(http(&forgetting)).await;
    assert_eq!(
        moved(&forgotten, &after_forgetting),
        [asks * (middle_f + head_f), 2.0 * asks, 0.0, 0.0]
    );
    assert_eq!(value(&after_forgetting, KEPT_BYTES), 0.0);

    // Asks at eight positions all at once, one replay at a time, each answered as the server
    // that replays from the start answers it.
    let positions: Vec<u64> = (1..=8).map(|i| head * i / 9).collect();
    let answers = futures::future::join_all(positions.iter().map(|&position| {
        let keeping = &keeping;
        async move { everything_at(keeping.channel().await, as_of(position)).await }
    }))
    .await;
    for (position, answer) in positions.iter().zip(&answers) {
        assert_same(
            &without_age(answer),
            &without_age(&everything_at(forgetting.channel().await, as_of(*position)).await),
            &format!("as of {position}, asked at once with seven others"),
        );
    }
    let settled = scrape(http(&keeping)).await;
    assert_eq!(value(&settled, "diplog_as_of_replays_running"), 0.0);
    assert_eq!(value(&settled, "diplog_as_of_replays_waiting"), 0.0);
    assert!(value(&settled, KEPT_BYTES) <= 64.0 * 1024.0 * 1024.0);
}

fn on(day: &str, as_of: Option<u64>) -> Option<proto::ReadOptions> {
    Some(proto::ReadOptions {
        on_day: day.to_owned(),
        as_of: as_of.map(proto::read_options::AsOf::AsOfPosition),
        ..Default::default()
    })
}

#[tokio::test]
async fn answers_on_a_day_replay_once_for_their_day_and_position_and_their_pages_take_its_rows() {
    let database = fresh_database().await;
    let url = database_url_for(&database);
    // Replays asked for: by default an answer on a day starts from recorded versions where
    // it can (`on_date_versions`).
    let keeping = Serve::on_database(&url)
        .arg("--as-of-from")
        .arg("replay")
        .start()
        .await;
    let forgetting = Serve::on_database(&url)
        .arg("--as-of-from")
        .arg("replay")
        .arg("--as-of-cache-mib")
        .arg("0")
        .start()
        .await;
    let head = founding_and_history(&keeping, 11, 120).await;
    let head_f = head as f64;
    const DAY: &str = "2025-07-01";

    // Two readers ask everything on a day at once: each projection is replayed once, the
    // other asks (the second reader's too) wait for it and take its rows.
    let before = scrape(http(&keeping)).await;
    let (first, second) = tokio::join!(
        everything_at(keeping.channel().await, on(DAY, None)),
        everything_at(keeping.channel().await, on(DAY, None)),
    );
    assert_eq!(first, second);
    let asks = first.len() as f64;
    let after_first = scrape(http(&keeping)).await;
    assert_eq!(
        moved(&before, &after_first),
        [
            PROJECTIONS_ASKED * head_f,
            PROJECTIONS_ASKED,
            0.0,
            2.0 * asks - PROJECTIONS_ASKED
        ],
        "replayed events, answers from the log, from a snapshot, from kept rows"
    );

    // A timeline in pages of three, each asked by the token of the one before, an event
    // appended between pages: every page is at the first page's position (its token names
    // it), none replays, and together they are the whole list.
    let mut projections = ProjectionsClient::new(keeping.channel().await);
    let ask = |read, page_size, page_token| proto::ListRequest {
        read,
        actor: "RUS".into(),
        page_size,
        page_token,
        ..Default::default()
    };
    let whole = projections
        .get_timeline(ask(on(DAY, None), 1000, String::new()))
        .await
        .expect("the whole timeline")
        .into_inner();
    let total = whole.info.as_ref().expect("info").total;
    assert!(total > 6, "RUS's timeline on {DAY} has {total} entries");
    let paged = timeline_paged_while_appending(&keeping, "RUS", on(DAY, None), 3, head).await;
    assert_eq!(paged, whole.entries);
    let pages = (f64::from(total) / 3.0).ceil();
    let after_pages = scrape(http(&keeping)).await;
    assert_eq!(
        moved(&after_first, &after_pages),
        [0.0, 0.0, 0.0, 1.0 + pages]
    );
    let now = head + pages as u64 - 1;

    // A token naming another position (not one an answer at the head was at: here, one an
    // as-of answer was) is answered at the head: a page token cannot ask as of the past.
    let past = projections
        .get_timeline(ask(on(DAY, Some(head / 2)), 3, String::new()))
        .await
        .expect("as of the middle")
        .into_inner();
    assert_eq!(past.info.expect("info").position, head / 2);
    let forged = projections
        .get_timeline(ask(on(DAY, None), 3, format!("0@{}", head / 2)))
        .await
        .expect("a page at the head")
        .into_inner();
    assert_eq!(forged.info.expect("info").position, now);
    assert_eq!(forged.entries, whole.entries[..3]);
    let bad = projections
        .get_timeline(ask(on(DAY, None), 3, "3@soon".into()))
        .await
        .expect_err("a bad token");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert_eq!(violated_fields(&bad), ["page_token"]);
    let after_tokens = scrape(http(&keeping)).await;

    // The as-of timeline, and the one at the head now (the event appended is not a
    // diplomatic one: as many events replayed as before).
    assert_eq!(
        moved(&after_pages, &after_tokens),
        [head_f + (head / 2) as f64, 2.0, 0.0, 0.0]
    );

    // Another day, or the same day as of an earlier position, is another replay (the timeline
    // of the middle was kept just now).
    let other_day = everything_at(keeping.channel().await, on("2025-10-01", None)).await;
    let earlier = everything_at(keeping.channel().await, on(DAY, Some(head / 2))).await;
    let after_others = scrape(http(&keeping)).await;
    assert_eq!(
        moved(&after_tokens, &after_others),
        [
            PROJECTIONS_ASKED * head_f + (PROJECTIONS_ASKED - 1.0) * (head / 2) as f64,
            2.0 * PROJECTIONS_ASKED - 1.0,
            0.0,
            2.0 * (asks - PROJECTIONS_ASKED) + 1.0
        ]
    );
    assert_ne!(other_day, first);
    assert_ne!(earlier, first);

    // A server that keeps nothing replays every ask, and answers the same.
    for (read, kept) in [
        (on(DAY, None), &first),
        (on("2025-10-01", None), &other_day),
        (on(DAY, Some(head / 2)), &earlier),
    ] {
        let replayed = everything_at(forgetting.channel().await, read.clone()).await;
        assert_same(
            &without_age(kept),
            &without_age(&replayed),
            &format!("{read:?}, kept and replayed each time"),
        );
    }
    let forgotten = scrape(http(&forgetting)).await;
    assert_eq!(answers_from(&forgotten, "log"), 3.0 * asks);
    assert_eq!(value(&forgotten, KEPT_BYTES), 0.0);
}
