//! The network of relations: states as nodes on a circle (sized by their contacts), each pair
//! with contacts an edge weighted by their number and coloured by how recent the last one is;
//! and, one click into a state, its offices and people beside their counterparts, abroad,
//! with the channels between them as edges.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{LegendItem, Shape, px, recency, recency_legend};
use crate::domain::diplomacy::ActorKind;
use crate::http::pages::frame::Frame;
use crate::http::readable;
use crate::projections::models::channels::view::ChannelView;
use crate::projections::models::common::Party;
use crate::projections::models::relations::view::RelationView;

/// States drawn at most (those with the most contacts); the rest are counted under the chart.
pub(in crate::http) const MOST_STATES: usize = 40;

const WIDTH: f64 = 960.0;

pub(in crate::http) struct NetworkChart {
    pub(in crate::http) width: f64,
    pub(in crate::http) height: f64,
    pub(in crate::http) nodes: Vec<Node>,
    pub(in crate::http) edges: Vec<Edge>,
    /// Headings of the columns of a state's network (none for the states' network).
    pub(in crate::http) headings: Vec<Heading>,
    pub(in crate::http) legend: Vec<LegendItem>,
    pub(in crate::http) summary: String,
}

pub(in crate::http) struct Node {
    pub(in crate::http) x: f64,
    pub(in crate::http) y: f64,
    pub(in crate::http) r: f64,
    pub(in crate::http) class: &'static str,
    pub(in crate::http) label: String,
    pub(in crate::http) label_x: f64,
    pub(in crate::http) label_y: f64,
    pub(in crate::http) anchor: &'static str,
    pub(in crate::http) href: String,
    pub(in crate::http) title: String,
}

pub(in crate::http) struct Edge {
    pub(in crate::http) x1: f64,
    pub(in crate::http) y1: f64,
    pub(in crate::http) x2: f64,
    pub(in crate::http) y2: f64,
    pub(in crate::http) width: f64,
    pub(in crate::http) class: &'static str,
    pub(in crate::http) href: String,
    pub(in crate::http) title: String,
}

pub(in crate::http) struct Heading {
    pub(in crate::http) x: f64,
    pub(in crate::http) y: f64,
    pub(in crate::http) anchor: &'static str,
    pub(in crate::http) text: String,
}

fn last_contact(view: &RelationView) -> Option<DateTime<Utc>> {
    view.last_contact
        .as_ref()
        .and_then(|c| c.occurred.as_ref())
        .map(|t| t.end())
}

