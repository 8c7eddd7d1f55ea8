//! RFC 7009 token revocation: a removed link's tokens are revoked at the
//! provider where the catalogue names a revocation endpoint. The client
//! authenticates as it does at the provider's token endpoint: HTTP Basic
//! (RFC 6749 §2.3.1, each part form-encoded) or the request body. Built by
//! hand rather than with `oauth2`'s `revoke_token`, which refuses endpoints
//! that are not HTTPS.

use super::http::{RetryPolicy, is_transient_status};
use super::shared::{client_auth_or, measured, short};
use super::{Inner, ProviderError, oidc};
use ::oauth2::AuthType;
use ::oauth2::http::{HeaderValue, Method, header};
use base64::Engine;
use serde_json::Value;
use socialauth_common::catalogue::{Protocol, ProviderConfig};
use socialauth_common::secret::Secret;
use url::form_urlencoded;

/// Which token a revocation names (`token_type_hint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    fn hint(self) -> &'static str {
        match self {
            Self::Access => "access_token",
            Self::Refresh => "refresh_token",
        }
    }
}

/// Revokes `token` at `url`. Revocation is idempotent (an unknown or
/// revoked token is answered 200), so it is retried like a read.
pub(super) async fn revoke(
    inner: &Inner,
    p: &ProviderConfig,
    url: &url::Url,
    token: &Secret,
    kind: TokenKind,
) -> Result<(), ProviderError> {
    let auth = match p.protocol {
        Protocol::Oidc => oidc::client_auth(inner, p).await?,
        // As the code exchange of `oauth2` providers authenticates.
        Protocol::OAuth2 | Protocol::OAuth1 => client_auth_or(p, AuthType::RequestBody),
    };
    let secret = inner.client_secret(p)?;
    let secret = secret.expose();
    let mut fields = vec![
        ("token", token.expose().as_str()),
        ("token_type_hint", kind.hint()),
    ];
    let mut request = ::oauth2::http::Request::builder()
        .method(Method::POST)
        .uri(url.as_str())
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json");
    match auth {
        AuthType::BasicAuth if !secret.is_empty() => {
            let encode =
                |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", encode(&p.client_id), encode(secret));
            let mut basic = HeaderValue::from_str(&format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ))
            .map_err(|_| ProviderError::Misconfigured("unusable client credentials".into()))?;
            basic.set_sensitive(true);
            request = request.header(header::AUTHORIZATION, basic);
        }
        _ => {
            fields.push(("client_id", &p.client_id));
            if !secret.is_empty() {
                fields.push(("client_secret", secret));
            }
        }
    }
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let request = request
        .body(body.into_bytes())
        .map_err(|_| ProviderError::Misconfigured("unusable revocation_url".into()))?;
    measured(p.name.as_str(), "revocation", async {
        let response = inner.http(p).send(request, RetryPolicy::Idempotent).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let code = serde_json::from_slice::<Value>(response.body())
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(short))
            .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
        Err(if is_transient_status(status) {
            ProviderError::Unavailable(format!("revocation endpoint: {code}"))
        } else {
            ProviderError::Refused(format!("revocation endpoint: {code}"))
        })
    })
    .await
}
