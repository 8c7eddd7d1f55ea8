//! OAuth 1.0a (RFC 5849) with HMAC-SHA1: the request token (step 1), the
//! authorization URL, the verifier exchange and the signed userinfo call
//! (step 2). Signing is the `oauth1-request` crate's; this module feeds it
//! the query parameters of each URL so that the signature covers them
//! (`verify_credentials.json?include_email=true`).
//!
//! Every attempt is signed anew (fresh nonce and timestamp): a provider that
//! saw the first attempt's nonce may refuse it on a retry.
//!
//! | call | retried on | 4xx | 5xx, 429, timeout (after retries) |
//! |---|---|---|---|
//! | request token | connect errors, timeouts, 5xx, 429 (nothing was granted yet) | `Refused` | `Unavailable` |
//! | access token | connect errors only (the verifier is single-use) | `Refused` | `Unavailable`, sent once |
//! | userinfo | connect errors, timeouts, 5xx, 429 | 400/401/403 `Refused` | `Unavailable` |
//!
//! A request-token answer without `oauth_callback_confirmed=true` is
//! `Misconfigured`: the provider speaks OAuth 1.0, not 1.0a, whose
//! callback confirmation prevents session fixation. It is not the user's
//! fault and asking again will not change it.

use super::http::{HttpError, RetryPolicy, is_transient_status};
use super::shared::{login_from, measured, read_userinfo, short};
use super::{Inner, ProviderError, ProviderLogin};
use ::oauth2::http::{self, HeaderValue, Method, header};
use ::oauth2::{HttpRequest, HttpResponse};
use oauth1_request::serializer::Serializer;
use oauth1_request::signature_method::HmacSha1;
use oauth1_request::{Builder, Credentials, Request};
use serde_json::{Map, Value};
use socialauth_common::catalogue::{Protocol, ProviderConfig};
use socialauth_common::secret::Secret;
use socialauth_common::types::ProviderTokens;
use std::fmt::{self, Write as _};
use std::num::NonZeroU64;
use url::Url;

/// OAuth 1.0a step 1's answer: the temporary credentials.
#[derive(Clone)]
pub struct RequestToken {
    /// Sent to the user's browser in the authorization URL and echoed back
    /// with the verifier.
    pub oauth_token: String,
    /// Kept server-side; signs the verifier exchange.
    pub oauth_token_secret: Secret,
    /// Always `true` in a returned value: an answer without it is refused
    /// as [`ProviderError::Misconfigured`].
    pub callback_confirmed: bool,
}

impl fmt::Debug for RequestToken {
    /// Neither the token nor its secret: the token is what the verifier
    /// exchange is looked up by.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestToken")
            .field("oauth_token", &"[redacted]")
            .field("oauth_token_secret", &self.oauth_token_secret)
            .field("callback_confirmed", &self.callback_confirmed)
            .finish()
    }
}

/// The `oauth_*` protocol parameters, in byte order, as the crate's
/// [`Serializer`] emits them.
const PROTOCOL_PARAMS: [&str; 8] = [
    "oauth_callback",
    "oauth_consumer_key",
    "oauth_nonce",
    "oauth_signature_method",
    "oauth_timestamp",
    "oauth_token",
    "oauth_verifier",
    "oauth_version",
];

