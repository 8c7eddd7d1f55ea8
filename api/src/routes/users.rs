//! The current user and logout (app token required).

use crate::error::ApiError;
use crate::extract::{AuthUser, FormOrJson};
use crate::routes::responses;
use crate::routes::schemas::{ValidationErrors, body};
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
    responses(
        (status = 200, body = MeView, description = "The user and their links"),
        (status = 401, response = responses::TokenRequired),
    )
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
    request_body(content = UserUpdate, description = "JSON, or the same fields as `application/x-www-form-urlencoded`"),
    responses(
        (status = 200, body = MeView, description = "The user, referred"),
        (status = 400, body = ValidationErrors,
            description = "`{\"referral_code\": \"invalid_referral_code\" | \"cannot_refer_yourself\" | \"referral_code_already_set\"}`, or `{\"referral_code\": [\"This field is required.\"]}`",
            examples(
                ("invalid_referral_code" = (value = json!(body(ApiError::FieldCode("referral_code", "invalid_referral_code"))))),
                ("missing_field" = (value = json!(body(ApiError::required(&["referral_code"]))))),
            )),
        (status = 401, response = responses::TokenRequired),
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
    responses(
        (status = 204, description = "The token is revoked"),
        (status = 401, response = responses::TokenRequired),
    )
)]
async fn logout(State(state): State<AppState>, auth: AuthUser) -> Result<StatusCode, ApiError> {
    users::logout(&state, &auth).await?;
    Ok(StatusCode::NO_CONTENT)
}
