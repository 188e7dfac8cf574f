//! The code every registered socket shares: an owned std socket plus its loop registration,
//! the read/write/read_exact/write_all loop over them, the `futures_io` impls, and the accept
//! loop that survives fd exhaustion.
//!
//! TCP and Unix streams differ only in how they are created and addressed; once connected they
//! are "a non-blocking fd whose `&T` implements `Read + Write`", which is what [`Registered`]
//! drives.

use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::runtime::reactor::{Direction, Registration};
use crate::sys::socket;

/// A non-blocking std socket registered with the running loop.
pub(crate) struct Registered<T> {
    // Field order matters: the registration is dropped (deregistered) before the fd closes.
    reg: Registration,
    inner: T,
}

impl<T: AsRawFd> Registered<T> {
    /// Registers `inner`, which must already be non-blocking, with the loop on this thread.
    pub(crate) fn new(inner: T) -> io::Result<Registered<T>> {
        let reg = Registration::new(inner.as_raw_fd())?;
        Ok(Registered { reg, inner })
    }

    /// Registers a listener shared with other loops (see
    /// [`Registration::new_shared_listener`]).
    pub(crate) fn new_shared_listener(inner: T) -> io::Result<Registered<T>> {
        let reg = Registration::new_shared_listener(inner.as_raw_fd())?;
        Ok(Registered { reg, inner })
    }

    pub(crate) fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }

    /// Waits for a non-blocking `connect` that returned `EINPROGRESS`: it is done when the
    /// socket turns writable, and `SO_ERROR` then says whether it failed.
    pub(crate) async fn finish_connect(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_ready(Direction::Write, cx)).await?;
        match socket::take_error(self.as_raw_fd())? {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl<T> Registered<T> {
    /// The std socket, for calls that never block (addresses, options, shutdown).
    pub(crate) fn get_ref(&self) -> &T {
        &self.inner
    }

    /// See [`Registration::read_event_pending`].
    pub(crate) fn read_event_pending(&self) -> bool {
        self.reg.read_event_pending()
    }

    /// Ready once `dir` is ready (see [`Registration::poll_ready`]).
    pub(crate) fn poll_ready(&self, dir: Direction, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.reg.poll_ready(dir, cx)
    }

    /// Runs the non-blocking `op` on the socket when `dir` is ready, parking on `EWOULDBLOCK`.
    pub(crate) fn poll_io<R>(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        self.reg.poll_io(dir, cx, || op(&self.inner))
    }

    /// [`poll_io`](Self::poll_io) as a future. Cancellation-safe: the operation only runs in
    /// the poll that returns its result.
    pub(crate) async fn io<R>(
        &self,
        dir: Direction,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        poll_fn(|cx| self.poll_io(dir, cx, &mut op)).await
    }
}

/// What a short transfer tells about a stream socket (see
/// [`Registration::poll_transfer`](crate::runtime::reactor::Registration::poll_transfer)).
pub(crate) trait StreamSocket {
    /// True when a read that returns fewer bytes than asked for always means the receive
    /// queue was empty, and a short write that the send buffer was full. True for TCP; false
    /// for Unix streams, whose reads stop early at a change of sender credentials or at
    /// passed fds, with more data queued and no new edge to come.
    const SHORT_MEANS_DRAINED: bool;
}

impl StreamSocket for std::net::TcpStream {
    const SHORT_MEANS_DRAINED: bool = true;
}

impl StreamSocket for std::os::unix::net::UnixStream {
    const SHORT_MEANS_DRAINED: bool = false;
}

impl<T: StreamSocket + AsRawFd> Registered<T>
where
    for<'a> &'a T: Read + Write,
{
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if !T::SHORT_MEANS_DRAINED {
            return self.poll_io(Direction::Read, cx, |mut s| s.read(buf));
        }
        let len = buf.len();
        let inner = &self.inner;
        self.reg
            .poll_transfer(Direction::Read, cx, len, || (&mut &*inner).read(buf))
    }

    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if !T::SHORT_MEANS_DRAINED {
            return self.poll_io(Direction::Write, cx, |mut s| s.write(buf));
        }
        let inner = &self.inner;
        self.reg.poll_transfer(Direction::Write, cx, buf.len(), || {
            (&mut &*inner).write(buf)
        })
    }

    /// Reads into the spare capacity of `buf` (reserving `min_spare` bytes first if less is
    /// free) and advances its length: no zero-filling, and bytes read become part of `buf`
    /// without a copy, so an HTTP body can later be split off as `Bytes`.
    pub(crate) fn poll_read_buf(
        &self,
        cx: &mut Context<'_>,
        buf: &mut bytes::BytesMut,
        min_spare: usize,
    ) -> Poll<io::Result<usize>> {
        if buf.capacity() - buf.len() < min_spare {
            buf.reserve(min_spare);
        }
        let len = buf.capacity() - buf.len();
        let fd = self.as_raw_fd();
        let done = if T::SHORT_MEANS_DRAINED {
            self.reg.poll_transfer(Direction::Read, cx, len, || {
                socket::read_uninit(fd, buf.spare_capacity_mut())
            })
        } else {
            self.reg.poll_io(Direction::Read, cx, || {
                socket::read_uninit(fd, buf.spare_capacity_mut())
            })
        };
        if let Poll::Ready(Ok(n)) = done {
            // SAFETY: `read(2)` initialized the first `n` bytes of the spare capacity, and
            // `n <= len` because that is all it was offered.
            unsafe { buf.set_len(buf.len() + n) };
        }
        done
    }

    /// Writes from several buffers with one `sendmsg`; returns how many bytes went out.
    pub(crate) fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let fd = self.as_raw_fd();
        if !T::SHORT_MEANS_DRAINED {
            return self
                .reg
                .poll_io(Direction::Write, cx, || socket::send_vectored(fd, bufs));
        }
        self.reg.poll_transfer(Direction::Write, cx, total, || {
            socket::send_vectored(fd, bufs)
        })
    }

    pub(crate) async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    pub(crate) async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_write(cx, buf)).await
    }

    pub(crate) async fn read_exact(&self, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read(buf).await? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => buf = &mut buf[n..],
            }
        }
        Ok(())
    }

    pub(crate) async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }
}

