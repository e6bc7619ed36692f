//! Page tokens: where the next page of a list starts. A token counts the items already given
//! (its offset) and, for lists paged in SQL, names the last of them by its place in list
//! order: the next page starts right after that row, so rows coming or going before it since
//! neither repeat nor skip an item, and a page deep in a long list is found along the
//! list-order index instead of counted to. The pages of an answer on a day also name the log
//! position that answer is at.
//!
//! Form: `<offset>[~<place>][@<position>]`, the place URL-safe base64 (no padding) of the
//! row's sort key, a NUL and its key (neither can hold a NUL: they are PostgreSQL text).
//! Tokens without a place (`<offset>`, `<offset>@<position>`, what earlier versions gave and
//! lists paged in memory still give) start at their offset.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::projections::Row;
use crate::projections::engine::listing::{ListPlace, PageFrom};
use crate::projections::read::request::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, QueryError};

/// Where a page starts: the items before it, and the place of the last of them if the token
/// names it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct PageStart {
    pub offset: usize,
    pub after: Option<ListPlace>,
}

impl PageStart {
    /// Where a store's page starts: after the place if one is named, else at the offset.
    pub fn from(&self) -> PageFrom {
        match &self.after {
            Some(place) => PageFrom::After(place.clone()),
            None => PageFrom::Offset(self.offset as u64),
        }
    }
}

/// Where a page starts and how many items it has at most (checked against the limit). The
/// position a token may name is checked too, and read by `page_position`.
pub(super) fn page_bounds(page: &Page) -> Result<(PageStart, usize), QueryError> {
    let size = match page.size {
        0 => DEFAULT_PAGE_SIZE,
        size if size > MAX_PAGE_SIZE => {
            return Err(QueryError::Invalid {
                field: "page_size",
                message: format!("{size} is more than the limit of {MAX_PAGE_SIZE}"),
            });
        }
        size => size,
    };
    page_position(page)?;
    if page.token.is_empty() {
        return Ok((PageStart::default(), size));
    }
    let start = page
        .token
        .split_once('@')
        .map_or(page.token.as_str(), |(start, _)| start);
    let (offset, place) = match start.split_once('~') {
        Some((offset, place)) => (offset, Some(place)),
        None => (start, None),
    };
    let offset = offset.parse().map_err(|_| bad_token(page))?;
    let after = place
        .map(|place| decode_place(place).ok_or_else(|| bad_token(page)))
        .transpose()?;
    Ok((PageStart { offset, after }, size))
}

/// The log position a page's token says its answer was at (`…@position`, what the pages of
/// an answer on a day carry), if it says one.
pub(super) fn page_position(page: &Page) -> Result<Option<u64>, QueryError> {
    match page.token.split_once('@') {
        Some((_, position)) => Ok(Some(position.parse().map_err(|_| bad_token(page))?)),
        None => Ok(None),
    }
}

/// `token` (of the next page of an answer at `position`) naming that position too.
pub(super) fn at_position(token: String, position: u64) -> String {
    if token.is_empty() {
        token
    } else {
        format!("{token}@{position}")
    }
}

/// The token of the page after one that ends before item `next` of `total` (empty: none),
/// for lists paged by counting.
pub(super) fn next_page_token(next: usize, total: usize) -> String {
    if next < total {
        next.to_string()
    } else {
        String::new()
    }
}

/// The token of the page after one that ends with `last`, item `next - 1` (empty if no more
/// rows follow), for lists paged in SQL.
pub(super) fn token_after(next: usize, last: Option<&Row>, more: bool) -> String {
    match last {
        Some(last) if more => {
            let mut place = Vec::with_capacity(last.sort_key.len() + 1 + last.key.len());
            place.extend_from_slice(last.sort_key.as_bytes());
            place.push(0);
            place.extend_from_slice(last.key.as_bytes());
            format!("{next}~{}", URL_SAFE_NO_PAD.encode(place))
        }
        _ => String::new(),
    }
}

fn decode_place(place: &str) -> Option<ListPlace> {
    let bytes = URL_SAFE_NO_PAD.decode(place).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (sort_key, key) = text.split_once('\0')?;
    (!key.contains('\0')).then(|| ListPlace {
        sort_key: sort_key.to_owned(),
        key: key.to_owned(),
    })
}

fn bad_token(page: &Page) -> QueryError {
    QueryError::Invalid {
        field: "page_token",
        message: format!(
            "{:?} is not a page token from an earlier answer",
            page.token
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projections::testing::row_at as row;

    fn page(token: &str) -> Page {
        Page {
            size: 10,
            token: token.to_owned(),
        }
    }

    #[test]
    fn a_token_after_a_row_starts_the_next_page_after_its_place_and_keeps_the_position() {
        let last = row("2025-02-15T10:00:00Z#0000000042@~", "interaction:é/?+");
        let token = token_after(20, Some(&last), true);
        let (start, size) = page_bounds(&page(&token)).expect("read back");
        assert_eq!(size, 10);
        assert_eq!(start.offset, 20);
        assert_eq!(start.after, Some(ListPlace::of(&last)));
        assert_eq!(start.from(), PageFrom::After(ListPlace::of(&last)));
        let pinned = at_position(token, 77);
        assert_eq!(page_position(&page(&pinned)).expect("a position"), Some(77));
        assert_eq!(page_bounds(&page(&pinned)).expect("read back").0, start);
    }

    #[test]
    fn no_token_follows_the_last_page() {
        assert_eq!(token_after(3, Some(&row("a", "b")), false), "");
        assert_eq!(token_after(0, None, true), "");
    }

    #[test]
    fn tokens_of_earlier_versions_start_at_their_offset() {
        for (token, offset, position) in [("", 0, None), ("40", 40, None), ("40@9", 40, Some(9))] {
            let (start, _) = page_bounds(&page(token)).expect(token);
            assert_eq!(
                start,
                PageStart {
                    offset,
                    after: None
                },
                "{token}"
            );
            assert_eq!(start.from(), PageFrom::Offset(offset as u64));
            assert_eq!(page_position(&page(token)).expect(token), position);
        }
    }

    #[test]
    fn forged_tokens_are_refused_naming_the_field() {
        let no_nul = URL_SAFE_NO_PAD.encode("no separator");
        let two_nuls = URL_SAFE_NO_PAD.encode("a\0b\0c");
        for token in [
            "x".to_owned(),
            "-1".to_owned(),
            "4~".to_owned(),
            "4~!!".to_owned(),
            format!("4~{no_nul}"),
            format!("4~{two_nuls}"),
            format!("x~{}", URL_SAFE_NO_PAD.encode("a\0b")),
            "4@x".to_owned(),
        ] {
            match page_bounds(&page(&token)) {
                Err(QueryError::Invalid { field, .. }) => assert_eq!(field, "page_token"),
                other => panic!("{token:?}: {other:?}"),
            }
        }
        match page_bounds(&Page {
            size: MAX_PAGE_SIZE + 1,
            token: String::new(),
        }) {
            Err(QueryError::Invalid { field, .. }) => assert_eq!(field, "page_size"),
            other => panic!("{other:?}"),
        }
    }
}
