//! `run_in_executor`: blocking work on a bounded pool of threads (asyncio's default
//! `ThreadPoolExecutor`), so a blocking call never freezes the loop.
//!
//! A finished job stores its result and wakes the awaiting task with its waker; from a pool
//! thread that wake travels through the loop's cross-thread queue and eventfd, so the loop sleeps
//! in `epoll_wait` meanwhile instead of polling.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// How long an idle worker waits for a job before its thread exits.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

type Job = Box<dyn FnOnce() + Send>;

/// A bounded pool of threads for blocking work.
///
/// Threads start on demand, up to `max_workers`, and exit after 30 s without work. Jobs beyond
/// the busy workers wait in a FIFO queue.
///
/// ```
/// let pool = kettle::ThreadPool::new(2);
/// let n = kettle::run(async move { pool.run(|| (1..=10).sum::<u32>()).await.unwrap() });
/// assert_eq!(n, 55);
/// ```
#[derive(Clone)]
pub struct ThreadPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    state: Mutex<PoolState>,
    /// Signalled when a job is queued.
    job_ready: Condvar,
    max_workers: usize,
}

struct PoolState {
    queue: VecDeque<Job>,
    workers: usize,
    idle: usize,
}

impl ThreadPool {
    /// A pool of at most `max_workers` threads (at least one).
    pub fn new(max_workers: usize) -> ThreadPool {
        ThreadPool {
            inner: Arc::new(PoolInner {
                state: Mutex::new(PoolState {
                    queue: VecDeque::new(),
                    workers: 0,
                    idle: 0,
                }),
                job_ready: Condvar::new(),
                max_workers: max_workers.max(1),
            }),
        }
    }

    /// The pool size limit.
    pub fn max_workers(&self) -> usize {
        self.inner.max_workers
    }

    /// Threads currently alive in the pool.
    pub fn workers(&self) -> usize {
        self.inner.lock().workers
    }

    /// Runs `f` on a pool thread; the returned future resolves to its result, or to a
    /// `Panicked` error carrying the message if `f` panics (the pool survives). Dropping the
    /// future does not stop `f` (a thread cannot be interrupted); its result is discarded.
    pub fn run<F, T>(&self, f: F) -> Blocking<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let slot = Arc::new(Slot {
            state: Mutex::new(SlotState {
                result: None,
                waker: None,
            }),
        });
        let job_slot = slot.clone();
        let job: Job = Box::new(move || {
            let result = catch_unwind(AssertUnwindSafe(f)).map_err(Error::from_panic);
            job_slot.complete(result);
        });
        if let Err(e) = self.submit(job) {
            slot.complete(Err(e));
        }
        Blocking { slot }
    }

    fn submit(&self, job: Job) -> Result<()> {
        let mut st = self.inner.lock();
        st.queue.push_back(job);
        // Idle workers stay counted as idle until they re-take the lock, so compare the queue
        // with them: a burst larger than the idle set needs new threads.
        if st.queue.len() <= st.idle || st.workers >= self.inner.max_workers {
            drop(st);
            self.inner.job_ready.notify_one();
            return Ok(());
        }
        {
            st.workers += 1;
            drop(st);
            let inner = self.inner.clone();
            let spawned = std::thread::Builder::new()
                .name("kettle-executor".into())
                .spawn(move || inner.work());
            if let Err(e) = spawned {
                let mut st = self.inner.lock();
                st.workers -= 1;
                if st.workers == 0 {
                    // Nobody will ever run the queued jobs: fail the one we were given.
                    st.queue.pop_back();
                    return Err(Error::with_message(
                        ErrorKind::Other,
                        format!("could not start an executor thread: {e}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl PoolInner {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // Jobs run outside the lock, so a poisoned lock still guards consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn work(&self) {
        let mut st = self.lock();
        loop {
            if let Some(job) = st.queue.pop_front() {
                drop(st);
                job();
                st = self.lock();
                continue;
            }
            st.idle += 1;
            let (guard, timeout) = self
                .job_ready
                .wait_timeout(st, IDLE_TIMEOUT)
                .unwrap_or_else(|p| p.into_inner());
            st = guard;
            st.idle -= 1;
            if timeout.timed_out() && st.queue.is_empty() {
                st.workers -= 1;
                return;
            }
        }
    }
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("max_workers", &self.inner.max_workers)
            .finish()
    }
}

/// Where a job leaves its result for the awaiting future.
struct Slot<T> {
    state: Mutex<SlotState<T>>,
}

struct SlotState<T> {
    result: Option<Result<T>>,
    waker: Option<Waker>,
}

impl<T> Slot<T> {
    fn lock(&self) -> MutexGuard<'_, SlotState<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn complete(&self, result: Result<T>) {
        let waker = {
            let mut st = self.lock();
            st.result = Some(result);
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The future of a job sent to a [`ThreadPool`] (or [`run_in_executor`]).
#[must_use = "the job runs anyway, but its result is lost unless awaited"]
pub struct Blocking<T> {
    slot: Arc<Slot<T>>,
}

impl<T> Future for Blocking<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let mut st = self.slot.lock();
        if let Some(result) = st.result.take() {
            return Poll::Ready(result);
        }
        match &st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// The process-wide default pool: `min(32, cores + 4)` threads, as Python's default executor.
pub fn default_pool() -> &'static ThreadPool {
    static POOL: OnceLock<ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        ThreadPool::new((cores + 4).min(32))
    })
}

/// Runs the blocking closure `f` on the default thread pool and resolves to its result
/// (asyncio's `loop.run_in_executor(None, f)`). The loop keeps serving other tasks meanwhile.
///
/// ```
/// use std::time::Duration;
/// kettle::run(async {
///     let len = kettle::run_in_executor(|| {
///         std::thread::sleep(Duration::from_millis(20)); // a blocking call
///         "done".len()
///     })
///     .await
///     .unwrap();
///     assert_eq!(len, 4);
/// });
/// ```
pub fn run_in_executor<F, T>(f: F) -> Blocking<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    default_pool().run(f)
}
