//! `ApiError`: the one place that names status codes and renders the
//! contract's error bodies.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use socialauth_common::config::NonceConvention;
use socialauth_common::jobs::JobError;
use socialauth_common::queue::QueueError;
use socialauth_common::secret::Secret;
use socialauth_common::store::StoreError;
use std::collections::BTreeMap;

/// Which endpoint family an error belongs to: the djoser flow lists
/// `non_field_errors`, the `/social-auth` API gives a bare string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Djoser,
    SocialAuth,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid provider")]
    InvalidProvider,
    /// 400 `{"non_field_errors": ["<code>"]}`.
    #[error("{0}")]
    NonField(&'static str),
    /// 400 `{"<field>": "<code>"}` (the `/social-auth` style).
    #[error("{0}: {1}")]
    FieldCode(&'static str, &'static str),
    /// 400 `{"<field>": ["<message>", …], …}` (DRF field errors).
    #[error("invalid fields")]
    Fields(BTreeMap<&'static str, Vec<String>>),
    /// A body that is not valid JSON / form data.
    #[error("malformed body: {0}")]
    MalformedBody(String),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("authentication credentials were not provided")]
    NotAuthenticated,
    #[error("invalid token")]
    InvalidToken,
    #[error("not found")]
    NotFound,
    /// 405: the route exists, not with this method.
    #[error("method {0} not allowed")]
    MethodNotAllowed(String),
    /// 409 `{"non_field_errors": ["<code>"]}`.
    #[error("{0}")]
    Conflict(&'static str),
    /// The admin key is missing or wrong.
    #[error("admin key required")]
    NotAdmin,
    /// Too many requests from this client: try again after this many
    /// seconds.
    #[error("throttled")]
    Throttled(u64),
    /// Too many requests in flight in this process, or one that took too
    /// long: try again.
    #[error("overloaded")]
    Overloaded,
    /// The provider's breaker is open: its calls fail at once for about
    /// this many seconds.
    #[error("provider unavailable")]
    ProviderPaused(u64, Flow),
    /// A job's final outcome.
    #[error("{0}")]
    Job(JobError, Flow),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
}

pub const REQUIRED: &str = "This field is required.";

/// Token login at a provider that takes no access token: none of its
/// checks could bind one to this app (or it is OAuth 1.0a).
pub const ACCESS_TOKENS_NOT_TAKEN: &str = "This provider takes no client-side access tokens.";

/// Token login: the id_token's nonce is not the one sent, for a provider
/// whose id_tokens carry the nonce itself (`nonce_convention = "raw"`).
pub const NONCE_RAW_MISMATCH: &str =
    "does not match: this provider's id_token carries the nonce as sent";
/// The same for `nonce_convention = "sha256"` (Apple).
pub const NONCE_SHA256_MISMATCH: &str =
    "does not match: this provider's id_token carries the SHA-256 (hex) of the nonce sent";

impl ApiError {
    /// `{"<field>": ["This field is required."]}` for each missing field.
    pub fn required(fields: &[&'static str]) -> Self {
        Self::Fields(
            fields
                .iter()
                .map(|f| (*f, vec![REQUIRED.to_owned()]))
                .collect(),
        )
    }

    pub fn field(field: &'static str, message: &str) -> Self {
        Self::Fields(BTreeMap::from([(field, vec![message.to_owned()])]))
    }

    /// The same message for each of `fields`.
    pub fn fields(fields: &[&'static str], message: &str) -> Self {
        Self::Fields(
            fields
                .iter()
                .map(|f| (*f, vec![message.to_owned()]))
                .collect(),
        )
    }

    /// Status and body, exactly as the contract shows them.
    pub fn parts(&self) -> (StatusCode, Value) {
        let bad = StatusCode::BAD_REQUEST;
        match self {
            Self::InvalidProvider => (bad, json!({"provider": ["Invalid provider"]})),
            Self::NonField(code) => (bad, json!({"non_field_errors": [code]})),
            Self::Fields(fields) => (bad, json!(fields)),
            Self::FieldCode(field, code) => (bad, json!({ *field: code })),
            Self::MalformedBody(reason) => (
                bad,
                json!({"non_field_errors": [format!("Malformed request body: {reason}")]}),
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                json!({"detail": "Unsupported media type; send application/json or application/x-www-form-urlencoded."}),
            ),
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"detail": "Request body too large."}),
            ),
            Self::NotAuthenticated => (
                StatusCode::UNAUTHORIZED,
                json!({"detail": "Authentication credentials were not provided."}),
            ),
            Self::InvalidToken => (
                StatusCode::UNAUTHORIZED,
                json!({"detail": "Invalid token."}),
            ),
            Self::NotFound => (StatusCode::NOT_FOUND, json!({"detail": "Not found."})),
            Self::MethodNotAllowed(method) => (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"detail": format!("Method \"{method}\" not allowed.")}),
            ),
            Self::Conflict(code) => (StatusCode::CONFLICT, json!({"non_field_errors": [code]})),
            Self::NotAdmin => (
                StatusCode::UNAUTHORIZED,
                json!({"detail": "A valid admin key is required."}),
            ),
            Self::Throttled(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                json!({"detail": format!("Request was throttled. Expected available in {secs} second{}.", if *secs == 1 { "" } else { "s" })}),
            ),
            Self::Job(e, flow) => job_error_parts(e, *flow),
            Self::ProviderPaused(_, flow) => job_error_parts(&JobError::ProviderUnavailable, *flow),
            Self::Overloaded | Self::Store(_) | Self::Queue(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"detail": "Service temporarily unavailable, try again."}),
            ),
        }
    }
}

