//! As-of answers from the versions the projections record: the rows as they stood after a
//! commit (each multiple of `--projection-versions-every` is one), and the events since
//! replayed on top. Checked against an independent answer, a replay of the log from its start
//! (`--as-of-from replay`, a second server on the same database), at positions all through a
//! random history with retractions and corrections: before and after every mark, in one
//! page and in pages of a few items, of the live generation and of a rebuilt one. A
//! generation whose rows are not versioned, or are another version's, is answered by a
//! replay. Which way each answer
//! came is counted on `/metrics` of the servers (processes of their own), not timed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use diplog::proto::{self, projections_client::ProjectionsClient};
use sqlx::ConnectOptions;
use tokio::time::Instant;

use crate::as_of_replays::founding_and_history;
use crate::helpers::{Serve, ServeProcess, database_url_for, fresh_database};
use crate::list_pages::{List, every_page};
use crate::metrics::{scrape, value};
use crate::projections::{as_of, assert_same, everything_at, without_age};

/// Small, so a history of a few hundred events passes many marks.
const EVERY: u64 = 16;

pub(crate) fn answers_from(samples: &BTreeMap<String, f64>, from: &str) -> f64 {
    value(
        samples,
        &format!("diplog_as_of_answers_total{{from=\"{from}\"}}"),
    )
}

pub(crate) fn http(server: &ServeProcess) -> SocketAddr {
    server.http().parse().expect("an address")
}

