//! The connection pool: keep-alive connections per origin, under a total limit and a
//! per-origin limit (aiohttp's `TCPConnector(limit=100, limit_per_host=0)`).
//!
//! A [`Lease`] is one slot of both limits. It is taken before connecting and given back when
//! the response is done with: with its connection, if that can carry another request, or
//! without. Requests that find no free slot queue in arrival order; a slot that frees up is
//! handed straight to the first waiter it fits (a reusable connection to the waiter's own
//! origin, or the capacity to open one), so a newcomer can never overtake the queue.
//!
//! Idle connections are used newest first (the oldest are the likeliest to have been closed by
//! the server) and closed after the keep-alive timeout. A connection the server closed while
//! it sat idle is noticed before it is handed out, by peeking at the socket.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use super::conn::Connection;

/// Where a connection goes: scheme, host and port (the origin).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    pub(crate) tls: bool,
    /// Shared, since the key is cloned into every lease and waiter.
    pub(crate) host: Rc<str>,
    pub(crate) port: u16,
}

impl std::fmt::Display for PoolKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// FNV-1a: the pool map is looked up twice per request with a short key, where SipHash's
/// setup cost shows. Flooding is no concern: the map holds only origins with a busy or idle
/// connection, at most `limit` of them.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Pool limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolConfig {
    /// All connections, busy and idle; 0 means no limit.
    pub(crate) limit: usize,
    /// Connections per origin; 0 means no limit.
    pub(crate) limit_per_host: usize,
    /// How long an idle connection is kept.
    pub(crate) keepalive_timeout: Duration,
}

/// What a waiter was handed.
enum Grant {
    /// A slot, with a reusable connection to the waiter's origin.
    Conn(Connection),
    /// A slot to open a new connection in.
    Capacity,
}

struct Waiter {
    key: PoolKey,
    grant: RefCell<Option<Grant>>,
    waker: RefCell<Option<Waker>>,
}

#[derive(Default)]
struct Host {
    /// Slots taken for this origin: leases plus idle connections.
    count: usize,
    /// Idle connections, oldest first, with the time each became idle.
    idle: VecDeque<(Connection, Instant)>,
}

struct State {
    /// Slots taken over all origins.
    total: usize,
    hosts: HashMap<PoolKey, Host, BuildHasherDefault<Fnv>>,
    waiters: VecDeque<Rc<Waiter>>,
    closed: bool,
    /// Whether a sweep of expired idle connections is scheduled.
    sweeping: bool,
    /// Connections ever opened, for tests and statistics.
    opened: u64,
}

/// The pool of one session.
pub(crate) struct Pool {
    config: PoolConfig,
    state: RefCell<State>,
    me: Weak<Pool>,
}

/// Why a lease could not be had.
#[derive(Debug)]
pub(crate) enum AcquireError {
    /// The session was closed.
    Closed,
}

impl Pool {
    pub(crate) fn new(config: PoolConfig) -> Rc<Pool> {
        Rc::new_cyclic(|me| Pool {
            config,
            state: RefCell::new(State {
                total: 0,
                hosts: HashMap::default(),
                waiters: VecDeque::new(),
                closed: false,
                sweeping: false,
                opened: 0,
            }),
            me: me.clone(),
        })
    }

    fn rc(&self) -> Rc<Pool> {
        self.me.upgrade().expect("the pool is alive while borrowed")
    }

