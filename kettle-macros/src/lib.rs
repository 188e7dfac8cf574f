//! Attribute macros for Kettle: `#[kettle::main]` and `#[kettle::test]`.
