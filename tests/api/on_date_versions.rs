//! Answers on a day from the versions the projections record: a replay on day D lets every
//! event in as it is until the first one that happened after D, so up to there its rows are
//! the rows on record, and only the rest of the log is replayed on top. Checked against an
//! independent answer, a replay of the log from its start (`--as-of-from replay`, a second
//! server on the same database), on days all through a history recorded out of date order
//! (random histories), with corrections moving an early event past the day and back after
//! the rows on record, in one page and in pages of a few items. Which way each answer came is
//! counted on `/metrics` of the servers (processes of their own), not timed.

use std::collections::BTreeMap;

use diplog::domain::diplomacy::{DiplomaticEvent, EventKind, derived_event_id};
use diplog::import::{self, Item, OnInvalid, Origin, scenario};
use diplog::proto::{self, projections_client::ProjectionsClient};
use serde_json::json;

use crate::as_of_replays::{founding_and_history, timeline_paged_while_appending};
use crate::as_of_versions::{answers_from, caught_up, http, versions_and_replay};
use crate::helpers::{Serve, ServeProcess, database_url_for, fresh_database};
use crate::list_pages::{List, every_page};
use crate::metrics::scrape;
use crate::projections::{assert_same, everything_at, without_age};

/// Small, so a history of a few hundred events passes many marks.
const EVERY: u64 = 16;

fn on(day: &str) -> Option<proto::ReadOptions> {
    Some(proto::ReadOptions {
        on_day: day.to_owned(),
        ..Default::default()
    })
}

/// A correction of the founding scenario's call of 15 February that says it happened on
/// `day`, recorded in the call's stream (`n`: which one, for its id).
fn call_moved_to(call: &Item, day: &str, n: u32) -> Item {
    let mut replacement = call.event.to_json();
    replacement["occurred"] = json!({"day": day});
    // Dated itself when it was made, after every day asked about but the last: its own date
    // does not count, its replacement's does.
    let event = DiplomaticEvent::from_json(json!({
        "occurred": {"day": "2026-01-15"},
        "event_corrected": {
            "event": call.id.to_string(),
            "replacement": replacement,
            "reason": "the date was misreported",
        },
    }))
    .expect("a correction");
    Item {
        origin: Origin::Record(call.stream_id.clone()),
        stream_id: call.stream_id.clone(),
        id: derived_event_id("on-date-versions", &format!("moved-{n}")),
        event,
    }
}

/// Asserts that `server` answers everything at `read` as `replay` does; answers how many of
/// its answers came from the versions and how many from replays of the log meanwhile.
async fn same_as_replayed(
    server: &ServeProcess,
    replay: &ServeProcess,
    read: Option<proto::ReadOptions>,
    what: &str,
) -> (f64, f64) {
    let before = scrape(http(server)).await;
    assert_same(
        &without_age(&everything_at(server.channel().await, read.clone()).await),
        &without_age(&everything_at(replay.channel().await, read).await),
        what,
    );
    let after = scrape(http(server)).await;
    (
        answers_from(&after, "versions") - answers_from(&before, "versions"),
        answers_from(&after, "log") - answers_from(&before, "log"),
    )
}

