//! Erasing a customer (`DELETE /api/v1/customers/{customer_id}`): the right
//! to be forgotten, across every channel the customer used. Admin key only:
//! it cannot be undone.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Serialize;

use super::error::{ApiError, ErrorBody, ErrorCode};
use super::{AppState, blocking};
use crate::auth::{AuthError, Caller};
use crate::store::Erased;

/// `200` from `DELETE /api/v1/customers/{customer_id}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomerErased {
    /// As given in the path.
    #[schema(example = "cust-81723")]
    pub customer_id: String,
    /// What was removed; all zero when nothing was stored (erasing again).
    pub removed: Erased,
}

/// Erases everything rapport keeps about a customer: every session they
/// had (with its whole timeline), the questions asked in them and the
/// feedback on those, hand-offs and ratings, webhook events about those
/// hand-offs still waiting to go out (delivered ones lose their body), and
/// the articles they voted not helpful. Idempotent: erasing a customer with
/// nothing stored answers 200 with zero counts. The customer is recognised
/// by the `customer_id` the channels sent (on `/api/v1/answer`).
#[utoipa::path(delete, path = "/api/v1/customers/{customer_id}", tag = "admins", operation_id = "erase_customer",
    security(("bearer" = [])),
    params(("customer_id" = String, Path, example = "cust-81723", description = "The id the channels sent as `customer_id`")),
    responses(
        (status = 200, description = "Erased; what was removed", body = CustomerErased),
        (status = 400, description = "A blank or malformed customer id (`invalid_path`)", body = ErrorBody),
        (status = 403, description = "An agent key: erasure needs an admin key (`forbidden`)", body = ErrorBody),
    ))]
pub async fn erase_customer(
    State(state): State<AppState>,
    headers: HeaderMap,
    customer_id: Result<Path<String>, PathRejection>,
) -> Result<Json<CustomerErased>, ApiError> {
    // A key, not a dashboard sign-in: a cross-site form cannot reach this.
    match state.keys.identify(&headers)? {
        Caller::Admin => {}
        Caller::Agent => return Err(ApiError::Unauthorized(AuthError::Forbidden)),
        Caller::Anonymous => return Err(ApiError::Unauthorized(AuthError::AdminKeyRequired)),
    }
    let Path(customer_id) = customer_id?;
    if customer_id.trim().is_empty() {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidPath,
            "`customer_id` must not be blank",
        ));
    }
    let sessions = state.sessions.clone();
    let analytics = state.analytics.clone();
    let store = state.queue.store().clone();
    let rules = state.handoff.clone();
    let id = customer_id.clone();
    let removed = blocking(move || {
        // Hashed exactly as `/answer` hashes it.
        let customer_hash = sessions.hash_customer(&id);
        let live_sessions = sessions.forget_customer(&customer_hash);
        // The hand-off rules' half-hour memory of the same sessions.
        rules.forget_sessions(&live_sessions);
        // Events still queued for the writer would land after the erasure.
        if let Some(analytics) = &analytics {
            analytics.flush();
        }
        store.erase_customer(&customer_hash, &live_sessions)
    })
    .await??;
    tracing::info!(
        sessions = removed.sessions,
        handoffs = removed.handoffs,
        "customer erased"
    );
    Ok(Json(CustomerErased {
        customer_id,
        removed,
    }))
}