/// Waits until every projection's live generation is past `generations` (each one's, by
/// name; none: any) and has reached `head`.
pub(crate) async fn caught_up(
    server: &ServeProcess,
    head: u64,
    generations: &BTreeMap<String, u64>,
) {
    let mut projections = ProjectionsClient::new(server.channel().await);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = projections.get_status(()).await.unwrap().into_inner();
        if status.projections.len() == diplog::projections::NAMES.len()
            && status.projections.iter().all(|p| {
                p.position >= head
                    && p.rebuilding_at.is_none()
                    && generations.get(&p.name).is_none_or(|&g| p.generation > g)
            })
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the projections did not catch up: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asks both servers for every projection as of each of `positions`: the same answers.
async fn same_as_a_replay(
    versions: &ServeProcess,
    replay: &ServeProcess,
    positions: &[u64],
    what: &str,
) {
    for &position in positions {
        let recorded = everything_at(versions.channel().await, as_of(position)).await;
        let replayed = everything_at(replay.channel().await, as_of(position)).await;
        assert_same(
            &without_age(&recorded),
            &without_age(&replayed),
            &format!("{what}: as of {position}"),
        );
    }
}

/// Two servers on the database at `url`, recording versions every `every` commits: one
/// answering from them, one replaying the log from its start (the independent answer).
pub(crate) async fn versions_and_replay(url: &str, every: u64) -> (ServeProcess, ServeProcess) {
    let every = every.to_string();
    let versions = Serve::on_database(url)
        .arg("--projection-versions-every")
        .arg(&every)
        .start()
        .await;
    let replay = Serve::on_database(url)
        .arg("--projection-versions-every")
        .arg(&every)
        .arg("--as-of-from")
        .arg("replay")
        .start()
        .await;
    (versions, replay)
}

#[tokio::test]
async fn as_of_answers_from_recorded_versions_equal_a_replay_of_the_log() {
    let database = fresh_database().await;
    let (versions, replay) = versions_and_replay(&database_url_for(&database), EVERY).await;
    let head = founding_and_history(&versions, 3, 220).await;
    caught_up(&versions, head, &BTreeMap::new()).await;
    assert!(head > 10 * EVERY, "a history passing many marks: {head}");

    // Around every third mark (the rows on record, one event after, one before the next),
    // and the head.
    let mut positions: Vec<u64> = (0..=head / EVERY)
        .step_by(3)
        .flat_map(|mark| {
            let at = mark * EVERY;
            [at, at + 1, at + EVERY - 1]
        })
        .filter(|&position| position <= head)
        .collect();
    positions.push(head);
    let before = scrape(http(&versions)).await;
    same_as_a_replay(&versions, &replay, &positions, "the live generation").await;
    let after = scrape(http(&versions)).await;
    assert!(
        answers_from(&after, "versions") - answers_from(&before, "versions")
            >= positions.len() as f64,
        "the answers came from the versions"
    );
    assert_eq!(
        answers_from(&after, "log") + answers_from(&after, "snapshot"),
        answers_from(&before, "log") + answers_from(&before, "snapshot"),
        "no answer of the versions server replayed the log"
    );

    // In pages of a few items, between two marks (stored rows and replayed ones merged).
    let middle = (head / 2 / EVERY) * EVERY + EVERY / 2;
    for list in [
        List::Channels,
        List::Divergences,
        List::Timeline("RUS", proto::Records::Both),
        List::Timeline("rus.president", proto::Records::Readouts),
        List::SummitsPending,
        List::Relations(proto::Records::Both),
    ] {
        let (whole, total) = every_page(&replay, list, as_of(middle), 1000).await;
        assert!(!whole.is_empty(), "{list:?}: items as of {middle}");
        for size in [1, 3, 5] {
            let (paged, paged_total) = every_page(&versions, list, as_of(middle), size).await;
            assert_eq!(paged, whole, "{list:?} as of {middle} in pages of {size}");
            assert_eq!(paged_total, total, "{list:?}: the total");
        }
    }

    // The pages of one answer replay the events on top once: the first finds the versions
    // and keeps what the events on top changed, the others reopen the versions with it.
    let other = middle + 1;
    let timeline = List::Timeline("RUS", proto::Records::Both);
    let (whole, _) = every_page(&replay, timeline, as_of(other), 1000).await;
    let before = scrape(http(&versions)).await;
    let (paged, _) = every_page(&versions, timeline, as_of(other), 3).await;
    let after = scrape(http(&versions)).await;
    assert_eq!(paged, whole, "as of {other} in pages of 3");
    let pages = whole.len().div_ceil(3) as f64;
    assert!(pages > 2.0, "pages to turn: {pages}");
    assert_eq!(
        (
            answers_from(&after, "versions") - answers_from(&before, "versions"),
            answers_from(&after, "kept") - answers_from(&before, "kept"),
        ),
        (1.0, pages - 1.0),
        "the first page from the versions, the others from what it kept"
    );

    // A rebuilt generation records its versions as it goes: the same answers.
    let mut projections = ProjectionsClient::new(versions.channel().await);
    let generations: BTreeMap<String, u64> = projections
        .get_status(())
        .await
        .unwrap()
        .into_inner()
        .projections
        .into_iter()
        .map(|p| (p.name, p.generation))
        .collect();
    for name in diplog::projections::NAMES {
        projections
            .rebuild(proto::RebuildRequest {
                name: (*name).to_owned(),
            })
            .await
            .unwrap();
    }
    caught_up(&versions, head, &generations).await;
    let some: Vec<u64> = positions.iter().copied().step_by(4).collect();
    let before = scrape(http(&versions)).await;
    same_as_a_replay(&versions, &replay, &some, "a rebuilt generation").await;
    let after = scrape(http(&versions)).await;
    assert!(
        answers_from(&after, "versions") - answers_from(&before, "versions") >= some.len() as f64,
        "a rebuilt generation answers from its versions"
    );

    // The replaced generations' history tables go with them.
    let mut connection = database.connect().await.expect("connects");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let histories: i64 = sqlx::query_scalar(
            "select count(*) from pg_class where relkind = 'r' \
             and relname like 'projection\\_history\\_%' \
             and relnamespace = (select oid from pg_namespace where nspname = current_schema())",
        )
        .fetch_one(&mut connection)
        .await
        .expect("count the history tables");
        if histories == diplog::projections::NAMES.len() as i64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{histories} history tables are left, one a projection expected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Rows another version of a model wrote (an upgrade's rebuild under way), and rows whose
    // versions are not on record, are answered by a replay.
    for (change, what) in [
        (
            "update projection_checkpoints set version = version - 1",
            "rows of another version",
        ),
        (
            "update projection_checkpoints set version = version + 1, versions_every = null",
            "rows without versions",
        ),
    ] {
        sqlx::query(change)
            .execute(&mut connection)
            .await
            .expect("change the checkpoints");
        let before = scrape(http(&versions)).await;
        same_as_a_replay(&versions, &replay, &[middle], what).await;
        let after = scrape(http(&versions)).await;
        assert_eq!(
            answers_from(&after, "versions"),
            answers_from(&before, "versions"),
            "{what} are not read as versions"
        );
    }
}