fn serialize_protocol_param<S: Serializer>(s: &mut S, index: usize) {
    match index {
        0 => s.serialize_oauth_callback(),
        1 => s.serialize_oauth_consumer_key(),
        2 => s.serialize_oauth_nonce(),
        3 => s.serialize_oauth_signature_method(),
        4 => s.serialize_oauth_timestamp(),
        5 => s.serialize_oauth_token(),
        6 => s.serialize_oauth_verifier(),
        _ => s.serialize_oauth_version(),
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters
/// (RFC 5849 §3.6).
fn encode(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A URL's query parameters as RFC 5849 §3.4.1.3 signs them: decoded as
/// `application/x-www-form-urlencoded`, encoded again, sorted by name then
/// value. Implements the crate's [`Request`], so the `oauth_*` parameters
/// are placed among them in order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    fn from_url(url: &Url) -> Result<Self, ProviderError> {
        let mut pairs = Vec::new();
        for (k, v) in url.query_pairs() {
            if k.starts_with("oauth_") {
                return Err(ProviderError::Misconfigured(
                    "a provider URL carries an oauth_ query parameter".into(),
                ));
            }
            pairs.push((encode(&k), encode(&v)));
        }
        pairs.sort();
        Ok(Self(pairs))
    }
}

impl Request for QueryParams {
    fn serialize<S: Serializer>(&self, mut s: S) -> S::Output {
        let mut next = 0;
        for (key, value) in &self.0 {
            while next < PROTOCOL_PARAMS.len() && PROTOCOL_PARAMS[next] < key.as_str() {
                serialize_protocol_param(&mut s, next);
                next += 1;
            }
            // The serializer writes the key into the base string as given
            // and encodes the value once more: both end up encoded twice,
            // as the base string wants (§3.4.1.1).
            s.serialize_parameter_encoded(&encode(key), value);
        }
        while next < PROTOCOL_PARAMS.len() {
            serialize_protocol_param(&mut s, next);
            next += 1;
        }
        s.end()
    }
}

/// One provider endpoint: the URL sent as configured, the base string URI
/// (§3.4.1.2: no query, no default port) and the query parameters.
#[derive(Debug)]
struct Endpoint {
    url: Url,
    base_uri: String,
    params: QueryParams,
}

impl Endpoint {
    fn new(url: &Url) -> Result<Self, ProviderError> {
        let host = url
            .host_str()
            .ok_or_else(|| ProviderError::Misconfigured("a provider URL has no host".into()))?;
        let base_uri = match url.port() {
            Some(port) => format!("{}://{host}:{port}{}", url.scheme(), url.path()),
            None => format!("{}://{host}{}", url.scheme(), url.path()),
        };
        let mut url = url.clone();
        url.set_fragment(None);
        Ok(Self {
            params: QueryParams::from_url(&url)?,
            url,
            base_uri,
        })
    }
}

/// What a request is signed with.
struct Signing<'a> {
    consumer: Credentials<&'a str>,
    token: Option<Credentials<&'a str>>,
    callback: Option<&'a str>,
    verifier: Option<&'a str>,
    /// A fixed nonce and timestamp, for tests against published examples.
    pinned: Option<(&'a str, NonZeroU64)>,
}

impl<'a> Signing<'a> {
    fn consumer(p: &'a ProviderConfig) -> Self {
        Self {
            consumer: Credentials::new(p.client_id.as_str(), p.client_secret.expose().as_str()),
            token: None,
            callback: None,
            verifier: None,
            pinned: None,
        }
    }

    /// The `Authorization` header value for `method` on `endpoint`.
    fn authorization(&self, method: &Method, endpoint: &Endpoint) -> String {
        let mut builder = Builder::<HmacSha1, &str, &str>::new(self.consumer, HmacSha1::new());
        builder
            .token(self.token)
            .callback(self.callback)
            .verifier(self.verifier)
            .version(true);
        if let Some((nonce, timestamp)) = self.pinned {
            builder.nonce(nonce).timestamp(timestamp);
        }
        builder.authorize(method.as_str(), &endpoint.base_uri, &endpoint.params)
    }

    /// A request signed now: each attempt gets its own nonce and timestamp.
    fn request(
        &self,
        method: Method,
        endpoint: &Endpoint,
        accept: &str,
    ) -> Result<HttpRequest, HttpError> {
        let mut authorization = HeaderValue::from_str(&self.authorization(&method, endpoint))
            .map_err(|_| HttpError::InvalidRequest)?;
        authorization.set_sensitive(true);
        http::Request::builder()
            .method(method)
            .uri(endpoint.url.as_str())
            .header(header::AUTHORIZATION, authorization)
            .header(header::ACCEPT, accept)
            .body(Vec::new())
            .map_err(|_| HttpError::InvalidRequest)
    }
}

fn ensure_oauth1(p: &ProviderConfig) -> Result<(), ProviderError> {
    if p.protocol == Protocol::OAuth1 {
        Ok(())
    } else {
        Err(ProviderError::Misconfigured(
            "not an OAuth 1.0a provider".into(),
        ))
    }
}

fn endpoint(url: Option<&Url>, what: &str) -> Result<Endpoint, ProviderError> {
    Endpoint::new(url.ok_or_else(|| ProviderError::Misconfigured(format!("no {what}")))?)
}

/// A form-encoded answer of the request-token or access-token endpoint.
struct TokenAnswer(Vec<(String, String)>);

impl TokenAnswer {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The token and its secret.
    fn credentials(&self, endpoint: &str) -> Result<(&str, &str), ProviderError> {
        match (self.get("oauth_token"), self.get("oauth_token_secret")) {
            (Some(token), Some(secret)) => Ok((token, secret)),
            _ => Err(match self.get("oauth_problem") {
                Some(problem) => ProviderError::Refused(short(problem)),
                None => ProviderError::Unavailable(format!("malformed {endpoint} response")),
            }),
        }
    }

    /// The non-protocol fields (Twitter's `user_id`, `screen_name`), as a
    /// JSON object.
    fn extra(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .filter(|(k, _)| !k.starts_with("oauth_"))
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect::<Map<_, _>>(),
        )
    }
}

