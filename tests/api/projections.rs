//! The projections over gRPC: what the founding report yields, read-your-writes, as-of
//! answers, and the incrementally maintained read models equal to a replay and to a rebuild,
//! on random histories.

use std::time::{Duration, Instant};

use diplog::import::{self, OnInvalid, scenario};
use diplog::proto::{self, projections_client::ProjectionsClient};
use serde_json::{Value, json};
use tonic::Code;

use crate::helpers::{
    Serve, TestApp, database_url_for, day, head, import_founding, live, record, spawn_app,
};
use crate::random_history::random_history;

async fn client(app: &TestApp) -> ProjectionsClient<tonic::transport::Channel> {
    ProjectionsClient::new(app.channel().await)
}

pub(crate) fn as_of(position: u64) -> Option<proto::ReadOptions> {
    Some(proto::ReadOptions {
        as_of: Some(proto::read_options::AsOf::AsOfPosition(position)),
        ..Default::default()
    })
}

fn list(read: Option<proto::ReadOptions>) -> proto::ListRequest {
    proto::ListRequest {
        read,
        ..Default::default()
    }
}

#[tokio::test]
async fn the_founding_report_yields_its_channels_summit_commitment_and_divergence() {
    let app = spawn_app().await;
    let head = import_founding(&app).await;
    let mut projections = client(&app).await;

    let channels = projections
        .list_channels(list(live(head)))
        .await
        .unwrap()
        .into_inner();
    assert!(channels.info.as_ref().unwrap().position >= head);
    let ministers = channels
        .channels
        .iter()
        .find(|c| c.key == "rus.foreign-minister+usa.secretary-of-state")
        .expect("Lavrov-Rubio");
    assert_eq!(day(&ministers.established_on), "2025-02-15");
    let names: Vec<&str> = ministers.parties.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Minister of Foreign Affairs of Russia",
            "United States Secretary of State"
        ]
    );
    let presidents = channels
        .channels
        .iter()
        .find(|c| c.key == "rus.president+usa.president")
        .expect("Putin-Trump");
    assert_eq!(day(&presidents.established_on), "2025-02-12");

    let summits = projections
        .list_summits(proto::ListRequest {
            read: live(head),
            pending_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let summit = summits
        .summits
        .iter()
        .find(|s| s.key == "summit-rus-usa-2025")
        .expect("the Russia-US summit");
    assert_eq!(
        (summit.stage.as_str(), day(&summit.since)),
        ("PREPARATION_AGREED", "2025-02-15".to_owned())
    );

    let commitments = projections
        .list_commitments(list(live(head)))
        .await
        .unwrap()
        .into_inner();
    let expert = &commitments.commitments[0];
    assert!(expert.what.contains("meeting of experts"), "{expert:?}");
    assert_eq!(day(&expert.stated_on), "2025-02-15");
    assert!(expert.due_text.contains("very soon"));
    assert!(["PENDING", "LAPSED"].contains(&expert.status.as_str()));

    let divergence = projections
        .get_divergence(proto::GetRequest {
            read: live(head),
            key: "occurrence-2025-02-15-rubio-lavrov-call".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let call = &divergence.divergences[0];
    assert_eq!(call.kind, "CallHeld");
    let only = |source: &str| -> Vec<&str> {
        call.single_source
            .iter()
            .filter(|c| c.sources[0].source == source)
            .map(|c| c.key.as_str())
            .collect()
    };
    assert!(
        only("rus.mfa").contains(&"palestine-and-middle-east"),
        "{:?}",
        only("rus.mfa")
    );
    assert!(only("usa.state-department").contains(&"bilateral-issues"));
    assert!(
        call.reports
            .iter()
            .any(|r| r.quotes.iter().any(|q| q.text.contains("Палестины")))
    );

    let relations = projections
        .get_relations(proto::ListRequest {
            read: live(head),
            state_pair: Some(proto::StatePair {
                a: "USA".into(),
                b: "RUS".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let pair = &relations.relations[0];
    assert_eq!(pair.contacts, 2);
    assert_eq!(pair.contacts_by_level.get("MINISTERS"), Some(&1));
    assert_eq!(pair.open_channels.len(), 2);

    let timeline = projections
        .get_timeline(proto::ListRequest {
            read: live(head),
            actor: "sergey-lavrov".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(timeline.entries.len(), 1);
    app.stop().await;
}

fn ministers_call(day: &str) -> Value {
    json!({
        "occurred": {"day": day},
        "sources": [{"source": "rus.mfa", "quotes": [{"text": "Состоялся телефонный разговор"}]}],
        "call_held": {"participants": [{"actor": "sergey-lavrov", "acting_as": "rus.foreign-minister"},
                                       {"actor": "marco-rubio", "acting_as": "usa.secretary-of-state"}],
                      "level": "MINISTERS"}
    })
}

fn ministers_contacts(list: &proto::ChannelList) -> u32 {
    list.channels
        .iter()
        .find(|c| c.key == "rus.foreign-minister+usa.secretary-of-state")
        .map_or(0, |c| c.contacts)
}

#[tokio::test]
async fn a_query_with_a_minimum_position_sees_the_write_it_follows_or_times_out() {
    let app = spawn_app().await;
    import_founding(&app).await;
    let mut projections = client(&app).await;
    for round in 0..5 {
        let (_, position) = record(
            &app,
            &format!("occurrence-call-{round}"),
            ministers_call("2025-03-10"),
        )
        .await;
        let channels = projections
            .list_channels(list(live(position)))
            .await
            .unwrap()
            .into_inner();
        assert!(channels.info.as_ref().unwrap().position >= position);
        assert_eq!(
            ministers_contacts(&channels),
            2 + round,
            "the call just recorded counts"
        );
    }

    // A position the log has not reached: the call waits for its deadline, then says so.
    let mut request = tonic::Request::new(list(live(head(&app).await + 1000)));
    request.set_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let status = projections.list_channels(request).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited {:?}",
        started.elapsed()
    );
    app.stop().await;
}

/// Projections and `as of` replays read the log a window at a time (a page may look at only so
/// many positions, see `store::read::paging`): a diplomatic event after a long stretch of other
/// events (more than a window: 16 pages of 512, and 16 batches of 1000) is still applied and
/// replayed.
#[tokio::test]
async fn diplomatic_events_past_a_long_stretch_of_other_events_are_projected_and_replayed() {
    let app = spawn_app().await;
    let before = import_founding(&app).await;
    for _ in 0..17 {
        let ticks: Vec<_> = (0..1000).map(|_| ("Tick", r#"{"n": 1}"#)).collect();
        app.append("ticks", crate::helpers::Expect::Any, &ticks)
            .await
            .unwrap();
    }
    let (_, after) = record(
        &app,
        "occurrence-2025-03-10-call",
        ministers_call("2025-03-10"),
    )
    .await;
    assert!(after > before + 17_000);
    let mut projections = client(&app).await;

    let live = projections
        .list_channels(list(live(after)))
        .await
        .unwrap()
        .into_inner();
    let replayed = projections
        .list_channels(list(as_of(after)))
        .await
        .unwrap()
        .into_inner();
    let replayed_before = projections
        .list_channels(list(as_of(after - 1)))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(ministers_contacts(&live), 2);
    assert_eq!(ministers_contacts(&replayed), 2);
    assert_eq!(ministers_contacts(&replayed_before), 1);
    app.stop().await;
}

#[tokio::test]
async fn an_as_of_answer_shows_what_the_log_held_then() {
    let app = spawn_app().await;
    let before = import_founding(&app).await;
    let (_, after) = record(
        &app,
        "occurrence-2025-03-10-call",
        ministers_call("2025-03-10"),
    )
    .await;
    let mut projections = client(&app).await;
    let now = projections
        .list_channels(list(live(after)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ministers_contacts(&now), 2);
    let then = projections
        .list_channels(list(as_of(before)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(then.info.as_ref().unwrap().position, before);
    assert_eq!(ministers_contacts(&then), 1);
    // The same by time: the moment the founding report's last event was recorded.
    let recorded: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select recorded_at from events where position = $1")
            .bind(before as i64)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let by_time = proto::ReadOptions {
        min_position: 0,
        as_of: Some(proto::read_options::AsOf::AsOfTime(
            prost_types::Timestamp {
                seconds: recorded.timestamp(),
                nanos: recorded.timestamp_subsec_nanos() as i32,
            },
        )),
        ..Default::default()
    };
    let then_by_time = projections
        .list_channels(list(Some(by_time)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(then_by_time.channels, then.channels);
    app.stop().await;
}

/// Fails naming the first answer that differs and showing where.
pub(crate) fn assert_same(left: &[String], right: &[String], what: &str) {
    assert_eq!(left.len(), right.len(), "{what}");
    for (index, (l, r)) in left.iter().zip(right).enumerate() {
        if l != r {
            let at = l.chars().zip(r.chars()).take_while(|(a, b)| a == b).count();
            let window = |s: &str| {
                s.chars()
                    .skip(at.saturating_sub(300))
                    .take(600)
                    .collect::<String>()
            };
            panic!(
                "{what}: answer {index} differs at {at}:\n left: …{}…\nright: …{}…",
                window(l),
                window(r)
            );
        }
    }
}

/// The answers with every `age_days` blanked (it depends on the day the test runs).
pub(crate) fn without_age(answers: &[String]) -> Vec<String> {
    answers
        .iter()
        .map(|answer| {
            let mut out = String::with_capacity(answer.len());
            let mut rest = answer.as_str();
            while let Some(at) = rest.find("age_days: ") {
                out.push_str(&rest[..at + "age_days: ".len()]);
                rest = rest[at + "age_days: ".len()..]
                    .trim_start_matches(|c: char| c.is_ascii_digit() || c == '-');
                out.push('_');
            }
            out.push_str(rest);
            out
        })
        .collect()
}

/// Every projection's lists, live (after waiting for `position`) or as of it.
async fn everything(app: &TestApp, read: Option<proto::ReadOptions>) -> Vec<String> {
    everything_at(app.channel().await, read).await
}

pub(crate) async fn everything_at(
    channel: tonic::transport::Channel,
    read: Option<proto::ReadOptions>,
) -> Vec<String> {
    let mut projections = ProjectionsClient::new(channel);
    let all = |read: Option<proto::ReadOptions>| proto::ListRequest {
        read,
        page_size: 1000,
        ..Default::default()
    };
    let mut answers = vec![
        format!(
            "{:?}",
            projections
                .list_channels(all(read.clone()))
                .await
                .unwrap()
                .into_inner()
                .channels
        ),
        format!(
            "{:?}",
            projections
                .list_summits(all(read.clone()))
                .await
                .unwrap()
                .into_inner()
                .summits
        ),
        format!(
            "{:?}",
            projections
                .list_commitments(all(read.clone()))
                .await
                .unwrap()
                .into_inner()
                .commitments
        ),
        format!(
            "{:?}",
            projections
                .list_relations(all(read.clone()))
                .await
                .unwrap()
                .into_inner()
                .relations
        ),
        format!(
            "{:?}",
            projections
                .list_divergences(all(read.clone()))
                .await
                .unwrap()
                .into_inner()
                .divergences
        ),
    ];
    // Readouts and coded records apart (both is above).
    for records in [proto::Records::Readouts, proto::Records::Coded] {
        let request = proto::ListRequest {
            records: records.into(),
            ..all(read.clone())
        };
        answers.push(format!(
            "{:?}",
            projections
                .list_relations(request)
                .await
                .unwrap()
                .into_inner()
                .relations
        ));
    }
    for actor in [
        "RUS",
        "USA",
        "UKR",
        "sergey-lavrov",
        "usa.president",
        "rus.foreign-minister",
        "rus.mfa",
    ] {
        let request = proto::ListRequest {
            actor: actor.into(),
            ..all(read.clone())
        };
        answers.push(format!(
            "{:?}",
            projections
                .get_timeline(request)
                .await
                .unwrap()
                .into_inner()
                .entries
        ));
    }
    answers
}

#[tokio::test]
async fn incremental_read_models_equal_a_replay_and_a_rebuild_on_random_histories() {
    for seed in [7_u64, 1_234_567, 99_991] {
        // As-of answers by a replay of the log from its start: the independent answer.
        let mut config = diplog::config::ServerConfig::ephemeral();
        config.projections.as_of_from = diplog::config::AsOfFrom::Replay;
        let app =
            crate::helpers::spawn_app_with(crate::helpers::fresh_database().await, config).await;
        import_founding(&app).await;
        let history = random_history(seed, 120);
        let count = |kind: &str| {
            history
                .iter()
                .filter(|item| item.event.kind.name() == kind)
                .count()
        };
        let (meetings, holders) = (count("MeetingHeld"), count("OfficeHolderChanged"));
        assert!(
            count("CodedEventReported") > 5,
            "seed {seed}: coded records in the history"
        );
        let report = import::import(app.channel().await, history, OnInvalid::Report)
            .await
            .expect("imported");
        assert!(
            report.written > 40,
            "seed {seed}: only {} of 120 were valid: {:?}",
            report.written,
            report.reported
        );
        // Every delegations meeting and change of holder is valid (only amendments of refused
        // events may fail).
        assert!(
            meetings > 10
                && holders > 2
                && report.reported.iter().all(|p| {
                    !p.field.starts_with("meeting_held")
                        && !p.field.starts_with("coded_event_reported")
                        && !p.field.starts_with("office_holder_changed")
                        && !p.field.starts_with("event_corrected.replacement.office")
                        && !p.message.contains("OfficeHolderChanged")
                }),
            "seed {seed}: {meetings} meetings, {holders} changes of holder: {:?}",
            report.reported
        );
        let position = head(&app).await;

        // The replay's answers are about the head's recorded time, the live ones about now: a
        // few seconds apart, after every event of the history; only `age_days` may differ (if
        // the test runs across midnight), so it is left out of the comparison.
        let incremental = without_age(&everything(&app, live(position)).await);
        let replayed = without_age(&everything(&app, as_of(position)).await);
        assert_same(
            &incremental,
            &replayed,
            &format!("seed {seed}: the incremental read models equal a replay at the head"),
        );

        // A rebuild from zero gives the same read models.
        let mut projections = client(&app).await;
        let before: Vec<u64> = projections
            .get_status(())
            .await
            .unwrap()
            .into_inner()
            .projections
            .iter()
            .map(|p| p.generation)
            .collect();
        for name in [
            "channels",
            "summits",
            "commitments",
            "timeline",
            "relations",
            "divergence",
            "search",
        ] {
            projections
                .rebuild(proto::RebuildRequest { name: name.into() })
                .await
                .unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = projections.get_status(()).await.unwrap().into_inner();
            let generations: Vec<u64> = status.projections.iter().map(|p| p.generation).collect();
            if generations.iter().zip(&before).all(|(now, was)| now > was) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "seed {seed}: rebuilds did not finish: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let rebuilt = without_age(&everything(&app, live(position)).await);
        assert_same(
            &rebuilt,
            &incremental,
            &format!("seed {seed}: a rebuild equals the incremental read models"),
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn a_server_killed_while_projecting_applies_nothing_twice_after_a_restart() {
    // Only `diplog serve` processes run on this database, so theirs are the only runners.
    let database = crate::helpers::fresh_database().await;
    let url = database_url_for(&database);
    let mut server = Serve::on_database(&url).start().await;
    let channel = server.channel().await;
    let parsed = scenario::parse(scenario::FOUNDING_SCENARIO).unwrap();
    import::import(channel.clone(), parsed.items, OnInvalid::RefuseAll)
        .await
        .unwrap();
    import::import(
        channel.clone(),
        random_history(424_242, 400),
        OnInvalid::Report,
    )
    .await
    .unwrap();
    // Killed outright (no shutdown) while its runners are still working through the log.
    let status = ProjectionsClient::new(channel.clone())
        .get_status(())
        .await
        .unwrap()
        .into_inner();
    server.child.start_kill().unwrap();
    let behind: Vec<(String, u64, u64)> = status
        .projections
        .iter()
        .map(|p| (p.name.clone(), p.position, p.head))
        .collect();
    println!("at the kill: {behind:?}");
    server.child.wait().await.unwrap();

    // As-of answers by a replay of the log from its start: the independent answer.
    let server = Serve::on_database(&url)
        .arg("--as-of-from")
        .arg("replay")
        .start()
        .await;
    let channel = server.channel().await;
    let head = proto::event_log_client::EventLogClient::new(channel.clone())
        .get_head(())
        .await
        .unwrap()
        .into_inner()
        .position as u64;
    let mut projections = ProjectionsClient::new(channel.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = projections.get_status(()).await.unwrap().into_inner();
        if status.projections.len() == diplog::projections::NAMES.len()
            && status.projections.iter().all(|p| p.position >= head)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the projections did not catch up: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // What the restarted server's read models hold equals a fresh replay of the log: had an
    // event been applied twice (or skipped), a count would differ.
    let incremental = without_age(&everything_at(channel.clone(), live(head)).await);
    let replayed = without_age(&everything_at(channel, as_of(head)).await);
    assert_same(&incremental, &replayed, "after a kill -9 and a restart");
}

#[tokio::test]
async fn bad_projection_queries_name_the_field() {
    let app = spawn_app().await;
    let mut projections = client(&app).await;
    let status = projections
        .get_summit(proto::GetRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(crate::helpers::violated_fields(&status), ["key"]);
    let status = projections
        .list_channels(proto::ListRequest {
            status: vec!["OPENISH".into()],
            page_size: 5000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(crate::helpers::violated_fields(&status), ["status"]);
    let status = projections
        .list_commitments(proto::ListRequest {
            state_pair: Some(proto::StatePair {
                a: "RUS".into(),
                b: "XXX".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(crate::helpers::violated_fields(&status), ["state_pair"]);
    let status = projections
        .rebuild(proto::RebuildRequest {
            name: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(crate::helpers::violated_fields(&status), ["name"]);
    app.stop().await;
}
