//! The HTTP/1.1 accept loop: rapport's own, instead of `axum::serve`, because
//! a server facing the internet needs what `axum::serve` leaves out —
//! a deadline for a request's headers, an idle keep-alive timeout, a cap on
//! open connections (all seen as holes in an attack), a gauge of open
//! connections, and JSON bodies on the errors hyper answers by itself
//! (400/414/431 for requests it cannot parse).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use super::error::ErrorCode;
use crate::metrics::Metrics;

/// Limits on connections, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A request's headers must arrive within this time of its first byte.
    pub header_read_timeout: Duration,
    /// A keep-alive connection with no request in flight is closed after this.
    pub idle_timeout: Duration,
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// How long a graceful shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        use crate::config::{
            DEFAULT_HEADER_READ_TIMEOUT_SECS, DEFAULT_IDLE_TIMEOUT_SECS, DEFAULT_MAX_CONNECTIONS,
        };
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(DEFAULT_HEADER_READ_TIMEOUT_SECS),
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            shutdown_grace: Duration::from_secs(15),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops
/// accepting, lets requests in flight finish (up to the grace period) and
/// returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Take a connection slot before accepting: at the cap, clients wait
        // in the kernel's backlog instead of being accepted and starved.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, don't spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let metrics = metrics.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            metrics.open_connections.inc();
            serve_connection(stream, peer, router, limits, &metrics, stop).await;
            metrics.open_connections.dec();
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a permit until it is done.
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.shutdown_grace, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("shutdown: some connections were still busy after the grace period");
    }
    Ok(())
}

/// Why the server closed a connection (a label of
/// `rapport_connections_closed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    HeaderTimeout,
    Idle,
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    metrics: &Metrics,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(WatchedIo::new(stream, activity.clone()));
    let on_request = activity.clone();
    let service = router.map_request(move |mut request: axum::extract::Request| {
        on_request.request_started();
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    });
    let finished = activity.clone();
    let service = tower::util::MapResponse::new(service, move |response| {
        finished.request_finished();
        response
    });
    let service = TowerToHyperService::new(service.map_request(
        |request: hyper::Request<hyper::body::Incoming>| request.map(axum::body::Body::new),
    ));
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Our watchdog below owns both timeouts (hyper's one timer would close
    // idle connections as early as half-sent ones).
    builder.header_read_timeout(None);
    let connection = builder.serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let mut stopping = *stop.borrow();
    if stopping {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        let deadline = activity.next_deadline(&limits);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, %peer, "connection ended with an error");
                }
                return;
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    connection.as_mut().graceful_shutdown();
                }
            }
            // A request began: its header deadline is nearer than the idle one.
            () = activity.head_began.notified() => {}
            () = tokio::time::sleep_until(deadline.into()) => {
                if let Some(reason) = activity.expired(&limits) {
                    metrics
                        .connections_closed
                        .get_or_create(&crate::metrics::ReasonLabels {
                            reason: match reason {
                                Closed::HeaderTimeout => "header_timeout",
                                Closed::Idle => "idle",
                            }
                            .to_string(),
                        })
                        .inc();
                    tracing::debug!(%peer, ?reason, "closing connection");
                    // Dropping the connection closes the socket.
                    return;
                }
            }
        }
    }
}

/// What a connection is doing, shared by its IO (reads), its service
/// (requests) and its watchdog. Times are milliseconds since `epoch`.
struct Activity {
    epoch: Instant,
    /// Last byte read or written, or request finished.
    last_active: AtomicU64,
    /// When the first byte of a request arrived while none was in flight
    /// (0: no request waiting for its headers).
    head_started: AtomicU64,
    started: AtomicU64,
    finished: AtomicU64,
    /// Wakes the watchdog when `head_started` is set.
    head_began: tokio::sync::Notify,
}

impl Activity {
    fn new() -> Self {
        Activity {
            epoch: Instant::now(),
            last_active: AtomicU64::new(1),
            head_started: AtomicU64::new(0),
            started: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            head_began: tokio::sync::Notify::new(),
        }
    }

    /// Milliseconds since `epoch`, never 0 (0 means "unset").
    fn now(&self) -> u64 {
        (self.epoch.elapsed().as_millis() as u64).max(1)
    }

    fn in_flight(&self) -> bool {
        self.started.load(Ordering::Acquire) != self.finished.load(Ordering::Acquire)
    }

    fn read(&self) {
        let now = self.now();
        self.last_active.store(now, Ordering::Release);
        if !self.in_flight()
            && self
                .head_started
                .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.head_began.notify_one();
        }
    }

    fn wrote(&self) {
        self.last_active.store(self.now(), Ordering::Release);
    }

    fn request_started(&self) {
        self.started.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(0, Ordering::Release);
    }

    fn request_finished(&self) {
        self.finished.fetch_add(1, Ordering::AcqRel);
        self.last_active.store(self.now(), Ordering::Release);
    }

    /// When the watchdog should look again.
    fn next_deadline(&self, limits: &ConnectionLimits) -> Instant {
        let at = |ms: u64, after: Duration| self.epoch + Duration::from_millis(ms) + after;
        let head = self.head_started.load(Ordering::Acquire);
        if head != 0 {
            return at(head, limits.header_read_timeout);
        }
        if self.in_flight() {
            // Handlers have their own timeout; look again after one idle period.
            return Instant::now() + limits.idle_timeout;
        }
        at(
            self.last_active.load(Ordering::Acquire),
            limits.idle_timeout,
        )
    }

    fn expired(&self, limits: &ConnectionLimits) -> Option<Closed> {
        let now = self.now();
        let since = |ms: u64| Duration::from_millis(now.saturating_sub(ms));
        let head = self.head_started.load(Ordering::Acquire);
        if head != 0 && since(head) >= limits.header_read_timeout {
            return Some(Closed::HeaderTimeout);
        }
        if head == 0
            && !self.in_flight()
            && since(self.last_active.load(Ordering::Acquire)) >= limits.idle_timeout
        {
            return Some(Closed::Idle);
        }
        None
    }
}

