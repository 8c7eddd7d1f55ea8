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
//! | userinfo 400/401/403 (the access token was not accepted) | `Refused` |
//! | userinfo `sub` differs from the id_token's, or no uid in the profile | `Refused` |
//! | connect errors, timeouts, 5xx, 429 (after the retries allowed) | `Unavailable` |
//! | a malformed body (token response, userinfo, discovery document) | `Unavailable` |
//! | no userinfo endpoint and no uid in the id_token, unusable URLs, issuer mismatch | `Misconfigured` |
//! | OAuth1 request token without `oauth_callback_confirmed=true` (an OAuth 1.0 provider) | `Misconfigured` |
//!
//! A malformed userinfo body is `Unavailable`, not `Refused`: the provider
//! accepted the credentials and then answered something broken, which says
//! nothing about the user's code and is worth reporting as an outage.

mod http;
mod oauth1;
mod oauth2;
mod oidc;

pub use self::oauth1::RequestToken;

use self::http::{Http, HttpError, RetryPolicy, RetrySettings, is_transient_status};
use ::oauth2::http::{HeaderValue, Method, StatusCode, header};
use ::oauth2::{ErrorResponseType, HttpResponse, RequestTokenError, StandardErrorResponse};
use serde_json::Value;
use socialauth_common::catalogue::{Protocol, ProviderConfig};
use socialauth_common::jobs::DiscoveredEndpoints;
use socialauth_common::secret::Secret;
use socialauth_common::types::{Profile, ProviderTokens};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use url::Url;

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
}

impl ProviderError {
    /// Whether trying again later may succeed: `Unavailable` only.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    fn outcome(&self) -> &'static str {
        match self {
            Self::Refused(_) => "refused",
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
        let retry = RetrySettings {
            max_attempts: max_attempts.max(1),
            min_delay: DEFAULT_MIN_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
        };
        Self::build(timeout, retry, DISCOVERY_TTL)
    }

    fn build(
        timeout: Duration,
        retry: RetrySettings,
        discovery_ttl: Duration,
    ) -> Result<Self, ProviderError> {
        let http = Http::new(timeout, retry).map_err(|e| {
            ProviderError::Misconfigured(format!("HTTP client: {}", e.without_url()))
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                discovery: oidc::DiscoveryCache::new(discovery_ttl),
            }),
        })
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
}

fn oauth1_unsupported() -> ProviderError {
    ProviderError::Misconfigured(
        "OAuth 1.0a providers use request_token and exchange_verifier, not this call".into(),
    )
}

fn log_failure<T>(result: &Result<T, ProviderError>) {
    match result {
        Ok(_) => {}
        Err(e @ ProviderError::Refused(_)) => tracing::info!(error = %e, "provider refused"),
        Err(e) => tracing::warn!(error = %e, "provider call failed"),
    }
}

/// Runs one logical provider call (retries included) and records it.
async fn measured<T>(
    provider: &str,
    endpoint: &'static str,
    call: impl Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    let started = Instant::now();
    let result = call.await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.outcome(),
    };
    metrics::counter!(
        "socialauth_provider_calls_total",
        "provider" => provider.to_owned(),
        "endpoint" => endpoint,
        "outcome" => outcome,
    )
    .increment(1);
    metrics::histogram!(
        "socialauth_provider_call_duration_seconds",
        "provider" => provider.to_owned(),
        "endpoint" => endpoint,
    )
    .record(started.elapsed().as_secs_f64());
    result
}

/// GET the userinfo endpoint with the access token as bearer; the JSON
/// object it answers.
async fn fetch_userinfo(
    http: &Http,
    url: &Url,
    access_token: &str,
) -> Result<Value, ProviderError> {
    let mut bearer = HeaderValue::from_str(&format!("Bearer {access_token}")).map_err(|_| {
        ProviderError::Unavailable("access token is not a valid header value".into())
    })?;
    bearer.set_sensitive(true);
    let request = ::oauth2::http::Request::builder()
        .method(Method::GET)
        .uri(url.as_str())
        .header(header::AUTHORIZATION, bearer)
        .header(header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|_| ProviderError::Misconfigured("unusable userinfo URL".into()))?;
    let response = http.send(request, RetryPolicy::Idempotent).await?;
    read_userinfo(&response)
}

/// A userinfo answer: the JSON object, or the failure its status means.
fn read_userinfo(response: &HttpResponse) -> Result<Value, ProviderError> {
    let status = response.status();
    if status.is_success() {
        let is_jwt = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/jwt"));
        if is_jwt {
            return Err(ProviderError::Misconfigured(
                "signed userinfo responses are not supported".into(),
            ));
        }
        return match serde_json::from_slice::<Value>(response.body()) {
            Ok(doc @ Value::Object(_)) => Ok(doc),
            Ok(_) => Err(ProviderError::Unavailable(
                "userinfo answered JSON that is not an object".into(),
            )),
            Err(_) => Err(ProviderError::Unavailable(
                "userinfo answered malformed JSON".into(),
            )),
        };
    }
    let reason = format!("userinfo answered HTTP {}", status.as_u16());
    Err(
        if matches!(
            status,
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            ProviderError::Refused(reason)
        } else if is_transient_status(status) {
            ProviderError::Unavailable(reason)
        } else {
            ProviderError::Misconfigured(reason)
        },
    )
}