/// Implements `futures_io::AsyncRead`/`AsyncWrite` for `$ty` and `&$ty`, where `$ty` has a
/// `Registered` field `$field` whose socket has a `shutdown(Shutdown)` method.
macro_rules! impl_async_io {
    ($ty:ty, $field:ident) => {
        impl futures_io::AsyncRead for &$ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.$field.poll_read(cx, buf)
            }
        }

        impl futures_io::AsyncWrite for &$ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.$field.poll_write(cx, buf)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                // Writes go straight to the kernel; there is no user-space buffer to flush.
                std::task::Poll::Ready(Ok(()))
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                // Closing the write half sends FIN (EOF for the peer); the fd itself closes on
                // drop.
                std::task::Poll::Ready(self.$field.get_ref().shutdown(std::net::Shutdown::Write))
            }
        }

        impl futures_io::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.$field.poll_read(cx, buf)
            }
        }

        impl futures_io::AsyncWrite for $ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.$field.poll_write(cx, buf)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut &*self).poll_flush(cx)
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut &*self).poll_close(cx)
            }
        }
    };
}
pub(crate) use impl_async_io;

/// How long `accept` waits before retrying after the process or system ran out of fds or
/// memory. Long enough that a listener stuck at its fd limit costs ~10 syscalls a second
/// instead of a spinning core, short enough that service resumes promptly once fds free up.
pub(crate) const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Immediate retries after which an accept loop yields to the loop anyway, so a flood of
/// aborted connections cannot starve the other tasks.
const MAX_IMMEDIATE_RETRIES: u32 = 64;

/// What an accept loop does with an error from `accept4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AcceptAction {
    /// The failure belonged to one connection (it was aborted, or a network error was pending
    /// on it); the next queued connection may be fine, so try again at once.
    Retry,
    /// Out of fds or kernel memory: the connection stays queued, but retrying now would fail
    /// the same way (and, edge-triggered, no new event would come), so wait and retry.
    Backoff,
    /// Anything else is a real error of the listener; report it.
    Fail,
}

