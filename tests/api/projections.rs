//! The projections over gRPC: what the founding report yields, read-your-writes, as-of
//! answers, and the incrementally maintained read models equal to a replay and to a rebuild,
//! on random histories.

use std::time::{Duration, Instant};

use diplog::import::{self, Item, OnInvalid, Origin, scenario};
use diplog::proto::{self, projections_client::ProjectionsClient};
use serde_json::{Value, json};
use tonic::Code;

use crate::helpers::{Serve, TestApp, database_url_for, head, import_founding, record, spawn_app};

async fn client(app: &TestApp) -> ProjectionsClient<tonic::transport::Channel> {
    ProjectionsClient::new(app.channel().await)
}

fn live(min_position: u64) -> Option<proto::ReadOptions> {
    Some(proto::ReadOptions {
        min_position,
        ..Default::default()
    })
}

fn as_of(position: u64) -> Option<proto::ReadOptions> {
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

fn day(time: &Option<proto::FuzzyTime>) -> String {
    match time.as_ref().and_then(|t| t.precision.clone()) {
        Some(proto::fuzzy_time::Precision::Day(day)) => day,
        other => format!("{other:?}"),
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

/// A small random generator (xorshift), so histories are reproducible from their seed.
struct Random(u64);

impl Random {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Aides and envoys beside the founding actors, so meetings can be delegations: (person,
/// office they act through or none, state). Yuri Ushakov acts through the Russian foreign
/// minister's office, so a meeting can name one office twice.
const AIDES: [(&str, Option<&str>, &str); 5] = [
    ("sergey-ryabkov", Some("rus.deputy-foreign-minister"), "RUS"),
    ("yuri-ushakov", Some("rus.foreign-minister"), "RUS"),
    ("kirill-dmitriev", None, "RUS"),
    (
        "christopher-landau",
        Some("usa.deputy-secretary-of-state"),
        "USA",
    ),
    ("andrii-sybiha", Some("ukr.foreign-minister"), "UKR"),
];

/// The registrations of `AIDES` (persons, and the offices the founding scenario lacks).
fn aides_registered(seed: u64) -> Vec<Item> {
    let mut actors: Vec<Value> = Vec::new();
    for (person, office, state) in AIDES {
        actors.push(json!({"id": person, "kind": "PERSON", "name": person, "country": state}));
        if let Some(office) = office.filter(|o| *o != "rus.foreign-minister") {
            actors.push(json!({"id": office, "kind": "OFFICE", "name": office, "country": state}));
        }
    }
    actors
        .into_iter()
        .map(|actor| {
            let id = actor["id"].as_str().unwrap().to_owned();
            let event = diplog::domain::diplomacy::DiplomaticEvent::from_json(
                json!({"actor_registered": {"actor": actor}}),
            )
            .expect("a registration");
            Item {
                origin: Origin::Record(format!("actor-{id}")),
                stream_id: format!("actor-{id}"),
                id: diplog::domain::diplomacy::derived_event_id(
                    &format!("random-{seed}"),
                    &format!("actor-{id}"),
                ),
                event,
            }
        })
        .collect()
}

/// A random history over the founding actors and `AIDES`: calls and meetings of delegations
/// (3 to 6 participants of 2 or 3 states; some corrected or retracted), changes of the
/// ministers' offices' holders (some corrected or retracted), channel steps (some establishing
/// a three-state format), summit steps and commitments. Invalid steps (say,
/// resuming a channel that is not suspended) are left for the importer to report, so what is
/// recorded is a valid history.
fn random_history(seed: u64, events: usize) -> Vec<Item> {
    let mut random = Random(seed | 1);
    let people = [
        ("sergey-lavrov", Some("rus.foreign-minister")),
        ("marco-rubio", Some("usa.secretary-of-state")),
        ("vladimir-putin", Some("rus.president")),
        ("donald-trump", Some("usa.president")),
        ("volodymyr-zelensky", Some("ukr.president")),
        ("RUS", None),
        ("USA", None),
        ("UKR", None),
    ];
    let levels = ["LEADERS", "MINISTERS", "EXPERTS"];
    // Everyone who can sit at a table, with their state.
    let states_of_people = ["RUS", "USA", "RUS", "USA", "UKR", "RUS", "USA", "UKR"];
    let delegates: Vec<(&str, Option<&str>, &str)> = people
        .iter()
        .zip(states_of_people)
        .map(|((actor, office), state)| (*actor, *office, state))
        .chain(AIDES)
        .collect();
    let mut items: Vec<Item> = aides_registered(seed);
    let mut interactions: Vec<(String, &str, diplog::domain::EventId)> = Vec::new();
    for n in 0..events {
        let day = format!(
            "2025-{:02}-{:02}",
            3 + random.below(9),
            1 + random.below(28)
        );
        let participant = |(actor, office): &(&str, Option<&str>)| match office {
            Some(office) => json!({"actor": actor, "acting_as": office}),
            None => json!({"actor": actor}),
        };
        let (stream, json): (String, Value) = match random.below(10) {
            0..=1 => {
                let a = random.pick(&people);
                let mut b = random.pick(&people);
                while b.0 == a.0 {
                    b = random.pick(&people);
                }
                let stream = format!("occurrence-random-{seed}-{n}");
                let json = json!({"occurred": {"day": day}, "sources": [{"source": "rus.mfa", "quotes": [{"text": "Разговор"}]}],
                    "call_held": {"participants": [participant(a), participant(b)], "level": random.pick(&levels)}});
                (stream, json)
            }
            2..=3 => {
                let stream = format!("occurrence-random-{seed}-{n}");
                let json = json!({"occurred": {"day": day}, "sources": [{"source": "rus.mfa", "quotes": [{"text": "Встреча"}]}],
                    "meeting_held": {"format": "MULTILATERAL", "participants": delegations(&mut random, &delegates), "level": random.pick(&levels)}});
                (stream, json)
            }
            4 if !interactions.is_empty() => {
                let (stream, kind, id) = random.pick(&interactions).clone();
                if random.below(2) == 0 {
                    (
                        stream,
                        json!({"event_retracted": {"event": id.to_string()}}),
                    )
                } else if kind == "OfficeHolderChanged" {
                    // Another holder or day, in the same office's stream.
                    let office = stream.trim_start_matches("actor-").to_owned();
                    let holder = loop {
                        let (candidate, holder) = holder_change(&mut random);
                        if candidate == office {
                            break holder;
                        }
                    };
                    (
                        stream,
                        json!({"event_corrected": {"event": id.to_string(), "replacement": {"occurred": {"day": day},
                        "office_holder_changed": {"office": office, "holder": holder}}}}),
                    )
                } else if kind == "CallHeld" {
                    let a = random.pick(&people);
                    let mut b = random.pick(&people);
                    while b.0 == a.0 {
                        b = random.pick(&people);
                    }
                    (
                        stream,
                        json!({"event_corrected": {"event": id.to_string(), "replacement": {"occurred": {"day": day}, "sources": [{"source": "rus.mfa"}],
                        "call_held": {"participants": [participant(a), participant(b)]}}}}),
                    )
                } else {
                    (
                        stream,
                        json!({"event_corrected": {"event": id.to_string(), "replacement": {"occurred": {"day": day}, "sources": [{"source": "rus.mfa"}],
                        "meeting_held": {"format": "MULTILATERAL", "participants": delegations(&mut random, &delegates)}}}}),
                    )
                }
            }
            5 => {
                let channel = format!("channel-random-{seed}-{}", random.below(3));
                let step = *random.pick(&[
                    "channel_established",
                    "channel_suspended",
                    "channel_resumed",
                    "channel_closed",
                ]);
                let body = if step == "channel_established" && random.below(4) == 0 {
                    // The format of three states, which three-state meetings also contact.
                    json!({"parties": ["UKR", "RUS", "USA"]})
                } else if step == "channel_established" {
                    json!({"parties": [random.pick(&people).1.unwrap_or("RUS"), random.pick(&people).1.unwrap_or("USA")]})
                } else {
                    json!({})
                };
                (
                    channel,
                    json!({"occurred": {"day": day}, "sources": [{"source": "rus.mfa"}], step: body}),
                )
            }
            6 | 7 => {
                let summit = format!("summit-random-{seed}-{}", random.below(3));
                let step = *random.pick(&[
                    "summit_proposed",
                    "summit_preparation_agreed",
                    "summit_scheduled",
                    "summit_postponed",
                    "summit_held",
                    "summit_cancelled",
                ]);
                let body = match step {
                    "summit_proposed" | "summit_preparation_agreed" => {
                        json!({"parties": ["RUS", "USA"]})
                    }
                    "summit_scheduled" => json!({"date": {"month": "2025-12"}}),
                    _ => json!({}),
                };
                (
                    summit,
                    json!({"occurred": {"day": day}, "sources": [{"source": "rus.mfa"}], step: body}),
                )
            }
            8 if random.below(2) == 0 => {
                let (office, holder) = holder_change(&mut random);
                (
                    format!("actor-{office}"),
                    json!({"occurred": {"day": day}, "office_holder_changed": {"office": office, "holder": holder}}),
                )
            }
            _ => {
                let commitment = format!("commitment-random-{seed}-{}", random.below(3));
                let json = match random.below(3) {
                    0 => json!({"occurred": {"day": day}, "sources": [{"source": "rus.mfa"}],
                        "commitment_stated": {"parties": ["RUS", "USA"], "what": "a step", "due": {"month": "2025-10"}}}),
                    1 if !interactions.is_empty() => {
                        // An occurrence, not a change of holder.
                        let occurrences: Vec<_> = interactions
                            .iter()
                            .filter(|(_, kind, _)| *kind != "OfficeHolderChanged")
                            .collect();
                        let (_, _, id) = if occurrences.is_empty() {
                            random.pick(&interactions)
                        } else {
                            *random.pick(&occurrences)
                        };
                        json!({"occurred": {"day": day}, "sources": [{"source": "rus.mfa"}],
                            "commitment_fulfilled": {"fulfilled_by": id.to_string()}})
                    }
                    _ => {
                        json!({"occurred": {"day": day}, "sources": [{"source": "rus.mfa"}], "commitment_withdrawn": {}})
                    }
                };
                (commitment, json)
            }
        };
        let Ok(event) = diplog::domain::diplomacy::DiplomaticEvent::from_json(json) else {
            continue;
        };
        let id =
            diplog::domain::diplomacy::derived_event_id(&format!("random-{seed}"), &n.to_string());
        if matches!(
            event.kind.name(),
            "CallHeld" | "MeetingHeld" | "OfficeHolderChanged"
        ) {
            interactions.push((stream.clone(), event.kind.name(), id));
        }
        items.push(Item {
            origin: Origin::Record(n.to_string()),
            stream_id: stream,
            id,
            event,
        });
    }
    items
}

/// A change of holder of one of the ministers' offices (to the minister or the deputy).
fn holder_change(random: &mut Random) -> (&'static str, &'static str) {
    *random.pick(&[
        ("usa.secretary-of-state", "marco-rubio"),
        ("usa.secretary-of-state", "christopher-landau"),
        ("rus.foreign-minister", "sergey-lavrov"),
        ("rus.foreign-minister", "sergey-ryabkov"),
    ])
}

/// The participants of a meeting of delegations: 3 to 6 of 2 or 3 states, each state's
/// delegation at least one of its `delegates` (person, office, state).
fn delegations(random: &mut Random, delegates: &[(&str, Option<&str>, &str)]) -> Value {
    let all = ["RUS", "USA", "UKR"];
    let start = random.below(3);
    let states: Vec<&str> = (0..2 + random.below(2))
        .map(|i| all[(start + i) % 3])
        .collect();
    let pool: Vec<_> = delegates
        .iter()
        .filter(|(_, _, state)| states.contains(state))
        .collect();
    let mut chosen: Vec<&(&str, Option<&str>, &str)> = states
        .iter()
        .map(|state| {
            let side: Vec<_> = pool.iter().filter(|d| d.2 == *state).collect();
            **random.pick(&side)
        })
        .collect();
    let size = 3 + random.below(4);
    for _ in 0..20 {
        if chosen.len() >= size {
            break;
        }
        let next = *random.pick(&pool);
        if !chosen.iter().any(|d| d.0 == next.0) {
            chosen.push(next);
        }
    }
    chosen
        .iter()
        .map(|(actor, office, _)| match office {
            Some(office) => json!({"actor": actor, "acting_as": office}),
            None => json!({"actor": actor}),
        })
        .collect()
}

/// Fails naming the first answer that differs and showing where.
fn assert_same(left: &[String], right: &[String], what: &str) {
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
fn without_age(answers: &[String]) -> Vec<String> {
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

async fn everything_at(
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
    for actor in ["RUS", "USA", "UKR", "sergey-lavrov", "usa.president"] {
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
        let app = spawn_app().await;
        import_founding(&app).await;
        let history = random_history(seed, 120);
        let count = |kind: &str| {
            history
                .iter()
                .filter(|item| item.event.kind.name() == kind)
                .count()
        };
        let (meetings, holders) = (count("MeetingHeld"), count("OfficeHolderChanged"));
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

    let server = Serve::on_database(&url).start().await;
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
        if status.projections.len() == 6 && status.projections.iter().all(|p| p.position >= head) {
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
