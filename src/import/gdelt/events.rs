//! One row of a GDELT 2.0 Events export (61 tab-separated columns, GDELT 2.0 Event codebook)
//! as one `CodedEventReported` in the stream `occurrence-gdelt-<GLOBALEVENTID>`.
//!
//! - `occurred`: the day of `SQLDATE`; `coding`: `EventCode` and its PLOVER coding;
//! - the attribution: the outlet of `SOURCEURL` (`gdelt.source.<host>`), the URL, and
//!   `DATEADDED` as its publication time;
//! - `coded_event_reported`: Actor1 as source and Actor2 as target (each with its type code as
//!   sector and its name as text), CAMEO's description of the code, the action's place as
//!   text (`location`: `ActionGeo_FullName`, FIPS country code, latitude and longitude) and
//!   typed (`action_place`), the event id, and GDELT's measures: Goldstein scale, quad class,
//!   mentions, sources, articles, average tone (each left out when absent or out of range);
//! - `note`: `GDELT 2.0`, and whether it is the root event of its paragraph.
//!
//! An actor with a CAMEO country code of a state is that state; one without (a region, an
//! organisation, an unnamed group) is the organisation `gdelt.<actor code>`. A row without a
//! usable id, date, event code or Actor1 is reported and skipped.

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::cameo::{self, CameoCountry};
use super::{event_id, occurrence_stream, source_of_url};
use crate::domain::diplomacy::{ActorId, ActorKind, DiplomaticEvent};
use crate::import::streamed::{NewActor, row_problem};
use crate::import::tsv::Row;
use crate::import::{Item, Origin, Problem};

/// The columns of the Events table.
pub const COLUMNS: usize = 61;

/// Column indexes, as the codebook numbers them (from 0).
mod col {
    pub const GLOBALEVENTID: usize = 0;
    pub const SQLDATE: usize = 1;
    pub const ACTOR1: usize = 5;
    pub const ACTOR2: usize = 15;
    pub const IS_ROOT_EVENT: usize = 25;
    pub const EVENT_CODE: usize = 26;
    pub const QUAD_CLASS: usize = 29;
    pub const GOLDSTEIN: usize = 30;
    pub const NUM_MENTIONS: usize = 31;
    pub const NUM_SOURCES: usize = 32;
    pub const NUM_ARTICLES: usize = 33;
    pub const AVG_TONE: usize = 34;
    pub const ACTION_GEO: usize = 51;
    pub const DATEADDED: usize = 59;
    pub const SOURCEURL: usize = 60;
}

/// Offsets within an actor's ten columns (`Actor1Code` … `Actor1Type3Code`).
mod actor_col {
    pub const CODE: usize = 0;
    pub const NAME: usize = 1;
    pub const COUNTRY: usize = 2;
    pub const TYPE1: usize = 7;
}

/// Offsets within a place's eight columns (`ActionGeo_Type` … `ActionGeo_FeatureID`).
mod geo_col {
    pub const FULL_NAME: usize = 1;
    pub const COUNTRY: usize = 2;
    pub const LAT: usize = 5;
    pub const LONG: usize = 6;
}

/// An event row read: its event, the actors it names, and CAMEO country codes it used that
/// are no state's (noted, not refused).
pub struct EventRow {
    pub global_event_id: String,
    pub item: Item,
    pub source_url: Option<String>,
    pub actors: Vec<NewActor>,
    pub non_state_countries: Vec<String>,
}

/// The prefix of the ids of actors GDELT names by a code that is not a state's.
const ACTOR_PREFIX: &str = "gdelt.";

