//! `diplog channels`, `summits`, `commitments`, `timeline`, `relations`, `divergence`,
//! `diplog projections status|rebuild`, `diplog watch` and `diplog search`: the `Projections` service from the
//! command line.
//! Answers print as tables for people (names, not ids), or with `--json` as the answer
//! message's proto3 JSON. Lists are fetched page by page to the end.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::client_args::ClientArgs;
use super::query_args::{
    AsOf, ChannelsArgs, CommitmentsArgs, DivergenceArgs, ListFilterArgs, OutputFormat,
    ProjectionsArgs, ProjectionsCommand, ProjectionsStatusArgs, QueryArgs, RebuildArgs,
    RelationsArgs, SummitsArgs, TimelineArgs, WatchArgs,
};
use super::{CliError, finish};
use crate::grpc::bridge;
use crate::grpc::convert::to_timestamp;
use crate::grpc::lists::ListMessage;
use crate::proto::{self, projections_client::ProjectionsClient};

mod search;
mod text;
pub use search::search;
use text::{
    Table, change_text, channel_rows, commitment_rows, divergence_text, header, relations_text,
    summit_rows, table, timeline_rows, timeline_text,
};

/// The largest page the server gives.
const PAGE_SIZE: u32 = 1000;

type Client = ProjectionsClient<crate::auth::client::AuthChannel>;

async fn connect(client: &ClientArgs) -> Result<Client, CliError> {
    let channel = super::channel(client).await?;
    Ok(ProjectionsClient::new(channel)
        .max_decoding_message_size(crate::domain::limits::MAX_REQUEST_BYTES))
}

