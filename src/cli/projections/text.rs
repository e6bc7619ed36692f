//! How the projection commands print their answers for people: tables aligned by
//! characters, dates as recorded, parties and places by name, changes as they come.

use std::fmt::Write as _;

use crate::cli::query_args::QueryArgs;
use crate::proto;

/// The first line: the position the answer reflects, and for as-of answers the time it is
/// about.
pub(super) fn header(info: Option<&proto::AnswerInfo>, query: &QueryArgs) -> String {
    let position = info.map_or(0, |i| i.position);
    let reference = info
        .and_then(|i| i.reference_time.as_ref())
        .map(timestamp)
        .unwrap_or_default();
    match (query.on, query.as_of) {
        (Some(day), None) => format!(
            "On {day}, as the log knows it at position {position} (statuses judged at {reference})\n"
        ),
        (Some(day), Some(_)) => format!(
            "On {day}, as the log knew it at position {position} (statuses judged at {reference})\n"
        ),
        (None, Some(_)) => format!("At log position {position}, as of {reference}\n"),
        (None, None) => format!("At log position {position} (now: {reference})\n"),
    }
}

fn timestamp(time: &prost_types::Timestamp) -> String {
    chrono::DateTime::from_timestamp(time.seconds, time.nanos.max(0) as u32)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| format!("{}s", time.seconds))
}

/// A fuzzy time as given: its instant, day or month, and its time zone if any.
pub(super) fn fuzzy(time: Option<&proto::FuzzyTime>) -> String {
    use proto::fuzzy_time::Precision;
    let Some(time) = time else {
        return String::new();
    };
    let mut text = match &time.precision {
        Some(Precision::Instant(instant)) => timestamp(instant),
        Some(Precision::Day(day)) => day.clone(),
        Some(Precision::Month(month)) => month.clone(),
        None => String::new(),
    };
    if !time.time_zone.is_empty() {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&format!("({})", time.time_zone));
    }
    text
}

fn parties(parties: &[proto::Party]) -> String {
    parties
        .iter()
        .map(|p| {
            let name = if p.name.is_empty() { &p.id } else { &p.name };
            match (p.holder_name.as_str(), p.holder.as_str()) {
                ("", "") => name.clone(),
                ("", holder) | (holder, _) => format!("{name} ({holder})"),
            }
        })
        .collect::<Vec<_>>()
        .join(" – ")
}

fn place(place: Option<&proto::Place>) -> String {
    match place {
        Some(p) if !p.country.is_empty() && !p.name.is_empty() => {
            format!("{} ({})", p.name, p.country)
        }
        Some(p) if !p.name.is_empty() => p.name.clone(),
        Some(p) => p.country.clone(),
        None => String::new(),
    }
}

/// An expected period: its date as given and its wording, quoted (`2026-04 “in the spring”`).
fn expected(time: Option<&proto::FuzzyTime>, text: &str) -> String {
    let mut parts = vec![fuzzy(time)];
    if !text.is_empty() {
        parts.push(format!("“{text}”"));
    }
    parts.retain(|part| !part.is_empty());
    parts.join(" ")
}

fn participant(p: &proto::TimelineParticipant) -> String {
    let name = if p.name.is_empty() { &p.actor } else { &p.name };
    let office = if p.acting_as_name.is_empty() {
        &p.acting_as
    } else {
        &p.acting_as_name
    };
    if office.is_empty() {
        name.clone()
    } else {
        format!("{name}, as {office}")
    }
}

pub(super) fn channel_table(channels: &[proto::Channel], none: &str) -> String {
    channel_rows(channels).text(none)
}

pub(super) fn channel_rows(channels: &[proto::Channel]) -> Table {
    let rows: Vec<Vec<String>> = channels
        .iter()
        .map(|c| {
            vec![
                parties(&c.parties),
                c.status.clone(),
                fuzzy(c.established_on.as_ref()),
                fuzzy(c.last_contact_on.as_ref()),
                c.contacts.to_string(),
            ]
        })
        .collect();
    Table {
        headers: &[
            "PARTIES",
            "STATUS",
            "ESTABLISHED",
            "LAST CONTACT",
            "CONTACTS",
        ],
        rows,
    }
}

pub(super) fn summit_table(summits: &[proto::Summit], none: &str) -> String {
    summit_rows(summits).text(none)
}