/// The body of a job's failure, also used by `GET /auth/jobs/{id}`.
pub fn job_error_parts(e: &JobError, flow: Flow) -> (StatusCode, Value) {
    let bad = StatusCode::BAD_REQUEST;
    let non_field = |code: &str| match flow {
        Flow::Djoser => json!({"non_field_errors": [code]}),
        Flow::SocialAuth => json!({"non_field_errors": code}),
    };
    match e {
        JobError::InvalidProvider => (bad, json!({"provider": ["Invalid provider"]})),
        JobError::InvalidCredentials => (bad, non_field("invalid_credentials")),
        JobError::NoEmailProvided { partial_token, .. } => (
            bad,
            with_partial(
                json!({"email": "no_email_provided"}),
                partial_token.as_ref(),
            ),
        ),
        JobError::InvalidReferralCode { partial_token, .. } => (
            bad,
            with_partial(
                json!({"referral_code": "invalid_referral_code"}),
                partial_token.as_ref(),
            ),
        ),
        JobError::InvalidPartialToken => (bad, non_field("invalid_partial_token")),
        JobError::EmailAlreadyInUse => (bad, json!({"email": "email_already_in_use"})),
        JobError::AccessTokenNotAccepted => {
            (bad, json!({"access_token": [ACCESS_TOKENS_NOT_TAKEN]}))
        }
        JobError::SocialAccountNotFound => (StatusCode::NOT_FOUND, json!({"detail": "Not found."})),
        JobError::RefreshNotSupported => {
            (bad, json!({"non_field_errors": ["refresh_not_supported"]}))
        }
        JobError::NeedsReauth => (
            StatusCode::CONFLICT,
            json!({"non_field_errors": ["needs_reauth"]}),
        ),
        JobError::SocialAccountAlreadyAssociated => (
            StatusCode::CONFLICT,
            json!({"non_field_errors": ["social_account_already_associated"]}),
        ),
        JobError::EmailNotAllowed => (bad, json!({"email": "email_not_allowed"})),
        JobError::InactiveUser => (bad, json!({"non_field_errors": ["inactive_user"]})),
        JobError::SignupClosed => (bad, json!({"non_field_errors": ["signup_closed"]})),
        JobError::NonceRequired => (bad, json!({"nonce": [REQUIRED]})),
        JobError::NonceMismatch { expected } => (
            bad,
            json!({"nonce": [match expected {
                NonceConvention::Raw => NONCE_RAW_MISMATCH,
                NonceConvention::Sha256 => NONCE_SHA256_MISMATCH,
            }]}),
        ),
        JobError::ProviderUnavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"non_field_errors": ["provider_unavailable"]}),
        ),
        JobError::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"detail": "The login could not be completed."}),
        ),
    }
}

