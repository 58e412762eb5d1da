//! What bounds the resources one client can take: the memory of buffered request bodies,
//! the time a connection may sit idle or leave a response unread, and the log lines its
//! refusals cost.
//!
//! Each bound exists because, without it, a client could make every Pod write in the
//! cluster fail while it lasted (RELIABILITY.md lists the attacks and their tests).

use std::collections::HashMap;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// Bodies up to this size may use the reserve of the body budget: real AdmissionReviews
/// are a few kilobytes, so clients sending bodies near the size limit exhaust the shared
/// part of the budget without locking out ordinary requests.
pub(crate) const SMALL_BODY: usize = 256 * 1024;

/// The memory all buffered request bodies may take together.
#[derive(Debug)]
pub(crate) struct BodyBudget {
    used: AtomicUsize,
    total: usize,
    reserve: usize,
    /// The most held at once since memory was last given back.
    peak: AtomicUsize,
}

impl BodyBudget {
    /// A budget of `total` bytes, an eighth of it kept for small bodies.
    pub(crate) fn new(total: usize) -> BodyBudget {
        BodyBudget {
            used: AtomicUsize::new(0),
            total,
            reserve: total / 8,
            peak: AtomicUsize::new(0),
        }
    }

    /// Whether a burst of bodies has passed since the last call: more than `burst` bytes
    /// were held at once, and now less than a sixteenth of the budget is. The caller then
    /// gives the burst's memory back to the system.
    pub(crate) fn burst_passed(&self, burst: usize) -> bool {
        let calm = self.used() < self.total / 16;
        calm && self.peak.load(Ordering::Relaxed) > burst && {
            self.peak.store(self.used(), Ordering::Relaxed);
            true
        }
    }

    /// Bytes held by bodies now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The whole budget.
    pub(crate) fn total(&self) -> usize {
        self.total
    }

    /// Takes `amount` more bytes for a body that will then hold `body_size` bytes, or
    /// refuses when the budget (for large bodies, the budget less the reserve) would be
    /// passed.
    pub(crate) fn charge(self: &Arc<Self>, amount: usize, body_size: usize) -> Option<Charge> {
        let limit = if body_size <= SMALL_BODY {
            self.total
        } else {
            self.total - self.reserve
        };
        let before = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(amount).filter(|after| *after <= limit)
            })
            .ok()?;
        self.peak.fetch_max(before + amount, Ordering::Relaxed);
        Some(Charge {
            budget: Arc::clone(self),
            amount,
        })
    }
}

/// Bytes taken from a [`BodyBudget`]; given back when dropped.
#[derive(Debug)]
pub(crate) struct Charge {
    budget: Arc<BodyBudget>,
    amount: usize,
}

impl Charge {
    /// An empty charge on `budget`, to grow with [`Charge::absorb`].
    pub(crate) fn none(budget: &Arc<BodyBudget>) -> Charge {
        Charge {
            budget: Arc::clone(budget),
            amount: 0,
        }
    }

    /// Folds `other` (taken from the same budget) into this charge.
    pub(crate) fn absorb(&mut self, mut other: Charge) {
        self.amount += std::mem::take(&mut other.amount);
    }

    /// Bytes held.
    pub(crate) fn amount(&self) -> usize {
        self.amount
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.amount, Ordering::AcqRel);
    }
}

/// What one connection is doing, for the idle and unread-response limits.
#[derive(Debug)]
pub(crate) struct ConnActivity {
    exchanges: Mutex<Exchanges>,
}

#[derive(Debug)]
struct Exchanges {
    next: u64,
    /// Open exchanges; the instant is when the response started being sent.
    open: HashMap<u64, Option<Instant>>,
    idle_since: Instant,
}

impl Default for ConnActivity {
    fn default() -> Self {
        ConnActivity {
            exchanges: Mutex::new(Exchanges {
                next: 0,
                open: HashMap::new(),
                idle_since: Instant::now(),
            }),
        }
    }
}

/// What a connection's watchdog should do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Carry on.
    Fine,
    /// No request for longer than the idle limit: close it gracefully.
    Idle,
    /// A response went unread for longer than the write timeout: drop it.
    Stalled,
}

