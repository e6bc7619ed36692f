//! The lifecycles the projections report, named once: a channel's status, a summit's stage,
//! a commitment's status. Their names are the wire's and the stored rows' (`ACTIVE`,
//! `PREPARATION_AGREED`, …), and what counts as open or pending is decided here, for the
//! models, the queries, the CLI and the dashboard alike.

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

            /// The name on the wire and in stored rows.
            pub fn as_str(self) -> &'static str {
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
}
