//! hyper's I/O traits over a tokio stream (a `TcpStream`, or a tokio-rustls `TlsStream` over
//! one), shared by the hyper servers of `http-hello` and `https-hello` and the hyper client of
//! `client-get`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

/// hyper's I/O traits over a tokio stream: the adapter hyper-util calls `TokioIo`, written out
/// here so the benchmark depends on hyper alone.
pub struct TokioIo<T>(pub T);

impl<T: tokio::io::AsyncRead + Unpin> hyper::rt::Read for TokioIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // SAFETY: tokio's ReadBuf over the cursor's unfilled (possibly uninitialised) part;
        // by AsyncRead's contract `poll_read` only writes initialised bytes into it and never
        // de-initialises any, so the `filled` bytes it reports are initialised.
        let n = unsafe {
            let mut tbuf = tokio::io::ReadBuf::uninit(buf.as_mut());
            match tokio::io::AsyncRead::poll_read(Pin::new(&mut self.0), cx, &mut tbuf) {
                Poll::Ready(Ok(())) => tbuf.filled().len(),
                other => return other,
            }
        };
        // SAFETY: the first `n` bytes of the unfilled part were just initialised by the read.
        unsafe { buf.advance(n) };
        Poll::Ready(Ok(()))
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> hyper::rt::Write for TokioIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        tokio::io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tokio::io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tokio::io::AsyncWrite::poll_shutdown(Pin::new(&mut self.0), cx)
    }

    // A TCP socket does `writev` natively, and tokio-rustls hands all the buffers of one call
    // to rustls, which seals them into records together; so hyper may queue head and body as
    // separate buffers instead of copying them into one. hyper-util's adapter passes this on
    // too.
    fn is_write_vectored(&self) -> bool {
        tokio::io::AsyncWrite::is_write_vectored(&self.0)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        tokio::io::AsyncWrite::poll_write_vectored(Pin::new(&mut self.0), cx, bufs)
    }
}
