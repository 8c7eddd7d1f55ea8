//! The HTTP surface: one `router()` per area, merged with the OpenAPI
//! document generated from the handlers.

pub mod accounts;
pub mod admin;
pub mod jobs;
pub mod ops;
pub mod providers;
pub mod redirect_flow;
pub mod social_auth;
pub mod token_login;
pub mod users;

use crate::http_metrics;
use crate::state::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderValue;
use axum::http::{HeaderName, header};
use axum::routing::get;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

#[derive(OpenApi)]
#[openapi(
    info(title = "socialauth", description = "Social login: provider answers in, app users and tokens out."),
    modifiers(&TokenAuth)
)]
struct ApiDoc;

struct TokenAuth;

impl utoipa::Modify for TokenAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`Token <key>` or `Bearer <key>`",
            ))),
        );
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(
                utoipa::openapi::security::HttpBuilder::new()
                    .scheme(utoipa::openapi::security::HttpAuthScheme::Bearer)
                    .description(Some("`Bearer <admin_key>` (`[security] admin_key`)"))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document and the router it describes.
pub fn openapi_router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(redirect_flow::router())
        .merge(social_auth::router())
        .merge(token_login::router())
        .merge(jobs::router())
        .merge(users::router())
        .merge(accounts::router())
        .merge(admin::router())
        .merge(ops::router())
        .merge(providers::router())
        .split_for_parts()
}

pub fn router(state: AppState) -> Router {
    let (routes, doc) = openapi_router();
    // Rendered once: every connection gets its own copy of the router, and
    // with it of this handler; a copy of the bytes is a reference count, a
    // copy of the document a few hundred kilobytes.
    let doc = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
    let request_id = HeaderName::from_static("x-request-id");
    routes
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], doc) }
            }),
        )
        // A route asked with a method it does not take: 405 in JSON, with
        // its `Allow` header (axum's own answer has no body).
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            crate::error::ApiError::MethodNotAllowed(method.to_string())
        })
        .route_layer(axum::middleware::from_fn(http_metrics::track))
        .fallback(|| async { crate::error::ApiError::NotFound })
        .layer(DefaultBodyLimit::max(state.settings.server.max_body_bytes))
        // Token responses (app tokens, request-token secrets, partial
        // tokens in error bodies, a poll's result) must not be kept by a
        // browser or a proxy; no answer of this API is worth caching.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.guard.clone(),
            crate::guard::guard,
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route of the account and admin areas is described, with the
    /// error statuses it answers.
    #[test]
    fn the_document_describes_the_account_and_admin_routes() {
        let (_, doc) = openapi_router();
        let doc = serde_json::to_value(&doc).expect("document");
        let paths = &doc["paths"];
        let expect = [
            (
                "/auth/associate/{provider}/",
                "get",
                &["200", "400", "401"][..],
            ),
            (
                "/auth/associate/{provider}/",
                "post",
                &["200", "201", "202", "400", "401", "409"],
            ),
            ("/auth/social-accounts/", "get", &["200", "401"]),
            (
                "/auth/disconnect/{provider}/",
                "delete",
                &["204", "401", "404", "409"],
            ),
            (
                "/auth/disconnect/{provider}/{association_id}/",
                "delete",
                &["204", "401", "404", "409"],
            ),
            ("/admin/audit", "get", &["200", "400", "401"]),
            (
                "/auth/social-accounts/{id}/refresh",
                "post",
                &["200", "400", "401", "404", "409", "503"],
            ),
            (
                "/auth/social-accounts/{id}/token",
                "get",
                &["200", "400", "401", "404", "409", "503"],
            ),
        ];
        for (path, method, statuses) in expect {
            let op = &paths[path][method];
            assert!(op.is_object(), "{method} {path}");
            for status in statuses {
                assert!(
                    op["responses"][status].is_object(),
                    "{method} {path} {status}"
                );
            }
            assert!(
                op["security"].is_array(),
                "{method} {path} names its security"
            );
        }
        let schemes = &doc["components"]["securitySchemes"];
        assert!(schemes["token"].is_object() && schemes["admin"].is_object());
    }
}