/// Reads one row, or says which field keeps it from being imported (`Err`: the reason to
/// count it under, and the problem).
pub fn read(row: &Row) -> Result<EventRow, (&'static str, Problem)> {
    let line = row.line;
    super::check_columns(row, COLUMNS, "event", "an Events export")?;
    let field = |index: usize| {
        let value = row.fields[index].trim();
        (!value.is_empty()).then_some(value)
    };
    let global_event_id = super::global_event_id(row, col::GLOBALEVENTID)?;
    let Some(day) = field(col::SQLDATE).and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
    else {
        return Err((
            "row(s) without a date",
            row_problem(
                line,
                "SQLDATE",
                format!("{:?} is not a day (YYYYMMDD)", row.fields[col::SQLDATE]),
            ),
        ));
    };
    let Some(cameo) = field(col::EVENT_CODE)
        .filter(|c| (2..=4).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit()))
    else {
        return Err((
            "row(s) without a CAMEO event code",
            row_problem(
                line,
                "EventCode",
                format!(
                    "{:?} is not a CAMEO event code (2 to 4 digits)",
                    row.fields[col::EVENT_CODE]
                ),
            ),
        ));
    };

    let mut actors = Vec::new();
    let mut non_state_countries = Vec::new();
    let mut coded_actor = |start: usize| -> Option<Value> {
        let code = field(start + actor_col::CODE);
        let name = field(start + actor_col::NAME);
        let country = field(start + actor_col::COUNTRY);
        let state = country.and_then(|country| match cameo::country(country) {
            CameoCountry::State(state) => Some(state),
            CameoCountry::NotAState => {
                non_state_countries.push(country.to_owned());
                None
            }
        });
        let actor = match (state, code) {
            (Some(state), _) => NewActor {
                id: ActorId::from(state),
                kind: ActorKind::State,
                name: state.name().to_owned(),
                note: None,
            },
            (None, Some(code)) => {
                let id =
                    ActorId::parse(format!("{ACTOR_PREFIX}{}", code.to_ascii_lowercase())).ok()?;
                NewActor {
                    id,
                    kind: ActorKind::Organisation,
                    name: name.map_or_else(|| code.to_owned(), |name| format!("{name} ({code})")),
                    note: Some(format!("GDELT actor code {code}")),
                }
            }
            (None, None) => return None,
        };
        let mut coded = Map::new();
        coded.insert("actor".into(), json!(actor.id.as_str()));
        if let Some(sector) = field(start + actor_col::TYPE1) {
            coded.insert("sector".into(), json!(sector));
        }
        if let Some(name) = name {
            coded.insert("text".into(), json!(name));
        }
        actors.push(actor);
        Some(Value::Object(coded))
    };
    let Some(source) = coded_actor(col::ACTOR1) else {
        return Err((
            "row(s) without Actor1",
            row_problem(
                line,
                "Actor1Code",
                "the event names no Actor1 (no code, or one that is neither a state's nor \
                 letters and digits); a coded event needs its source actor",
            ),
        ));
    };
    let target = coded_actor(col::ACTOR2);

    let source_url = field(col::SOURCEURL)
        .filter(|url| url.starts_with("http://") || url.starts_with("https://"))
        .map(str::to_owned);
    let outlet = source_of_url(source_url.as_deref());
    let mut attribution = Map::new();
    attribution.insert("source".into(), json!(outlet.id.as_str()));
    if let Some(added) = field(col::DATEADDED).and_then(crate::import::streamed::compact_instant) {
        attribution.insert("published_at".into(), json!(added));
    }
    if let Some(url) = &source_url {
        attribution.insert("url".into(), json!(url));
    }
    actors.insert(0, outlet);

    let coding = cameo::coding_for(cameo);
    let mut coded = Map::new();
    coded.insert("sources".into(), json!([source]));
    if let Some(target) = target {
        coded.insert("targets".into(), json!([target]));
    }
    if let Some(description) = cameo::description(cameo) {
        coded.insert("event_text".into(), json!(description));
    }
    if let Some(place) = place(&|i| field(col::ACTION_GEO + i)) {
        coded.insert("location".into(), json!(place));
    }
    coded.insert("external_id".into(), json!(global_event_id));
    measures(&field, &mut coded);

    let mut event = Map::new();
    event.insert(
        "occurred".into(),
        json!({ "day": day.format("%Y-%m-%d").to_string() }),
    );
    event.insert("sources".into(), json!([attribution]));
    event.insert(
        "coding".into(),
        serde_json::to_value(&coding).expect("a coding serializes"),
    );
    event.insert("note".into(), json!(note(&field)));
    event.insert("coded_event_reported".into(), Value::Object(coded));
    let event = DiplomaticEvent::from_json(Value::Object(event)).map_err(|(field, message)| {
        (
            "row(s) refused by the log's rules",
            row_problem(line, &field, message),
        )
    })?;

    Ok(EventRow {
        global_event_id: global_event_id.to_owned(),
        item: Item {
            origin: Origin::Line(line),
            stream_id: occurrence_stream(global_event_id),
            id: event_id(global_event_id),
            event,
        },
        source_url,
        actors,
        non_state_countries,
    })
}

