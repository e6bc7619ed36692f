//! The search model: which configuration a text gets, which texts an event yields, and
//! retractions and corrections taking documents out and in.

use super::*;
use crate::projections::testing::{founding_facts, replay, replay_settling, sorted_rows};

#[test]
fn the_language_tag_chooses_the_configuration_else_the_script() {
    assert_eq!(config_for(Some("ru"), "anything"), "russian");
    assert_eq!(config_for(Some("en-GB"), "что угодно"), "english");
    assert_eq!(config_for(Some("fr"), ""), "french");
    assert_eq!(config_for(Some("de"), ""), "german");
    assert_eq!(config_for(Some("nb"), ""), "norwegian");
    // A language PostgreSQL has no stemmer for is not stemmed as another language.
    assert_eq!(config_for(Some("uk"), "Україна"), "simple");
    assert_eq!(config_for(Some("zh"), "中国"), "simple");
    assert_eq!(
        config_for(None, "Договорились о регулярных контактах"),
        "russian"
    );
    assert_eq!(config_for(None, "Regular contacts (Россия)"), "english");
    assert_eq!(config_for(None, "Россия и США: talks"), "russian");
    assert_eq!(config_for(None, "中国和美国"), "simple");
    assert_eq!(config_for(None, "2025"), "simple");
    for (_, config) in LANGUAGES {
        assert!(CONFIGS.contains(config), "{config}");
    }
}

#[test]
fn the_migration_indexes_every_configuration() {
    let migration = include_str!("../../../migrations/20261206000000_search.sql");
    for config in CONFIGS {
        assert!(
            migration.contains(&format!("when '{config}' then to_tsvector('{config}'")),
            "{config}"
        );
    }
}

fn event(json: serde_json::Value) -> DiplomaticEvent {
    DiplomaticEvent::from_json(json).expect("a valid event")
}

#[test]
fn an_event_yields_its_quotes_translations_claims_and_kind_texts() {
    let found = texts(&event(serde_json::json!({
        "sources": [{
            "source": "rus.mfa",
            "language": "ru",
            "title": "Заголовок",
            "quotes": [
                {"text": "Договорились о регулярных контактах", "translation": "Agreed on regular contacts"},
                {"text": "We agreed", "language": "en"},
                {"text": "   "}
            ],
            "claims": [
                {"kind": "AGREEMENT", "key": "regular-contacts"},
                {"kind": "TOPIC", "key": "ukraine", "text": "Settlement around Ukraine"}
            ]
        }],
        "note": "an analyst's note \u{E000}marked\u{E001}",
        "commitment_stated": {"parties": ["RUS", "USA"], "what": "a meeting of experts", "due_text": "very soon"}
    })));
    let seen: Vec<(&str, Option<&str>, &str)> = found
        .iter()
        .map(|t| (t.field.as_str(), t.language.as_deref(), t.text.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("sources[0].title", Some("ru"), "Заголовок"),
            (
                "sources[0].quotes[0].text",
                Some("ru"),
                "Договорились о регулярных контактах"
            ),
            (
                "sources[0].quotes[0].translation",
                None,
                "Agreed on regular contacts"
            ),
            ("sources[0].quotes[1].text", Some("en"), "We agreed"),
            ("sources[0].claims[0].key", None, "regular contacts"),
            (
                "sources[0].claims[1].text",
                None,
                "Settlement around Ukraine"
            ),
            // The highlight markers never come from a text.
            ("note", None, "an analyst's note marked"),
            ("commitment_stated.what", None, "a meeting of experts"),
            ("commitment_stated.due_text", None, "very soon"),
        ]
    );
}

#[test]
fn the_founding_report_is_indexed_with_its_languages_and_actors() {
    let model: Search = replay(&founding_facts());
    let again = Search::from_rows(model.rows()).expect("rows load");
    assert_eq!(sorted_rows(&again), sorted_rows(&model));
    let rows = model.rows();
    let quote = rows
        .iter()
        .find(|r| r.data.get().contains("встречу экспертов для согласования"))
        .expect("the expert meeting quote");
    assert_eq!(quote.status, "russian");
    assert!(quote.states.contains(&"RUS".to_owned()), "{quote:?}");
    assert!(
        quote.actors.contains(&"sergey-lavrov".to_owned()),
        "{quote:?}"
    );
    let document: Document = quote.decode("search").unwrap();
    assert_eq!(document.kind, "CallHeld");
    assert_eq!(document.occurrence, document.origin.event_id);
    assert!(document.field.starts_with("sources[0].quotes["));
    let commitment = rows
        .iter()
        .find(|r| r.key.ends_with(":commitment_stated.what"))
        .expect("the commitment's what");
    assert_eq!(commitment.status, "english");
}

#[test]
fn a_retraction_takes_documents_out_and_a_correction_puts_its_texts_in() {
    let mut all = founding_facts();
    let statement = all
        .iter()
        .find(|f| matches!(f.event.kind, EventKind::StatementIssued(_)))
        .unwrap()
        .clone();
    let agreement = all
        .iter()
        .find(|f| matches!(f.event.kind, EventKind::AgreementStated(_)))
        .unwrap()
        .clone();
    let mut replacement = agreement.event.clone();
    if let EventKind::AgreementStated(stated) = &mut replacement.kind {
        stated.subject = "An entirely different subject about sanctions".to_owned();
    }
    let position = all.len() as u64;
    let extra = |position: u64, event: DiplomaticEvent| Fact {
        position,
        stream_id: "x".to_owned(),
        event_id: EventId::generate(),
        recorded_at: crate::projections::testing::recorded_at(),
        event,
    };
    all.push(extra(
        position + 1,
        event(serde_json::json!({"event_retracted": {"event": statement.event_id.to_string()}})),
    ));
    all.push(extra(
        position + 2,
        event(serde_json::json!({"event_corrected": {
            "event": agreement.event_id.to_string(),
            "replacement": replacement.to_json(),
        }})),
    ));
    let model: Search = replay(&all);
    let rows = model.rows();
    let of = |id: EventId| -> Vec<&Row> {
        rows.iter()
            .filter(|r| r.key.contains(&id.to_string()))
            .collect()
    };
    assert!(of(statement.event_id).is_empty());
    let corrected = of(agreement.event_id);
    assert!(
        corrected
            .iter()
            .any(|r| r.data.get().contains("about sanctions"))
    );
    assert!(!corrected.iter().any(|r| {
        r.data
            .get()
            .contains("To work together very closely, including")
    }));
    // The same with a bounded working set, as the runner keeps it.
    for batch in [1, 3, 50] {
        assert_eq!(replay_settling::<Search>(&all, batch), sorted_rows(&model));
    }
}
