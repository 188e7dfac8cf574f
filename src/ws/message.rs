//! What a WebSocket delivers: [`Message`]s, the peer's [`CloseFrame`], and the close codes of
//! RFC 6455 §7.4.

use bytes::Bytes;

/// Close status codes (RFC 6455 §7.4.1), named as aiohttp's `WSCloseCode`.
pub mod close_code {
    /// The purpose of the connection was fulfilled.
    pub const NORMAL: u16 = 1000;
    /// The endpoint is going away: a server shutting down, a page navigated away.
    pub const GOING_AWAY: u16 = 1001;
    /// The peer broke the protocol (a bad frame).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A message of a type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// The close frame had no status code (never sent on the wire; reported only).
    pub const NO_STATUS: u16 = 1005;
    /// The connection ended without a close handshake (never sent on the wire; reported only).
    pub const ABNORMAL: u16 = 1006;
    /// A text message that is not UTF-8, or data inconsistent with its type.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A message that violates the endpoint's policy.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// A message larger than the endpoint accepts (`max_msg_size`).
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// The client needed an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: u16 = 1010;
    /// The server met an unexpected condition.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// The server is restarting.
    pub const SERVICE_RESTART: u16 = 1012;
    /// The server is overloaded; try again later.
    pub const TRY_AGAIN_LATER: u16 = 1013;

    /// Whether `code` may appear in a close frame on the wire: the defined codes other than
    /// the reserved 1004-1006 and 1015, and the 3000-4999 range for libraries and
    /// applications.
    pub fn is_valid_on_wire(code: u16) -> bool {
        matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

/// A close frame's content: its status code and UTF-8 reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code (see [`close_code`]).
    pub code: u16,
    /// Why, for humans; at most 123 bytes.
    pub reason: String,
}

/// One message received on a WebSocket (aiohttp's `WSMessage`, with the type as the
/// variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message, whole (fragments are joined) and checked to be UTF-8.
    Text(String),
    /// A binary message, whole.
    Binary(Bytes),
    /// A ping. Only delivered with `autoping(false)`; otherwise it is answered for you.
    Ping(Bytes),
    /// A pong. Only delivered with `autoping(false)`.
    Pong(Bytes),
    /// The peer closed the WebSocket, with this frame (`None`: it gave no status code). The
    /// close has already been answered; nothing more will arrive.
    Close(Option<CloseFrame>),
}

impl Message {
    /// The text of a [`Message::Text`].
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The payload of a [`Message::Binary`].
    pub fn as_binary(&self) -> Option<&Bytes> {
        match self {
            Message::Binary(b) => Some(b),
            _ => None,
        }
    }

    /// Whether this is the peer's close.
    pub fn is_close(&self) -> bool {
        matches!(self, Message::Close(_))
    }
}
