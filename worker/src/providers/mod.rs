//! Provider HTTP: one module per protocol (`oidc`, `oauth2`, `oauth1`);
//! brands are catalogue data. [`ProviderClient`] is the worker's single entry
//! point.
//!
//! Error classification (what the pipeline makes of it):
//!
//! | what happened | [`ProviderError`] |
//! |---|---|
//! | token endpoint 4xx (`invalid_grant`, 401, …), a 200 carrying `{"error": …}` (GitHub) | `Refused` |
//! | OAuth1 request-token or access-token endpoint 4xx (bad signature, used verifier) | `Refused` |
//! | id_token signature, issuer, audience, expiry or nonce wrong | `Refused` |
//! | token login: id_token signature, issuer, audience (none of the app's client ids), `azp`, expiry, `iat` in the future or older than `id_token_max_age_secs`, malformed | `Refused` |
//! | token login: id_token nonce not the one sent by the provider's convention, or one carried and none sent | `Nonce` |
//! | token login: introspection `active: false`, `debug_token` `is_valid: false`, a token issued to another client (`client_id`/`aud`/`app_id`/`azp` none of the app's), or naming no client | `Refused` |
//! | token login: introspection, `debug_token` or `tokeninfo` 400/401/403 | `Refused` |
//! | userinfo 400/401/403 (the access token was not accepted) | `Refused` |
//! | userinfo `sub` differs from the id_token's, or no uid in the profile | `Refused` |
//! | connect errors, timeouts, 5xx, 429 (after the retries allowed) | `Unavailable` |
//! | a malformed body (token response, userinfo, discovery document, introspection, `debug_token`, `tokeninfo`) | `Unavailable` |
//! | no userinfo endpoint and no uid in the id_token, unusable URLs, issuer mismatch | `Misconfigured` |
//! | OAuth1 request token without `oauth_callback_confirmed=true` (an OAuth 1.0 provider) | `Misconfigured` |
//!
//! A malformed userinfo body is `Unavailable`, not `Refused`: the provider
//! accepted the credentials and then answered something broken, which says
//! nothing about the user's code and is worth reporting as an outage.

mod guard;
mod http;
mod minted;
mod oauth1;
mod oauth2;
mod oidc;
mod probe;
mod refresh;
mod revoke;
mod shared;
mod token;

pub use self::guard::{BreakerSettings, BreakerState};
pub use self::oauth1::RequestToken;
pub use self::oidc::NonceProblem;
pub use self::revoke::TokenKind;
pub use self::token::AccessTokenFacts;

use self::http::{Http, HttpError, RetrySettings};
pub use self::probe::Probe;
use serde_json::Value;
use socialauth_common::catalogue::{Protocol, ProviderConfig};
use socialauth_common::jobs::DiscoveredEndpoints;
use socialauth_common::secret::Secret;
use socialauth_common::types::{Profile, ProviderTokens};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// How long a discovery document (with its JWKS) is trusted.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
const DEFAULT_MIN_DELAY: Duration = Duration::from_millis(100);
const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(2);

/// Why a provider call did not give a login.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider refused the code or token, or its answer failed our
    /// checks (id_token signature, issuer, audience, expiry, nonce). The
    /// String is a short, non-secret reason for logs.
    #[error("provider refused the credentials: {0}")]
    Refused(String),
    /// Connect errors, timeouts, 5xx or 429 after the retries allowed, or a
    /// malformed answer.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The provider's configuration or metadata cannot be used.
    #[error("provider misconfigured: {0}")]
    Misconfigured(String),
    /// Token login: the id_token's nonce is not the one sent by the
    /// provider's convention, or it carries one and none was sent.
    #[error("id_token nonce: {0:?}")]
    Nonce(NonceProblem),
}

impl ProviderError {
    /// Whether trying again later may succeed: `Unavailable` only.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    fn outcome(&self) -> &'static str {
        match self {
            Self::Refused(_) | Self::Nonce(_) => "refused",
            Self::Unavailable(_) | Self::Misconfigured(_) => "error",
        }
    }
}

impl From<HttpError> for ProviderError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::InvalidRequest => Self::Misconfigured(e.to_string()),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// What a successful code exchange gives the pipeline.
#[derive(Clone)]
pub struct ProviderLogin {
    pub profile: Profile,
    pub tokens: ProviderTokens,
    /// The id_token claims (OIDC, without `nonce`, `at_hash`, `c_hash`) with
    /// the userinfo answer merged over them; for `extra_data`.
    pub raw: Value,
}