/// The read options of `--as-of`, `--on` and `--min-position`. An answer as of a past state
/// or on a day comes from the log itself, so there is nothing to wait for: `--min-position` is
/// not sent with them.
fn read_options(query: &QueryArgs) -> proto::ReadOptions {
    use proto::read_options::AsOf as Wire;
    let replayed = query.as_of.is_some() || query.on.is_some();
    proto::ReadOptions {
        min_position: if replayed { 0 } else { query.min_position },
        as_of: query.as_of.map(|as_of| match as_of {
            AsOf::Position(position) => Wire::AsOfPosition(position),
            AsOf::Time(time) => Wire::AsOfTime(to_timestamp(time)),
        }),
        on_day: query
            .on
            .map(|day| day.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
    }
}

fn list_request(
    query: &QueryArgs,
    filter: &ListFilterArgs,
) -> Result<proto::ListRequest, CliError> {
    let state_pair = filter.states.as_deref().map(state_pair).transpose()?;
    Ok(proto::ListRequest {
        read: Some(read_options(query)),
        actor: filter.actor.clone().unwrap_or_default(),
        state_pair,
        status: filter
            .status
            .iter()
            .map(|s| s.trim().to_ascii_uppercase())
            .collect(),
        pending_only: false,
        page_size: PAGE_SIZE,
        page_token: String::new(),
        records: 0,
    })
}

/// `--states A,B`.
fn state_pair(raw: &str) -> Result<proto::StatePair, CliError> {
    let states: Vec<&str> = raw.split(',').map(str::trim).collect();
    match states.as_slice() {
        [a, b] if !a.is_empty() && !b.is_empty() => Ok(proto::StatePair {
            a: (*a).to_owned(),
            b: (*b).to_owned(),
        }),
        _ => Err(CliError::Input(format!(
            "--states {raw:?}: give two states separated by a comma, e.g. RUS,USA"
        ))),
    }
}

/// Every page of a list, as one answer. Later pages wait for the position of the first, so
/// the pages never go back in time.
async fn all_pages<M, F, Fut>(mut request: proto::ListRequest, call: F) -> Result<M, CliError>
where
    M: ListMessage,
    F: Fn(proto::ListRequest) -> Fut,
    Fut: Future<Output = Result<tonic::Response<M>, tonic::Status>>,
{
    let mut answer = call(request.clone()).await?.into_inner();
    loop {
        let Some(info) = answer.info() else {
            return Ok(answer);
        };
        if info.next_page_token.is_empty() {
            return Ok(answer);
        }
        request.page_token = info.next_page_token.clone();
        if let Some(read) = request.read.as_mut()
            && read.as_of.is_none()
        {
            read.min_position = read.min_position.max(info.position);
        }
        let next = call(request.clone()).await?.into_inner();
        answer.append(next);
    }
}

fn print_json<M: prost::Message + prost::Name>(message: &M) {
    let json = bridge::to_json(message);
    println!(
        "{}",
        serde_json::to_string_pretty(&json).expect("JSON prints")
    );
}

/// Fetches every page of a list and prints it: its message as JSON with `--json`, else the
/// answer's header and `text` of it.
/// Prints every page of a list: `rows` of the answer as CSV, or `text` of it (a heading and
/// its rows' table), or the answer as JSON.
async fn print_list<M, F, Fut>(
    query: &QueryArgs,
    request: proto::ListRequest,
    call: F,
    rows: impl FnOnce(&M) -> Table,
    text: impl FnOnce(&M, Table) -> String,
) -> Result<(), CliError>
where
    M: ListMessage,
    F: Fn(Client, proto::ListRequest) -> Fut,
    Fut: Future<Output = Result<tonic::Response<M>, tonic::Status>>,
{
    let client = connect(&query.client).await?;
    let answer: M = all_pages(request, |r| call(client.clone(), r)).await?;
    match query.output() {
        OutputFormat::Json => print_json(&answer),
        OutputFormat::Csv => print!("{}", rows(&answer).csv()),
        OutputFormat::Text => {
            let mut out = header(answer.info(), query);
            let table = rows(&answer);
            out.push_str(&text(&answer, table));
            print!("{out}");
        }
    }
    Ok(())
}

/// Refuses `--format csv` where the answer is not one list.
fn no_csv(query: &QueryArgs, command: &str) -> Result<(), CliError> {
    if query.output() == OutputFormat::Csv {
        return Err(CliError::Input(format!(
            "--format csv is for the lists (channels, summits, commitments, timeline); \
             {command} answers with several tables: use --format json"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Commands

pub async fn channels(args: ChannelsArgs) -> ExitCode {
    finish(list_channels(args).await)
}

async fn list_channels(args: ChannelsArgs) -> Result<(), CliError> {
    let request = list_request(&args.query, &args.filter)?;
    print_list(
        &args.query,
        request,
        |mut client, r| async move { client.list_channels(r).await },
        |answer: &proto::ChannelList| channel_rows(&answer.channels),
        |_, rows| rows.text("No channels."),
    )
    .await
}

pub async fn summits(args: SummitsArgs) -> ExitCode {
    finish(list_summits(args).await)
}

async fn list_summits(args: SummitsArgs) -> Result<(), CliError> {
    let mut request = list_request(&args.query, &args.filter)?;
    request.pending_only = !args.all && request.status.is_empty();
    let none = if args.all {
        "No summits."
    } else {
        "No pending summits (--all for every one)."
    };
    print_list(
        &args.query,
        request,
        |mut client, r| async move { client.list_summits(r).await },
        |answer: &proto::SummitList| summit_rows(&answer.summits),
        |_, rows| rows.text(none),
    )
    .await
}

pub async fn commitments(args: CommitmentsArgs) -> ExitCode {
    finish(list_commitments(args).await)
}

async fn list_commitments(args: CommitmentsArgs) -> Result<(), CliError> {
    let mut request = list_request(&args.query, &args.filter)?;
    if !args.all && request.status.is_empty() {
        // Without `--all` or `--status`: the commitments still owed.
        request.status = crate::domain::diplomacy::CommitmentStatus::open_names();
    }
    let none = if args.all {
        "No commitments."
    } else {
        "No open commitments (--all for every one)."
    };
    print_list(
        &args.query,
        request,
        |mut client, r| async move { client.list_commitments(r).await },
        |answer: &proto::CommitmentList| commitment_rows(&answer.commitments),
        |_, rows| rows.text(none),
    )
    .await
}

pub async fn timeline(args: TimelineArgs) -> ExitCode {
    finish(show_timeline(args).await)
}

async fn show_timeline(args: TimelineArgs) -> Result<(), CliError> {
    if args.actor.trim().is_empty() {
        return Err(CliError::Input("name an actor".to_owned()));
    }
    let request = proto::ListRequest {
        read: Some(read_options(&args.query)),
        actor: args.actor.clone(),
        page_size: PAGE_SIZE,
        records: args.records.wire(),
        ..Default::default()
    };
    print_list(
        &args.query,
        request,
        |mut client, r| async move { client.get_timeline(r).await },
        |answer: &proto::TimelineList| timeline_rows(&answer.entries),
        |answer, rows| timeline_text(&args.actor, &answer.entries, rows),
    )
    .await
}

pub async fn relations(args: RelationsArgs) -> ExitCode {
    finish(show_relations(args).await)
}

async fn show_relations(args: RelationsArgs) -> Result<(), CliError> {
    if args.a.trim().is_empty() || args.b.trim().is_empty() {
        return Err(CliError::Input("name two states, e.g. RUS USA".to_owned()));
    }
    let request = proto::ListRequest {
        read: Some(read_options(&args.query)),
        state_pair: Some(proto::StatePair {
            a: args.a.clone(),
            b: args.b.clone(),
        }),
        records: args.records.wire(),
        ..Default::default()
    };
    no_csv(&args.query, "relations")?;
    let mut client = connect(&args.query.client).await?;
    let answer = client.get_relations(request).await?.into_inner();
    if args.query.output() == OutputFormat::Json {
        print_json(&answer);
        return Ok(());
    }
    let mut out = header(answer.info.as_ref(), &args.query);
    if answer.relations.is_empty() {
        let _ = writeln!(out, "Nothing between {} and {}.", args.a, args.b);
    }
    for pair in &answer.relations {
        out.push_str(&relations_text(pair));
    }
    print!("{out}");
    Ok(())
}

pub async fn divergence(args: DivergenceArgs) -> ExitCode {
    finish(show_divergence(args).await)
}

async fn show_divergence(args: DivergenceArgs) -> Result<(), CliError> {
    if args.occurrence.trim().is_empty() {
        return Err(CliError::Input(
            "name an occurrence: its event id or its stream".to_owned(),
        ));
    }
    let request = proto::GetRequest {
        read: Some(read_options(&args.query)),
        key: args.occurrence.clone(),
    };
    no_csv(&args.query, "divergence")?;
    let mut client = connect(&args.query.client).await?;
    let answer = client.get_divergence(request).await?.into_inner();
    if args.query.output() == OutputFormat::Json {
        print_json(&answer);
        return Ok(());
    }
    let mut out = header(answer.info.as_ref(), &args.query);
    for divergence in &answer.divergences {
        out.push_str(&divergence_text(divergence));
    }
    print!("{out}");
    Ok(())
}

pub async fn watch(args: WatchArgs) -> ExitCode {
    finish(follow(args).await)
}

/// Prints the snapshot, then each change as it comes, until the stream ends: a refusal or the
/// server stopping (UNAVAILABLE) exits 1 with the status.
async fn follow(args: WatchArgs) -> Result<(), CliError> {
    use std::io::Write as _;
    let state_pair = args.filter.states.as_deref().map(state_pair).transpose()?;
    let request = proto::WatchProjectionRequest {
        projection: args.projection.trim().to_owned(),
        actor: args.filter.actor.clone().unwrap_or_default(),
        state_pair,
        status: args
            .filter
            .status
            .iter()
            .map(|s| s.trim().to_ascii_uppercase())
            .collect(),
        pending_only: args.pending_only,
        min_position: args.min_position,
        heartbeat_seconds: args.heartbeat_secs,
    };
    let mut client = connect(&args.client).await?;
    let mut changes = client.watch_projection(request).await?.into_inner();
    // The previous message said the snapshot goes on in this one.
    let mut continued = false;
    while let Some(change) = changes.message().await? {
        let out = if args.json {
            let json = bridge::to_json(&change);
            format!("{}\n", serde_json::to_string(&json).expect("JSON prints"))
        } else {
            change_text(&change, continued)
        };
        continued = change.snapshot_continues;
        let mut stdout = std::io::stdout().lock();
        // A closed pipe (`| head`) ends the watch.
        if stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return Ok(());
        }
    }
    Ok(())
}

pub async fn projections(args: ProjectionsArgs) -> ExitCode {
    finish(match args.command {
        ProjectionsCommand::Status(args) => status(args).await,
        ProjectionsCommand::Rebuild(args) => rebuild(args).await,
    })
}

async fn status(args: ProjectionsStatusArgs) -> Result<(), CliError> {
    let mut client = connect(&args.client).await?;
    let answer = client.get_status(()).await?.into_inner();
    if args.json {
        print_json(&answer);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = answer
        .projections
        .iter()
        .map(|p| {
            let rebuilding = match (p.rebuilding_at, p.rebuild_requested) {
                (Some(at), _) => format!("at {at}"),
                (None, true) => "requested".to_owned(),
                (None, false) => "no".to_owned(),
            };
            vec![
                p.name.clone(),
                p.position.to_string(),
                p.head.to_string(),
                p.lag.to_string(),
                p.generation.to_string(),
                rebuilding,
                p.holder.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "NAME",
                "POSITION",
                "HEAD",
                "LAG",
                "GENERATION",
                "REBUILDING",
                "HOLDER"
            ],
            &rows,
            "No projections.",
        )
    );
    Ok(())
}

async fn rebuild(args: RebuildArgs) -> Result<(), CliError> {
    if args.name.trim().is_empty() {
        return Err(CliError::Input(
            "name a projection (see diplog projections status)".to_owned(),
        ));
    }
    let mut client = connect(&args.client).await?;
    client
        .rebuild(proto::RebuildRequest {
            name: args.name.clone(),
        })
        .await?;
    println!(
        "rebuild of {} requested; the current rows answer until the new ones are ready \
         (diplog projections status shows its progress)",
        args.name
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Text for people

#[cfg(test)]
mod tests {
    use super::text::fuzzy;
    use super::*;

    #[test]
    fn fuzzy_times_print_as_given_with_their_time_zone() {
        use proto::fuzzy_time::Precision;
        let day = proto::FuzzyTime {
            precision: Some(Precision::Day("2025-02-15".into())),
            time_zone: "Europe/Moscow".into(),
        };
        assert_eq!(fuzzy(Some(&day)), "2025-02-15 (Europe/Moscow)");
        let month = proto::FuzzyTime {
            precision: Some(Precision::Month("2025-03".into())),
            time_zone: String::new(),
        };
        assert_eq!(fuzzy(Some(&month)), "2025-03");
        assert_eq!(fuzzy(None), "");
    }

    #[test]
    fn tables_align_by_characters_not_bytes() {
        let rows = vec![
            vec!["Лавров".to_owned(), "x".to_owned()],
            vec!["Rubio".to_owned(), "y".to_owned()],
        ];
        let text = table(&["NAME", "V"], &rows, "none");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines, ["NAME    V", "Лавров  x", "Rubio   y"]);
        assert_eq!(table(&["A"], &[], "none"), "none\n");
    }

    #[test]
    fn a_state_pair_needs_two_states() {
        let pair = state_pair("RUS, USA").unwrap_or_else(|_| panic!("a pair"));
        assert_eq!((pair.a.as_str(), pair.b.as_str()), ("RUS", "USA"));
        assert!(matches!(state_pair("RUS"), Err(CliError::Input(_))));
        assert!(matches!(state_pair("RUS,USA,CHN"), Err(CliError::Input(_))));
    }
}
