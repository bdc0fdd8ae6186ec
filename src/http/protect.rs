//! Protection at the edge: per-client rate limits (429 + `Retry-After`),
//! a request timeout, and security headers on every response.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http_body::Body as _;

use super::AppState;
use super::error::ApiError;

/// Hand-off requests per client (address or key): 5 at once, then one every
/// 10 seconds. A customer asks once per conversation; asking again while one
/// is open returns it, and still counts.
fn handoff_quota() -> Quota {
    const BURST: NonZeroU32 = NonZeroU32::new(5).expect("non-zero");
    Quota::with_period(Duration::from_secs(10))
        .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN))
        .allow_burst(BURST)
}

/// Per-client token buckets. A client is its verified API key's id when it
/// presents a valid key, else its address (an unknown or malformed key counts
/// as the address, so random headers buy nothing); `X-Forwarded-For` is
/// believed only when the server is configured to sit behind a proxy that
/// sets it.
pub struct RateLimits {
    limiter: DefaultKeyedRateLimiter<String>,
    /// Asking for a person puts work in front of people: a far smaller
    /// budget per client than searching (see [`handoff_quota`]).
    handoffs: DefaultKeyedRateLimiter<String>,
    trust_forwarded_for: bool,
    checks: AtomicU64,
}

impl RateLimits {
    /// `None` when `per_second` is 0 (rate limiting off).
    pub fn new(per_second: u32, burst: u32, trust_forwarded_for: bool) -> Option<Self> {
        let per_second = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst.max(per_second.get())).unwrap_or(per_second);
        Some(RateLimits {
            limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            handoffs: RateLimiter::keyed(handoff_quota()),
            trust_forwarded_for,
            checks: AtomicU64::new(0),
        })
    }

    fn client(&self, key_id: Option<String>, headers: &HeaderMap, peer: Option<IpAddr>) -> String {
        if let Some(id) = key_id {
            return format!("key:{id}");
        }
        client_address(headers, peer, self.trust_forwarded_for)
    }

    /// The hand-off budget: `Err(wait)` when this client asked for a person
    /// too often.
    pub fn check_handoff(
        &self,
        key_id: Option<String>,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<(), Duration> {
        self.handoffs
            .check_key(&self.client(key_id, headers, peer))
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// `Err(wait)` when the client must slow down.
    fn check(&self, client: String) -> Result<(), Duration> {
        // Forget idle clients now and then, so memory stays bounded.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 10_000 == 9_999 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(limits) = &state.rate_limits {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let key_id = state.keys.key_id(request.headers());
        let client = limits.client(key_id, request.headers(), peer);
        if let Err(wait) = limits.check(client) {
            return ApiError::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
            .into_response();
        }
    }
    next.run(request).await
}

/// A client by its address (`ip:…`): the first `X-Forwarded-For` entry when
/// the server is configured to trust its proxy, else the peer's address.
pub(crate) fn client_address(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    trust_forwarded_for: bool,
) -> String {
    if trust_forwarded_for
        && let Some(first) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    {
        return format!("ip:{first}");
    }
    peer.map_or_else(|| "ip:unknown".to_string(), |ip| format!("ip:{ip}"))
}

/// Whether the browser reached us over HTTPS: only a trusted proxy's
/// `X-Forwarded-Proto` can say so (the server itself speaks plain HTTP).
pub(crate) fn forwarded_https(headers: &HeaderMap, trust_forwarded_for: bool) -> bool {
    trust_forwarded_for
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// Bounds every request. A request whose declared body has not fully
/// arrived when time runs out is the client's fault (`408`); one whose
/// handler was too slow is ours (`503 timeout`).
pub async fn timeout(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // Only a request that declares a body can be waiting for one: the
    // searches that make up most traffic go through untouched.
    let (request, received) = if request.body().is_end_stream() {
        (request, None)
    } else {
        let (parts, body) = request.into_parts();
        let received = Arc::new(AtomicBool::new(false));
        let body = axum::body::Body::new(ReceivedBody {
            inner: body,
            received: received.clone(),
        });
        (Request::from_parts(parts, body), Some(received))
    };
    match tokio::time::timeout(state.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) if received.is_some_and(|r| !r.load(Ordering::Acquire)) => {
            // The rest of the body may still come: don't read it as a request.
            let mut response = ApiError::RequestTimeout.into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// A request body that says when its last byte has arrived.
struct ReceivedBody {
    inner: axum::body::Body,
    received: Arc<AtomicBool>,
}

impl http_body::Body for ReceivedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(None) = &polled {
            self.received.store(true, Ordering::Release);
        } else if self.inner.is_end_stream() {
            self.received.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Headers every response carries. The API returns JSON, never markup, so
/// its CSP forbids everything; portal and dashboard pages set their own,
/// stricter-than-usual CSP (scripts and styles only from this server), which
/// is kept, as is the dashboard's stricter `Referrer-Policy: no-referrer`.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("strict-origin-when-cross-origin"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_keys_else_addresses_and_forwarded_for_only_when_trusted() {
        let limits = RateLimits::new(1, 2, false).unwrap();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "1.2.3.4, 10.0.0.1".parse().unwrap());
        assert_eq!(limits.client(None, &headers, Some(ip)), "ip:10.0.0.1");
        let trusting = RateLimits::new(1, 2, true).unwrap();
        assert_eq!(trusting.client(None, &headers, Some(ip)), "ip:1.2.3.4");
        assert_eq!(
            limits.client(Some("agent:0".into()), &headers, Some(ip)),
            "key:agent:0"
        );
        assert!(RateLimits::new(0, 10, false).is_none());
    }

    #[test]
    fn https_only_when_a_trusted_proxy_says_so() {
        let mut headers = HeaderMap::new();
        assert!(!forwarded_https(&headers, true));
        headers.insert("x-forwarded-proto", "HTTPS".parse().unwrap());
        assert!(forwarded_https(&headers, true));
        assert!(!forwarded_https(&headers, false));
        headers.insert("x-forwarded-proto", "http".parse().unwrap());
        assert!(!forwarded_https(&headers, true));
    }

    #[test]
    fn bursts_are_allowed_then_limited() {
        let limits = RateLimits::new(1, 3, false).unwrap();
        for _ in 0..3 {
            assert!(limits.check("a".into()).is_ok());
        }
        let wait = limits.check("a".into()).unwrap_err();
        assert!(wait <= Duration::from_secs(1));
        assert!(
            limits.check("b".into()).is_ok(),
            "other clients are not affected"
        );
    }
}
