//! One sample event of every kind (a coded event twice), in the domain's JSON, for tests: the
//! proto bridge checks each goes through the proto unchanged, the direct text parse that each
//! reads as its value does.

use serde_json::json;

/// One sample of every kind, in the domain's JSON: each must go through the proto and the
/// domain and come back unchanged, or the two have drifted apart.
pub(crate) fn sample_events() -> Vec<serde_json::Value> {
    let day = json!({"day": "2025-02-15", "time_zone": "Europe/Moscow"});
    let source = json!([{"source": "rus.mfa", "published_at": "2025-02-15T14:00:00Z", "language": "ru",
        "url": "https://mid.ru/x", "title": "t", "quotes": [{"text": "цитата", "language": "ru", "translation": "quote"}],
        "claims": [{"kind": "TOPIC", "key": "ukraine-settlement", "text": "Украина"}]}]);
    let id = "0194f3b0-0000-7000-8000-000000000001";
    let participants =
        json!([{"actor": "sergey-lavrov", "acting_as": "rus.foreign-minister"}, {"actor": "USA"}]);
    let place = json!({"name": "Riyadh", "country": "SAU"});
    let kinds = vec![
        json!({"actor_registered": {"actor": {"id": "rus.mfa", "kind": "ORGANISATION", "name": "MFA",
            "names": {"ru": "МИД"}, "country": "RUS", "wikidata_id": "Q1"}}}),
        json!({"office_holder_changed": {"office": "rus.foreign-minister", "holder": "sergey-lavrov"}}),
        json!({"call_held": {"participants": participants, "initiator": "USA", "topics": ["ukraine-settlement"], "level": "MINISTERS"}}),
        json!({"meeting_held": {"participants": participants, "format": "THIRD_COUNTRY", "level": "MINISTERS",
            "place": place, "topics": ["x"], "initiator": "USA"}}),
        json!({"visit_made": {"visitor": {"actor": "USA"}, "host": "RUS", "place": place, "until_day": "2025-02-16", "topics": ["x"]}}),
        json!({"negotiation_round_held": {"participants": participants, "track": "missions", "round": 2, "place": place, "topics": ["x"]}}),
        json!({"statement_issued": {"speaker": "rus.mfa", "form": "READOUT", "about": id, "summary": "s"}}),
        json!({"agreement_stated": {"parties": ["RUS", "USA"], "kind": "PREPARE_SUMMIT", "subject": "s"}}),
        json!({"intent_expressed": {"actors": ["RUS"], "intent": "i"}}),
        json!({"invitation_extended": {"inviter": "RUS", "invitee": "USA", "purpose": "p", "place": place}}),
        json!({"invitation_answered": {"answer": "DECLINED"}}),
        json!({"request_made": {"requester": "RUS", "addressee": "USA", "request": "r"}}),
        json!({"proposal_rejected": {"rejecter": "RUS", "proposer": "USA", "proposal": "p"}}),
        json!({"channel_established": {"parties": ["RUS", "USA"], "purpose": "p"}}),
        json!({"channel_suspended": {"reason": "r"}}),
        json!({"channel_resumed": {}}),
        json!({"channel_closed": {"reason": "r"}}),
        json!({"summit_proposed": {"parties": ["RUS", "USA"], "proposed_by": "USA", "place": place,
            "expected": {"month": "2026-04"}, "expected_text": "in the spring"}}),
        json!({"summit_preparation_agreed": {"parties": ["RUS", "USA"], "place": place,
            "expected": {"day": "2026-05-20"}, "expected_text": "before the summer"}}),
        json!({"summit_scheduled": {"date": {"month": "2025-08"}, "place": place}}),
        json!({"summit_held": {"meeting": id}}),
        json!({"summit_postponed": {"reason": "r", "new_date": {"instant": "2025-09-01T10:00:00Z"}}}),
        json!({"summit_cancelled": {"reason": "r"}}),
        json!({"commitment_stated": {"parties": ["RUS", "USA"], "what": "w", "due": {"month": "2025-03"}, "due_text": "very soon"}}),
        json!({"commitment_scheduled": {"date": {"day": "2025-02-27"}}}),
        json!({"commitment_fulfilled": {"fulfilled_by": id}}),
        json!({"commitment_withdrawn": {"by": "USA", "reason": "r"}}),
        json!({"diplomats_expelled": {"expelling_state": "RUS", "expelled_state": "USA", "count": 2, "reason": "r"}}),
        json!({"missions_restored": {"states": ["RUS", "USA"], "what": "w"}}),
        json!({"source_report_attached": {"occurrence": id}}),
        json!({"event_corrected": {"event": id, "reason": "r", "replacement": {"occurred": {"day": "2025-02-14"},
            "call_held": {"participants": participants}}}}),
        json!({"event_retracted": {"event": id, "reason": "r"}}),
        json!({"coded_event_reported": {"sources": [{"actor": "HUN", "sector": "GOV", "text": "Hungarian"}],
            "targets": [{"actor": "ROU"}], "event_text": "agreed", "location": "Budapest", "external_id": "X-1"}}),
        json!({"coded_event_reported": {"sources": [{"actor": "RUS"}], "external_id": "1226600001",
            "goldstein_scale": 0.0, "quad_class": 1, "mentions": 10, "source_count": 2, "articles": 9,
            "average_tone": -1.25, "action_place": {"name": "Moscow, Moskva, Russia", "country_code": "RS",
            "latitude": 55.7522, "longitude": 37.6156}}}),
    ];
    kinds
        .into_iter()
        .map(|kind| {
            let mut event = json!({"occurred": day, "sources": source, "evidence": [id],
                "coding": {"cameo": "041", "plover_type": "CONSULT", "plover_mode": "phone", "plover_context": "diplomatic"},
                "note": "n"});
            event.as_object_mut().unwrap().extend(kind.as_object().unwrap().clone());
            event
        })
        .collect()
}
