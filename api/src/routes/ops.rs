//! Liveness, readiness, metrics.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// `GET /healthz`'s body.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// `GET /readyz`'s body.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, or `unavailable` when the store or the queue does not
    /// answer.
    pub status: String,
    /// `ok` or `unavailable`.
    pub store: String,
    /// `ok` or `unavailable`.
    pub queue: String,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses(
    (status = 200, body = Health, description = "Up", example = json!({"status": "ok"})),
))]
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The store and the queue answer.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, body = Readiness, description = "Ready",
        example = json!({"status": "ready", "store": "ok", "queue": "ok"})),
    (status = 503, body = Readiness, description = "The store or the queue does not answer",
        example = json!({"status": "unavailable", "store": "ok", "queue": "unavailable"})),
))]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (store, queue) = tokio::join!(state.store.ping(), state.queue.check());
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let ready = store.is_ok() && queue.is_ok();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else { "unavailable" },
            "store": word(store.is_ok()),
            "queue": word(queue.is_ok()),
        })),
    )
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses(
    (status = 200, content_type = "text/plain", description = "The metrics, Prometheus text format 0.0.4"),
))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    crate::service::campaigns::export_progress(&state).await;
    crate::service::reencrypt::export_progress(&state).await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
