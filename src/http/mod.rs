//! The HTTP/1.x codec, split by concern as in hyper's `proto/h1`, with a server role and a
//! client role sharing the body framing.
//!
//! Server role: `head` (request heads in, with every strictness rule), `encode` (response
//! framing out) and `date` (the cached `Date` header); `web::protocol` drives them. Client
//! role: `request_encode` (request heads out) and `response_head` (response heads in, bounded
//! and strict); `client::conn` drives them. Both: `decode` (body framing in: length, chunked,
//! and for responses until close) and the chunk framing in `encode`. It knows nothing about
//! sockets or handlers.

pub(crate) mod date;
pub(crate) mod decode;
pub(crate) mod encode;
pub(crate) mod head;
pub(crate) mod request_encode;
pub(crate) mod response_head;

/// Bounds on what a peer may send in a request head; each overrun has its own status.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadLimits {
    /// The request line, in bytes, CRLF excluded; longer → 414.
    pub(crate) max_line: usize,
    /// The whole head (request line and headers), in bytes; larger → 431.
    pub(crate) max_head: usize,
    /// The number of header fields; more → 431.
    pub(crate) max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> HeadLimits {
        // aiohttp's defaults: 8190 for the line and each field, 32 KiB of headers in all.
        HeadLimits {
            max_line: 8190,
            max_head: 32 * 1024,
            max_headers: 100,
        }
    }
}
