//! A transport's outgoing bytes: chunks in order, sent with one vectored send per writable event.

use std::collections::VecDeque;

/// Small writes are appended to the last chunk up to this size, so a stream of tiny writes does not
/// become a stream of tiny chunks.
const COALESCE: usize = 16 * 1024;
/// Chunks handed to one vectored send.
const MAX_IOV: usize = 64;

#[derive(Default)]
pub struct WriteBuffer {
    chunks: VecDeque<Vec<u8>>,
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
        if let Some(last) = self.chunks.back_mut()
            && last.len() + data.len() <= COALESCE
        {
            last.extend_from_slice(data);
            return;
        }
        self.chunks.push_back(data.to_vec());
    }

    /// The unsent bytes, as slices for a vectored send.
    pub fn slices(&self) -> Vec<&[u8]> {
        self.chunks
            .iter()
            .take(MAX_IOV)
            .enumerate()
            .map(|(i, c)| if i == 0 { &c[self.sent..] } else { &c[..] })
            .collect()
    }

    /// Drops the first `n` bytes (they were sent).
    pub fn consume(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            let front = self.chunks.front().expect("consume within len");
            let left = front.len() - self.sent;
            if n < left {
                self.sent += n;
                return;
            }
            n -= left;
            self.sent = 0;
            self.chunks.pop_front();
        }
    }

    pub fn clear(&mut self) {
        self.chunks.clear();
        self.sent = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_come_out_in_order_across_partial_sends() {
        let mut b = WriteBuffer::default();
        b.push(b"hello ");
        b.push(&vec![b'x'; COALESCE]);
        b.push(b"end");
        assert_eq!(b.len(), 6 + COALESCE + 3);
        let mut out = Vec::new();
        while !b.is_empty() {
            let first: Vec<u8> = b.slices().concat();
            let take = first.len().min(1000);
            out.extend_from_slice(&first[..take]);
            b.consume(take);
        }
        let mut want = b"hello ".to_vec();
        want.extend(vec![b'x'; COALESCE]);
        want.extend_from_slice(b"end");
        assert_eq!(out, want);
    }
}
