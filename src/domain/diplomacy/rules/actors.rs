//! The actors an event names: each registered, and of the kind its place calls for (an office
//! acted through, a state hosting, a person holding an office); the registration of an actor;
//! how many participants or parties an event needs, without repeats; and who may initiate a
//! call or meeting.

use std::collections::HashSet;

use super::Check;
use crate::domain::ValidationError;
use crate::domain::diplomacy::{
    ActorId, ActorKind, CountryCode, DiplomaticEvent, EventKind, KindName, Participant,
};

impl Check<'_> {
    fn actor(&mut self, path: &str, id: &ActorId, expected: Option<ActorKind>) {
        match self.state.actors.get(id) {
            None => self.fail(path, ValidationError::UnknownActor { id: id.to_string() }),
            Some(facts) => {
                if let Some(expected) = expected
                    && facts.kind != expected
                {
                    self.fail(
                        path,
                        ValidationError::WrongActorKind {
                            id: id.to_string(),
                            expected: kind_name(expected),
                            actual: kind_name(facts.kind),
                        },
                    );
                }
            }
        }
    }

    fn state_actor(&mut self, path: &str, code: &CountryCode) {
        self.actor(path, &ActorId::from(*code), Some(ActorKind::State));
    }

    fn participants(&mut self, path: &str, participants: &[Participant], min: usize) {
        if participants.len() < min {
            self.fail(
                path,
                ValidationError::TooFew {
                    count: participants.len(),
                    min,
                },
            );
        }
        let mut seen = HashSet::new();
        for (index, participant) in participants.iter().enumerate() {
            let at = format!("{path}[{index}]");
            if !seen.insert(&participant.actor) {
                self.fail(
                    &format!("{at}.actor"),
                    ValidationError::Repeated {
                        value: participant.actor.to_string(),
                    },
                );
            }
            self.participant(&at, participant);
        }
    }

    /// One participant at `at`: a registered actor, acting through a registered office.
    fn participant(&mut self, at: &str, participant: &Participant) {
        self.actor(&format!("{at}.actor"), &participant.actor, None);
        if let Some(office) = &participant.acting_as {
            self.actor(&format!("{at}.acting_as"), office, Some(ActorKind::Office));
        }
    }

    fn parties(&mut self, path: &str, parties: &[ActorId], min: usize) {
        if parties.len() < min {
            self.fail(
                path,
                ValidationError::TooFew {
                    count: parties.len(),
                    min,
                },
            );
        }
        let mut seen = HashSet::new();
        for (index, party) in parties.iter().enumerate() {
            if !seen.insert(party) {
                self.fail(
                    &format!("{path}[{index}]"),
                    ValidationError::Repeated {
                        value: party.to_string(),
                    },
                );
            }
            self.actor(&format!("{path}[{index}]"), party, None);
        }
    }

    pub(super) fn actors_known(&mut self, event: &DiplomaticEvent, kind: &str) {
        use EventKind as K;
        for (index, source) in event.sources.iter().enumerate() {
            self.actor(&format!("sources[{index}].source"), &source.source, None);
        }
        let k = |field: &str| format!("{kind}.{field}");
        match &event.kind {
            K::ActorRegistered(registered) => {
                let actor = &registered.actor;
                if self.state.actors.contains_key(&actor.id) {
                    self.fail(
                        &k("actor.id"),
                        ValidationError::LifecycleViolation {
                            kind: KindName::ActorRegistered.to_string(),
                            stream: self.stream_id.to_owned(),
                            reason: format!("actor {} is already registered", actor.id),
                        },
                    );
                }
                let is_state = actor.id.as_country().is_some();
                if is_state != (actor.kind == ActorKind::State) {
                    self.fail(
                        &k("actor.kind"),
                        ValidationError::Malformed(
                            "states have their alpha-3 code as id, and only states do".into(),
                        ),
                    );
                }
                if actor.name.trim().is_empty() {
                    self.fail(&k("actor.name"), ValidationError::Empty);
                }
                if let Some(wikidata) = &actor.wikidata_id
                    && !(wikidata.starts_with('Q')
                        && wikidata.len() > 1
                        && wikidata[1..].chars().all(|c| c.is_ascii_digit()))
                {
                    self.fail(
                        &k("actor.wikidata_id"),
                        ValidationError::Malformed(format!(
                            "{wikidata:?} is not a Wikidata id such as Q17520"
                        )),
                    );
                }
                if let Some(country) = &actor.country
                    && actor.kind != ActorKind::State
                {
                    self.state_actor(&k("actor.country"), country);
                }
            }
            K::OfficeHolderChanged(change) => {
                self.actor(&k("office"), &change.office, Some(ActorKind::Office));
                if let Some(holder) = &change.holder {
                    self.actor(&k("holder"), holder, Some(ActorKind::Person));
                }
            }
            K::CallHeld(call) => self.participants(&k("participants"), &call.participants, 2),
            K::MeetingHeld(meeting) => {
                self.participants(&k("participants"), &meeting.participants, 2)
            }
            K::NegotiationRoundHeld(round) => {
                self.participants(&k("participants"), &round.participants, 2)
            }
            K::VisitMade(visit) => {
                self.participant(&k("visitor"), &visit.visitor);
                self.state_actor(&k("host"), &visit.host);
            }
            K::StatementIssued(statement) => self.actor(&k("speaker"), &statement.speaker, None),
            K::AgreementStated(agreement) => self.parties(&k("parties"), &agreement.parties, 2),
            K::IntentExpressed(intent) => self.parties(&k("actors"), &intent.actors, 1),
            K::InvitationExtended(invitation) => {
                self.actor(&k("inviter"), &invitation.inviter, None);
                self.actor(&k("invitee"), &invitation.invitee, None);
            }
            K::RequestMade(request) => {
                self.actor(&k("requester"), &request.requester, None);
                self.actor(&k("addressee"), &request.addressee, None);
            }
            K::ProposalRejected(rejection) => {
                self.actor(&k("rejecter"), &rejection.rejecter, None);
                if let Some(proposer) = &rejection.proposer {
                    self.actor(&k("proposer"), proposer, None);
                }
            }
            K::ChannelEstablished(channel) => self.parties(&k("parties"), &channel.parties, 2),
            K::SummitProposed(summit) => {
                self.parties(&k("parties"), &summit.parties, 2);
                if let Some(by) = &summit.proposed_by {
                    self.actor(&k("proposed_by"), by, None);
                }
            }
            K::SummitPreparationAgreed(summit) => {
                let opening = self.state.live_kinds(self.stream_id).is_empty();
                self.parties(&k("parties"), &summit.parties, if opening { 2 } else { 0 });
            }
            K::CommitmentStated(commitment) => self.parties(&k("parties"), &commitment.parties, 1),
            K::CommitmentWithdrawn(withdrawal) => {
                if let Some(by) = &withdrawal.by {
                    self.actor(&k("by"), by, None);
                }
            }
            K::DiplomatsExpelled(expulsion) => {
                self.state_actor(&k("expelling_state"), &expulsion.expelling_state);
                self.state_actor(&k("expelled_state"), &expulsion.expelled_state);
                if expulsion.expelling_state == expulsion.expelled_state {
                    self.fail(
                        &k("expelled_state"),
                        ValidationError::Malformed("a state cannot expel its own diplomats".into()),
                    );
                }
            }
            K::MissionsRestored(restored) => {
                if restored.states.len() != 2 || restored.states[0] == restored.states[1] {
                    self.fail(
                        &k("states"),
                        ValidationError::Malformed("give the two states".into()),
                    );
                }
                for (index, state) in restored.states.iter().enumerate() {
                    self.state_actor(&k(&format!("states[{index}]")), state);
                }
            }
            K::CodedEventReported(coded) => {
                if coded.sources.is_empty() {
                    self.fail(&k("sources"), ValidationError::TooFew { count: 0, min: 1 });
                }
                for (index, actor) in coded.sources.iter().enumerate() {
                    self.actor(&k(&format!("sources[{index}].actor")), &actor.actor, None);
                }
                for (index, actor) in coded.targets.iter().enumerate() {
                    self.actor(&k(&format!("targets[{index}].actor")), &actor.actor, None);
                }
            }
            K::InvitationAnswered(_)
            | K::ChannelSuspended(_)
            | K::ChannelResumed(_)
            | K::ChannelClosed(_)
            | K::SummitScheduled(_)
            | K::SummitHeld(_)
            | K::SummitPostponed(_)
            | K::SummitCancelled(_)
            | K::CommitmentScheduled(_)
            | K::CommitmentFulfilled(_)
            | K::SourceReportAttached(_)
            | K::EventCorrected(_)
            | K::EventRetracted(_) => {}
        }
    }

    /// The initiator must be a participant, the office one acts through, or the state of one.
    pub(super) fn initiator(
        &mut self,
        path: &str,
        initiator: &ActorId,
        participants: &[Participant],
    ) {
        let state = self.state;
        let country_of = |id: &ActorId| {
            id.as_country()
                .or_else(|| state.actors.get(id).and_then(|facts| facts.country))
        };
        let matches = participants.iter().any(|participant| {
            let ids = std::iter::once(&participant.actor).chain(participant.acting_as.as_ref());
            ids.into_iter().any(|id| {
                id == initiator
                    || country_of(id).is_some_and(|country| initiator.as_country() == Some(country))
            })
        });
        if !matches {
            self.fail(
                path,
                ValidationError::InitiatorNotParticipant {
                    initiator: initiator.to_string(),
                },
            );
        }
    }
}

fn kind_name(kind: ActorKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}
