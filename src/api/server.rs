//! The HTTP server's connection handling: the accept loop and the life of
//! each connection, between the listening socket and the [`router`](super::router).
//!
//! A client that holds a connection without using it costs a file
//! descriptor and memory; enough of them (a misconfigured client, a
//! "slowloris" load generator) used to starve every teacher of the server.
//! Three bounds hold it (`limits:` in the configuration, issue 12):
//!
//! - **At most `max_connections` open at once.** Past it the loop stops
//!   accepting and new clients wait in the kernel's queue, in arrival
//!   order, until a connection closes; the timeouts below make sure one
//!   does soon. The cap sits under the unit's `LimitNOFILE`, so the process
//!   keeps descriptors for the store, SSH and MQTT.
//! - **Header-read timeout**: a request's headers must arrive within
//!   `header_read_timeout` of the connection (or of the first byte of a
//!   later request on it), whatever trickles in meanwhile.
//! - **Idle timeout**: a keep-alive connection with no request in progress
//!   is closed after `idle_timeout`. A request is in progress until its
//!   response body is finished, so an event stream, which is one long
//!   response, is never idle.
//!
//! If `accept` still fails for want of descriptors (`EMFILE`, another
//! process's use, a lower limit than configured), the loop waits a little
//! before trying again instead of spinning on the pending connection.
//!
//! hyper serves each connection (HTTP/1.1). Its own header timeout also
//! runs on idle keep-alive connections, so it cannot tell the two cases
//! apart; the watchdog here does both from what the connection observes.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use crate::config::Limits;
use crate::core::Core;

