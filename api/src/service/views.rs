//! Response bodies.

use serde::Serialize;
use socialauth_common::jobs::LoginResult;
use socialauth_common::secret::Secret;
use socialauth_common::types::{SocialAccount, User};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizationUrl {
    pub authorization_url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    /// Whether a provider verified `email` (one the client typed is not).
    pub email_verified: bool,
    pub first_name: String,
    pub last_name: String,
    pub referral_code: String,
    pub referred_by: Option<i64>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.0,
            username: u.username.clone(),
            email: u.email.clone(),
            email_verified: u.email_verified,
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            referral_code: u.referral_code.clone(),
            referred_by: u.referred_by.map(|r| r.0),
        }
    }
}

/// `{"token", "is_new", "user"}`. `Debug` shows the token as `[redacted]`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub token: Option<Secret>,
    pub is_new: bool,
    pub user: UserView,
}

impl From<&LoginResult> for TokenResponse {
    fn from(r: &LoginResult) -> Self {
        Self {
            token: r.token.clone(),
            is_new: r.is_new,
            user: UserView::from(&r.user),
        }
    }
}

/// `202`: the worker has not answered yet; poll `status_url`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobAccepted {
    pub job_id: String,
    pub status_url: String,
}

impl JobAccepted {
    /// The 202 answer for job `id`.
    pub fn response(id: uuid::Uuid) -> axum::response::Response {
        use axum::response::IntoResponse;
        (
            axum::http::StatusCode::ACCEPTED,
            axum::Json(Self {
                job_id: id.to_string(),
                status_url: format!("/auth/jobs/{id}"),
            }),
        )
            .into_response()
    }
}

/// `GET /auth/jobs/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobStatusView {
    /// `pending`, `succeeded` or `failed`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<TokenResponse>,
    /// An association's link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub social_account: Option<SocialAccountView>,
    /// The error body the synchronous call would have returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub error: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SocialAccountView {
    /// The association id (`DELETE /auth/disconnect/{provider}/{id}/`).
    pub id: i64,
    pub provider: String,
    pub uid: String,
    pub email: Option<String>,
    /// The provider's tokens were refused: sign in with it again.
    pub needs_reauth: bool,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// The last sign-in through it (milliseconds since the epoch).
    pub last_login_at: i64,
}

impl From<&SocialAccount> for SocialAccountView {
    fn from(a: &SocialAccount) -> Self {
        Self {
            id: a.id,
            provider: a.provider.clone(),
            uid: a.uid.clone(),
            email: a.email.clone(),
            needs_reauth: a.needs_reauth,
            created_at: a.created_at,
            last_login_at: a.last_login_at,
        }
    }
}

/// `GET /users/me`: the user with their linked accounts.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    #[serde(flatten)]
    pub user: UserView,
    pub social_accounts: Vec<SocialAccountView>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::redirect_flow::CallbackForm;
    use crate::service::social_auth::{RequestTokenResponse, SocialAuthForm};
    use socialauth_common::types::UserId;

    fn user() -> User {
        User {
            id: UserId(7),
            username: "ann".into(),
            email: Some("ann@example.com".into()),
            email_verified: true,
            first_name: "Ann".into(),
            last_name: String::new(),
            is_active: true,
            referral_code: "K7QH2M9XTA".into(),
            referred_by: None,
            created_at: 0,
        }
    }

    /// Every request and response type that carries a secret shows it as
    /// `[redacted]` in `Debug`, and still serialises it.
    #[test]
    fn debug_of_every_type_with_a_secret_hides_it() {
        let token = TokenResponse::from(&LoginResult {
            token: Some(Secret::new("app-token-secret-1".into())),
            is_new: true,
            user: user(),
            token_job: None,
        });
        let request_token = RequestTokenResponse {
            oauth_token: "public-token".into(),
            oauth_token_secret: Secret::new("request-secret-2".into()),
            oauth_callback_confirmed: "true".into(),
            authorization_url: "https://p.example/auth".into(),
        };
        let callback = CallbackForm {
            code: Some(Secret::new("code-secret-3".into())),
            state: Some(Secret::new("state-secret-4".into())),
            oauth_verifier: Some(Secret::new("verifier-secret-5".into())),
            ..CallbackForm::default()
        };
        let social = SocialAuthForm {
            code: Some(Secret::new("code-secret-3".into())),
            code_verifier: Some(Secret::new("pkce-secret-6".into())),
            oauth_token_secret: Some(Secret::new("request-secret-2".into())),
            oauth_verifier: Some(Secret::new("verifier-secret-5".into())),
            partial_token: Some(Secret::new("partial-secret-7".into())),
            nonce: Some(Secret::new("nonce-secret-8".into())),
            ..SocialAuthForm::default()
        };
        let shown = format!(
            "{token:?} {request_token:?} {callback:?} {social:?} {:?}",
            JobStatusView {
                status: "succeeded",
                result: Some(TokenResponse::from(&LoginResult {
                    token: Some(Secret::new("app-token-secret-1".into())),
                    is_new: false,
                    user: user(),
                    token_job: None,
                })),
                social_account: None,
                error: None,
            }
        );
        for secret in 1..=8 {
            assert!(!shown.contains(&format!("secret-{secret}")), "{shown}");
        }
        let json = serde_json::to_value(&token).expect("encode");
        assert_eq!(json["token"], "app-token-secret-1");
        let json = serde_json::to_value(&request_token).expect("encode");
        assert_eq!(json["oauth_token_secret"], "request-secret-2");
    }
}
