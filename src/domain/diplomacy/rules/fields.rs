//! What each kind's own fields must say, beyond naming known actors and events: texts that
//! may not be blank (a summit's expected period as worded too), rounds numbered from 1 within
//! a track, levels on offices only, a visit that does not end before it began, an initiator
//! among the participants, an actor that does not invite itself.

use chrono::NaiveDate;

use super::Check;
use crate::domain::ValidationError;
use crate::domain::diplomacy::{ActorKind, DiplomaticEvent, EventKind, Precision};

impl Check<'_> {
    /// A round is numbered from 1, within a track.
    fn round(&mut self, path: &str, round: Option<u32>, has_track: bool) {
        match round {
            Some(0) => self.fail(
                path,
                ValidationError::Malformed("rounds are numbered from 1".into()),
            ),
            Some(_) if !has_track => self.fail(
                path,
                ValidationError::Malformed(
                    "a round is a round of a track of talks: give its track too".into(),
                ),
            ),
            _ => {}
        }
    }

    fn required_text(&mut self, path: &str, text: &str) {
        if text.trim().is_empty() {
            self.fail(path, ValidationError::Empty);
        }
    }

    pub(super) fn kind_rules(&mut self, event: &DiplomaticEvent, kind: &str) {
        use EventKind as K;
        let k = |field: &str| format!("{kind}.{field}");
        match &event.kind {
            K::CallHeld(call) => {
                if let Some(initiator) = &call.initiator {
                    self.initiator(&k("initiator"), initiator, &call.participants);
                }
                self.round(&k("round"), call.round, call.track.is_some());
            }
            K::MeetingHeld(meeting) => {
                if let Some(initiator) = &meeting.initiator {
                    self.initiator(&k("initiator"), initiator, &meeting.participants);
                }
                self.round(&k("round"), meeting.round, meeting.track.is_some());
            }
            K::NegotiationRoundHeld(round) => self.round(&k("round"), round.round, true),
            K::ActorRegistered(registered)
                if registered.actor.level.is_some()
                    && registered.actor.kind != ActorKind::Office =>
            {
                self.fail(
                    &k("actor.level"),
                    ValidationError::Malformed(
                        "only an office has a level (the level of what is held through it)".into(),
                    ),
                );
            }
            K::VisitMade(visit) => {
                self.round(&k("round"), visit.round, visit.track.is_some());
                if let Some(until) = &visit.until_day {
                    match NaiveDate::parse_from_str(until, "%Y-%m-%d") {
                        Err(_) => self.fail(
                            &k("until_day"),
                            ValidationError::NotADay {
                                value: until.clone(),
                            },
                        ),
                        Ok(until) => {
                            if let Some(Precision::Day(first)) =
                                event.occurred.as_ref().map(|o| o.precision())
                                && until < first
                            {
                                self.fail(
                                    &k("until_day"),
                                    ValidationError::Malformed(
                                        "ends before the visit began (occurred)".into(),
                                    ),
                                );
                            }
                        }
                    }
                }
            }
            K::AgreementStated(agreement) => self.required_text(&k("subject"), &agreement.subject),
            K::IntentExpressed(intent) => self.required_text(&k("intent"), &intent.intent),
            K::InvitationExtended(invitation) => {
                self.required_text(&k("purpose"), &invitation.purpose);
                if invitation.inviter == invitation.invitee {
                    self.fail(
                        &k("invitee"),
                        ValidationError::Malformed("an actor cannot invite itself".into()),
                    );
                }
            }
            K::RequestMade(request) => self.required_text(&k("request"), &request.request),
            K::ProposalRejected(rejection) => {
                self.required_text(&k("proposal"), &rejection.proposal)
            }
            K::CommitmentStated(commitment) => self.required_text(&k("what"), &commitment.what),
            // A bad expected month or day is refused when the event is parsed, at its path.
            K::SummitProposed(summit) => {
                if let Some(text) = &summit.expected_text {
                    self.required_text(&k("expected_text"), text);
                }
            }
            K::SummitPreparationAgreed(summit) => {
                if let Some(text) = &summit.expected_text {
                    self.required_text(&k("expected_text"), text);
                }
            }
            _ => {}
        }
    }
}
