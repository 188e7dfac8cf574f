//! [`LoopGroup`]: one event loop per thread, several threads — the seeds' "multi-process +
//! coroutines" in one process.
//!
//! Nothing is shared between the loops but what the factory's closure captures (which must
//! be `Send + Sync`, so an `Arc` of whatever the workers share). Each worker builds its own
//! `!Send` state inside its loop from the factory, runs its future to the end, and reports
//! the result. A worker that panics is reported with its index and the group stops the
//! others: half a server is worse than none, since a supervisor can restart a whole process.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use super::{EventLoop, LoopHandle};
use crate::error::{Error, ErrorKind, Result};
use crate::task::TaskRef;

thread_local! {
    /// The index of the group worker running on this thread.
    static WORKER: Cell<Option<usize>> = const { Cell::new(None) };
    /// The worker's main task, so a stop request (a callback on this loop) can cancel it.
    static MAIN: RefCell<Option<TaskRef>> = const { RefCell::new(None) };
    /// A stop request that arrived before the main task existed.
    static STOP_REQUESTED: Cell<bool> = const { Cell::new(false) };
}

/// The index of the [`LoopGroup`] worker whose loop runs on this thread, `None` outside a
/// group. For per-worker statistics and logs.
///
/// ```
/// let group = kettle::LoopGroup::builder()
///     .workers(2)
///     .spawn(|_| async { kettle::worker_index() })
///     .unwrap();
/// let indexes: Vec<_> = group.join().into_iter().map(|r| r.unwrap()).collect();
/// assert_eq!(indexes, [Some(0), Some(1)]);
/// assert_eq!(kettle::worker_index(), None);
/// ```
pub fn worker_index() -> Option<usize> {
    WORKER.with(Cell::get)
}

/// Settings for a [`LoopGroup`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until spawn() is called"]
pub struct LoopGroupBuilder {
    workers: Option<usize>,
    pin: bool,
    name: String,
}

impl Default for LoopGroupBuilder {
    fn default() -> LoopGroupBuilder {
        LoopGroupBuilder {
            workers: None,
            pin: false,
            name: "kettle-worker".to_string(),
        }
    }
}

impl LoopGroupBuilder {
    /// How many loops (threads) to run; the default is the available parallelism.
    pub fn workers(mut self, n: usize) -> LoopGroupBuilder {
        self.workers = Some(n);
        self
    }

    /// Pins worker `i` to the `i`-th CPU this process may use (wrapping around), so each
    /// loop keeps its core's caches. Off by default: pinning helps a dedicated server and
    /// hurts when the machine is shared.
    pub fn pin_to_cores(mut self, on: bool) -> LoopGroupBuilder {
        self.pin = on;
        self
    }

    /// The threads' name prefix (`kettle-worker-0`, `kettle-worker-1`, ...).
    pub fn thread_name(mut self, prefix: impl Into<String>) -> LoopGroupBuilder {
        self.name = prefix.into();
        self
    }

    /// The number of workers this builder will start.
    pub fn worker_count(&self) -> usize {
        self.workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Starts the workers: worker `i` gets a new loop on its own thread and runs the future
    /// `factory(i)` on it as its main task. Returns once every loop exists, so the handles
    /// are usable at once. An error if a thread or a loop cannot be created (the workers
    /// already started are stopped first), or if `workers` is 0.
    pub fn spawn<F, Fut, T>(self, factory: F) -> io::Result<LoopGroup<T>>
    where
        F: Fn(usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let n = self.worker_count();
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a loop group needs at least one worker",
            ));
        }
        let cpus = if self.pin {
            crate::sys::thread::allowed_cpus()
        } else {
            Vec::new()
        };
        let factory = Arc::new(factory);
        let (done_tx, done_rx) = mpsc::channel();
        let mut group = LoopGroup {
            workers: Vec::with_capacity(n),
            done: done_rx,
            joined: false,
        };
        for i in 0..n {
            let (ready_tx, ready_rx) = mpsc::sync_channel(1);
            let factory = factory.clone();
            let done = done_tx.clone();
            let cpu = (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
            let thread = std::thread::Builder::new()
                .name(format!("{}-{i}", self.name))
                .spawn(move || run_worker(i, cpu, factory, ready_tx, done));
            let thread = match thread {
                Ok(t) => t,
                Err(e) => {
                    group.abandon();
                    return Err(e);
                }
            };
            match ready_rx.recv() {
                Ok(Ok(handle)) => group.workers.push(Worker {
                    handle,
                    thread: Some(thread),
                }),
                Ok(Err(e)) => {
                    let _ = thread.join();
                    group.abandon();
                    return Err(e);
                }
                Err(_) => {
                    let _ = thread.join();
                    group.abandon();
                    return Err(io::Error::other(format!("worker {i} died while starting")));
                }
            }
        }
        Ok(group)
    }
}

