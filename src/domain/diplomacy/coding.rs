//! CAMEO and PLOVER codes, so the log can be exchanged with GDELT-, ICEWS- and POLECAT-style
//! data. Each kind has a default coding, taken from the CAMEO → PLOVER conversion table of the
//! PLOVER project (`CAMEO2PLOVER-2021.txt`, draft 0.8); a client may give its own.

use serde::{Deserialize, Serialize};

use super::{AgreementKind, Answer, DiplomaticEvent, EventKind, MeetingFormat};

/// PLOVER event types: the 2021 draft's types, and the older ones its gold-standard records
/// still use (DEMAND, DISAPPROVE, INVESTIGATE, FIGHT, ...).
pub const PLOVER_TYPES: &[&str] = &[
    "AGREE",
    "CONSULT",
    "SUPPORT",
    "COOPERATE",
    "AID",
    "CONCEDE",
    "RETREAT",
    "REQUEST",
    "ACCUSE",
    "REJECT",
    "THREATEN",
    "PROTEST",
    "MOBILIZE",
    "SANCTION",
    "COERCE",
    "ASSAULT",
    "DEMAND",
    "DISAPPROVE",
    "INVESTIGATE",
    "FIGHT",
];

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coding {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cameo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plover_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plover_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plover_context: Option<String>,
}

impl Coding {
    fn new(cameo: &str, plover_type: &str, plover_mode: &str, plover_context: &str) -> Self {
        let some = |value: &str| (!value.is_empty()).then(|| value.to_owned());
        Self {
            cameo: some(cameo),
            plover_type: some(plover_type),
            plover_mode: some(plover_mode),
            plover_context: some(plover_context),
        }
    }

    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Problems with the codes, as (sub-field, message) pairs.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if let Some(cameo) = &self.cameo
            && !((2..=4).contains(&cameo.len()) && cameo.chars().all(|c| c.is_ascii_digit()))
        {
            problems.push((
                "cameo",
                format!("{cameo:?} is not a CAMEO code (2 to 4 digits)"),
            ));
        }
        if let Some(plover_type) = &self.plover_type
            && !PLOVER_TYPES.contains(&plover_type.as_str())
        {
            problems.push((
                "plover_type",
                format!(
                    "{plover_type:?} is not a PLOVER event type ({})",
                    PLOVER_TYPES.join(", ")
                ),
            ));
        }
        if let Some(mode) = &self.plover_mode
            && !mode
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-' || c == '_')
        {
            problems.push((
                "plover_mode",
                format!("{mode:?} is not a PLOVER mode (lowercase, e.g. phone)"),
            ));
        }
        problems
    }
}

