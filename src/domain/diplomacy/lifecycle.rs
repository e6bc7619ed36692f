//! The lifecycles the projections report, named once: a channel's status, a summit's stage,
//! a commitment's status, and the steps that move them (a channel's and a commitment's own
//! events; a summit's steps are named by the stage they put it in). Their names are the
//! wire's and those in the stored rows' JSON (`ACTIVE`, `PREPARATION_AGREED`, `ESTABLISHED`,
//! …); the status column of a stored row has its own spelling (`stored`, lower case). What
//! counts as open or pending is decided here, for the rules, the models, the queries, the CLI
//! and the dashboard alike.

use super::KindName;

/// Defines a lifecycle enum with its wire names, in order.
macro_rules! lifecycle {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in lifecycle order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every value's name, in lifecycle order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The name on the wire and in the stored rows' JSON.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value of a name, if it is one.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// As its name (what a model's row JSON holds).
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = String::deserialize(deserializer)?;
                Self::parse(&name)
                    .ok_or_else(|| serde::de::Error::unknown_variant(&name, Self::NAMES))
            }
        }
    };
}

lifecycle! {
    /// Where a communication channel stands.
    ChannelStatus {
        /// In use: contacts within `--dormant-after-days`.
        Active = "ACTIVE",
        /// Not used for `--dormant-after-days` (derived when answering).
        Dormant = "DORMANT",
        /// Suspended by a `ChannelSuspended`, until a `ChannelResumed`.
        Suspended = "SUSPENDED",
        /// Closed by a `ChannelClosed`, for good.
        Closed = "CLOSED",
    }
}

impl ChannelStatus {
    /// Every status but closed: the channels the dashboard and `relations` list as open.
    pub fn is_open(self) -> bool {
        self != ChannelStatus::Closed
    }

    /// The status column of a channel's stored row: what its own events made of it. Active
    /// and dormant are both `open` (dormancy depends on the time asked about, and is derived
    /// when answering).
    pub const fn stored(self) -> &'static str {
        match self {
            ChannelStatus::Active | ChannelStatus::Dormant => "open",
            ChannelStatus::Suspended => "suspended",
            ChannelStatus::Closed => "closed",
        }
    }

    /// The statuses a channel's stored row can have, in lifecycle order.
    pub const STORED: &'static [&'static str] = &[
        ChannelStatus::Active.stored(),
        ChannelStatus::Suspended.stored(),
        ChannelStatus::Closed.stored(),
    ];

    /// The status of a stored row's status column (`open` reads back as active), if it is a
    /// channel's.
    pub fn from_stored(stored: &str) -> Option<Self> {
        [
            ChannelStatus::Active,
            ChannelStatus::Suspended,
            ChannelStatus::Closed,
        ]
        .into_iter()
        .find(|status| status.stored() == stored)
    }
}

lifecycle! {
    /// One of a channel's own events, as a step of its lifecycle.
    ChannelStepKind {
        /// `ChannelEstablished`.
        Established = "ESTABLISHED",
        /// `ChannelSuspended`.
        Suspended = "SUSPENDED",
        /// `ChannelResumed`.
        Resumed = "RESUMED",
        /// `ChannelClosed`.
        Closed = "CLOSED",
    }
}

impl ChannelStepKind {
    /// The step an event of this kind is, if it is one of a channel's own.
    pub fn of(kind: KindName) -> Option<Self> {
        match kind {
            KindName::ChannelEstablished => Some(ChannelStepKind::Established),
            KindName::ChannelSuspended => Some(ChannelStepKind::Suspended),
            KindName::ChannelResumed => Some(ChannelStepKind::Resumed),
            KindName::ChannelClosed => Some(ChannelStepKind::Closed),
            _ => None,
        }
    }

    /// The status the channel is in after this step (active, whatever the time: dormancy is
    /// derived when answering).
    pub fn status_after(self) -> ChannelStatus {
        match self {
            ChannelStepKind::Established | ChannelStepKind::Resumed => ChannelStatus::Active,
            ChannelStepKind::Suspended => ChannelStatus::Suspended,
            ChannelStepKind::Closed => ChannelStatus::Closed,
        }
    }
}

lifecycle! {
    /// How far a summit's preparation has come.
    SummitStage {
        Proposed = "PROPOSED",
        PreparationAgreed = "PREPARATION_AGREED",
        Scheduled = "SCHEDULED",
        Postponed = "POSTPONED",
        Held = "HELD",
        Cancelled = "CANCELLED",
    }
}

impl SummitStage {
    /// Neither held nor cancelled: a pending summit preparation.
    pub fn is_pending(self) -> bool {
        !matches!(self, SummitStage::Held | SummitStage::Cancelled)
    }

    /// The status column of a summit's stored row: its name in lower case.
    pub fn stored(self) -> String {
        self.as_str().to_ascii_lowercase()
    }
}