/// Adds `"partial_token"` to a resumable error's body.
fn with_partial(mut body: Value, token: Option<&Secret>) -> Value {
    if let (Some(token), Some(map)) = (token, body.as_object_mut()) {
        map.insert(
            "partial_token".into(),
            Value::String(token.expose().clone()),
        );
    }
    body
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if matches!(self, Self::Store(_) | Self::Queue(_)) {
            tracing::warn!(error = %self, "dependency unavailable");
        }
        let (status, body) = self.parts();
        let retry_after = match self {
            Self::Throttled(secs) => Some(secs),
            Self::Overloaded => Some(1),
            Self::ProviderPaused(secs, _) => Some(secs.max(1)),
            _ => None,
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_bodies_are_exact() {
        assert_eq!(
            ApiError::InvalidProvider.parts().1.to_string(),
            r#"{"provider":["Invalid provider"]}"#
        );
        assert_eq!(
            ApiError::Job(JobError::InvalidCredentials, Flow::SocialAuth)
                .parts()
                .1
                .to_string(),
            r#"{"non_field_errors":"invalid_credentials"}"#
        );
        assert_eq!(
            ApiError::Job(JobError::InvalidCredentials, Flow::Djoser)
                .parts()
                .1
                .to_string(),
            r#"{"non_field_errors":["invalid_credentials"]}"#
        );
        assert_eq!(
            ApiError::required(&["code", "state"]).parts().1.to_string(),
            r#"{"code":["This field is required."],"state":["This field is required."]}"#
        );
        assert_eq!(
            ApiError::Job(JobError::EmailAlreadyInUse, Flow::Djoser)
                .parts()
                .1
                .to_string(),
            r#"{"email":"email_already_in_use"}"#
        );
    }

    #[test]
    fn resumable_errors_carry_their_partial_token() {
        let token = Some(Secret::new("pt".to_owned()));
        assert_eq!(
            ApiError::Job(
                JobError::NoEmailProvided {
                    partial_token: token.clone(),
                    partial_job: None,
                },
                Flow::SocialAuth
            )
            .parts()
            .1,
            json!({"email": "no_email_provided", "partial_token": "pt"})
        );
        assert_eq!(
            ApiError::Job(
                JobError::InvalidReferralCode {
                    partial_token: token,
                    partial_job: None,
                },
                Flow::SocialAuth
            )
            .parts()
            .1,
            json!({"referral_code": "invalid_referral_code", "partial_token": "pt"})
        );
    }

    #[test]
    fn nonce_errors_name_the_field_and_the_convention() {
        let body = |e: JobError| ApiError::Job(e, Flow::SocialAuth).parts().1.to_string();
        assert_eq!(
            body(JobError::NonceRequired),
            r#"{"nonce":["This field is required."]}"#
        );
        assert_eq!(
            body(JobError::NonceMismatch {
                expected: NonceConvention::Sha256
            }),
            r#"{"nonce":["does not match: this provider's id_token carries the SHA-256 (hex) of the nonce sent"]}"#
        );
        assert_eq!(
            body(JobError::NonceMismatch {
                expected: NonceConvention::Raw
            }),
            r#"{"nonce":["does not match: this provider's id_token carries the nonce as sent"]}"#
        );
    }

    #[test]
    fn dependency_failures_are_503_without_details() {
        let (status, body) = ApiError::Store(StoreError::Unavailable("pw=secret".into())).parts();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!body.to_string().contains("secret"));
    }
}
