//! What the protocols share: a measured call, the userinfo request, the
//! token endpoint's errors, and the profile-building tail every protocol
//! ends with ([`login_from`]).

use super::http::{Http, HttpError, RetryPolicy, is_transient_status};
use super::{ProviderError, ProviderLogin};
use ::oauth2::http::{HeaderValue, Method, StatusCode, header};
use ::oauth2::{ErrorResponseType, HttpResponse, RequestTokenError, StandardErrorResponse};
use serde_json::Value;
use socialauth_common::catalogue::ProviderConfig;
use socialauth_common::config::TokenEndpointAuthMethod;
use socialauth_common::secret::Secret;
use socialauth_common::types::ProviderTokens;
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use url::Url;

/// The login a provider's answer makes: the profile the provider's
/// mapping reads out of `raw` (a document without the mapped uid is
/// refused), with the tokens.
pub(super) fn login_from(
    p: &ProviderConfig,
    raw: Value,
    tokens: ProviderTokens,
) -> Result<ProviderLogin, ProviderError> {
    let profile = p
        .profile
        .extract(&raw)
        .ok_or_else(|| ProviderError::Refused("no subject".into()))?;
    Ok(ProviderLogin {
        profile,
        tokens,
        raw,
    })
}

/// Runs one logical provider call (retries included) and records it.
pub(super) async fn measured<T>(
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
pub(super) async fn fetch_userinfo(
    http: &Http,
    url: &Url,
    access_token: &str,
) -> Result<Value, ProviderError> {
    read_userinfo(&bearer_get(http, url, access_token).await?)
}

/// The userinfo answer and, for a provider that lists a user's addresses
/// apart (`emails_url`), that list under `emails`, for the profile
/// mapping to read. A list the token may not read (401, 403, 404: a scope
/// the user did not grant) is left out; the mapping then finds no
/// address there.
pub(super) async fn fetch_profile_document(
    http: &Http,
    p: &ProviderConfig,
    userinfo_url: &Url,
    access_token: &str,
) -> Result<Value, ProviderError> {
    let provider = p.name.as_str();
    let mut doc = measured(
        provider,
        "userinfo",
        fetch_userinfo(http, userinfo_url, access_token),
    )
    .await?;
    if let Some(url) = &p.emails_url {
        let response = measured(provider, "emails", bearer_get(http, url, access_token)).await?;
        let status = response.status();
        if status.is_success() {
            let emails = serde_json::from_slice::<Value>(response.body()).map_err(|_| {
                ProviderError::Unavailable("the emails endpoint answered malformed JSON".into())
            })?;
            if let Value::Object(fields) = &mut doc {
                fields.insert("emails".into(), emails);
            }
        } else if !matches!(status.as_u16(), 401 | 403 | 404) {
            return Err(classify_status(status, "emails"));
        }
    }
    Ok(doc)
}

/// GET `url` with the access token as bearer, asking for JSON.
async fn bearer_get(
    http: &Http,
    url: &Url,
    access_token: &str,
) -> Result<HttpResponse, ProviderError> {
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
    Ok(http.send(request, RetryPolicy::Idempotent).await?)
}

/// A userinfo answer: the JSON object, or the failure its status means.
pub(super) fn read_userinfo(response: &HttpResponse) -> Result<Value, ProviderError> {
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
    Err(classify_status(status, "userinfo"))
}

/// What an error status of a call that presents a token means: 400, 401,
/// 403 the token was refused; 5xx, 429, 408 an outage; anything else a
/// configuration we cannot use.
pub(super) fn classify_status(status: StatusCode, endpoint: &str) -> ProviderError {
    let reason = format!("{endpoint} answered HTTP {}", status.as_u16());
    if matches!(
        status,
        StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
    ) {
        ProviderError::Refused(reason)
    } else if is_transient_status(status) {
        ProviderError::Unavailable(reason)
    } else {
        ProviderError::Misconfigured(reason)
    }
}

/// A token endpoint failure. `status` is the last HTTP status seen: the
/// crates' errors do not always carry it.
pub(super) fn token_error<T: ErrorResponseType + fmt::Display + 'static>(
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
pub(super) fn short(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(64)
        .collect()
}

/// Seconds since the Unix epoch.
pub(super) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub(super) fn expires_at(expires_in: Option<Duration>) -> Option<i64> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(now.checked_add(expires_in?)?.as_millis()).ok()
}

pub(super) fn provider_tokens(
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

/// How the client authenticates at the provider's token endpoint (and its
/// introspection and revocation endpoints): the configured method, else
/// `default` (the protocol's way).
pub(super) fn client_auth_or(
    p: &ProviderConfig,
    default: ::oauth2::AuthType,
) -> ::oauth2::AuthType {
    match p.token_endpoint_auth_method {
        Some(TokenEndpointAuthMethod::ClientSecretBasic) => ::oauth2::AuthType::BasicAuth,
        Some(TokenEndpointAuthMethod::ClientSecretPost) => ::oauth2::AuthType::RequestBody,
        None => default,
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
}