/// A token endpoint failure. `status` is the last HTTP status seen: the
/// crates' errors do not always carry it.
fn token_error<T: ErrorResponseType + fmt::Display + 'static>(
    e: RequestTokenError<HttpError, StandardErrorResponse<T>>,
    status: Option<StatusCode>,
) -> ProviderError {
    let by_status = |status: Option<StatusCode>, fallback: &str| match status {
        Some(s) if is_transient_status(s) => {
            ProviderError::Unavailable(format!("token endpoint answered HTTP {}", s.as_u16()))
        }
        Some(s) if s.is_client_error() => {
            ProviderError::Refused(format!("token endpoint answered HTTP {}", s.as_u16()))
        }
        _ => ProviderError::Unavailable(fallback.to_owned()),
    };
    match e {
        RequestTokenError::Request(e) => match e {
            HttpError::InvalidRequest => {
                ProviderError::Misconfigured("token request could not be built".into())
            }
            other => ProviderError::Unavailable(format!("token endpoint: {other}")),
        },
        RequestTokenError::ServerResponse(err) => {
            let code = serde_json::to_value(err.error())
                .ok()
                .and_then(|v| v.as_str().map(short))
                .unwrap_or_else(|| "error".to_owned());
            match status {
                Some(s) if is_transient_status(s) => by_status(status, ""),
                _ if code == "server_error" || code == "temporarily_unavailable" => {
                    ProviderError::Unavailable(format!("token endpoint: {code}"))
                }
                _ => ProviderError::Refused(code),
            }
        }
        RequestTokenError::Parse(_, body) if status == Some(StatusCode::OK) => {
            // GitHub answers a refused code with 200 and `{"error": …}`.
            match serde_json::from_slice::<Value>(&body)
                .ok()
                .as_ref()
                .and_then(|v| v.get("error"))
                .and_then(Value::as_str)
            {
                Some(code) => ProviderError::Refused(short(code)),
                None => ProviderError::Unavailable("malformed token response".into()),
            }
        }
        RequestTokenError::Parse(..) => by_status(status, "malformed token response"),
        RequestTokenError::Other(_) => by_status(status, "unexpected token response"),
    }
}

/// A provider-supplied code, cut to something safe to log.
fn short(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(64)
        .collect()
}

/// Seconds since the Unix epoch.
fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn expires_at(expires_in: Option<Duration>) -> Option<i64> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(now.checked_add(expires_in?)?.as_millis()).ok()
}

fn provider_tokens(
    access_token: &str,
    refresh_token: Option<&str>,
    expires_in: Option<Duration>,
) -> ProviderTokens {
    ProviderTokens {
        access_token: Secret::new(access_token.to_owned()),
        refresh_token: refresh_token.map(|t| Secret::new(t.to_owned())),
        expires_at: expires_at(expires_in),
        token_secret: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::oauth2::basic::BasicErrorResponseType;

    fn server_response(
        code: &str,
    ) -> RequestTokenError<HttpError, StandardErrorResponse<BasicErrorResponseType>> {
        let ty: BasicErrorResponseType =
            serde_json::from_value(Value::String(code.into())).expect("type");
        RequestTokenError::ServerResponse(StandardErrorResponse::new(ty, None, None))
    }

    #[test]
    fn only_unavailable_is_retryable() {
        assert!(ProviderError::Unavailable("x".into()).is_retryable());
        assert!(!ProviderError::Refused("x".into()).is_retryable());
        assert!(!ProviderError::Misconfigured("x".into()).is_retryable());
    }

    #[test]
    fn token_endpoint_client_errors_are_refusals_and_server_errors_are_outages() {
        assert_eq!(
            token_error(
                server_response("invalid_grant"),
                Some(StatusCode::BAD_REQUEST)
            ),
            ProviderError::Refused("invalid_grant".into())
        );
        assert!(matches!(
            token_error(
                server_response("invalid_grant"),
                Some(StatusCode::BAD_GATEWAY)
            ),
            ProviderError::Unavailable(_)
        ));
        assert!(matches!(
            token_error(
                RequestTokenError::<HttpError, StandardErrorResponse<BasicErrorResponseType>>::Other(
                    "server returned empty error response".into()
                ),
                Some(StatusCode::UNAUTHORIZED)
            ),
            ProviderError::Refused(_)
        ));
        assert!(matches!(
            token_error(
                RequestTokenError::<HttpError, StandardErrorResponse<BasicErrorResponseType>>::Request(
                    HttpError::Timeout
                ),
                None
            ),
            ProviderError::Unavailable(_)
        ));
    }

    #[test]
    fn provider_codes_are_shortened_to_safe_characters() {
        assert_eq!(short("invalid_grant"), "invalid_grant");
        assert_eq!(short("bad code\n<script>"), "badcodescript");
        assert_eq!(short(&"x".repeat(500)).len(), 64);
    }

    #[test]
    fn expiry_is_now_plus_expires_in_in_milliseconds() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64;
        let at = expires_at(Some(Duration::from_secs(60))).expect("expiry");
        assert!(
            at >= before + 60_000 && at < before + 70_000,
            "{at} vs {before}"
        );
        assert_eq!(expires_at(None), None);
    }

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