/// The network of the states in `pairs` (relations of two states each) as of `reference`,
/// states named by `name_of`.
pub(in crate::http) fn states_network(
    frame: &Frame,
    pairs: &[RelationView],
    name_of: impl Fn(&str) -> String,
    reference: DateTime<Utc>,
) -> Option<NetworkChart> {
    let pairs: Vec<&RelationView> = pairs
        .iter()
        .filter(|p| p.states.len() == 2 && p.contacts > 0)
        .collect();
    // Each state's contacts and name.
    let mut states: BTreeMap<&str, (u32, String)> = BTreeMap::new();
    for pair in &pairs {
        for state in &pair.states {
            let entry = states.entry(state).or_insert_with(|| (0, name_of(state)));
            entry.0 += pair.contacts;
        }
    }
    if states.is_empty() {
        return None;
    }
    let mut ranked: Vec<(&str, u32, &str)> = states
        .iter()
        .map(|(id, (n, name))| (*id, *n, name.as_str()))
        .collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let left_out = ranked.len().saturating_sub(MOST_STATES);
    ranked.truncate(MOST_STATES);

    let (cx, cy) = (WIDTH / 2.0, 320.0);
    let radius = if ranked.len() <= 2 { 150.0 } else { 240.0 };
    let most = f64::from(ranked.first().map_or(1, |s| s.1).max(1));
    let mut places: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    let mut nodes = Vec::new();
    for (index, (id, contacts, name)) in ranked.iter().enumerate() {
        // From the top, clockwise.
        let angle = std::f64::consts::TAU * index as f64 / ranked.len() as f64
            - std::f64::consts::FRAC_PI_2;
        let (x, y) = (cx + radius * angle.cos(), cy + radius * angle.sin());
        let r = 5.0 + 13.0 * (f64::from(*contacts) / most).sqrt();
        places.insert(id, (x, y));
        let out = r + 6.0;
        nodes.push(Node {
            x: px(x),
            y: px(y),
            r: px(r),
            class: "state",
            label: (*name).to_owned(),
            label_x: px(x + out * angle.cos()),
            label_y: px(y + out * angle.sin() + 4.0),
            anchor: if angle.cos() > 0.2 {
                "start"
            } else if angle.cos() < -0.2 {
                "end"
            } else {
                "middle"
            },
            href: frame.link(&format!("/network/{}", readable::encode(id))),
            title: format!("{name}: {contacts} contact(s); its offices and people"),
        });
    }
    let heaviest = f64::from(pairs.iter().map(|p| p.contacts).max().unwrap_or(1).max(1));
    let mut edges = Vec::new();
    for pair in &pairs {
        let (a, b) = (pair.states[0].as_str(), pair.states[1].as_str());
        let (Some(&(x1, y1)), Some(&(x2, y2))) = (places.get(a), places.get(b)) else {
            continue;
        };
        let last = last_contact(pair);
        edges.push(Edge {
            x1: px(x1),
            y1: px(y1),
            x2: px(x2),
            y2: px(y2),
            width: px(1.0 + 7.0 * (f64::from(pair.contacts) / heaviest).sqrt()),
            class: recency(last, reference),
            href: frame.pair(a, b),
            title: format!(
                "{} – {}: {} contact(s){}",
                name_of(a),
                name_of(b),
                pair.contacts,
                pair.last_contact
                    .as_ref()
                    .and_then(|c| c.occurred.as_ref())
                    .map(|t| format!(", the last {}", readable::fuzzy(t)))
                    .unwrap_or_default()
            ),
        });
    }
    // Heavier edges on top.
    edges.sort_by(|a, b| a.width.total_cmp(&b.width));
    let mut summary = format!(
        "{} state(s) and the {} pair(s) of them with contacts; edges weighted by contacts, \
         coloured by the last contact",
        nodes.len(),
        edges.len()
    );
    if left_out > 0 {
        summary.push_str(&format!(
            "; {left_out} state(s) with fewer contacts are not drawn (the {MOST_STATES} with the most are)"
        ));
    }
    summary.push('.');
    Some(NetworkChart {
        width: WIDTH,
        height: 2.0 * cy,
        nodes,
        edges,
        headings: Vec::new(),
        legend: recency_legend(),
        summary,
    })
}

