//! The error responses several operations give, each declared once: a
//! `components.responses` entry (registered in `ApiDoc`) that an operation
//! names with `(status = …, response = responses::Name)`. A response an
//! operation alone gives stays in its `#[utoipa::path]`.
//!
//! Like the schemas, these types are never sent: their field names the
//! body's schema, their attributes the description and examples.

use crate::error::{ApiError, Flow};
use crate::routes::schemas::{self, Detail, NonFieldErrors, ValidationErrors, body};
use socialauth_common::jobs::JobError;
use utoipa::ToResponse;

/// 401 of a route that takes a user's app token.
#[derive(ToResponse)]
#[response(
    description = "Missing or invalid token: `Authentication credentials were not provided.` or `Invalid token.`",
    example = json!(body(ApiError::InvalidToken))
)]
pub struct TokenRequired(pub Detail);

/// 401 of a route that takes the admin key.
#[derive(ToResponse)]
#[response(
    description = "`{\"detail\": \"A valid admin key is required.\"}`",
    example = json!(body(ApiError::NotAdmin))
)]
pub struct AdminKeyRequired(pub Detail);

/// 404 of a route whose path names a link, campaign or re-encryption.
#[derive(ToResponse)]
#[response(
    description = "`{\"detail\": \"Not found.\"}`: nothing at this path for this caller",
    example = json!(body(ApiError::NotFound))
)]
pub struct NotFound(pub Detail);

/// 400 of the routes that answer a provider's authorization URL.
#[derive(ToResponse)]
#[response(
    description = "`{\"provider\": [\"Invalid provider\"]}` or `{\"non_field_errors\": [\"redirect_uri_required\" | \"redirect_uri_not_allowed\"]}`",
    examples(
        ("redirect_uri_not_allowed" = (value = json!(body(ApiError::NonField("redirect_uri_not_allowed"))))),
        ("invalid_provider" = (value = json!(body(ApiError::InvalidProvider)))),
    )
)]
pub struct AuthorizeUrlRefused(pub ValidationErrors);

/// 500 of the routes that answer a provider's authorization URL: only
/// OAuth 1.0a asks the worker for one.
#[derive(ToResponse)]
#[response(
    description = "OAuth 1.0a: the worker could not get a request token",
    example = json!(body(ApiError::Job(JobError::Internal, Flow::Djoser)))
)]
pub struct RequestTokenFailed(pub Detail);

/// 500 of a route that waits for the worker (a login, an association, a
/// refresh); both flows answer the same body.
#[derive(ToResponse)]
#[response(
    description = "The worker could not complete the request",
    example = json!(body(ApiError::Job(JobError::Internal, Flow::Djoser)))
)]
pub struct WorkerFailed(pub Detail);

/// 503 of a route that checks the provider's breaker before it calls the
/// provider (a login, an association); both flows answer the same bodies.
#[derive(ToResponse)]
#[response(
    description = "`{\"non_field_errors\": [\"provider_unavailable\"]}`: the provider's breaker is open, or the provider did not answer or its endpoints could not be found; or the service is busy",
    headers(("Retry-After" = u64, description = "Seconds to wait: until the provider's breaker closes, or 1 when the service is busy")),
    examples(
        ("provider_unavailable" = (value = json!(body(ApiError::ProviderPaused(30, Flow::Djoser))))),
        ("busy" = (value = json!(body(ApiError::Overloaded)))),
    )
)]
pub struct ProviderUnavailable(pub schemas::ProviderUnavailable);

/// 503 of the refresh routes: the worker finds the provider unavailable,
/// so only the busy answer carries `Retry-After`.
#[derive(ToResponse)]
#[response(
    description = "`{\"non_field_errors\": [\"provider_unavailable\"]}`: the provider's breaker is open or it did not answer in time; or the service is busy",
    headers(("Retry-After" = u64, description = "Seconds to wait; sent when the service is busy")),
    examples(
        ("provider_unavailable" = (value = json!(body(ApiError::Job(JobError::ProviderUnavailable, Flow::Djoser))))),
        ("busy" = (value = json!(body(ApiError::Overloaded)))),
    )
)]
pub struct RefreshUnavailable(pub schemas::ProviderUnavailable);

/// 400 of the refresh routes.
#[derive(ToResponse)]
#[response(
    description = "`{\"non_field_errors\": [\"refresh_not_supported\"]}`: the access token needs a refresh and the provider gave no refresh token",
    example = json!(body(ApiError::Job(JobError::RefreshNotSupported, Flow::Djoser)))
)]
pub struct RefreshNotSupported(pub ValidationErrors);

/// 409 of the refresh routes.
#[derive(ToResponse)]
#[response(
    description = "`{\"non_field_errors\": [\"needs_reauth\"]}`: the provider refused the refresh token; the user must sign in with it again",
    example = json!(body(ApiError::Job(JobError::NeedsReauth, Flow::Djoser)))
)]
pub struct NeedsReauth(pub NonFieldErrors);

/// 409 of the disconnect routes.
#[derive(ToResponse)]
#[response(
    description = "`{\"non_field_errors\": [\"cannot_disconnect_last_login\"]}`: it would leave the user no way to sign in",
    example = json!(body(ApiError::Conflict("cannot_disconnect_last_login")))
)]
pub struct CannotDisconnectLastLogin(pub NonFieldErrors);