/// The connection's socket, reporting reads and writes to [`Activity`] and
/// giving hyper's automatic error responses the API's JSON error body.
struct WatchedIo {
    inner: TcpStream,
    activity: Arc<Activity>,
    /// A rewritten response still to be written, and how much of it is out.
    replacement: Option<(Vec<u8>, usize)>,
}

impl WatchedIo {
    fn new(inner: TcpStream, activity: Arc<Activity>) -> Self {
        WatchedIo {
            inner,
            activity,
            replacement: None,
        }
    }

    /// Writes what is left of a replacement; `Ready(Ok)` once all is out.
    fn drain_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.replacement {
            if *written == bytes.len() {
                self.replacement = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
            self.activity.wrote();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for WatchedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = ready!(Pin::new(&mut self.inner).poll_read(cx, buf));
        if buf.filled().len() > before {
            self.activity.read();
        }
        Poll::Ready(result)
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drain_replacement(cx))?;
        if let Some(replacement) = automatic_error_with_body(buf) {
            // Hyper is told its bytes went out; ours go instead.
            self.replacement = Some((replacement, 0));
            ready!(self.drain_replacement(cx))?;
            return Poll::Ready(Ok(buf.len()));
        }
        let n = ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
        self.activity.wrote();
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drain_replacement(cx))?;
        if let [only] = bufs
            && let Some(replacement) = automatic_error_with_body(only)
        {
            self.replacement = Some((replacement, 0));
            ready!(self.drain_replacement(cx))?;
            return Poll::Ready(Ok(only.len()));
        }
        let n = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, bufs))?;
        self.activity.wrote();
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain_replacement(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain_replacement(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The responses hyper writes by itself for a request it cannot parse: a
/// status line, `content-length: 0`, a date, nothing else. Every response
/// rapport's own handlers produce for these statuses carries a JSON body, so
/// an empty one can only come from hyper.
const AUTOMATIC: [(&str, ErrorCode, &str); 3] = [
    (
        "HTTP/1.1 400 Bad Request\r\n",
        ErrorCode::BadRequest,
        "the request could not be parsed as HTTP/1.1",
    ),
    (
        "HTTP/1.1 414 URI Too Long\r\n",
        ErrorCode::UriTooLong,
        "the request URI is too long",
    ),
    (
        "HTTP/1.1 431 Request Header Fields Too Large\r\n",
        ErrorCode::HeadersTooLarge,
        "the request headers are too large or too many",
    ),
];

/// `Some(response)` when `written` is one of hyper's automatic error
/// responses: the same status with the API's JSON error body.
fn automatic_error_with_body(written: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(written).ok()?;
    let (status_line, code, message) = AUTOMATIC
        .iter()
        .find(|(line, _, _)| text.starts_with(line))?;
    let headers = text.strip_prefix(status_line)?.strip_suffix("\r\n\r\n")?;
    let mut empty = false;
    for header in headers.split("\r\n") {
        let (name, value) = header.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" if value.trim() == "0" => empty = true,
            "date" => {}
            "connection" if value.trim().eq_ignore_ascii_case("close") => {}
            _ => return None,
        }
    }
    if !empty {
        return None;
    }
    let body =
        serde_json::json!({"error": {"code": code.as_str(), "message": message}}).to_string();
    Some(
        format!(
            "{status_line}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nx-content-type-options: nosniff\r\ncontent-security-policy: default-src 'none'; frame-ancestors 'none'\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_empty_error_responses_get_json_bodies() {
        let written = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 08:00:00 GMT\r\n\r\n";
        let rewritten = String::from_utf8(automatic_error_with_body(written).unwrap()).unwrap();
        assert!(rewritten.starts_with("HTTP/1.1 431 "), "{rewritten}");
        let (head, body) = rewritten.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "headers_too_large");
    }

    #[test]
    fn responses_with_bodies_or_other_headers_are_left_alone() {
        for written in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nx-custom: 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"{\"body\": \"HTTP/1.1 414 URI Too Long\\r\\n\"}",
        ] {
            assert!(automatic_error_with_body(written).is_none());
        }
    }

    #[test]
    fn a_request_waiting_for_its_headers_expires_before_an_idle_connection() {
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_millis(0),
            idle_timeout: Duration::from_secs(3600),
            ..ConnectionLimits::default()
        };
        let activity = Activity::new();
        assert_eq!(activity.expired(&limits), None, "idle, not for an hour");
        activity.read();
        assert_eq!(activity.expired(&limits), Some(Closed::HeaderTimeout));
        activity.request_started();
        assert_eq!(activity.expired(&limits), None, "a request is in flight");
        activity.read();
        assert_eq!(
            activity.expired(&limits),
            None,
            "body bytes, not a new head"
        );
        activity.request_finished();
        let idle = ConnectionLimits {
            idle_timeout: Duration::from_millis(0),
            ..limits
        };
        assert_eq!(activity.expired(&idle), Some(Closed::Idle));
    }
}
