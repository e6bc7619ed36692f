//! CAMEO and PLOVER codes, so the log can be exchanged with GDELT-, ICEWS- and POLECAT-style
//! data. Each kind has a default coding, taken from the CAMEO → PLOVER conversion table of the
//! PLOVER project (`CAMEO2PLOVER-2021.txt`, draft 0.8); a client may give its own.

use serde::{Deserialize, Serialize};

use super::{AgreementKind, Answer, EventKind, MeetingFormat};

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
