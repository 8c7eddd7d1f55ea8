//! The HTTP surface: one `router()` per area, merged with the OpenAPI
//! document generated from the handlers.

pub mod accounts;
pub mod admin;
pub mod demo;
pub mod form_post;
pub mod jobs;
pub mod ops;
pub mod providers;
pub mod redirect_flow;
pub mod responses;
pub mod schemas;
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
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

#[derive(OpenApi)]
#[openapi(
    info(title = "socialauth", description = "Social login: provider answers in, app users and tokens out."),
    components(
        // Only shared responses name it, and a response does not bring its
        // schema into the document.
        schemas(schemas::ProviderUnavailable),
        responses(
            responses::TokenRequired,
            responses::AdminKeyRequired,
            responses::NotFound,
            responses::AuthorizeUrlRefused,
            responses::RequestTokenFailed,
            responses::WorkerFailed,
            responses::ProviderUnavailable,
            responses::RefreshUnavailable,
            responses::RefreshNotSupported,
            responses::NeedsReauth,
            responses::CannotDisconnectLastLogin,
        )
    ),
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
    let (routes, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(redirect_flow::router())
        .merge(form_post::router())
        .merge(social_auth::router())
        .merge(token_login::router())
        .merge(jobs::router())
        .merge(users::router())
        .merge(accounts::router())
        .merge(admin::router())
        .merge(ops::router())
        .merge(providers::router())
        .split_for_parts();
    // The routes are known only now: what every one of them can answer is
    // added to each.
    schemas::CommonResponses.modify(&mut doc);
    schemas::SuccessExamples.modify(&mut doc);
    (routes, doc)
}

