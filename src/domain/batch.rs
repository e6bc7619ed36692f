//! The batched reads' one rule: how many bytes one message may carry (`max_batch_bytes`), and
//! how consecutive events are grouped under that bound. Pure: the sizes are given by the
//! caller (the events' encoded protobuf), and the order of the events is never changed.

use super::ValidationError;

/// A batch's bound when the reader gives none.
pub const DEFAULT_BATCH_BYTES: u32 = 1 << 20;

/// The largest bound a reader may ask for: the message limit gRPC clients apply by default
/// (4 MiB), so a reader that asks for the most still decodes every batch without raising it.
pub const MAX_BATCH_BYTES: u32 = 4 << 20;

/// The most bytes one batch may have, unless it holds a single larger event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchBytes(u32);

impl BatchBytes {
    /// `None` (unset) is the default; 0 and more than [`MAX_BATCH_BYTES`] are refused.
    pub fn parse(raw: Option<u32>) -> Result<Self, ValidationError> {
        match raw {
            None => Ok(Self(DEFAULT_BATCH_BYTES)),
            Some(bytes) if (1..=MAX_BATCH_BYTES).contains(&bytes) => Ok(Self(bytes)),
            Some(bytes) => Err(ValidationError::OutOfRange {
                value: i64::from(bytes),
                min: 1,
                max: i64::from(MAX_BATCH_BYTES),
            }),
        }
    }

    pub fn get(self) -> usize {
        self.0 as usize
    }
}

/// A batch being filled: items in the order they were pushed, within the bound.
#[derive(Debug)]
pub struct Batch<T> {
    items: Vec<T>,
    bytes: usize,
    bound: usize,
}

impl<T> Batch<T> {
    pub fn new(bound: BatchBytes) -> Self {
        Self {
            items: Vec::new(),
            bytes: 0,
            bound: bound.get(),
        }
    }

    /// Adds `item`, of `size` bytes, if it fits; an empty batch takes any item, so one larger
    /// than the bound comes alone (refusing it would end the read). Gives the item back when
    /// the batch is full for it: take the batch, then push the item again.
    pub fn push(&mut self, item: T, size: usize) -> Result<(), T> {
        if !self.items.is_empty() && self.bytes + size > self.bound {
            return Err(item);
        }
        self.bytes += size;
        self.items.push(item);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The items so far, leaving the batch empty.
    pub fn take(&mut self) -> Vec<T> {
        self.bytes = 0;
        std::mem::take(&mut self.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(bytes: u32) -> BatchBytes {
        BatchBytes::parse(Some(bytes)).unwrap()
    }

    #[test]
    fn an_unset_bound_is_one_mib_and_four_mib_is_the_most() {
        assert_eq!(BatchBytes::parse(None).unwrap().get(), 1 << 20);
        assert_eq!(bound(1).get(), 1);
        assert_eq!(bound(4 << 20).get(), 4 << 20);
    }

    #[test]
    fn a_bound_of_zero_or_over_four_mib_is_refused() {
        for bytes in [0, (4 << 20) + 1, u32::MAX] {
            assert_eq!(
                BatchBytes::parse(Some(bytes)),
                Err(ValidationError::OutOfRange {
                    value: i64::from(bytes),
                    min: 1,
                    max: 4 << 20
                })
            );
        }
    }

    #[test]
    fn items_fill_a_batch_up_to_its_bound_exactly() {
        let mut batch = Batch::new(bound(10));
        assert_eq!(batch.push('a', 4), Ok(()));
        assert_eq!(batch.push('b', 6), Ok(()));
        assert_eq!(batch.push('c', 1), Err('c'));
        assert_eq!(batch.take(), vec!['a', 'b']);
        assert!(batch.is_empty());
        assert_eq!(batch.push('c', 1), Ok(()));
        assert_eq!(batch.take(), vec!['c']);
    }

    #[test]
    fn an_item_larger_than_the_bound_comes_alone() {
        let mut batch = Batch::new(bound(10));
        assert_eq!(batch.push('a', 3), Ok(()));
        assert_eq!(batch.push('B', 11), Err('B'));
        assert_eq!(batch.take(), vec!['a']);
        assert_eq!(batch.push('B', 11), Ok(()));
        assert_eq!(batch.push('c', 1), Err('c'));
        assert_eq!(batch.take(), vec!['B']);
    }
}
