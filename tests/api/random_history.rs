//! Random histories for the projections' property test: reproducible from a seed, over the
//! founding actors and a few aides and envoys, with meetings of delegations, coded records
//! (PLOVER-style, between states, offices, people and an organisation), changes of office
//! holders, channel, summit and commitment steps, and amendments of them.

use diplog::import::{Item, Origin};
use serde_json::{Value, json};

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
            // Levels, so interactions that give none derive theirs from these offices.
            let level = if office.contains("deputy") {
                "DEPUTIES"
            } else {
                "MINISTERS"
            };
            actors.push(
                json!({"id": office, "kind": "OFFICE", "name": office, "country": state,
                "level": level}),
            );
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
pub fn random_history(seed: u64, events: usize) -> Vec<Item> {
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
        let (stream, json): (String, Value) = match random.below(12) {
            10 | 11 => (
                format!("occurrence-random-{seed}-{n}"),
                coded_record(&mut random, &day),
            ),
            0..=1 => {
                let a = random.pick(&people);
                let mut b = random.pick(&people);
                while b.0 == a.0 {
                    b = random.pick(&people);
                }
                let stream = format!("occurrence-random-{seed}-{n}");
                let mut call = json!({"participants": [participant(a), participant(b)]});
                // Some calls leave their level to the offices; some are rounds of a track.
                if random.below(3) > 0 {
                    call["level"] = json!(random.pick(&levels));
                }
                if random.below(2) == 0 {
                    call["format"] = json!("VIDEO");
                    call["track"] = json!("rus-usa-missions");
                    call["round"] = json!(1 + random.below(5));
                }
                let json = json!({"occurred": {"day": day}, "sources": [{"source": "rus.mfa", "quotes": [{"text": "Разговор"}]}],
                    "call_held": call});
                (stream, json)
            }
            2..=3 => {
                let stream = format!("occurrence-random-{seed}-{n}");
                let mut meeting = json!({"format": "MULTILATERAL", "participants": delegations(&mut random, &delegates),
                    "place": {"name": "Istanbul", "country": "TUR"}});
                if random.below(3) > 0 {
                    meeting["level"] = json!(random.pick(&levels));
                }
                let json = json!({"occurred": {"day": day}, "sources": [{"source": "rus.mfa", "quotes": [{"text": "Встреча"}]}],
                    "meeting_held": meeting});
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
                } else if kind == "CodedEventReported" {
                    let mut replacement = coded_record(&mut random, &day);
                    replacement.as_object_mut().unwrap().remove("sources");
                    (
                        stream,
                        json!({"event_corrected": {"event": id.to_string(), "replacement": replacement}}),
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
            "CallHeld" | "MeetingHeld" | "OfficeHolderChanged" | "CodedEventReported"
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

/// A coded record (as the PLOVER importer writes one): 1 or 2 sources and 0 to 2 targets among
/// states, offices, people and an organisation, of a random PLOVER type, sometimes with a mode.
fn coded_record(random: &mut Random, day: &str) -> Value {
    let actors = [
        "RUS",
        "USA",
        "UKR",
        "rus.foreign-minister",
        "usa.secretary-of-state",
        "ukr.foreign-minister",
        "sergey-ryabkov",
        "christopher-landau",
        "rus.mfa",
    ];
    fn pick(random: &mut Random, actors: &[&str], count: usize) -> Vec<Value> {
        let mut chosen: Vec<&str> = Vec::new();
        for _ in 0..count {
            let actor = *random.pick(actors);
            if !chosen.contains(&actor) {
                chosen.push(actor);
            }
        }
        chosen.iter().map(|actor| json!({"actor": actor})).collect()
    }
    let count = 1 + random.below(2);
    let sources = pick(random, &actors, count);
    let count = random.below(3);
    let targets = pick(random, &actors, count);
    let plover_type = *random.pick(&["CONSULT", "AGREE", "AID", "REJECT", "SANCTION", "THREATEN"]);
    let mut coding = json!({"plover_type": plover_type});
    if plover_type == "CONSULT" && random.below(2) == 0 {
        coding["plover_mode"] = json!("phone");
    }
    json!({"occurred": {"day": day}, "coding": coding,
        "sources": [{"source": "rus.mfa", "quotes": [{"text": "coded"}]}],
        "coded_event_reported": {"sources": sources, "targets": targets, "location": "Geneva"}})
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
