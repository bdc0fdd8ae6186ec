//! The support lead's dashboard at `/admin`: signing in with an admin key,
//! the server-side session behind the cookie, and the page shell (layout,
//! nav, period picker, headers) the report pages are built on.
//!
//! Adding a page: a `GET` handler that calls [`require_session`] (its
//! error is the sign-in page, for when nobody is signed in), renders its body inside
//! [`layout`] and answers with [`page_response`]; a form that changes
//! anything posts the session's token as `csrf` and the handler calls
//! [`check_csrf`] first. Routes go in [`routes`].
//!
//! Pages are plain server-rendered HTML: no inline script or style, so the
//! CSP ([`PAGE_CSP`]) can forbid both.

pub mod charts;
mod dashboard;
mod pages;
pub mod session;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FormRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Form, Request, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cookie::{Cookie, SameSite};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use maud::Markup;
use serde::Deserialize;
use serde_json::{Value, json};

pub use self::pages::{Nav, Range, layout};
pub use self::session::{AdminSession, AdminSessions};
use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::protect::{client_address, forwarded_https};
use crate::analytics::Clock;
use crate::auth::{AuthError, Caller};
use crate::store::Store;

/// The session cookie's name.
pub const COOKIE: &str = "rapport_admin";
/// Dashboard pages: everything from this server only, no inline code, no
/// framing, forms post only here; violations are reported to
/// `/admin/csp-report` (the browser test asserts there are none).
pub const PAGE_CSP: &str = "default-src 'none'; img-src 'self'; style-src 'self'; \
    script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; \
    report-uri /admin/csp-report";
/// The same answer for an agent key and a wrong key: which keys exist is
/// none of the sender's business.
pub const REFUSED: &str = "That key is not an admin key.";
const RATE_LIMITED: &str = "Too many sign-in attempts from here. Wait a minute, then try again.";

const ADMIN_CSS: &str = include_str!("assets/admin.css");
pub(crate) const CSS_PATH: &str = "/admin/assets/admin.css";
/// Sign-in attempts per client per minute (a burst of this many, then one
/// every 12 s): plenty for a person mistyping, hopeless for guessing keys.
const SIGN_INS_PER_MINUTE: u32 = 5;
/// A violation report is a small JSON object; a browser batching several
/// stays far below this.
const MAX_CSP_REPORT_BYTES: usize = 16 * 1024;
const KEPT_CSP_REPORTS: usize = 100;

/// The stylesheet's short content hash, for its cache-busting URL.
pub(crate) fn css_version() -> &'static str {
    static VERSION: LazyLock<String> =
        LazyLock::new(|| blake3::hash(ADMIN_CSS.as_bytes()).to_hex()[..10].to_string());
    &VERSION
}

/// The dashboard's server-side state: sessions, the sign-in rate limit and
/// the CSP reports browsers sent.
pub struct AdminState {
    pub sessions: AdminSessions,
    sign_ins: DefaultKeyedRateLimiter<String>,
    attempts: AtomicU64,
    /// Believe `X-Forwarded-For` / `X-Forwarded-Proto` (the config's
    /// `trust_forwarded_for`: only behind a proxy that sets them).
    trust_forwarded_for: bool,
    reports: Mutex<CspReports>,
}

#[derive(Default)]
struct CspReports {
    count: u64,
    recent: VecDeque<Value>,
}

impl AdminState {
    /// Sessions timed by `clock` (the app's, so tests can move it).
    pub fn new(clock: Clock, store: Arc<dyn Store>, trust_forwarded_for: bool) -> Self {
        let per_minute = NonZeroU32::new(SIGN_INS_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        AdminState {
            sessions: AdminSessions::new(clock, store),
            sign_ins: RateLimiter::keyed(Quota::per_minute(per_minute)),
            attempts: AtomicU64::new(0),
            trust_forwarded_for,
            reports: Mutex::new(CspReports::default()),
        }
    }

    /// `Err(seconds to wait)` when this client tried to sign in too often.
    fn check_sign_in(&self, client: &str) -> Result<(), u64> {
        // Forget quiet clients now and then, so memory stays bounded.
        if self.attempts.fetch_add(1, Ordering::Relaxed) % 1_000 == 999 {
            self.sign_ins.retain_recent();
        }
        self.sign_ins
            .check_key(&client.to_string())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                wait.as_secs_f64().ceil().max(1.0) as u64
            })
    }

    fn record_reports(&self, reports: Vec<Value>) {
        let mut kept = self.reports.lock().unwrap_or_else(PoisonError::into_inner);
        kept.count += reports.len() as u64;
        for report in reports {
            if kept.recent.len() == KEPT_CSP_REPORTS {
                kept.recent.pop_front();
            }
            kept.recent.push_back(report);
        }
    }
}

