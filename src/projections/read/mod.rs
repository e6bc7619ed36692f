//! The read side: what a reader asks and gets (`request`), what each projection's items are
//! (`listed`: one trait the list and get of every layer is written once over), lists and gets
//! over the rows and `as of` and on-day answers (`query`: from recorded `versioned` rows, or
//! by `replays` that keep their rows in `snapshots`; one page of items in a `window`, where
//! the next begins in a `page_token`),
//! and change feeds that follow a projection as it changes (`feed`), and full-text search
//! (`search`).

pub mod feed;
pub mod listed;
mod log_dates;
pub mod on_date;
mod page_token;
pub mod query;
mod replays;
pub mod request;
pub mod search;
pub mod snapshots;
mod versioned;
mod window;
