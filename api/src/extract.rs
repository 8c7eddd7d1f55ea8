//! Extractors: request bodies as JSON or form, the app-token user, the
//! request id. Their rejections are `ApiError`s, so every bad request gets
//! the contract's shape.

use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use socialauth_common::crypto::hash_token;
use socialauth_common::now_ms;
use socialauth_common::types::User;

/// A body sent as `application/json` or `application/x-www-form-urlencoded`.
pub struct FormOrJson<T>(pub T);

impl<S, T> FromRequest<S> for FormOrJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        let body = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::MalformedBody("could not read the body".into())
            }
        })?;
        let value = match content_type.as_deref() {
            Some("application/json") => {
                serde_json::from_slice(&body).map_err(|e| ApiError::MalformedBody(e.to_string()))?
            }
            Some("application/x-www-form-urlencoded") => serde_urlencoded::from_bytes(&body)
                .map_err(|e| ApiError::MalformedBody(e.to_string()))?,
            None if body.is_empty() => serde_urlencoded::from_bytes(b"")
                .map_err(|e| ApiError::MalformedBody(e.to_string()))?,
            _ => return Err(ApiError::UnsupportedMediaType),
        };
        Ok(Self(value))
    }
}

/// The user behind `Authorization: Token <key>` (or `Bearer <key>`).
pub struct AuthUser {
    pub user: User,
    pub token_hash: String,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::NotAuthenticated)?;
        let (scheme, key) = header
            .trim()
            .split_once(' ')
            .ok_or(ApiError::InvalidToken)?;
        if !(scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer")) {
            return Err(ApiError::NotAuthenticated);
        }
        let token_hash = hash_token(key.trim());
        let user = state
            .store
            .find_user_by_token(&token_hash, now_ms())
            .await?
            .filter(|u| u.is_active)
            .ok_or(ApiError::InvalidToken)?;
        Ok(Self { user, token_hash })
    }
}

/// The id set by the request-id layer (or the client's own); it travels
/// into the job. A client's id longer than [`MAX_REQUEST_ID`] or not of
/// visible ASCII is not taken: it would ride in the job's AMQP header,
/// which must fit in one frame (RabbitMQ closes the connection of a
/// larger one).
pub struct RequestId(pub Option<String>);

/// The longest request id a job carries (a UUID has 36 characters).
pub const MAX_REQUEST_ID: usize = 128;

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .filter(|id| id.len() <= MAX_REQUEST_ID && id.bytes().all(|b| b.is_ascii_graphic()))
                .map(str::to_owned),
        ))
    }
}

/// `Path` whose rejection is an `ApiError` (404 shape).
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(_: axum::extract::rejection::PathRejection) -> Self {
        ApiError::NotFound
    }
}

/// `Query` whose rejection is an `ApiError` (400 shape).
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::MalformedBody(e.body_text())
    }
}

/// The operator: `Authorization: Bearer <admin_key>` (or `Token …`, as app
/// tokens may be sent; the `[security]` admin key). Without a configured
/// key no request is one.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let expected = state
            .settings
            .security
            .admin_key
            .as_ref()
            .filter(|k| !k.expose().is_empty())
            .ok_or(ApiError::NotAdmin)?;
        let given = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| {
                scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")
            })
            .map(|(_, key)| key.trim())
            .ok_or(ApiError::NotAdmin)?;
        // Digests are compared, so the time taken says nothing about the key.
        if hash_token(given) == hash_token(expected.expose()) {
            Ok(Self)
        } else {
            Err(ApiError::NotAdmin)
        }
    }
}

/// The signed-in user (app token) or the operator (admin key), for the
/// calls either may make.
pub enum UserOrAdmin {
    User(AuthUser),
    Admin,
}

impl FromRequestParts<AppState> for UserOrAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if Admin::from_request_parts(parts, state).await.is_ok() {
            return Ok(Self::Admin);
        }
        AuthUser::from_request_parts(parts, state)
            .await
            .map(Self::User)
    }
}
