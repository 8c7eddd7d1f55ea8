//! A signed-in user's links (app token required): association, the list,
//! disconnect.

use crate::error::{ApiError, Flow};
use crate::extract::{ApiPath, ApiQuery, AuthUser, FormOrJson, RequestId, UserOrAdmin};
use crate::routes::redirect_flow::AuthorizeQuery;
use crate::routes::responses;
use crate::routes::schemas::{Detail, NonFieldErrors, ValidationErrors, body};
use crate::service::accounts::{self, Associated, ProviderAccessToken};
use crate::service::redirect_flow::CallbackForm;
use crate::service::views::{AuthorizationUrl, JobAccepted, SocialAccountView};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use socialauth_common::jobs::JobError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(associate_url, associate))
        .routes(routes!(social_accounts))
        .routes(routes!(disconnect_provider))
        .routes(routes!(disconnect_one))
        .routes(routes!(refresh))
        .routes(routes!(provider_token))
}

/// Refresh the link's provider tokens now (the owner's app token).
#[utoipa::path(
    post,
    path = "/auth/social-accounts/{id}/refresh",
    tag = "accounts",
    security(("token" = [])),
    params(("id" = i64, Path, description = "The link's id")),
    responses(
        (status = 200, body = RefreshedView, description = "Refreshed"),
        (status = 400, response = responses::RefreshNotSupported),
        (status = 401, response = responses::TokenRequired),
        (status = 404, response = responses::NotFound),
        (status = 409, response = responses::NeedsReauth),
        (status = 500, response = responses::WorkerFailed),
        (status = 503, response = responses::RefreshUnavailable),
    )
)]
async fn refresh(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<String>,
    RequestId(request_id): RequestId,
) -> Result<Json<RefreshedView>, ApiError> {
    let done = accounts::provider_token(&state, Some(auth.user.id), &id, true, request_id).await?;
    Ok(Json(RefreshedView {
        expires_at: done.expires_at,
    }))
}

/// `POST /auth/social-accounts/{id}/refresh`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RefreshedView {
    /// The new access token's expiry, milliseconds since the epoch.
    pub expires_at: Option<i64>,
}

/// A provider access token valid for at least `[refresh]
/// min_validity_secs`, refreshed first if needed; one refresh per link at
/// a time, however many ask (the owner's app token, or the admin key).
#[utoipa::path(
    get,
    path = "/auth/social-accounts/{id}/token",
    tag = "accounts",
    security(("token" = []), ("admin" = [])),
    params(("id" = i64, Path, description = "The link's id")),
    responses(
        (status = 200, body = ProviderAccessToken, description = "The access token"),
        (status = 400, response = responses::RefreshNotSupported),
        (status = 401, body = Detail,
            description = "Neither the admin key nor a valid token: `Authentication credentials were not provided.` or `Invalid token.`",
            example = json!(body(ApiError::NotAuthenticated))),
        (status = 404, response = responses::NotFound),
        (status = 409, response = responses::NeedsReauth),
        (status = 500, response = responses::WorkerFailed),
        (status = 503, response = responses::RefreshUnavailable),
    )
)]
async fn provider_token(
    State(state): State<AppState>,
    caller: UserOrAdmin,
    ApiPath(id): ApiPath<String>,
    RequestId(request_id): RequestId,
) -> Result<Json<ProviderAccessToken>, ApiError> {
    let user = match caller {
        UserOrAdmin::User(auth) => Some(auth.user.id),
        UserOrAdmin::Admin => None,
    };
    Ok(Json(
        accounts::provider_token(&state, user, &id, false, request_id).await?,
    ))
}

/// Start linking another provider to the signed-in user: the provider's
/// authorization URL, its state bound to this user.
#[utoipa::path(
    get,
    path = "/auth/associate/{provider}/",
    tag = "accounts",
    security(("token" = [])),
    params(("provider" = String, Path, description = "Provider name"), AuthorizeQuery),
    responses(
        (status = 200, body = AuthorizationUrl, description = "The provider's authorization URL: send the user there"),
        (status = 400, response = responses::AuthorizeUrlRefused),
        (status = 401, response = responses::TokenRequired),
        (status = 500, response = responses::RequestTokenFailed),
        (status = 503, response = responses::ProviderUnavailable),
    )
)]
async fn associate_url(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(provider): ApiPath<String>,
    ApiQuery(query): ApiQuery<AuthorizeQuery>,
    RequestId(request_id): RequestId,
) -> Result<Json<AuthorizationUrl>, ApiError> {
    let authorization_url = accounts::authorization_url(
        &state,
        &auth,
        &provider,
        query.redirect_uri.as_deref(),
        request_id,
    )
    .await?;
    Ok(Json(AuthorizationUrl { authorization_url }))
}

