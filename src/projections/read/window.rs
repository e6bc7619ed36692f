//! How a list's rows become one page of items: the stored rows a list reads, a replayed
//! model's rows in list order, and the window that counts every item but keeps one page.

use chrono::{DateTime, Utc};

use crate::projections::Row;
use crate::projections::engine::listing::{PageFrom, RowPage, order_key};
use crate::projections::engine::rows::RowFilter;
use crate::projections::models::common::ACTOR_STATUS;
use crate::projections::read::listed::Listed;
use crate::projections::read::page_token::next_page_token;
use crate::projections::read::request::{Answer, ListFilter, QueryError};

/// Every item, as one answer without pages.
pub(super) fn whole<T>(items: Vec<T>, position: u64, reference: DateTime<Utc>) -> Answer<T> {
    Answer {
        total: items.len(),
        items,
        position,
        reference,
        next_page_token: String::new(),
    }
}

/// The stored rows that may be items of `V` under `filter` (the actor registry's only when
/// the list is of actors).
pub(super) fn list_rows<V: Listed>(filter: &ListFilter) -> Result<RowFilter, QueryError> {
    let mut rows = filter.rows()?;
    rows.status = V::ROWS.iter().map(|s| (*s).to_owned()).collect();
    if !V::ROWS.contains(&ACTOR_STATUS) {
        rows.without_status = vec![ACTOR_STATUS.to_owned()];
    }
    V::narrow(filter, &mut rows);
    Ok(rows)
}

/// The row filters a live get by `key` tries in turn: the row the key names (`row_key`), then
/// the rows whose data holds the key as their stream (`STREAM_AT`); every row of the list when
/// the key can name neither.
pub(super) fn lookups<V: Listed>(key: &str, rows: &RowFilter) -> Vec<RowFilter> {
    let mut lookups = Vec::new();
    if let Some(row_key) = V::row_key(key) {
        lookups.push(RowFilter {
            keys: vec![row_key],
            ..rows.clone()
        });
    }
    if let Some(path) = V::STREAM_AT {
        lookups.push(RowFilter {
            at_path: Some((
                path.iter().map(|step| (*step).to_owned()).collect(),
                key.to_owned(),
            )),
            ..rows.clone()
        });
    }
    if lookups.is_empty() {
        lookups.push(rows.clone());
    }
    lookups
}

/// One page of a list, filled as its items come in list order: all are counted, only the
/// page's kept.
pub(super) struct Window<T> {
    offset: usize,
    size: usize,
    items: Vec<T>,
    total: usize,
}

impl<T> Window<T> {
    pub(super) fn new(offset: usize, size: usize) -> Self {
        Self {
            offset,
            size,
            items: Vec::new(),
            total: 0,
        }
    }

    pub(super) fn offer(&mut self, item: T) {
        if self.total >= self.offset && self.items.len() < self.size {
            self.items.push(item);
        }
        self.total += 1;
    }

    pub(super) fn answer(self, position: u64, reference: DateTime<Utc>) -> Answer<T> {
        Answer {
            next_page_token: next_page_token(self.offset + self.items.len(), self.total),
            items: self.items,
            position,
            reference,
            total: self.total,
        }
    }
}

/// Puts a replayed model's rows in list order (byte order of their sort key, then key), as the
/// store's reads order the live rows in SQL: once, when the replay ends, not for each page.
pub(super) fn in_list_order(rows: &mut [Row]) {
    rows.sort_unstable_by(|a, b| order_key(a).cmp(&order_key(b)));
}

/// A replayed model's rows (in list order: `in_list_order`) passing `filter`, one at a time
/// to `each` (what the store's `each_row` does for the live rows, in SQL).
pub(super) fn each_replayed(
    rows: &[Row],
    filter: &RowFilter,
    each: impl FnMut(&Row) -> Result<(), QueryError>,
) -> Result<(), QueryError> {
    rows.iter().filter(|r| passes(r, filter)).try_for_each(each)
}

/// One page of rows paged where they are (in SQL, or a replay's in memory), every one an item.
#[derive(Debug, Default, PartialEq)]
pub(super) struct RowsPage {
    pub rows: Vec<Row>,
    /// The rows passing the filter, on all pages.
    pub total: u64,
    /// More rows follow the page.
    pub more: bool,
}

impl From<RowPage> for RowsPage {
    fn from(page: RowPage) -> Self {
        RowsPage {
            rows: page.rows,
            total: page.total,
            more: page.more,
        }
    }
}

/// The page of a replayed model's rows (in list order) passing `filter` that starts at
/// `from`, at most `size` of them, how many pass in all and whether more follow (what the
/// store's `page_rows` does for the live rows, in SQL): no row outside the page is decoded.
pub(super) fn page_replayed(
    rows: &[Row],
    filter: &RowFilter,
    from: &PageFrom,
    size: usize,
) -> RowsPage {
    let mut page = RowsPage::default();
    for row in rows.iter().filter(|r| passes(r, filter)) {
        let started = match from {
            PageFrom::Offset(offset) => page.total >= *offset,
            PageFrom::After(place) => place.is_before(row),
        };
        if started && page.rows.len() < size {
            page.rows.push(row.clone());
        } else if started {
            page.more = true;
        }
        page.total += 1;
    }
    page
}