/// The network of `state`'s offices and people: its own on the left, their counterparts on
/// the right (grouped by state), each channel between them an edge.
pub(in crate::http) fn state_network(
    frame: &Frame,
    state: &str,
    name_of: impl Fn(&str) -> String,
    kind_of: impl Fn(&str) -> Option<ActorKind>,
    channels: &[ChannelView],
    reference: DateTime<Utc>,
) -> Option<NetworkChart> {
    let state_name = name_of(state);
    // Who is on which side, each once, with their contacts.
    let mut ours: BTreeMap<&str, (&Party, u32)> = BTreeMap::new();
    let mut theirs: BTreeMap<(&str, &str), (&Party, u32)> = BTreeMap::new();
    let mut links = Vec::new();
    for channel in channels {
        let (home, abroad): (Vec<&Party>, Vec<&Party>) = channel
            .parties
            .iter()
            .partition(|p| p.state.as_deref() == Some(state) || p.id == state);
        for a in &home {
            ours.entry(&a.id).or_insert((a, 0)).1 += channel.contacts;
            for b in &abroad {
                let group = b.state.as_deref().unwrap_or("");
                theirs.entry((group, &b.id)).or_insert((b, 0)).1 += channel.contacts;
                links.push((a.id.as_str(), b.id.as_str(), channel));
            }
        }
    }
    if links.is_empty() {
        return None;
    }
    let row = 30.0;
    let top = 40.0;
    let (left_x, right_x) = (300.0, 660.0);
    let mut places: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    let mut nodes = Vec::new();
    let node = |party: &Party, contacts: u32, x: f64, y: f64, left: bool| Node {
        x,
        y,
        r: px(4.0 + 8.0 * (f64::from(contacts.min(50)) / 50.0).sqrt()),
        class: match kind_of(&party.id) {
            Some(ActorKind::Office) => "office",
            Some(ActorKind::Person) => "person",
            _ => "other",
        },
        label: match &party.holder_name {
            Some(holder) => format!("{} ({holder})", party.name),
            None => party.name.clone(),
        },
        label_x: if left { x - 12.0 } else { x + 12.0 },
        label_y: y + 4.0,
        anchor: if left { "end" } else { "start" },
        href: frame.actor(&party.id, &party.name).href,
        title: format!("{}: {contacts} contact(s) on these channels", party.name),
    };
    for (index, (id, (party, contacts))) in ours.iter().enumerate() {
        let y = top + row * index as f64;
        places.insert(id, (left_x, y));
        nodes.push(node(party, *contacts, left_x, y, true));
    }
    let mut headings = vec![Heading {
        x: left_x,
        y: 18.0,
        anchor: "end",
        text: state_name.clone(),
    }];
    let mut y = top;
    let mut group = None;
    for ((state_of, id), (party, contacts)) in &theirs {
        if group != Some(*state_of) {
            if group.is_some() {
                y += row * 0.6;
            }
            group = Some(*state_of);
            headings.push(Heading {
                x: right_x,
                y: y - 14.0,
                anchor: "start",
                text: if state_of.is_empty() {
                    "Others".to_owned()
                } else {
                    name_of(state_of)
                },
            });
            y += 6.0;
        }
        places.insert(id, (right_x, y));
        nodes.push(node(party, *contacts, right_x, y, false));
        y += row;
    }
    let heaviest = f64::from(links.iter().map(|l| l.2.contacts).max().unwrap_or(1).max(1));
    let mut edges: Vec<Edge> = links
        .iter()
        .filter_map(|(a, b, channel)| {
            let (&(x1, y1), &(x2, y2)) = (places.get(a)?, places.get(b)?);
            let last = channel.last_contact_on.as_ref().map(|t| t.end());
            Some(Edge {
                x1,
                y1,
                x2,
                y2,
                width: px(1.0 + 5.0 * (f64::from(channel.contacts) / heaviest).sqrt()),
                class: recency(last, reference),
                href: frame.event(channel.last_contact_by.unwrap_or(channel.established_by)),
                title: format!(
                    "{}: {} contact(s), {}{}",
                    channel
                        .parties
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(" – "),
                    channel.contacts,
                    readable::label(&channel.status).to_lowercase(),
                    channel
                        .last_contact_on
                        .as_ref()
                        .map(|t| format!(", the last {}", readable::fuzzy(t)))
                        .unwrap_or_default()
                ),
            })
        })
        .collect();
    edges.sort_by(|a, b| a.width.total_cmp(&b.width));
    let height = nodes.iter().map(|n| n.y).fold(top, f64::max) + 30.0;
    let summary = format!(
        "{} office(s) and people of {state_name} and {} counterpart(s) abroad, with the {} \
         channel(s) between them; edges weighted by contacts, coloured by the last contact.",
        ours.len(),
        theirs.len(),
        edges.len()
    );
    Some(NetworkChart {
        width: WIDTH,
        height,
        nodes,
        edges,
        headings,
        legend: [
            LegendItem::new("office", Shape::Circle, "office"),
            LegendItem::new("person", Shape::Circle, "person"),
            LegendItem::new("other", Shape::Circle, "organisation or other"),
        ]
        .into_iter()
        .chain(recency_legend())
        .collect(),
        summary,
    })
}
