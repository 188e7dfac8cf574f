//! The opening handshake (RFC 6455 §4): the checks both ends make on the other's HTTP head,
//! the `Sec-WebSocket-Accept` proof, and subprotocol selection.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use http::HeaderMap;

/// The GUID §4.2.2 appends to the client's key before hashing it.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The one protocol version RFC 6455 defines.
pub(crate) const VERSION: &str = "13";

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
///
/// SHA-1 is what the RFC prescribes; here it proves the server read the handshake, and
/// carries no security weight.
pub(crate) fn accept_key(key: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key);
    ctx.update(GUID);
    BASE64.encode(ctx.finish())
}

/// A client key must be 16 random bytes, base64-encoded (§4.1, item 7).
pub(crate) fn is_valid_client_key(key: &[u8]) -> bool {
    key.len() == 24 && BASE64.decode(key).is_ok_and(|raw| raw.len() == 16)
}

/// A fresh client key from the system's random source.
pub(crate) fn new_client_key() -> String {
    let mut raw = [0u8; 16];
    super::mask::fill_random(&mut raw);
    BASE64.encode(raw)
}

/// Whether the comma-separated header `name` lists `token` (case-insensitive), as the
/// `Connection: keep-alive, Upgrade` of some browsers needs.
pub(crate) fn has_token(headers: &HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// The subprotocols a handshake offers (`Sec-WebSocket-Protocol`), in the client's order.
pub(crate) fn offered_protocols(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// The subprotocol to answer with: the first the client offered that the server supports
/// (aiohttp's rule: the client's preference order wins).
pub(crate) fn select_protocol(headers: &HeaderMap, supported: &[String]) -> Option<String> {
    offered_protocols(headers)
        .into_iter()
        .find(|p| supported.iter().any(|s| s == p))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{CONNECTION, SEC_WEBSOCKET_PROTOCOL};
    use http::HeaderValue;

    #[test]
    fn accept_key_matches_rfc_6455() {
        // §1.3's worked example.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn client_keys_are_16_bytes_of_base64() {
        assert!(is_valid_client_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_client_key(b"dGhlIHNhbXBsZSBub25jZQ"));
        assert!(!is_valid_client_key(b"not base64 at all!!!!!!!"));
        assert!(!is_valid_client_key(b"AAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        let fresh = new_client_key();
        assert!(is_valid_client_key(fresh.as_bytes()));
        assert_ne!(fresh, new_client_key());
    }

    #[test]
    fn tokens_and_protocols() {
        let mut h = HeaderMap::new();
        h.append(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(has_token(&h, CONNECTION, "upgrade"));
        assert!(!has_token(&h, CONNECTION, "close"));
        h.append(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("a, chat"));
        h.append(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("v2"));
        assert_eq!(offered_protocols(&h), ["a", "chat", "v2"]);
        let supported = ["v2".to_string(), "chat".to_string()];
        assert_eq!(select_protocol(&h, &supported).as_deref(), Some("chat"));
        assert_eq!(select_protocol(&h, &["x".to_string()]), None);
    }
}
