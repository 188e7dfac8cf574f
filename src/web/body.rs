//! Reading a request body from the connection while the handler runs.
//!
//! The body's decoding state lives in the connection (`ConnIo::body`), not in the request, so
//! that after the handler returns the connection knows whether the body was read to its end
//! (and can drain or refuse the rest). A `BodyReader` carries the number of the request it
//! belongs to: a reader kept past its response reads nothing from the next request.

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;

use super::protocol::ConnIo;

/// Why a body read failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// More than the allowed size; `actual` is the declared length when there is one.
    TooLarge { actual: Option<u64> },
    /// Malformed framing, a disconnect in the middle, or a stall past the read timeout.
    Bad(String),
}

/// The body of a request, readable as it arrives (aiohttp's `request.content`).
///
/// ```no_run
/// use kettle::web::{Request, Response};
///
/// async fn upload(mut req: Request) -> Result<Response, kettle::web::Error> {
///     let mut total = 0;
///     while let Some(chunk) = req.content().read_chunk().await? {
///         total += chunk.len();
///     }
///     Ok(Response::text(format!("{total} bytes")))
/// }
/// ```
pub struct BodyReader {
    conn: Rc<ConnIo>,
    seq: u64,
}

impl BodyReader {
    pub(crate) fn new(conn: Rc<ConnIo>, seq: u64) -> BodyReader {
        BodyReader { conn, seq }
    }

    /// Whether the body has been read to its end.
    pub fn is_done(&self) -> bool {
        self.conn.body_done(self.seq)
    }

    /// The next piece of the body as it arrived (no copy), or `None` at its end. Errors are
    /// 400s: malformed chunked framing, the client disconnecting mid-body, or no data for the
    /// server's read timeout.
    pub async fn read_chunk(&mut self) -> Result<Option<Bytes>, super::Error> {
        self.next(usize::MAX).await.map_err(|e| match e {
            ReadError::Bad(reason) => super::HTTPBadRequest().with_text(reason).into(),
            ReadError::TooLarge { actual } => {
                super::HTTPRequestEntityTooLarge(u64::MAX, actual).into()
            }
        })
    }

    /// Trailer fields of a chunked body, available once it has been read to its end.
    pub fn trailers(&self) -> Option<HeaderMap> {
        self.conn.body_trailers(self.seq)
    }

    pub(crate) async fn next(&mut self, max: usize) -> Result<Option<Bytes>, ReadError> {
        self.conn.next_body_piece(self.seq, max).await
    }

    /// Reads the rest of the body; more than `limit` bytes in all is `TooLarge`.
    pub(crate) async fn read_to_end(&mut self, limit: u64) -> Result<Bytes, ReadError> {
        if let Some(declared) = self.conn.declared_length(self.seq) {
            if declared > limit {
                return Err(ReadError::TooLarge {
                    actual: Some(declared),
                });
            }
        }
        let Some(first) = self.next(usize::MAX).await? else {
            return Ok(Bytes::new());
        };
        if first.len() as u64 > limit {
            return Err(ReadError::TooLarge { actual: None });
        }
        let Some(second) = self.next(usize::MAX).await? else {
            // The common case: the whole body arrived with the head, no copy at all.
            return Ok(first);
        };
        let mut all = BytesMut::with_capacity(first.len() + second.len());
        all.extend_from_slice(&first);
        all.extend_from_slice(&second);
        while let Some(more) = self.next(usize::MAX).await? {
            if (all.len() + more.len()) as u64 > limit {
                return Err(ReadError::TooLarge { actual: None });
            }
            all.extend_from_slice(&more);
        }
        if all.len() as u64 > limit {
            return Err(ReadError::TooLarge { actual: None });
        }
        Ok(all.freeze())
    }
}

impl std::fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader")
            .field("done", &self.is_done())
            .finish()
    }
}
