//! Contacts over time: an actor's (or a pair's) interactions on a time axis, one lane per
//! level (leaders, ministers, …; coded records in a lane of their own), shaped and coloured by
//! kind (call, meeting, visit, negotiation round), with the summits' and commitments' steps
//! as marks in a lane below. Past [`MOST_MARKS`] contacts the lanes show counts per period
//! instead of one mark each, so a GDELT-sized timeline stays a picture.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{LegendItem, Mark, Shape, Tick, TimeAxis, px};
use crate::http::pages::frame::Frame;
use crate::http::readable;
use crate::projections::models::commitments::Commitment;
use crate::projections::models::summits::Summit;
use crate::projections::models::timeline::TimelineEntry;

/// Contacts drawn one mark each up to this many; beyond it, counted per period.
pub(in crate::http) const MOST_MARKS: usize = 600;
/// Periods of the counted form.
const BINS: usize = 80;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 170.0;
const RIGHT: f64 = 945.0;
const TOP: f64 = 8.0;
const LANE: f64 = 34.0;
const MARK: f64 = 6.0;

/// The levels, in the order of their lanes, and how a lane is labelled.
const LEVELS: &[(&str, &str)] = &[
    ("LEADERS", "Leaders"),
    ("MINISTERS", "Ministers"),
    ("DEPUTIES", "Deputies"),
    ("ENVOYS", "Envoys"),
    ("EXPERTS", "Experts"),
    ("PARLIAMENTARY", "Parliamentary"),
    ("UNSPECIFIED", "Level not given"),
];
const CODED_LANE: &str = "Coded records";
const STEPS_LANE: &str = "Summits, commitments";

pub(in crate::http) struct ContactChart {
    pub(in crate::http) width: f64,
    pub(in crate::http) height: f64,
    pub(in crate::http) axis_y: f64,
    pub(in crate::http) left: f64,
    pub(in crate::http) right: f64,
    pub(in crate::http) lanes: Vec<Lane>,
    pub(in crate::http) ticks: Vec<Tick>,
    pub(in crate::http) marks: Vec<Mark>,
    pub(in crate::http) bins: Vec<Bin>,
    pub(in crate::http) legend: Vec<LegendItem>,
    /// What the chart shows, in a sentence (its `<desc>`, and the line under it).
    pub(in crate::http) summary: String,
}

pub(in crate::http) struct Lane {
    pub(in crate::http) y: f64,
    pub(in crate::http) label: &'static str,
}

/// The contacts of one lane in one period, as a bar.
pub(in crate::http) struct Bin {
    pub(in crate::http) x: f64,
    pub(in crate::http) y: f64,
    pub(in crate::http) width: f64,
    pub(in crate::http) height: f64,
    pub(in crate::http) title: String,
}

/// How a contact of a kind is drawn: its shape and CSS class.
fn look(entry: &TimelineEntry) -> (Shape, String) {
    if let Some(coded) = &entry.coded {
        let quad = coded.quad_class.as_deref().map_or_else(
            || "none".to_owned(),
            |q| q.to_ascii_lowercase().replace('_', "-"),
        );
        return (Shape::Ring, format!("coded quad-{quad}"));
    }
    let (shape, kind) = match entry.kind.as_str() {
        "CallHeld" => (Shape::Circle, "call"),
        "MeetingHeld" => (Shape::Square, "meeting"),
        "VisitMade" => (Shape::Triangle, "visit"),
        "NegotiationRoundHeld" => (Shape::Diamond, "round"),
        _ => (Shape::Ring, "other"),
    };
    (shape, format!("kind-{kind}"))
}

fn legend(coded: bool, steps: bool) -> Vec<LegendItem> {
    let mut legend = vec![
        LegendItem::new("kind-call", Shape::Circle, "call"),
        LegendItem::new("kind-meeting", Shape::Square, "meeting"),
        LegendItem::new("kind-visit", Shape::Triangle, "visit"),
        LegendItem::new("kind-round", Shape::Diamond, "negotiation round"),
    ];
    if coded {
        legend.push(LegendItem::new(
            "coded quad-verbal-cooperation",
            Shape::Ring,
            "coded: verbal cooperation",
        ));
        legend.push(LegendItem::new(
            "coded quad-material-cooperation",
            Shape::Ring,
            "coded: material cooperation",
        ));
        legend.push(LegendItem::new(
            "coded quad-verbal-conflict",
            Shape::Ring,
            "coded: verbal conflict",
        ));
        legend.push(LegendItem::new(
            "coded quad-material-conflict",
            Shape::Ring,
            "coded: material conflict",
        ));
    }
    if steps {
        legend.push(LegendItem::new(
            "step-summit",
            Shape::Diamond,
            "summit step",
        ));
        legend.push(LegendItem::new(
            "step-commitment",
            Shape::Triangle,
            "commitment step",
        ));
    }
    legend
}

