//! The current user and logout (app token required).

use crate::error::ApiError;
use crate::extract::{AuthUser, FormOrJson};
use crate::service::users::{self, UserUpdate};
use crate::service::views::MeView;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me, update_me))
        .routes(routes!(logout))
}

/// The user behind the token, with their social accounts.
#[utoipa::path(
    get,
    path = "/users/me",
    tag = "users",
    security(("token" = [])),
    responses((status = 200, body = MeView), (status = 401, description = "Missing or invalid token"))
)]
async fn me(State(state): State<AppState>, auth: AuthUser) -> Result<Json<MeView>, ApiError> {
    Ok(Json(users::me(&state, &auth).await?))
}

/// Set the referrer later ("User Update"): once only, never oneself.
#[utoipa::path(
    patch,
    path = "/users/me",
    tag = "users",
    security(("token" = [])),
    request_body(content((UserUpdate = "application/json"), (UserUpdate = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, body = MeView),
        (status = 400, description = "`{\"referral_code\": \"invalid_referral_code\" | \"cannot_refer_yourself\" | \"referral_code_already_set\"}`"),
        (status = 401, description = "Missing or invalid token"),
    )
)]
async fn update_me(
    State(state): State<AppState>,
    auth: AuthUser,
    FormOrJson(update): FormOrJson<UserUpdate>,
) -> Result<Json<MeView>, ApiError> {
    Ok(Json(users::update(&state, &auth, update).await?))
}

/// Revoke the token the request carries.
#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "users",
    security(("token" = [])),
    responses((status = 204), (status = 401, description = "Missing or invalid token"))
)]
async fn logout(State(state): State<AppState>, auth: AuthUser) -> Result<StatusCode, ApiError> {
    users::logout(&state, &auth).await?;
    Ok(StatusCode::NO_CONTENT)
}
