//! Response bodies.

use serde::Serialize;
use socialauth_common::jobs::LoginResult;
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
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            referral_code: u.referral_code.clone(),
            referred_by: u.referred_by.map(|r| r.0),
        }
    }
}

/// `{"token", "is_new", "user"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub is_new: bool,
    pub user: UserView,
}

impl From<&LoginResult> for TokenResponse {
    fn from(r: &LoginResult) -> Self {
        Self {
            token: r.token.as_ref().map(|t| t.expose().clone()),
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

/// `GET /auth/jobs/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobStatusView {
    /// `pending`, `succeeded` or `failed`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<TokenResponse>,
    /// The error body the synchronous call would have returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub error: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SocialAccountView {
    pub id: i64,
    pub provider: String,
    pub uid: String,
    pub email: Option<String>,
    pub needs_reauth: bool,
    pub created_at: i64,
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