impl fmt::Debug for ProviderLogin {
    /// The raw document is shown by its keys only: a provider may put
    /// anything in it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self
            .raw
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        f.debug_struct("ProviderLogin")
            .field("profile", &self.profile)
            .field("tokens", &self.tokens)
            .field("raw_keys", &keys)
            .finish()
    }
}

/// Makes every provider HTTP call of a worker process: one reqwest client,
/// the OIDC discovery cache, the retry rules. Cheap to clone.
#[derive(Clone)]
pub struct ProviderClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: Http,
    discovery: oidc::DiscoveryCache,
    breaker: BreakerSettings,
    guards: std::sync::Mutex<HashMap<String, Arc<guard::Guard>>>,
    minted: minted::MintedSecrets,
}

impl Inner {
    /// `p`'s client secret: the configured one, or one minted from its key
    /// (Sign in with Apple).
    fn client_secret(&self, p: &ProviderConfig) -> Result<Secret, ProviderError> {
        self.minted.get(p, socialauth_common::now_ms() / 1000)
    }

    /// The HTTP client for calls to `p`, behind `p`'s breaker and budget.
    fn http(&self, p: &ProviderConfig) -> Http {
        self.http.guarded(self.guard(p))
    }

    fn guard(&self, p: &ProviderConfig) -> Arc<guard::Guard> {
        let mut guards = self
            .guards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guards
            .entry(p.name.as_str().to_owned())
            .or_insert_with(|| Arc::new(guard::Guard::new(p.name.as_str(), self.breaker, p.budget)))
            .clone()
    }
}

/// Mints a client secret for every provider that has its secret minted,
/// so that a key that cannot sign stops the start rather than every login
/// (the catalogue checks only that it is PEM).
pub fn check_minted_secrets(
    catalogue: &socialauth_common::catalogue::Catalogue,
) -> Result<(), String> {
    for p in catalogue.iter() {
        if let Some(m) = &p.minted_secret {
            minted::mint(m, &p.client_id, socialauth_common::now_ms() / 1000)
                .map_err(|e| format!("provider {}: {e}", p.name))?;
        }
    }
    Ok(())
}

impl fmt::Debug for ProviderClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderClient").finish_non_exhaustive()
    }
}

impl ProviderClient {
    /// `timeout` bounds each HTTP request (connecting within it too);
    /// `max_attempts` bounds the attempts of a retryable call (at least 1).
    ///
    /// # Panics
    /// When the TLS backend cannot be initialised, like `reqwest::Client::new`.
    /// Use [`ProviderClient::try_new`] to handle that.
    pub fn new(timeout: Duration, max_attempts: u32) -> Self {
        Self::try_new(timeout, max_attempts).expect("the provider HTTP client could not be built")
    }

    /// Like [`ProviderClient::new`], reporting a client that cannot be built.
    pub fn try_new(timeout: Duration, max_attempts: u32) -> Result<Self, ProviderError> {
        Self::with_breaker(timeout, max_attempts, BreakerSettings::default())
    }

    /// Like [`ProviderClient::try_new`], with each provider's breaker and
    /// budget wait set by `breaker`.
    pub fn with_breaker(
        timeout: Duration,
        max_attempts: u32,
        breaker: BreakerSettings,
    ) -> Result<Self, ProviderError> {
        let retry = RetrySettings {
            max_attempts: max_attempts.max(1),
            min_delay: DEFAULT_MIN_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
        };
        Self::build(timeout, retry, DISCOVERY_TTL, breaker)
    }

