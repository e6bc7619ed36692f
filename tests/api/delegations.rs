//! `scenarios/delegations-meeting.yaml` through gRPC: after the founding call, the Riyadh
//! meeting of two delegations of three is a contact of every pair across the table (the
//! ministers' channel among them), never a channel of one side or of the whole room; relations
//! count it once; the timeline has it once with its six participants.

use diplog::import::{self, OnInvalid, scenario};
use diplog::proto::{self, projections_client::ProjectionsClient};

use crate::helpers::{day, head, import_founding, live, spawn_app};

const SCENARIO: &str = include_str!("../../scenarios/delegations-meeting.yaml");

#[tokio::test]
async fn the_delegations_meeting_is_a_contact_of_every_pair_across_the_table() {
    let app = spawn_app().await;
    import_founding(&app).await;
    let parsed = scenario::parse(SCENARIO).expect("the delegations scenario parses");
    let meeting = parsed
        .items
        .iter()
        .find(|item| item.event.kind.name() == "MeetingHeld")
        .expect("the meeting")
        .id
        .to_string();
    let report = import::import(app.channel().await, parsed.items, OnInvalid::RefuseAll)
        .await
        .expect("the delegations scenario imports after the founding one");
    assert_eq!(report.written, 8);
    let head = head(&app).await;
    let mut projections = ProjectionsClient::new(app.channel().await);

    let channels = projections
        .list_channels(proto::ListRequest {
            read: live(head),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .channels;
    let ministers = channels
        .iter()
        .find(|c| c.key == "rus.foreign-minister+usa.secretary-of-state")
        .expect("the ministers' channel");
    assert_eq!(
        (ministers.contacts, ministers.last_contact_by.as_str()),
        (2, meeting.as_str())
    );
    assert_eq!(day(&ministers.established_on), "2025-02-15");
    // The offices' holders at the last contact, by the founding scenario's holder changes.
    let holders: Vec<&str> = ministers
        .parties
        .iter()
        .map(|p| p.holder_name.as_str())
        .collect();
    assert_eq!(holders, ["Sergey Lavrov", "Marco Rubio"]);
    assert_eq!(day(&ministers.last_contact_on), "2025-02-18");
    for russian in [
        "kirill-dmitriev",
        "rus.foreign-minister",
        "rus.presidential-aide",
    ] {
        for american in [
            "usa.national-security-advisor",
            "usa.secretary-of-state",
            "usa.special-envoy-middle-east",
        ] {
            let key = format!("{russian}+{american}");
            let channel = channels
                .iter()
                .find(|c| c.key == key)
                .unwrap_or_else(|| panic!("channel {key}"));
            assert_eq!(channel.last_contact_by, meeting, "{key}");
        }
    }
    // The founding report's three channels and the meeting's eight new ones: none of one side.
    assert_eq!(channels.len(), 11, "{channels:?}");
    for channel in &channels {
        assert_eq!(channel.parties.len(), 2, "{}", channel.key);
        assert_ne!(
            channel.parties[0].state, channel.parties[1].state,
            "{}",
            channel.key
        );
    }

    let relations = projections
        .get_relations(proto::ListRequest {
            read: live(head),
            state_pair: Some(proto::StatePair {
                a: "RUS".into(),
                b: "USA".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let pair = &relations.relations[0];
    assert_eq!(
        pair.contacts, 3,
        "the two founding calls and the meeting, once"
    );
    assert_eq!(pair.contacts_by_level.get("MINISTERS"), Some(&2));
    assert_eq!(pair.last_contact.as_ref().unwrap().event_id, meeting);

    let timeline = projections
        .get_timeline(proto::ListRequest {
            read: live(head),
            actor: "kirill-dmitriev".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(timeline.entries.len(), 1);
    let entry = &timeline.entries[0];
    assert_eq!(
        (entry.kind.as_str(), entry.participants.len()),
        ("MeetingHeld", 6)
    );
    let russia = projections
        .get_timeline(proto::ListRequest {
            read: live(head),
            actor: "RUS".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        russia.entries.len(),
        3,
        "the Putin-Trump call, the Rubio-Lavrov call and the meeting"
    );
    app.stop().await;
}