/// Applies a row filter in memory, as the store's reads do in SQL (for replayed models).
pub(super) fn passes(row: &Row, filter: &RowFilter) -> bool {
    filter
        .actor
        .as_ref()
        .is_none_or(|actor| row.actors.contains(actor))
        && filter.states.iter().all(|state| row.states.contains(state))
        && (filter.status.is_empty() || filter.status.contains(&row.status))
        && !filter.without_status.contains(&row.status)
        && (filter.keys.is_empty() || filter.keys.contains(&row.key))
        && filter
            .at_path
            .as_ref()
            .is_none_or(|(path, value)| at_path(row, path).as_deref() == Some(value.as_str()))
}

/// The text at `path` in a row's data, as PostgreSQL's `#>>` gives it (strings unquoted, other
/// values as JSON).
fn at_path(row: &Row, path: &[String]) -> Option<String> {
    let data: serde_json::Value = serde_json::from_str(row.data.get()).ok()?;
    let found = path.iter().try_fold(&data, |value, step| value.get(step))?;
    match found {
        serde_json::Value::Null => None,
        serde_json::Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projections::engine::listing::ListPlace;

    fn filled(offset: usize, size: usize, items: usize) -> Answer<usize> {
        let mut window = Window::new(offset, size);
        (0..items).for_each(|item| window.offer(item));
        window.answer(7, Utc::now())
    }

    #[test]
    fn a_window_keeps_its_page_counts_every_item_and_says_where_the_next_begins() {
        let middle = filled(3, 4, 10);
        assert_eq!(
            (middle.items, middle.total, middle.next_page_token),
            (vec![3, 4, 5, 6], 10, "7".to_owned())
        );
        let last = filled(8, 4, 10);
        assert_eq!((last.items, last.total), (vec![8, 9], 10));
        assert_eq!(last.next_page_token, "");
        let past = filled(12, 4, 10);
        assert!(past.items.is_empty() && past.next_page_token.is_empty());
        let exact = filled(6, 4, 10);
        assert_eq!(
            (exact.items.len(), exact.next_page_token),
            (4, String::new())
        );
    }

    #[test]
    fn a_path_in_a_rows_data_reads_as_postgresql_reads_it() {
        let row = Row {
            key: "k".to_owned(),
            data: crate::projections::RowData::new(&serde_json::json!({
                "stream_id": "channel-a", "origin": {"stream_id": "call-1", "position": 7},
                "gone": null
            }))
            .unwrap(),
            actors: Vec::new(),
            states: Vec::new(),
            status: "s".to_owned(),
            sort_key: String::new(),
        };
        let at = |path: &[&str]| {
            at_path(
                &row,
                &path.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            )
        };
        assert_eq!(at(&["stream_id"]).as_deref(), Some("channel-a"));
        assert_eq!(at(&["origin", "stream_id"]).as_deref(), Some("call-1"));
        assert_eq!(at(&["origin", "position"]).as_deref(), Some("7"));
        assert_eq!(at(&["gone"]), None);
        assert_eq!(at(&["origin", "missing"]), None);
    }

    #[test]
    fn replayed_rows_pass_the_filter_and_page_in_byte_order_of_sort_key_then_key() {
        let row = |key: &str, sort_key: &str, status: &str, actors: &[&str]| Row {
            key: key.to_owned(),
            data: crate::projections::RowData::new(&serde_json::json!({})).unwrap(),
            actors: actors.iter().map(|a| (*a).to_owned()).collect(),
            states: Vec::new(),
            status: status.to_owned(),
            sort_key: sort_key.to_owned(),
        };
        let mut rows = [
            row("b", "2025", "call", &["x"]),
            row("a", "2025", "call", &["x"]),
            row("c", "2024", "call", &["y"]),
            row("Z", "2026", "call", &["x"]),
            row("x", "", ACTOR_STATUS, &["x"]),
            row("d", "2027", "call", &["x"]),
        ];
        in_list_order(&mut rows);
        let filter = RowFilter {
            actor: Some("x".to_owned()),
            without_status: vec![ACTOR_STATUS.to_owned()],
            ..RowFilter::default()
        };
        let mut keys = Vec::new();
        each_replayed(&rows, &filter, |row| {
            keys.push(row.key.clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(keys, ["a", "b", "Z", "d"]);
        // A page of them: the same order, counted in all, saying whether more follow.
        let keys = |page: RowsPage| {
            let keys = page.rows.into_iter().map(|r| r.key).collect::<Vec<_>>();
            (keys, page.total, page.more)
        };
        let at = |offset| PageFrom::Offset(offset);
        let strings = |keys: &[&str]| keys.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            keys(page_replayed(&rows, &filter, &at(1), 2)),
            (strings(&["b", "Z"]), 4, true)
        );
        assert_eq!(
            keys(page_replayed(&rows, &filter, &at(3), 2)),
            (strings(&["d"]), 4, false)
        );
        assert_eq!(
            keys(page_replayed(&rows, &filter, &at(9), 2)),
            (Vec::new(), 4, false)
        );
        // After a row's place: the rows after it, whether or not that row still passes.
        let after = |sort_key: &str, key: &str| {
            PageFrom::After(ListPlace {
                sort_key: sort_key.to_owned(),
                key: key.to_owned(),
            })
        };
        assert_eq!(
            keys(page_replayed(&rows, &filter, &after("2025", "a"), 2)),
            (strings(&["b", "Z"]), 4, true)
        );
        assert_eq!(
            keys(page_replayed(&rows, &filter, &after("2025", "c"), 2)),
            (strings(&["Z", "d"]), 4, false)
        );
        assert_eq!(
            keys(page_replayed(&rows, &filter, &after("2027", "d"), 2)),
            (Vec::new(), 4, false)
        );
    }
}
