//! The projections' answers as messages. Every list answer (`ChannelList`, `SummitList`, …)
//! has one shape, the answer's info and its items, which the service builds and the CLI joins
//! page by page through one trait, [`ListMessage`]; [`Served`] says which list answers each
//! projection's items, and [`message`] turns an item into its message through its JSON (the
//! mapping the diplomacy service uses too), so no field is copied by hand.

use serde::Serialize;
use tonic::Status;

use super::bridge;
use crate::projections::models::channels::view::ChannelView;
use crate::projections::models::commitments::CommitmentView;
use crate::projections::models::divergence::DivergenceView;
use crate::projections::models::relations::view::RelationView;
use crate::projections::models::summits::SummitView;
use crate::projections::models::timeline::TimelineEntry;
use crate::projections::read::listed::Listed;
use crate::proto;

/// A list answer of the `Projections` service.
pub trait ListMessage: prost::Message + prost::Name + Default {
    /// One item's message.
    type Item: prost::Message + prost::Name + Default;

    fn new(info: proto::AnswerInfo, items: Vec<Self::Item>) -> Self;
    fn info(&self) -> Option<&proto::AnswerInfo>;
    fn items(&self) -> &[Self::Item];
    /// Adds the next page's items, and takes its info.
    fn append(&mut self, next: Self);
}

macro_rules! list_message {
    ($message:ty, $item:ty, $items:ident) => {
        impl ListMessage for $message {
            type Item = $item;

            fn new(info: proto::AnswerInfo, $items: Vec<$item>) -> Self {
                Self {
                    info: Some(info),
                    $items,
                }
            }

            fn info(&self) -> Option<&proto::AnswerInfo> {
                self.info.as_ref()
            }

            fn items(&self) -> &[$item] {
                &self.$items
            }

            fn append(&mut self, mut next: Self) {
                self.$items.append(&mut next.$items);
                self.info = next.info;
            }
        }
    };
}

list_message!(proto::ChannelList, proto::Channel, channels);
list_message!(proto::SummitList, proto::Summit, summits);
list_message!(proto::CommitmentList, proto::Commitment, commitments);
list_message!(proto::TimelineList, proto::TimelineEntry, entries);
list_message!(proto::RelationList, proto::Relations, relations);
list_message!(proto::DivergenceList, proto::Divergence, divergences);

/// An item of a projection's lists, and the list message that answers with it.
pub trait Served: Listed {
    type List: ListMessage;
}

/// The message of an item of `V`'s list.
pub type ItemOf<V> = <<V as Served>::List as ListMessage>::Item;

impl Served for ChannelView {
    type List = proto::ChannelList;
}

impl Served for SummitView {
    type List = proto::SummitList;
}

impl Served for CommitmentView {
    type List = proto::CommitmentList;
}

impl Served for TimelineEntry {
    type List = proto::TimelineList;
}

impl Served for RelationView {
    type List = proto::RelationList;
}

impl Served for DivergenceView {
    type List = proto::DivergenceList;
}

/// A view as its protobuf message, through its JSON. A view that does not match its message
/// is a defect of this server: logged, and INTERNAL to the client.
pub fn message<V: Serialize, M: prost::Message + prost::Name + Default>(
    view: &V,
) -> Result<M, Status> {
    let json = serde_json::to_value(view).map_err(|e| super::status::internal(&e))?;
    bridge::from_json(json).map_err(|(path, reason)| {
        tracing::error!(
            message = M::full_name(),
            path,
            reason,
            "a projection view does not match its proto"
        );
        Status::internal("internal error")
    })
}
