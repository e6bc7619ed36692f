//! The pictures the dashboard draws, as server-rendered SVG: an actor's or a pair's contacts
//! over time (`contacts`), the network of relations (`network`), and the lifecycles of summits
//! and commitments (`lifecycle`). Each builder turns projection answers into shapes with their
//! coordinates, links and tooltips; `templates/charts.html` draws them. No I/O, no scripts:
//! a chart is part of the page's `<main>`, so it follows the log live, as of and on a day like
//! the tables beside it.

pub(super) mod contacts;
pub(super) mod lifecycle;
pub(super) mod network;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

/// A horizontal time scale from `start` to `end` onto `left..right` pixels.
pub(in crate::http) struct TimeAxis {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    left: f64,
    right: f64,
}

/// A labelled tick of a time axis.
pub(in crate::http) struct Tick {
    pub(in crate::http) x: f64,
    pub(in crate::http) label: String,
}

impl TimeAxis {
    /// The axis that shows every one of `times` with a margin; `None` when there are none.
    pub(super) fn around(
        times: impl IntoIterator<Item = DateTime<Utc>>,
        left: f64,
        right: f64,
    ) -> Option<Self> {
        let mut times = times.into_iter();
        let first = times.next()?;
        let (low, high) = times.fold((first, first), |(low, high), t| (low.min(t), high.max(t)));
        // At least a week wide, and a margin so the first and last marks are not on the edge.
        let span = (high - low).max(Duration::days(7));
        let margin = span / 25;
        Some(Self {
            start: low - margin,
            end: low + span + margin,
            left,
            right,
        })
    }

    pub(super) fn x(&self, time: DateTime<Utc>) -> f64 {
        let span = (self.end - self.start).num_seconds().max(1) as f64;
        let offset = (time - self.start).num_seconds() as f64;
        self.left + (self.right - self.left) * (offset / span).clamp(0.0, 1.0)
    }

    /// The time at `x` pixels (the inverse of [`Self::x`]).
    pub(super) fn at(&self, x: f64) -> DateTime<Utc> {
        let share = ((x - self.left) / (self.right - self.left)).clamp(0.0, 1.0);
        let span = (self.end - self.start).num_seconds() as f64;
        self.start + Duration::seconds((span * share) as i64)
    }

    pub(super) fn contains(&self, time: DateTime<Utc>) -> bool {
        self.start <= time && time <= self.end
    }

    /// Ticks at round dates (days, Mondays, months or years, whichever gives at most about a
    /// dozen), labelled as precisely as the step needs.
    pub(super) fn ticks(&self) -> Vec<Tick> {
        let days = (self.end - self.start).num_days();
        let first = self.start.date_naive();
        let last = self.end.date_naive();
        let dates: Vec<(NaiveDate, String)> = if days <= 14 {
            days_from(first, last, 1)
                .map(|d| (d, d.format("%-d %b").to_string()))
                .collect()
        } else if days <= 120 {
            let monday =
                first + Duration::days(i64::from((7 - first.weekday().num_days_from_monday()) % 7));
            let step = if days <= 70 { 7 } else { 14 };
            days_from(monday, last, step)
                .map(|d| (d, d.format("%-d %b").to_string()))
                .collect()
        } else if days <= 365 * 4 {
            let months = days / 30;
            let step = [1, 2, 3, 6, 12]
                .into_iter()
                .find(|step| months / step <= 12)
                .unwrap_or(12);
            month_starts(first, last, step as u32)
                .map(|d| {
                    let label = if d.month() == 1 || step >= 12 {
                        d.format("%b %Y").to_string()
                    } else {
                        d.format("%b").to_string()
                    };
                    (d, label)
                })
                .collect()
        } else {
            let years = days / 365;
            let step = [1, 2, 5, 10, 20, 50]
                .into_iter()
                .find(|step| years / step <= 12)
                .unwrap_or(100);
            (first.year()..=last.year())
                .filter(|year| year % step as i32 == 0)
                .filter_map(|year| NaiveDate::from_ymd_opt(year, 1, 1))
                .map(|d| (d, d.format("%Y").to_string()))
                .collect()
        };
        let mut ticks: Vec<Tick> = dates
            .into_iter()
            .map(|(date, label)| (midnight(date), label))
            .filter(|(time, _)| self.contains(*time))
            // A label centred on the right edge would be cut.
            .filter(|(time, _)| self.x(*time) < self.right - 20.0)
            .map(|(time, label)| Tick {
                x: px(self.x(time)),
                label,
            })
            .collect();
        // The first tick says its year, so the axis reads without a guess.
        let says_year = |label: &str| {
            label
                .split(' ')
                .any(|word| word.len() == 4 && word.chars().all(|c| c.is_ascii_digit()))
        };
        if let Some(first) = ticks.first_mut()
            && !says_year(&first.label)
        {
            first.label = format!("{} {}", first.label, self.at(first.x).format("%Y"));
        }
        ticks
    }
}

