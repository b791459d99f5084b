//! A transport's outgoing bytes: chunks in order, sent with one vectored send per writable event.
//! A chunk is either a copy (`write`, `writev`) or the host's own buffer (`write_zerocopy`), which is
//! handed back (its release) once it is sent or the connection ends.

use crate::callback::UserData;
use std::collections::VecDeque;

/// Small writes are appended to the last copied chunk up to this size, so a stream of tiny writes
/// does not become a stream of tiny chunks.
const COALESCE: usize = 16 * 1024;
/// Chunks handed to one vectored send.
const MAX_IOV: usize = 64;

/// A buffer the host lent us with `write_zerocopy`: valid and unchanged until its release runs.
pub struct HostBytes {
    ptr: *const u8,
    len: usize,
    release: UserData,
}

impl HostBytes {
    /// # Safety
    /// `ptr` points to `len` readable bytes that stay valid and unchanged until `release` is dropped
    /// (the host's promise for `reactor_transport_write_zerocopy`).
    pub unsafe fn new(ptr: *const u8, len: usize, release: UserData) -> HostBytes {
        HostBytes { ptr, len, release }
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the constructor's contract: readable and valid until `release` drops, which is
        // after this borrow of `self`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    pub fn into_release(self) -> UserData {
        self.release
    }
}

enum Chunk {
    Copied(Vec<u8>),
    Lent(HostBytes),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Copied(v) => v,
            Chunk::Lent(h) => h.as_slice(),
        }
    }
}

#[derive(Default)]
pub struct WriteBuffer {
    chunks: VecDeque<Chunk>,
    /// Bytes of the first chunk already sent.
    sent: usize,
    len: usize,
}

impl WriteBuffer {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.len += data.len();
        if let Some(Chunk::Copied(last)) = self.chunks.back_mut()
            && last.len() + data.len() <= COALESCE
        {
            last.extend_from_slice(data);
            return;
        }
        self.chunks.push_back(Chunk::Copied(data.to_vec()));
    }

    /// Queues a lent buffer, of which the first `skip` bytes were sent already.
    pub fn push_lent(&mut self, bytes: HostBytes, skip: usize) {
        let left = bytes.len - skip;
        if self.chunks.is_empty() {
            self.sent = skip;
        } else {
            debug_assert_eq!(skip, 0);
        }
        self.len += left;
        self.chunks.push_back(Chunk::Lent(bytes));
    }

    /// The unsent bytes, as slices for a vectored send.
    pub fn slices(&self) -> Vec<&[u8]> {
        self.chunks
            .iter()
            .take(MAX_IOV)
            .enumerate()
            .map(|(i, c)| {
                if i == 0 {
                    &c.bytes()[self.sent..]
                } else {
                    c.bytes()
                }
            })
            .collect()
    }

    /// Drops the first `n` bytes (they were sent); returns the releases of lent buffers now done
    /// (to run outside any borrow).
    pub fn consume(&mut self, mut n: usize) -> Vec<UserData> {
        let mut done = Vec::new();
        self.len -= n;
        while n > 0 {
            let front = self.chunks.front().expect("consume within len");
            let left = front.bytes().len() - self.sent;
            if n < left {
                self.sent += n;
                return done;
            }
            n -= left;
            self.sent = 0;
            if let Some(Chunk::Lent(h)) = self.chunks.pop_front() {
                done.push(h.into_release());
            }
        }
        done
    }

    /// Empties the buffer; returns the releases of lent buffers (to run outside any borrow).
    pub fn clear(&mut self) -> Vec<UserData> {
        self.sent = 0;
        self.len = 0;
        self.chunks
            .drain(..)
            .filter_map(|c| match c {
                Chunk::Lent(h) => Some(h.into_release()),
                Chunk::Copied(_) => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_come_out_in_order_across_partial_sends() {
        let lent: &'static [u8] = b"-lent-";
        let mut b = WriteBuffer::default();
        b.push(b"hello ");
        b.push(&vec![b'x'; COALESCE]);
        // SAFETY: a static buffer, valid forever.
        b.push_lent(
            unsafe {
                HostBytes::new(
                    lent.as_ptr(),
                    lent.len(),
                    UserData::new(std::ptr::null_mut(), None),
                )
            },
            0,
        );
        b.push(b"end");
        assert_eq!(b.len(), 6 + COALESCE + 6 + 3);
        let mut out = Vec::new();
        let mut released = 0;
        while !b.is_empty() {
            let first: Vec<u8> = b.slices().concat();
            let take = first.len().min(1000);
            out.extend_from_slice(&first[..take]);
            released += b.consume(take).len();
        }
        let mut want = b"hello ".to_vec();
        want.extend(vec![b'x'; COALESCE]);
        want.extend_from_slice(b"-lent-end");
        assert_eq!(out, want);
        assert_eq!(released, 1, "the lent buffer is handed back once sent");
    }
}
