//! A dashboard page whose projections are behind the log says so, and so do the metrics: the
//! channels projection is held back (its advisory lock taken before the server starts, as a
//! server busy elsewhere would hold it), the founding report is imported, and then
//! - a page answered from the channels projection names the head it has not reached, and
//!   which projection is short of it; `/metrics` has the lag and no rebuild under way;
//! - in a browser, an open page that waits for the projection says "catching up", and "live"
//!   again with the note gone once the lock is let go and the projection catches up.

use std::time::Duration;

use diplog::projections::engine::registry::advisory_lock_key;
use sqlx::{Connection, PgConnection};

use crate::dashboard::{Browser, EMBASSY_STAFFING, exists, get, record_embassy_staffing};
use crate::helpers::{fresh_database, import_founding, spawn_app_on};
use crate::metrics::{scrape, value};

/// Takes projection `name`'s advisory lock on a connection of its own: the server's runner of
/// it stands by until the connection closes.
async fn hold(options: &sqlx::postgres::PgConnectOptions, name: &str) -> PgConnection {
    let mut connection = PgConnection::connect_with(options)
        .await
        .expect("a connection of the test's own");
    sqlx::query("select pg_advisory_lock($1)")
        .bind(advisory_lock_key(name))
        .execute(&mut connection)
        .await
        .expect("the projection's lock");
    connection
}

#[tokio::test]
async fn a_page_behind_the_log_names_the_head_and_the_projection_short_of_it() {
    let options = fresh_database().await;
    let held = hold(&options, "channels").await;
    let app = spawn_app_on(options).await;
    let head = import_founding(&app).await;

    let page = get(app.http_addr, "/channels").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(&format!(
            "The log is at position {head}: the views are catching up"
        )),
        "{}",
        page.body
    );
    assert!(page.body.contains("channels at 0"), "{}", page.body);
    assert!(!page.body.contains("rebuilding"), "{}", page.body);

    let samples = scrape(app.http_addr).await;
    let lag = |name: &str| format!("diplog_projection_lag_events{{projection=\"{name}\"}}");
    assert_eq!(value(&samples, &lag("channels")), head as f64);
    assert_eq!(
        value(
            &samples,
            "diplog_projection_rebuilding{projection=\"channels\"}"
        ),
        0.0
    );
    assert_eq!(
        value(
            &samples,
            "diplog_projection_rebuild_position{projection=\"channels\"}"
        ),
        0.0
    );

    // Let go, the projection catches up and the note is gone.
    held.close().await.expect("the lock let go");
    let page = get(app.http_addr, &format!("/channels?min_position={head}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("id=\"behind\""), "{}", page.body);
    assert!(
        page.body.contains("channel-rus-usa-foreign-ministers"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn an_open_page_says_it_is_catching_up_while_its_projection_is_held_back() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let options = fresh_database().await;
    let app = spawn_app_on(options.clone()).await;
    let head = import_founding(&app).await;
    let base = format!("http://{}", app.http_addr);
    browser
        .open(&format!("{base}/commitments?min_position={head}"))
        .await;
    browser
        .until(&exists("#live-status.connected"), Duration::from_secs(10))
        .await
        .expect("the page connects to /live");
    assert_eq!(browser.text("#live-status").await, "live");

    // Held back from now on: the runner is let go of its lock (its backend ended), and the
    // test takes the lock before the runner takes it again.
    let held = loop {
        terminate_holder(&app, "commitments").await;
        let mut connection = PgConnection::connect_with(&options)
            .await
            .expect("a connection of the test's own");
        let taken: bool = sqlx::query_scalar("select pg_try_advisory_lock($1)")
            .bind(advisory_lock_key("commitments"))
            .fetch_one(&mut connection)
            .await
            .expect("try the projection's lock");
        if taken {
            break connection;
        }
    };
    let position = record_embassy_staffing(&app).await;
    browser
        .until(
            "document.getElementById('live-status').textContent === 'catching up'",
            Duration::from_secs(10),
        )
        .await
        .expect("the status says the page is catching up");
    assert_eq!(
        browser
            .count(&format!("tr[data-key='{EMBASSY_STAFFING}']"))
            .await,
        0,
        "the held-back projection has not shown the commitment"
    );
    browser.screenshot("commitments-catching-up").await;

    held.close().await.expect("the lock let go");
    browser
        .until(
            &exists(&format!("tr[data-key='{EMBASSY_STAFFING}']")),
            Duration::from_secs(20),
        )
        .await
        .expect("the commitment appears once the projection catches up");
    browser
        .until(
            "document.getElementById('live-status').textContent === 'live'",
            Duration::from_secs(10),
        )
        .await
        .expect("the status is live again");
    let shown = browser
        .script("return Number(document.querySelector('main').dataset.position);")
        .await
        .as_u64()
        .expect("a position");
    assert!(shown >= position);
    assert_eq!(browser.count("#behind").await, 0);
    browser.close().await;
}

/// Ends the backend holding projection `name`'s advisory lock in the app's database, if any.
async fn terminate_holder(app: &crate::helpers::TestApp, name: &str) {
    let key = advisory_lock_key(name) as u64;
    sqlx::query(
        "select pg_terminate_backend(pid) from pg_locks where locktype = 'advisory' \
         and granted and objsubid = 1 \
         and database = (select oid from pg_database where datname = current_database()) \
         and classid::bigint = $1 and objid::bigint = $2",
    )
    .bind((key >> 32) as i64)
    .bind((key & 0xffff_ffff) as i64)
    .execute(&app.pool)
    .await
    .expect("end the lock's holder");
}
