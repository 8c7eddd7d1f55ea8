//! Token login with an access token a client-side SDK obtained (Facebook JS
//! SDK, Google): first the check that the token is this app's — RFC 7662
//! introspection, Facebook's `debug_token` or Google's `tokeninfo`, as the
//! catalogue says ([`AccessTokenBinding`]) — then the provider's userinfo
//! through the provider's profile mapping, as a code exchange's.
//!
//! A provider without a check (an OAuth2 provider without
//! `introspection_url`, an OpenID Connect provider whose discovery document
//! names no `introspection_endpoint`) takes no access token at all: any
//! app's token for the same user would do. Only `access_token_check =
//! "none"`, the operator's explicit choice, takes it on its userinfo answer
//! alone.

use super::http::{Adapter, RetryPolicy};
use super::shared::{
    classify_status, fetch_profile_document, login_from, measured, provider_tokens, token_error,
};
use super::{Inner, ProviderError, ProviderLogin, oidc};
use ::oauth2::basic::BasicClient;
use ::oauth2::http::{Method, header};
use ::oauth2::{AccessToken, AuthType, ClientId, ClientSecret, IntrospectionUrl};
use ::oauth2::{TokenIntrospectionResponse, http};
use serde_json::Value;
use socialauth_common::catalogue::{AccessTokenBinding, Protocol, ProviderConfig};
use socialauth_common::secret::Secret;
use url::Url;

/// What the check learnt about an accepted token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessTokenFacts {
    /// When the token expires (milliseconds since the Unix epoch), when
    /// the provider said; `None`: unknown or never.
    pub expires_at: Option<i64>,
    /// Whether a check bound the token to this app (`false`: accepted on
    /// its userinfo answer alone).
    pub is_bound: bool,
}

/// The check that `token` is this app's: active, and issued to one of the
/// app's client ids (`client_id`, `client_ids`). Anything else is
/// `Refused`; `None`: the provider has no check, so takes no access token.
pub(super) async fn check(
    inner: &Inner,
    p: &ProviderConfig,
    token: &Secret,
) -> Result<Option<AccessTokenFacts>, ProviderError> {
    let provider = p.name.as_str();
    let facts = match &p.token_login.access_token_check {
        AccessTokenBinding::NotAccepted => return Ok(None),
        AccessTokenBinding::None => AccessTokenFacts::default(),
        AccessTokenBinding::DebugToken(url) => {
            let answer =
                measured(provider, "debug_token", debug_token(inner, p, url, token)).await?;
            read_debug_token(p, &answer)?
        }
        AccessTokenBinding::Tokeninfo(url) => {
            let answer = measured(provider, "tokeninfo", tokeninfo(inner, url, token)).await?;
            read_tokeninfo(p, &answer)?
        }
        AccessTokenBinding::Introspection(configured) => {
            let (endpoint, auth) = match (configured, p.protocol) {
                (Some(url), Protocol::Oidc) => (url.clone(), oidc::client_auth(inner, p).await?),
                (Some(url), _) => (url.clone(), AuthType::BasicAuth),
                (None, Protocol::Oidc) => match oidc::introspection_endpoint(inner, p).await? {
                    Some(url) => (url, oidc::client_auth(inner, p).await?),
                    None => return Ok(None),
                },
                (None, _) => {
                    return Err(ProviderError::Misconfigured(
                        "no introspection endpoint".into(),
                    ));
                }
            };
            measured(
                provider,
                "introspection",
                introspect(inner, p, endpoint, auth, token),
            )
            .await?
        }
    };
    Ok(Some(facts))
}

/// The profile of an accepted token: the provider's userinfo (OpenID
/// Connect: by discovery) through its mapping; the token is kept as the
/// link's provider token, with its expiry when the check told it.
pub(super) async fn login(
    inner: &Inner,
    p: &ProviderConfig,
    token: &Secret,
    facts: &AccessTokenFacts,
) -> Result<ProviderLogin, ProviderError> {
    let endpoint = match (p.protocol, &p.userinfo_url) {
        (_, Some(url)) => url.clone(),
        (Protocol::Oidc, None) => oidc::userinfo_endpoint(inner, p).await?,
        _ => return Err(ProviderError::Misconfigured("no userinfo_url".into())),
    };
    let raw = fetch_profile_document(&inner.http(p), p, &endpoint, token.expose()).await?;
    let mut tokens = provider_tokens(token.expose(), None, None);
    tokens.expires_at = facts.expires_at;
    login_from(p, raw, tokens)
}