/// Reads a token endpoint's answer; `endpoint` names it in errors.
fn token_answer(endpoint: &str, response: &HttpResponse) -> Result<TokenAnswer, ProviderError> {
    let status = response.status();
    let answer = TokenAnswer(
        url::form_urlencoded::parse(response.body())
            .into_owned()
            .collect(),
    );
    if status.is_success() {
        return Ok(answer);
    }
    let reason = format!("{endpoint} answered HTTP {}", status.as_u16());
    Err(if is_transient_status(status) {
        ProviderError::Unavailable(reason)
    } else if status.is_client_error() {
        // `oauth_problem` (signature_invalid, token_rejected, …) when the
        // provider follows the OAuth Problem Reporting extension.
        match answer.get("oauth_problem") {
            Some(problem) => ProviderError::Refused(format!("{reason}: {}", short(problem))),
            None => ProviderError::Refused(reason),
        }
    } else {
        // Redirects are not followed: the configured URL is not the endpoint.
        ProviderError::Misconfigured(reason)
    })
}

pub(super) async fn request_token(
    inner: &Inner,
    p: &ProviderConfig,
    callback: &str,
) -> Result<RequestToken, ProviderError> {
    ensure_oauth1(p)?;
    let endpoint = endpoint(p.request_token_url.as_ref(), "request_token_url")?;
    let signing = Signing {
        // RFC 5849 §2.1: "oob" when there is no callback.
        callback: Some(if callback.is_empty() { "oob" } else { callback }),
        ..Signing::consumer(p)
    };
    measured(p.name.as_str(), "request_token", async {
        let response = inner
            .http(p)
            .send_each(
                || signing.request(Method::POST, &endpoint, "*/*"),
                RetryPolicy::Idempotent,
            )
            .await?;
        let answer = token_answer("request_token", &response)?;
        let (token, secret) = answer.credentials("request_token")?;
        if answer.get("oauth_callback_confirmed") != Some("true") {
            return Err(ProviderError::Misconfigured(
                "request_token answered without oauth_callback_confirmed=true \
                 (OAuth 1.0, not 1.0a)"
                    .into(),
            ));
        }
        Ok(RequestToken {
            oauth_token: token.to_owned(),
            oauth_token_secret: Secret::new(secret.to_owned()),
            callback_confirmed: true,
        })
    })
    .await
}

