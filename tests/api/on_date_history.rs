//! The state on a day against the live answer, over random histories (calls and meetings of
//! delegations, corrections of their dates, retractions): an actor's timeline on day D holds
//! exactly the interactions of its live timeline whose date, as corrected since, had passed by
//! the end of D; and a day can only add to an earlier day's.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use diplog::domain::diplomacy::FuzzyTime;
use diplog::grpc::bridge;
use diplog::import::{self, OnInvalid};
use diplog::projections::read::on_date::end_of;
use diplog::proto::{self, projections_client::ProjectionsClient};

use crate::helpers::{head, import_founding, live, spawn_app};
use crate::random_history::random_history;

/// The event ids of `actor`'s timeline, read with `read`, with each one's date.
async fn timeline(
    projections: &mut ProjectionsClient<tonic::transport::Channel>,
    actor: &str,
    read: Option<proto::ReadOptions>,
) -> Vec<(String, Option<FuzzyTime>)> {
    let mut entries = Vec::new();
    let mut token = String::new();
    loop {
        let answer = projections
            .get_timeline(proto::ListRequest {
                read: read.clone(),
                actor: actor.to_owned(),
                page_size: 1000,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        for entry in answer.entries {
            let occurred = entry
                .occurred
                .as_ref()
                .map(|time| serde_json::from_value(bridge::to_json(time)).expect("a fuzzy time"));
            let origin = entry.origin.expect("an origin");
            entries.push((origin.event_id, occurred));
        }
        token = answer.info.unwrap().next_page_token;
        if token.is_empty() {
            return entries;
        }
    }
}

#[tokio::test]
async fn a_timeline_on_a_day_is_the_live_timeline_cut_at_that_day() {
    for seed in [5_u64, 31_337] {
        let app = spawn_app().await;
        import_founding(&app).await;
        let history = random_history(seed, 150);
        let corrections = history
            .iter()
            .filter(|item| item.event.kind.name() == "EventCorrected")
            .count();
        assert!(corrections > 3, "seed {seed}: {corrections} corrections");
        import::import(app.channel().await, history, OnInvalid::Report)
            .await
            .expect("imported");
        let head = head(&app).await;
        let mut projections = ProjectionsClient::new(app.channel().await);
        for actor in ["RUS", "USA", "sergey-lavrov"] {
            let now = timeline(&mut projections, actor, live(head)).await;
            assert!(
                now.len() > 10,
                "seed {seed}, {actor}: {} entries",
                now.len()
            );
            let mut before: BTreeSet<String> = BTreeSet::new();
            let mut cut_somewhere = false;
            for day in [
                "2025-02-14",
                "2025-03-01",
                "2025-05-15",
                "2025-08-31",
                "2025-12-31",
            ] {
                let end = end_of(day.parse::<NaiveDate>().unwrap());
                let expected: Vec<String> = now
                    .iter()
                    .filter(|(_, occurred)| occurred.as_ref().is_none_or(|t| t.end() <= end))
                    .map(|(id, _)| id.clone())
                    .collect();
                let on_day = Some(proto::ReadOptions {
                    on_day: day.to_owned(),
                    ..Default::default()
                });
                let got: Vec<String> = timeline(&mut projections, actor, on_day)
                    .await
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect();
                assert_eq!(got, expected, "seed {seed}, {actor}, on {day}");
                cut_somewhere |= !got.is_empty() && got.len() < now.len();
                let set: BTreeSet<String> = got.into_iter().collect();
                assert!(
                    before.is_subset(&set),
                    "seed {seed}, {actor}: {day} lost entries"
                );
                before = set;
            }
            assert!(
                cut_somewhere,
                "seed {seed}, {actor}: no day cut the timeline"
            );
        }
        app.stop().await;
    }
}