pub fn router(state: AppState) -> Router {
    let (routes, doc) = openapi_router();
    // Rendered once: every connection gets its own copy of the router, and
    // with it of this handler; a copy of the bytes is a reference count, a
    // copy of the document a few hundred kilobytes.
    let doc = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
    let request_id = HeaderName::from_static("x-request-id");
    let routes = if state.settings.demo.enabled {
        routes.merge(demo::router())
    } else {
        routes
    };
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
        // The path only: a query may carry a provider's answer (a code and
        // state sent to `/demo`), which must not reach a log line.
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &axum::extract::Request| {
                tracing::debug_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                )
            }),
        )
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

    fn document() -> serde_json::Value {
        serde_json::to_value(openapi_router().1).expect("document")
    }

    /// Every operation: (path, method, operation).
    fn operations(doc: &serde_json::Value) -> Vec<(&str, &str, &serde_json::Value)> {
        doc["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .expect("path item")
                    .iter()
                    .map(move |(method, op)| (path.as_str(), method.as_str(), op))
            })
            .collect()
    }

    /// A response, or the shared one its `$ref` names.
    fn resolved<'a>(
        doc: &'a serde_json::Value,
        response: &'a serde_json::Value,
    ) -> &'a serde_json::Value {
        match response["$ref"].as_str() {
            Some(reference) => {
                let name = reference
                    .strip_prefix("#/components/responses/")
                    .expect("a shared response");
                &doc["components"]["responses"][name]
            }
            None => response,
        }
    }

    /// Every operation names its errors; every error has a JSON body with
    /// a schema and an example; every response says what it is.
    #[test]
    fn every_operation_documents_its_errors_with_a_json_body() {
        let doc = document();
        let all = operations(&doc);
        assert!(all.len() > 20, "{} operations", all.len());
        for (path, method, op) in all {
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|s| s.starts_with('4')),
                "{method} {path} names no 4xx"
            );
            for (status, response) in responses {
                let response = resolved(&doc, response);
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{method} {path} {status} has no description"
                );
                if status.parse::<u16>().expect("a status") < 400 {
                    continue;
                }
                let json = &response["content"]["application/json"];
                assert!(
                    json["schema"].is_object(),
                    "{method} {path} {status} has no JSON schema"
                );
                assert!(
                    json["example"].is_object() || json["examples"].is_object(),
                    "{method} {path} {status} has no example"
                );
            }
        }
    }

    #[test]
    fn every_reference_in_the_document_resolves() {
        fn walk(doc: &serde_json::Value, value: &serde_json::Value, seen: &mut usize) {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(reference) = map.get("$ref").and_then(|r| r.as_str()) {
                        let pointer = reference.strip_prefix('#').expect("a local reference");
                        assert!(doc.pointer(pointer).is_some(), "{reference} resolves");
                        *seen += 1;
                    }
                    map.values().for_each(|v| walk(doc, v, seen));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| walk(doc, v, seen)),
                _ => {}
            }
        }
        let doc = document();
        let mut seen = 0;
        walk(&doc, &doc, &mut seen);
        assert!(seen > 100, "{seen} references");
    }

    /// An operation names only defined schemes; one that names a scheme
    /// answers 401, and one that answers 401 names its scheme.
    #[test]
    fn operations_name_only_defined_security_schemes() {
        let doc = document();
        let schemes = doc["components"]["securitySchemes"]
            .as_object()
            .expect("schemes");
        for (path, method, op) in operations(&doc) {
            let named: Vec<&String> = op["security"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|requirement| requirement.as_object().expect("requirement").keys())
                .collect();
            for scheme in &named {
                assert!(schemes.contains_key(*scheme), "{method} {path}: {scheme}");
            }
            assert_eq!(
                !named.is_empty(),
                op["responses"]["401"].is_object(),
                "{method} {path}: a scheme and a 401 go together"
            );
        }
    }

    /// What the guard answers on each documented path — 429 on the login
    /// endpoints, 503 everywhere but the probes and metrics — is what the
    /// document says.
    #[tokio::test]
    async fn the_guards_refusals_are_documented_where_it_gives_them() {
        use crate::guard::Guard;
        use socialauth_common::config::ServerSettings;
        use std::sync::Arc;
        use std::time::Duration;
        use tower::ServiceExt;

        /// The status of the last of `times` requests from one address
        /// to a guarded handler that answers after `wait`.
        async fn status(
            settings: ServerSettings,
            wait: Duration,
            method: &str,
            path: &str,
            times: usize,
        ) -> u16 {
            let guard = Arc::new(Guard::from_settings(&settings).expect("guard"));
            let app = Router::new()
                .fallback(move || tokio::time::sleep(wait))
                .layer(axum::middleware::from_fn_with_state(
                    guard,
                    crate::guard::guard,
                ));
            let mut last = 0;
            for _ in 0..times {
                let mut request = axum::http::Request::builder()
                    .method(method.to_uppercase().as_str())
                    .uri(path)
                    .body(axum::body::Body::empty())
                    .expect("request");
                request.extensions_mut().insert(axum::extract::ConnectInfo(
                    std::net::SocketAddr::from(([203, 0, 113, 7], 40000)),
                ));
                last = app
                    .clone()
                    .oneshot(request)
                    .await
                    .expect("infallible")
                    .status()
                    .as_u16();
            }
            last
        }

        let doc = document();
        for (template, method, op) in operations(&doc) {
            let path = template.replace(['{', '}'], "");
            let throttling = ServerSettings {
                rate_limit_per_minute: 1,
                rate_limit_burst: 1,
                request_timeout_ms: 5_000,
                ..ServerSettings::default()
            };
            let throttled = status(throttling, Duration::ZERO, method, &path, 2).await == 429;
            assert_eq!(
                throttled,
                op["responses"]["429"]["$ref"] == "#/components/responses/Throttled",
                "{method} {template}: 429"
            );
            let impatient = ServerSettings {
                request_timeout_ms: 10,
                ..ServerSettings::default()
            };
            let refused =
                status(impatient, Duration::from_millis(200), method, &path, 1).await == 503;
            let documented = &op["responses"]["503"];
            if refused {
                assert!(documented.is_object(), "{method} {template}: 503");
            } else {
                assert_ne!(
                    documented["$ref"], "#/components/responses/Unavailable",
                    "{method} {template}: the guard gives no 503 here"
                );
            }
        }
    }

    /// `/admin/audit` documents `AuditParams` as its query parameters
    /// (each optional, so its type is given without `null`).
    #[test]
    fn the_audit_parameters_are_documented_in_the_query() {
        use utoipa::IntoParams;
        let params = crate::service::admin::AuditParams::into_params(|| {
            Some(utoipa::openapi::path::ParameterIn::Query)
        });
        let mut expected = serde_json::to_value(params).expect("parameters");
        for param in expected.as_array_mut().expect("a list") {
            let ty = &mut param["schema"]["type"];
            if let Some(types) = ty.as_array() {
                let named: Vec<_> = types.iter().filter(|t| *t != "null").cloned().collect();
                if let [one] = named.as_slice() {
                    *ty = one.clone();
                }
            }
        }
        assert_eq!(
            document()["paths"]["/admin/audit"]["get"]["parameters"],
            expected
        );
    }
}
