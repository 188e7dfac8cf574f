//! The URL dispatcher: route patterns and the table that resolves a request to a handler.

pub mod pattern;
pub mod table;
