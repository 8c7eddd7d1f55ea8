//! The refresh-token grant (RFC 6749 §6): a link's refresh token for a new
//! access token, at the provider's token endpoint (OpenID Connect: its
//! discovery document's), the client authenticated as in its code exchange.
//! Sent once: a provider that rotates refresh tokens may have spent the old
//! one on a request whose answer was lost, so only a request that never
//! reached it is retried.

use super::http::{Adapter, RetryPolicy};
use super::shared::{client_auth_or, measured, provider_tokens, token_error};
use super::{Inner, ProviderError, oidc};
use ::oauth2::basic::BasicClient;
use ::oauth2::{AuthType, ClientId, ClientSecret, RefreshToken, TokenResponse, TokenUrl};
use socialauth_common::catalogue::{Protocol, ProviderConfig};
use socialauth_common::secret::Secret;
use socialauth_common::types::ProviderTokens;

/// New tokens for `refresh_token`. The answer's refresh token, when it
/// gives one (rotation); `None` when it keeps the old one valid.
pub(super) async fn refresh(
    inner: &Inner,
    p: &ProviderConfig,
    refresh_token: &Secret,
) -> Result<ProviderTokens, ProviderError> {
    let (token_url, auth) = match p.protocol {
        Protocol::Oidc => (
            oidc::token_endpoint(inner, p).await?,
            oidc::client_auth(inner, p).await?,
        ),
        Protocol::OAuth2 => (
            p.token_url
                .clone()
                .ok_or_else(|| ProviderError::Misconfigured("no token_url".into()))?,
            client_auth_or(p, AuthType::RequestBody),
        ),
        Protocol::OAuth1 => {
            return Err(ProviderError::Misconfigured(
                "OAuth 1.0a tokens are not refreshed".into(),
            ));
        }
    };
    let mut client = BasicClient::new(ClientId::new(p.client_id.clone()))
        .set_token_uri(TokenUrl::from_url(token_url))
        .set_auth_type(auth);
    let secret = inner.client_secret(p)?;
    if !secret.expose().is_empty() {
        client = client.set_client_secret(ClientSecret::new(secret.expose().clone()));
    }
    let adapter = Adapter::token_endpoint(inner.http(p), RetryPolicy::ConnectOnly);
    let grant = RefreshToken::new(refresh_token.expose().clone());
    let token = measured(p.name.as_str(), "refresh", async {
        client
            .exchange_refresh_token(&grant)
            .request_async(&adapter)
            .await
            .map_err(|e| token_error(e, adapter.last_status()))
    })
    .await?;
    Ok(provider_tokens(
        token.access_token().secret(),
        token.refresh_token().map(|t| t.secret().as_str()),
        token.expires_in(),
    ))
}