/// The coding of a kind when the client gives none. Actor, provenance and correction events
/// are not occurrences and have none; PLOVER has no type for a neutral statement (CAMEO 01 was
/// dropped), so a statement carries its CAMEO code alone.
pub(super) fn default_for(kind: &EventKind) -> Option<Coding> {
    use EventKind as K;
    let coding = match kind {
        K::ActorRegistered(_)
        | K::OfficeHolderChanged(_)
        | K::SourceReportAttached(_)
        | K::EventCorrected(_)
        | K::EventRetracted(_)
        | K::CodedEventReported(_) => return None,
        K::CallHeld(_) => Coding::new("041", "CONSULT", "phone", ""),
        K::MeetingHeld(meeting) => match meeting.format {
            MeetingFormat::Bilateral => Coding::new("040", "CONSULT", "", ""),
            MeetingFormat::ThirdCountry => Coding::new("044", "CONSULT", "third-party", ""),
            MeetingFormat::Multilateral => Coding::new("040", "CONSULT", "multilateral", ""),
            // PLOVER has no mode for a video link; CAMEO's unspecified consultation.
            MeetingFormat::Video => Coding::new("040", "CONSULT", "", ""),
        },
        K::VisitMade(_) => Coding::new("042", "CONSULT", "visit", ""),
        K::NegotiationRoundHeld(_) => Coding::new("046", "CONSULT", "", "diplomatic"),
        K::StatementIssued(_) => Coding::new("010", "", "", ""),
        K::AgreementStated(agreement) => match agreement.kind {
            AgreementKind::Cooperate | AgreementKind::RestoreDialogue | AgreementKind::Other => {
                Coding::new("030", "AGREE", "", "diplomatic")
            }
            _ => Coding::new("036", "AGREE", "", "diplomatic"),
        },
        K::IntentExpressed(_) => Coding::new("030", "AGREE", "", "diplomatic"),
        K::InvitationExtended(_) => Coding::new("036", "AGREE", "", "diplomatic"),
        K::InvitationAnswered(answer) => match answer.answer {
            Answer::Accepted => Coding::new("036", "AGREE", "", "diplomatic"),
            Answer::Declined => Coding::new("125", "REJECT", "meet", "diplomatic"),
        },
        K::RequestMade(_) => Coding::new("100", "REQUEST", "", ""),
        K::ProposalRejected(_) => Coding::new("125", "REJECT", "meet", "diplomatic"),
        K::ChannelEstablished(_) | K::ChannelResumed(_) => {
            Coding::new("036", "AGREE", "", "diplomatic")
        }
        K::ChannelSuspended(_) => Coding::new("164", "SANCTION", "withdraw", "diplomatic"),
        K::ChannelClosed(_) => Coding::new("161", "SANCTION", "withdraw", "diplomatic"),
        K::SummitProposed(_)
        | K::SummitPreparationAgreed(_)
        | K::SummitScheduled(_)
        | K::SummitPostponed(_) => Coding::new("036", "AGREE", "", "diplomatic"),
        K::SummitHeld(_) => Coding::new("040", "CONSULT", "", ""),
        K::SummitCancelled(_) => Coding::new("125", "REJECT", "meet", "diplomatic"),
        K::CommitmentStated(_) => Coding::new("030", "AGREE", "", "diplomatic"),
        K::CommitmentScheduled(_) => Coding::new("036", "AGREE", "", "diplomatic"),
        K::CommitmentFulfilled(_) => Coding::new("050", "SUPPORT", "", "diplomatic"),
        K::CommitmentWithdrawn(_) => Coding::new("127", "REJECT", "meet", "diplomatic"),
        K::DiplomatsExpelled(_) => Coding::new("161", "SANCTION", "withdraw", "diplomatic"),
        K::MissionsRestored(_) => Coding::new("050", "SUPPORT", "", "diplomatic"),
    };
    Some(coding)
}

/// The four quad classes of event data (GDELT's `QuadClass`, POLECAT's quad code): whether an
/// event is cooperation or conflict, and said or done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QuadClass {
    VerbalCooperation,
    MaterialCooperation,
    VerbalConflict,
    MaterialConflict,
}

impl QuadClass {
    pub const ALL: [QuadClass; 4] = [
        QuadClass::VerbalCooperation,
        QuadClass::MaterialCooperation,
        QuadClass::VerbalConflict,
        QuadClass::MaterialConflict,
    ];

    /// GDELT's `QuadClass` column: 1 verbal cooperation, 2 material cooperation, 3 verbal
    /// conflict, 4 material conflict.
    pub fn of_gdelt(code: i32) -> Option<Self> {
        usize::try_from(code - 1)
            .ok()
            .and_then(|index| Self::ALL.get(index).copied())
    }

