//! The one HTTP client of the provider layer, the adapter the `oauth2` and
//! `openidconnect` crates send their requests through, and the retry rules.
//!
//! Both crates are built without their bundled (reqwest 0.12) client; they
//! call [`Adapter`], which runs the request on our reqwest 0.13 client.
//!
//! Retries follow the contract: a request that is safe to repeat (discovery,
//! JWKS, userinfo, the OAuth 1.0a request token: [`RetryPolicy::Idempotent`])
//! is retried on connect errors, timeouts, 5xx and 429 (honouring
//! `Retry-After` up to a cap); the code exchange and the OAuth 1.0a verifier
//! exchange ([`RetryPolicy::ConnectOnly`]) only when the connection could not
//! be made, so the single-use code never reached the provider.

use super::guard::{Admission, Guard, Observed, Refusal};
use backon::{ExponentialBuilder, Retryable};
use oauth2::http::{self, HeaderMap, StatusCode, header};
use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

/// Larger answers are refused: no provider document comes near this.
pub(crate) const BODY_LIMIT: usize = 1024 * 1024;
/// The longest `Retry-After` we wait for; longer ones are cut to this.
pub(crate) const RETRY_AFTER_CAP: Duration = Duration::from_secs(5);
/// Connections are given at most this long, within the overall timeout.
const CONNECT_TIMEOUT_CAP: Duration = Duration::from_secs(5);

/// When a request may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryPolicy {
    /// Safe to repeat: connect errors, timeouts, 5xx and 429 are retried.
    Idempotent,
    /// Carries a single-use code: retried only when the connection could not
    /// be established, i.e. the request was never sent.
    ConnectOnly,
}

/// Why a request got no usable answer. Never carries a URL, header or body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("could not connect")]
    Connect,
    #[error("timed out")]
    Timeout,
    #[error("response body larger than {BODY_LIMIT} bytes")]
    TooLarge,
    #[error("transport error: {0}")]
    Transport(String),
    #[error("request could not be built")]
    InvalidRequest,
    /// Not sent: the provider's breaker is open or its budget is spent.
    #[error("not sent: {}", .0.reason())]
    Refused(Refusal),
}

/// The backoff between attempts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetrySettings {
    pub max_attempts: u32,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl RetrySettings {
    fn backoff(&self) -> ExponentialBuilder {
        let retries = usize::try_from(self.max_attempts.saturating_sub(1)).unwrap_or(usize::MAX);
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(retries)
            .with_jitter()
    }
}

/// The shared reqwest client (no redirects, connect + overall timeouts, a
/// `User-Agent`) with the retry settings, and the guard of the provider it
/// is sending to ([`Http::guarded`]). Cheap to clone.
#[derive(Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    retry: RetrySettings,
    guard: Option<Arc<Guard>>,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("retry", &self.retry)
            .field("guarded", &self.guard.is_some())
            .finish_non_exhaustive()
    }
}

/// How long an idle connection to a provider is kept for reuse.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// One failed attempt, as the retry loop sees it.
#[derive(Debug)]
enum Attempt {
    /// No answer.
    Failed(HttpError),
    /// An answer worth retrying (5xx, 429); handed back as is when attempts
    /// run out.
    Status(HttpResponse),
}

impl Attempt {
    fn is_retryable(&self, policy: RetryPolicy) -> bool {
        matches!(
            (self, policy),
            (Self::Failed(HttpError::Connect), _)
                | (
                    Self::Failed(HttpError::Timeout) | Self::Status(_),
                    RetryPolicy::Idempotent
                )
        )
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status(r) => retry_after(r.headers()),
            Self::Failed(_) => None,
        }
    }
}

/// 5xx, 429 and 408: the provider may answer differently a moment later.
pub(crate) fn is_transient_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// `Retry-After` in seconds, capped: how long a retry waits. (The
/// HTTP-date form is not used by the providers we know and falls back to
/// the backoff.)
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    Some(asked_to_wait(headers)?.min(RETRY_AFTER_CAP))
}