#[tokio::test]
async fn answers_on_a_day_from_recorded_versions_equal_a_replay_of_the_log() {
    let database = fresh_database().await;
    let (versions, replay) = versions_and_replay(&database_url_for(&database), EVERY).await;
    let founding = scenario::parse(scenario::FOUNDING_SCENARIO).expect("parses");
    let call = founding
        .items
        .iter()
        .find(|item| {
            matches!(item.event.kind, EventKind::CallHeld(_))
                && item
                    .event
                    .occurred
                    .as_ref()
                    .is_some_and(|time| time.to_string().starts_with("2025-02-15"))
        })
        .expect("the founding scenario has the call of 15 February")
        .clone();
    // Dated March to November in no order after the founding scenario: the rest of the log
    // after the first event past a day holds events on either side of it.
    let history = founding_and_history(&versions, 11, 200).await;
    // The call, among the rows on record for every day from 15 February, moved past the
    // summer and back: a replay on top of the rows must know where the call was recorded.
    import::import(
        versions.channel().await,
        vec![
            call_moved_to(&call, "2025-12-01", 1),
            call_moved_to(&call, "2025-02-14", 2),
        ],
        OnInvalid::RefuseAll,
    )
    .await
    .expect("the corrections import");
    let head = history + 2;
    caught_up(&versions, head, &BTreeMap::new()).await;
    assert!(head > 10 * EVERY, "a history passing many marks: {head}");

    let days = [
        "2025-02-11",
        "2025-02-13",
        "2025-02-15",
        "2025-02-20",
        "2025-04-10",
        "2025-06-15",
        "2025-09-01",
        "2025-11-30",
        "2025-12-01",
        "2030-01-01",
    ];
    let before = scrape(http(&versions)).await;
    for day in days {
        let recorded = everything_at(versions.channel().await, on(day)).await;
        let replayed = everything_at(replay.channel().await, on(day)).await;
        assert_same(
            &without_age(&recorded),
            &without_age(&replayed),
            &format!("on {day}"),
        );
    }
    let after = scrape(http(&versions)).await;
    let from_versions = answers_from(&after, "versions") - answers_from(&before, "versions");
    let from_log = answers_from(&after, "log") - answers_from(&before, "log");
    // Each day asks six projections (seventeen lists): the first ask of each is answered
    // from the versions, the others from what it kept. Every day's log begins with events
    // that had happened by then (the actors' undated registrations), so none replays.
    assert_eq!(
        (from_versions, from_log),
        (6.0 * days.len() as f64, 0.0),
        "answers from the versions, and from replays of the log"
    );

    // A server that lets one event at most go on top of the rows on record gives up on them
    // for a day in the middle of the history (dated in no order, it lets in many) and
    // replays from the start: the same answers.
    let giving_up = Serve::on_database(&database_url_for(&database))
        .arg("--projection-versions-every")
        .arg(EVERY.to_string())
        .arg("--on-day-max-events-on-top")
        .arg("1")
        .start()
        .await;
    assert_eq!(
        same_as_replayed(
            &giving_up,
            &replay,
            on("2025-06-15"),
            "on 2025-06-15, given up on the versions"
        )
        .await,
        (0.0, 6.0),
        "too many events on top: every projection replayed from the start"
    );

    // As of a position before the first mark no rows are on record to start from: a replay
    // from the start answers.
    let early = Some(proto::ReadOptions {
        as_of: Some(proto::read_options::AsOf::AsOfPosition(EVERY - 6)),
        ..on("2030-01-01").unwrap()
    });
    assert_eq!(
        same_as_replayed(
            &versions,
            &replay,
            early,
            "on 2030-01-01 as of a position before the first mark"
        )
        .await,
        (0.0, 6.0),
        "answers from the versions, and from replays of the log, before the first mark"
    );

    // In pages of a few items: rows on record and replayed ones merged.
    for day in ["2025-06-15", "2030-01-01"] {
        for list in [
            List::Channels,
            List::Divergences,
            List::Timeline("RUS", proto::Records::Both),
            List::Timeline("sergey-lavrov", proto::Records::Readouts),
            List::SummitsPending,
            List::Relations(proto::Records::Both),
        ] {
            let (whole, total) = every_page(&replay, list, on(day), 1000).await;
            for size in [1, 4] {
                let (paged, paged_total) = every_page(&versions, list, on(day), size).await;
                assert_eq!(paged, whole, "{list:?} on {day} in pages of {size}");
                assert_eq!(paged_total, total, "{list:?} on {day}: the total");
            }
        }
    }

    // The pages of an answer at the head stay at its first page's position, however the log
    // moves between them; a token naming a position no answer at the head was at is
    // answered at the head.
    let mut projections = ProjectionsClient::new(versions.channel().await);
    let ask = |page_size, page_token| proto::ListRequest {
        read: on("2030-01-01"),
        actor: "RUS".into(),
        page_size,
        page_token,
        ..Default::default()
    };
    let whole = projections
        .get_timeline(ask(1000, String::new()))
        .await
        .expect("the whole timeline")
        .into_inner()
        .entries;
    let paged = timeline_paged_while_appending(&versions, "RUS", on("2030-01-01"), 15, head).await;
    assert!(paged.len() > 45, "several pages: {}", paged.len());
    assert_eq!(paged, whole);
    let forged = projections
        .get_timeline(ask(15, format!("0@{}", head / 2)))
        .await
        .expect("a page at the head")
        .into_inner();
    assert!(forged.info.expect("info").position > head);
}
