//! OAuth 2 with explicit endpoints (GitHub, Facebook, Discord, …): code
//! exchange with the `oauth2` crate, then the configured userinfo URL.
//!
//! The client authenticates with `client_id`/`client_secret` in the request
//! body (`client_secret_post`), as python-social-auth does: it is what the
//! providers without discovery document (GitHub, Facebook) take.

use super::http::{Adapter, RetryPolicy};
use super::shared::{
    client_auth_or, fetch_profile_document, login_from, measured, provider_tokens, token_error,
};
use super::{Inner, ProviderError, ProviderLogin};
use ::oauth2::basic::BasicClient;
use ::oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, PkceCodeVerifier, RedirectUrl,
    TokenResponse, TokenUrl,
};
use socialauth_common::catalogue::ProviderConfig;
use socialauth_common::secret::Secret;

pub(super) async fn exchange_code(
    inner: &Inner,
    p: &ProviderConfig,
    code: &Secret,
    redirect_uri: &str,
    pkce_verifier: Option<&Secret>,
) -> Result<ProviderLogin, ProviderError> {
    let missing = |what: &str| ProviderError::Misconfigured(format!("no {what}"));
    let auth_url = p
        .authorize_url
        .clone()
        .ok_or_else(|| missing("authorize_url"))?;
    let token_url = p.token_url.clone().ok_or_else(|| missing("token_url"))?;
    let userinfo_url = p
        .userinfo_url
        .as_ref()
        .ok_or_else(|| missing("userinfo_url"))?;
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|_| ProviderError::Misconfigured("unusable redirect_uri".into()))?;

    let mut client = BasicClient::new(ClientId::new(p.client_id.clone()))
        .set_auth_uri(AuthUrl::from_url(auth_url))
        .set_token_uri(TokenUrl::from_url(token_url))
        .set_redirect_uri(redirect)
        .set_auth_type(client_auth_or(p, AuthType::RequestBody));
    let secret = inner.client_secret(p)?;
    if !secret.expose().is_empty() {
        client = client.set_client_secret(ClientSecret::new(secret.expose().clone()));
    }
    let mut request = client.exchange_code(AuthorizationCode::new(code.expose().clone()));
    if let Some(verifier) = pkce_verifier {
        request = request.set_pkce_verifier(PkceCodeVerifier::new(verifier.expose().clone()));
    }

    let provider = p.name.as_str();
    let adapter = Adapter::token_endpoint(inner.http(p), RetryPolicy::ConnectOnly);
    let token = measured(provider, "token", async {
        request
            .request_async(&adapter)
            .await
            .map_err(|e| token_error(e, adapter.last_status()))
    })
    .await?;

    let access_token = token.access_token().secret();
    let raw = fetch_profile_document(&inner.http(p), p, userinfo_url, access_token).await?;
    login_from(
        p,
        raw,
        provider_tokens(
            access_token,
            token.refresh_token().map(|t| t.secret().as_str()),
            token.expires_in(),
        ),
    )
}