    fn build(
        timeout: Duration,
        retry: RetrySettings,
        discovery_ttl: Duration,
        breaker: BreakerSettings,
    ) -> Result<Self, ProviderError> {
        let http = Http::new(timeout, retry).map_err(|e| {
            ProviderError::Misconfigured(format!("HTTP client: {}", e.without_url()))
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                discovery: oidc::DiscoveryCache::new(discovery_ttl),
                breaker,
                guards: std::sync::Mutex::new(HashMap::new()),
                minted: minted::MintedSecrets::default(),
            }),
        })
    }

    /// Each provider this process has called, with its breaker's state and
    /// a version that changes with it.
    pub fn breaker_states(&self) -> Vec<(String, BreakerState, u64)> {
        let guards: Vec<(String, Arc<guard::Guard>)> = self
            .inner
            .guards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(name, g)| (name.clone(), g.clone()))
            .collect();
        guards
            .into_iter()
            .map(|(name, g)| {
                let (state, version) = g.state();
                (name, state, version)
            })
            .collect()
    }

    /// How long `p`'s calls will fail at once, when its breaker is open in
    /// this process.
    pub fn paused_for(&self, p: &ProviderConfig) -> Option<Duration> {
        match self.inner.guard(p).state().0 {
            BreakerState::Open { until } => {
                Some(until.saturating_duration_since(std::time::Instant::now()))
            }
            BreakerState::Closed | BreakerState::HalfOpen => None,
        }
    }

    /// `p`'s client secret as the next request would send it: the
    /// configured one, or one minted from its key (Sign in with Apple).
    pub fn client_secret(&self, p: &ProviderConfig) -> Result<Secret, ProviderError> {
        self.inner.client_secret(p)
    }

    /// The endpoint to send the user to. OIDC: the discovery document's
    /// `authorization_endpoint` (cached). OAuth2: the configured
    /// `authorize_url`.
    #[tracing::instrument(skip_all, fields(provider = %p.name))]
    pub async fn discover(&self, p: &ProviderConfig) -> Result<DiscoveredEndpoints, ProviderError> {
        let result = match p.protocol {
            Protocol::Oidc => oidc::discover(&self.inner, p).await,
            Protocol::OAuth2 => p
                .authorize_url
                .as_ref()
                .map(|u| DiscoveredEndpoints {
                    authorization_endpoint: u.to_string(),
                })
                .ok_or_else(|| ProviderError::Misconfigured("no authorize_url".into())),
            Protocol::OAuth1 => Err(oauth1_unsupported()),
        };
        log_failure(&result);
        result
    }

    /// Exchanges the code, verifies the id_token (OIDC), reads userinfo and
    /// returns the profile with the provider's tokens. The code exchange is
    /// never repeated once it may have reached the provider.
    #[tracing::instrument(skip_all, fields(provider = %p.name))]
    pub async fn exchange_code(
        &self,
        p: &ProviderConfig,
        code: &Secret,
        redirect_uri: &str,
        pkce_verifier: Option<&Secret>,
        nonce: Option<&Secret>,
    ) -> Result<ProviderLogin, ProviderError> {
        let result = match p.protocol {
            Protocol::Oidc => {
                oidc::exchange_code(&self.inner, p, code, redirect_uri, pkce_verifier, nonce).await
            }
            Protocol::OAuth2 => {
                oauth2::exchange_code(&self.inner, p, code, redirect_uri, pkce_verifier).await
            }
            Protocol::OAuth1 => Err(oauth1_unsupported()),
        };
        log_failure(&result);
        result
    }

    /// OAuth 1.0a step 1: POST `request_token_url` signed by the consumer
    /// (HMAC-SHA1) with `oauth_callback = callback` (`oob` when empty).
    /// Retried on connect errors, timeouts, 5xx and 429: nothing is granted
    /// yet. An answer without `oauth_callback_confirmed=true` is
    /// `Misconfigured`.
    #[tracing::instrument(skip_all, fields(provider = %p.name))]
    pub async fn request_token(
        &self,
        p: &ProviderConfig,
        callback: &str,
    ) -> Result<RequestToken, ProviderError> {
        let result = oauth1::request_token(&self.inner, p, callback).await;
        log_failure(&result);
        result
    }

    /// Where the user is sent in OAuth 1.0a: `authorize_url` with
    /// `oauth_token` (and the provider's `authorize_params`). No HTTP call.
    pub fn oauth1_authorization_url(
        p: &ProviderConfig,
        oauth_token: &str,
    ) -> Result<String, ProviderError> {
        oauth1::authorization_url(p, oauth_token)
    }

    /// OAuth 1.0a step 2: POST `access_token_url` signed with the request
    /// token, its secret and `oauth_verifier` (never repeated once it may
    /// have reached the provider: the verifier is single-use), then GET
    /// `userinfo_url` signed with the access token, its query parameters
    /// included in the signature. Without a `userinfo_url` the profile comes
    /// from the access token answer (`user_id`, `screen_name`).
    #[tracing::instrument(skip_all, fields(provider = %p.name))]
    pub async fn exchange_verifier(
        &self,
        p: &ProviderConfig,
        oauth_token: &str,
        token_secret: &Secret,
        verifier: &Secret,
    ) -> Result<ProviderLogin, ProviderError> {
        let result =
            oauth1::exchange_verifier(&self.inner, p, oauth_token, token_secret, verifier).await;
        log_failure(&result);
        result
    }

    /// Token login, step one for an access token: the check that it is
    /// this app's (introspection, `debug_token`, `tokeninfo`, by the
    /// catalogue), before anything is done with it. `None`: the provider
    /// has no such check, and takes no access token.
    #[tracing::instrument(skip_all, fields(provider = %p.name))]
    pub async fn check_access_token(
        &self,
        p: &ProviderConfig,
        access_token: &Secret,
    ) -> Result<Option<AccessTokenFacts>, ProviderError> {
        let result = match p.protocol {
            Protocol::OAuth1 => Err(oauth1_unsupported()),
            _ => token::check(&self.inner, p, access_token).await,
        };
        log_failure(&result);
        result
    }

    /// Token login, step two for an access token [`check_access_token`]
    /// accepted: the provider's userinfo → profile.
    ///
    /// [`check_access_token`]: ProviderClient::check_access_token
    #[tracing::instrument(skip_all, fields(provider = %p.name))]
    pub async fn access_token_login(
        &self,
        p: &ProviderConfig,
        access_token: &Secret,
        facts: &AccessTokenFacts,
    ) -> Result<ProviderLogin, ProviderError> {
        let result = match p.protocol {
            Protocol::OAuth1 => Err(oauth1_unsupported()),
            _ => token::login(&self.inner, p, access_token, facts).await,
        };
        log_failure(&result);
        result
    }

    /// Token login with an id_token: signature by the provider's keys,
    /// issuer, expiry, `iat`, audience among the app's client ids, nonce by
    /// the provider's convention; the profile from its claims.
    #[tracing::instrument(skip_all, fields(provider = %p.name))]
    pub async fn id_token_login(
        &self,
        p: &ProviderConfig,
        id_token: &Secret,
        nonce: Option<&Secret>,
    ) -> Result<ProviderLogin, ProviderError> {
        let result = match p.protocol {
            Protocol::Oidc => oidc::verify_id_token(&self.inner, p, id_token, nonce).await,
            _ => Err(ProviderError::Misconfigured(
                "only OpenID Connect providers issue id_tokens".into(),
            )),
        };
        log_failure(&result);
        result
    }
}

