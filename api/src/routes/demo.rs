//! `/demo` (`[demo] enabled`): a page to try the configured providers in a
//! browser. It is static; the script in it speaks only to this service's
//! own API (`/providers`, `/auth/o/{provider}/`, `/users/me`).

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use socialauth_common::config::Settings;

const PAGE: &str = include_str!("../demo/index.html");
const SCRIPT: &str = include_str!("../demo/demo.js");
const STYLE: &str = include_str!("../demo/demo.css");
const ICON: &str = include_str!("../demo/favicon.svg");

/// Only this origin's script, style and API; no framing (the page holds an
/// app token); the callback's code never leaves in a `Referer`.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/demo",
            get(|| async { asset("text/html; charset=utf-8", PAGE) }),
        )
        .route(
            "/demo/",
            get(|| async { asset("text/html; charset=utf-8", PAGE) }),
        )
        .route(
            "/demo/demo.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/demo/demo.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/demo/favicon.svg",
            get(|| async { asset("image/svg+xml", ICON) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
}

/// Logs where the page is, and warns when no allowed redirect URI is a
/// `/demo` page (every login from it would be refused).
pub fn announce(settings: &Settings, port: u16) {
    let is_demo =
        |uri: &String| url::Url::parse(uri).is_ok_and(|u| matches!(u.path(), "/demo" | "/demo/"));
    let allowed = settings.security.allowed_redirect_uris.iter().any(is_demo)
        || settings.providers.values().any(|p| {
            p.allowed_redirect_uris
                .as_ref()
                .is_some_and(|uris| uris.iter().any(is_demo))
        });
    // Bound to every address: this host's own is one of them.
    let host = match settings.server.bind.rsplit_once(':') {
        Some(("0.0.0.0" | "[::]", _)) | None => "127.0.0.1",
        Some((host, _)) => host,
    };
    let page = format!("http://{host}:{port}/demo");
    if allowed {
        tracing::info!(page, "demo page");
    } else {
        tracing::warn!(
            page,
            "demo page: no allowed redirect URI is a /demo page; add the page's \
             address to [security] allowed_redirect_uris (and register it at \
             the providers) or every login from it is refused"
        );
    }
}
