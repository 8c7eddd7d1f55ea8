//! The operator's routes (admin key).

use crate::error::ApiError;
use crate::extract::{Admin, ApiPath, ApiQuery, FormOrJson};
use crate::routes::responses;
use crate::routes::schemas::{Detail, NonFieldErrors, ValidationErrors, body};
use crate::service::admin::{self, AuditPage, AuditParams};
use crate::service::campaigns::{self, CampaignList, CampaignView, StartCampaign};
use crate::service::reencrypt::{self, ReencryptionList, ReencryptionView};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(audit))
        .routes(routes!(start_campaign, list_campaigns))
        .routes(routes!(campaign, cancel_campaign))
        .routes(routes!(start_reencryption, list_reencryptions))
        .routes(routes!(reencryption, cancel_reencryption))
}

/// Start a refresh campaign: every account with a refresh token whose
/// access token expires within `expiring_within_seconds` (or has
/// expired) is refreshed, at most `rate_per_second` calls a second (all
/// workers together) and within each provider's `refresh_rate_per_second`.
/// Workers find the accounts in pages and refresh each page; progress is
/// kept in the database and survives restarts of the api and workers.
#[utoipa::path(
    post,
    path = "/admin/refresh-campaigns",
    tag = "admin",
    security(("admin" = [])),
    request_body(content = StartCampaign, description = "JSON, or the same fields as `application/x-www-form-urlencoded`"),
    responses(
        (status = 202, body = CampaignView, description = "Started: follow it at `/admin/refresh-campaigns/{id}`"),
        (status = 400, body = ValidationErrors,
            description = "`{\"expiring_within_seconds\": [\"This field is required.\"]}`, `{\"provider\": [\"Not a configured provider whose tokens are refreshed.\"]}`, `{\"rate_per_second\": [\"A number from 0.01 to 1000000.\"]}`",
            example = json!(body(ApiError::required(&["expiring_within_seconds"])))),
        (status = 401, response = responses::AdminKeyRequired),
        (status = 503, body = Detail,
            description = "`{\"detail\": \"Service temporarily unavailable, try again.\"}`: the queue did not take the campaign (it is left cancelled), the database is away, or the service is busy",
            headers(("Retry-After" = u64, description = "Seconds to wait; sent when the service is busy")),
            example = json!(body(ApiError::Overloaded))),
    )
)]
async fn start_campaign(
    State(state): State<AppState>,
    _admin: Admin,
    FormOrJson(body): FormOrJson<StartCampaign>,
) -> Result<
    (
        StatusCode,
        [(header::HeaderName, String); 1],
        Json<CampaignView>,
    ),
    ApiError,
> {
    let view = campaigns::start(&state, body).await?;
    let location = format!("/admin/refresh-campaigns/{}", view.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(view),
    ))
}

/// The newest refresh campaigns first (at most 50).
#[utoipa::path(
    get,
    path = "/admin/refresh-campaigns",
    tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, body = CampaignList),
        (status = 401, response = responses::AdminKeyRequired),
    )
)]
async fn list_campaigns(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<CampaignList>, ApiError> {
    Ok(Json(campaigns::list(&state).await?))
}

/// A refresh campaign's progress: `total` accounts found so far (final
/// once `planned`), how many were refreshed, failed, need their user
/// (`needs_reauth`) or were skipped, what `remaining`, and the `rate`
/// achieved.
#[utoipa::path(
    get,
    path = "/admin/refresh-campaigns/{id}",
    tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The campaign's id")),
    responses(
        (status = 200, body = CampaignView),
        (status = 401, response = responses::AdminKeyRequired),
        (status = 404, response = responses::NotFound),
    )
)]
async fn campaign(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CampaignView>, ApiError> {
    Ok(Json(campaigns::status(&state, &id).await?))
}

/// Cancel a running refresh campaign: its pages stop within a fraction of
/// a second; what was done stays counted. Cancelling it again answers
/// the same.
#[utoipa::path(
    delete,
    path = "/admin/refresh-campaigns/{id}",
    tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The campaign's id")),
    responses(
        (status = 200, body = CampaignView, description = "Cancelled"),
        (status = 401, response = responses::AdminKeyRequired),
        (status = 404, response = responses::NotFound),
        (status = 409, body = NonFieldErrors, description = "`{\"non_field_errors\": [\"campaign_not_running\"]}` (it is done)",
            example = json!(body(ApiError::Conflict("campaign_not_running")))),
    )
)]
async fn cancel_campaign(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CampaignView>, ApiError> {
    Ok(Json(campaigns::cancel(&state, &id).await?))
}

/// Start a re-encryption: every provider token stored with a link is
/// opened and sealed again with this api's current key
/// (`[security] encryption_key_id`) in the current format (AES-256-GCM-SIV
/// bound to its link and column), page by page; workers whose current key
/// it is do the work, and a write never replaces tokens a refresh or a
/// sign-in stored meanwhile. Start it once every api and worker runs with
/// the new key (the old one under `previous_encryption_keys`); once it is
/// `done` with `remaining` 0, the old key may be removed.
#[utoipa::path(
    post,
    path = "/admin/reencrypt",
    tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 202, body = ReencryptionView, description = "Started: follow it at `/admin/reencrypt/{id}`"),
        (status = 401, response = responses::AdminKeyRequired),
        (status = 409, body = NonFieldErrors, description = "`{\"non_field_errors\": [\"reencryption_running\"]}` (one at a time: see `GET /admin/reencrypt`)",
            example = json!(body(ApiError::Conflict("reencryption_running")))),
    )
)]
async fn start_reencryption(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<
    (
        StatusCode,
        [(header::HeaderName, String); 1],
        Json<ReencryptionView>,
    ),
    ApiError,
> {
    let view = reencrypt::start(&state).await?;
    let location = format!("/admin/reencrypt/{}", view.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(view),
    ))
}

