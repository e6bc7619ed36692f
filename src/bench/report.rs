//! What `diplog bench` reports: the figures (serialized for `--json`), percentiles, the
//! peak-RSS reading and the table for people. Measures nothing itself.

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub machine: Machine,
    /// `--quick`: fewer events everywhere (see `events_per_run` and `rebuild.events`).
    pub quick: bool,
    pub events_per_run: usize,
    pub appends: Vec<AppendRun>,
    /// `COPY ... FROM STDIN` of `events_per_run` rows of the same shape on one connection:
    /// PostgreSQL's own ceiling for writing these rows.
    pub copy_in_events_per_sec: f64,
    /// `None` for a section left out with `--skip`.
    pub read: Option<ReadRun>,
    pub rebuild: Option<RebuildRun>,
    /// One run per subscriber count (`--subscribers`).
    pub subscription: Option<Vec<SubscriptionRun>>,
    pub as_of: Option<AsOfRun>,
    pub import: Option<ImportRun>,
    pub peak_rss: PeakRss,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub postgres: String,
    /// `release` or `debug`: debug figures are not worth quoting.
    pub build: &'static str,
    /// `embedded` (a throwaway cluster, PostgreSQL's default durable settings) or `url`.
    pub database: &'static str,
}

#[derive(Debug, Serialize)]
pub struct AppendRun {
    /// diplog servers on the one database, the clients spread evenly over them.
    pub servers: usize,
    pub events_per_append: usize,
    pub clients: usize,
    pub grpc_events_per_sec: f64,
    /// One single-row INSERT transaction per event, `clients` connections.
    pub raw_insert_events_per_sec: f64,
    /// gRPC over raw INSERT: above 1 means the server beats a plain store.
    pub ratio: f64,
    /// gRPC over COPY.
    pub copy_ratio: f64,
    /// Per gRPC append (request sent to response received, seen by the client).
    pub latency: Latency,
    /// Per raw INSERT transaction.
    pub raw_latency: Latency,
    /// Typed `CallHeld` events through `Diplomacy.Record`, `events_per_append` per record
    /// (one server only; `None` with more, or with `--skip records`).
    pub record_events_per_sec: Option<f64>,
    /// Typed records over raw INSERT.
    pub record_ratio: Option<f64>,
    /// Typed records over generic gRPC appends of the same size (issue 19's goal: at least
    /// 0.5 at 16 and 64 clients).
    pub record_vs_append: Option<f64>,
    /// How long after the last typed record every projection had reached the head: the
    /// projections' work the record rate leaves out. The next run starts only after it.
    pub record_projections_lag_secs: Option<f64>,
}

#[derive(Debug, Serialize, Clone, Copy)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub samples: usize,
}