/// `authorize_url` with `oauth_token` and the provider's `authorize_params`
/// (Twitter's `force_login`, …) appended.
pub(super) fn authorization_url(
    p: &ProviderConfig,
    oauth_token: &str,
) -> Result<String, ProviderError> {
    ensure_oauth1(p)?;
    let mut url = p
        .authorize_url
        .clone()
        .ok_or_else(|| ProviderError::Misconfigured("no authorize_url".into()))?;
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("oauth_token", oauth_token);
        for (k, v) in &p.authorize_params {
            if k != "oauth_token" {
                query.append_pair(k, v);
            }
        }
    }
    Ok(url.into())
}

pub(super) async fn exchange_verifier(
    inner: &Inner,
    p: &ProviderConfig,
    oauth_token: &str,
    token_secret: &Secret,
    verifier: &Secret,
) -> Result<ProviderLogin, ProviderError> {
    ensure_oauth1(p)?;
    let provider = p.name.as_str();
    let access_endpoint = endpoint(p.access_token_url.as_ref(), "access_token_url")?;
    let userinfo_endpoint = p.userinfo_url.as_ref().map(Endpoint::new).transpose()?;

    let signing = Signing {
        token: Some(Credentials::new(
            oauth_token,
            token_secret.expose().as_str(),
        )),
        verifier: Some(verifier.expose().as_str()),
        ..Signing::consumer(p)
    };
    let answer = measured(provider, "access_token", async {
        let response = inner
            .http(p)
            .send_each(
                || signing.request(Method::POST, &access_endpoint, "*/*"),
                RetryPolicy::ConnectOnly,
            )
            .await?;
        token_answer("access_token", &response)
    })
    .await?;
    let (access_token, access_secret) = answer.credentials("access_token")?;

    let raw = match &userinfo_endpoint {
        Some(endpoint) => {
            let signing = Signing {
                token: Some(Credentials::new(access_token, access_secret)),
                ..Signing::consumer(p)
            };
            measured(provider, "userinfo", async {
                let response = inner
                    .http(p)
                    .send_each(
                        || signing.request(Method::GET, endpoint, "application/json"),
                        RetryPolicy::Idempotent,
                    )
                    .await?;
                read_userinfo(&response)
            })
            .await?
        }
        // No userinfo endpoint: what the access-token answer says about the
        // user (`user_id`, `screen_name`) is all there is.
        None => {
            let extra = answer.extra();
            if p.profile.extract(&extra).is_none() {
                return Err(ProviderError::Misconfigured(format!(
                    "no userinfo_url and no `{}` in the access token response",
                    p.profile.uid
                )));
            }
            extra
        }
    };
    login_from(
        p,
        raw,
        ProviderTokens {
            access_token: Secret::new(access_token.to_owned()),
            refresh_token: None,
            expires_at: None,
            token_secret: Some(Secret::new(access_secret.to_owned())),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::oauth2::http::StatusCode;

    fn url(raw: &str) -> Url {
        Url::parse(raw).expect("url")
    }

    fn response(status: u16, body: &str) -> HttpResponse {
        let mut r = http::Response::new(body.as_bytes().to_vec());
        *r.status_mut() = StatusCode::from_u16(status).expect("status");
        r
    }

    #[test]
    fn query_parameters_are_normalized_as_rfc5849_section_3_4_1_3_2_shows() {
        // The RFC's example (its body parameters moved into the query: the
        // base string does not tell them apart).
        let e = Endpoint::new(&url(
            "http://EXAMPLE.com:80/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b&c2&a3=2+q#frag",
        ))
        .expect("endpoint");
        assert_eq!(e.base_uri, "http://example.com/request");
        let pairs: Vec<String> = e.params.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            pairs.join("&"),
            "a2=r%20b&a3=2%20q&a3=a&b5=%3D%253D&c%40=&c2="
        );
    }

    #[test]
    fn base_uri_keeps_a_non_default_port_and_drops_the_query() {
        let e = Endpoint::new(&url(
            "https://api.example:8443/1.1/verify.json?include_email=true",
        ))
        .expect("endpoint");
        assert_eq!(e.base_uri, "https://api.example:8443/1.1/verify.json");
        assert_eq!(
            e.params,
            QueryParams(vec![("include_email".into(), "true".into())])
        );
    }

    #[test]
    fn signature_matches_twitters_published_example() {
        // https://developer.twitter.com/en/docs/authentication/oauth-1-0a/creating-a-signature
        let e = Endpoint::new(&url(
            "https://api.twitter.com/1.1/statuses/update.json?include_entities=true\
             &status=Hello%20Ladies%20%2b%20Gentlemen%2c%20a%20signed%20OAuth%20request%21",
        ))
        .expect("endpoint");
        let signing = Signing {
            consumer: Credentials::new(
                "xvz1evFS4wEEPTGEFPHBog",
                "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
            ),
            token: Some(Credentials::new(
                "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
                "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
            )),
            callback: None,
            verifier: None,
            pinned: Some((
                "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg",
                NonZeroU64::new(1_318_622_958).expect("timestamp"),
            )),
        };
        let header = signing.authorization(&Method::POST, &e);
        assert!(
            header.contains(r#"oauth_signature="hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D""#),
            "{header}"
        );
        assert!(!header.contains("kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw"));
        assert!(!header.contains("LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE"));
    }

    #[test]
    fn oauth_query_parameters_in_a_configured_url_are_misconfigured() {
        let err = Endpoint::new(&url("https://x.example/a?oauth_token=t")).expect_err("oauth_");
        assert!(matches!(err, ProviderError::Misconfigured(_)), "{err:?}");
    }

    #[test]
    fn token_endpoint_statuses_are_classified() {
        assert!(matches!(
            token_answer("access_token", &response(401, "oauth_problem=token_rejected")),
            Err(ProviderError::Refused(r)) if r.ends_with("token_rejected")
        ));
        assert!(matches!(
            token_answer("access_token", &response(503, "")),
            Err(ProviderError::Unavailable(_))
        ));
        assert!(matches!(
            token_answer("access_token", &response(429, "")),
            Err(ProviderError::Unavailable(_))
        ));
        assert!(matches!(
            token_answer("access_token", &response(302, "")),
            Err(ProviderError::Misconfigured(_))
        ));
        let ok = token_answer(
            "access_token",
            &response(200, "oauth_token=t&oauth_token_secret=s&user_id=7"),
        )
        .expect("ok");
        assert_eq!(ok.credentials("access_token").expect("pair"), ("t", "s"));
        assert_eq!(ok.extra(), serde_json::json!({"user_id": "7"}));
    }

    #[test]
    fn a_200_without_token_is_malformed_unless_it_names_a_problem() {
        let answer = token_answer("access_token", &response(200, "oauth_token=t")).expect("200");
        assert!(matches!(
            answer.credentials("access_token"),
            Err(ProviderError::Unavailable(_))
        ));
        let answer =
            token_answer("access_token", &response(200, "oauth_problem=nonce_used")).expect("200");
        assert_eq!(
            answer.credentials("access_token"),
            Err(ProviderError::Refused("nonce_used".into()))
        );
    }

    #[test]
    fn debug_of_a_request_token_shows_neither_token_nor_secret() {
        let t = RequestToken {
            oauth_token: "rt-value-1".into(),
            oauth_token_secret: Secret::new("rts-value-2".into()),
            callback_confirmed: true,
        };
        let shown = format!("{t:?}");
        assert!(!shown.contains("rt-value-1") && !shown.contains("rts-value-2"));
        assert!(shown.contains("callback_confirmed: true"), "{shown}");
    }

    #[test]
    fn encoding_leaves_only_unreserved_characters() {
        assert_eq!(encode("a-._~Z9"), "a-._~Z9");
        assert_eq!(encode("a b+c/é*"), "a%20b%2Bc%2F%C3%A9%2A");
    }
}