pub(super) fn summit_rows(summits: &[proto::Summit]) -> Table {
    let rows: Vec<Vec<String>> = summits
        .iter()
        .map(|s| {
            vec![
                s.key.clone(),
                parties(&s.parties),
                s.stage.clone(),
                fuzzy(s.since.as_ref()),
                fuzzy(s.scheduled_for.as_ref()),
                place(s.place.as_ref()),
                expected(s.expected.as_ref(), &s.expected_text),
                place(s.proposed_place.as_ref()),
            ]
        })
        .collect();
    Table {
        headers: &[
            "SUMMIT",
            "PARTIES",
            "STAGE",
            "SINCE",
            "SCHEDULED FOR",
            "PLACE",
            "EXPECTED",
            "PROPOSED PLACE",
        ],
        rows,
    }
}

pub(super) fn commitment_table(commitments: &[proto::Commitment], none: &str) -> String {
    commitment_rows(commitments).text(none)
}

pub(super) fn commitment_rows(commitments: &[proto::Commitment]) -> Table {
    let rows: Vec<Vec<String>> = commitments
        .iter()
        .map(|c| {
            let due = match (fuzzy(c.due.as_ref()), c.due_text.as_str()) {
                (due, "") => due,
                (due, text) if due.is_empty() => format!("\"{text}\""),
                (due, text) => format!("{due} \"{text}\""),
            };
            let scheduled = fuzzy(c.scheduled_for.as_ref());
            let due = if scheduled.is_empty() {
                due
            } else {
                format!("{due} (scheduled for {scheduled})")
                    .trim_start()
                    .to_owned()
            };
            vec![
                c.what.clone(),
                parties(&c.parties),
                c.status.clone(),
                fuzzy(c.stated_on.as_ref()),
                due,
                format!("{} d", c.age_days),
            ]
        })
        .collect();
    Table {
        headers: &["WHAT", "PARTIES", "STATUS", "STATED", "DUE", "AGE"],
        rows,
    }
}

/// The timeline's heading, `rows` (its table) and the note on derived levels.
pub(super) fn timeline_text(actor: &str, entries: &[proto::TimelineEntry], rows: Table) -> String {
    let mut text = format!("Timeline of {actor}\n{}", rows.text("No interactions."));
    if entries.iter().any(|e| e.level_derived) {
        text.push_str("* level derived from the participants' offices\n");
    }
    text
}