/// How long the accept loop rests after running out of descriptors (or
/// memory): long enough not to spin on the connection still queued, short
/// enough that a freed descriptor is used at once.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `app` on `listener` until `shutdown`, then lets the open
/// connections finish (event streams end with the same token) and returns.
///
/// The cap on connections is read once, here; the timeouts are read from
/// the configuration in force at each new connection, so a reload changes
/// them for the connections that follow.
pub async fn serve(listener: TcpListener, app: Router, core: Arc<Core>, shutdown: CancellationToken) {
    let max = core.config().limits.max_connections;
    check_descriptor_budget(max);
    let slots = Arc::new(Semaphore::new(max));
    let connections = TaskTracker::new();
    let mut starved = AcceptErrors::default();
    loop {
        // Wait for a free slot before accepting: past the cap, clients stay
        // in the kernel's queue rather than in our memory.
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break, // never closed; a closed semaphore would end the loop
            },
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    if starved.note(&e, max - slots.available_permits() - 1) {
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        starved.recovered();
        let _ = stream.set_nodelay(true);
        let limits = core.config().limits;
        let app = app.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            serve_connection(stream, peer, app, limits, shutdown).await;
            drop(slot);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Descriptors kept for everything but HTTP clients: the listener, the
/// store, the MQTT connection, the runtime, logging.
const DESCRIPTOR_RESERVE: u64 = 256;

/// Raises the soft descriptor limit to the hard one (the soft default of
/// 1024 is for `select()`, which borne does not use), and warns when the
/// connection cap does not fit under it: past it, `accept` fails with
/// EMFILE and clients wait anyway, but so do SSH connections to the APs.
fn check_descriptor_budget(max_connections: usize) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    let available = lim.rlim_cur.saturating_sub(DESCRIPTOR_RESERVE);
    if max_connections as u64 > available {
        tracing::warn!(
            max_connections,
            nofile = lim.rlim_cur,
            "limits.max_connections does not fit under the open-file limit (LimitNOFILE): \
             past {available} clients, new connections and SSH sessions will fail for want of descriptors"
        );
    }
}

/// Accept errors, logged once per burst rather than once per retry.
#[derive(Default)]
struct AcceptErrors {
    failing_since: Option<Instant>,
    count: u64,
}

impl AcceptErrors {
    /// Notes a failed accept; returns whether the loop must rest before the
    /// next one (the error is about this process, not one connection).
    fn note(&mut self, e: &io::Error, open: usize) -> bool {
        // A connection that was reset or aborted while queued is its own
        // problem; the next one may be fine.
        if matches!(
            e.kind(),
            io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused
        ) {
            return false;
        }
        self.count += 1;
        if self.failing_since.is_none() {
            self.failing_since = Some(Instant::now());
            tracing::warn!(
                error = %e,
                open_connections = open,
                "cannot accept HTTP connections (out of file descriptors?); new clients wait until some close; \
                 lower limits.max_connections or raise LimitNOFILE"
            );
        }
        true
    }

    fn recovered(&mut self) {
        if let Some(since) = self.failing_since.take() {
            tracing::info!(
                failed_accepts = self.count,
                seconds = since.elapsed().as_secs(),
                "accepting HTTP connections again"
            );
            self.count = 0;
        }
    }
}

/// Serves one connection until the client closes it, a timeout closes it,
/// or shutdown drains it.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let service_activity = activity.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let guard = InFlight::start(service_activity.clone());
        request.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move {
            let response = app.oneshot(request.map(Body::new)).await;
            let response = match response {
                Ok(r) => r,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(response.map(|body| Tracked { body, _guard: guard }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The watchdog below does the header timeout; hyper's would also cut
    // idle keep-alive connections at the same, shorter, delay.
    builder.keep_alive(true).header_read_timeout(None);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(client = %peer, error = %e, "HTTP connection ended with an error");
                }
                return;
            }
            () = activity.expired(&limits) => {
                tracing::debug!(client = %peer, "HTTP connection closed: header-read or idle timeout");
                return;
            }
            () = shutdown.cancelled(), if !draining => {
                // Finish the request in progress, then close.
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Where a connection is in its life, for the watchdog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    /// Waiting for (the rest of) a request's headers.
    Head = 0,
    /// A request is in progress: its handler runs or its response is sent.
    Busy = 1,
    /// Keep-alive: a response is finished and nothing new has arrived.
    Idle = 2,
}

/// What the connection's reader and service observe, shared with its
/// watchdog. Atomics, not a lock: the reader updates it on every read.
struct Activity {
    start: Instant,
    phase: AtomicU8,
    /// When the phase began, in milliseconds since `start`.
    since_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            phase: AtomicU8::new(Phase::Head as u8),
            since_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn enter(&self, phase: Phase) {
        self.since_ms.store(self.now_ms(), Ordering::Relaxed);
        self.phase.store(phase as u8, Ordering::Release);
    }

    /// Bytes arrived: on an idle connection, a new request has begun and
    /// its headers are on the clock.
    fn bytes_read(&self) {
        if self.phase.load(Ordering::Acquire) == Phase::Idle as u8
            && self
                .phase
                .compare_exchange(
                    Phase::Idle as u8,
                    Phase::Head as u8,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
        {
            self.since_ms.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    fn phase(&self) -> (Phase, u64) {
        let phase = match self.phase.load(Ordering::Acquire) {
            0 => Phase::Head,
            1 => Phase::Busy,
            _ => Phase::Idle,
        };
        (phase, self.since_ms.load(Ordering::Relaxed))
    }

    /// Completes when the connection has been waiting for headers longer
    /// than the header-read timeout, or idle longer than the idle timeout.
    /// While a request is in progress it only re-checks now and then: the
    /// request's own timeout, or the event stream's end, bounds it.
    async fn expired(&self, limits: &Limits) {
        loop {
            let (phase, since) = self.phase();
            let deadline = match phase {
                Phase::Head => self.start + Duration::from_millis(since) + limits.header_read_timeout,
                Phase::Idle => self.start + Duration::from_millis(since) + limits.idle_timeout,
                Phase::Busy => Instant::now() + limits.header_read_timeout,
            };
            if phase != Phase::Busy && Instant::now() >= deadline {
                // The phase may have changed since it was read; expire only
                // if it still is the same phase that began at the same time.
                if self.phase() == (phase, since) {
                    return;
                }
                continue;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// One request in progress on a connection, from the moment hyper hands
/// it over until its response body is finished or dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.enter(Phase::Busy);
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.enter(Phase::Idle);
        }
    }
}

/// A response body that holds its request's [`InFlight`] until hyper has
/// sent it all (or the connection went away), then drops it.
struct Tracked {
    body: Body,
    _guard: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The TCP stream, telling [`Activity`] when bytes arrive.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
