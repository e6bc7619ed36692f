//! What runs on this server for the projections, shared by the engine and the read side:
//! each runner's reports (and a way to wake it), the advisory-lock key that makes one server
//! advance a projection, and the change feeds open. A leaf of the projections module: it
//! imports none of its siblings, so the runners, the store and the feeds can all use it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Notify, watch};
use tracing::debug;

/// What a runner of this server reports about its projection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunnerReport {
    /// This server holds the projection's lock (and advances it).
    pub holding: bool,
    /// The live generation and the position it reflects, as last committed.
    pub generation: u64,
    pub position: u64,
    /// A rebuild in progress: the position its build has reached.
    pub building: Option<u64>,
}

/// The reports of this server's runners, by projection name, and a way to wake a runner (for
/// a rebuild request). Cheap to clone; shared by the runners and the `ProjectionStore`.
#[derive(Clone, Default)]
pub struct LocalRunners {
    entries: Arc<Mutex<HashMap<String, LocalEntry>>>,
}

#[derive(Clone)]
pub(in crate::projections) struct LocalEntry {
    pub(in crate::projections) report: watch::Sender<RunnerReport>,
    pub(in crate::projections) wake: Arc<Notify>,
}

impl LocalRunners {
    pub(in crate::projections) fn entry(&self, name: &str) -> LocalEntry {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .entry(name.to_owned())
            .or_insert_with(|| LocalEntry {
                report: watch::Sender::new(RunnerReport::default()),
                wake: Arc::new(Notify::new()),
            })
            .clone()
    }

    /// Follows what this server's runner of `name` reports (all defaults if it has none).
    pub fn watch(&self, name: &str) -> watch::Receiver<RunnerReport> {
        self.entry(name).report.subscribe()
    }

    /// What this server's runner of `name` last reported.
    pub fn report(&self, name: &str) -> RunnerReport {
        *self.entry(name).report.borrow()
    }

    /// Makes this server's runner of `name` look at its checkpoint now rather than at its next
    /// poll.
    pub fn wake(&self, name: &str) {
        self.entry(name).wake.notify_one();
    }

    /// Reports for `name` as its runner would (tests of readers of the reports).
    #[cfg(test)]
    pub(crate) fn publish(&self, name: &str, report: RunnerReport) {
        self.entry(name).report.send_replace(report);
    }
}

/// The advisory-lock key of a projection: FNV-1a (64 bit) of `diplog.projection.<name>`, so
/// it is the same on every server, build and Rust version (std's hasher promises none of that).
pub fn advisory_lock_key(name: &str) -> i64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET_BASIS;
    for byte in "diplog.projection.".bytes().chain(name.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash as i64
}

/// The change feeds open on this server: how many, to watch (the dashboard, tests of clean
/// endings). Cheap to clone.
#[derive(Clone)]
pub struct Watchers {
    open: Arc<watch::Sender<usize>>,
}

impl Default for Watchers {
    fn default() -> Self {
        Self {
            open: Arc::new(watch::Sender::new(0)),
        }
    }
}

impl Watchers {
    /// Feeds open now.
    pub fn open(&self) -> usize {
        *self.open.borrow()
    }

    /// Follows the number of open feeds.
    pub fn subscribe(&self) -> watch::Receiver<usize> {
        self.open.subscribe()
    }

    pub(in crate::projections) fn watching(&self, projection: &'static str) -> Watching {
        self.open.send_modify(|open| *open += 1);
        debug!(projection, open = self.open(), "projection feed opened");
        Watching {
            watchers: self.clone(),
            projection,
        }
    }
}

/// Counts one open feed for as long as it lives.
pub(in crate::projections) struct Watching {
    watchers: Watchers,
    projection: &'static str,
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.watchers.open.send_modify(|open| *open -= 1);
        debug!(
            projection = self.projection,
            open = self.watchers.open(),
            "projection feed ended"
        );
    }
}
