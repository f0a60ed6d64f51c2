//! What one import wrote, so a failed import can take it back.
//!
//! A pull keeps its partial downloads to resume them; a `load` reads a file
//! that is still there next time, so it has nothing to resume and must not
//! leave anything behind when it fails (a full disk above all). A
//! [`ContentStore`](super::ContentStore) handle made by
//! [`ContentStore::journaled`](super::ContentStore::journaled) deletes the
//! partial of every ingest that ends without a commit, and notes each blob
//! it newly stores, so [`Journal::take_written`] can hand them to the undo.

use std::sync::Mutex;

use crate::digest::Digest;

/// The blobs one import newly stored (not those it found already present).
#[derive(Debug, Default)]
pub(crate) struct Journal {
    written: Mutex<Vec<Digest>>,
}

impl Journal {
    /// Notes that `d` was stored by this import.
    pub(crate) fn wrote(&self, d: &Digest) {
        if let Ok(mut w) = self.written.lock() {
            w.push(d.clone());
        }
    }

    /// The blobs stored so far, emptying the list.
    pub(crate) fn take_written(&self) -> Vec<Digest> {
        self.written
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }
}
