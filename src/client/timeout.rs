//! `ClientTimeout`, with aiohttp's four knobs, and the deadline arithmetic behind them.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind};
use crate::time::Sleep;

/// Timeouts of a request, with aiohttp's `ClientTimeout` meaning.
///
/// * `total`: the whole operation, from the call to the last byte of the body: waiting for a
///   pooled connection, connecting, redirects, and reading the response.
/// * `connect`: getting a connection, whether from the pool (waiting for a free slot) or new.
/// * `sock_connect`: connecting to the peer for a new connection (TCP and TLS handshake).
/// * `sock_read`: the longest wait for the next bytes of the response.
///
/// `None` means no limit. The default is aiohttp's: `total` 5 minutes, `sock_connect` 30
/// seconds, the others unlimited.
///
/// ```
/// use std::time::Duration;
/// use kettle::client::ClientTimeout;
///
/// let t = ClientTimeout::default().total(Duration::from_secs(10)).sock_read(Duration::from_secs(2));
/// assert_eq!(t.get_total(), Some(Duration::from_secs(10)));
/// assert_eq!(ClientTimeout::none().get_sock_connect(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientTimeout {
    total: Option<Duration>,
    connect: Option<Duration>,
    sock_connect: Option<Duration>,
    sock_read: Option<Duration>,
}

impl Default for ClientTimeout {
    fn default() -> ClientTimeout {
        ClientTimeout {
            total: Some(Duration::from_secs(300)),
            connect: None,
            sock_connect: Some(Duration::from_secs(30)),
            sock_read: None,
        }
    }
}

impl ClientTimeout {
    /// No limits at all.
    pub fn none() -> ClientTimeout {
        ClientTimeout {
            total: None,
            connect: None,
            sock_connect: None,
            sock_read: None,
        }
    }

    /// Limits the whole operation.
    pub fn total(mut self, d: Duration) -> ClientTimeout {
        self.total = Some(d);
        self
    }

    /// Limits getting a connection (pool wait plus connecting).
    pub fn connect(mut self, d: Duration) -> ClientTimeout {
        self.connect = Some(d);
        self
    }

    /// Limits connecting to the peer (TCP connect and TLS handshake).
    pub fn sock_connect(mut self, d: Duration) -> ClientTimeout {
        self.sock_connect = Some(d);
        self
    }

    /// Limits each wait for response bytes.
    pub fn sock_read(mut self, d: Duration) -> ClientTimeout {
        self.sock_read = Some(d);
        self
    }

    /// The `total` limit.
    pub fn get_total(&self) -> Option<Duration> {
        self.total
    }

    /// The `connect` limit.
    pub fn get_connect(&self) -> Option<Duration> {
        self.connect
    }

    /// The `sock_connect` limit.
    pub fn get_sock_connect(&self) -> Option<Duration> {
        self.sock_connect
    }

    /// The `sock_read` limit.
    pub fn get_sock_read(&self) -> Option<Duration> {
        self.sock_read
    }
}

/// The absolute deadlines of one request, fixed when it starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadlines {
    /// When `total` runs out.
    pub(crate) total: Option<Instant>,
    pub(crate) timeout: ClientTimeout,
}

impl Deadlines {
    pub(crate) fn start(timeout: ClientTimeout) -> Deadlines {
        Deadlines {
            total: timeout.total.and_then(|d| Instant::now().checked_add(d)),
            timeout,
        }
    }

    /// The deadline for getting a connection, started now.
    pub(crate) fn connect(&self) -> Option<Instant> {
        earliest(self.total, after(self.timeout.connect))
    }

    /// The deadline for connecting a new socket, started now, within `outer`.
    pub(crate) fn sock_connect(&self, outer: Option<Instant>) -> Option<Instant> {
        earliest(outer, after(self.timeout.sock_connect))
    }

    /// The deadline for the next read, started now.
    pub(crate) fn read(&self) -> Option<Instant> {
        earliest(self.total, after(self.timeout.sock_read))
    }

    /// Whether the `total` deadline has passed.
    pub(crate) fn total_passed(&self) -> bool {
        self.total.is_some_and(|t| Instant::now() >= t)
    }

    /// Which limit a read that timed out ran into, for the error message.
    pub(crate) fn read_error(&self, what: &str) -> Error {
        let total_passed = self.total.is_some_and(|t| Instant::now() >= t);
        let message = match (total_passed, self.timeout.total, self.timeout.sock_read) {
            (true, Some(t), _) => format!("total timeout ({t:?}) passed {what}"),
            (_, _, Some(r)) => format!("sock_read timeout ({r:?}) passed {what}"),
            _ => format!("timed out {what}"),
        };
        Error::with_message(ErrorKind::Timeout, message)
    }
}

fn after(d: Option<Duration>) -> Option<Instant> {
    d.and_then(|d| Instant::now().checked_add(d))
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Runs `fut` until `deadline`; `Err(())` when the deadline passed first.
///
/// Unlike a timeout scope, it arms no timer while `fut` completes on its first poll, which is
/// the common case for a read whose bytes are already in the socket.
pub(crate) fn until<F: Future>(deadline: Option<Instant>, fut: F) -> Until<F> {
    Until {
        fut,
        deadline,
        sleep: None,
    }
}

/// The future of [`until`].
pub(crate) struct Until<F> {
    fut: F,
    deadline: Option<Instant>,
    sleep: Option<Sleep>,
}

impl<F: Future> Future for Until<F> {
    type Output = std::result::Result<F::Output, ()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `fut` is structurally pinned: it is never moved out of `self` and is dropped
        // in place with it; `sleep` is `Unpin` and treated as such.
        let this = unsafe { self.get_unchecked_mut() };
        let fut = unsafe { Pin::new_unchecked(&mut this.fut) };
        if let Poll::Ready(v) = fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        let Some(deadline) = this.deadline else {
            return Poll::Pending;
        };
        let sleep = this
            .sleep
            .get_or_insert_with(|| crate::time::sleep_until(deadline));
        match Pin::new(sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(())),
            Poll::Pending => Poll::Pending,
        }
    }
}
