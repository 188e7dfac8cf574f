//! Synchronisation primitives for tasks: queues, locks, events, conditions, semaphores and
//! channels, named after asyncio's.