    /// The name as the proto and the stored rows spell it (`VERBAL_COOPERATION`).
    pub fn name(self) -> &'static str {
        match self {
            QuadClass::VerbalCooperation => "VERBAL_COOPERATION",
            QuadClass::MaterialCooperation => "MATERIAL_COOPERATION",
            QuadClass::VerbalConflict => "VERBAL_CONFLICT",
            QuadClass::MaterialConflict => "MATERIAL_CONFLICT",
        }
    }

    /// The quad class of a PLOVER event type: the one table of the domain.
    ///
    /// Source: each PLOVER type is the class of the CAMEO root codes it converts from in the
    /// PLOVER project's CAMEO → PLOVER table (`CAMEO2PLOVER-2021.txt`, codebook draft 0.8),
    /// with CAMEO's quad classes as GDELT assigns them (roots 01–05 verbal cooperation, 06–08
    /// material cooperation, 09–13 verbal conflict, 14–20 material conflict). Every type's
    /// roots fall in one class: AGREE 03, CONSULT 04, SUPPORT 05; COOPERATE 06, AID 07,
    /// CONCEDE and RETREAT 08; ACCUSE 09 and 11, REQUEST 10, REJECT 12, THREATEN 13; PROTEST
    /// 14, MOBILIZE 15, SANCTION 16, COERCE 16/17/19, ASSAULT 17–20. The older types of the
    /// gold-standard records go by their CAMEO roots too: INVESTIGATE 09, DEMAND 10,
    /// DISAPPROVE 11, FIGHT 19.
    pub fn of_plover_type(plover_type: &str) -> Option<QuadClass> {
        use QuadClass as Q;
        Some(match plover_type {
            "AGREE" | "CONSULT" | "SUPPORT" => Q::VerbalCooperation,
            "COOPERATE" | "AID" | "CONCEDE" | "RETREAT" => Q::MaterialCooperation,
            "REQUEST" | "ACCUSE" | "REJECT" | "THREATEN" | "DEMAND" | "DISAPPROVE"
            | "INVESTIGATE" => Q::VerbalConflict,
            "PROTEST" | "MOBILIZE" | "SANCTION" | "COERCE" | "ASSAULT" | "FIGHT" => {
                Q::MaterialConflict
            }
            _ => return None,
        })
    }
}

/// An event's PLOVER type: its coding's, else its kind's default coding's (what the recorder
/// fills in when the client gives none).
pub fn plover_type_of(event: &DiplomaticEvent) -> Option<String> {
    match event.coding.as_ref().filter(|coding| !coding.is_empty()) {
        Some(coding) => coding.plover_type.clone(),
        None => default_for(&event.kind).and_then(|coding| coding.plover_type),
    }
}

/// The quad class of an event: the one a coded record carries (GDELT's `QuadClass`, from
/// the CAMEO code its coders gave), else derived from its PLOVER type
/// (`QuadClass::of_plover_type`).
pub fn quad_class_of(event: &DiplomaticEvent) -> Option<QuadClass> {
    let carried = match &event.kind {
        EventKind::CodedEventReported(coded) => coded.quad_class.and_then(QuadClass::of_gdelt),
        _ => None,
    };
    carried.or_else(|| {
        plover_type_of(event)
            .as_deref()
            .and_then(QuadClass::of_plover_type)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quad_class_a_coded_record_carries_wins_over_the_derived_one() {
        let coded = |quad_class| {
            DiplomaticEvent::from_json(serde_json::json!({
                "occurred": {"day": "2025-02-15"},
                "coding": {"plover_type": "CONSULT"},
                "coded_event_reported": {"sources": [{"actor": "RUS"}], "targets": [{"actor": "USA"}],
                                         "quad_class": quad_class}
            }))
            .expect("a coded record")
        };
        assert_eq!(
            quad_class_of(&coded(serde_json::json!(4))),
            Some(QuadClass::MaterialConflict)
        );
        assert_eq!(
            quad_class_of(&coded(serde_json::Value::Null)),
            Some(QuadClass::VerbalCooperation),
            "derived from CONSULT"
        );
        assert_eq!(QuadClass::of_gdelt(0), None);
        assert_eq!(QuadClass::of_gdelt(5), None);
        assert_eq!(QuadClass::of_gdelt(1), Some(QuadClass::VerbalCooperation));
    }

    #[test]
    fn every_plover_type_has_a_quad_class() {
        for plover_type in PLOVER_TYPES {
            assert!(
                QuadClass::of_plover_type(plover_type).is_some(),
                "{plover_type} has no quad class"
            );
        }
        assert_eq!(QuadClass::of_plover_type("NOPE"), None);
    }

    #[test]
    fn cooperation_and_conflict_follow_the_cameo_roots() {
        use QuadClass as Q;
        let class = |t| QuadClass::of_plover_type(t).unwrap();
        assert_eq!(class("CONSULT"), Q::VerbalCooperation);
        assert_eq!(class("AID"), Q::MaterialCooperation);
        assert_eq!(class("REQUEST"), Q::VerbalConflict);
        assert_eq!(class("SANCTION"), Q::MaterialConflict);
        assert_eq!(
            serde_json::to_value(Q::VerbalConflict).unwrap(),
            Q::VerbalConflict.name()
        );
    }
}
