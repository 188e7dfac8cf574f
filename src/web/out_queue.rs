//! A connection's pending output: response heads and small bodies copied into one reusable
//! buffer, large bodies queued as `Bytes` between them, all written with `writev`.
//!
//! In the steady state (keep-alive, small responses) nothing is allocated: the buffer is
//! cleared, not freed, once everything in it has been written.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes};

/// Bodies up to this size are copied behind their head so a batch leaves in one piece;
/// larger ones are queued as their own `Bytes` and go out with the same `writev`, uncopied.
pub(crate) const INLINE_BODY: usize = 4096;

/// Pipelined responses are gathered into one write until this much is queued (or a body too
/// large to copy is); then they are written before the next request runs, so a client that
/// pipelines without reading cannot make the server buffer without bound.
const OUT_HIGH_WATER: usize = 64 * 1024;

/// The most pieces handed to one `writev` (the kernel's limit is 1024).
const MAX_IOVECS: usize = 64;

/// One piece of output, in order.
enum Seg {
    /// `buf[previous end..end]`.
    Buf(usize),
    /// A body queued without a copy.
    Bytes(Bytes),
}

#[derive(Default)]
pub(crate) struct OutQueue {
    /// Heads and small bodies, in order.
    buf: Vec<u8>,
    /// The pieces sealed for writing; `buf` past the last `Seg::Buf` end is still open.
    segs: VecDeque<Seg>,
    /// How much of `buf` the sealed `Seg::Buf`s cover.
    sealed: usize,
    /// How much of `buf` has been written.
    written: usize,
    /// How many `Seg::Bytes` are queued.
    uncopied: usize,
}

impl OutQueue {
    /// Nothing waits to be written.
    pub(crate) fn is_empty(&self) -> bool {
        self.segs.is_empty() && self.buf.len() == self.sealed
    }

    /// Enough is queued that it should be written before more is produced. A body queued
    /// uncopied counts as enough on its own, which keeps this O(1).
    pub(crate) fn is_full(&self) -> bool {
        self.uncopied > 0 || self.buf.len() - self.written >= OUT_HIGH_WATER
    }

    /// The buffer to append heads and small pieces to.
    pub(crate) fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Appends a body piece: copied if small, queued as is otherwise.
    pub(crate) fn push_bytes(&mut self, bytes: Bytes) {
        if bytes.len() <= INLINE_BODY {
            self.buf.extend_from_slice(&bytes);
            return;
        }
        self.seal();
        self.uncopied += 1;
        self.segs.push_back(Seg::Bytes(bytes));
    }

    /// Makes everything appended so far part of the next write.
    pub(crate) fn seal(&mut self) {
        if self.buf.len() > self.sealed {
            self.sealed = self.buf.len();
            // Adjacent copied pieces are one piece: extend the last instead of adding one.
            match self.segs.back_mut() {
                Some(Seg::Buf(end)) => *end = self.sealed,
                _ => self.segs.push_back(Seg::Buf(self.sealed)),
            }
        }
    }

    /// Everything sealed, when it is one piece of the buffer (no body queued uncopied): the
    /// usual case, written with a plain `send` and no iovec array.
    pub(crate) fn contiguous(&self) -> Option<&[u8]> {
        (self.uncopied == 0).then(|| &self.buf[self.written..self.sealed])
    }

    /// Fills `slices` with the next pieces to write; returns how many.
    pub(crate) fn slices<'a>(&'a self, slices: &mut [IoSlice<'a>; MAX_IOVECS]) -> usize {
        let mut start = self.written;
        let mut n = 0;
        for seg in self.segs.iter().take(MAX_IOVECS) {
            slices[n] = match seg {
                Seg::Buf(end) => {
                    let s = IoSlice::new(&self.buf[start..*end]);
                    start = *end;
                    s
                }
                Seg::Bytes(b) => IoSlice::new(b),
            };
            n += 1;
        }
        n
    }

    /// Drops the first `n` written bytes.
    pub(crate) fn advance(&mut self, mut n: usize) {
        while n > 0 {
            match self.segs.front_mut() {
                Some(Seg::Buf(end)) => {
                    let len = *end - self.written;
                    if n < len {
                        self.written += n;
                        return;
                    }
                    n -= len;
                    self.written = *end;
                    self.segs.pop_front();
                }
                Some(Seg::Bytes(b)) => {
                    if n < b.len() {
                        b.advance(n);
                        return;
                    }
                    n -= b.len();
                    self.uncopied -= 1;
                    self.segs.pop_front();
                }
                None => break,
            }
        }
        if self.segs.is_empty() && self.written == self.sealed {
            // Everything sealed is out: reuse the buffer, keeping what was appended since.
            if self.buf.len() == self.sealed {
                self.buf.clear();
            } else {
                self.buf.drain(..self.sealed);
            }
            self.sealed = 0;
            self.written = 0;
        }
    }

    /// An array to pass to [`slices`](Self::slices).
    pub(crate) fn iovec_array<'a>() -> [IoSlice<'a>; MAX_IOVECS] {
        [IoSlice::new(&[]); MAX_IOVECS]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain_all(q: &mut OutQueue, step: usize) -> Vec<u8> {
        let mut out = Vec::new();
        q.seal();
        while !q.is_empty() {
            let mut arr = OutQueue::iovec_array();
            let n = q.slices(&mut arr);
            let all: Vec<u8> = arr[..n].iter().flat_map(|s| s.iter().copied()).collect();
            let take = all.len().min(step);
            out.extend_from_slice(&all[..take]);
            q.advance(take);
        }
        out
    }

    #[test]
    fn pieces_come_out_in_order_whatever_the_write_sizes() {
        for step in [1, 3, 7, 100, 10_000] {
            let mut q = OutQueue::default();
            q.buf().extend_from_slice(b"head1;");
            q.push_bytes(Bytes::from_static(b"small;"));
            q.push_bytes(Bytes::from(vec![b'x'; INLINE_BODY + 1]));
            q.buf().extend_from_slice(b"head2;");
            let mut expected = b"head1;small;".to_vec();
            expected.extend(vec![b'x'; INLINE_BODY + 1]);
            expected.extend_from_slice(b"head2;");
            assert_eq!(drain_all(&mut q, step), expected, "step {step}");
            assert!(q.buf.is_empty(), "the buffer is reused");
        }
    }

    #[test]
    fn appending_while_a_write_is_partial_keeps_order() {
        let mut q = OutQueue::default();
        q.buf().extend_from_slice(b"abc");
        q.seal();
        q.advance(1);
        q.buf().extend_from_slice(b"def");
        assert_eq!(drain_all(&mut q, 2), b"bcdef");
    }

    #[test]
    fn copied_pieces_merge_and_come_out_contiguous() {
        let mut q = OutQueue::default();
        q.buf().extend_from_slice(b"ab");
        q.seal();
        q.buf().extend_from_slice(b"cd");
        q.seal();
        assert_eq!(q.segs.len(), 1);
        assert_eq!(q.contiguous(), Some(&b"abcd"[..]));
        q.advance(1);
        assert_eq!(q.contiguous(), Some(&b"bcd"[..]));
        q.push_bytes(Bytes::from(vec![b'x'; INLINE_BODY + 1]));
        assert_eq!(
            q.contiguous(),
            None,
            "a queued body needs the vectored write"
        );
        q.advance(3 + INLINE_BODY + 1);
        assert!(q.is_empty());
        assert_eq!(q.contiguous(), Some(&b""[..]));
    }
}
