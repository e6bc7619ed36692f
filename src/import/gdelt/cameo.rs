//! CAMEO codes as GDELT writes them: event codes mapped to PLOVER by the project's copy of the
//! CAMEO→PLOVER table (`cameo_to_plover.txt`), and CAMEO country codes mapped to ISO 3166-1
//! alpha-3. Pure lookups: no I/O.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::domain::diplomacy::{Coding, CountryCode};

/// The CAMEO→PLOVER table (PLOVER draft 0.8, 2021), compiled in so nothing is read at run time.
const TABLE: &str = include_str!("cameo_to_plover.txt");

/// A PLOVER coding of one CAMEO code, with CAMEO's description of the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PloverCoding {
    pub plover_type: String,
    pub mode: Option<String>,
    pub context: Option<String>,
    pub description: Option<String>,
}

static BY_CODE: LazyLock<HashMap<&'static str, PloverCoding>> = LazyLock::new(|| {
    let mut table = HashMap::new();
    for line in TABLE.lines() {
        let Some((code, rest)) = line.split_once(':') else {
            continue;
        };
        let code = code.trim();
        if code.is_empty() || !code.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let (coding, description) = match rest.split_once('#') {
            Some((coding, description)) => (coding, Some(description.trim().to_owned())),
            None => (rest, None),
        };
        let mut parts = coding.split(',').map(str::trim);
        let Some(plover_type) = parts.next().filter(|t| !t.is_empty()) else {
            continue;
        };
        let present = |value: Option<&str>| value.filter(|v| !v.is_empty()).map(str::to_owned);
        let mode = present(parts.next());
        // Several contexts are written `crime; corruption`; the log keeps them comma separated.
        let context = present(parts.next()).map(|c| {
            c.split(';')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
                .join(",")
        });
        // The table repeats a few codes (08, 175): the first entry stands.
        table.entry(code).or_insert(PloverCoding {
            plover_type: plover_type.to_owned(),
            mode,
            context,
            description,
        });
    }
    table
});

/// The PLOVER coding of a CAMEO event code: the code's own entry, else its base code's (three
/// digits), else its root's (two). `None` for codes PLOVER has no type for (CAMEO 01 and 02,
/// statements and appeals, were dropped) and for codes the table does not know.
pub fn plover_for(cameo: &str) -> Option<&'static PloverCoding> {
    [
        cameo,
        cameo.get(..3).unwrap_or(cameo),
        cameo.get(..2).unwrap_or(cameo),
    ]
    .into_iter()
    .find_map(|code| BY_CODE.get(code))
}

/// CAMEO's words for a code the table lists (a parent's words would say less than the code).
pub fn description(cameo: &str) -> Option<&'static str> {
    BY_CODE.get(cameo).and_then(|p| p.description.as_deref())
}

/// The log's coding of a CAMEO event code: the code, and its PLOVER type, mode and context.
pub fn coding_for(cameo: &str) -> Coding {
    let plover = plover_for(cameo);
    Coding {
        cameo: Some(cameo.to_owned()),
        plover_type: plover.map(|p| p.plover_type.clone()),
        plover_mode: plover.and_then(|p| p.mode.clone()),
        plover_context: plover.and_then(|p| p.context.clone()),
    }
}

/// CAMEO country codes that are not the ISO 3166-1 alpha-3 code of the same state.
const CAMEO_COUNTRY_EXCEPTIONS: &[(&str, &str)] = &[
    ("ROM", "ROU"), // Romania (ISO changed ROM to ROU in 2002; CAMEO kept ROM)
    ("TMP", "TLS"), // East Timor (ISO changed TMP to TLS in 2002)
    ("ZAR", "COD"), // Zaire, the Democratic Republic of the Congo
    ("MNC", "MCO"), // Monaco
];

/// What a CAMEO country code names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameoCountry {
    /// A state, by its ISO 3166-1 alpha-3 code.
    State(CountryCode),
    /// A code that is no state's: a region (`AFR`, `EUR`, `MEA`, `WST`), Kosovo (`KOS`), a
    /// former state, or a code the log does not know.
    NotAState,
}

/// The state a CAMEO country code names, mapping CAMEO's own codes to ISO.
pub fn country(code: &str) -> CameoCountry {
    let iso = CAMEO_COUNTRY_EXCEPTIONS
        .iter()
        .find(|(cameo, _)| *cameo == code)
        .map_or(code, |(_, iso)| iso);
    match CountryCode::parse(iso) {
        Ok(country) => CameoCountry::State(country),
        Err(_) => CameoCountry::NotAState,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_plover_through_their_base_and_root() {
        let phone = coding_for("041");
        assert_eq!(phone.plover_type.as_deref(), Some("CONSULT"));
        assert_eq!(phone.plover_mode.as_deref(), Some("phone"));
        assert_eq!(
            plover_for("041").unwrap().description.as_deref(),
            Some("Discuss by telephone")
        );
        let accuse = plover_for("1121").unwrap();
        assert_eq!(accuse.plover_type, "ACCUSE");
        assert_eq!(accuse.context.as_deref(), Some("crime,corruption"));
        // 0874 is listed; 0875 is not, so its base 087 answers.
        assert_eq!(plover_for("0875").unwrap().mode.as_deref(), Some("disarm"));
        assert_eq!(plover_for("08").unwrap().plover_type, "CONCEDE");
        assert_eq!(plover_for("175").unwrap().plover_type, "ASSAULT");
        assert!(plover_for("010").is_none());
        assert!(plover_for("021").is_none());
        assert_eq!(coding_for("010").cameo.as_deref(), Some("010"));
        assert!(coding_for("010").plover_type.is_none());
    }

    #[test]
    fn every_entry_is_a_valid_coding() {
        for (code, plover) in BY_CODE.iter() {
            let coding = Coding {
                cameo: Some((*code).to_owned()),
                plover_type: Some(plover.plover_type.clone()),
                plover_mode: plover.mode.clone(),
                plover_context: plover.context.clone(),
            };
            assert!(coding.problems().is_empty(), "{code}: {coding:?}");
        }
        assert!(BY_CODE.len() > 250, "{}", BY_CODE.len());
    }

    #[test]
    fn cameo_country_codes_map_to_iso() {
        let state = |code| match country(code) {
            CameoCountry::State(country) => Some(country.alpha3()),
            CameoCountry::NotAState => None,
        };
        assert_eq!(state("RUS"), Some("RUS"));
        assert_eq!(state("ROM"), Some("ROU"));
        assert_eq!(state("TMP"), Some("TLS"));
        assert_eq!(state("ZAR"), Some("COD"));
        assert_eq!(state("AFR"), None);
        assert_eq!(state("KOS"), None);
        assert_eq!(state(""), None);
    }
}