/// The dashboard's routes. Every response that is a page (`no-store`) to a
/// signed-in browser renews the cookie, so it lasts as long as the session:
/// 12 hours after the last use, not after signing in.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/admin", get(dashboard::overview))
        .route("/admin/gaps", get(dashboard::gaps))
        .route("/admin/articles", get(dashboard::articles))
        .route("/admin/handoffs", get(dashboard::handoffs))
        .route("/admin/login", post(login).get(to_dashboard))
        .route("/admin/logout", post(logout))
        .route(
            "/admin/csp-report",
            post(csp_report).layer(DefaultBodyLimit::max(MAX_CSP_REPORT_BYTES)),
        )
        .route("/admin/csp-reports", get(csp_reports))
        .route(CSS_PATH, get(css))
        .layer(middleware::from_fn_with_state(state, renew_cookie))
}

/// The signed-in session named by the request's `rapport_admin` cookie
/// (marked as used now), or `None`: no cookie, an unknown or expired id.
pub(crate) async fn signed_in(state: &AppState, headers: &HeaderMap) -> Option<AdminSession> {
    state.admin.sessions.touch(&session_id(headers)?)
}

/// Whether the request carries a live dashboard session: the analytics
/// API accepts one in place of the admin key (its cookie's `Path=/admin`
/// keeps browsers from sending it there; a script holding it may).
pub(crate) fn has_session(state: &AppState, headers: &HeaderMap) -> bool {
    session_id(headers).is_some_and(|id| state.admin.sessions.touch(&id).is_some())
}

/// For page handlers: the session, or [`SignInRequired`] (the sign-in page)
/// so nothing of the page reaches a browser not signed in. A handler
/// returning `Result<Response, SignInRequired>` can use `?`.
pub(crate) async fn require_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<AdminSession, SignInRequired> {
    signed_in(state, headers).await.ok_or(SignInRequired)
}

/// Nobody is signed in: answered with the sign-in form.
#[derive(Debug)]
pub(crate) struct SignInRequired;

impl IntoResponse for SignInRequired {
    fn into_response(self) -> Response {
        page_response(pages::sign_in(None))
    }
}

/// For handlers of state-changing forms: [`CsrfRejected`] (a 403 page) when
/// the form's `csrf` field is missing or not this session's token.
pub(crate) fn check_csrf(
    session: &AdminSession,
    presented: Option<&str>,
) -> Result<(), CsrfRejected> {
    if presented.is_some_and(|token| session.csrf_matches(token)) {
        Ok(())
    } else {
        Err(CsrfRejected)
    }
}

/// A form without this session's token: nothing was changed.
#[derive(Debug)]
pub(crate) struct CsrfRejected;

impl IntoResponse for CsrfRejected {
    fn into_response(self) -> Response {
        page_with_status(
            StatusCode::FORBIDDEN,
            pages::message(
                "This form has expired",
                "It didn't carry this session's security token, so nothing was changed. \
                 Reload the page and try again.",
            ),
        )
    }
}

/// A dashboard page with its headers: the strict [`PAGE_CSP`], never cached
/// (pages show a signed-in admin's data), no sniffing, no referrer.
pub(crate) fn page_response(markup: Markup) -> Response {
    page_with_status(StatusCode::OK, markup)
}

/// [`page_response`] with another status (a refusal, a missing page).
pub(crate) fn page_with_status(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The session id in the request's cookies. Ids are 64 hex digits; any
/// other value is not looked up.
fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == COOKIE)
        .map(|cookie| cookie.value().to_string())
        .filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The cookie carrying a session id: script can't read it, other sites'