/// A coordinate rounded to a tenth of a pixel, for the page's text.
pub(super) fn px(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

fn midnight(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

fn days_from(first: NaiveDate, last: NaiveDate, step: i64) -> impl Iterator<Item = NaiveDate> {
    std::iter::successors(Some(first), move |d| Some(*d + Duration::days(step)))
        .take_while(move |d| *d <= last)
}

/// The first days of every `step`-th month (January of a year counted from) in `first..=last`.
fn month_starts(first: NaiveDate, last: NaiveDate, step: u32) -> impl Iterator<Item = NaiveDate> {
    let start = NaiveDate::from_ymd_opt(first.year(), 1, 1).unwrap_or(first);
    std::iter::successors(Some(start), move |d| {
        d.checked_add_months(chrono::Months::new(step))
    })
    .skip_while(move |d| *d < first)
    .take_while(move |d| *d <= last)
}

/// A contact or a step: a shape with its link and tooltip.
pub(in crate::http) struct Mark {
    pub(in crate::http) path: String,
    pub(in crate::http) class: String,
    pub(in crate::http) href: String,
    pub(in crate::http) title: String,
}

/// An entry of a chart's legend: a swatch (its CSS class and shape) and what it stands for.
pub(in crate::http) struct LegendItem {
    pub(in crate::http) class: String,
    pub(in crate::http) shape: String,
    pub(in crate::http) label: String,
}

impl LegendItem {
    fn new(class: impl Into<String>, shape: Shape, label: impl Into<String>) -> Self {
        Self {
            class: class.into(),
            shape: shape.path(8.0, 8.0, 6.0),
            label: label.into(),
        }
    }
}

/// The shapes marks are drawn as (kinds of contact differ by shape as well as colour, so a
/// chart reads in black and white too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    Circle,
    Square,
    Triangle,
    Diamond,
    Ring,
}

impl Shape {
    /// The SVG path of the shape centred on (`x`, `y`), `r` from centre to edge.
    pub(super) fn path(self, x: f64, y: f64, r: f64) -> String {
        match self {
            Self::Circle | Self::Ring => format!(
                "M{:.1} {y:.1}a{r:.1} {r:.1} 0 1 0 {:.1} 0a{r:.1} {r:.1} 0 1 0 {:.1} 0Z",
                x - r,
                2.0 * r,
                -2.0 * r
            ),
            Self::Square => {
                let s = r * 0.9;
                format!(
                    "M{:.1} {:.1}h{:.1}v{:.1}h{:.1}Z",
                    x - s,
                    y - s,
                    2.0 * s,
                    2.0 * s,
                    -2.0 * s
                )
            }
            Self::Triangle => format!(
                "M{x:.1} {:.1}L{:.1} {:.1}L{:.1} {:.1}Z",
                y - r,
                x + r,
                y + r * 0.8,
                x - r,
                y + r * 0.8
            ),
            Self::Diamond => format!(
                "M{x:.1} {:.1}L{:.1} {y:.1}L{x:.1} {:.1}L{:.1} {y:.1}Z",
                y - r,
                x + r,
                y + r,
                x - r
            ),
        }
    }
}

/// How recent a last contact is, relative to the time the page is about: a CSS class and
/// its legend.
pub(super) fn recency(last: Option<DateTime<Utc>>, reference: DateTime<Utc>) -> &'static str {
    match last.map(|t| (reference - t).num_days()) {
        Some(days) if days <= 30 => "recent-30",
        Some(days) if days <= 180 => "recent-180",
        Some(days) if days <= 365 => "recent-365",
        Some(_) => "recent-older",
        None => "recent-unknown",
    }
}

pub(super) fn recency_legend() -> Vec<LegendItem> {
    [
        ("recent-30", "within 30 days"),
        ("recent-180", "within 6 months"),
        ("recent-365", "within a year"),
        ("recent-older", "longer ago"),
    ]
    .into_iter()
    .map(|(class, label)| LegendItem::new(class, Shape::Square, label))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: &str) -> DateTime<Utc> {
        midnight(NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap())
    }

    #[test]
    fn an_axis_spans_its_times_with_a_margin_and_ticks_round_dates() {
        let axis = TimeAxis::around([at("2025-02-15"), at("2025-09-30")], 100.0, 900.0).unwrap();
        assert!(axis.x(at("2025-02-15")) > 100.0);
        assert!(axis.x(at("2025-09-30")) < 900.0);
        let ticks = axis.ticks();
        let labels: Vec<&str> = ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(
            labels,
            ["Mar 2025", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct"]
        );
        assert!(ticks.windows(2).all(|w| w[0].x < w[1].x));
    }

    #[test]
    fn a_short_axis_ticks_days_and_a_long_one_years() {
        let days = TimeAxis::around([at("2025-02-15")], 0.0, 700.0)
            .unwrap()
            .ticks();
        assert!(days.len() >= 7, "{}", days.len());
        assert!(days[0].label.ends_with(" Feb 2025"), "{}", days[0].label);
        let years = TimeAxis::around([at("1990-01-01"), at("2025-01-01")], 0.0, 700.0)
            .unwrap()
            .ticks();
        assert!(years.len() <= 12 && years.len() >= 3, "{}", years.len());
        assert!(years.iter().all(|t| t.label.len() == 4));
    }

    #[test]
    fn recency_is_relative_to_the_page_s_time() {
        let reference = at("2025-06-01");
        assert_eq!(recency(Some(at("2025-05-20")), reference), "recent-30");
        assert_eq!(recency(Some(at("2025-01-20")), reference), "recent-180");
        assert_eq!(recency(Some(at("2020-01-20")), reference), "recent-older");
        assert_eq!(recency(None, reference), "recent-unknown");
    }
}
