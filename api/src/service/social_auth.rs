//! `POST /social-auth`: the client drives the provider step itself and
//! posts the provider's answer. Three shapes by provider protocol — OAuth1
//! step 1, OAuth1 step 2, OAuth2/OIDC code — plus the resume of a partial
//! login with its `partial_token`.

use crate::error::{ApiError, Flow};
use crate::service::authorize::{provider, redirect_uri, request_token};
use crate::service::login::{LoginOutcome, finish, parse_email};
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use socialauth_common::catalogue::Protocol;
use socialauth_common::jobs::{Job, LoginCredential, LoginJob};
use socialauth_common::secret::Secret;
use utoipa::ToSchema;

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SocialAuthForm {
    pub provider: Option<String>,
    pub redirect_uri: Option<String>,
    #[schema(value_type = Option<String>)]
    pub code: Option<Secret>,
    #[schema(value_type = Option<String>)]
    pub code_verifier: Option<Secret>,
    /// OpenID Connect: the nonce the client put in its authorization
    /// request; the id_token's must match it.
    #[schema(value_type = Option<String>)]
    pub nonce: Option<Secret>,
    pub oauth_token: Option<String>,
    #[schema(value_type = Option<String>)]
    pub oauth_token_secret: Option<Secret>,
    #[schema(value_type = Option<String>)]
    pub oauth_verifier: Option<Secret>,
    #[schema(value_type = Option<String>)]
    pub partial_token: Option<Secret>,
    pub email: Option<String>,
    pub referral_code: Option<String>,
}

/// OAuth1 step 1's answer. `Debug` shows the secret as `[redacted]`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestTokenResponse {
    pub oauth_token: String,
    #[schema(value_type = String)]
    pub oauth_token_secret: Secret,
    /// Always `"true"` (a string, as the providers send it).
    pub oauth_callback_confirmed: String,
    pub authorization_url: String,
}

pub enum SocialAuthOutcome {
    RequestToken(RequestTokenResponse),
    Login(LoginOutcome),
}

pub async fn handle(
    state: &AppState,
    form: SocialAuthForm,
    request_id: Option<String>,
) -> Result<SocialAuthOutcome, ApiError> {
    let name = present(form.provider.as_deref()).ok_or(ApiError::required(&["provider"]))?;
    let provider = provider(state, name)?;
    let email = parse_email(form.email.as_deref())?;
    let referral_code = form.referral_code.clone().filter(|r| !r.is_empty());

    let credential = if let Some(partial_token) = secret(form.partial_token) {
        LoginCredential::Partial { partial_token }
    } else if provider.protocol == Protocol::OAuth1 {
        if form.oauth_token.is_none() && form.oauth_verifier.is_none() {
            // Step 1.
            let callback = redirect_uri(state, form.redirect_uri.as_deref())?;
            let token =
                request_token(state, &provider, &callback, request_id, Flow::SocialAuth).await?;
            return Ok(SocialAuthOutcome::RequestToken(RequestTokenResponse {
                oauth_token: token.oauth_token,
                oauth_token_secret: token.oauth_token_secret,
                oauth_callback_confirmed: "true".into(),
                authorization_url: token.authorization_url,
            }));
        }
        // Step 2.
        let token = form.oauth_token.filter(|t| !t.is_empty());
        let secret_echo = secret(form.oauth_token_secret);
        let verifier = secret(form.oauth_verifier);
        match (token, secret_echo, verifier) {
            (Some(oauth_token), Some(secret), Some(oauth_verifier)) => LoginCredential::OAuth1 {
                oauth_token,
                oauth_token_secret: Some(secret),
                oauth_verifier,
            },
            (t, s, v) => {
                let mut missing = Vec::new();
                for (field, absent) in [
                    ("oauth_token", t.is_none()),
                    ("oauth_token_secret", s.is_none()),
                    ("oauth_verifier", v.is_none()),
                ] {
                    if absent {
                        missing.push(field);
                    }
                }
                return Err(ApiError::required(&missing));
            }
        }
    } else {
        let code = secret(form.code);
        let raw_redirect = present(form.redirect_uri.as_deref());
        let verifier = secret(form.code_verifier);
        let (Some(code), Some(_), false) = (
            code.clone(),
            raw_redirect,
            provider.require_pkce && verifier.is_none(),
        ) else {
            let mut missing = Vec::new();
            if code.is_none() {
                missing.push("code");
            }
            if raw_redirect.is_none() {
                missing.push("redirect_uri");
            }
            if provider.require_pkce && verifier.is_none() {
                missing.push("code_verifier");
            }
            return Err(ApiError::required(&missing));
        };
        let redirect = redirect_uri(state, raw_redirect)?;
        LoginCredential::AuthorizationCode {
            code,
            redirect_uri: redirect.as_str().to_owned(),
            pkce_verifier: verifier,
            nonce: secret(form.nonce),
            state_consumed: false,
        }
    };
    let job = Job::Login(LoginJob {
        provider: provider.name.as_str().to_owned(),
        credential,
        email: email.map(|e| e.as_str().to_owned()),
        referral_code,
    });
    Ok(SocialAuthOutcome::Login(
        finish(state, job, request_id, Flow::SocialAuth).await?,
    ))
}

fn present(raw: Option<&str>) -> Option<&str> {
    raw.filter(|v| !v.is_empty())
}

fn secret(raw: Option<Secret>) -> Option<Secret> {
    raw.filter(|s| !s.expose().is_empty())
}
