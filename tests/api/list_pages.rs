//! Pages of the projections' lists. Paging through a list, live or as of a position, in pages
//! of any size, gives the items of one whole answer once each, in order, under the same total.
//! A live list whose every passing row is an item (a timeline, of either kind of records or
//! both, the divergences, the channels unfiltered) is counted and paged by PostgreSQL, which
//! sends only the page's rows; one that derives statuses or declines rows reads each row and
//! keeps one page; the page's statement counts the rows once, not again for each row of the
//! page (its plan). A get reads the row its key names, or the rows of the stream it names. Counted on `/metrics` of a server of its own (its counters are its alone), not timed.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use diplog::import::{self, OnInvalid, scenario};
use diplog::projections::engine::listing::page_rows_sql;
use diplog::projections::engine::rows::RowFilter;
use diplog::proto::{self, projections_client::ProjectionsClient};
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;
use tonic::transport::Channel;

use crate::helpers::{Serve, ServeProcess, database_url_for, fresh_database, violated_fields};
use crate::metrics::{scrape, value};
use crate::projections::{as_of, without_age};
use crate::random_history::random_history;

const PAGED: &str = "diplog_projection_list_rows_total{read=\"page\"}";
const EACH_ROW: &str = "diplog_projection_list_rows_total{read=\"each\"}";

