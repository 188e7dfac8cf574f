//! kettle-bench: Kettle and tokio side by side.
fn main() {}