/// Finish linking with the provider's `code` and `state` (OAuth 1.0a:
/// `oauth_token` and `oauth_verifier`), as the user the state was issued
/// to.
///
/// A 503 `provider_unavailable` answered before the job (the provider's
/// breaker is open) leaves the code and state unused.
#[utoipa::path(
    post,
    path = "/auth/associate/{provider}/",
    tag = "accounts",
    security(("token" = [])),
    params(("provider" = String, Path, description = "Provider name")),
    request_body(content = CallbackForm, description = "JSON, or the same fields as `application/x-www-form-urlencoded`"),
    responses(
        (status = 201, body = SocialAccountView, description = "Linked"),
        (status = 200, body = SocialAccountView, description = "The user had this link already"),
        (status = 202, body = JobAccepted, description = "The worker has not answered within reply_timeout: poll status_url"),
        (status = 400, body = ValidationErrors,
            description = "`{\"non_field_errors\": [\"invalid_state\" | \"state_expired\" | \"invalid_credentials\"]}`, `{\"email\": \"email_not_allowed\"}`, or missing fields. A state issued to another user, or for a login, is `invalid_state`.",
            examples(
                ("invalid_state" = (value = json!(body(ApiError::NonField("invalid_state"))))),
                ("email_not_allowed" = (value = json!(body(ApiError::Job(JobError::EmailNotAllowed, Flow::Djoser))))),
                ("missing_fields" = (value = json!(body(ApiError::required(&["code", "state"]))))),
            )),
        (status = 401, response = responses::TokenRequired),
        (status = 409, body = NonFieldErrors, description = "`{\"non_field_errors\": [\"social_account_already_associated\"]}`: the identity is another user's",
            example = json!(body(ApiError::Job(JobError::SocialAccountAlreadyAssociated, Flow::Djoser)))),
        (status = 500, response = responses::WorkerFailed),
        (status = 503, response = responses::ProviderUnavailable),
    )
)]
async fn associate(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(provider): ApiPath<String>,
    RequestId(request_id): RequestId,
    FormOrJson(form): FormOrJson<CallbackForm>,
) -> Result<Response, ApiError> {
    Ok(
        match accounts::associate(&state, &auth, &provider, form, request_id).await? {
            Associated::Done(done) => {
                let status = if done.created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                (status, Json(SocialAccountView::from(&done.account))).into_response()
            }
            Associated::Accepted(id) => JobAccepted::response(id),
        },
    )
}

/// The signed-in user's links, oldest first.
#[utoipa::path(
    get,
    path = "/auth/social-accounts/",
    tag = "accounts",
    security(("token" = [])),
    responses(
        (status = 200, body = Vec<SocialAccountView>, description = "The links, oldest first"),
        (status = 401, response = responses::TokenRequired),
    )
)]
async fn social_accounts(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<Vec<SocialAccountView>>, ApiError> {
    Ok(Json(accounts::list(&state, &auth).await?))
}

/// Remove every link of a provider. The provider's tokens are deleted and
/// revoked at the provider where it has a revocation endpoint.
#[utoipa::path(
    delete,
    path = "/auth/disconnect/{provider}/",
    tag = "accounts",
    security(("token" = [])),
    params(("provider" = String, Path, description = "Provider name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, response = responses::TokenRequired),
        (status = 404, response = responses::NotFound),
        (status = 409, response = responses::CannotDisconnectLastLogin),
    )
)]
async fn disconnect_provider(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(provider): ApiPath<String>,
    RequestId(request_id): RequestId,
) -> Result<StatusCode, ApiError> {
    accounts::disconnect(&state, &auth, &provider, None, request_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove one link (its `id` in `GET /auth/social-accounts/`).
#[utoipa::path(
    delete,
    path = "/auth/disconnect/{provider}/{association_id}/",
    tag = "accounts",
    security(("token" = [])),
    params(
        ("provider" = String, Path, description = "Provider name"),
        ("association_id" = i64, Path, description = "The link's id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, response = responses::TokenRequired),
        (status = 404, response = responses::NotFound),
        (status = 409, response = responses::CannotDisconnectLastLogin),
    )
)]
async fn disconnect_one(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath((provider, association_id)): ApiPath<(String, String)>,
    RequestId(request_id): RequestId,
) -> Result<StatusCode, ApiError> {
    accounts::disconnect(&state, &auth, &provider, Some(&association_id), request_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