/// RFC 7662: POST the token to the introspection endpoint, authenticated
/// as this client.
async fn introspect(
    inner: &Inner,
    p: &ProviderConfig,
    endpoint: Url,
    auth: AuthType,
    token: &Secret,
) -> Result<AccessTokenFacts, ProviderError> {
    let mut client = BasicClient::new(ClientId::new(p.client_id.clone()))
        .set_introspection_url(IntrospectionUrl::from_url(endpoint))
        .set_auth_type(auth);
    let secret = inner.client_secret(p)?;
    if !secret.expose().is_empty() {
        client = client.set_client_secret(ClientSecret::new(secret.expose().clone()));
    }
    let access_token = AccessToken::new(token.expose().clone());
    let adapter = Adapter::new(inner.http(p), RetryPolicy::Idempotent);
    let answer = client
        .introspect(&access_token)
        .set_token_type_hint("access_token")
        .request_async(&adapter)
        .await
        .map_err(|e| token_error(e, adapter.last_status()))?;
    let audiences: Vec<&str> = answer
        .aud()
        .map(|a| a.iter().map(String::as_str).collect())
        .unwrap_or_default();
    binding(
        p,
        answer.active(),
        answer.client_id().map(|c| c.as_str()),
        &audiences,
    )?;
    Ok(AccessTokenFacts {
        expires_at: answer.exp().map(|t| t.timestamp().saturating_mul(1000)),
        is_bound: true,
    })
}

/// An active token is this app's when the client it was issued to
/// (`client_id`, `azp`, `app_id`) is one of the app's client ids; only a
/// token that names no client is judged by its audiences (one of ours). A
/// token issued to another client with our id among its audiences (an
/// audience mapper) is that client's, and refused; one that names neither
/// is bound to nothing we can check, and refused.
pub(super) fn binding(
    p: &ProviderConfig,
    active: bool,
    client_id: Option<&str>,
    audiences: &[&str],
) -> Result<(), ProviderError> {
    if !active {
        return Err(ProviderError::Refused("access token is not active".into()));
    }
    let ours = match client_id {
        Some(client) => p.is_our_client(client),
        None => audiences.iter().any(|a| p.is_our_client(a)),
    };
    if ours {
        Ok(())
    } else {
        Err(ProviderError::Refused(
            "access token was issued to another client".into(),
        ))
    }
}

/// A GET whose query carries the token (Facebook's and Google's checks):
/// the JSON object answered, or the failure its status means (400, 401,
/// 403: the token was refused).
async fn get_json(
    inner: &Inner,
    url: &Url,
    query: &[(&str, &str)],
    endpoint: &str,
) -> Result<Value, ProviderError> {
    let mut url = url.clone();
    url.query_pairs_mut().extend_pairs(query);
    let request = http::Request::builder()
        .method(Method::GET)
        .uri(url.as_str())
        .header(header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|_| ProviderError::Misconfigured(format!("unusable {endpoint} URL")))?;
    let response = inner.http.send(request, RetryPolicy::Idempotent).await?;
    let status = response.status();
    if !status.is_success() {
        return Err(classify_status(status, endpoint));
    }
    match serde_json::from_slice::<Value>(response.body()) {
        Ok(doc @ Value::Object(_)) => Ok(doc),
        _ => Err(ProviderError::Unavailable(format!(
            "{endpoint} answered something that is not a JSON object"
        ))),
    }
}

/// Facebook: `GET debug_token?input_token=…&access_token=APP_ID|APP_SECRET`.
async fn debug_token(
    inner: &Inner,
    p: &ProviderConfig,
    url: &Url,
    token: &Secret,
) -> Result<Value, ProviderError> {
    let app_token = format!("{}|{}", p.client_id, p.client_secret.expose());
    get_json(
        inner,
        url,
        &[
            ("input_token", token.expose()),
            ("access_token", &app_token),
        ],
        "debug_token",
    )
    .await
}

