//! The read side: lists and gets over the rows, `as of` answers by replay (`query`), and
//! change feeds that follow a projection as it changes (`feed`).

pub mod feed;
pub mod query;