/// The newest re-encryptions first (at most 20).
#[utoipa::path(
    get,
    path = "/admin/reencrypt",
    tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, body = ReencryptionList),
        (status = 401, response = responses::AdminKeyRequired),
    )
)]
async fn list_reencryptions(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<ReencryptionList>, ApiError> {
    Ok(Json(reencrypt::list(&state).await?))
}

/// A re-encryption's progress: `total` links due (once a worker took it
/// up), how many were `moved`, `changed` meanwhile by a refresh or a
/// sign-in, or `failed` to open, and how many are `remaining`.
#[utoipa::path(
    get,
    path = "/admin/reencrypt/{id}",
    tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The re-encryption's id")),
    responses(
        (status = 200, body = ReencryptionView),
        (status = 401, response = responses::AdminKeyRequired),
        (status = 404, response = responses::NotFound),
    )
)]
async fn reencryption(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ReencryptionView>, ApiError> {
    Ok(Json(reencrypt::status(&state, &id).await?))
}

/// Cancel a running re-encryption: its worker stops before its next page;
/// what was moved stays moved (every token opens either way).
#[utoipa::path(
    delete,
    path = "/admin/reencrypt/{id}",
    tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The re-encryption's id")),
    responses(
        (status = 200, body = ReencryptionView, description = "Cancelled"),
        (status = 401, response = responses::AdminKeyRequired),
        (status = 404, response = responses::NotFound),
        (status = 409, body = NonFieldErrors, description = "`{\"non_field_errors\": [\"reencryption_not_running\"]}` (it is done)",
            example = json!(body(ApiError::Conflict("reencryption_not_running")))),
    )
)]
async fn cancel_reencryption(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ReencryptionView>, ApiError> {
    Ok(Json(reencrypt::cancel(&state, &id).await?))
}

/// The audit log, newest first: links made and refused, automatic links,
/// disconnects and refused disconnects, addresses reclaimed.
#[utoipa::path(
    get,
    path = "/admin/audit",
    tag = "admin",
    security(("admin" = [])),
    // `AuditParams`' fields, in the query (the test
    // `the_audit_parameters_are_documented_in_the_query` keeps them equal).
    params(
        ("user_id" = Option<i64>, Query, description = "Only this user's events."),
        ("provider" = Option<String>, Query, description = "Only this provider's events."),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page."),
        ("limit" = Option<u32>, Query, description = "Events per page (1–500, default 50)."),
    ),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, body = ValidationErrors,
            description = "`{\"limit\": [\"Ensure this value is between 1 and 500.\"]}` or `{\"cursor\": [\"Invalid cursor.\"]}`",
            example = json!(body(ApiError::field("cursor", "Invalid cursor.")))),
        (status = 401, response = responses::AdminKeyRequired),
    )
)]
async fn audit(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Json<AuditPage>, ApiError> {
    Ok(Json(admin::audit(&state, params).await?))
}
