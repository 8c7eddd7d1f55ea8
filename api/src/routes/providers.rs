//! `GET /providers`: the configured providers and their live state, so
//! that an app can dim the button of one that is failing.

use crate::service::providers::{self, ProvidersView};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// The configured providers, each with its breaker: `open` while its
/// calls keep failing (logins are refused at once with 503
/// `provider_unavailable` and `Retry-After`), else `closed`.
#[utoipa::path(get, path = "/providers", tag = "providers",
    responses((status = 200, body = ProvidersView)))]
async fn list(State(state): State<AppState>) -> Json<ProvidersView> {
    Json(providers::list(&state).await)
}