impl ProviderClient {
    /// The refresh-token grant: new tokens for a link's refresh token
    /// (the answer's refresh token when the provider rotates it). Sent
    /// once; `Refused` is the provider's `invalid_grant` (or another 4xx).
    #[tracing::instrument(skip_all, fields(provider = %p.name))]
    pub async fn refresh(
        &self,
        p: &ProviderConfig,
        refresh_token: &Secret,
    ) -> Result<ProviderTokens, ProviderError> {
        let result = refresh::refresh(&self.inner, p, refresh_token).await;
        log_failure(&result);
        result
    }

    /// The provider's RFC 7009 revocation endpoint: the configured
    /// `revocation_url`, else (OIDC) the discovery document's
    /// `revocation_endpoint`; `None` when it has none.
    pub async fn revocation_endpoint(
        &self,
        p: &ProviderConfig,
    ) -> Result<Option<url::Url>, ProviderError> {
        match (&p.revocation_url, p.protocol) {
            (Some(url), _) => Ok(Some(url.clone())),
            (None, Protocol::Oidc) => oidc::revocation_endpoint(&self.inner, p).await,
            (None, _) => Ok(None),
        }
    }

    /// Revokes one token at `url` (RFC 7009), authenticated as at the
    /// token endpoint; retried on connect errors, timeouts, 5xx and 429.
    #[tracing::instrument(skip_all, fields(provider = %p.name))]
    pub async fn revoke(
        &self,
        p: &ProviderConfig,
        url: &url::Url,
        token: &Secret,
        kind: TokenKind,
    ) -> Result<(), ProviderError> {
        let result = revoke::revoke(&self.inner, p, url, token, kind).await;
        log_failure(&result);
        result
    }
}

fn oauth1_unsupported() -> ProviderError {
    ProviderError::Misconfigured(
        "OAuth 1.0a providers use request_token and exchange_verifier, not this call".into(),
    )
}

fn log_failure<T>(result: &Result<T, ProviderError>) {
    match result {
        Ok(_) => {}
        Err(e @ (ProviderError::Refused(_) | ProviderError::Nonce(_))) => {
            tracing::info!(error = %e, "provider refused");
        }
        Err(e) => tracing::warn!(error = %e, "provider call failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::provider_tokens;

    #[test]
    fn debug_of_a_login_shows_no_token_and_only_the_raw_keys() {
        let login = ProviderLogin {
            profile: Profile {
                uid: "42".into(),
                ..Profile::default()
            },
            tokens: provider_tokens("at-secret-1", Some("rt-secret-2"), None),
            raw: serde_json::json!({"sub": "42", "leak": "raw-secret-3"}),
        };
        let shown = format!("{login:?}");
        for secret in ["at-secret-1", "rt-secret-2", "raw-secret-3"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("leak"), "{shown}");
    }
}
