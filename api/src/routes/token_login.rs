//! `POST /auth/token/{provider}/`: login with a client-side SDK's token.

use crate::error::{ApiError, Flow};
use crate::extract::{ApiPath, FormOrJson, RequestId};
use crate::routes::redirect_flow::login_response;
use crate::routes::responses;
use crate::routes::schemas::{SocialAuthErrors, body, no_email_provided};
use crate::service::token_login::{self, ONE_TOKEN, TokenLoginForm};
use crate::service::views::{JobAccepted, TokenResponse};
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use socialauth_common::config::NonceConvention;
use socialauth_common::jobs::JobError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(token_login))
}

/// Log in with a token a client-side SDK obtained: `access_token`
/// (checked with the provider's introspection, `debug_token` or
/// `tokeninfo` to be this app's, then its userinfo) or `id_token`
/// (signature, issuer, audience among the provider's client ids, expiry,
/// age, nonce). A token is single-use: posted again within the retry
/// window it gets the first answer, later `invalid_credentials`.
#[utoipa::path(
    post,
    path = "/auth/token/{provider}/",
    tag = "social",
    params(("provider" = String, Path, description = "Provider name")),
    request_body(content = TokenLoginForm, description = "JSON, or the same fields as `application/x-www-form-urlencoded`"),
    responses(
        (status = 200, description = "An existing user's token", body = TokenResponse),
        (status = 201, description = "A new user's token", body = TokenResponse),
        (status = 202, body = JobAccepted, description = "The worker has not answered within reply_timeout: poll status_url"),
        (status = 400, body = SocialAuthErrors,
            description = "`{\"provider\": [\"Invalid provider\"]}`; `{\"access_token\": [\"Send exactly one of access_token and id_token.\"], \"id_token\": […]}`; `{\"non_field_errors\": \"invalid_credentials\"}` (refused by the provider, not this app's, expired, too old, or used before); `{\"nonce\": [\"This field is required.\"]}` (the id_token carries a nonce and none was sent); `{\"nonce\": [\"does not match: this provider's id_token carries the nonce as sent\" | \"does not match: this provider's id_token carries the SHA-256 (hex) of the nonce sent\"]}`; `{\"user\": [\"Enter a JSON object.\"]}`; and `/social-auth`'s pipeline errors (`no_email_provided`, `email_already_in_use`, `signup_closed`, `invalid_referral_code`, …)",
            examples(
                ("one_token" = (value = json!(body(ApiError::fields(&["access_token", "id_token"], ONE_TOKEN))))),
                ("invalid_credentials" = (value = json!(body(ApiError::Job(JobError::InvalidCredentials, Flow::SocialAuth))))),
                ("nonce_mismatch" = (value = json!(body(ApiError::Job(JobError::NonceMismatch { expected: NonceConvention::Sha256 }, Flow::SocialAuth))))),
                ("no_email_provided" = (value = json!(no_email_provided(Flow::SocialAuth)))),
            )),
        (status = 500, response = responses::WorkerFailed),
        (status = 503, response = responses::ProviderUnavailable),
    )
)]
async fn token_login(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    RequestId(request_id): RequestId,
    FormOrJson(form): FormOrJson<TokenLoginForm>,
) -> Result<Response, ApiError> {
    let outcome = token_login::handle(&state, &provider, form, request_id).await?;
    Ok(login_response(outcome, None))
}
