//! The one list of the projections this server maintains: their names, reaching a model by
//! its name (for queries that replay the log into a fresh model), and starting a runner for
//! each. Adding a projection means adding it to `with_models!` and nothing else.

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::projections::Model;
use crate::projections::engine::runner::{RunnerContext, run_projection};
use crate::projections::models::{
    channels, commitments, divergence, relations, search, summits, timeline,
};

/// Calls `$callback!` with every model type.
macro_rules! with_models {
    ($callback:ident) => {
        $callback!(
            channels::Channels,
            summits::Summits,
            commitments::Commitments,
            timeline::Timeline,
            relations::Relations,
            divergence::Divergence,
            search::Search
        )
    };
}

/// The name of every projection, in the order they are listed.
pub const NAMES: &[&str] = {
    macro_rules! names {
        ($($model:ty),*) => { &[$(<$model as Model>::NAME),*] };
    }
    with_models!(names)
};

/// Something to do with a model type chosen by name at run time.
pub trait ModelVisitor {
    type Output;
    fn visit<M: Model>(self) -> Self::Output;
}

/// Runs `visitor` with the model named `name`; `None` if there is no such projection.
pub fn visit_model<V: ModelVisitor>(name: &str, visitor: V) -> Option<V::Output> {
    macro_rules! dispatch {
        ($($model:ty),*) => {{
            $(
                if name == <$model as Model>::NAME {
                    return Some(visitor.visit::<$model>());
                }
            )*
            None
        }};
    }
    with_models!(dispatch)
}

/// Starts one runner per projection; each runs until `shutdown` is cancelled and never ends
/// with an error (failures are logged and retried), so awaiting the set is the shutdown drain.
pub fn spawn_all(context: RunnerContext, shutdown: CancellationToken) -> JoinSet<()> {
    let mut runners = JoinSet::new();
    macro_rules! spawn {
        ($($model:ty),*) => {
            $(runners.spawn(run_projection::<$model>(context.clone(), shutdown.clone()));)*
        };
    }
    with_models!(spawn);
    runners
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NameOf;

    impl ModelVisitor for NameOf {
        type Output = &'static str;
        fn visit<M: Model>(self) -> &'static str {
            M::NAME
        }
    }

    #[test]
    fn every_listed_projection_is_reached_by_its_name() {
        for name in NAMES {
            assert_eq!(visit_model(name, NameOf), Some(*name));
        }
        assert_eq!(NAMES.len(), 7);
    }

    #[test]
    fn an_unknown_name_reaches_no_projection() {
        assert_eq!(visit_model("no-such-projection", NameOf), None);
    }

    #[test]
    fn projection_names_are_distinct() {
        let distinct: std::collections::BTreeSet<&str> = NAMES.iter().copied().collect();
        assert_eq!(distinct.len(), NAMES.len());
    }
}
