//! The client's side of the codec: request heads out (RFC 9112 §3).
//!
//! Header values come from `http::HeaderValue`, which already refuses CR, LF and NUL, so a
//! value cannot split the head; the request target is checked here for the same reason.

#[cfg(test)]
use http::header::HeaderMap;
use http::Method;

/// How the request body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestFraming {
    /// No body and no `Content-Length` (GET, HEAD, ... without a body).
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked` (a streamed body of unknown length).
    Chunked,
}

/// Appends the request line `METHOD target HTTP/1.1`.
pub(crate) fn request_line(
    out: &mut Vec<u8>,
    method: &Method,
    target: &str,
) -> Result<(), &'static str> {
    if target.is_empty() || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("request target contains whitespace or control characters");
    }
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    Ok(())
}

/// Appends one header field. `HeaderName` and `HeaderValue` already refuse CR, LF and NUL.
pub(crate) fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends the framing header, if any, and the empty line that ends the head. The caller
/// must not have written framing headers of its own: a user-supplied `Content-Length` beside
/// ours would make the request ambiguous.
pub(crate) fn end_head(out: &mut Vec<u8>, framing: RequestFraming) {
    match framing {
        RequestFraming::None => {}
        RequestFraming::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(n.to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        RequestFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// A whole head from a header map (the pieces above in order).
#[cfg(test)]
fn request_head(
    out: &mut Vec<u8>,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    framing: RequestFraming,
) -> Result<(), &'static str> {
    request_line(out, method, target)?;
    for (name, value) in headers {
        field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    end_head(out, framing);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn heads_on_the_wire() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.com"));
        let mut out = Vec::new();
        request_head(
            &mut out,
            &Method::POST,
            "/a?b=1",
            &headers,
            RequestFraming::Length(3),
        )
        .unwrap();
        assert_eq!(
            out,
            b"POST /a?b=1 HTTP/1.1\r\nhost: example.com\r\nContent-Length: 3\r\n\r\n"
        );
        out.clear();
        request_head(
            &mut out,
            &Method::PUT,
            "/",
            &headers,
            RequestFraming::Chunked,
        )
        .unwrap();
        assert!(out.ends_with(b"Transfer-Encoding: chunked\r\n\r\n"));
    }

    #[test]
    fn a_target_cannot_split_the_head() {
        let mut out = Vec::new();
        let headers = HeaderMap::new();
        for bad in ["/a b", "/a\r\nX: 1", ""] {
            assert!(
                request_head(&mut out, &Method::GET, bad, &headers, RequestFraming::None).is_err()
            );
        }
    }
}