    /// Takes a slot for `key`, waiting in line when the limits are reached. The lease carries
    /// an idle connection when one is alive.
    pub(crate) async fn acquire(&self, key: &PoolKey) -> Result<Lease, AcquireError> {
        if let Some(lease) = self.try_acquire(key)? {
            return Ok(lease);
        }
        let waiter = Rc::new(Waiter {
            key: key.clone(),
            grant: RefCell::new(None),
            waker: RefCell::new(None),
        });
        self.state.borrow_mut().waiters.push_back(waiter.clone());
        let mut guard = WaitGuard {
            pool: self,
            waiter: Some(waiter),
        };
        poll_fn(|cx| {
            let waiter = guard.waiter.as_ref().expect("polled after completion");
            if let Some(grant) = waiter.grant.borrow_mut().take() {
                return Poll::Ready(Ok(grant));
            }
            if self.state.borrow().closed {
                return Poll::Ready(Err(AcquireError::Closed));
            }
            *waiter.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
        .map(|grant| {
            guard.waiter = None;
            let conn = match grant {
                Grant::Conn(c) => Some(c),
                Grant::Capacity => None,
            };
            Lease::new(self.rc(), key.clone(), conn)
        })
    }

    /// A slot right now, or `None` when the caller must queue.
    fn try_acquire(&self, key: &PoolKey) -> Result<Option<Lease>, AcquireError> {
        let mut st = self.state.borrow_mut();
        if st.closed {
            return Err(AcquireError::Closed);
        }
        // An idle connection is already a slot of ours; take the newest live one.
        let now = Instant::now();
        let keepalive = self.config.keepalive_timeout;
        let mut dropped = 0;
        let mut found = None;
        if let Some(host) = st.hosts.get_mut(key) {
            while let Some((conn, since)) = host.idle.pop_back() {
                let idle_for = now.duration_since(since);
                if idle_for < keepalive && conn.is_alive(idle_for) {
                    found = Some(conn);
                    break;
                }
                host.count -= 1;
                dropped += 1;
            }
            if host.count == 0 {
                st.hosts.remove(key);
            }
        }
        st.total -= dropped;
        if let Some(conn) = found {
            drop(st);
            return Ok(Some(Lease::new(self.rc(), key.clone(), Some(conn))));
        }
        // Queued requests go first: a newcomer takes fresh capacity only if nobody waits.
        if st.waiters.is_empty() && self.reserve(&mut st, key) {
            drop(st);
            if dropped > 0 {
                self.dispatch();
            }
            return Ok(Some(Lease::new(self.rc(), key.clone(), None)));
        }
        drop(st);
        if dropped > 0 {
            self.dispatch();
        }
        Ok(None)
    }

    /// Takes a slot for `key` if the limits allow, closing an idle connection of another
    /// origin when only the total limit is in the way.
    fn reserve(&self, st: &mut State, key: &PoolKey) -> bool {
        let per_host = self.config.limit_per_host;
        let host_count = st.hosts.get(key).map_or(0, |h| h.count);
        if per_host != 0 && host_count >= per_host {
            return false;
        }
        let limit = self.config.limit;
        if limit != 0 && st.total >= limit && !evict_idle(st) {
            return false;
        }
        st.total += 1;
        st.hosts.entry(key.clone()).or_default().count += 1;
        true
    }

    /// Hands freed slots to waiters, first come first served, as long as one fits.
    fn dispatch(&self) {
        loop {
            let mut st = self.state.borrow_mut();
            let mut granted = None;
            for i in 0..st.waiters.len() {
                let key = st.waiters[i].key.clone();
                if self.reserve(&mut st, &key) {
                    granted = Some(i);
                    break;
                }
                if self.config.limit != 0 && st.total >= self.config.limit {
                    // Nothing else can fit either; keep the order.
                    break;
                }
            }
            let Some(i) = granted else { return };
            let waiter = st.waiters.remove(i).expect("index from the scan");
            drop(st);
            *waiter.grant.borrow_mut() = Some(Grant::Capacity);
            let waker = waiter.waker.borrow_mut().take();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    /// Gives a lease's slot back, with its connection when that can be reused.
    fn release(&self, key: PoolKey, conn: Option<Connection>) {
        let mut st = self.state.borrow_mut();
        match conn {
            Some(conn) if !st.closed => {
                // A waiter for the same origin gets the connection as it is.
                if let Some(i) = st.waiters.iter().position(|w| w.key == key) {
                    let waiter = st.waiters.remove(i).expect("index from the scan");
                    drop(st);
                    *waiter.grant.borrow_mut() = Some(Grant::Conn(conn));
                    let waker = waiter.waker.borrow_mut().take();
                    if let Some(w) = waker {
                        w.wake();
                    }
                    return;
                }
                let host = st.hosts.entry(key).or_default();
                host.idle.push_back((conn, Instant::now()));
                let sweep = !st.sweeping;
                st.sweeping = true;
                let waiting = !st.waiters.is_empty();
                drop(st);
                if sweep {
                    self.schedule_sweep();
                }
                if waiting {
                    // Others wait for other origins: this idle connection may make room.
                    self.dispatch();
                }
            }
            _ => {
                st.total -= 1;
                if let Some(host) = st.hosts.get_mut(&key) {
                    host.count -= 1;
                    if host.count == 0 {
                        st.hosts.remove(&key);
                    }
                }
                drop(st);
                self.dispatch();
            }
        }
    }

    /// Closes idle connections once they pass the keep-alive timeout, so their sockets do not
    /// linger until the next request happens to look.
    fn schedule_sweep(&self) {
        let weak = self.me.clone();
        let every = self.config.keepalive_timeout.max(Duration::from_millis(10));
        if crate::try_get_running_loop().is_none() {
            // Released outside a loop (a response dropped after its loop ended): the next
            // acquire checks expiry anyway.
            self.state.borrow_mut().sweeping = false;
            return;
        }
        crate::task::spawn(async move {
            loop {
                crate::time::sleep(every).await;
                let Some(pool) = weak.upgrade() else { return };
                if !pool.sweep() {
                    return;
                }
            }
        });
    }

    /// Drops expired idle connections; returns whether any idle connection is left to watch.
    fn sweep(&self) -> bool {
        let mut st = self.state.borrow_mut();
        let now = Instant::now();
        let keepalive = self.config.keepalive_timeout;
        let mut freed = 0;
        let mut expired = Vec::new();
        st.hosts.retain(|_, host| {
            while let Some((_, since)) = host.idle.front() {
                if now.duration_since(*since) < keepalive {
                    break;
                }
                expired.push(host.idle.pop_front().expect("front exists").0);
                host.count -= 1;
                freed += 1;
            }
            host.count > 0
        });
        st.total -= freed;
        let any_idle = st.hosts.values().any(|h| !h.idle.is_empty());
        st.sweeping = any_idle && !st.closed;
        let waiting = !st.waiters.is_empty();
        drop(st);
        drop(expired);
        if freed > 0 && waiting {
            self.dispatch();
        }
        any_idle
    }

    /// Refuses new leases, closes idle connections and fails the waiters.
    pub(crate) fn close(&self) {
        let mut st = self.state.borrow_mut();
        st.closed = true;
        let mut idle = Vec::new();
        let mut freed = 0;
        for host in st.hosts.values_mut() {
            freed += host.idle.len();
            host.count -= host.idle.len();
            idle.extend(host.idle.drain(..).map(|(c, _)| c));
        }
        st.hosts.retain(|_, h| h.count > 0);
        st.total -= freed;
        let waiters: Vec<_> = st.waiters.drain(..).collect();
        drop(st);
        drop(idle);
        for w in waiters {
            let waker = w.waker.borrow_mut().take();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    /// Connections out on lease right now.
    pub(crate) fn busy(&self) -> usize {
        let st = self.state.borrow();
        st.total - st.hosts.values().map(|h| h.idle.len()).sum::<usize>()
    }

    /// Idle connections kept right now.
    pub(crate) fn idle(&self) -> usize {
        self.state
            .borrow()
            .hosts
            .values()
            .map(|h| h.idle.len())
            .sum()
    }

    /// Connections opened so far.
    pub(crate) fn opened(&self) -> u64 {
        self.state.borrow().opened
    }

    pub(crate) fn note_opened(&self) {
        self.state.borrow_mut().opened += 1;
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.borrow().closed
    }
}

/// Closes the oldest idle connection of any origin to free one slot of the total.
fn evict_idle(st: &mut State) -> bool {
    let oldest = st
        .hosts
        .iter()
        .filter_map(|(k, h)| h.idle.front().map(|(_, t)| (k.clone(), *t)))
        .min_by_key(|(_, t)| *t);
    let Some((key, _)) = oldest else {
        return false;
    };
    let host = st.hosts.get_mut(&key).expect("key from the scan");
    host.idle.pop_front();
    host.count -= 1;
    if host.count == 0 {
        st.hosts.remove(&key);
    }
    st.total -= 1;
    true
}

/// Takes a waiter out of the queue if its `acquire` is dropped, and passes on a grant it had
/// already been given but not taken.
struct WaitGuard<'a> {
    pool: &'a Pool,
    waiter: Option<Rc<Waiter>>,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        let Some(waiter) = self.waiter.take() else {
            return;
        };
        let grant = waiter.grant.borrow_mut().take();
        match grant {
            Some(Grant::Conn(conn)) => self.pool.release(waiter.key.clone(), Some(conn)),
            Some(Grant::Capacity) => self.pool.release(waiter.key.clone(), None),
            None => {
                let mut st = self.pool.state.borrow_mut();
                st.waiters.retain(|w| !Rc::ptr_eq(w, &waiter));
            }
        }
    }
}

/// One slot of the pool, held from before connecting until the response is done with.
pub(crate) struct Lease {
    pool: Rc<Pool>,
    key: PoolKey,
    conn: Option<Connection>,
    /// Set once the connection has carried a whole exchange and may carry another.
    reusable: Cell<bool>,
}

impl Lease {
    fn new(pool: Rc<Pool>, key: PoolKey, conn: Option<Connection>) -> Lease {
        Lease {
            pool,
            key,
            conn,
            reusable: Cell::new(false),
        }
    }

    /// The connection, if one is attached.
    pub(crate) fn conn(&mut self) -> Option<&mut Connection> {
        self.conn.as_mut()
    }

    /// Attaches a freshly opened connection.
    pub(crate) fn attach(&mut self, conn: Connection) {
        self.pool.note_opened();
        self.conn = Some(conn);
    }

    /// Detaches the connection (to close it, say, before a retry on a fresh one).
    pub(crate) fn detach(&mut self) -> Option<Connection> {
        self.reusable.set(false);
        self.conn.take()
    }

    /// Marks the exchange complete: the connection goes back to the pool on drop.
    pub(crate) fn set_reusable(&self, reusable: bool) {
        self.reusable.set(reusable);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let conn = self.conn.take().filter(|_| self.reusable.get());
        self.pool.release(self.key.clone(), conn);
    }
}
