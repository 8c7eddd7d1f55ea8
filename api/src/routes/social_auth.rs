//! `POST /social-auth`: the provider's answer, obtained by the client.

use crate::error::{ApiError, Flow};
use crate::extract::{FormOrJson, RequestId};
use crate::routes::redirect_flow::login_response;
use crate::routes::responses;
use crate::routes::schemas::{SocialAuthErrors, body, no_email_provided};
use crate::service::social_auth::{self, RequestTokenResponse, SocialAuthForm, SocialAuthOutcome};
use crate::service::views::{JobAccepted, TokenResponse};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use socialauth_common::jobs::JobError;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(social_auth))
}

/// `POST /social-auth`'s 200: an existing user's token, or OAuth 1.0a
/// step 1's request token.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum TokenOrRequestToken {
    Token(TokenResponse),
    RequestToken(RequestTokenResponse),
}

/// Log in with a provider's answer: OAuth1 step 1 (`provider`,
/// `redirect_uri`), OAuth1 step 2 (`oauth_token`, `oauth_token_secret`,
/// `oauth_verifier`), OAuth2/OIDC (`code`, `redirect_uri`, `code_verifier?`),
/// or a resume (`partial_token` with `email` or `referral_code`).
///
/// A resume is not refused for the provider's open breaker (503
/// `provider_unavailable`).
#[utoipa::path(
    post,
    path = "/social-auth",
    tag = "social",
    request_body(content = SocialAuthForm, description = "JSON, or the same fields as `application/x-www-form-urlencoded`"),
    responses(
        (status = 200, description = "An existing user's token, or OAuth1 step 1's request token", body = TokenOrRequestToken),
        (status = 201, description = "A new user's token", body = TokenResponse),
        (status = 202, body = JobAccepted, description = "The worker has not answered within reply_timeout: poll status_url"),
        (status = 400, body = SocialAuthErrors,
            description = "`{\"provider\": [\"Invalid provider\"]}`, `{\"non_field_errors\": \"invalid_credentials\"}`, `{\"email\": \"no_email_provided\", \"partial_token\": …}`, `{\"email\": \"email_already_in_use\"}`, `{\"non_field_errors\": [\"signup_closed\"]}` (the provider's linking policy is `link_only`), `{\"referral_code\": \"invalid_referral_code\", \"partial_token\": …}`, or missing fields",
            examples(
                ("invalid_credentials" = (value = json!(body(ApiError::Job(JobError::InvalidCredentials, Flow::SocialAuth))))),
                ("no_email_provided" = (value = json!(no_email_provided(Flow::SocialAuth)))),
                ("email_already_in_use" = (value = json!(body(ApiError::Job(JobError::EmailAlreadyInUse, Flow::SocialAuth))))),
                ("signup_closed" = (value = json!(body(ApiError::Job(JobError::SignupClosed, Flow::SocialAuth))))),
                ("missing_fields" = (value = json!(body(ApiError::required(&["code", "redirect_uri"]))))),
            )),
        (status = 500, response = responses::WorkerFailed),
        (status = 503, response = responses::ProviderUnavailable),
    )
)]
async fn social_auth(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    FormOrJson(form): FormOrJson<SocialAuthForm>,
) -> Result<Response, ApiError> {
    Ok(match social_auth::handle(&state, form, request_id).await? {
        SocialAuthOutcome::RequestToken(token) => {
            (StatusCode::OK, Json::<RequestTokenResponse>(token)).into_response()
        }
        SocialAuthOutcome::Login(outcome) => login_response(outcome, None),
    })
}
