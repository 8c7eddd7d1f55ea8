//! `POST /social-auth`: the client drives the provider step itself and
//! posts the provider's answer. Three shapes by provider protocol — OAuth1
//! step 1, OAuth1 step 2, OAuth2/OIDC code — plus the resume of a partial
//! login with its `partial_token`.

use crate::error::{ApiError, Flow};
use crate::service::flows::{
    LoginOutcome, check_iss, finish, parse_email, provider, redirect_uri, request_token,
};
use crate::service::required::{Required, present};
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
    /// RFC 9207: the `iss` of the provider's authorization response, when
    /// it sent one; checked against the provider's issuer.
    pub iss: Option<String>,
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
    let mut need = Required::default();
    let name = need.field("provider", form.provider);
    let provider = provider(state, &need.check(|| name)?)?;
    // A partial login resumes without the provider.
    if form
        .partial_token
        .as_ref()
        .is_none_or(|t| t.expose().is_empty())
    {
        crate::service::providers::ensure_available(state, &provider, Flow::SocialAuth).await?;
    }
    let email = parse_email(form.email.as_deref())?;
    let referral_code = form.referral_code.clone().filter(|r| !r.is_empty());

    let credential = if let Some(partial_token) = present(form.partial_token) {
        LoginCredential::Partial { partial_token }
    } else if provider.protocol == Protocol::OAuth1 {
        if form.oauth_token.is_none() && form.oauth_verifier.is_none() {
            // Step 1.
            let callback = redirect_uri(state, &provider, form.redirect_uri.as_deref())?;
            let token = request_token(
                state,
                &provider,
                &callback,
                request_id,
                Flow::SocialAuth,
                None,
            )
            .await?;
            return Ok(SocialAuthOutcome::RequestToken(RequestTokenResponse {
                oauth_token: token.oauth_token,
                oauth_token_secret: token.oauth_token_secret,
                oauth_callback_confirmed: "true".into(),
                authorization_url: token.authorization_url,
            }));
        }
        // Step 2.
        let mut need = Required::default();
        let token = need.field("oauth_token", form.oauth_token);
        let secret_echo = need.field("oauth_token_secret", form.oauth_token_secret);
        let verifier = need.field("oauth_verifier", form.oauth_verifier);
        let (oauth_token, secret_echo, oauth_verifier) =
            need.check(|| Some((token?, secret_echo?, verifier?)))?;
        LoginCredential::OAuth1 {
            oauth_token,
            oauth_token_secret: Some(secret_echo),
            oauth_verifier,
        }
    } else {
        let mut need = Required::default();
        let code = need.field("code", form.code);
        let raw_redirect = need.field("redirect_uri", form.redirect_uri);
        let verifier = need.field_if(provider.require_pkce, "code_verifier", form.code_verifier);
        let (code, raw_redirect) = need.check(|| Some((code?, raw_redirect?)))?;
        check_iss(&provider, form.iss.as_deref())?;
        let redirect = redirect_uri(state, &provider, Some(&raw_redirect))?;
        LoginCredential::AuthorizationCode {
            code,
            redirect_uri: redirect.as_str().to_owned(),
            pkce_verifier: verifier,
            nonce: present(form.nonce),
            state_consumed: false,
        }
    };
    let job = Job::Login(LoginJob {
        provider: provider.name.clone(),
        credential,
        email: email.map(|e| e.as_str().to_owned()),
        referral_code,
    });
    Ok(SocialAuthOutcome::Login(
        finish(state, job, request_id, Flow::SocialAuth).await?,
    ))
}