/// Classifies an `accept4` error; see [`AcceptAction`].
pub(crate) fn accept_action(err: &io::Error) -> AcceptAction {
    match err.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => AcceptAction::Backoff,
        // ECONNABORTED: the peer gave up before we accepted. The rest are the errors accept(2)
        // says Linux passes on from the new connection and that should be treated "like
        // EAGAIN by retrying".
        Some(
            libc::ECONNABORTED
            | libc::EPROTO
            | libc::ENETDOWN
            | libc::ENOPROTOOPT
            | libc::EHOSTDOWN
            | libc::ENONET
            | libc::EHOSTUNREACH
            | libc::EOPNOTSUPP
            | libc::ENETUNREACH,
        ) => AcceptAction::Retry,
        _ => AcceptAction::Fail,
    }
}

/// Accepts through `op` (one non-blocking accept call), riding out the errors that
/// [`accept_action`] says are transient. The listener is never given up on for them.
pub(crate) async fn accept_loop<T, R>(
    listener: &Registered<T>,
    mut op: impl FnMut(&T) -> io::Result<R>,
) -> io::Result<R> {
    let mut immediate = 0u32;
    loop {
        let err = match listener.io(Direction::Read, &mut op).await {
            Ok(accepted) => return Ok(accepted),
            Err(e) => e,
        };
        match accept_action(&err) {
            AcceptAction::Retry => {
                immediate += 1;
                if immediate >= MAX_IMMEDIATE_RETRIES {
                    immediate = 0;
                    crate::yield_now().await;
                }
            }
            AcceptAction::Backoff => {
                tracing::warn!(
                    error = %err,
                    "accept failed for lack of file descriptors or memory; retrying in {:?}",
                    ACCEPT_BACKOFF
                );
                crate::sleep(ACCEPT_BACKOFF).await;
            }
            AcceptAction::Fail => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_errors_are_classified() {
        let of = io::Error::from_raw_os_error;
        for e in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert_eq!(accept_action(&of(e)), AcceptAction::Backoff, "{e}");
        }
        for e in [libc::ECONNABORTED, libc::EPROTO, libc::ENETUNREACH] {
            assert_eq!(accept_action(&of(e)), AcceptAction::Retry, "{e}");
        }
        for e in [libc::EBADF, libc::EINVAL, libc::ENOTSOCK] {
            assert_eq!(accept_action(&of(e)), AcceptAction::Fail, "{e}");
        }
        let no_errno = io::Error::other("not from the kernel");
        assert_eq!(accept_action(&no_errno), AcceptAction::Fail);
    }

    /// The accept loop at its seam: an injected ECONNABORTED is retried at once, an injected
    /// EMFILE after the back-off, and a real error ends the loop.
    #[test]
    fn accept_loop_retries_transient_errors() {
        crate::run(async {
            let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            std_listener.set_nonblocking(true).unwrap();
            let addr = std_listener.local_addr().unwrap();
            let listener = Registered::new(std_listener).unwrap();
            // A queued connection makes the listener readable, so the op gets called.
            let _client = std::net::TcpStream::connect(addr).unwrap();

            let script = [libc::ECONNABORTED, libc::EMFILE, libc::ECONNABORTED];
            let mut calls = 0;
            let start = std::time::Instant::now();
            let (_conn, peer) = accept_loop(&listener, |l| {
                calls += 1;
                match script.get(calls - 1) {
                    Some(&errno) => Err(io::Error::from_raw_os_error(errno)),
                    None => l.accept(),
                }
            })
            .await
            .unwrap();
            assert_eq!(calls, 4);
            assert_eq!(peer.ip(), addr.ip());
            let took = start.elapsed();
            assert!(took >= ACCEPT_BACKOFF, "EMFILE must back off: {took:?}");
            assert!(took < ACCEPT_BACKOFF * 20, "{took:?}");

            let err = accept_loop(&listener, |_| -> io::Result<()> {
                Err(io::Error::from_raw_os_error(libc::EBADF))
            })
            .await
            .unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EBADF));
        });
    }
}
