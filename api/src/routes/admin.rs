//! The operator's routes (admin key).

use crate::error::ApiError;
use crate::extract::{Admin, ApiQuery};
use crate::service::admin::{self, AuditPage, AuditParams};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(audit))
}

/// The audit log, newest first: links made and refused, automatic links,
/// disconnects and refused disconnects, addresses reclaimed.
#[utoipa::path(
    get,
    path = "/admin/audit",
    tag = "admin",
    security(("admin" = [])),
    params(AuditParams),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, description = "`{\"limit\": [\"…\"]}` or `{\"cursor\": [\"Invalid cursor.\"]}`"),
        (status = 401, description = "`{\"detail\": \"A valid admin key is required.\"}`"),
    )
)]
async fn audit(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Json<AuditPage>, ApiError> {
    Ok(Json(admin::audit(&state, params).await?))
}