/// `{"data": {"app_id", "is_valid", "expires_at", …}}`: valid, and issued
/// to one of the app's ids. `expires_at` 0 means it does not expire.
pub(super) fn read_debug_token(
    p: &ProviderConfig,
    answer: &Value,
) -> Result<AccessTokenFacts, ProviderError> {
    let data = answer
        .get("data")
        .ok_or_else(|| ProviderError::Unavailable("debug_token answered no data".into()))?;
    let app_id = match data.get("app_id") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let valid = data.get("is_valid").and_then(Value::as_bool) == Some(true);
    binding(p, valid, app_id.as_deref(), &[])?;
    Ok(AccessTokenFacts {
        expires_at: seconds(data.get("expires_at"))
            .filter(|s| *s > 0)
            .map(|s| s.saturating_mul(1000)),
        is_bound: true,
    })
}

/// Google: `GET tokeninfo?access_token=…` (an invalid token is a 400).
async fn tokeninfo(inner: &Inner, url: &Url, token: &Secret) -> Result<Value, ProviderError> {
    get_json(inner, url, &[("access_token", token.expose())], "tokeninfo").await
}

/// `{"aud", "azp", "exp", …}`: issued to (`aud`) or for (`azp`) one of
/// the app's client ids.
pub(super) fn read_tokeninfo(
    p: &ProviderConfig,
    answer: &Value,
) -> Result<AccessTokenFacts, ProviderError> {
    let text = |key: &str| answer.get(key).and_then(Value::as_str);
    let audiences: Vec<&str> = text("aud").into_iter().collect();
    binding(p, true, text("azp"), &audiences)?;
    Ok(AccessTokenFacts {
        expires_at: seconds(answer.get("exp")).map(|s| s.saturating_mul(1000)),
        is_bound: true,
    })
}

/// Seconds as a number or a string of digits (Google's `exp` is a string).
fn seconds(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use socialauth_common::catalogue::Catalogue;
    use socialauth_common::config::Settings;

    fn provider() -> ProviderConfig {
        let dir = tempfile_dir();
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "[providers.fb]\npreset = \"facebook\"\nclient_id = \"111\"\nclient_ids = [\"222\"]\n",
        )
        .expect("write");
        let settings = Settings::load_with_env(Some(&path), vec![]).expect("settings");
        let catalogue = Catalogue::from_settings(&settings).expect("catalogue");
        std::fs::remove_dir_all(&dir).ok();
        (**catalogue.get("fb").expect("fb")).clone()
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("socialauth-token-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    fn refused<T: std::fmt::Debug>(r: Result<T, ProviderError>) -> bool {
        matches!(r, Err(ProviderError::Refused(_)))
    }

    #[test]
    fn only_an_active_token_of_one_of_our_clients_is_bound() {
        let p = provider();
        assert!(binding(&p, true, Some("111"), &[]).is_ok());
        assert!(binding(&p, true, Some("222"), &[]).is_ok());
        assert!(binding(&p, true, None, &["x", "222"]).is_ok());
        assert!(refused(binding(&p, false, Some("111"), &[])));
        assert!(refused(binding(&p, true, Some("333"), &["444"])));
        assert!(refused(binding(&p, true, None, &[])), "bound to nothing");
        assert!(refused(binding(&p, true, Some(""), &[""])));
    }

    #[test]
    fn debug_token_answers_are_read_for_validity_app_and_expiry() {
        let p = provider();
        let ok = read_debug_token(
            &p,
            &json!({"data": {"app_id": "222", "is_valid": true, "expires_at": 1_700_000_000}}),
        )
        .expect("ours");
        assert_eq!(ok.expires_at, Some(1_700_000_000_000));
        let never = read_debug_token(
            &p,
            &json!({"data": {"app_id": 111, "is_valid": true, "expires_at": 0}}),
        )
        .expect("ours");
        assert_eq!(never.expires_at, None);
        assert!(refused(read_debug_token(
            &p,
            &json!({"data": {"app_id": "999", "is_valid": true}})
        )));
        assert!(refused(read_debug_token(
            &p,
            &json!({"data": {"app_id": "111", "is_valid": false}})
        )));
        assert!(matches!(
            read_debug_token(&p, &json!({"error": {}})),
            Err(ProviderError::Unavailable(_))
        ));
    }

    #[test]
    fn tokeninfo_answers_bind_by_audience_or_authorized_party() {
        let p = provider();
        let ok = read_tokeninfo(&p, &json!({"aud": "111", "exp": "1700000000"})).expect("ours");
        assert_eq!(ok.expires_at, Some(1_700_000_000_000));
        assert!(read_tokeninfo(&p, &json!({"aud": "web", "azp": "222"})).is_ok());
        assert!(refused(read_tokeninfo(
            &p,
            &json!({"aud": "other", "azp": "other"})
        )));
    }
}
