//! `kettle::web`: an aiohttp.web-style HTTP/1.1 server framework.
//!
//! The layout follows aiohttp's vocabulary: `app` (Application), `router` (the URL
//! dispatcher), `request`, `response`, `cookies`, forms (`urlencoded`, `multipart`).

pub mod cookies;
pub mod multidict;
pub mod multipart;
pub mod router;
pub mod urlencoded;