impl ConnActivity {
    /// Records a request's arrival; the exchange ends when the guard (or the response
    /// body it is moved into) is dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> Exchange {
        let mut state = self.lock();
        let id = state.next;
        state.next += 1;
        state.open.insert(id, None);
        Exchange {
            activity: Arc::clone(self),
            id,
        }
    }

    /// Judges the connection now.
    pub(crate) fn check(&self, idle_limit: Duration, write_timeout: Duration) -> Verdict {
        let state = self.lock();
        if state.open.is_empty() {
            return if state.idle_since.elapsed() >= idle_limit {
                Verdict::Idle
            } else {
                Verdict::Fine
            };
        }
        let stalled = state
            .open
            .values()
            .flatten()
            .any(|since| since.elapsed() >= write_timeout);
        if stalled {
            Verdict::Stalled
        } else {
            Verdict::Fine
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Exchanges> {
        self.exchanges.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One request on a connection, from its arrival to the end of its response.
#[derive(Debug)]
pub(crate) struct Exchange {
    activity: Arc<ConnActivity>,
    id: u64,
}

impl Exchange {
    fn responding(&self) {
        if let Some(slot) = self.activity.lock().open.get_mut(&self.id) {
            slot.get_or_insert_with(Instant::now);
        }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        let mut state = self.activity.lock();
        state.open.remove(&self.id);
        if state.open.is_empty() {
            state.idle_since = Instant::now();
        }
    }
}

/// How much of a response is handed to the connection at once. HTTP/2 buffers what it is
/// given until the peer's flow-control window lets it out; handing it out in slices keeps
/// that buffer small.
const RESPONSE_SLICE: usize = 64 * 1024;

/// A response body that ends its [`Exchange`] once the connection has sent it.
///
/// hyper asks an HTTP/2 body for its next frame only once the stream has send capacity
/// again, that is once what it was handed went out within the peer's flow-control window.
/// So the body does not announce its end with its last slice: the poll after it, which
/// returns `None`, is the sign that the last slice was sent, and ends the exchange. A
/// client that opens no window never gets there, and the watchdog drops its connection.
#[derive(Debug)]
pub(crate) struct TrackedBody {
    rest: Bytes,
    exchange: Option<Exchange>,
}

impl TrackedBody {
    /// The body `bytes`, sent for `exchange`.
    pub(crate) fn new(bytes: Bytes, exchange: Exchange) -> TrackedBody {
        exchange.responding();
        TrackedBody {
            rest: bytes,
            exchange: Some(exchange),
        }
    }
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.rest.is_empty() {
            self.exchange = None;
            return Poll::Ready(None);
        }
        let take = self.rest.len().min(RESPONSE_SLICE);
        let slice = self.rest.split_to(take);
        Poll::Ready(Some(Ok(Frame::data(slice))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.exchange.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

/// Log lines a client can cause, at most one a second per kind; the next line that gets
/// through says how many were left out.
#[derive(Debug, Default)]
pub(crate) struct LogGate {
    kinds: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

impl LogGate {
    /// Whether a line of `kind` may be logged now; `Some(n)` says `n` lines of that kind
    /// were held back since the last one.
    pub(crate) fn admit(&self, kind: &'static str) -> Option<u64> {
        let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match kinds.get_mut(kind) {
            Some((last, suppressed)) if now.duration_since(*last) < Duration::from_secs(1) => {
                *suppressed += 1;
                None
            }
            Some((last, suppressed)) => {
                *last = now;
                Some(std::mem::take(suppressed))
            }
            None => {
                kinds.insert(kind, (now, 0));
                Some(0)
            }
        }
    }
}

/// Counts the open connections and wakes the accept loop when one closes.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    open: AtomicUsize,
    closed: tokio::sync::Notify,
    /// Connections closed because they stayed idle.
    pub(crate) closed_idle: AtomicU64,
    /// Connections dropped because a response went unread.
    pub(crate) closed_stalled: AtomicU64,
}

impl Connections {
    /// Open connections now.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Counts a new connection until the guard is dropped.
    pub(crate) fn track(self: &Arc<Self>) -> ConnectionGuard {
        self.open.fetch_add(1, Ordering::AcqRel);
        ConnectionGuard(Arc::clone(self))
    }

    /// Resolves after some connection closed.
    pub async fn one_closed(&self) {
        self.closed.notified().await;
    }
}

/// Keeps a connection counted.
#[derive(Debug)]
pub(crate) struct ConnectionGuard(Arc<Connections>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.closed.notify_waiters();
    }
}

/// An I/O stream whose writes fail once they have made no progress for `timeout`: a peer
/// that stops reading fills the socket buffers, and would otherwise hold the connection,
/// and everything buffered for it, for as long as it likes.
#[derive(Debug)]
pub(crate) struct WriteDeadline<I> {
    inner: I,
    timeout: Duration,
    stalled_since: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<I> WriteDeadline<I> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: I, timeout: Duration) -> WriteDeadline<I> {
        WriteDeadline {
            inner,
            timeout,
            stalled_since: None,
        }
    }

    /// Turns a pending write into an error once it has been pending for the timeout.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if poll.is_ready() {
            self.stalled_since = None;
            return poll;
        }
        let timeout = self.timeout;
        let timer = self
            .stalled_since
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the peer read nothing within the write timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for WriteDeadline<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for WriteDeadline<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, poll)
    }
}

/// Gives memory the process freed back to the system. glibc's allocator keeps freed
/// memory in its arenas (and, after one large buffer is freed, serves the next ones from
/// the arenas instead of fresh mappings), so after a burst of large request bodies the
/// process would otherwise stay at the burst's peak. musl's allocator returns large
/// buffers by itself.
pub(crate) fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        #[allow(
            unsafe_code,
            reason = "malloc_trim takes a plain integer, touches only the allocator's own state and is safe to call from any thread at any time"
        )]
        // SAFETY: malloc_trim(3) only walks and trims the allocator's arenas under their
        // own locks; it has no preconditions on the caller.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_bodies_leave_the_reserve_to_small_ones() {
        let budget = Arc::new(BodyBudget::new(8 * 1024 * 1024));
        let mut large = Vec::new();
        while let Some(charge) = budget.charge(1024 * 1024, 2 * 1024 * 1024) {
            large.push(charge);
        }
        assert_eq!(large.len(), 7, "7 MiB of 8 go to large bodies");
        let small = budget.charge(100 * 1024, 100 * 1024).expect("the reserve");
        assert_eq!(budget.used(), 7 * 1024 * 1024 + 100 * 1024);
        drop(large);
        drop(small);
        assert_eq!(budget.used(), 0, "every byte given back");
    }

    #[test]
    fn a_burst_is_noticed_once_it_has_passed() {
        let budget = Arc::new(BodyBudget::new(64 * 1024 * 1024));
        let held = budget.charge(20 * 1024 * 1024, 20 * 1024 * 1024).unwrap();
        assert!(!budget.burst_passed(8 * 1024 * 1024), "still held");
        drop(held);
        assert!(budget.burst_passed(8 * 1024 * 1024));
        assert!(!budget.burst_passed(8 * 1024 * 1024), "noticed once");
        let small = budget.charge(1024, 1024).unwrap();
        drop(small);
        assert!(!budget.burst_passed(8 * 1024 * 1024), "no burst since");
    }

    #[test]
    fn absorbed_charges_are_given_back_once() {
        let budget = Arc::new(BodyBudget::new(1024));
        let mut total = Charge::none(&budget);
        total.absorb(budget.charge(100, 100).unwrap());
        total.absorb(budget.charge(200, 300).unwrap());
        assert_eq!((total.amount(), budget.used()), (300, 300));
        drop(total);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn idle_and_stalled_connections_are_told_apart() {
        let activity = Arc::new(ConnActivity::default());
        let short = Duration::from_millis(20);
        assert_eq!(
            activity.check(Duration::from_secs(60), short),
            Verdict::Fine
        );
        std::thread::sleep(short);
        assert_eq!(activity.check(short, short), Verdict::Idle);

        let exchange = activity.begin();
        std::thread::sleep(short);
        // Waiting for its body or its evaluation is bounded elsewhere: not stalled.
        assert_eq!(activity.check(short, short), Verdict::Fine);
        let mut body = TrackedBody::new(Bytes::from(vec![7u8; 3 * RESPONSE_SLICE / 2]), exchange);
        std::thread::sleep(short);
        assert_eq!(activity.check(short, short), Verdict::Stalled);

        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut sizes = Vec::new();
        while let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut cx) {
            sizes.push(frame.into_data().unwrap().len());
        }
        assert_eq!(sizes, [RESPONSE_SLICE, RESPONSE_SLICE / 2]);
        assert!(body.is_end_stream());
        assert_eq!(
            activity.check(Duration::from_secs(60), short),
            Verdict::Fine,
            "the poll after the last slice ends the exchange"
        );
    }

    #[test]
    fn the_log_gate_lets_one_line_a_second_through_and_counts_the_rest() {
        let gate = LogGate::default();
        assert_eq!(gate.admit("413"), Some(0));
        assert_eq!(gate.admit("413"), None);
        assert_eq!(gate.admit("413"), None);
        assert_eq!(gate.admit("503"), Some(0), "kinds are counted apart");
        std::thread::sleep(Duration::from_millis(1010));
        assert_eq!(gate.admit("413"), Some(2));
    }
}
