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

/// A message from JSON text, as `from_json` reads the value parsed from the text, but without
/// building that value where the text reads straight through; otherwise (a fault, whose path
/// `from_json` names, or anything else) by way of the value. The answer to the importer's
/// `ReadRecordingInputs`, which converts stored events, took half the CPU it took through the
/// value (perf of a GDELT import: 6.4% of the process against 12.0%).
pub fn from_json_text<M: prost::Message + prost::Name + Default>(
    text: &str,
) -> Result<M, (String, String)> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let direct = DynamicMessage::deserialize_with_options(
        descriptor::<M>(),
        &mut deserializer,
        &DeserializeOptions::new(),
    )
    .ok()
    .filter(|_| deserializer.end().is_ok());
    match direct {
        Some(dynamic) => dynamic
            .transcode_to::<M>()
            .map_err(|error| (String::new(), error.to_string())),
        None => {
            let value =
                serde_json::from_str(text).map_err(|error| (String::new(), error.to_string()))?;
            from_json(value)
        }
    }
}

/// A diplomatic event from its stored JSON text, with `id` set: `event_from_json` of the
/// parsed value.
pub fn event_from_json_text(
    text: &str,
    id: &str,
) -> Result<proto::DiplomaticEvent, (String, String)> {
    let mut event: proto::DiplomaticEvent = from_json_text(text)?;
    event.id = id.to_owned();
    Ok(event)
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

    #[test]
    fn every_kind_round_trips_between_proto_and_domain_json() {
        let samples = crate::domain::diplomacy::sample_events();
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
    fn a_text_reads_as_the_value_parsed_from_it_does() {
        let id = "0194f3b0-0000-7000-8000-0000000000ff";
        for sample in crate::domain::diplomacy::sample_events() {
            let domain = DiplomaticEvent::from_json(sample.clone()).unwrap();
            // As stored: the domain's text.
            let stored = domain.to_json().to_string();
            let proto = event_from_json_text(&stored, id).unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(proto, event_from_json(domain.to_json(), id).unwrap());
        }
        // What does not read straight through is read as the value is, faults and all.
        for text in [
            r#"{"call_held": {"participants": [{"actor": "x", "actng_as": "y"}]}}"#,
            r#"{"meeting_held": {"format": "BILATERL"}}"#,
            r#"{"call_held": {}, "call_held": {"topics": ["a"]}}"#,
            r#"{"call_held": {}} trailing"#,
            "[1, 2]",
            "",
        ] {
            let by_value = serde_json::from_str(text)
                .map_err(|error| (String::new(), error.to_string()))
                .and_then(from_json::<proto::DiplomaticEvent>);
            assert_eq!(
                from_json_text::<proto::DiplomaticEvent>(text),
                by_value,
                "{text}"
            );
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
