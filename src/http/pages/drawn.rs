//! The pages that are pictures: the network of relations between states (`/network`), one
//! state's offices and people with their counterparts (`/network/{state}`), and the
//! lifecycles of summits and commitments (`/lifecycle`). Each reads the projections as the
//! table pages do (now, as of, on a day) and hands the answer to `charts`.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use axum::response::Response;

use super::charts::lifecycle::{LifecycleChart, lifecycle_chart};
use super::charts::network::{NetworkChart, state_network, states_network};
use super::frame::Frame;
use super::request::{Ask, Params};
use super::views::Names;
use super::{EVERYTHING, render};
use crate::http::{Dashboard, HttpError};
use crate::projections::models::channels::view::ChannelView;
use crate::projections::models::commitments::Commitment;
use crate::projections::models::relations::view::RelationView;
use crate::projections::models::summits::Summit;
use crate::projections::read::request::ListFilter;

#[derive(Template)]
#[template(path = "network.html", config = "src/http/askama.toml")]
struct NetworkPage {
    frame: Frame,
    lede: String,
    chart: Option<NetworkChart>,
    /// On a state's page: back to all states.
    back: Option<String>,
    records: &'static str,
}

/// `/network`: states as nodes, pairs with contacts as edges.
pub(in crate::http) async fn network(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Query(params): Query<Params>,
) -> Result<Response, HttpError> {
    let ask = Ask::parse(&params)?;
    let mut frame = Frame::new(&ask, "Network of relations", "network", &uri);
    let filter = ListFilter {
        records: ask.records,
        ..ListFilter::default()
    };
    let source = ask.source(&dashboard);
    let (names, answer) = tokio::try_join!(Names::load(&dashboard, source), async {
        Ok(dashboard
            .queries
            .list::<RelationView>(source, &filter, &EVERYTHING)
            .await?)
    })?;
    frame
        .answered(answer.position, answer.reference, &dashboard)
        .await?;
    render(&NetworkPage {
        chart: states_network(&frame, &answer.items, |id| names.name(id), answer.reference),
        lede: "States with contacts between them. A state leads to its offices and people, \
               an edge to the pair's relations."
            .to_owned(),
        back: None,
        records: ask.records_name(),
        frame,
    })
}

/// `/network/{state}`: the state's offices and people, their counterparts abroad, and the
/// channels between them.
pub(in crate::http) async fn state(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Path(state): Path<String>,
    Query(params): Query<Params>,
) -> Result<Response, HttpError> {
    let ask = Ask::parse(&params)?;
    let source = ask.source(&dashboard);
    let mut frame = Frame::new(&ask, "Network", "network", &uri);
    let filter = ListFilter {
        actor: Some(state.clone()),
        ..ListFilter::default()
    };
    let (names, answer) = tokio::try_join!(Names::load(&dashboard, source), async {
        Ok(dashboard
            .queries
            .list::<ChannelView>(source, &filter, &EVERYTHING)
            .await?)
    })?;
    frame
        .answered(answer.position, answer.reference, &dashboard)
        .await?;
    let name = names.name(&state);
    frame.title = format!("Network: {name}");
    let chart = state_network(
        &frame,
        &state,
        |id| names.name(id),
        |id| names.0.get(id).map(|actor| actor.kind),
        &answer.items,
        answer.reference,
    );
    if chart.is_none() && !names.0.contains_key(&state) {
        return Err(HttpError::NotFound(format!(
            "no state {state:?} in the log"
        )));
    }
    render(&NetworkPage {
        chart,
        lede: format!(
            "The offices and people of {name} (left) and their counterparts abroad (right), \
             with the channels between them."
        ),
        back: Some(frame.link("/network")),
        records: "",
        frame,
    })
}

#[derive(Template)]
#[template(path = "lifecycle.html", config = "src/http/askama.toml")]
struct LifecyclePage {
    frame: Frame,
    chart: Option<LifecycleChart>,
}

/// `/lifecycle`: every summit and commitment as bars on a time axis.
pub(in crate::http) async fn lifecycle(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Query(params): Query<Params>,
) -> Result<Response, HttpError> {
    let ask = Ask::parse(&params)?;
    let source = ask.source(&dashboard);
    let mut frame = Frame::new(
        &ask,
        "Lifecycles of summits and commitments",
        "lifecycle",
        &uri,
    );
    let (all, everything) = (ListFilter::default(), EVERYTHING);
    let queries = &dashboard.queries;
    let (summits, commitments) = tokio::try_join!(
        queries.list::<Summit>(source, &all, &everything),
        queries.list::<Commitment>(source, &all, &everything),
    )?;
    let reference = summits.reference;
    frame
        .answered(
            summits.position.min(commitments.position),
            reference,
            &dashboard,
        )
        .await?;
    render(&LifecyclePage {
        chart: lifecycle_chart(&frame, &summits.items, &commitments.items, reference),
        frame,
    })
}
