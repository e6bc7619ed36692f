//! Lifecycles as bars on a time axis: each summit (proposed → preparation agreed → scheduled
//! → held or cancelled, postponed between) and each commitment (stated → scheduled →
//! fulfilled or withdrawn, lapsed past its due date) a row, each stretch between two steps a
//! bar coloured by the stage it was in, the dates they were scheduled for or due by as marks.
//! What is still open runs to the time the page is about.

use chrono::{DateTime, Utc};

use super::{LegendItem, Mark, Shape, Tick, TimeAxis, px};
use crate::domain::EventId;
use crate::domain::diplomacy::FuzzyTime;
use crate::http::pages::frame::Frame;
use crate::http::readable;
use crate::projections::models::commitments::Commitment;
use crate::projections::models::summits::Summit;

/// Rows drawn at most (the most recently moved); the rest are counted under the chart.
pub(in crate::http) const MOST_ROWS: usize = 60;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 250.0;
const RIGHT: f64 = 945.0;
const TOP: f64 = 6.0;
const ROW: f64 = 24.0;
const BAR: f64 = 12.0;

pub(in crate::http) struct LifecycleChart {
    pub(in crate::http) width: f64,
    pub(in crate::http) height: f64,
    pub(in crate::http) axis_y: f64,
    pub(in crate::http) left: f64,
    pub(in crate::http) ticks: Vec<Tick>,
    /// Where the time the page is about lies on the axis.
    pub(in crate::http) now_x: f64,
    pub(in crate::http) rows: Vec<LifeRow>,
    pub(in crate::http) legend: Vec<LegendItem>,
    pub(in crate::http) summary: String,
}

pub(in crate::http) struct LifeRow {
    pub(in crate::http) y: f64,
    pub(in crate::http) label: String,
    pub(in crate::http) href: String,
    pub(in crate::http) title: String,
    pub(in crate::http) bars: Vec<Bar>,
    pub(in crate::http) marks: Vec<Mark>,
}

pub(in crate::http) struct Bar {
    pub(in crate::http) x: f64,
    pub(in crate::http) y: f64,
    pub(in crate::http) width: f64,
    pub(in crate::http) height: f64,
    pub(in crate::http) class: String,
    pub(in crate::http) title: String,
}

/// One lifecycle, before it is placed: its steps (stage entered, when, by which event), and
/// whether it is still open; its dates to come (scheduled for, due by).
struct Life {
    label: String,
    title: String,
    steps: Vec<(String, DateTime<Utc>, String)>,
    open: bool,
    /// Past this time an open commitment is lapsed.
    lapses: Option<DateTime<Utc>>,
    dates: Vec<(String, DateTime<Utc>, String)>,
    href: String,
}

/// The steps that have a date, each as its stage's class name, its time and its event's page.
fn dated_steps<'a>(
    frame: &Frame,
    steps: impl Iterator<Item = (&'a str, Option<&'a FuzzyTime>, EventId)>,
) -> Vec<(String, DateTime<Utc>, String)> {
    steps
        .filter_map(|(stage, occurred, event)| {
            Some((
                stage.to_ascii_lowercase(),
                occurred?.earliest(),
                frame.event(event),
            ))
        })
        .collect()
}

fn summit_life(frame: &Frame, summit: &Summit) -> Option<Life> {
    let steps = dated_steps(
        frame,
        summit
            .steps
            .iter()
            .map(|s| (s.step.as_str(), s.occurred.as_ref(), s.origin.event_id)),
    );
    let latest = summit.steps.last()?;
    let view = summit.view()?;
    let parties = summit
        .parties
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let dates = view
        .scheduled_for
        .as_ref()
        .or(view.expected.as_ref())
        .map(|date| {
            let what = if view.scheduled_for.is_some() {
                "scheduled for"
            } else {
                "expected"
            };
            (
                format!("date-{}", what.replace(' ', "-")),
                date.earliest(),
                format!("Summit {what} {}", readable::fuzzy(date)),
            )
        })
        .into_iter()
        .collect();
    Some(Life {
        title: format!(
            "Summit of {parties}: {}",
            readable::label(&view.stage).to_lowercase()
        ),
        label: format!("Summit: {}", parties.replace(", ", " – ")),
        steps,
        open: view.pending,
        lapses: None,
        dates,
        href: frame.event(latest.origin.event_id),
    })
}

fn commitment_life(
    frame: &Frame,
    commitment: &Commitment,
    reference: DateTime<Utc>,
) -> Option<Life> {
    let view = commitment.view(reference)?;
    let steps = dated_steps(
        frame,
        commitment
            .steps
            .iter()
            .map(|s| (s.step.as_str(), s.occurred.as_ref(), s.origin.event_id)),
    );
    let open = matches!(view.status.as_str(), "PENDING" | "SCHEDULED" | "LAPSED");
    let mark = |class: &str, what: &str, time: &FuzzyTime| {
        (
            class.to_owned(),
            time.earliest(),
            format!("{what} {}", readable::fuzzy(time)),
        )
    };
    let mut dates = Vec::new();
    if let Some(date) = &view.scheduled_for {
        dates.push(mark("date-scheduled-for", "Scheduled for", date));
    }
    if let Some(due) = &view.due {
        dates.push(mark("date-due", "Due by", due));
    }
    Some(Life {
        label: view.what.clone(),
        title: format!(
            "{}: {}",
            view.what,
            readable::label(&view.status).to_lowercase()
        ),
        steps,
        open,
        lapses: open
            .then(|| view.due.as_ref().map(FuzzyTime::end))
            .flatten(),
        dates,
        href: frame.event(view.stated_by),
    })
}

