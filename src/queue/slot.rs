//! `Slot`: one column of a workspace queue's record (`ops::queue_ops::BlobQueue`), two words.
//!
//! Hosts move tensors in through the C ABI as the handle's own allocation (`Tensor`), so a
//! host record moves in and out as one pointer per column, with no allocation or copy.
//! Operators swap blob contents with the slot (Caffe2's zero-copy swap): the content lives in
//! a box (`Content`) that stays in the slot, so the consumer's previous content waits there
//! for the next producer (Caffe2's ping-pong recycling) and, once the first lap made the boxes,
//! operator traffic allocates nothing.

use super::QueueSlot;
use crate::tensor::{DataType, Tensor};
use crate::workspace::{BlobContent, EMPTY_TYPE_NAME, TENSOR_TYPE_NAME};

#[derive(Default)]
pub enum Slot {
    #[default]
    Empty,
    /// A tensor a host enqueued, still in its handle's allocation.
    Tensor(Box<Tensor>),
    /// Blob content an operator swapped in, or the previous content a reader left behind
    /// (possibly `BlobContent::Empty`: the box is kept for the next swap).
    Content(Box<BlobContent>),
}

impl QueueSlot for Slot {
    #[inline]
    fn content_bytes(&self) -> usize {
        match self {
            Slot::Empty => 0,
            Slot::Tensor(t) => tensor_bytes(t),
            Slot::Content(c) => content_bytes(c),
        }
    }
}

/// Byte size of a blob's content for the `queue_dequeued_bytes` stats (tensor elements or
/// string bytes; 0 for anything else).
#[inline]
pub fn content_bytes(content: &BlobContent) -> usize {
    match content {
        BlobContent::Tensor(t) => tensor_bytes(t),
        BlobContent::String(s) => s.len(),
        _ => 0,
    }
}

#[inline]
fn tensor_bytes(t: &Tensor) -> usize {
    if t.dtype() == DataType::String {
        t.strings()
            .map_or(0, |s| s.iter().map(Vec::len).sum::<usize>())
    } else {
        t.nbytes()
    }
}

impl Slot {
    /// Exchanges the slot's content with `content` (a blob's, under its lock).
    pub fn swap_content(&mut self, content: &mut BlobContent) {
        match self {
            Slot::Content(boxed) => std::mem::swap(&mut **boxed, content),
            Slot::Empty => {
                if !matches!(content, BlobContent::Empty) {
                    *self = Slot::Content(Box::new(std::mem::take(content)));
                }
            }
            Slot::Tensor(_) => {
                let incoming = std::mem::take(content);
                let slot = if matches!(incoming, BlobContent::Empty) {
                    Slot::Empty
                } else {
                    Slot::Content(Box::new(incoming))
                };
                if let Slot::Tensor(t) = std::mem::replace(self, slot) {
                    *content = BlobContent::Tensor(*t);
                }
            }
        }
    }

    /// Whether the slot holds nothing.
    #[inline]
    pub fn is_empty(&self) -> bool {
        match self {
            Slot::Empty => true,
            Slot::Tensor(_) => false,
            Slot::Content(c) => matches!(**c, BlobContent::Empty),
        }
    }

    /// The tensor the slot holds, if it holds one.
    #[inline]
    pub fn tensor(&self) -> Option<&Tensor> {
        match self {
            Slot::Tensor(t) => Some(t),
            Slot::Content(c) => match &**c {
                BlobContent::Tensor(t) => Some(t),
                _ => None,
            },
            Slot::Empty => None,
        }
    }

    /// Puts a host tensor in (its own box), dropping the old content unless the slot was
    /// empty (the common case, kept free of a drop call).
    #[inline]
    pub fn put_tensor(&mut self, t: Box<Tensor>) {
        let old = std::mem::replace(self, Slot::Tensor(t));
        if !matches!(old, Slot::Empty) {
            drop(old);
        } else {
            std::mem::forget(old);
        }
    }

