//! The lifecycles of the streams: an actor is registered once (and an office before its
//! holder changes); a channel is established, then suspended, resumed or closed (nothing after
//! closed); a summit is proposed or agreed before its other steps, and nothing follows once it
//! is held or cancelled; a commitment is stated once, and only an open one is scheduled,
//! fulfilled or withdrawn; an invitation is extended once and answered once. Retracted events
//! do not count.

use super::Check;
use crate::domain::ValidationError;
use crate::domain::diplomacy::{
    ChannelStatus, ChannelStepKind, DiplomaticEvent, EventKind, KindName,
};

impl Check<'_> {
    /// Channels, summits, commitments, invitations and actors move through states; an event
    /// that does not fit the stream's current state is refused.
    pub(super) fn lifecycle(&mut self, event: &DiplomaticEvent) {
        use EventKind as K;
        use KindName as N;
        let history = self.state.live_kinds(self.stream_id);
        let has = |kind: KindName| history.contains(&Some(kind));
        let last_of = |kinds: &[KindName]| {
            history
                .iter()
                .rev()
                .flatten()
                .find(|kind| kinds.contains(kind))
                .copied()
        };
        let stream = self.stream_id;
        let refusal: Option<String> = match &event.kind {
            K::ActorRegistered(_) if !history.is_empty() => {
                Some("the actor's stream already exists".into())
            }
            K::OfficeHolderChanged(_) if !has(N::ActorRegistered) => {
                Some("the office is not registered".into())
            }
            K::ChannelEstablished(_) if !history.is_empty() => {
                Some("the channel is already established".into())
            }
            K::ChannelSuspended(_) | K::ChannelResumed(_) | K::ChannelClosed(_) => {
                // Where the channel's own steps so far left it.
                let status = history
                    .iter()
                    .rev()
                    .flatten()
                    .find_map(|kind| ChannelStepKind::of(*kind))
                    .map(ChannelStepKind::status_after);
                match (event.kind.kind_name(), status) {
                    (_, None) => Some("no channel was established in this stream".into()),
                    (_, Some(ChannelStatus::Closed)) => Some("the channel is closed".into()),
                    (N::ChannelSuspended, Some(ChannelStatus::Suspended)) => {
                        Some("the channel is already suspended".into())
                    }
                    (N::ChannelResumed, Some(status)) if status != ChannelStatus::Suspended => {
                        Some("the channel is not suspended".into())
                    }
                    _ => None,
                }
            }
            K::SummitProposed(_) if !history.is_empty() => {
                Some("the summit was already proposed or agreed; record its next step".into())
            }
            K::SummitPreparationAgreed(_) if has(N::SummitPreparationAgreed) => {
                Some("preparation was already agreed".into())
            }
            K::SummitScheduled(_)
            | K::SummitHeld(_)
            | K::SummitPostponed(_)
            | K::SummitCancelled(_)
                if history.is_empty() =>
            {
                Some("no summit was proposed or agreed in this stream".into())
            }
            K::SummitPostponed(_) if !has(N::SummitScheduled) => {
                Some("the summit was never scheduled".into())
            }
            K::CommitmentStated(_) if !history.is_empty() => {
                Some("the commitment was already stated".into())
            }
            K::CommitmentScheduled(_) | K::CommitmentFulfilled(_) | K::CommitmentWithdrawn(_) => {
                match last_of(&[
                    N::CommitmentStated,
                    N::CommitmentFulfilled,
                    N::CommitmentWithdrawn,
                ]) {
                    None => Some(format!(
                        "{stream} holds no stated commitment, so there is no open commitment"
                    )),
                    Some(N::CommitmentFulfilled) => Some(format!(
                        "the commitment in {stream} is already fulfilled, not open"
                    )),
                    Some(N::CommitmentWithdrawn) => Some(format!(
                        "the commitment in {stream} was withdrawn, not open"
                    )),
                    _ => None,
                }
            }
            K::InvitationExtended(_) if !history.is_empty() => {
                Some("the invitation was already extended".into())
            }
            K::InvitationAnswered(_) if !has(N::InvitationExtended) => {
                Some("no invitation was extended in this stream".into())
            }
            K::InvitationAnswered(_) if has(N::InvitationAnswered) => {
                Some("the invitation was already answered".into())
            }
            _ => None,
        };
        let refusal = refusal.or_else(|| {
            // Nothing follows a summit that was held or cancelled.
            let ended = last_of(&[N::SummitHeld, N::SummitCancelled]);
            match (&event.kind, ended) {
                (
                    K::SummitPreparationAgreed(_)
                    | K::SummitScheduled(_)
                    | K::SummitHeld(_)
                    | K::SummitPostponed(_)
                    | K::SummitCancelled(_),
                    Some(end),
                ) => Some(format!("the summit has ended ({end})")),
                _ => None,
            }
        });
        if let Some(reason) = refusal {
            // The step itself is at fault, so the subject is its kind's field.
            self.fail(
                &event.kind_field(),
                ValidationError::LifecycleViolation {
                    kind: event.kind.name().to_owned(),
                    stream: stream.to_owned(),
                    reason,
                },
            );
        }
    }
}
