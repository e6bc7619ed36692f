//! The bench's import section: GDELT 2.0 Events and Mentions files generated in the real
//! tab-separated formats (61 and 16 columns), imported through the streamed importers into
//! the bench's server as `diplog import` does, against COPY of as many rows into the plain
//! comparison table. Generates its own data; reads no file it did not write.

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use sqlx::PgPool;

use super::report::{ImportRun, peak_rss_mib, reset_peak_rss};
use crate::import::{gdelt, streamed::Tally};

/// States the generated events are between, as GDELT codes them (CAMEO country, name).
const STATES: [(&str, &str); 10] = [
    ("RUS", "RUSSIA"),
    ("USA", "UNITED STATES"),
    ("CHN", "CHINA"),
    ("FRA", "FRANCE"),
    ("DEU", "GERMANY"),
    ("GBR", "UNITED KINGDOM"),
    ("IND", "INDIA"),
    ("BRA", "BRAZIL"),
    ("JPN", "JAPAN"),
    ("TUR", "TURKEY"),
];

/// CAMEO codes of the generated events: (EventCode, EventBaseCode, EventRootCode, QuadClass).
const CODES: [(&str, &str, &str, u8); 9] = [
    ("040", "040", "04", 1),
    ("041", "041", "04", 1),
    ("036", "036", "03", 1),
    ("042", "042", "04", 1),
    ("043", "043", "04", 1),
    ("046", "046", "04", 1),
    ("057", "057", "05", 1),
    ("0874", "087", "08", 2),
    ("1121", "112", "11", 3),
];

/// Outlets the events and mentions come from.
const OUTLETS: usize = 50;

/// GLOBALEVENTIDs start here; each run numbers its own, so runs on one database do not meet.
fn first_event_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    1_000_000_000_000 + (nanos / 1000) % 1_000_000_000_000
}

/// One Events row (61 columns, GDELT 2.0 codebook order).
fn event_row(out: &mut impl std::io::Write, id: u64, i: usize) -> std::io::Result<()> {
    let (a1, n1) = STATES[i % STATES.len()];
    let (a2, n2) = STATES[(i % STATES.len() + 1 + (i / STATES.len()) % 9) % STATES.len()];
    let (code, base, root, quad) = CODES[i % CODES.len()];
    let geo_blank = "\t\t\t\t\t\t\t";
    writeln!(
        out,
        "{id}\t20250215\t202502\t2025\t2025.1233\
         \t{a1}GOV\t{n1}\t{a1}\t\t\t\t\tGOV\t\t\
         \t{a2}GOV\t{n2}\t{a2}\t\t\t\t\tGOV\t\t\
         \t1\t{code}\t{base}\t{root}\t{quad}\t1.0\t10\t2\t10\t-1.25\
         \t0{geo_blank}\t0{geo_blank}\t0{geo_blank}\
         \t20250215120000\thttps://www.news{outlet}.example.com/article/{i}",
        outlet = i % OUTLETS,
    )
}

/// One Mentions row (16 columns): a mention of event `id` by another outlet than its own.
fn mention_row(out: &mut impl std::io::Write, id: u64, i: usize) -> std::io::Result<()> {
    let outlet = (i + 1) % OUTLETS;
    writeln!(
        out,
        "{id}\t20250215120000\t20250215123000\t1\twire{outlet}.example.org\
         \thttps://wire{outlet}.example.org/story/{i}\t1\t-1\t12\t40\t1\t100\t3200\t-2.5\t\t"
    )
}

/// Writes `events` Events rows (`events.CSV`) and `mentions` Mentions rows (`mentions.CSV`,
/// one per event, cycling) into `dir`.
pub fn write_files(dir: &Path, events: usize, mentions: usize) -> std::io::Result<()> {
    let first = first_event_id();
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("events.CSV"))?);
    for i in 0..events {
        event_row(&mut out, first + i as u64, i)?;
    }
    out.flush()?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("mentions.CSV"))?);
    for i in 0..mentions {
        let event = i % events.max(1);
        mention_row(&mut out, first + event as u64, i)?;
    }
    out.flush()
}

/// Imports `rows` generated rows (half events, half mentions) in chunks of `chunk_rows`,
/// then COPYs as many rows into the comparison table.
pub async fn measure(
    url: &str,
    raw_pool: &PgPool,
    rows: usize,
    chunk_rows: usize,
) -> anyhow::Result<ImportRun> {
    let dir = tempfile::tempdir().context("could not make a directory for the GDELT files")?;
    let events = rows.div_ceil(2);
    let mentions = rows - events;
    write_files(dir.path(), events, mentions).context("could not write the GDELT files")?;
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())?
        .connect()
        .await
        .context("could not connect to the benchmark server")?;

    // The peak from here on is the import's (server and importer, both in this process).
    let reset = reset_peak_rss();
    let started = Instant::now();
    let mut tally = Tally::default();
    gdelt::import_events(
        channel.clone(),
        dir.path().join("events.CSV"),
        chunk_rows,
        &mut tally,
    )
    .await
    .context("the GDELT events import failed")?;
    let events_done = started.elapsed();
    gdelt::import_mentions(
        channel,
        dir.path().join("mentions.CSV"),
        chunk_rows,
        &mut tally,
    )
    .await
    .context("the GDELT mentions import failed")?;
    let elapsed = started.elapsed();
    let peak = reset.then(peak_rss_mib);
    anyhow::ensure!(
        tally.skipped_rows() == 0 && tally.rows == rows as u64,
        "the generated GDELT rows did not all import: {}",
        tally.summary()
    );

    let copy = super::appends::copy_in(raw_pool, rows).await?;
    let rows_per_sec = rows as f64 / elapsed.as_secs_f64();
    let copy_rows_per_sec = rows as f64 / copy.as_secs_f64();
    Ok(ImportRun {
        rows,
        chunk_rows,
        events_written: tally.written,
        secs: elapsed.as_secs_f64(),
        rows_per_sec,
        events_rows_per_sec: events as f64 / events_done.as_secs_f64(),
        mentions_rows_per_sec: mentions as f64 / (elapsed - events_done).as_secs_f64(),
        copy_rows_per_sec,
        ratio: rows_per_sec / copy_rows_per_sec,
        peak_rss_mib: peak,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_rows_have_the_columns_of_gdelt_2_0() {
        let mut events = Vec::new();
        event_row(&mut events, 1, 7).unwrap();
        let events = String::from_utf8(events).unwrap();
        assert_eq!(events.trim_end_matches('\n').split('\t').count(), 61);
        let mut mentions = Vec::new();
        mention_row(&mut mentions, 1, 7).unwrap();
        let mentions = String::from_utf8(mentions).unwrap();
        assert_eq!(mentions.trim_end_matches('\n').split('\t').count(), 16);
    }
}
