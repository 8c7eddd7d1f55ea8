//! `GET /auth/jobs/{id}`: the outcome of a login answered with 202.

use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::routes::schemas::{Detail, body};
use crate::service::jobs;
use crate::service::views::JobStatusView;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(job_status))
}

/// A job's status; a finished login's token is shown to the first poll only.
#[utoipa::path(
    get,
    path = "/auth/jobs/{id}",
    tag = "jobs",
    params(("id" = String, Path, description = "The job_id of a 202 answer")),
    responses(
        (status = 200, body = JobStatusView, description = "`pending`, or the outcome"),
        (status = 404, body = Detail, description = "Unknown job, or finished more than ten minutes ago",
            example = json!(body(ApiError::NotFound))),
    )
)]
async fn job_status(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JobStatusView>, ApiError> {
    Ok(Json(jobs::poll(&state, &id).await?))
}