/// A list to page through.
#[derive(Debug, Clone, Copy)]
pub(crate) enum List {
    Channels,
    SummitsPending,
    Commitments,
    Divergences,
    Timeline(&'static str, proto::Records),
    Relations(proto::Records),
}

impl List {
    /// Whether every row passing its row filter is an item, so a live list pages in SQL.
    fn paged_in_sql(self) -> bool {
        matches!(
            self,
            List::Channels | List::Divergences | List::Timeline(..)
        )
    }
}

/// One page of `list`: its items (as `{:?}`, ages blanked) and the answer's info.
async fn page(
    channel: Channel,
    list: List,
    read: Option<proto::ReadOptions>,
    size: u32,
    token: String,
) -> (Vec<String>, proto::AnswerInfo) {
    let mut client = ProjectionsClient::new(channel);
    let mut request = proto::ListRequest {
        read,
        page_size: size,
        page_token: token,
        ..Default::default()
    };
    fn shown<T: std::fmt::Debug>(items: Vec<T>) -> Vec<String> {
        without_age(&items.iter().map(|i| format!("{i:?}")).collect::<Vec<_>>())
    }
    let (items, info) = match list {
        List::Channels => {
            let answer = client.list_channels(request).await.unwrap().into_inner();
            (shown(answer.channels), answer.info)
        }
        List::SummitsPending => {
            request.pending_only = true;
            let answer = client.list_summits(request).await.unwrap().into_inner();
            (shown(answer.summits), answer.info)
        }
        List::Commitments => {
            let answer = client.list_commitments(request).await.unwrap().into_inner();
            (shown(answer.commitments), answer.info)
        }
        List::Divergences => {
            let answer = client.list_divergences(request).await.unwrap().into_inner();
            (shown(answer.divergences), answer.info)
        }
        List::Timeline(actor, records) => {
            request.actor = actor.to_owned();
            request.records = records.into();
            let answer = client.get_timeline(request).await.unwrap().into_inner();
            (shown(answer.entries), answer.info)
        }
        List::Relations(records) => {
            request.records = records.into();
            let answer = client.list_relations(request).await.unwrap().into_inner();
            (shown(answer.relations), answer.info)
        }
    };
    (items, info.expect("an answer's info"))
}

/// Every page of `list` in pages of `size`: the items in order, and the total each page gave.
pub(crate) async fn every_page(
    server: &ServeProcess,
    list: List,
    read: Option<proto::ReadOptions>,
    size: u32,
) -> (Vec<String>, u32) {
    let (mut items, mut token, mut total) = (Vec::new(), String::new(), None);
    loop {
        let (some, info) = page(server.channel().await, list, read.clone(), size, token).await;
        assert!(some.len() <= size as usize, "{list:?}: a page of {size}");
        assert_eq!(
            *total.get_or_insert(info.total),
            info.total,
            "{list:?}: every page tells the same total"
        );
        items.extend(some);
        if info.next_page_token.is_empty() {
            break;
        }
        // The offset comes first: then the last item's place, and the position of an
        // answer on a day at the head.
        let offset = info
            .next_page_token
            .split(['~', '@'])
            .next()
            .unwrap_or_default();
        assert_eq!(
            offset,
            items.len().to_string(),
            "{list:?}: the next page starts after the items given"
        );
        token = info.next_page_token;
    }
    (items, total.unwrap_or(0))
}

/// A request for a list's first 1,000 items.
fn first_thousand(read: Option<proto::ReadOptions>) -> proto::ListRequest {
    proto::ListRequest {
        read,
        page_size: 1000,
        ..Default::default()
    }
}

/// The divergences a get by `key` answers with.
async fn divergences(
    client: &mut ProjectionsClient<Channel>,
    key: &str,
    read: Option<proto::ReadOptions>,
) -> Vec<proto::Divergence> {
    client
        .get_divergence(proto::GetRequest {
            read,
            key: key.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .divergences
}

fn counted(samples: &BTreeMap<String, f64>) -> (f64, f64) {
    (value(samples, PAGED), value(samples, EACH_ROW))
}

fn http(server: &ServeProcess) -> SocketAddr {
    server.http().parse().expect("an address")
}

/// A server of its own over the founding scenario and a random history; the log's head; and
/// its database.
async fn server_with_history() -> (ServeProcess, u64, PgConnectOptions) {
    let database = fresh_database().await;
    let server = Serve::on_database(&database_url_for(&database))
        .start()
        .await;
    let founding = scenario::parse(scenario::FOUNDING_SCENARIO).expect("parses");
    import::import(server.channel().await, founding.items, OnInvalid::RefuseAll)
        .await
        .expect("the founding scenario imports");
    import::import(
        server.channel().await,
        random_history(11, 160),
        OnInvalid::Report,
    )
    .await
    .expect("the history imports");
    let head = proto::event_log_client::EventLogClient::new(server.channel().await)
        .get_head(())
        .await
        .expect("the head")
        .into_inner()
        .position as u64;
    (server, head, database)
}

#[tokio::test]
async fn paging_through_a_list_gives_its_whole_answer_once_live_and_as_of() {
    let (server, head, _) = server_with_history().await;
    let live = Some(proto::ReadOptions {
        min_position: head,
        ..Default::default()
    });

    let lists = [
        List::Channels,
        List::SummitsPending,
        List::Commitments,
        List::Divergences,
        List::Timeline("RUS", proto::Records::Both),
        List::Timeline("RUS", proto::Records::Readouts),
        List::Timeline("RUS", proto::Records::Coded),
        List::Timeline("rus.president", proto::Records::Both),
        List::Relations(proto::Records::Both),
    ];
    for list in lists {
        let (whole, whole_info) = page(
            server.channel().await,
            list,
            live.clone(),
            1000,
            String::new(),
        )
        .await;
        assert!(whole_info.next_page_token.is_empty(), "{list:?}: one page");
        assert_eq!(
            whole_info.total as usize,
            whole.len(),
            "{list:?}: the total"
        );
        for (read, what) in [(live.clone(), "live"), (as_of(head), "as of the head")] {
            for size in [1, 4, 7] {
                let (paged, total) = every_page(&server, list, read.clone(), size).await;
                assert_eq!(paged, whole, "{list:?} {what} in pages of {size}");
                assert_eq!(total, whole_info.total, "{list:?} {what}: the total");
            }
        }
    }
    let rus = page(
        server.channel().await,
        List::Timeline("RUS", proto::Records::Both),
        live.clone(),
        1000,
        String::new(),
    )
    .await;
    assert!(
        rus.0.len() > 20,
        "the history gives Russia's timeline pages to turn: {}",
        rus.0.len()
    );

    // A live list paged in SQL reads the page's rows and no other; one that is not reads
    // every row passing its row filter, whatever the page.
    for list in lists {
        let before = counted(&scrape(http(&server)).await);
        let (items, info) =
            page(server.channel().await, list, live.clone(), 3, String::new()).await;
        let after = counted(&scrape(http(&server)).await);
        let (paged, each) = (after.0 - before.0, after.1 - before.1);
        if list.paged_in_sql() {
            assert_eq!(
                (paged, each),
                (items.len() as f64, 0.0),
                "{list:?}: rows read as a page, one by one"
            );
        } else {
            assert_eq!(paged, 0.0, "{list:?}: no page read");
            assert!(
                each >= info.total as f64,
                "{list:?}: each of its {} items' rows read ({each})",
                info.total
            );
        }
    }
}

/// A live list's next page starts right after the last item given, however many items the
/// log added before it meanwhile: none is given twice (as counting to an offset would) and
/// none after it is skipped. A token of the earlier form (an offset alone) still pages.
#[tokio::test]
async fn a_live_page_starts_after_the_last_item_given_while_the_log_adds_items_before_it() {
    let (server, head, _) = server_with_history().await;
    let list = List::Timeline("RUS", proto::Records::Both);
    let live = |position| {
        Some(proto::ReadOptions {
            min_position: position,
            ..Default::default()
        })
    };
    let (first, info) = page(server.channel().await, list, live(head), 40, String::new()).await;
    assert_eq!(first.len(), 40);
    let (offset, place) = info
        .next_page_token
        .split_once('~')
        .expect("a token naming the last item's place");
    assert_eq!((offset, place.contains('@')), ("40", false));

    // More of the history, its days all over the year: some land before the page's end.
    import::import(
        server.channel().await,
        random_history(12, 60),
        OnInvalid::Report,
    )
    .await
    .expect("more history imports");
    let now = proto::event_log_client::EventLogClient::new(server.channel().await)
        .get_head(())
        .await
        .expect("the head")
        .into_inner()
        .position as u64;
    let (whole, whole_info) =
        page(server.channel().await, list, live(now), 1000, String::new()).await;
    assert_eq!(whole_info.total as usize, whole.len(), "one page holds all");
    assert!(
        whole.len() > info.total as usize,
        "the import added items to the list ({} against {}): the counts below would not tell",
        whole.len(),
        info.total
    );
    let last = whole
        .iter()
        .position(|item| *item == first[39])
        .expect("the page's last item is still listed");
    assert!(
        last > 39,
        "items were added before the page's last one ({last}): the test would not tell"
    );

    let (second, second_info) = page(
        server.channel().await,
        list,
        live(now),
        40,
        info.next_page_token.clone(),
    )
    .await;
    // The count the first page took (and the server kept) is not the list's any more.
    assert_eq!(
        (info.total, second_info.total),
        (info.total, whole_info.total),
        "each page counts the rows as they are"
    );
    let after = &whole[last + 1..];
    assert!(!after.is_empty(), "items follow the page");
    assert_eq!(
        second,
        after[..after.len().min(40)],
        "the items right after it"
    );
    // A place that is not one a token gives is refused, naming the field.
    let mut client = ProjectionsClient::new(server.channel().await);
    for forged in ["40~not base64!", "40~bm8gc2VwYXJhdG9y", "x~AA"] {
        let refused = client
            .get_timeline(proto::ListRequest {
                actor: "RUS".into(),
                page_token: forged.into(),
                ..Default::default()
            })
            .await
            .expect_err(forged);
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{forged}");
        assert_eq!(violated_fields(&refused), ["page_token"], "{forged}");
    }
    let (by_offset, _) = page(server.channel().await, list, live(now), 40, "40".into()).await;
    assert_eq!(
        by_offset,
        whole[40..whole.len().min(80)],
        "an offset token counts to its item"
    );
}

#[tokio::test]
async fn a_get_reads_the_row_its_key_names_or_the_rows_of_the_stream_it_names() {
    let (server, head, _) = server_with_history().await;
    let live = Some(proto::ReadOptions {
        min_position: head,
        ..Default::default()
    });
    let mut client = ProjectionsClient::new(server.channel().await);
    let all = client
        .list_divergences(first_thousand(live.clone()))
        .await
        .unwrap()
        .into_inner()
        .divergences;
    assert!(all.len() > 3, "occurrences with sources: {}", all.len());
    let get = |key: &str, read: Option<proto::ReadOptions>| proto::GetRequest {
        read,
        key: key.to_owned(),
    };
    let each_row = || async { counted(&scrape(http(&server)).await).1 };

    // By its event id: the occurrence's own row, and no other.
    let last = all.last().unwrap();
    let before = each_row().await;
    let by_id = divergences(&mut client, &last.occurrence, live.clone()).await;
    assert_eq!(by_id, std::slice::from_ref(last));
    assert_eq!(each_row().await - before, 1.0, "one row read");
    // The same as of the head, from a replay.
    let replayed = divergences(&mut client, &last.occurrence, as_of(head)).await;
    assert_eq!(
        without_age(&[format!("{replayed:?}")]),
        without_age(&[format!("{by_id:?}")])
    );

    // By its stream (the one with the most occurrences): its first occurrence, from the rows
    // whose data holds that stream, and no other rows.
    let mut by_count: BTreeMap<&str, usize> = BTreeMap::new();
    for divergence in &all {
        *by_count.entry(divergence.stream_id.as_str()).or_default() += 1;
    }
    let (stream, of_stream) = by_count
        .iter()
        .max_by_key(|(_, count)| **count)
        .map(|(stream, count)| (stream.to_string(), *count))
        .unwrap();
    let first_of_stream = all.iter().find(|d| d.stream_id == stream).unwrap();
    let before = each_row().await;
    let by_stream = divergences(&mut client, &stream, live.clone()).await;
    assert_eq!(by_stream, std::slice::from_ref(first_of_stream));
    assert_eq!(
        each_row().await - before,
        of_stream as f64,
        "the stream's rows read"
    );
    let replayed = divergences(&mut client, &stream, as_of(head)).await;
    assert_eq!(
        without_age(&[format!("{replayed:?}")]),
        without_age(&[format!("{by_stream:?}")])
    );

    // An event id that names no occurrence, as a key or as a stream: NOT_FOUND, no row read.
    let before = each_row().await;
    let missing = client
        .get_divergence(get(&uuid::Uuid::now_v7().to_string(), live.clone()))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    assert_eq!(each_row().await - before, 0.0);

    // A summit by its stream (its key): its row alone.
    let summits = client
        .list_summits(first_thousand(live.clone()))
        .await
        .unwrap()
        .into_inner()
        .summits;
    let summit = summits.first().expect("the founding summit");
    let before = each_row().await;
    let got = client
        .get_summit(get(&summit.key, live.clone()))
        .await
        .unwrap()
        .into_inner()
        .summits;
    assert_eq!(
        without_age(&[format!("{got:?}")]),
        without_age(&[format!("{:?}", std::slice::from_ref(summit))])
    );
    assert_eq!(each_row().await - before, 1.0);
}

/// The largest `Actual Loops` of any node of an `EXPLAIN (ANALYZE, FORMAT JSON)` plan.
fn most_loops(plan: &serde_json::Value) -> u64 {
    let own = plan["Actual Loops"].as_u64().unwrap_or(0);
    let children = plan["Plans"]
        .as_array()
        .into_iter()
        .flatten()
        .map(most_loops);
    children.fold(own, u64::max)
}

/// A server with a history whose runners have written every row (a page at the head was
/// answered), and a connection to its database with `settings` made.
async fn caught_up_connection(settings: &str) -> (ServeProcess, sqlx::PgConnection) {
    let (server, head, database) = server_with_history().await;
    page(
        server.channel().await,
        List::Timeline("RUS", proto::Records::Both),
        Some(proto::ReadOptions {
            min_position: head,
            ..Default::default()
        }),
        1,
        String::new(),
    )
    .await;
    let mut connection = database.connect().await.expect("connects");
    sqlx::raw_sql(sqlx::AssertSqlSafe(settings.to_owned()))
        .execute(&mut connection)
        .await
        .expect("set");
    (server, connection)
}

/// `EXPLAIN (options)` of a page of five of the timeline's rows passing `filter`: the first,
/// or the one after the place `after` (sort key, key).
async fn explained_page(
    connection: &mut sqlx::PgConnection,
    options: &str,
    filter: &RowFilter,
    after: Option<(&str, &str)>,
) -> serde_json::Value {
    explained_counted_page(connection, options, filter, after, None).await
}

/// As `explained_page`, the page given a count (generation, position, total) taken before.
async fn explained_counted_page(
    connection: &mut sqlx::PgConnection,
    options: &str,
    filter: &RowFilter,
    after: Option<(&str, &str)>,
    known: Option<(i64, i64, i64)>,
) -> serde_json::Value {
    let wrap = format!("explain ({options}) {{}}");
    let (explained,) = page_statement::<(serde_json::Value,)>(&wrap, filter, after, known)
        .fetch_one(connection)
        .await
        .expect("explained");
    explained
}

/// The statement of a page of five of the timeline's rows passing `filter` (after the place
/// `after`, given the count `known`), put where `wrap` has `{}`, its parameters bound.
fn page_statement<'q, O>(
    wrap: &str,
    filter: &'q RowFilter,
    after: Option<(&'q str, &'q str)>,
    known: Option<(i64, i64, i64)>,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>
where
    O: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    let sql = wrap.replace("{}", &page_rows_sql(filter, after.is_some()));
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind("timeline")
        .bind(&filter.actor)
        .bind(&filter.states)
        .bind(&filter.status)
        .bind(&filter.without_status)
        .bind(&filter.keys)
        .bind(filter.at_path.as_ref().map(|(path, _)| path))
        .bind(filter.at_path.as_ref().map(|(_, value)| value))
        .bind(0_i64)
        .bind(5_i64)
        .bind(after.map(|(sort_key, _)| sort_key))
        .bind(after.map(|(_, key)| key))
        .bind(known.map(|(generation, _, _)| generation))
        .bind(known.map(|(_, position, _)| position))
        .bind(known.map(|(_, _, total)| total))
}

/// The relations a plan's nodes scan, each with how many times the node ran.
fn scans(plan: &serde_json::Value, found: &mut Vec<(String, u64)>) {
    if let Some(relation) = plan["Relation Name"].as_str() {
        found.push((
            relation.to_owned(),
            plan["Actual Loops"].as_u64().unwrap_or(0),
        ));
    }
    for child in plan["Plans"].as_array().into_iter().flatten() {
        scans(child, found);
    }
}

#[tokio::test]
async fn a_page_takes_the_count_an_earlier_page_took_while_the_rows_have_not_moved() {
    let (_server, mut connection) = caught_up_connection("").await;
    let filter = RowFilter {
        actor: Some("RUS".to_owned()),
        ..RowFilter::default()
    };
    let (generation, position): (i64, i64) = sqlx::query_as(
        "select generation, position from projection_checkpoints where projection = 'timeline'",
    )
    .fetch_one(&mut connection)
    .await
    .expect("the checkpoint");
    let page = |known| {
        page_statement::<(Option<i64>, Option<i64>, Option<i64>)>(
            "select generation, position, total from ({}) p limit 1",
            &filter,
            None,
            known,
        )
    };
    let (_, _, counted) = page(None).fetch_one(&mut connection).await.expect("a page");
    let counted = counted.expect("a count");
    assert!(counted > 5, "more rows than a page: {counted}");
    // A count said to be of this generation and position is taken as it is (were it wrong,
    // it would show: this one is made up)…
    let taken = page(Some((generation, position, 999_999)))
        .fetch_one(&mut connection)
        .await
        .expect("a page");
    assert_eq!(taken, (Some(generation), Some(position), Some(999_999)));
    // …and the rows are not counted: no scan of them runs but the page's own.
    let explained = explained_counted_page(
        &mut connection,
        "analyze, format json",
        &filter,
        None,
        Some((generation, position, counted)),
    )
    .await;
    let mut ran = Vec::new();
    scans(&explained[0]["Plan"], &mut ran);
    let rows_scans = |ran: &[(String, u64)]| {
        ran.iter()
            .filter(|(relation, loops)| relation.starts_with("projection_rows") && *loops > 0)
            .count()
    };
    assert_eq!(rows_scans(&ran), 1, "{explained:#}");
    // A count of another position or generation is not: the rows are counted again.
    for stale in [(generation, position - 1), (generation + 1, position)] {
        let (_, _, total) = page(Some((stale.0, stale.1, 999_999)))
            .fetch_one(&mut connection)
            .await
            .expect("a page");
        assert_eq!(total, Some(counted), "{stale:?}");
    }
    let explained = explained_counted_page(
        &mut connection,
        "analyze, format json",
        &filter,
        None,
        Some((generation, position - 1, counted)),
    )
    .await;
    let mut ran = Vec::new();
    scans(&explained[0]["Plan"], &mut ran);
    assert_eq!(rows_scans(&ran), 2, "{explained:#}");
}

#[tokio::test]
async fn a_page_of_a_list_counts_its_rows_once() {
    let (_server, mut connection) = caught_up_connection("").await;
    let filter = RowFilter {
        states: vec!["RUS".to_owned()],
        without_status: vec!["actor".to_owned()],
        ..RowFilter::default()
    };
    let explained = explained_page(&mut connection, "analyze, format json", &filter, None).await;
    let plan = &explained[0]["Plan"];
    assert_eq!(plan["Actual Rows"], 5, "a page of five: {explained:#}");
    // Each node runs once: the count is not evaluated again for each row of the page.
    assert_eq!(most_loops(plan), 1, "{explained:#}");
}

/// The names of the nodes of an `EXPLAIN (FORMAT JSON)` plan, with the index each scans.
fn nodes(plan: &serde_json::Value, found: &mut Vec<String>) {
    let index = plan["Index Name"].as_str().unwrap_or_default();
    found.push(format!(
        "{} {index}",
        plan["Node Type"].as_str().unwrap_or("?")
    ));
    for child in plan["Plans"].as_array().into_iter().flatten() {
        nodes(child, found);
    }
}

#[tokio::test]
async fn a_page_of_an_unfiltered_list_is_read_along_the_list_order_index() {
    // So few rows would be sorted, not read along an index: with sorts and sequential scans
    // made dear, the plan shows whether an index gives the list's order at all.
    let (_server, mut connection) =
        caught_up_connection("set enable_sort = off; set enable_seqscan = off").await;
    for after in [None, Some(("2025-02-15", "interaction:"))] {
        let explained =
            explained_page(&mut connection, "format json", &RowFilter::default(), after).await;
        let mut found = Vec::new();
        nodes(&explained[0]["Plan"], &mut found);
        assert!(
            found.iter().all(|node| !node.starts_with("Sort")),
            "the page after {after:?} is not sorted: {found:?}"
        );
        assert!(
            found
                .iter()
                .any(|node| node.starts_with("Index") && node.ends_with("_order")),
            "the page after {after:?} reads the list-order index: {found:?}"
        );
    }
}

/// A page that starts after a row's place seeks it in the list-order index: the rows before
/// it are neither read nor counted off (as an offset's would be).
#[tokio::test]
async fn a_page_after_a_place_seeks_it_in_the_list_order_index() {
    // As above: so few rows would be sorted, so the plan is made to show what an index can do.
    let (_server, mut connection) =
        caught_up_connection("set enable_sort = off; set enable_seqscan = off").await;
    let filter = RowFilter {
        without_status: vec!["actor".to_owned()],
        ..RowFilter::default()
    };
    let (sort_key, key): (String, String) = sqlx::query_as(
        "select r.sort_key, r.key from projection_rows r join projection_checkpoints c \
         using (projection, generation) where r.projection = 'timeline' \
         order by r.sort_key collate \"C\", r.key collate \"C\" offset 3 limit 1",
    )
    .fetch_one(&mut connection)
    .await
    .expect("the fourth row");
    let explained = explained_page(
        &mut connection,
        "analyze, format json",
        &filter,
        Some((&sort_key, &key)),
    )
    .await;
    let text = explained.to_string();
    assert!(
        text.contains("\"Index Cond\"") && text.contains("ROW("),
        "the place is an index condition: {explained:#}"
    );
    let total: i64 = sqlx::query_scalar(
        "select count(*) from projection_rows r join projection_checkpoints c \
         using (projection, generation) where r.projection = 'timeline' and r.status <> 'actor'",
    )
    .fetch_one(&mut connection)
    .await
    .expect("counted");
    assert!(
        total > 9,
        "rows enough for two pages after the place: {total}"
    );
    assert_eq!(explained[0]["Plan"]["Actual Rows"], 5, "{explained:#}");
}
