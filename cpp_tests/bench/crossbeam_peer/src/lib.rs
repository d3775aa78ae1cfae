//! crossbeam-channel's bounded (array) channel behind a C ABI, so that bench_queue can run it
//! in the same process and the same harness as the other contenders. A record is 64 opaque
//! bytes moved by value (bench_queue's two tensor views).

use std::cell::UnsafeCell;

use crossbeam_channel::{bounded, Receiver, Sender};

/// One record: 64 bytes, copied in and out.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PeerRecord {
    pub words: [u64; 8],
}

/// A bounded channel. `tx` is dropped by `cbpeer_close` (disconnecting receivers once drained),
/// which the harness calls only after every producer has returned.
pub struct Peer {
    tx: UnsafeCell<Option<Sender<PeerRecord>>>,
    rx: Receiver<PeerRecord>,
}

// SAFETY: `tx` is only replaced by `cbpeer_close`, whose contract excludes concurrent sends;
// otherwise it is only read (`Sender` is Sync).
unsafe impl Sync for Peer {}

/// A channel of `capacity` records.
#[no_mangle]
pub extern "C" fn cbpeer_new(capacity: usize) -> *mut Peer {
    let (tx, rx) = bounded(capacity);
    Box::into_raw(Box::new(Peer {
        tx: UnsafeCell::new(Some(tx)),
        rx,
    }))
}

/// Sends one record, blocking while full. False when closed.
///
/// # Safety
/// `p` from `cbpeer_new`, not freed; `rec` readable.
#[no_mangle]
pub unsafe extern "C" fn cbpeer_send(p: *const Peer, rec: *const PeerRecord) -> bool {
    let p = &*p;
    match &*p.tx.get() {
        Some(tx) => tx.send(*rec).is_ok(),
        None => false,
    }
}

/// Receives one record, blocking while empty. False when closed and drained.
///
/// # Safety
/// `p` from `cbpeer_new`, not freed; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn cbpeer_recv(p: *const Peer, out: *mut PeerRecord) -> bool {
    match (*p).rx.recv() {
        Ok(r) => {
            *out = r;
            true
        }
        Err(_) => false,
    }
}

/// Disconnects the senders' side: receivers drain what is queued, then get false.
///
/// # Safety
/// No `cbpeer_send` may run concurrently or later.
#[no_mangle]
pub unsafe extern "C" fn cbpeer_close(p: *const Peer) {
    *(*p).tx.get() = None;
}

/// # Safety
/// `p` from `cbpeer_new`, no other call running or later.
#[no_mangle]
pub unsafe extern "C" fn cbpeer_free(p: *mut Peer) {
    drop(Box::from_raw(p));
}
