//! `diplog bench` end to end at a tiny size: every section is measured and reported with
//! positive figures, and the scratch schema is gone afterwards. Not a timed test: the
//! figures themselves are not checked.

use diplog::bench::{BenchArgs, measure};
use sqlx::{ConnectOptions, Connection};

use crate::helpers::fresh_database;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_bench_reports_every_section_with_positive_figures() {
    let options = fresh_database().await;
    let args = BenchArgs {
        database_url: None,
        events: Some(40),
        batch: vec![1, 10],
        clients: vec![1, 4],
        servers: vec![1, 3],
        skip: Vec::new(),
        // Above what the appends write on both server counts, so the rebuild has a bulk load.
        rebuild_events: Some(2000),
        subscription_appends: Some(10),
        subscribers: Some(vec![1, 3]),
        as_of_max_rss_mib: 8192,
        import_rows: Some(200),
        import_chunk_rows: 50,
        quick: true,
        json: true,
    };

    let report = measure(&args, options.clone(), "url")
        .await
        .expect("the bench runs");

    let json = serde_json::to_value(&report).expect("the report serializes");
    for section in [
        "machine",
        "appends",
        "copy_in_events_per_sec",
        "read",
        "rebuild",
        "subscription",
        "as_of",
        "import",
        "peak_rss",
    ] {
        assert!(json.get(section).is_some(), "no {section} in {json:#}");
    }
    // Every generated GDELT row imported, faster than nothing.
    assert_eq!(json["import"]["rows"], 200, "{json:#}");
    assert!(json["import"]["rows_per_sec"].as_f64().unwrap() > 0.0);
    assert!(json["import"]["events_written"].as_u64().unwrap() > 200);
    // Two append sizes at two concurrencies, with one server and with three.
    let appends = json["appends"].as_array().expect("appends listed");
    assert_eq!(appends.len(), 8, "{json:#}");
    let servers: Vec<u64> = appends
        .iter()
        .filter_map(|run| run["servers"].as_u64())
        .collect();
    assert_eq!(servers, [1, 1, 1, 1, 3, 3, 3, 3], "{json:#}");
    // Typed records run against one server only.
    for field in ["record_events_per_sec", "record_projections_lag_secs"] {
        assert!(appends[..4].iter().all(|run| run[field].is_number()));
        assert!(appends[4..].iter().all(|run| run[field].is_null()));
    }
    let mut numbers = Vec::new();
    collect_numbers("", &json, &mut numbers);
    for (path, value) in numbers {
        // A subscriber may get an event before its append's response reaches the writer:
        // those count as 0 ms, and may be all of them.
        // As-of totals count what the bench's log holds: no summits or commitments.
        let may_be_zero = path.starts_with("/subscription/")
            || (path.starts_with("/as_of/answers/") && path.ends_with("total"));
        assert!(
            value > 0.0 || (may_be_zero && value >= 0.0),
            "{path} is {value} in {json:#}"
        );
    }
    assert_eq!(json["rebuild"]["events"], 2000, "{json:#}");
    // The read-back every way (the bench checked each read the whole log), each against COPY.
    for ratio in [
        "ratio",
        "batched_ratio",
        "stream_ratio",
        "subscribe_ratio",
        "subscribe_typed_ratio",
        "export_ratio",
    ] {
        assert!(
            json["read"][ratio].as_f64().unwrap() > 0.0,
            "{ratio}: {json:#}"
        );
    }
    assert!(json["read"]["streams"].as_u64().unwrap() > 1, "{json:#}");
    assert_eq!(
        json["read"]["passes"][1].as_object().map(|p| p.len()),
        Some(7)
    );
    // One subscription run per subscriber count, every receipt of every append counted.
    let subscriptions = json["subscription"].as_array().expect("runs listed");
    let counts: Vec<u64> = subscriptions
        .iter()
        .filter_map(|run| run["subscribers"].as_u64())
        .collect();
    assert_eq!(counts, [1, 3], "{json:#}");
    assert_eq!(subscriptions[1]["latency"]["samples"], 30, "{json:#}");
    // Every projection that answers as of a position did, at 90% of the log's head, twice.
    assert_eq!(json["as_of"]["head"], 2000, "{json:#}");
    assert_eq!(json["as_of"]["position"], 1800, "{json:#}");
    let answers = json["as_of"]["answers"].as_array().expect("answers listed");
    assert_eq!(answers.len(), 6, "{json:#}");
    assert!(
        answers
            .iter()
            .all(|answer| answer["stopped_at_rss_mib"].is_null()
                && answer["again_secs"].is_number()
                && answer["live_secs"].is_number()),
        "{json:#}"
    );
    let channels = &answers[0];
    assert_eq!(channels["projection"], "channels", "{json:#}");
    assert!(channels["total"].as_u64().unwrap() > 0, "{json:#}");
    assert!(
        channels["live_total"].as_u64().unwrap() >= channels["total"].as_u64().unwrap(),
        "{json:#}"
    );
    assert_eq!(json["read"]["events"], 2000, "{json:#}");

    let mut connection = options.connect().await.expect("connects");
    let schemas: i64 = sqlx::query_scalar(
        "select count(*) from information_schema.schemata where schema_name like 'diplog_bench_%'",
    )
    .fetch_one(&mut connection)
    .await
    .expect("schemas listed");
    assert_eq!(schemas, 0, "the scratch schema was left behind");
    connection.close().await.ok();
}

/// Every number in `value`, with its JSON pointer.
fn collect_numbers(path: &str, value: &serde_json::Value, out: &mut Vec<(String, f64)>) {
    match value {
        serde_json::Value::Number(number) => out.push((path.to_owned(), number.as_f64().unwrap())),
        serde_json::Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                collect_numbers(&format!("{path}/{index}"), item, out);
            }
        }
        serde_json::Value::Object(fields) => {
            for (key, item) in fields {
                collect_numbers(&format!("{path}/{key}"), item, out);
            }
        }
        _ => {}
    }
}
