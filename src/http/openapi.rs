//! The OpenAPI 3.1 document served at `/openapi.json`, generated from the
//! handlers' annotations and the response types themselves, so it cannot
//! drift from the code. Integrators generate clients from it (docs/api.md),
//! and `tests/api/contract.rs` proves that with real generators.
//!
//! Handlers document what only they can answer (their 200, a 404, the 400
//! for their own parameters); [`SharedResponses`] adds what the layers
//! around every handler can answer (rate limits, time limits, body limits,
//! bad keys, hyper's own 400/414/431, a caught panic), so each status is
//! described once and appears wherever it can really happen.

use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, Ref, RefOr, Type, header::HeaderBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use super::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "rapport",
        description = "Knowledge-base search for customer support: portal search and autocomplete, bot answers with a confidence and a hand-off signal, agent suggestions and session briefs, analytics.\n\nErrors always have the shape of `ErrorBody`; match on `error.code`. Keys go in `Authorization: Bearer <key>`: an agent key shows internal articles and opens the agents' endpoints, an admin key can do everything an agent key can plus analytics and metrics.",
        license(name = "Apache-2.0 OR MIT"),
    ),
    paths(
        super::search::search,
        super::search::autocomplete,
        super::articles::list_articles,
        super::articles::get_article,
        super::analytics::feedback,
        super::answer::answer,
        super::messages::receive,
        super::suggest::suggest,
        super::sessions::get_session,
        super::handoffs::request_handoff,
        super::handoffs::customer_handoff,
        super::handoffs::rate,
        super::handoffs::list,
        super::handoffs::get_one,
        super::handoffs::claim,
        super::handoffs::close,
        super::handoffs::events,
        super::handoffs::deliveries,
        super::customers::erase_customer,
        super::analytics::summary,
        super::analytics::queries,
        super::analytics::articles,
        super::analytics::overview,
        super::analytics::gaps,
        super::analytics::handoffs,
        super::analytics::articles_needing_work,
        super::status::status,
        super::status::health,
        super::status::ready,
        super::status::metrics,
        openapi_json,
    ),
    // Types only parameters name (the rest are found through the handlers).
    components(schemas(crate::analytics::Channel, super::analytics::Format)),
    tags(
        (name = "customers", description = "The self-service portal and the chat widget: search as you type, articles, whether they helped, a person when the customer needs one, and a rating of how it went. No key needed; with an agent key the same endpoints include internal articles."),
        (name = "bots", description = "Chatbots, e-mail and ticket channels: one concise answer with a confidence, or a clear hand-off signal."),
        (name = "agents", description = "The agent panel: suggestions from the live transcript (internal articles included), the brief of a customer's session, and the queue of customers waiting for a person (claim, close, live events). Agent or admin key."),
        (name = "admins", description = "The support lead's reports: what customers asked and failed to find, satisfaction, hand-offs and waiting times; webhook deliveries; erasing a customer. Admin key."),
        (name = "operators", description = "Running rapport: liveness, readiness, index state, Prometheus metrics, this document."),
    ),
    modifiers(&BearerKeys, &SharedResponses)
)]
pub struct ApiDoc;

struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An agent or admin key from the server's configuration (`agent_keys`, `admin_keys`).",
                    ))
                    .build(),
            ),
        );
    }
}

/// Responses the layers around the handlers can give, added to each
/// operation they apply to (see the module comment).
struct SharedResponses;

impl SharedResponses {
    fn error(description: &str) -> Response {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                    .build(),
            )
            .build()
    }

    /// `response` with a header the client may read.
    fn with_header(
        mut response: Response,
        name: &str,
        schema: utoipa::openapi::schema::Object,
        description: &str,
    ) -> Response {
        response.headers.insert(
            name.into(),
            HeaderBuilder::new()
                .schema(Some(schema))
                .description(Some(description))
                .build()
                .into(),
        );
        response
    }

    fn add(operation: &mut Operation, status: &str, response: impl FnOnce() -> Response) {
        if !operation.responses.responses.contains_key(status) {
            operation
                .responses
                .responses
                .insert(status.to_string(), RefOr::T(response()));
        }
    }
}

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let integer = || {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .build()
        };
        let text = || ObjectBuilder::new().schema_type(Type::String).build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            let api = path.starts_with("/api/");
            // rapport serves GET and POST, and DELETE for erasure.
            for operation in [item.get.as_mut(), item.post.as_mut(), item.delete.as_mut()]
                .into_iter()
                .flatten()
            {
                let has_body = operation.request_body.is_some();
                // Every endpoint that reads a key refuses a malformed or unknown one.
                if operation.security.is_some() {
                    Self::add(operation, "401", || {
                        Self::with_header(
                            Self::error(
                                "No key where one is required, a malformed `Authorization` header, or an unknown key (`unauthorized`)",
                            ),
                            "WWW-Authenticate",
                            text(),
                            "`Bearer`",
                        )
                    });
                }
                // hyper answers these itself, before any route is chosen.
                Self::add(operation, "400", || {
                    Self::error("The request is not valid HTTP/1.1 (`bad_request`)")
                });
                Self::add(operation, "414", || {
                    Self::error("The request URI is too long (`uri_too_long`)")
                });
                Self::add(operation, "431", || {
                    Self::error(
                        "The request headers are too large or too many (`headers_too_large`)",
                    )
                });
                if has_body {
                    Self::add(operation, "408", || {
                        Self::error(
                            "The body did not arrive within the request time limit (`request_timeout`)",
                        )
                    });
                    Self::add(operation, "413", || {
                        Self::error(
                            "The body is larger than the server accepts (`payload_too_large`)",
                        )
                    });
                }
                if api {
                    Self::add(operation, "429", || {
                        Self::with_header(
                            Self::error(
                                "Too many requests from this key or address (`rate_limited`)",
                            ),
                            "Retry-After",
                            integer(),
                            "Seconds until a request will be accepted",
                        )
                    });
                    Self::add(operation, "503", || {
                        Self::error(
                            "The request took longer than the server's time limit (`timeout`)",
                        )
                    });
                }
                Self::add(operation, "500", || {
                    Self::error(
                        "A server-side failure; the server log has the details (`internal`)",
                    )
                });
            }
        }
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operators",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> axum::response::Response {
    use axum::response::IntoResponse;
    // Built once: the document only changes with the binary.
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let body = DOCUMENT.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"))
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.as_str(),
    )
        .into_response()
}
