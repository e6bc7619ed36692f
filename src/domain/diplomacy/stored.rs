//! Parsing an event's JSON text straight into its types. `DiplomaticEvent::from_json` takes a
//! `serde_json::Value`, so a text went through a tree of maps and strings first; for the log's
//! stored events (every one of them parsed by the projections' runners, their rebuilds and
//! replays) building that tree and reading it again was half the parse. Here the envelope's
//! fields and the kind's payload are read from the text as they come; anything out of the
//! ordinary (a field twice, an unknown field, an invalid value) gives up and leaves the text
//! to `from_json`, whose answer, value or error with its path, is then the answer.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, VariantAccess,
    Visitor,
};

use super::{Coding, DiplomaticEvent, EventKind, FuzzyTime, SourceAttribution};
use crate::domain::EventId;

impl DiplomaticEvent {
    /// Parses an event's JSON text (without its id), as `from_json` parses its value: the
    /// same event, or the same error naming the field at fault.
    pub fn from_json_text(text: &str) -> Result<Self, (String, String)> {
        if let Ok(Direct(event)) = serde_json::from_str::<Direct>(text) {
            return Ok(event);
        }
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|error| (String::new(), error.to_string()))?;
        Self::from_json(value)
    }
}

/// An event read directly from its text; fails on anything `from_json` would read otherwise
/// than a plain derive would (so that it answers those).
struct Direct(DiplomaticEvent);

impl<'de> de::Deserialize<'de> for Direct {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EventVisitor)
    }
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Direct;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a diplomatic event")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Direct, A::Error> {
        fn once<T, E: de::Error>(slot: &mut Option<T>, value: T) -> Result<(), E> {
            match slot.replace(value) {
                None => Ok(()),
                Some(_) => Err(E::custom("a field twice")),
            }
        }
        let mut occurred = None;
        let mut sources = None;
        let mut evidence = None;
        let mut coding = None;
        let mut note = None;
        let mut kind: Option<EventKind> = None;
        // A key with escapes cannot be borrowed: that fails, and `from_json` reads it.
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "occurred" => once(&mut occurred, map.next_value::<Option<FuzzyTime>>()?)?,
                "sources" => once(&mut sources, exact_sources(map.next_value()?))?,
                "evidence" => once(&mut evidence, exact::<EventId>(map.next_value()?))?,
                "coding" => once(&mut coding, map.next_value::<Option<Coding>>()?)?,
                "note" => once(&mut note, map.next_value::<Option<String>>()?)?,
                // Any other key must be the kind's (an unknown variant fails).
                field => once(
                    &mut kind,
                    <EventKind as de::Deserialize>::deserialize(KindEntry {
                        field,
                        map: &mut map,
                    })?,
                )?,
            }
        }
        let kind = kind.ok_or_else(|| de::Error::custom("no kind"))?;
        Ok(Direct(DiplomaticEvent {
            occurred: occurred.flatten(),
            sources: sources.unwrap_or_default(),
            evidence: evidence.unwrap_or_default(),
            coding: coding.flatten(),
            note: note.flatten(),
            kind,
        }))
    }
}

/// Lists read from text grow by doubling (JSON gives no length ahead), so a list of one keeps
/// room for four, where a list read from a value had its exact length. The runners hold tens
/// of thousands of parsed events (their fact cache): that came to about 30 MiB more at the
/// peak of a 300,000-event rebuild. The envelope's lists, and each source's, are cut to their
/// length; a kind's own short lists are left.
fn exact_sources(sources: Vec<SourceAttribution>) -> Vec<SourceAttribution> {
    let mut sources = exact(sources);
    for source in &mut sources {
        source.quotes.shrink_to_fit();
        source.claims.shrink_to_fit();
    }
    sources
}

fn exact<T>(mut list: Vec<T>) -> Vec<T> {
    list.shrink_to_fit();
    list
}

/// The kind's entry of the event's map, its key already read: deserializes as the externally
/// tagged enum `{field: payload}` it is, the payload read from the map in place.
struct KindEntry<'a, A> {
    field: &'a str,
    map: &'a mut A,
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for KindEntry<'_, A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

impl<'de, A: MapAccess<'de>> EnumAccess<'de> for KindEntry<'_, A> {
    type Error = A::Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), A::Error> {
        let variant = seed.deserialize(self.field.into_deserializer())?;
        Ok((variant, self))
    }
}

impl<'de, A: MapAccess<'de>> VariantAccess<'de> for KindEntry<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        Err(de::Error::custom("every kind has a payload"))
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.map.next_value_seed(seed)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, A::Error> {
        Err(de::Error::custom("every kind is a message"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, A::Error> {
        Err(de::Error::custom("every kind is a message"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(text: &str) -> (Result<DiplomaticEvent, (String, String)>, bool) {
        let by_value = serde_json::from_str(text)
            .map_err(|error: serde_json::Error| (String::new(), error.to_string()))
            .and_then(DiplomaticEvent::from_json);
        let direct = serde_json::from_str::<Direct>(text).is_ok();
        assert_eq!(
            DiplomaticEvent::from_json_text(text),
            by_value,
            "the text and the value parse alike: {text}"
        );
        (by_value, direct)
    }

    #[test]
    fn every_sample_kind_is_read_directly_as_its_value_is_read() {
        let samples = crate::domain::diplomacy::sample_events();
        assert!(samples.len() >= EventKind::NAMES.len());
        for sample in samples {
            let text = sample.to_string();
            let (parsed, direct) = both(&text);
            assert!(parsed.is_ok(), "{text}");
            assert!(direct, "read directly: {text}");
        }
    }

    #[test]
    fn what_the_direct_read_gives_up_on_is_answered_as_from_json_answers_it() {
        let call = r#"{"participants":[{"actor":"sergey-lavrov"},{"actor":"marco-rubio"}]}"#;
        let cases = [
            // A field twice: the value keeps the last.
            format!(r#"{{"note":"a","note":"b","call_held":{call}}}"#),
            // Escaped keys.
            format!(r#"{{"not\u0065":"a","call_held":{call}}}"#),
            // Nulls where the envelope allows them, and where it does not.
            format!(r#"{{"occurred":null,"coding":null,"note":null,"call_held":{call}}}"#),
            format!(r#"{{"sources":null,"call_held":{call}}}"#),
            // No kind, two kinds, an unknown kind, an unknown field.
            r#"{"note":"a"}"#.to_owned(),
            format!(r#"{{"call_held":{call},"meeting_held":{call}}}"#),
            format!(r#"{{"call_heldx":{call}}}"#),
            format!(r#"{{"colour":"red","call_held":{call}}}"#),
            // Not an object, not JSON, a bad actor inside the payload.
            "[1]".to_owned(),
            "{".to_owned(),
            r#"{"call_held":{"participants":[{"actor":"Not An Id"}]}}"#.to_owned(),
            r#"{"call_held":null}"#.to_owned(),
        ];
        let mut read_directly = 0;
        for case in &cases {
            let (parsed, direct) = both(case);
            read_directly += usize::from(direct);
            if case.contains(r#""occurred":null"#) {
                assert!(parsed.is_ok(), "{case}");
            }
        }
        assert_eq!(read_directly, 1, "only the nulls the envelope allows");
    }
}