/// requests don't send it, HTTPS-only when the browser reached us over
/// HTTPS, and only sent to `/admin`.
fn session_cookie(id: &str, secure: bool) -> Option<HeaderValue> {
    let max_age = i64::try_from(session::IDLE_EXPIRY.as_secs()).unwrap_or(i64::MAX);
    cookie_header(id, secure, cookie::time::Duration::seconds(max_age))
}

/// Tells the browser to drop the cookie (after signing out).
fn cleared_cookie(secure: bool) -> Option<HeaderValue> {
    cookie_header("", secure, cookie::time::Duration::ZERO)
}

fn cookie_header(
    value: &str,
    secure: bool,
    max_age: cookie::time::Duration,
) -> Option<HeaderValue> {
    let cookie = Cookie::build((COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/admin")
        .secure(secure)
        .max_age(max_age)
        .build();
    HeaderValue::from_str(&cookie.to_string()).ok()
}

/// `303 See Other` to the dashboard, with a cookie to set if any.
fn to_dashboard_with(cookie: Option<HeaderValue>) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/admin")]).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(cookie) = cookie {
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `GET /admin/login` (a reload after a refused sign-in): the dashboard,
/// which shows the form when nobody is signed in.
async fn to_dashboard() -> Response {
    to_dashboard_with(None)
}

async fn renew_cookie(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let id = session_id(request.headers());
    let secure = forwarded_https(request.headers(), state.admin.trust_forwarded_for);
    let mut response = next.run(request).await;
    let is_page = response
        .headers()
        .get(header::CACHE_CONTROL)
        .is_some_and(|v| v == "no-store");
    if let Some(id) = id
        && is_page
        && !response.headers().contains_key(header::SET_COOKIE)
        && state.admin.sessions.is_live(&id)
        && let Some(cookie) = session_cookie(&id, secure)
    {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(Deserialize)]
struct SignIn {
    #[serde(default)]
    key: String,
}

/// `POST /admin/login`. Nothing here logs or echoes the key: a refusal
/// logs the client's address only, and the form comes back empty.
async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    form: Result<Form<SignIn>, FormRejection>,
) -> Response {
    let admin = &state.admin;
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let client = client_address(&headers, peer, admin.trust_forwarded_for);
    if let Err(wait) = admin.check_sign_in(&client) {
        tracing::warn!(client = %client, "admin sign-in rate limited");
        let mut response = page_with_status(
            StatusCode::TOO_MANY_REQUESTS,
            pages::sign_in(Some(RATE_LIMITED)),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return response;
    }
    let key = match form {
        Ok(Form(sign_in)) => sign_in.key,
        Err(_) => {
            return page_with_status(
                StatusCode::BAD_REQUEST,
                pages::sign_in(Some("The sign-in form didn't arrive intact. Try again.")),
            );
        }
    };
    let label = match state.keys.identify_key(&key) {
        Some((Caller::Admin, label)) => label,
        // An agent key and an unknown key get the very same answer.
        _ => {
            tracing::warn!(client = %client, "admin sign-in refused");
            return page_with_status(StatusCode::UNAUTHORIZED, pages::sign_in(Some(REFUSED)));
        }
    };
    drop(key);
    match admin.sessions.create(label.clone()) {
        Ok((id, _)) => {
            tracing::info!(client = %client, admin = label.as_deref().unwrap_or("admin"), "admin signed in");
            let secure = forwarded_https(&headers, admin.trust_forwarded_for);
            to_dashboard_with(session_cookie(&id, secure))
        }
        Err(error) => {
            tracing::error!(%error, "admin sign-in failed");
            page_with_status(
                StatusCode::INTERNAL_SERVER_ERROR,
                pages::message(
                    "Cannot sign in",
                    "The server could not start a session; its log has the details.",
                ),
            )
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /admin/logout`: ends the session on the server (the cookie is
/// worthless from now on, wherever a copy of it is) and drops the cookie.
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let secure = forwarded_https(&headers, state.admin.trust_forwarded_for);
    let Some(id) = session_id(&headers) else {
        return to_dashboard_with(cleared_cookie(secure));
    };
    let Some(session) = state.admin.sessions.touch(&id) else {
        return to_dashboard_with(cleared_cookie(secure));
    };
    let token = form.ok().and_then(|Form(form)| form.csrf);
    if let Err(refused) = check_csrf(&session, token.as_deref()) {
        return refused.into_response();
    }
    if let Err(error) = state.admin.sessions.remove(&id) {
        // The cookie is cleared; the stored session ends when it idles out.
        tracing::warn!(%error, "cannot end a dashboard session in the store");
    }
    tracing::info!(
        admin = session.admin.as_deref().unwrap_or("admin"),
        "admin signed out"
    );
    to_dashboard_with(cleared_cookie(secure))
}

/// `POST /admin/csp-report`: browsers report CSP violations here, either
/// one `application/csp-report` object or an `application/reports+json`
/// list. No sign-in: a browser sends reports without cookies.
async fn csp_report(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !matches!(
        content_type.as_str(),
        "application/csp-report" | "application/reports+json" | "application/json"
    ) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidBody,
            "a CSP report is application/csp-report or application/reports+json",
        ));
    }
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::bad_request(ErrorCode::InvalidBody, rejection.body_text())
        }
    })?;
    let report: Value = serde_json::from_slice(&body).map_err(|error| {
        ApiError::bad_request(ErrorCode::InvalidBody, format!("not JSON: {error}"))
    })?;
    let reports = match report {
        Value::Array(reports) => reports,
        report @ Value::Object(_) => vec![report],
        _ => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidBody,
                "a CSP report is a JSON object or a list of them",
            ));
        }
    };
    tracing::debug!(reports = reports.len(), "CSP violation reported");
    state.admin.record_reports(reports);
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /admin/csp-reports`: how many violations were reported and the
/// last [`KEPT_CSP_REPORTS`], for a signed-in admin (or an admin key).
async fn csp_reports(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if signed_in(&state, &headers).await.is_none()
        && state.keys.identify(&headers) != Ok(Caller::Admin)
    {
        return ApiError::Unauthorized(AuthError::AdminKeyRequired).into_response();
    }
    let body = {
        let kept = state
            .admin
            .reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        json!({"count": kept.count, "reports": kept.recent})
    };
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            // The page names it with its content hash: a new stylesheet
            // has a new URL.
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        ADMIN_CSS,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_strict_and_scoped_to_the_dashboard() {
        let plain = session_cookie("abc", false).unwrap();
        let plain = plain.to_str().unwrap();
        assert!(plain.starts_with("rapport_admin=abc;"), "{plain}");
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/admin",
            "Max-Age=43200",
        ] {
            assert!(plain.contains(part), "{plain} lacks {part}");
        }
        assert!(!plain.contains("Secure"));
        let secure = session_cookie("abc", true).unwrap();
        assert!(secure.to_str().unwrap().contains("Secure"));
        let cleared = cleared_cookie(false).unwrap();
        assert!(cleared.to_str().unwrap().contains("Max-Age=0"));
    }

    #[test]
    fn only_well_formed_ids_are_read_from_cookies() {
        let id = "a".repeat(64);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            format!("other=1; {COOKIE}={id}; x=2").parse().unwrap(),
        );
        assert_eq!(session_id(&headers), Some(id));
        headers.insert(header::COOKIE, format!("{COOKIE}=short").parse().unwrap());
        assert_eq!(session_id(&headers), None);
        assert_eq!(session_id(&HeaderMap::new()), None);
    }

    #[test]
    fn sign_ins_are_limited_per_client() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::store::sqlite::SqliteStore::open(dir.path()).unwrap());
        let admin = AdminState::new(Clock::default(), store, false);
        for _ in 0..SIGN_INS_PER_MINUTE {
            assert!(admin.check_sign_in("ip:10.0.0.1").is_ok());
        }
        let wait = admin.check_sign_in("ip:10.0.0.1").unwrap_err();
        assert!((1..=12).contains(&wait), "{wait}");
        assert!(admin.check_sign_in("ip:10.0.0.2").is_ok());
    }

    #[test]
    fn only_the_last_reports_are_kept_but_all_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::store::sqlite::SqliteStore::open(dir.path()).unwrap());
        let admin = AdminState::new(Clock::default(), store, false);
        admin.record_reports((0..150).map(|n| json!({ "n": n })).collect());
        let kept = admin.reports.lock().unwrap();
        assert_eq!(kept.count, 150);
        assert_eq!(kept.recent.len(), KEPT_CSP_REPORTS);
        assert_eq!(kept.recent[0]["n"], 50);
    }
}