/// The chart of `summits` and `commitments` at `reference`; `None` when nothing has a date.
pub(in crate::http) fn lifecycle_chart(
    frame: &Frame,
    summits: &[Summit],
    commitments: &[Commitment],
    reference: DateTime<Utc>,
) -> Option<LifecycleChart> {
    let mut lives: Vec<Life> = summits
        .iter()
        .filter_map(|s| summit_life(frame, s))
        .chain(
            commitments
                .iter()
                .filter_map(|c| commitment_life(frame, c, reference)),
        )
        .filter(|life| !life.steps.is_empty())
        .collect();
    if lives.is_empty() {
        return None;
    }
    // The most recently moved first, when there are too many; then in order of their start.
    lives.sort_by_key(|life| std::cmp::Reverse(life.steps.iter().map(|s| s.1).max()));
    let left_out = lives.len().saturating_sub(MOST_ROWS);
    lives.truncate(MOST_ROWS);
    lives.sort_by_key(|life| life.steps.first().map(|s| s.1));

    let axis = TimeAxis::around(
        lives
            .iter()
            .flat_map(|life| {
                life.steps
                    .iter()
                    .map(|s| s.1)
                    .chain(life.dates.iter().map(|d| d.1))
            })
            .chain(std::iter::once(reference)),
        LEFT,
        RIGHT,
    )?;
    let rows: Vec<LifeRow> = lives
        .iter()
        .enumerate()
        .map(|(index, life)| life_row(&axis, life, TOP + ROW * index as f64, reference))
        .collect();
    let axis_y = TOP + ROW * rows.len() as f64 + 4.0;
    let mut summary = format!(
        "{} summit(s) and {} commitment(s) as bars from their first step, coloured by stage",
        summits.len(),
        commitments.len()
    );
    if left_out > 0 {
        summary.push_str(&format!(
            "; the {MOST_ROWS} most recently moved are drawn, {left_out} others are not"
        ));
    }
    summary.push('.');
    Some(LifecycleChart {
        width: WIDTH,
        height: axis_y + 22.0,
        axis_y,
        left: LEFT,
        ticks: axis.ticks(),
        now_x: px(axis.x(reference)),
        rows,
        legend: legend(),
        summary,
    })
}

fn life_row(axis: &TimeAxis, life: &Life, top: f64, reference: DateTime<Utc>) -> LifeRow {
    let y = top + (ROW - BAR) / 2.0;
    let middle = top + ROW / 2.0;
    let mut bars = Vec::new();
    let mut marks = Vec::new();
    for (index, (stage, at, href)) in life.steps.iter().enumerate() {
        let next = life.steps.get(index + 1).map(|s| s.1);
        let until = next.or(life.open.then_some(reference));
        if let Some(until) = until.filter(|until| until > at) {
            // An open commitment past its due date is lapsed from then on.
            let split = life
                .lapses
                .filter(|due| next.is_none() && at < due && *due < until);
            let end = split.unwrap_or(until);
            bars.push(bar(axis, *at, end, y, stage, life));
            if let Some(due) = split {
                bars.push(bar(axis, due, until, y, "lapsed", life));
            }
        }
        marks.push(Mark {
            path: Shape::Circle.path(axis.x(*at), middle, 3.5),
            class: format!("step stage-{stage}"),
            href: href.clone(),
            title: format!("{}: {}", readable::label(stage), life.label),
        });
    }
    for (class, at, title) in &life.dates {
        marks.push(Mark {
            path: Shape::Diamond.path(axis.x(*at), middle, 6.0),
            class: class.clone(),
            href: life.href.clone(),
            title: title.clone(),
        });
    }
    let mut label = life.label.clone();
    if label.chars().count() > 34 {
        label = label.chars().take(33).collect::<String>() + "…";
    }
    LifeRow {
        y: middle + 4.0,
        label,
        href: life.href.clone(),
        title: life.title.clone(),
        bars,
        marks,
    }
}

fn bar(
    axis: &TimeAxis,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    y: f64,
    stage: &str,
    life: &Life,
) -> Bar {
    let x = axis.x(from);
    Bar {
        x: px(x),
        y,
        width: px((axis.x(to) - x).max(1.0)),
        height: BAR,
        class: format!("stage-{stage}"),
        title: format!(
            "{}: {} from {}",
            life.label,
            readable::label(stage).to_lowercase(),
            readable::instant(from)
        ),
    }
}

fn legend() -> Vec<LegendItem> {
    [
        ("stage-proposed", "proposed"),
        ("stage-preparation_agreed", "preparation agreed"),
        ("stage-scheduled", "scheduled"),
        ("stage-postponed", "postponed"),
        ("stage-stated", "stated (commitment)"),
        ("stage-lapsed", "lapsed"),
    ]
    .into_iter()
    .map(|(class, label)| LegendItem::new(class, Shape::Square, label))
    .chain([LegendItem::new(
        "date-scheduled-for",
        Shape::Diamond,
        "scheduled for / due by",
    )])
    .collect()
}
