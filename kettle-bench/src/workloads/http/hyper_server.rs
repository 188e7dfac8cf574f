//! hyper 1.x on tokio's `current_thread` runtime: the low-level Rust HTTP anchor.
//!
//! hyper is driven directly (`hyper::server::conn::http1`, no hyper-util), one tokio task per
//! connection, with keep-alive on and `pipeline_flush(true)`, so that the responses to
//! pipelined requests leave in one write per batch as they do from the other servers. No timer
//! is configured, so there is no header-read timeout; hyper adds `content-length` (from the
//! body's exact size) and `date` (cached per second) itself.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response};

use super::localhost;
use super::response::{self, count_answered};
use crate::netbench::StopFn;

/// The handler: `Hello, World!` for every request (there is only `GET /` here).
async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    count_answered(1);
    let mut res = Response::new(Full::new(Bytes::from_static(response::BODY)));
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(response::CONTENT_TYPE),
    );
    Ok(res)
}

/// Serves on 127.0.0.1:`port` until stopped; see [`super::serve`].
pub fn serve(port: u16, on_ready: impl FnOnce(u16, StopFn)) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let result = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(localhost(port)).await?;
        on_ready(
            listener.local_addr()?.port(),
            // An error means the server already returned: nothing left to stop.
            Box::new(move || {
                let _ = stop_tx.send(());
            }),
        );
        let mut http = hyper::server::conn::http1::Builder::new();
        http.keep_alive(true)
            .pipeline_flush(true)
            .header_read_timeout(None);
        loop {
            let conn = tokio::select! {
                accepted = listener.accept() => accepted?.0,
                _ = &mut stop_rx => return Ok(()),
            };
            conn.set_nodelay(true)?;
            let serving = http.serve_connection(TokioIo(conn), hyper::service::service_fn(hello));
            tokio::spawn(async move {
                // A client that resets or sends garbage ends its own connection only.
                let _ = serving.await;
            });
        }
    });
    // Dropping the runtime drops the connection tasks still pending.
    drop(rt);
    result
}

/// hyper's I/O traits over a tokio `TcpStream`: the adapter hyper-util calls `TokioIo`, written
/// out here so the benchmark depends on hyper alone.
struct TokioIo(tokio::net::TcpStream);

impl hyper::rt::Read for TokioIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // SAFETY: tokio's ReadBuf over the cursor's unfilled (possibly uninitialised) part;
        // TcpStream::poll_read only writes initialised bytes into it and never de-initialises
        // any, so the `filled` bytes it reports are initialised.
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

impl hyper::rt::Write for TokioIo {
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

    // A TCP socket does `writev` natively, so hyper may queue head and body as separate
    // buffers instead of copying them into one (what hyper-util's adapter tells it too).
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