pub(super) fn timeline_rows(entries: &[proto::TimelineEntry]) -> Table {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|entry| {
            vec![
                fuzzy(entry.occurred.as_ref()),
                entry.kind.clone(),
                // A derived level is marked, and the mark explained under the table.
                if entry.level_derived {
                    format!("{}*", entry.level)
                } else {
                    entry.level.clone()
                },
                match &entry.coded {
                    Some(coded) => coded_type(coded),
                    None => entry.format.clone(),
                },
                entry
                    .participants
                    .iter()
                    .map(|p| match p.role.as_str() {
                        "" => participant(p),
                        role => format!("{} ({})", participant(p), role.to_ascii_lowercase()),
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                match &entry.coded {
                    Some(coded) => coded.location.clone(),
                    None => place(entry.place.as_ref()),
                },
                track_round(&entry.track, entry.round),
                entry.topics.join(", "),
            ]
        })
        .collect();
    Table {
        headers: &[
            "DATE",
            "KIND",
            "LEVEL",
            "FORMAT/TYPE",
            "PARTICIPANTS",
            "PLACE",
            "TRACK/ROUND",
            "TOPICS",
        ],
        rows,
    }
}

/// A coded record's type for people: `CONSULT phone (VERBAL_COOPERATION), per Reuters`.
fn coded_type(coded: &proto::CodedRecord) -> String {
    let mut text = coded.plover_type.clone();
    if !coded.mode.is_empty() {
        let _ = write!(text, " {}", coded.mode);
    }
    if !coded.quad_class.is_empty() {
        let _ = write!(text, " ({})", coded.quad_class);
    }
    let publication = if coded.publication_name.is_empty() {
        &coded.publication
    } else {
        &coded.publication_name
    };
    if !publication.is_empty() {
        let _ = write!(text, ", per {publication}");
    }
    text
}

/// Counts by key, one line each, sorted, under a heading (nothing when there are none).
fn counts(out: &mut String, heading: &str, counts: &std::collections::BTreeMap<String, u32>) {
    if counts.is_empty() {
        return;
    }
    let _ = writeln!(out, "{heading}");
    for (key, count) in counts {
        let _ = writeln!(out, "  {key}: {count}");
    }
}

/// A track and round number, compactly: `rus-usa-missions #2`.
fn track_round(track: &str, round: u32) -> String {
    match (track, round) {
        (track, 0) => track.to_owned(),
        ("", round) => format!("#{round}"),
        (track, round) => format!("{track} #{round}"),
    }
}

pub(super) fn relations_text(pair: &proto::Relations) -> String {
    let names: Vec<&str> = pair
        .states
        .iter()
        .enumerate()
        .map(|(index, id)| match pair.state_names.get(index) {
            Some(name) if !name.is_empty() => name.as_str(),
            _ => id.as_str(),
        })
        .collect();
    let mut out = String::new();
    let _ = writeln!(out, "\n{} ({})", names.join(" – "), pair.states.join("+"));
    let _ = writeln!(
        out,
        "Contacts: {}{}",
        pair.contacts,
        if pair.coded_contacts > 0 {
            format!(" ({} coded records)", pair.coded_contacts)
        } else {
            String::new()
        }
    );
    let mut levels: Vec<(&String, &u32)> = pair.contacts_by_level.iter().collect();
    levels.sort();
    for (level, count) in levels {
        let _ = writeln!(out, "  {level}: {count}");
    }
    counts(&mut out, "By quad class:", &pair.contacts_by_quad_class);
    counts(&mut out, "By PLOVER type:", &pair.contacts_by_plover_type);
    match &pair.last_contact {
        Some(last) => {
            let _ = writeln!(
                out,
                "Last contact: {} {}{}{}",
                fuzzy(last.occurred.as_ref()),
                last.kind,
                if last.level.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", last.level)
                },
                [last.format.clone(), place(last.place.as_ref())]
                    .iter()
                    .filter(|part| !part.is_empty())
                    .map(|part| format!(", {part}"))
                    .collect::<String>()
            );
        }
        None => out.push_str("Last contact: none\n"),
    }
    out.push_str("\nOpen channels\n");
    out.push_str(&channel_table(&pair.open_channels, "None."));
    out.push_str("\nPending summits\n");
    out.push_str(&summit_table(&pair.pending_summits, "None."));
    out.push_str("\nPending commitments\n");
    out.push_str(&commitment_table(&pair.pending_commitments, "None."));
    out
}

/// A watch message for people: a header with the position, then the rows (a snapshot's, or
/// the changed ones and the keys removed). Heartbeats print nothing. `continued`: this message
/// goes on with the snapshot (the previous one had `snapshot_continues`).
pub(super) fn change_text(change: &proto::ProjectionChange, continued: bool) -> String {
    use proto::projection_change::Change;
    let reference = change
        .reference_time
        .as_ref()
        .map(timestamp)
        .unwrap_or_default();
    let header = format!("At log position {} (now: {reference})", change.position);
    let more = if change.snapshot_continues {
        ", more follow"
    } else {
        ""
    };
    match &change.change {
        Some(Change::Snapshot(snapshot)) => format!(
            "{header}: {} row(s){more}\n{}",
            snapshot.rows.len(),
            rows_text(&snapshot.rows)
        ),
        Some(Change::Diff(diff)) if continued => format!(
            "{} more row(s) of the snapshot{more}\n{}",
            diff.upserted.len(),
            rows_text(&diff.upserted)
        ),
        Some(Change::Diff(diff)) => {
            let mut out = format!(
                "\n{header}: {} changed, {} removed\n",
                diff.upserted.len(),
                diff.removed.len()
            );
            if !diff.upserted.is_empty() {
                out.push_str(&rows_text(&diff.upserted));
            }
            if !diff.removed.is_empty() {
                let _ = writeln!(out, "Removed: {}", diff.removed.join(", "));
            }
            out
        }
        Some(Change::Heartbeat(())) | None => String::new(),
    }
}

/// Rows of a watch, as the lists print them.
fn rows_text(rows: &[proto::ProjectionRow]) -> String {
    use proto::projection_row::Row;
    let (mut channels, mut summits, mut commitments) = (Vec::new(), Vec::new(), Vec::new());
    let mut out = String::new();
    for row in rows {
        match &row.row {
            Some(Row::Channel(channel)) => channels.push(channel.clone()),
            Some(Row::Summit(summit)) => summits.push(summit.clone()),
            Some(Row::Commitment(commitment)) => commitments.push(commitment.clone()),
            Some(Row::Divergence(divergence)) => out.push_str(&divergence_text(divergence)),
            None => {}
        }
    }
    if !channels.is_empty() {
        out.push_str(&channel_table(&channels, ""));
    }
    if !summits.is_empty() {
        out.push_str(&summit_table(&summits, ""));
    }
    if !commitments.is_empty() {
        out.push_str(&commitment_table(&commitments, ""));
    }
    if rows.is_empty() {
        out.push_str("No rows.\n");
    }
    out
}