impl Latency {
    /// Nearest-rank percentiles of `samples` (sorted here).
    pub fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let at = |q: f64| -> f64 {
            if samples.is_empty() {
                return 0.0;
            }
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1].as_secs_f64() * 1000.0
        };
        Self {
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: at(1.0),
            samples: samples.len(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ReadRun {
    /// Events in the log when it was read (the whole log, every way).
    pub events: u64,
    /// The streams `ReadStream` read, one call each.
    pub streams: u64,
    /// `EventLog.ReadAll` from the start, one client: one event per message. This and the
    /// other rates are over both passes (see `passes`).
    pub grpc_events_per_sec: f64,
    /// `EventLog.ReadAllBatches` from the start, one client, batches of the server's default
    /// bound (1 MiB).
    pub batched_events_per_sec: f64,
    /// `EventLog.ReadStream` of every stream in turn, one client, one call per stream.
    pub stream_events_per_sec: f64,
    /// `EventLog.Subscribe` from the start, one client, until its caught-up checkpoint.
    pub subscribe_events_per_sec: f64,
    /// The log's typed events (`CallHeld`), which the filtered subscription selects.
    pub typed_events: u64,
    /// `EventLog.Subscribe` as above, filtered to the typed events: those per second.
    pub subscribe_typed_events_per_sec: f64,
    /// The event lines of `diplog export` (leaf hash and JSON line per event), to a sink.
    pub export_events_per_sec: f64,
    /// `COPY (select … from events order by position) TO STDOUT` of the same rows.
    pub copy_out_events_per_sec: f64,
    /// `ReadAll` over COPY.
    pub ratio: f64,
    /// `ReadAllBatches` over COPY.
    pub batched_ratio: f64,
    /// `ReadStream` over COPY.
    pub stream_ratio: f64,
    /// `Subscribe`'s catch-up over COPY.
    pub subscribe_ratio: f64,
    /// The filtered subscription's catch-up (its events per second) over COPY.
    pub subscribe_typed_ratio: f64,
    /// The export over COPY.
    pub export_ratio: f64,
    /// Each pass alone: ReadAll, ReadAllBatches, ReadStream, Subscribe, Subscribe to typed
    /// events, export, COPY, then the same in reverse order.
    pub passes: Vec<ReadPass>,
}

#[derive(Debug, Serialize)]
pub struct ReadPass {
    pub grpc_events_per_sec: f64,
    pub batched_events_per_sec: f64,
    pub stream_events_per_sec: f64,
    pub subscribe_events_per_sec: f64,
    pub subscribe_typed_events_per_sec: f64,
    pub export_events_per_sec: f64,
    pub copy_out_events_per_sec: f64,
}

#[derive(Debug, Serialize)]
pub struct RebuildRun {
    /// The log head the projections were rebuilt up to (every event is read).
    pub events: u64,
    /// Of those, typed diplomatic events (what the projections apply).
    pub diplomatic_events: u64,
    pub projections: usize,
    /// The live runners catching up with the bulk-loaded events (before the rebuild).
    pub catch_up_secs: f64,
    pub catch_up_events_per_sec: f64,
    /// A requested rebuild of every projection, until each has swapped in at the head.
    pub rebuild_secs: f64,
    pub events_per_sec: f64,
}

#[derive(Debug, Serialize)]
pub struct SubscriptionRun {
    /// Live subscribers on the one server, all subscribed before the first append.
    pub subscribers: usize,
    pub appends: usize,
    /// Appends per second offered by the one writing client.
    pub rate_per_sec: f64,
    /// Append acknowledged (client side) → the event received by a live subscriber, over
    /// every subscriber's receipt of every append (`appends × subscribers` samples).
    pub latency: Latency,
    /// Receipts a subscriber had before the append's response reached the writer (counted
    /// as 0 ms in the latency).
    pub before_ack: usize,
}

#[derive(Debug, Serialize)]
pub struct AsOfRun {
    /// The log head when the section ran.
    pub head: u64,
    /// The position every answer is asked as of (90% of the head).
    pub position: u64,
    /// VmRSS of the bench process before the first answer.
    pub rss_before_mib: f64,
    pub answers: Vec<AsOfAnswer>,
}

#[derive(Debug, Serialize)]
pub struct AsOfAnswer {
    pub projection: &'static str,
    /// The RPC asked (the first page of a list, or a timeline of one actor).
    pub rpc: &'static str,
    /// The same first page of the live projection, asked before the as-of ones: its time,
    /// the bench process's VmHWM during it, and its total (at the head).
    pub live_secs: f64,
    pub live_peak_rss_mib: Option<f64>,
    pub live_total: u32,
    /// VmRSS of the bench process just before the first ask: what the earlier asks left
    /// resident (the rows the server keeps from each replay) is in the peaks below too.
    pub rss_before_mib: f64,
    /// The first ask: a replay of the log from the start (or from rows an earlier replay of
    /// this server kept before `position`, which the bench's do not).
    pub first_secs: f64,
    /// The same ask again: answered from the rows the first one kept at `position`, or
    /// replayed again when they did not fit the server's budget. `None` when the first was
    /// stopped.
    pub again_secs: Option<f64>,
    /// VmHWM of the bench process during the first ask (reset before it): the server's
    /// replay and the client together. `None` where it cannot be reset.
    pub first_peak_rss_mib: Option<f64>,
    /// The same during the second ask.
    pub again_peak_rss_mib: Option<f64>,
    /// Items in the answer (`AnswerInfo.total`: all pages); 0 when stopped.
    pub total: u32,
    /// The bench process's RSS when the first ask was stopped for passing
    /// `--as-of-max-rss-mib` (the call cancelled; `first_secs` is the time until then).
    pub stopped_at_rss_mib: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct ImportRun {
    /// GDELT 2.0 rows generated and imported: half Events rows, then half Mentions rows (each
    /// mention attached to its event by another outlet).
    pub rows: usize,
    /// Rows per chunk (`--chunk-rows` of `diplog import`).
    pub chunk_rows: usize,
    /// Events the import wrote (the coded events, their source reports, actor registrations).
    pub events_written: usize,
    pub secs: f64,
    /// Both files, start to end.
    pub rows_per_sec: f64,
    pub events_rows_per_sec: f64,
    pub mentions_rows_per_sec: f64,
    /// `COPY ... FROM STDIN` of as many rows into the plain comparison table.
    pub copy_rows_per_sec: f64,
    /// Import over COPY.
    pub ratio: f64,
    /// VmHWM of the bench process during the import alone (reset before it): the server and
    /// the importer together, so an upper bound for either. `None` where it cannot be reset.
    pub peak_rss_mib: Option<f64>,
}

#[derive(Debug, Serialize, Clone, Copy)]
pub struct PeakRss {
    /// VmHWM of the bench process: the server, its clients and the raw-INSERT side together
    /// (PostgreSQL is another process, not included). After the append runs (64 clients).
    pub after_appends_mib: f64,
    /// After the subscription run and the rebuild (bulk load, catch-up, rebuild).
    pub after_rebuild_mib: f64,
    /// After the read-back too (before the import, which has its own peak).
    pub end_mib: f64,
}

/// This process's peak resident set size (VmHWM), in MiB; 0 where /proc is not available.
pub fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

/// This process's resident set size now (VmRSS), in MiB; 0 where /proc is not available.
pub fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

/// Resets this process's VmHWM to its current RSS; false where that cannot be done.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// A `kB` field of /proc/self/status, in MiB.
fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

pub fn print_table(report: &BenchReport) {
    let m = &report.machine;
    println!(
        "diplog bench{}: PostgreSQL {} ({}), {} cores, {} build; {} events per append run",
        if report.quick { " --quick" } else { "" },
        m.postgres,
        m.database,
        m.cores,
        m.build,
        report.events_per_run
    );
    println!();
    println!(
        "Appends (events/s; raw = one single-row INSERT transaction per event at the same \
         concurrency; COPY = {:.0} events/s on one connection)",
        report.copy_in_events_per_sec
    );
    println!(
        "{:>7} {:>6} {:>7} {:>10} {:>10} {:>8} {:>8} {:>26} {:>10} {:>8} {:>9} {:>9}",
        "servers",
        "events",
        "clients",
        "gRPC",
        "raw INSERT",
        "gRPC/raw",
        "gRPC/COPY",
        "gRPC latency p50/p99/max",
        "Record",
        "Rec/raw",
        "Rec/gRPC",
        "Proj. lag"
    );
    for run in &report.appends {
        let latency = format!(
            "{:.1}/{:.1}/{:.1} ms",
            run.latency.p50_ms, run.latency.p99_ms, run.latency.max_ms
        );
        let (record, record_ratio, record_vs_append) = match (
            run.record_events_per_sec,
            run.record_ratio,
            run.record_vs_append,
        ) {
            (Some(rate), Some(ratio), Some(vs)) => (
                format!("{rate:.0}"),
                format!("{ratio:.2}x"),
                format!("{vs:.2}x"),
            ),
            _ => ("-".to_owned(), "-".to_owned(), "-".to_owned()),
        };
        let lag = run
            .record_projections_lag_secs
            .map_or_else(|| "-".to_owned(), |lag| format!("{lag:.1} s"));
        println!(
            "{:>7} {:>6} {:>7} {:>10.0} {:>10.0} {:>7.2}x {:>8.3}x {:>26} {:>10} {:>8} {:>9} {:>9}",
            run.servers,
            run.events_per_append,
            run.clients,
            run.grpc_events_per_sec,
            run.raw_insert_events_per_sec,
            run.ratio,
            run.copy_ratio,
            latency,
            record,
            record_ratio,
            record_vs_append,
            lag
        );
    }
    println!(
        "(events = events per gRPC append and per Record; Record = typed CallHeld events \
         through Diplomacy.Record, rules checked first, on one server; Rec/gRPC = typed records \
         over generic appends of the same size; Proj. lag = how long after the last record every \
         projection had reached the head)"
    );
    println!();
    if let Some(r) = &report.read {
        println!(
            "Read back {} events, events/s (ratio to COPY): gRPC ReadAll {:.0} ({:.2}), \
             ReadAllBatches {:.0} ({:.2}), ReadStream of {} streams {:.0} ({:.2}), Subscribe \
             catch-up {:.0} ({:.2}), of the {} typed events only {:.0} ({:.2}), export {:.0} \
             ({:.2}); COPY TO STDOUT {:.0}",
            r.events,
            r.grpc_events_per_sec,
            r.ratio,
            r.batched_events_per_sec,
            r.batched_ratio,
            r.streams,
            r.stream_events_per_sec,
            r.stream_ratio,
            r.subscribe_events_per_sec,
            r.subscribe_ratio,
            r.typed_events,
            r.subscribe_typed_events_per_sec,
            r.subscribe_typed_ratio,
            r.export_events_per_sec,
            r.export_ratio,
            r.copy_out_events_per_sec
        );
        let passes: Vec<String> = r
            .passes
            .iter()
            .map(|p| {
                format!(
                    "{:.0} / {:.0} / {:.0} / {:.0} / {:.0} / {:.0} / {:.0}",
                    p.grpc_events_per_sec,
                    p.batched_events_per_sec,
                    p.stream_events_per_sec,
                    p.subscribe_events_per_sec,
                    p.subscribe_typed_events_per_sec,
                    p.export_events_per_sec,
                    p.copy_out_events_per_sec
                )
            })
            .collect();
        println!(
            "(over two passes, in the order above, events/s: {}; the second pass in reverse \
             order)",
            passes.join(" and ")
        );
    }
    if let Some(b) = &report.rebuild {
        println!(
            "Rebuild of all {} projections over {} events ({} diplomatic): {:.1} s, {:.0} events/s \
         (catch-up of the live runners before it: {:.1} s, {:.0} events/s)",
            b.projections,
            b.events,
            b.diplomatic_events,
            b.rebuild_secs,
            b.events_per_sec,
            b.catch_up_secs,
            b.catch_up_events_per_sec
        );
    }
    for s in report.subscription.iter().flatten() {
        println!(
            "Subscription delivery (ack → live subscriber), {} subscriber(s), {} appends at \
             {:.0}/s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} receipts ({} arrived \
             before the ack)",
            s.subscribers,
            s.appends,
            s.rate_per_sec,
            s.latency.p50_ms,
            s.latency.p99_ms,
            s.latency.max_ms,
            s.latency.samples,
            s.before_ack
        );
    }
    if let Some(a) = &report.as_of {
        println!(
            "As-of answers at position {} of {} (bench process RSS {:.0} MiB before; peak = \
             VmHWM during the answer, server + client):",
            a.position, a.head, a.rss_before_mib
        );
        let peak = |mib: Option<f64>| mib.map_or("-".to_owned(), |mib| format!("{mib:.0} MiB"));
        for answer in &a.answers {
            if let Some(stopped) = answer.stopped_at_rss_mib {
                println!(
                    "  {:<12} {:<16} stopped after {:.2} s at {stopped:.0} MiB RSS \
                     (--as-of-max-rss-mib)",
                    answer.projection, answer.rpc, answer.first_secs
                );
                continue;
            }
            println!(
                "  {:<12} {:<16} live {:>6.2} s (peak {:>8}); RSS before {:>6.0} MiB, first \
                 {:>7.2} s (peak {:>8}), again {:>7.2} s (peak {:>8}), {} items",
                answer.projection,
                answer.rpc,
                answer.live_secs,
                peak(answer.live_peak_rss_mib),
                answer.rss_before_mib,
                answer.first_secs,
                peak(answer.first_peak_rss_mib),
                answer.again_secs.unwrap_or(0.0),
                peak(answer.again_peak_rss_mib),
                answer.total
            );
        }
    }
    if let Some(i) = &report.import {
        println!(
            "GDELT import of {} rows ({} events + {} mentions rows, chunks of {}): {:.1} s, \
             {:.0} rows/s (events {:.0}/s, mentions {:.0}/s), {} events written; COPY of as many \
             rows {:.0} rows/s, ratio {:.3}; peak RSS during it (server + importer) {}",
            i.rows,
            i.rows.div_ceil(2),
            i.rows / 2,
            i.chunk_rows,
            i.secs,
            i.rows_per_sec,
            i.events_rows_per_sec,
            i.mentions_rows_per_sec,
            i.events_written,
            i.copy_rows_per_sec,
            i.ratio,
            i.peak_rss_mib
                .map_or("not measured".to_owned(), |mib| format!("{mib:.0} MiB"))
        );
    }
    // Only the phases that ran: a peak "after the rebuild" of a run without one would read
    // as a figure for a rebuild.
    let mut peaks = vec![format!(
        "{:.0} MiB after the appends",
        report.peak_rss.after_appends_mib
    )];
    if report.rebuild.is_some() {
        peaks.push(format!(
            "{:.0} MiB after the rebuild",
            report.peak_rss.after_rebuild_mib
        ));
    }
    if report.read.is_some() {
        peaks.push(format!(
            "{:.0} MiB at the end (after the read-back)",
            report.peak_rss.end_mib
        ));
    }
    println!(
        "Peak RSS of the bench process (server + clients, not PostgreSQL): {}",
        peaks.join(", ")
    );
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Latency;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples = (1..=100).map(Duration::from_millis).collect();
        let latency = Latency::of(samples);
        assert_eq!(latency.p50_ms, 50.0);
        assert_eq!(latency.p99_ms, 99.0);
        assert_eq!(latency.max_ms, 100.0);
        assert_eq!(Latency::of(Vec::new()).samples, 0);
    }
}