/// A summit's or a commitment's step, placed in time.
struct Step {
    at: DateTime<Utc>,
    shape: Shape,
    class: String,
    href: String,
    title: String,
}

fn steps(frame: &Frame, summits: &[Summit], commitments: &[Commitment]) -> Vec<Step> {
    let mut steps = Vec::new();
    for summit in summits {
        let parties = party_names(summit.parties.iter().map(|p| p.name.as_str()));
        for step in &summit.steps {
            let Some(occurred) = &step.occurred else {
                continue;
            };
            steps.push(Step {
                at: occurred.earliest(),
                shape: Shape::Diamond,
                class: format!(
                    "step-summit stage-{}",
                    step.step.as_str().to_ascii_lowercase()
                ),
                href: frame.event(step.origin.event_id),
                title: format!(
                    "Summit {}: {parties}, {}",
                    readable::label(step.step.as_str()).to_lowercase(),
                    readable::fuzzy(occurred)
                ),
            });
        }
    }
    for commitment in commitments {
        let what = commitment
            .stated()
            .and_then(|s| s.what.clone())
            .unwrap_or_else(|| "a commitment".to_owned());
        for step in &commitment.steps {
            let Some(occurred) = &step.occurred else {
                continue;
            };
            steps.push(Step {
                at: occurred.earliest(),
                shape: Shape::Triangle,
                class: format!(
                    "step-commitment stage-{}",
                    step.step.as_str().to_ascii_lowercase()
                ),
                href: frame.event(step.origin.event_id),
                title: format!(
                    "Commitment {}: {what}, {}",
                    readable::label(step.step.as_str()).to_lowercase(),
                    readable::fuzzy(occurred)
                ),
            });
        }
    }
    steps
}

fn party_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

/// The chart of `entries` (in any order) with the steps of `summits` and `commitments`;
/// `None` when nothing of it has a date.
pub(in crate::http) fn contact_chart(
    frame: &Frame,
    entries: &[TimelineEntry],
    summits: &[Summit],
    commitments: &[Commitment],
) -> Option<ContactChart> {
    let dated: Vec<(&TimelineEntry, DateTime<Utc>)> = entries
        .iter()
        .filter_map(|e| e.occurred.as_ref().map(|t| (e, t.earliest())))
        .collect();
    let steps = steps(frame, summits, commitments);
    let axis = TimeAxis::around(
        dated
            .iter()
            .map(|(_, t)| *t)
            .chain(steps.iter().map(|s| s.at)),
        LEFT,
        RIGHT,
    )?;

    // The lanes that have something, top to bottom.
    let coded = dated.iter().any(|(e, _)| e.is_coded());
    let mut labels: Vec<&'static str> = LEVELS
        .iter()
        .filter(|(level, _)| {
            dated
                .iter()
                .any(|(e, _)| !e.is_coded() && lane_level(e) == *level)
        })
        .map(|(_, label)| *label)
        .collect();
    if coded {
        labels.push(CODED_LANE);
    }
    if !steps.is_empty() {
        labels.push(STEPS_LANE);
    }
    let lanes: Vec<Lane> = labels
        .iter()
        .enumerate()
        .map(|(index, label)| Lane {
            y: TOP + LANE * (index as f64 + 0.5),
            label,
        })
        .collect();
    let lane_y = |label: &str| {
        lanes
            .iter()
            .find(|lane| lane.label == label)
            .map_or(TOP, |lane| lane.y)
    };
    let label_of = |entry: &TimelineEntry| {
        if entry.is_coded() {
            CODED_LANE
        } else {
            LEVELS
                .iter()
                .find(|(level, _)| *level == lane_level(entry))
                .map_or("Level not given", |(_, label)| label)
        }
    };

    let mut marks = Vec::new();
    let mut bins = Vec::new();
    if dated.len() <= MOST_MARKS {
        for (entry, at) in &dated {
            let (shape, class) = look(entry);
            marks.push(Mark {
                path: shape.path(axis.x(*at), lane_y(label_of(entry)), MARK),
                class,
                href: frame.event(entry.origin.event_id),
                title: title(entry),
            });
        }
    } else {
        bins = counted(&axis, &dated, |entry| lane_y(label_of(entry)));
    }
    for step in &steps {
        // Summits' steps above commitments', so one on the same day as the other shows.
        let offset = if step.shape == Shape::Diamond {
            -5.0
        } else {
            5.0
        };
        marks.push(Mark {
            path: step
                .shape
                .path(axis.x(step.at), lane_y(STEPS_LANE) + offset, MARK),
            class: step.class.clone(),
            href: step.href.clone(),
            title: step.title.clone(),
        });
    }

    let axis_y = TOP + LANE * lanes.len() as f64 + 4.0;
    let undated = entries.len() - dated.len();
    let mut summary = format!(
        "{} contact(s) over time by level and kind{}",
        dated.len(),
        if steps.is_empty() {
            String::new()
        } else {
            format!(", and {} summit and commitment step(s)", steps.len())
        }
    );
    if !bins.is_empty() {
        summary.push_str(&format!(
            ", counted per period (more than {MOST_MARKS} to draw one by one)"
        ));
    }
    if undated > 0 {
        summary.push_str(&format!("; {undated} without a date are not drawn"));
    }
    summary.push('.');
    Some(ContactChart {
        width: WIDTH,
        height: axis_y + 22.0,
        axis_y,
        left: LEFT,
        right: RIGHT,
        ticks: axis.ticks(),
        lanes,
        marks,
        bins,
        legend: legend(coded, !steps.is_empty()),
        summary,
    })
}