/// `Retry-After` in seconds, as the provider sent it.
fn asked_to_wait(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// How a request went, for the provider's breaker.
fn observed(result: &Result<HttpResponse, HttpError>) -> Observed {
    match result {
        Ok(r) if is_transient_status(r.status()) => Observed::Failed {
            retry_after: asked_to_wait(r.headers()),
        },
        Ok(_) => Observed::Answered,
        Err(HttpError::Connect | HttpError::Timeout | HttpError::Transport(_)) => {
            Observed::Failed { retry_after: None }
        }
        Err(HttpError::TooLarge | HttpError::InvalidRequest | HttpError::Refused(_)) => {
            Observed::Neutral
        }
    }
}

impl Http {
    pub(crate) fn new(timeout: Duration, retry: RetrySettings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // Idle connections are dropped before common servers' own
            // keep-alive timeouts (Node's is 5 s): a request never goes out
            // on a connection the provider is closing, which fails it
            // unsent — and a code exchange is not retried.
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .connect_timeout(timeout.min(CONNECT_TIMEOUT_CAP))
            .timeout(timeout)
            .user_agent("socialauth")
            .build()?;
        Ok(Self {
            client,
            retry,
            guard: None,
        })
    }

    /// This client, every request of it admitted by `guard` first and
    /// reported to it after.
    pub(crate) fn guarded(&self, guard: Arc<Guard>) -> Self {
        Self {
            guard: Some(guard),
            ..self.clone()
        }
    }

    /// Sends `request` with the retries `policy` allows. An HTTP error status
    /// is an `Ok` answer: callers classify it.
    pub(crate) async fn send(
        &self,
        request: HttpRequest,
        policy: RetryPolicy,
    ) -> Result<HttpResponse, HttpError> {
        let request = reqwest::Request::try_from(request).map_err(|_| HttpError::InvalidRequest)?;
        self.send_retrying(
            || request.try_clone().ok_or(HttpError::InvalidRequest),
            policy,
        )
        .await
    }

    /// Like [`Http::send`], with the request built anew for every attempt:
    /// an OAuth 1.0a signature carries a nonce and a timestamp that a
    /// provider may refuse to see twice.
    pub(crate) async fn send_each(
        &self,
        build: impl Fn() -> Result<HttpRequest, HttpError>,
        policy: RetryPolicy,
    ) -> Result<HttpResponse, HttpError> {
        self.send_retrying(
            || reqwest::Request::try_from(build()?).map_err(|_| HttpError::InvalidRequest),
            policy,
        )
        .await
    }

    async fn send_retrying(
        &self,
        build: impl Fn() -> Result<reqwest::Request, HttpError>,
        policy: RetryPolicy,
    ) -> Result<HttpResponse, HttpError> {
        let attempt = || async {
            let request = build().map_err(Attempt::Failed)?;
            if let Some(guard) = &self.guard {
                // A request that spends a single-use credential may be
                // refused before it goes; one that follows it waits.
                let admission = match policy {
                    RetryPolicy::ConnectOnly => Admission::Bounded,
                    RetryPolicy::Idempotent => Admission::Patient,
                };
                guard
                    .admit(admission)
                    .await
                    .map_err(|r| Attempt::Failed(HttpError::Refused(r)))?;
            }
            let result = self.send_once(request).await;
            if let Some(guard) = &self.guard {
                guard.record(observed(&result));
            }
            let response = result.map_err(Attempt::Failed)?;
            if policy == RetryPolicy::Idempotent && is_transient_status(response.status()) {
                return Err(Attempt::Status(response));
            }
            Ok(response)
        };
        let outcome = attempt
            .retry(self.retry.backoff())
            .sleep(tokio::time::sleep)
            .when(|e: &Attempt| e.is_retryable(policy))
            .adjust(|e: &Attempt, next: Option<Duration>| {
                // `None` means attempts are used up: keep it that way.
                next.map(|backoff| e.retry_after().map_or(backoff, |ra| ra.max(backoff)))
            })
            .notify(|e: &Attempt, after: Duration| match e {
                Attempt::Failed(err) => {
                    tracing::debug!(error = %err, retry_in = ?after, "provider call failed, retrying");
                }
                Attempt::Status(r) => {
                    tracing::debug!(status = r.status().as_u16(), retry_in = ?after, "provider call failed, retrying");
                }
            })
            .await;
        match outcome {
            Ok(response) | Err(Attempt::Status(response)) => Ok(response),
            Err(Attempt::Failed(e)) => Err(e),
        }
    }

    async fn send_once(&self, request: reqwest::Request) -> Result<HttpResponse, HttpError> {
        let mut response = self.client.execute(request).await.map_err(classify)?;
        if response
            .content_length()
            .is_some_and(|n| n > BODY_LIMIT as u64)
        {
            return Err(HttpError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > BODY_LIMIT {
                return Err(HttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let mut out = http::Response::new(body);
        *out.status_mut() = response.status();
        *out.version_mut() = response.version();
        *out.headers_mut() = std::mem::take(response.headers_mut());
        Ok(out)
    }
}

/// reqwest's error without its URL (a userinfo URL may carry a query).
fn classify(e: reqwest::Error) -> HttpError {
    if e.is_connect() {
        HttpError::Connect
    } else if e.is_timeout() {
        HttpError::Timeout
    } else {
        let e = e.without_url();
        let detail = std::error::Error::source(&e)
            .map(|s| format!("{e}: {s}"))
            .unwrap_or_else(|| e.to_string());
        HttpError::Transport(detail)
    }
}

/// What `oauth2` and `openidconnect` call: one logical provider call with its
/// retry policy. Remembers the last HTTP status, because the crates' errors
/// do not always carry it (a 401 with an HTML body is only a parse error).
#[derive(Debug)]
pub(crate) struct Adapter {
    http: Http,
    policy: RetryPolicy,
    last_status: AtomicU16,
    /// Successful answers are token answers, made standard before the
    /// crates read them ([`standard_token_answer`]).
    token_answers: bool,
}

impl Adapter {
    pub(crate) fn new(http: Http, policy: RetryPolicy) -> Self {
        Self {
            http,
            policy,
            last_status: AtomicU16::new(0),
            token_answers: false,
        }
    }

    /// For a token endpoint (code exchange, refresh grant).
    pub(crate) fn token_endpoint(http: Http, policy: RetryPolicy) -> Self {
        Self {
            token_answers: true,
            ..Self::new(http, policy)
        }
    }

    /// The status of the last answer, if there was one.
    pub(crate) fn last_status(&self) -> Option<StatusCode> {
        StatusCode::from_u16(self.last_status.load(Ordering::Relaxed)).ok()
    }
}

impl<'c> AsyncHttpClient<'c> for Adapter {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let mut response = self.http.send(request, self.policy).await?;
            self.last_status
                .store(response.status().as_u16(), Ordering::Relaxed);
            if self.token_answers
                && response.status().is_success()
                && let Some(standard) = standard_token_answer(response.body())
            {
                *response.body_mut() = standard;
            }
            Ok(response)
        })
    }
}

/// A successful token answer in a provider's own shape, made the one of
/// RFC 6749 section 5.1 that the crates read: `expires_in` as a string
/// (Naver), `scope` as a list (Twitch), no `token_type` (Instagram), the
/// answer inside a one-element `data` list (Instagram). `None`: nothing to
/// change (or not a JSON object).
pub(crate) fn standard_token_answer(body: &[u8]) -> Option<Vec<u8>> {
    let mut doc: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut changed = false;
    if doc.get("access_token").is_none()
        && let Some([only]) = doc
            .get("data")
            .and_then(serde_json::Value::as_array)
            .map(Vec::as_slice)
        && only.get("access_token").is_some()
    {
        doc = only.clone();
        changed = true;
    }
    let fields = doc.as_object_mut()?;
    if fields.contains_key("access_token") && !fields.contains_key("token_type") {
        fields.insert("token_type".into(), "Bearer".into());
        changed = true;
    }
    if let Some(serde_json::Value::String(secs)) = fields.get("expires_in")
        && let Ok(secs) = secs.trim().parse::<u64>()
    {
        fields.insert("expires_in".into(), secs.into());
        changed = true;
    }
    if let Some(serde_json::Value::Array(items)) = fields.get("scope") {
        let joined: Vec<&str> = items.iter().filter_map(serde_json::Value::as_str).collect();
        fields.insert("scope".into(), joined.join(" ").into());
        changed = true;
    }
    if changed {
        serde_json::to_vec(&doc).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_answers_in_providers_own_shapes_are_made_standard() {
        let standard = |body: serde_json::Value| {
            standard_token_answer(body.to_string().as_bytes())
                .map(|b| serde_json::from_slice::<serde_json::Value>(&b).expect("json"))
        };
        // Naver: expires_in as a string.
        assert_eq!(
            standard(
                serde_json::json!({"access_token": "a", "refresh_token": "r", "token_type": "bearer", "expires_in": "3600"})
            ),
            Some(
                serde_json::json!({"access_token": "a", "refresh_token": "r", "token_type": "bearer", "expires_in": 3600})
            )
        );
        // Twitch: scope as a list.
        assert_eq!(
            standard(
                serde_json::json!({"access_token": "a", "token_type": "bearer", "scope": ["openid", "user:read:email"]})
            ),
            Some(
                serde_json::json!({"access_token": "a", "token_type": "bearer", "scope": "openid user:read:email"})
            )
        );
        // Instagram: inside `data`, no token_type.
        assert_eq!(
            standard(
                serde_json::json!({"data": [{"access_token": "a", "user_id": "17841", "permissions": "instagram_business_basic"}]})
            ),
            Some(
                serde_json::json!({"access_token": "a", "user_id": "17841", "permissions": "instagram_business_basic", "token_type": "Bearer"})
            )
        );
        // Standard answers, errors and other documents are left alone.
        assert_eq!(
            standard(
                serde_json::json!({"access_token": "a", "token_type": "bearer", "expires_in": 3600})
            ),
            None
        );
        assert_eq!(
            standard(serde_json::json!({"error": "invalid_grant"})),
            None
        );
        assert_eq!(
            standard(serde_json::json!({"data": [{"x": 1}, {"y": 2}]})),
            None
        );
        assert_eq!(standard_token_answer(b"not json"), None);
    }

    fn status(code: u16) -> Attempt {
        let mut r = http::Response::new(Vec::new());
        *r.status_mut() = StatusCode::from_u16(code).expect("status");
        Attempt::Status(r)
    }

    #[test]
    fn the_code_exchange_is_retried_only_when_the_connection_failed() {
        let p = RetryPolicy::ConnectOnly;
        assert!(Attempt::Failed(HttpError::Connect).is_retryable(p));
        assert!(!Attempt::Failed(HttpError::Timeout).is_retryable(p));
        assert!(!Attempt::Failed(HttpError::Transport("reset".into())).is_retryable(p));
        assert!(!status(500).is_retryable(p));
        assert!(!status(429).is_retryable(p));
    }

    #[test]
    fn idempotent_calls_retry_connect_errors_timeouts_and_transient_statuses() {
        let p = RetryPolicy::Idempotent;
        assert!(Attempt::Failed(HttpError::Connect).is_retryable(p));
        assert!(Attempt::Failed(HttpError::Timeout).is_retryable(p));
        assert!(status(503).is_retryable(p));
        assert!(status(429).is_retryable(p));
        assert!(!Attempt::Failed(HttpError::TooLarge).is_retryable(p));
        assert!(is_transient_status(StatusCode::BAD_GATEWAY));
        assert!(is_transient_status(StatusCode::TOO_MANY_REQUESTS));
        assert!(!is_transient_status(StatusCode::UNAUTHORIZED));
        assert!(!is_transient_status(StatusCode::NOT_FOUND));
    }

    #[test]
    fn retry_after_is_read_in_seconds_and_capped() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(header::RETRY_AFTER, "2".parse().expect("value"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(header::RETRY_AFTER, "3600".parse().expect("value"));
        assert_eq!(retry_after(&h), Some(RETRY_AFTER_CAP));
        h.insert(
            header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().expect("value"),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[tokio::test]
    async fn connect_errors_are_reported_without_the_url() {
        let http = Http::new(
            Duration::from_secs(2),
            RetrySettings {
                max_attempts: 2,
                min_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(2),
            },
        )
        .expect("client");
        // Port 9 (discard) on loopback: nothing listens there in tests.
        let request = http::Request::builder()
            .uri("http://127.0.0.1:9/userinfo?access_token=secret-value")
            .body(Vec::new())
            .expect("request");
        let err = http
            .send(request, RetryPolicy::Idempotent)
            .await
            .expect_err("nothing listens");
        assert_eq!(err, HttpError::Connect);
        assert!(!format!("{err} {err:?}").contains("secret-value"));
    }
}
