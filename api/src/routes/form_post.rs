//! `POST /auth/o/{provider}/callback`: where a `form_post` provider (Sign
//! in with Apple) sends the user's browser with its answer; the browser
//! goes on to the client's redirect URI, which finishes the login as for
//! any provider (`POST /auth/o/{provider}/`).

use crate::error::ApiError;
use crate::extract::{ApiPath, FormOrJson};
use crate::routes::schemas::{Detail, ValidationErrors, body};
use crate::service::redirect_flow::{self, FormPostAnswer};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(form_post_callback))
}

/// A `form_post` provider's answer (`form_post_url`): 303 to the client's
/// redirect URI with `code` and `state`, or the provider's `error`.
#[utoipa::path(
    post,
    path = "/auth/o/{provider}/callback",
    tag = "social",
    params(("provider" = String, Path, description = "Provider name")),
    request_body(content = FormPostAnswer, content_type = "application/x-www-form-urlencoded", description = "As the provider posts it (JSON with the same fields is accepted too)"),
    responses(
        (status = 303, description = "On to the client's redirect URI", headers(("Location" = String, description = "The client's redirect URI with `code` and `state` (or `error`, `error_description` and `state`)"))),
        (status = 400, body = ValidationErrors,
            description = "`{\"provider\": [\"Invalid provider\"]}`, `{\"non_field_errors\": [\"invalid_state\" | \"state_expired\" | \"invalid_iss\"]}` or a missing `state` or `code`",
            examples(
                ("invalid_state" = (value = json!(body(ApiError::NonField("invalid_state"))))),
                ("missing_state" = (value = json!(body(ApiError::required(&["state"]))))),
            )),
        (status = 404, body = Detail, description = "The provider does not answer by form_post",
            example = json!(body(ApiError::NotFound))),
    )
)]
async fn form_post_callback(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    FormOrJson(answer): FormOrJson<FormPostAnswer>,
) -> Result<Response, ApiError> {
    let to = redirect_flow::relay_form_post(&state, &provider, answer).await?;
    let location =
        HeaderValue::try_from(to.as_str()).map_err(|_| ApiError::NonField("invalid_state"))?;
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response())
}
