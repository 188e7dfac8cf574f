//! `green-pingpong N`: `pingpong` between two green threads, beside the same program as two
//! async tasks.
//!
//! The same channels as `pingpong` (two `kettle::sync::mpsc` channels of capacity 1), awaited
//! from green threads through `kettle::green::wait`, which suspends only the calling green
//! thread. The `kettle` side is the `pingpong` workload's Kettle function itself, so the ratio
//! `kettle-green/kettle` is what running the same exchange as green threads instead of tasks
//! costs. The checksum is the sum of the values the pinger got back (N·(N−1)/2).