pub(super) fn divergence_text(divergence: &proto::Divergence) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} {} ({})",
        fuzzy(divergence.occurred.as_ref()),
        divergence.kind,
        if divergence.stream_id.is_empty() {
            &divergence.occurrence
        } else {
            &divergence.stream_id
        }
    );
    for report in &divergence.reports {
        let source = if report.source_name.is_empty() {
            report.source.clone()
        } else {
            format!("{} ({})", report.source_name, report.source)
        };
        let mut details = Vec::new();
        if !report.language.is_empty() {
            details.push(format!("in {}", report.language));
        }
        if let Some(published) = &report.published_at {
            details.push(format!("published {}", timestamp(published)));
        }
        let _ = writeln!(
            out,
            "\nReport of {source}{}",
            if details.is_empty() {
                String::new()
            } else {
                format!(", {}", details.join(", "))
            }
        );
        if !report.url.is_empty() {
            let _ = writeln!(out, "  {}", report.url);
        }
        for quote in &report.quotes {
            let _ = writeln!(out, "  «{}»", quote.text);
            if !quote.translation.is_empty() {
                let _ = writeln!(out, "    (translation: {})", quote.translation);
            }
        }
    }
    // The claims only one source makes, grouped by that source in the order of the reports.
    let mut sources: Vec<(String, String)> = Vec::new();
    for claim in &divergence.single_source {
        if let Some(wording) = claim.sources.first()
            && !sources.iter().any(|(id, _)| *id == wording.source)
        {
            sources.push((wording.source.clone(), wording.source_name.clone()));
        }
    }
    let order = |id: &str| {
        divergence
            .reports
            .iter()
            .position(|r| r.source == id)
            .unwrap_or(usize::MAX)
    };
    sources.sort_by_key(|(id, _)| order(id));
    for (id, name) in &sources {
        let label = if name.is_empty() { id } else { name };
        let _ = writeln!(out, "\nClaims only {label} makes:");
        for claim in divergence
            .single_source
            .iter()
            .filter(|c| c.sources.first().is_some_and(|w| w.source == *id))
        {
            let text = claim.sources.first().map_or("", |w| w.text.as_str());
            let _ = writeln!(out, "  {} ({}): {}", claim.key, claim.kind, text);
        }
    }
    if divergence.shared.is_empty() {
        out.push_str("\nNo claims shared by more than one source.\n");
    } else {
        out.push_str("\nShared claims:\n");
        for claim in &divergence.shared {
            let _ = writeln!(out, "  {} ({})", claim.key, claim.kind);
            for wording in &claim.sources {
                let name = if wording.source_name.is_empty() {
                    &wording.source
                } else {
                    &wording.source_name
                };
                let _ = writeln!(out, "    {name}: {}", wording.text);
            }
        }
    }
    out
}

/// A list's rows under their column names, printed as aligned text or as CSV.
pub(super) struct Table {
    pub headers: &'static [&'static str],
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Aligned columns; `none` when there are no rows.
    pub fn text(&self, none: &str) -> String {
        table(self.headers, &self.rows, none)
    }

    /// RFC 4180 CSV: the header row, then every row (quoted where a cell needs it).
    pub fn csv(&self) -> String {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let written = writer.write_record(self.headers).and_then(|()| {
            self.rows
                .iter()
                .try_for_each(|row| writer.write_record(row))
        });
        written.expect("writing CSV into memory does not fail");
        String::from_utf8(writer.into_inner().expect("an in-memory buffer"))
            .expect("CSV of strings is UTF-8")
    }
}

/// Columns aligned by character count; `none` when there are no rows.
pub(super) fn table(headers: &[&str], rows: &[Vec<String>], none: &str) -> String {
    if rows.is_empty() {
        return format!("{none}\n");
    }
    let width = |text: &str| text.chars().count();
    let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            widths[index] = widths[index].max(width(cell));
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (index, cell) in cells.enumerate() {
            if index > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            text.extend(std::iter::repeat_n(' ', widths[index] - width(cell)));
        }
        text.truncate(text.trim_end().len());
        text.push('\n');
        text
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}