lifecycle! {
    /// Where a commitment stands.
    CommitmentStatus {
        /// Stated, not yet scheduled or fulfilled.
        Pending = "PENDING",
        /// A date was set for it.
        Scheduled = "SCHEDULED",
        /// Fulfilled, by the event the row names.
        Fulfilled = "FULFILLED",
        /// Past its due date, not fulfilled (derived when answering).
        Lapsed = "LAPSED",
        /// Withdrawn by a party.
        Withdrawn = "WITHDRAWN",
    }
}

impl CommitmentStatus {
    /// The commitments still owed: pending, scheduled and lapsed.
    pub const OPEN: [CommitmentStatus; 3] = [
        CommitmentStatus::Pending,
        CommitmentStatus::Scheduled,
        CommitmentStatus::Lapsed,
    ];

    /// Still owed (see [`Self::OPEN`]).
    pub fn is_open(self) -> bool {
        Self::OPEN.contains(&self)
    }

    /// The names of [`Self::OPEN`], as a list filter takes them.
    pub fn open_names() -> Vec<String> {
        Self::OPEN.iter().map(|s| s.as_str().to_owned()).collect()
    }

    /// The status column of a commitment's stored row: its name in lower case (never
    /// `lapsed`, which is derived when answering).
    pub fn stored(self) -> String {
        self.as_str().to_ascii_lowercase()
    }
}

lifecycle! {
    /// One of a commitment's own events, as a step of its lifecycle.
    CommitmentStepKind {
        /// `CommitmentStated`.
        Stated = "STATED",
        /// `CommitmentScheduled`.
        Scheduled = "SCHEDULED",
        /// `CommitmentFulfilled`.
        Fulfilled = "FULFILLED",
        /// `CommitmentWithdrawn`.
        Withdrawn = "WITHDRAWN",
    }
}

impl CommitmentStepKind {
    /// The status the commitment is in after this step (pending, whatever the time: lapsing
    /// is derived when answering).
    pub fn status_after(self) -> CommitmentStatus {
        match self {
            CommitmentStepKind::Stated => CommitmentStatus::Pending,
            CommitmentStepKind::Scheduled => CommitmentStatus::Scheduled,
            CommitmentStepKind::Fulfilled => CommitmentStatus::Fulfilled,
            CommitmentStepKind::Withdrawn => CommitmentStatus::Withdrawn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_to_their_values() {
        for status in ChannelStatus::ALL {
            assert_eq!(ChannelStatus::parse(status.as_str()), Some(*status));
        }
        for stage in SummitStage::ALL {
            assert_eq!(SummitStage::parse(stage.as_str()), Some(*stage));
        }
        for status in CommitmentStatus::ALL {
            assert_eq!(CommitmentStatus::parse(status.as_str()), Some(*status));
        }
        assert_eq!(ChannelStatus::parse("closed"), None, "names are upper case");
    }

    #[test]
    fn open_and_pending_are_decided_here() {
        assert!(!ChannelStatus::Closed.is_open());
        assert!(ChannelStatus::Dormant.is_open());
        assert!(SummitStage::Postponed.is_pending());
        assert!(!SummitStage::Held.is_pending());
        assert_eq!(
            CommitmentStatus::open_names(),
            ["PENDING", "SCHEDULED", "LAPSED"]
        );
        assert!(!CommitmentStatus::Fulfilled.is_open());
    }

    #[test]
    fn stored_row_statuses_keep_their_spelling_and_parse_back() {
        assert_eq!(ChannelStatus::STORED, ["open", "suspended", "closed"]);
        assert_eq!(ChannelStatus::Dormant.stored(), "open");
        for stored in ChannelStatus::STORED {
            assert_eq!(
                ChannelStatus::from_stored(stored).unwrap().stored(),
                *stored
            );
        }
        assert_eq!(ChannelStatus::from_stored("OPEN"), None);
        assert_eq!(
            SummitStage::PreparationAgreed.stored(),
            "preparation_agreed"
        );
        assert_eq!(CommitmentStatus::Withdrawn.stored(), "withdrawn");
    }

    #[test]
    fn steps_are_stored_by_name_and_move_their_lifecycle() {
        assert_eq!(
            serde_json::to_string(&ChannelStepKind::Established).unwrap(),
            r#""ESTABLISHED""#
        );
        assert_eq!(
            serde_json::from_str::<SummitStage>(r#""PREPARATION_AGREED""#).unwrap(),
            SummitStage::PreparationAgreed
        );
        assert!(serde_json::from_str::<CommitmentStepKind>(r#""stated""#).is_err());
        assert_eq!(
            ChannelStepKind::of(KindName::ChannelResumed).map(ChannelStepKind::status_after),
            Some(ChannelStatus::Active)
        );
        assert_eq!(ChannelStepKind::of(KindName::CallHeld), None);
        assert_eq!(
            CommitmentStepKind::Stated.status_after(),
            CommitmentStatus::Pending
        );
    }
}
