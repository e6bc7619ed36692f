//! The dashboard: every page over plain HTTP on the founding report (and its errors: a bad
//! `as_of` is a 400 naming it, an unknown actor a 404), and the pages in headless Chromium:
//! what they show, an event recorded through gRPC appearing without a reload, and "as of"
//! taking it away again. Screenshots of each page go to `target/dashboard-screenshots/`.
//!
//! The browser test needs Debian's `chromium` and `chromedriver` (`chromium-driver`); without
//! them it says SKIPPED on stderr and passes, unless `DIPLOG_REQUIRE_BROWSER=1` (as in CI).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{import_founding, record, spawn_app};

const CALL_STREAM: &str = "occurrence-2025-02-15-rubio-lavrov-call";

/// A response read off the wire.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: String,
}

/// `GET path` over a plain TCP connection (no HTTP client among the dependencies). For an
/// event stream, only the head and the first event are read.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> Answer {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("the dashboard answers");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("the request is sent");
    let mut raw = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("GET {path} took more than 10 s"))
            .expect("the response is readable");
        if read == 0 {
            break;
        }
        raw.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&raw);
        // An event stream never ends: stop after its first event.
        if text.contains("text/event-stream") && text.contains("\n\n") && text.contains("data:") {
            break;
        }
    }
    let text = String::from_utf8(raw).expect("a UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    Answer {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

#[tokio::test]
async fn every_dashboard_page_answers_on_the_founding_report() {
    let app = spawn_app().await;
    let head = import_founding(&app).await;
    let addr = app.http_addr;

    // Each page, once the projections reflect the import, with something it must show.
    let pages = [
        ("/", "Minister of Foreign Affairs of Russia"),
        ("/channels", "channel-rus-usa-foreign-ministers"),
        (
            "/channels",
            "Minister of Foreign Affairs of Russia (Sergey Lavrov)",
        ),
        ("/summits", "summit-rus-usa-2025"),
        ("/commitments", "A meeting of experts"),
        ("/events", "Call held"),
        (
            "/occurrences/occurrence-2025-02-15-rubio-lavrov-call",
            "ситуации вокруг Палестины",
        ),
        ("/actors/sergey-lavrov", "Sergey Lavrov"),
        ("/actors/RUS", "Russia"),
        ("/relations", "Russia – United States"),
        ("/relations/USA/RUS", "Pending summit preparations"),
    ];
    for (path, expected) in pages {
        let answer = get(addr, &format!("{path}?min_position={head}")).await;
        assert_eq!(answer.status, 200, "GET {path}: {}", answer.body);
        assert!(
            answer.head.contains("text/html"),
            "GET {path}: {}",
            answer.head
        );
        assert!(
            answer.body.contains(expected),
            "GET {path} shows {expected:?}: {}",
            answer.body
        );
        assert!(
            answer.body.contains(&format!("data-position=\"{head}\"")),
            "GET {path} reflects position {head}"
        );
    }

    // Names, not ids; readable dates; Russian as written, marked as Russian.
    let occurrence = get(addr, &format!("/occurrences/{CALL_STREAM}")).await.body;
    assert!(occurrence.contains("15 February 2025"));
    assert!(occurrence.contains("Ministry of Foreign Affairs of Russia"));
    assert!(occurrence.contains("United States Department of State"));
    assert!(occurrence.contains("<blockquote lang=\"ru\">обозначен обоюдный настрой"));
    assert!(occurrence.contains("class=\"claim single\" data-claim=\"palestine-and-middle-east\""));

    // A fragment is the page's <main> only.
    let fragment = get(addr, "/channels?fragment=1").await.body;
    assert!(fragment.trim_start().starts_with("<main"), "{fragment}");
    assert!(!fragment.contains("<html"));

    // As of the empty log: nothing yet, and a banner that says so.
    let before = get(addr, "/channels?as_of=0").await;
    assert_eq!(before.status, 200);
    assert!(
        before.body.contains("id=\"as-of-banner\""),
        "{}",
        before.body
    );
    assert!(before.body.contains("(position 0)"));
    assert!(before.body.contains("No open channels."));
    assert!(before.body.contains("data-live=\"false\""));
    // Links keep the "as of".
    assert!(before.body.contains("href=\"/summits?as_of=0\""));
    // A day works too (the end of that day, UTC): before the log was written.
    let by_day = get(addr, "/commitments?as_of=2025-02-14").await;
    assert_eq!(by_day.status, 200);
    assert!(by_day.body.contains("No pending commitments."));

    // On a day (the other axis): what had happened by its end, as the log knows it now.
    let on_11th = get(addr, "/channels?on=2025-02-11").await;
    assert_eq!(on_11th.status, 200);
    assert!(
        on_11th.body.contains("id=\"on-banner\""),
        "{}",
        on_11th.body
    );
    assert!(on_11th.body.contains("No open channels."));
    assert!(on_11th.body.contains("data-live=\"false\""));
    assert!(on_11th.body.contains("href=\"/summits?on=2025-02-11\""));
    let on_12th = get(addr, "/channels?on=2025-02-12").await.body;
    assert!(on_12th.contains("President of Russia"), "{on_12th}");
    assert!(
        !on_12th.contains("Minister of Foreign Affairs of Russia"),
        "{on_12th}"
    );
    // Both axes: as the log stood at position 0, nothing had happened by any day.
    let both = get(addr, "/channels?as_of=0&on=2025-02-20").await.body;
    assert!(both.contains("as the log knew it as of 0"), "{both}");
    assert!(both.contains("No open channels."));
    assert!(
        both.contains("href=\"/summits?as_of=0&#38;on=2025-02-20\""),
        "{both}"
    );
    let bad_day = get(addr, "/channels?on=2025-02-30").await;
    assert_eq!(bad_day.status, 400);
    assert!(bad_day.body.contains("on"), "{}", bad_day.body);
    assert!(bad_day.body.contains("YYYY-MM-DD"), "{}", bad_day.body);

    // Bad input is a 400 that names the parameter and what it accepts; never a 500.
    for path in [
        "/channels?as_of=banana",
        "/?as_of=2025-02-30",
        "/occurrences/x?as_of=yesterday",
    ] {
        let answer = get(addr, path).await;
        assert_eq!(answer.status, 400, "GET {path}");
        assert!(answer.body.contains("as_of"), "{}", answer.body);
        assert!(answer.body.contains("log position"), "{}", answer.body);
    }
    let answer = get(addr, "/events?min_position=soon").await;
    assert_eq!(answer.status, 400);
    assert!(answer.body.contains("min_position"));

    // Unknown things are 404 pages.
    for path in [
        "/actors/nobody",
        "/actors/not%20an%20id",
        "/occurrences/occurrence-nothing",
        "/occurrences/0194f0e2-0000-7000-8000-000000000000",
        "/relations/RUS/FRA",
        "/relations/RUS/XXX",
        "/nowhere",
    ] {
        let answer = get(addr, path).await;
        assert_eq!(answer.status, 404, "GET {path}: {}", answer.body);
        assert!(answer.body.contains("Not found"), "GET {path}");
    }
    // Lavrov existed, but not as of position 0.
    assert_eq!(get(addr, "/actors/sergey-lavrov?as_of=0").await.status, 404);

    // The live stream: an event stream that starts with the head.
    let live = get(addr, "/live").await;
    assert_eq!(live.status, 200);
    assert!(
        live.head.contains("content-type: text/event-stream"),
        "{}",
        live.head
    );
    assert!(
        live.body
            .contains(&format!("data: {{\"position\":{head}}}")),
        "{}",
        live.body
    );

    // The assets are served from the binary.
    let script = get(addr, "/assets/dashboard.js").await;
    assert_eq!(script.status, 200);
    assert!(script.body.contains("EventSource"));
    assert_eq!(get(addr, "/assets/dashboard.css").await.status, 200);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// In a browser

/// Chromium and its WebDriver, if installed.
fn browser_binaries() -> Result<(PathBuf, PathBuf), String> {
    let find = |names: &[&str]| -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        names.iter().find_map(|name| {
            std::env::split_paths(&path)
                .chain([
                    PathBuf::from("/usr/bin"),
                    PathBuf::from("/usr/lib/chromium"),
                ])
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
    };
    let chromium = find(&["chromium", "chromium-browser"])
        .ok_or("chromium is not installed (apt-get install chromium)")?;
    let driver = find(&["chromedriver"])
        .ok_or("chromedriver is not installed (apt-get install chromium-driver)")?;
    Ok((chromium, driver))
}

pub(crate) fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("dashboard-screenshots")
}

/// A headless Chromium driven through chromedriver; the driver dies with it.
pub(crate) struct Browser {
    pub(crate) client: Client,
    driver: tokio::process::Child,
    _profile: tempfile::TempDir,
    screenshots: PathBuf,
}

impl Browser {
    /// `None` (after saying SKIPPED) when no browser is installed, unless one is required.
    pub(crate) async fn start() -> Option<Self> {
        let (chromium, driver_binary) = match browser_binaries() {
            Ok(found) => found,
            Err(why) => {
                if std::env::var("DIPLOG_REQUIRE_BROWSER").as_deref() == Ok("1") {
                    panic!("DIPLOG_REQUIRE_BROWSER=1 but {why}");
                }
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED a dashboard test in a headless browser: {why}"
                );
                return None;
            }
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = tokio::process::Command::new(&driver_binary)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", driver_binary.display()));
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                    "--window-size=1280,1400",
                    "--lang=en-GB",
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(error) if started.elapsed() < Duration::from_secs(20) => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("chromedriver did not start a session in 20 s: {error}"),
            }
        };
        let screenshots = screenshot_dir();
        std::fs::create_dir_all(&screenshots).expect("the screenshot directory");
        Some(Self {
            client,
            driver,
            _profile: profile,
            screenshots,
        })
    }

    pub(crate) async fn open(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("could not open {url}: {e}"));
    }

    pub(crate) async fn text(&self, css: &str) -> String {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
            .text()
            .await
            .expect("its text")
    }

    pub(crate) async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .expect("a query")
            .len()
    }

    pub(crate) async fn script(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script {script:?} failed: {e}"))
    }

    pub(crate) async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let path = self.screenshots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("the screenshot is written");
    }

    /// Polls `script` (a boolean expression) every 20 ms until it is true or `limit` passes;
    /// answers how long it took.
    pub(crate) async fn until(&self, script: &str, limit: Duration) -> Option<Duration> {
        let started = Instant::now();
        let script = format!("return Boolean({script});");
        while started.elapsed() < limit {
            if self.script(&script).await == Value::Bool(true) {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    pub(crate) async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill().await;
    }
}

/// The stream of the commitment `record_embassy_staffing` records.
pub(crate) const EMBASSY_STAFFING: &str = "commitment-rus-usa-embassy-staffing";

/// Records a commitment of Russia and the United States, after the founding report (27
/// February 2025, Istanbul); answers its position.
pub(crate) async fn record_embassy_staffing(app: &crate::helpers::TestApp) -> u64 {
    let (_, position) = record(
        app,
        EMBASSY_STAFFING,
        json!({
            "occurred": {"day": "2025-02-27", "time_zone": "Europe/Istanbul"},
            "sources": [{"source": "rus.mfa", "language": "ru",
                         "quotes": [{"text": "договорились о нормализации работы посольств"}]}],
            "commitment_stated": {
                "parties": ["RUS", "USA"],
                "what": "Normalise the staffing of both embassies",
                "due_text": "в ближайшее время (soon)"
            }
        }),
    )
    .await;
    position
}

pub(crate) fn exists(css: &str) -> String {
    format!("document.querySelector({css:?}) !== null")
}

#[tokio::test]
async fn the_dashboard_in_a_headless_browser() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app().await;
    let head = import_founding(&app).await;
    let base = format!("http://{}", app.http_addr);
    let page = |path: &str| format!("{base}{path}");

    // 1. The founding report's channel, summit preparation and commitment, by name.
    browser
        .open(&page(&format!("/channels?min_position={head}")))
        .await;
    let channel = browser
        .text("tr[data-stream='channel-rus-usa-foreign-ministers']")
        .await;
    assert!(
        channel
            .contains("Minister of Foreign Affairs of Russia (Sergey Lavrov) – United States Secretary of State (Marco Rubio)"),
        "{channel}"
    );
    assert!(channel.contains("15 February 2025"), "{channel}");
    browser.screenshot("channels").await;

    browser.open(&page("/summits")).await;
    let summit = browser.text("tr[data-key='summit-rus-usa-2025']").await;
    assert!(summit.contains("Russia – United States summit"), "{summit}");
    assert!(summit.contains("Preparation agreed"), "{summit}");
    assert!(summit.contains("15 February 2025"), "{summit}");
    browser.screenshot("summits").await;

    browser.open(&page("/commitments")).await;
    let commitment = browser
        .text("tr[data-key='commitment-rus-usa-missions-expert-meeting']")
        .await;
    assert!(commitment.contains("A meeting of experts"), "{commitment}");
    assert!(
        commitment.contains("Russia – United States"),
        "{commitment}"
    );
    assert!(
        commitment.contains("в самое ближайшее время"),
        "{commitment}"
    );
    browser.screenshot("commitments").await;

    browser.open(&page("/")).await;
    browser
        .text("tr[data-stream='channel-rus-usa-foreign-ministers']")
        .await;
    browser.screenshot("overview").await;
    browser.open(&page("/events")).await;
    let events = browser.text("main").await;
    assert!(events.contains("Commitment stated"), "{events}");
    browser.screenshot("events").await;

    // 2. The call's readouts side by side: both sources, the Russian as written, and the
    // claims only one source makes highlighted.
    browser
        .open(&page(&format!("/occurrences/{CALL_STREAM}")))
        .await;
    assert_eq!(browser.count(".readouts .readout").await, 2);
    let readouts = browser.text(".readouts").await;
    assert!(readouts.contains("Ministry of Foreign Affairs of Russia"));
    assert!(readouts.contains("United States Department of State"));
    let quote = browser.text(".readout blockquote[lang='ru']").await;
    assert!(quote.starts_with("обозначен обоюдный настрой"), "{quote}");
    assert!(quote.contains("ситуации вокруг Палестины"), "{quote}");
    let single = browser
        .text(".readout li.claim.single[data-claim='palestine-and-middle-east'] mark")
        .await;
    assert!(single.contains("Palestine"), "{single}");
    let highlight = browser
        .script(
            "return getComputedStyle(document.querySelector(\
             \"li.claim.single[data-claim='palestine-and-middle-east'] mark\")).backgroundColor;",
        )
        .await;
    assert_ne!(
        highlight,
        json!("rgba(0, 0, 0, 0)"),
        "the claim is highlighted"
    );
    let shared = browser
        .count(".readout li.claim:not(.single)[data-claim='ukraine']")
        .await;
    assert_eq!(
        shared, 2,
        "a shared claim is shown under both sources, unmarked"
    );
    browser.screenshot("occurrence").await;

    browser.open(&page("/actors/sergey-lavrov")).await;
    assert_eq!(browser.text("h1").await, "Sergey Lavrov");
    let timeline = browser.text("table.timeline").await;
    assert!(timeline.contains("Call held"), "{timeline}");
    assert!(
        timeline.contains("Marco Rubio, as United States Secretary of State"),
        "{timeline}"
    );
    browser.screenshot("actor").await;

    browser.open(&page("/relations")).await;
    browser.text("table.relations").await;
    browser.screenshot("relations").await;
    browser.open(&page("/relations/RUS/USA")).await;
    assert_eq!(
        browser.text("h1").await,
        "Relations: Russia – United States"
    );
    let relation = browser.text("main").await;
    assert!(relation.contains("summit-rus-usa-2025"), "{relation}");
    assert!(relation.contains("A meeting of experts"), "{relation}");
    browser.screenshot("relation").await;

    // 3. With the commitments page open, a new commitment recorded through gRPC appears
    // without a reload.
    browser.open(&page("/commitments")).await;
    browser
        .until(&exists("#live-status.connected"), Duration::from_secs(10))
        .await
        .expect("the page connects to /live");
    let loaded_at = browser.script("return window.diplogLoadedAt;").await;
    let started = Instant::now();
    let position = record_embassy_staffing(&app).await;
    let recorded = started.elapsed();
    let appeared = browser
        .until(
            &exists("tr[data-key='commitment-rus-usa-embassy-staffing']"),
            Duration::from_secs(10),
        )
        .await
        .expect("the new commitment appears within 10 s");
    let latency = started.elapsed();
    // Written to the stream itself, so that the harness's capture does not hide it.
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "dashboard: the recorded commitment (position {position}) appeared on the open page \
         {} ms after the record call began (the call took {} ms; polled every 20 ms)",
        latency.as_millis(),
        recorded.as_millis()
    );
    assert!(
        appeared <= Duration::from_secs(10),
        "appeared after {appeared:?}"
    );
    assert_eq!(
        browser.script("return window.diplogLoadedAt;").await,
        loaded_at,
        "the page was not reloaded"
    );
    assert!(
        browser
            .script("return window.diplogUpdates;")
            .await
            .as_u64()
            >= Some(1),
        "the page updated itself"
    );
    let row = browser
        .text("tr[data-key='commitment-rus-usa-embassy-staffing']")
        .await;
    assert!(
        row.contains("Normalise the staffing of both embassies"),
        "{row}"
    );
    let shown: u64 = browser
        .script("return Number(document.querySelector('main').dataset.position);")
        .await
        .as_u64()
        .expect("a position");
    assert!(shown >= position);
    browser.screenshot("commitments-live").await;

    // 4. As of just before it (through the form): gone again, and a banner says so.
    let before = position - 1;
    let form = browser
        .client
        .form(Locator::Id("as-of-form"))
        .await
        .expect("the as-of form");
    form.set_by_name("as_of", &before.to_string())
        .await
        .expect("the as-of input");
    form.submit().await.expect("the form submits");
    let banner = browser.text("#as-of-banner").await;
    assert!(banner.contains(&format!("(position {before})")), "{banner}");
    assert!(banner.starts_with("As of"), "{banner}");
    assert_eq!(
        browser
            .count("tr[data-key='commitment-rus-usa-embassy-staffing']")
            .await,
        0,
        "the later commitment is not shown as of position {before}"
    );
    assert_eq!(
        browser
            .count("tr[data-key='commitment-rus-usa-missions-expert-meeting']")
            .await,
        1
    );
    assert_eq!(
        browser
            .script("return document.querySelector('main').dataset.live;")
            .await,
        json!("false")
    );
    let url = browser.client.current_url().await.expect("a URL");
    // The form sends both fields; an empty `on` means the state now.
    assert_eq!(
        url.query(),
        Some(format!("as_of={before}&on=").as_str()),
        "{url}"
    );
    browser.screenshot("commitments-as-of").await;

    browser.close().await;
    app.stop().await;
    for name in [
        "channels",
        "summits",
        "commitments",
        "occurrence",
        "commitments-as-of",
    ] {
        let path: &Path = &screenshot_dir().join(format!("{name}.png"));
        assert!(path.is_file(), "{} is kept", path.display());
    }
}