/// The body of worker `index`'s thread.
fn run_worker<F, Fut, T>(
    index: usize,
    cpu: Option<usize>,
    factory: Arc<F>,
    ready: mpsc::SyncSender<io::Result<LoopHandle>>,
    done: mpsc::Sender<(usize, Result<T>)>,
) where
    F: Fn(usize) -> Fut + 'static,
    Fut: Future<Output = T> + 'static,
    T: 'static,
{
    WORKER.with(|w| w.set(Some(index)));
    if let Some(cpu) = cpu {
        if let Err(e) = crate::sys::thread::pin_to_cpu(cpu) {
            tracing::warn!(worker = index, cpu, "cannot pin the worker: {e}");
        }
    }
    let lp = match EventLoop::new() {
        Ok(lp) => lp,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    if ready.send(Ok(lp.handle())).is_err() {
        return;
    }
    let result = lp.run_until_complete(async move {
        // The future is made inside the task, so a factory that panics is a panicked
        // worker like any other, not a dead thread.
        let task = crate::task::spawn(async move { factory(index).await });
        MAIN.with(|m| *m.borrow_mut() = Some(task.task_ref()));
        if STOP_REQUESTED.with(Cell::get) {
            task.cancel();
        }
        task.await
    });
    MAIN.with(|m| m.borrow_mut().take());
    let result = result.map_err(|e| match e.kind() {
        ErrorKind::Panicked => Error::with_message(
            ErrorKind::Panicked,
            format!("worker {index} panicked: {}", e.message().unwrap_or("")),
        ),
        _ => e,
    });
    // Tasks the worker left behind are cancelled and their destructors run on this thread.
    let _ = lp.close();
    let _ = done.send((index, result));
}

/// Runs on a worker's loop: cancels its main task (or remembers to, if it does not exist yet).
fn request_stop() {
    STOP_REQUESTED.with(|s| s.set(true));
    if let Some(task) = MAIN.with(|m| m.borrow().clone()) {
        task.cancel();
    }
}

struct Worker {
    handle: LoopHandle,
    thread: Option<JoinHandle<()>>,
}

/// A group of event loops, one per thread, each running a future made by a factory
/// (`LoopGroup::builder().workers(n).spawn(|i| async move { ... })`).
///
/// [`join`](LoopGroup::join) waits for every worker and returns their results in worker
/// order. A worker that panics has its result as an [`ErrorKind::Panicked`] error naming its
/// index, and the group [stops](LoopGroup::stop) the other workers, whose results are then
/// `Cancelled` errors (or whatever they returned while stopping). Dropping the group without
/// joining stops and joins the workers.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let total = Arc::new(AtomicUsize::new(0));
/// let shared = total.clone();
/// let group = kettle::LoopGroup::builder()
///     .workers(3)
///     .spawn(move |i| {
///         let shared = shared.clone();
///         async move {
///             // `!Send` state lives inside the worker's loop.
///             let local = std::rc::Rc::new(i * 10);
///             kettle::sleep(std::time::Duration::from_millis(5)).await;
///             shared.fetch_add(*local, Ordering::SeqCst);
///             i
///         }
///     })
///     .unwrap();
/// assert_eq!(group.len(), 3);
/// let results: Vec<usize> = group.join().into_iter().map(|r| r.unwrap()).collect();
/// assert_eq!(results, [0, 1, 2]);
/// assert_eq!(total.load(Ordering::SeqCst), 30);
/// ```
pub struct LoopGroup<T> {
    workers: Vec<Worker>,
    done: mpsc::Receiver<(usize, Result<T>)>,
    joined: bool,
}

impl LoopGroup<()> {
    /// A builder for a group.
    pub fn builder() -> LoopGroupBuilder {
        LoopGroupBuilder::default()
    }
}

impl<T> LoopGroup<T> {
    /// How many workers the group has.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Whether the group has no workers (never true for a started group).
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// The handle of worker `i`'s loop, for cross-loop calls
    /// ([`call_soon_threadsafe`](LoopHandle::call_soon_threadsafe)).
    pub fn handle(&self, i: usize) -> Option<&LoopHandle> {
        self.workers.get(i).map(|w| &w.handle)
    }

    /// Every worker's loop handle, in worker order.
    pub fn handles(&self) -> Vec<LoopHandle> {
        self.workers.iter().map(|w| w.handle.clone()).collect()
    }

    /// Asks every worker to finish: its main task is cancelled (its future dropped at its
    /// next suspension point, destructors running on its own thread). Returns at once; use
    /// [`join`](LoopGroup::join) to wait.
    pub fn stop(&self) {
        for w in &self.workers {
            // A worker that already finished has a closed loop; nothing to stop there.
            let _ = w.handle.call_soon_threadsafe(request_stop);
        }
    }

    /// Waits for every worker and returns their results in worker order. The first worker
    /// to panic stops the others.
    pub fn join(mut self) -> Vec<Result<T>> {
        self.join_all()
    }

    fn join_all(&mut self) -> Vec<Result<T>> {
        self.joined = true;
        let n = self.workers.len();
        let mut results: Vec<Option<Result<T>>> = (0..n).map(|_| None).collect();
        let mut stopping = false;
        for _ in 0..n {
            let Ok((i, result)) = self.done.recv() else {
                break;
            };
            if !stopping && result.as_ref().is_err_and(Error::is_panic) {
                if let Err(e) = &result {
                    tracing::error!(worker = i, "{e}; stopping the other workers");
                }
                stopping = true;
                self.stop();
            }
            results[i] = Some(result);
        }
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
        results
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                r.unwrap_or_else(|| {
                    Err(Error::with_message(
                        ErrorKind::Panicked,
                        format!("worker {i} died without a result"),
                    ))
                })
            })
            .collect()
    }

    /// Stops and joins whatever started, discarding results (a failed `spawn`).
    fn abandon(&mut self) {
        self.stop();
        let _ = self.join_all();
    }
}

impl<T> Drop for LoopGroup<T> {
    fn drop(&mut self) {
        if !self.joined {
            self.stop();
            let _ = self.join_all();
        }
    }
}

impl<T> std::fmt::Debug for LoopGroup<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopGroup")
            .field("workers", &self.workers.len())
            .finish()
    }
}
