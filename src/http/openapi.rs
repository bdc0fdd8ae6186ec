//! The OpenAPI 3 document served at `/openapi.json`, generated from the
//! handlers' annotations and the response types themselves.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "rapport", description = "Knowledge-base search for customer support: portal search, bot answers with hand-off, session timelines for agents, agent suggestions, analytics."),
    paths(
        super::search::search,
        super::search::autocomplete,
        super::articles::get_article,
        super::articles::list_articles,
        super::answer::answer,
        super::suggest::suggest,
        super::sessions::get_session,
        super::analytics::feedback,
        super::analytics::summary,
        super::analytics::queries,
        super::analytics::articles,
        super::status::health,
        super::status::ready,
        super::status::status,
    ),
    modifiers(&BearerKeys)
)]
pub struct ApiDoc;

struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