/// `/live` follows the log, not just this server's writer: an append through another server on
/// the same database reaches the pages open on this one (through the subscription's NOTIFY).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_live_stream_announces_appends_made_through_another_server() {
    let database = crate::helpers::fresh_database().await;
    let writer = crate::helpers::spawn_app_on(database.clone()).await;
    let reader = crate::helpers::spawn_app_on(database).await;
    let addr = reader.http_addr;
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("the dashboard answers");
    let request =
        format!("GET /live HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("sent");

    let mut seen = String::new();
    let mut buffer = [0u8; 4096];
    let mut appended = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.contains("data: {\"position\":2}") {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("no announcement of position 2 in time: {seen}"))
            .expect("readable");
        assert!(read > 0, "the live stream ended: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buffer[..read]));
        // Append once the stream has announced where it starts.
        if !appended && seen.contains("data: {\"position\":0}") {
            writer
                .append(
                    "elsewhere",
                    crate::helpers::Expect::Any,
                    &[("Noted", "{}"), ("Noted", "{}")],
                )
                .await
                .expect("appended through the other server");
            appended = true;
        }
    }
    drop(stream);
    reader.stop().await;
    writer.stop().await;
}

/// A raw HTTP/1.1 request, answering the status and the head (lower-cased).
async fn raw_request(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head)
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_a_cross_site_logout_is_refused() {
    let app = spawn_app().await;
    let addr = app.http_addr;
    for path in ["/", "/login", "/assets/dashboard.css", "/no-such-page"] {
        let (_, head) = raw_request(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        for header in [
            "content-security-policy: default-src 'none'; script-src 'self';",
            "frame-ancestors 'none'",
            "x-frame-options: deny",
            "x-content-type-options: nosniff",
            "referrer-policy: no-referrer",
        ] {
            assert!(head.contains(header), "{path} lacks {header}: {head}");
        }
    }
    let logout = |origin: &str| {
        format!(
            "POST /logout HTTP/1.1\r\nHost: {addr}\r\n{origin}Content-Length: 0\r\n\
             Connection: close\r\n\r\n"
        )
    };
    let (status, head) = raw_request(addr, &logout("Origin: https://evil.example\r\n")).await;
    assert_eq!(status, 403, "{head}");
    assert!(!head.contains("set-cookie"), "{head}");
    let (status, head) = raw_request(addr, &logout(&format!("Origin: http://{addr}\r\n"))).await;
    assert_eq!(status, 303, "{head}");
    assert!(head.contains("set-cookie: diplog_token=;"), "{head}");
    app.stop().await;
}
