//! What can go wrong in the projections' engine and store: one error type for the runners,
//! the rows and the shared read of the log (a leaf of the projections module).

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("there is no projection named {0:?}")]
    UnknownProjection(String),
    /// A stored diplomatic event that does not parse. The runner stops at it (and retries)
    /// rather than skip it: a projection that silently lacks an event would be wrong for ever.
    #[error("the event at position {position} is not a readable diplomatic event: {reason}")]
    UnreadableEvent { position: u64, reason: String },
    /// The checkpoint row vanished or moved although this runner holds the projection's lock.
    #[error("the checkpoint of projection {0:?} is missing or was moved by someone else")]
    CheckpointLost(String),
    /// The stored rows are of a newer model version than this server's (a rolling upgrade
    /// under way): this server leaves the projection to the newer ones.
    #[error("the stored rows are version {stored}, newer than this server's {ours}")]
    NewerVersion { stored: i32, ours: i32 },
    /// Stored rows a model could not take back (`Model::hydrate`).
    #[error("rows of projection {projection:?} do not load: {reason}")]
    UnloadableRows {
        projection: &'static str,
        reason: String,
    },
    #[error("could not connect to the database within {0:?}")]
    ConnectTimedOut(std::time::Duration),
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for ProjectionError {
    fn from(error: sqlx::Error) -> Self {
        if crate::store::is_unavailable(&error) {
            Self::Unavailable(error)
        } else {
            Self::Database(error)
        }
    }
}
