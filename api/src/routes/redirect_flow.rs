//! The djoser-compatible redirect flow: `/auth/o/{provider}/`.

use crate::error::{ApiError, Flow};
use crate::extract::{ApiPath, ApiQuery, FormOrJson, RequestId};
use crate::routes::responses;
use crate::routes::schemas::{ValidationErrors, body, no_email_provided};
use crate::service::flows::LoginOutcome;
use crate::service::redirect_flow::{self, CallbackForm};
use crate::service::state_cookie;
use crate::service::views::{AuthorizationUrl, JobAccepted, TokenResponse};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(authorize_url, complete_login))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuthorizeQuery {
    /// Where the provider sends the user back; must be on the allow-list.
    pub redirect_uri: Option<String>,
}

/// Start a login: the provider's authorization URL.
#[utoipa::path(
    get,
    path = "/auth/o/{provider}/",
    tag = "social",
    params(("provider" = String, Path, description = "Provider name"), AuthorizeQuery),
    responses(
        (status = 200, body = AuthorizationUrl, description = "The provider's authorization URL: send the user there"),
        (status = 400, response = responses::AuthorizeUrlRefused),
        (status = 500, response = responses::RequestTokenFailed),
        (status = 503, response = responses::ProviderUnavailable),
    )
)]
async fn authorize_url(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    ApiQuery(query): ApiQuery<AuthorizeQuery>,
    RequestId(request_id): RequestId,
) -> Result<Response, ApiError> {
    let authorization_url = redirect_flow::authorization_url(
        &state,
        &provider,
        query.redirect_uri.as_deref(),
        request_id,
        None,
    )
    .await?;
    let cookie = state_cookie::set_cookie(&state, &provider, &authorization_url);
    let mut response = Json(AuthorizationUrl { authorization_url }).into_response();
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// Finish a login with the provider's `code` and `state` (JSON or form).
///
/// A 503 `provider_unavailable` answered before the job (the provider's
/// breaker is open) leaves the code and state unused.
#[utoipa::path(
    post,
    path = "/auth/o/{provider}/",
    tag = "social",
    params(("provider" = String, Path, description = "Provider name")),
    request_body(content = CallbackForm, description = "JSON, or the same fields as `application/x-www-form-urlencoded`"),
    responses(
        (status = 201, body = TokenResponse, description = "The user's token"),
        (status = 202, body = JobAccepted, description = "The worker has not answered within reply_timeout: poll status_url"),
        (status = 400, body = ValidationErrors,
            description = "`{\"non_field_errors\": [\"invalid_state\" | \"state_expired\" | \"invalid_credentials\" | \"signup_closed\"]}`, a pipeline error, or missing fields",
            examples(
                ("invalid_state" = (value = json!(body(ApiError::NonField("invalid_state"))))),
                ("missing_fields" = (value = json!(body(ApiError::required(&["code", "state"]))))),
                ("no_email_provided" = (value = json!(no_email_provided(Flow::Djoser)))),
            )),
        (status = 500, response = responses::WorkerFailed),
        (status = 503, response = responses::ProviderUnavailable),
    )
)]
async fn complete_login(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    RequestId(request_id): RequestId,
    headers: HeaderMap,
    FormOrJson(form): FormOrJson<CallbackForm>,
) -> Result<Response, ApiError> {
    state_cookie::check(&state, &provider, &headers, form.state.as_ref())?;
    let outcome = redirect_flow::complete(&state, &provider, form, request_id).await?;
    Ok(login_response(outcome, Some(StatusCode::CREATED)))
}

/// The token response — `status`, or by default 201 for a new user and 200
/// for an existing one — or 202 with the job to poll.
pub fn login_response(outcome: LoginOutcome, status: Option<StatusCode>) -> Response {
    match outcome {
        LoginOutcome::Done(result) => {
            let default = if result.is_new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (
                status.unwrap_or(default),
                Json(TokenResponse::from(&result)),
            )
                .into_response()
        }
        LoginOutcome::Accepted(id) => JobAccepted::response(id),
    }
}