fn lane_level(entry: &TimelineEntry) -> &str {
    if LEVELS.iter().any(|(level, _)| *level == entry.level) {
        &entry.level
    } else {
        "UNSPECIFIED"
    }
}

/// "Call held, 15 February 2025: Sergey Lavrov, Marco Rubio (ministers, by office)".
fn title(entry: &TimelineEntry) -> String {
    let when = entry
        .occurred
        .as_ref()
        .map(readable::fuzzy)
        .unwrap_or_default();
    let who = party_names(entry.participants.iter().map(|p| p.name.as_str()));
    let mut text = format!("{}, {when}: {who}", readable::label(&entry.kind));
    if let Some(quad) = entry.coded.as_ref().and_then(|c| c.quad_class.as_deref()) {
        text.push_str(&format!(" ({})", readable::label(quad).to_lowercase()));
    } else if entry.level != "UNSPECIFIED" {
        text.push_str(&format!(
            " ({}{})",
            readable::label(&entry.level).to_lowercase(),
            if entry.level_derived {
                ", by office"
            } else {
                ""
            }
        ));
    }
    text
}

/// The contacts of each lane per period, as bars scaled to the fullest period of any lane.
fn counted(
    axis: &TimeAxis,
    dated: &[(&TimelineEntry, DateTime<Utc>)],
    lane_y: impl Fn(&TimelineEntry) -> f64,
) -> Vec<Bin> {
    let width = (RIGHT - LEFT) / BINS as f64;
    let mut counts: BTreeMap<(u64, usize), (f64, u32)> = BTreeMap::new();
    for (entry, at) in dated {
        let y = lane_y(entry);
        let bin = (((axis.x(*at) - LEFT) / width) as usize).min(BINS - 1);
        let slot = counts.entry((y.to_bits(), bin)).or_insert((y, 0));
        slot.1 += 1;
    }
    let most = counts.values().map(|(_, n)| *n).max().unwrap_or(1).max(1);
    counts
        .into_iter()
        .map(|((_, bin), (y, count))| {
            let height = (LANE - 6.0) * (f64::from(count) / f64::from(most)).sqrt();
            Bin {
                x: px(LEFT + width * bin as f64),
                y: px(y + (LANE - 6.0) / 2.0 - height),
                width: px((width - 1.0).max(1.0)),
                height: px(height),
                title: format!(
                    "{count} contact(s), {} to {}",
                    readable::day(axis.at(LEFT + width * bin as f64).date_naive()),
                    readable::day(axis.at(LEFT + width * (bin + 1) as f64).date_naive())
                ),
            }
        })
        .collect()
}