    /// Takes the tensor out (a host-enqueued one in its own box; an operator's one in a box
    /// made by `boxed`), leaving the slot empty (an operator's box stays, holding nothing).
    /// `None`, slot untouched, when it holds no tensor.
    #[inline]
    pub fn take_tensor(
        &mut self,
        boxed: impl FnOnce(Tensor) -> *mut Tensor,
    ) -> Option<*mut Tensor> {
        match self {
            Slot::Tensor(_) => match std::mem::take(self) {
                Slot::Tensor(t) => Some(Box::into_raw(t)),
                _ => None,
            },
            Slot::Content(c) if matches!(**c, BlobContent::Tensor(_)) => {
                match std::mem::take(&mut **c) {
                    BlobContent::Tensor(t) => Some(boxed(t)),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The type name used in messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Slot::Empty => EMPTY_TYPE_NAME,
            Slot::Tensor(_) => TENSOR_TYPE_NAME,
            Slot::Content(c) => c.type_name(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: i32) -> Tensor {
        Tensor::from_slice(DataType::Int32, &[1], &[v]).unwrap()
    }

    /// The `queue_dequeued_bytes` stats count tensor element bytes, the bytes of string
    /// tensors' elements and of string blobs, and nothing for other contents.
    #[test]
    fn content_bytes_count_what_each_kind_of_slot_holds() {
        let strings = Tensor::from_strings(&[2], vec![b"ab".to_vec(), b"cde".to_vec()]).unwrap();
        let cases = [
            (Slot::Empty, 0),
            (Slot::Tensor(Box::new(t(1))), 4),
            (Slot::Tensor(Box::new(strings.clone())), 5),
            (Slot::Content(Box::new(BlobContent::Tensor(strings))), 5),
            (
                Slot::Content(Box::new(BlobContent::String(b"xyz".to_vec()))),
                3,
            ),
            (Slot::Content(Box::new(BlobContent::Empty)), 0),
        ];
        for (slot, bytes) in cases {
            assert_eq!(slot.content_bytes(), bytes, "{}", slot.type_name());
        }
    }

    #[test]
    fn only_a_slot_holding_nothing_is_empty() {
        assert!(Slot::Empty.is_empty());
        assert!(Slot::Content(Box::new(BlobContent::Empty)).is_empty());
        assert!(!Slot::Tensor(Box::new(t(1))).is_empty());
        assert!(!Slot::Content(Box::new(BlobContent::Tensor(t(1)))).is_empty());
        assert!(!Slot::Content(Box::new(BlobContent::String(Vec::new()))).is_empty());
    }

    /// A host tensor put into a slot that still holds an earlier content (an operator
    /// reader's recycled one, or a host tensor) drops that content: its storage is released.
    #[test]
    fn put_tensor_drops_what_the_slot_held() {
        let kept = t(5);
        for content in [false, true] {
            let mut slot = if content {
                Slot::Content(Box::new(BlobContent::Tensor(kept.clone())))
            } else {
                Slot::Tensor(Box::new(kept.clone()))
            };
            assert!(!kept.writes_in_place(), "the slot shares the storage");
            slot.put_tensor(Box::new(t(6)));
            assert!(kept.writes_in_place(), "the old content was dropped");
            assert_eq!(slot.tensor().unwrap().typed::<i32>().unwrap(), &[6]);
        }
    }

    #[test]
    fn slots_stay_two_words() {
        assert_eq!(std::mem::size_of::<Slot>(), 16);
    }

    #[test]
    fn operator_swaps_ping_pong_through_the_kept_box() {
        let mut slot = Slot::Empty;
        let mut producer = BlobContent::Tensor(t(1));
        slot.swap_content(&mut producer);
        assert!(matches!(producer, BlobContent::Empty));
        let mut consumer = BlobContent::Tensor(t(9));
        slot.swap_content(&mut consumer);
        assert_eq!(consumer_value(&consumer), 1);
        let Slot::Content(b) = &slot else {
            panic!("box kept")
        };
        let kept: *const BlobContent = &**b;
        let mut producer = BlobContent::Tensor(t(2));
        slot.swap_content(&mut producer);
        assert_eq!(
            consumer_value(&producer),
            9,
            "the consumer's old content comes back"
        );
        let Slot::Content(b) = &slot else {
            panic!("box kept")
        };
        assert_eq!(&**b as *const BlobContent, kept, "no new box");
    }

    #[test]
    fn host_tensors_leave_in_their_own_box_or_a_new_one() {
        let boxed = Box::new(t(3));
        let addr: *const Tensor = &*boxed;
        let mut slot = Slot::Tensor(boxed);
        let p = slot.take_tensor(|_| unreachable!()).unwrap();
        assert_eq!(p as *const Tensor, addr);
        // SAFETY: `p` came from `Box::into_raw` just above.
        drop(unsafe { Box::from_raw(p) });
        assert!(slot.is_empty());
        let mut slot = Slot::Content(Box::new(BlobContent::String(b"s".to_vec())));
        assert!(
            slot.take_tensor(|_| unreachable!()).is_none(),
            "not a tensor: untouched"
        );
        assert_eq!(slot.type_name(), crate::workspace::STRING_TYPE_NAME);
        let mut slot = Slot::Content(Box::new(BlobContent::Tensor(t(4))));
        let p = slot.take_tensor(|x| Box::into_raw(Box::new(x))).unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { Box::from_raw(p) }.typed::<i32>().unwrap(), &[4]);
        assert!(slot.is_empty() && matches!(slot, Slot::Content(_)));
        // An operator read of a host tensor: the reader gets the tensor, the slot its content.
        let mut slot = Slot::Tensor(Box::new(t(5)));
        let mut consumer = BlobContent::Tensor(t(8));
        slot.swap_content(&mut consumer);
        assert_eq!(consumer_value(&consumer), 5);
        assert_eq!(slot.tensor().unwrap().typed::<i32>().unwrap(), &[8]);
    }

    fn consumer_value(c: &BlobContent) -> i32 {
        match c {
            BlobContent::Tensor(t) => t.typed::<i32>().unwrap()[0],
            _ => panic!("not a tensor"),
        }
    }
}