/// `Moscow, Moskva, Russia (FIPS RS; 55.7522, 37.6156)`.
fn place<'a>(field: &dyn Fn(usize) -> Option<&'a str>) -> Option<String> {
    let name = field(geo_col::FULL_NAME)?;
    let mut details = Vec::new();
    if let Some(country) = field(geo_col::COUNTRY) {
        details.push(format!("FIPS {country}"));
    }
    if let (Some(lat), Some(long)) = (field(geo_col::LAT), field(geo_col::LONG)) {
        details.push(format!("{lat}, {long}"));
    }
    Some(if details.is_empty() {
        name.to_owned()
    } else {
        format!("{name} ({})", details.join("; "))
    })
}

/// GDELT's measures of the event, typed, each left out when absent or out of its range (the
/// log keeps what the dataset says, not a guess).
fn measures<'a>(field: &dyn Fn(usize) -> Option<&'a str>, coded: &mut Map<String, Value>) {
    let number = |index: usize, range: std::ops::RangeInclusive<f64>| {
        field(index)
            .and_then(|value| value.parse::<f64>().ok())
            .filter(|value| range.contains(value))
    };
    let count = |index: usize| field(index).and_then(|value| value.parse::<u32>().ok());
    if let Some(goldstein) = number(col::GOLDSTEIN, -10.0..=10.0) {
        coded.insert("goldstein_scale".into(), json!(goldstein));
    }
    if let Some(quad) = field(col::QUAD_CLASS)
        .and_then(|q| q.parse::<i32>().ok())
        .filter(|q| (1..=4).contains(q))
    {
        coded.insert("quad_class".into(), json!(quad));
    }
    for (index, name) in [
        (col::NUM_MENTIONS, "mentions"),
        (col::NUM_SOURCES, "source_count"),
        (col::NUM_ARTICLES, "articles"),
    ] {
        if let Some(value) = count(index) {
            coded.insert(name.into(), json!(value));
        }
    }
    if let Some(tone) = number(col::AVG_TONE, -100.0..=100.0) {
        coded.insert("average_tone".into(), json!(tone));
    }
    let geo = |offset: usize| field(col::ACTION_GEO + offset);
    let mut place = Map::new();
    if let Some(name) = geo(geo_col::FULL_NAME) {
        place.insert("name".into(), json!(name));
    }
    if let Some(country) = geo(geo_col::COUNTRY) {
        place.insert("country_code".into(), json!(country));
    }
    let coordinate = |offset: usize, limit: f64| {
        geo(offset)
            .and_then(|value| value.parse::<f64>().ok())
            .filter(|value| (-limit..=limit).contains(value))
    };
    if let (Some(latitude), Some(longitude)) = (
        coordinate(geo_col::LAT, 90.0),
        coordinate(geo_col::LONG, 180.0),
    ) {
        place.insert("latitude".into(), json!(latitude));
        place.insert("longitude".into(), json!(longitude));
    }
    if !place.is_empty() {
        coded.insert("action_place".into(), Value::Object(place));
    }
}

/// The note: the dataset, and whether the event is the root event of its paragraph.
fn note<'a>(field: &dyn Fn(usize) -> Option<&'a str>) -> String {
    if field(col::IS_ROOT_EVENT) == Some("1") {
        "GDELT 2.0; the root event of its paragraph".into()
    } else {
        "GDELT 2.0".into()
    }
}
