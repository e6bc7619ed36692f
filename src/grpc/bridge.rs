//! Between the generated protobuf types of diplomatic events and their JSON (the proto3 JSON
//! mapping with proto field names), which is both the domain's serde shape and what the log
//! stores. Done by reflection over the compiled descriptors, so no hand-written field-by-field
//! conversion can drift from the proto. Messages are looked up by their `prost::Name` (the
//! generated code and the descriptor set come from the same compile), never by a string.

use std::sync::LazyLock;

use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions,
};

use crate::proto;

static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET).expect("the compiled descriptor set decodes")
});

/// The descriptor of `M`. Always there: `M` was generated from the same descriptor set, so its
/// full name is in it (and `tests::every_converted_message_is_in_the_descriptor_pool` checks
/// the messages this crate converts).
fn descriptor<M: prost::Name>() -> MessageDescriptor {
    let name = M::full_name();
    POOL.get_message_by_name(&name)
        .unwrap_or_else(|| panic!("{name} is in the descriptor set it was generated from"))
}

/// A message as JSON with proto field names, leaving default values out.
pub fn to_json<M: prost::Message + prost::Name>(message: &M) -> serde_json::Value {
    let mut dynamic = DynamicMessage::new(descriptor::<M>());
    dynamic
        .transcode_from(message)
        .expect("a generated message transcodes to its own descriptor");
    dynamic
        .serialize_with_options(
            serde_json::value::Serializer,
            &SerializeOptions::new()
                .use_proto_field_name(true)
                .stringify_64_bit_integers(false),
        )
        .expect("a message serializes to JSON")
}

/// A message from JSON (proto or JSON field names); unknown fields are refused. The error
/// names the path at fault and says what is wrong with it.
pub fn from_json<M: prost::Message + prost::Name + Default>(
    value: serde_json::Value,
) -> Result<M, (String, String)> {
    let mut tracked = serde_path_to_error::Track::new();
    let deserializer = serde_path_to_error::Deserializer::new(value, &mut tracked);
    let dynamic = DynamicMessage::deserialize_with_options(
        descriptor::<M>(),
        deserializer,
        &DeserializeOptions::new(),
    )
    .map_err(|error| {
        let path = tracked.path().to_string();
        (
            if path == "." { String::new() } else { path },
            error.to_string(),
        )
    })?;
    dynamic
        .transcode_to::<M>()
        .map_err(|error| (String::new(), error.to_string()))
}

/// A diplomatic event's JSON without its id (as the log stores it).
pub fn event_to_json(event: &proto::DiplomaticEvent) -> serde_json::Value {
    let mut json = to_json(event);
    if let Some(object) = json.as_object_mut() {
        object.remove("id");
    }
    json
}

/// A diplomatic event from its stored JSON, with `id` set.
pub fn event_from_json(
    mut json: serde_json::Value,
    id: &str,
) -> Result<proto::DiplomaticEvent, (String, String)> {
    if let Some(object) = json.as_object_mut() {
        object.insert("id".to_owned(), serde_json::Value::String(id.to_owned()));
    }
    from_json(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::diplomacy::DiplomaticEvent;
    use serde_json::json;

    /// One sample of every kind, in the domain's JSON: each must go through the proto and the
    /// domain and come back unchanged, or the two have drifted apart.
    fn samples() -> Vec<serde_json::Value> {
        let day = json!({"day": "2025-02-15", "time_zone": "Europe/Moscow"});
        let source = json!([{"source": "rus.mfa", "published_at": "2025-02-15T14:00:00Z", "language": "ru",
            "url": "https://mid.ru/x", "title": "t", "quotes": [{"text": "цитата", "language": "ru", "translation": "quote"}],
            "claims": [{"kind": "TOPIC", "key": "ukraine-settlement", "text": "Украина"}]}]);
        let id = "0194f3b0-0000-7000-8000-000000000001";
        let participants = json!([{"actor": "sergey-lavrov", "acting_as": "rus.foreign-minister"}, {"actor": "USA"}]);
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

    #[test]
    fn every_kind_round_trips_between_proto_and_domain_json() {
        let samples = samples();
        // Every kind once, and a coded event a second time with GDELT's measures.
        assert_eq!(
            samples.len(),
            crate::domain::diplomacy::EventKind::NAMES.len() + 1
        );
        for sample in samples {
            let domain = DiplomaticEvent::from_json(sample.clone())
                .unwrap_or_else(|e| panic!("{sample}: {e:?}"));
            let proto = event_from_json(domain.to_json(), "0194f3b0-0000-7000-8000-0000000000ff")
                .unwrap_or_else(|e| panic!("{sample}: {e:?}"));
            assert_eq!(proto.id, "0194f3b0-0000-7000-8000-0000000000ff");
            assert_eq!(event_to_json(&proto), sample);
        }
    }

    #[test]
    fn unknown_fields_and_bad_enum_names_are_refused_with_their_path() {
        let (path, message) = from_json::<proto::DiplomaticEvent>(
            json!({"call_held": {"participants": [{"actor": "x", "actng_as": "y"}]}}),
        )
        .unwrap_err();
        assert_eq!(path, "call_held.participants[0]");
        assert!(message.contains("actng_as"), "{message}");
        let (path, _) =
            from_json::<proto::DiplomaticEvent>(json!({"meeting_held": {"format": "BILATERL"}}))
                .unwrap_err();
        assert_eq!(path, "meeting_held.format");
    }

    /// Every message this crate converts to or from JSON: its name (from `prost::Name`) is in
    /// the descriptor pool, so a renamed proto message or package fails here, not in a request.
    #[test]
    fn every_converted_message_is_in_the_descriptor_pool() {
        fn found<M: prost::Name>() -> String {
            let name = M::full_name();
            assert!(
                POOL.get_message_by_name(&name).is_some(),
                "{name} is not in the descriptor pool"
            );
            assert_eq!(descriptor::<M>().full_name(), name);
            name
        }
        let names = [
            // Diplomatic events (the diplomacy service, imports, benchmarks).
            found::<proto::DiplomaticEvent>(),
            // Projection views and rows (the projections service).
            found::<proto::Channel>(),
            found::<proto::Summit>(),
            found::<proto::Commitment>(),
            found::<proto::TimelineEntry>(),
            found::<proto::Relations>(),
            found::<proto::Divergence>(),
            // Answers the CLI prints as JSON.
            found::<proto::ChannelList>(),
            found::<proto::SummitList>(),
            found::<proto::CommitmentList>(),
            found::<proto::TimelineList>(),
            found::<proto::RelationList>(),
            found::<proto::DivergenceList>(),
            found::<proto::ProjectionChange>(),
            found::<proto::ProjectionStatusList>(),
        ];
        assert!(names.iter().all(|name| name.starts_with("diplog.v1.")));
    }
}
