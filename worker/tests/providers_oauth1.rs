//! OAuth 1.0a against wiremock on 127.0.0.1: the signatures (checked here
//! with an independent RFC 5849 base-string builder and HMAC-SHA1), the
//! form-encoded answers, the never-retried verifier exchange, the retried
//! userinfo call and the Twitter profile mapping. Interop with a real
//! provider (oauthlib) is covered by the integration tests crate.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha1::Sha1;
use socialauth_common::catalogue::{Catalogue, Protocol, ProviderConfig};
use socialauth_common::config::Settings;
use socialauth_common::secret::Secret;
use socialauth_worker::providers::{ProviderClient, ProviderError, RequestToken};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use url::Url;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const CONSUMER_KEY: &str = "consumer-key-1";
const CONSUMER_SECRET: &str = "consumer-secret-value";
const CALLBACK: &str = "http://localhost:3000/auth/callback?next=/home";
const REQUEST_TOKEN: &str = "request-token-value";
const REQUEST_SECRET: &str = "request-token-secret-value";
const VERIFIER: &str = "verifier-value-123";
const ACCESS_TOKEN: &str = "1001-access-token-value";
const ACCESS_SECRET: &str = "access-token-secret-value";

const REQUEST_TOKEN_PATH: &str = "/oauth/request_token";
const ACCESS_TOKEN_PATH: &str = "/oauth/access_token";
const USERINFO_PATH: &str = "/1.1/account/verify_credentials.json";

fn client() -> ProviderClient {
    ProviderClient::new(Duration::from_secs(2), 3)
}

/// The `twitter` preset, its endpoints pointed at `server` the way a
/// deployment overrides them (so the preset's profile mapping is the one
/// tested).
fn twitter(server: &MockServer) -> ProviderConfig {
    let base = server.uri();
    let var = |key: &str, value: String| (format!("SOCIALAUTH__PROVIDERS__TWITTER__{key}"), value);
    let settings = Settings::load_with_env(
        None,
        vec![
            var("PRESET", "twitter".into()),
            var("CLIENT_ID", CONSUMER_KEY.into()),
            var("CLIENT_SECRET", CONSUMER_SECRET.into()),
            var("REQUEST_TOKEN_URL", format!("{base}{REQUEST_TOKEN_PATH}")),
            var("AUTHORIZE_URL", format!("{base}/oauth/authenticate")),
            var("ACCESS_TOKEN_URL", format!("{base}{ACCESS_TOKEN_PATH}")),
            var(
                "USERINFO_URL",
                format!("{base}{USERINFO_PATH}?include_email=true"),
            ),
        ],
    )
    .expect("settings");
    let catalogue = Catalogue::from_settings(&settings).expect("catalogue");
    let p = catalogue.get("twitter").expect("twitter").as_ref().clone();
    assert_eq!(p.protocol, Protocol::OAuth1);
    p
}

fn form(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/x-www-form-urlencoded")
        .set_body_string(body)
}

fn request_token_answer() -> ResponseTemplate {
    form(&format!(
        "oauth_token={REQUEST_TOKEN}&oauth_token_secret={REQUEST_SECRET}&oauth_callback_confirmed=true"
    ))
}

fn access_token_answer() -> ResponseTemplate {
    form(&format!(
        "oauth_token={ACCESS_TOKEN}&oauth_token_secret={ACCESS_SECRET}&user_id=1001&screen_name=tw"
    ))
}

fn verify_credentials() -> Value {
    json!({"id": 1001, "id_str": "1001", "screen_name": "tw", "name": "Zoë",
           "email": "tw@example.com",
           "profile_image_url_https": "https://pbs.example/1001.png"})
}

async fn mount_access_token_ok(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(ACCESS_TOKEN_PATH))
        .respond_with(access_token_answer())
        .expect(1)
        .mount(server)
        .await;
}

async fn exchange(
    c: &ProviderClient,
    p: &ProviderConfig,
) -> Result<socialauth_worker::providers::ProviderLogin, ProviderError> {
    c.exchange_verifier(
        p,
        REQUEST_TOKEN,
        &Secret::new(REQUEST_SECRET.into()),
        &Secret::new(VERIFIER.into()),
    )
    .await
}

async fn received(server: &MockServer, p: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == p)
        .collect()
}

fn assert_no_secrets(shown: &str) {
    for secret in [
        CONSUMER_SECRET,
        REQUEST_SECRET,
        VERIFIER,
        ACCESS_TOKEN,
        ACCESS_SECRET,
    ] {
        assert!(!shown.contains(secret), "{secret} leaked into {shown}");
    }
}

// ------------------------------------------- an independent RFC 5849 check --

/// RFC 3986 encoding of all but the unreserved characters (RFC 5849 §3.6).
fn rfc3986(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ascii");
            out.push(u8::from_str_radix(hex, 16).expect("hex"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("utf-8")
}

/// The `oauth_*` parameters of an `Authorization: OAuth …` header, decoded.
fn oauth_params(r: &Request) -> BTreeMap<String, String> {
    let header = r
        .headers
        .get("authorization")
        .expect("an Authorization header")
        .to_str()
        .expect("ascii");
    let rest = header.strip_prefix("OAuth ").expect("OAuth scheme");
    rest.split(',')
        .map(|part| {
            let (k, v) = part.trim().split_once('=').expect("k=v");
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .expect("quoted");
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// The signature base string of RFC 5849 §3.4.1 for what wiremock
/// received: method, base string URI, and the query and `oauth_*`
/// parameters (no body parameters are sent), encoded, sorted, joined.
fn base_string(r: &Request, query: &[(String, String)]) -> String {
    // wiremock sees an origin-form request line: the authority is the Host
    // header's (RFC 5849 §3.4.1.2). Plain HTTP here, lowercase host, port
    // as sent (never 80 in these tests unless the header omits it).
    let host = r
        .headers
        .get("host")
        .expect("a Host header")
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    let base_uri = format!("http://{host}{}", r.url.path());
    let protocol = oauth_params(r);
    let mut params: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (k, v))
        .chain(
            protocol
                .iter()
                .filter(|(k, _)| k.as_str() != "oauth_signature" && k.as_str() != "realm"),
        )
        .map(|(k, v)| (rfc3986(k), rfc3986(v)))
        .collect();
    params.sort();
    let normalized = params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{}&{}&{}",
        r.method.as_str().to_uppercase(),
        rfc3986(&base_uri),
        rfc3986(&normalized)
    )
}

fn hmac_sha1(key: &str, text: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether the request's `oauth_signature` is HMAC-SHA1 over the base string
/// built from `query`, keyed by the consumer secret and `token_secret`.
fn signature_verifies(r: &Request, query: &[(String, String)], token_secret: &str) -> bool {
    let key = format!("{}&{}", rfc3986(CONSUMER_SECRET), rfc3986(token_secret));
    let sent = oauth_params(r)
        .remove("oauth_signature")
        .expect("oauth_signature");
    hmac_sha1(&key, &base_string(r, query)) == sent
}

/// The query of what wiremock received, decoded.
fn query_of(r: &Request) -> Vec<(String, String)> {
    r.url.query_pairs().into_owned().collect()
}

fn assert_signed_hmac_sha1(r: &Request, token_secret: &str) -> BTreeMap<String, String> {
    let params = oauth_params(r);
    assert_eq!(params["oauth_consumer_key"], CONSUMER_KEY);
    assert_eq!(params["oauth_signature_method"], "HMAC-SHA1");
    assert_eq!(params["oauth_version"], "1.0");
    assert!(params["oauth_nonce"].len() >= 8, "{params:?}");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let timestamp: u64 = params["oauth_timestamp"].parse().expect("timestamp");
    assert!(now.abs_diff(timestamp) <= 60, "{timestamp} vs {now}");
    assert!(
        signature_verifies(r, &query_of(r), token_secret),
        "the signature does not verify: {params:?}"
    );
    // The header carries the token and verifier by design; never a secret.
    let header = r.headers.get("authorization").expect("header");
    let header = header.to_str().expect("ascii");
    for secret in [CONSUMER_SECRET, REQUEST_SECRET, ACCESS_SECRET] {
        assert!(!header.contains(secret), "{secret} sent in {header}");
    }
    params
}

#[test]
fn the_test_verifier_agrees_with_rfc5849_section_3_4_1_1() {
    // Keeps the checker honest: the RFC's own base string (body parameters
    // moved to the query, which the base string does not distinguish).
    let url = Url::parse("http://localhost/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b&c2&a3=2+q")
        .expect("url");
    let mut r = Request {
        url,
        method: wiremock::http::Method::POST,
        headers: wiremock::http::HeaderMap::new(),
        body: Vec::new(),
    };
    r.headers
        .insert("host", "Example.com".parse().expect("header"));
    r.headers.insert(
        "authorization",
        "OAuth realm=\"Example\",oauth_consumer_key=\"9djdj82h48djs9d2\",\
         oauth_token=\"kkk9d7dh3k39sjv7\",oauth_signature_method=\"HMAC-SHA1\",\
         oauth_timestamp=\"137131201\",oauth_nonce=\"7d8f3e4a\",\
         oauth_signature=\"bYT5CMsGcbgUdFHObYMEfcx6bsw%3D\""
            .parse()
            .expect("header"),
    );
    assert_eq!(
        base_string(&r, &query_of(&r)),
        "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q\
         %26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9dj\
         dj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1\
         %26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
    );
}

// ------------------------------------------------------------ step 1 --

#[tokio::test]
async fn request_token_is_signed_with_hmac_sha1_by_the_consumer_with_the_callback() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(REQUEST_TOKEN_PATH))
        .respond_with(request_token_answer())
        .expect(1)
        .mount(&server)
        .await;

    client()
        .request_token(&twitter(&server), CALLBACK)
        .await
        .expect("request token");

    let sent = received(&server, REQUEST_TOKEN_PATH).await;
    // No token yet: the key is the consumer secret and an empty token secret.
    let params = assert_signed_hmac_sha1(&sent[0], "");
    assert_eq!(params["oauth_callback"], CALLBACK);
    assert!(!params.contains_key("oauth_token"), "{params:?}");
    assert!(!params.contains_key("oauth_verifier"), "{params:?}");
}

#[tokio::test]
async fn request_token_reads_the_form_encoded_answer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(REQUEST_TOKEN_PATH))
        .respond_with(request_token_answer())
        .mount(&server)
        .await;

    let token = client()
        .request_token(&twitter(&server), CALLBACK)
        .await
        .expect("request token");

    assert_eq!(token.oauth_token, REQUEST_TOKEN);
    assert_eq!(token.oauth_token_secret.expose(), REQUEST_SECRET);
    assert!(token.callback_confirmed);
}

#[tokio::test]
async fn request_token_without_callback_confirmation_is_misconfigured() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(REQUEST_TOKEN_PATH))
        .respond_with(form(&format!(
            "oauth_token={REQUEST_TOKEN}&oauth_token_secret={REQUEST_SECRET}"
        )))
        .mount(&server)
        .await;

    let err = client()
        .request_token(&twitter(&server), CALLBACK)
        .await
        .expect_err("OAuth 1.0 provider");

    assert!(matches!(err, ProviderError::Misconfigured(_)), "{err:?}");
    assert_no_secrets(&format!("{err} {err:?}"));
}

#[tokio::test]
async fn request_token_401_is_refused() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(REQUEST_TOKEN_PATH))
        .respond_with(
            ResponseTemplate::new(401).set_body_string("oauth_problem=consumer_key_unknown"),
        )
        .expect(1)
        .mount(&server)
        .await;

    let err = client()
        .request_token(&twitter(&server), CALLBACK)
        .await
        .expect_err("refused");

    assert!(
        matches!(&err, ProviderError::Refused(r) if r.contains("consumer_key_unknown")),
        "{err:?}"
    );
}

#[tokio::test]
async fn request_token_503_is_retried_and_each_attempt_is_signed_with_a_fresh_nonce() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(REQUEST_TOKEN_PATH))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(REQUEST_TOKEN_PATH))
        .respond_with(request_token_answer())
        .mount(&server)
        .await;

    let token = client()
        .request_token(&twitter(&server), CALLBACK)
        .await
        .expect("request token after a retry");

    assert_eq!(token.oauth_token, REQUEST_TOKEN);
    let sent = received(&server, REQUEST_TOKEN_PATH).await;
    assert_eq!(sent.len(), 2);
    let first = assert_signed_hmac_sha1(&sent[0], "");
    let second = assert_signed_hmac_sha1(&sent[1], "");
    assert_ne!(first["oauth_nonce"], second["oauth_nonce"]);
}

#[tokio::test]
async fn request_token_of_a_provider_that_refuses_connections_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let server = MockServer::start().await;
    let p = ProviderConfig {
        request_token_url: Some(
            Url::parse(&format!("http://127.0.0.1:{port}/oauth/request_token")).expect("url"),
        ),
        ..twitter(&server)
    };

    let err = client()
        .request_token(&p, CALLBACK)
        .await
        .expect_err("nothing listens");

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn authorization_url_is_the_authorize_url_with_the_request_token() {
    let server = MockServer::start().await;
    let url = ProviderClient::oauth1_authorization_url(&twitter(&server), "rt/1+2")
        .expect("authorization url");

    assert_eq!(
        url,
        format!("{}/oauth/authenticate?oauth_token=rt%2F1%2B2", server.uri())
    );
    assert!(received(&server, "/oauth/authenticate").await.is_empty());
}

#[tokio::test]
async fn oauth1_calls_on_an_oauth2_provider_are_misconfigured() {
    let server = MockServer::start().await;
    let p = ProviderConfig {
        protocol: Protocol::OAuth2,
        ..twitter(&server)
    };

    let err = client()
        .request_token(&p, CALLBACK)
        .await
        .expect_err("oauth2");

    assert!(matches!(err, ProviderError::Misconfigured(_)), "{err:?}");
    assert!(
        server
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
}

// ------------------------------------------------------------ step 2 --

#[tokio::test]
async fn verifier_exchange_maps_the_twitter_profile_and_keeps_the_token_pair() {
    let server = MockServer::start().await;
    mount_access_token_ok(&server).await;
    Mock::given(method("GET"))
        .and(path(USERINFO_PATH))
        .and(query_param("include_email", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(verify_credentials()))
        .expect(1)
        .mount(&server)
        .await;

    let login = exchange(&client(), &twitter(&server)).await.expect("login");

    assert_eq!(login.profile.uid, "1001");
    assert_eq!(login.profile.username.as_deref(), Some("tw"));
    assert_eq!(login.profile.name.as_deref(), Some("Zoë"));
    assert_eq!(login.profile.email.as_deref(), Some("tw@example.com"));
    assert_eq!(
        login.profile.picture.as_deref(),
        Some("https://pbs.example/1001.png")
    );
    assert_eq!(login.tokens.access_token.expose(), ACCESS_TOKEN);
    assert_eq!(
        login
            .tokens
            .token_secret
            .as_ref()
            .map(|s| s.expose().as_str()),
        Some(ACCESS_SECRET)
    );
    assert!(login.tokens.refresh_token.is_none());
    assert_eq!(login.tokens.expires_at, None);
    assert_eq!(login.raw["screen_name"], "tw");
}

#[tokio::test]
async fn access_token_is_signed_with_the_request_token_its_secret_and_the_verifier() {
    let server = MockServer::start().await;
    mount_access_token_ok(&server).await;
    Mock::given(method("GET"))
        .and(path(USERINFO_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(verify_credentials()))
        .mount(&server)
        .await;

    exchange(&client(), &twitter(&server)).await.expect("login");

    let sent = received(&server, ACCESS_TOKEN_PATH).await;
    let params = assert_signed_hmac_sha1(&sent[0], REQUEST_SECRET);
    assert_eq!(params["oauth_token"], REQUEST_TOKEN);
    assert_eq!(params["oauth_verifier"], VERIFIER);
    assert!(!params.contains_key("oauth_callback"), "{params:?}");
}

#[tokio::test]
async fn userinfo_is_signed_with_the_access_token_and_the_signature_covers_include_email() {
    let server = MockServer::start().await;
    mount_access_token_ok(&server).await;
    Mock::given(method("GET"))
        .and(path(USERINFO_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(verify_credentials()))
        .mount(&server)
        .await;

    exchange(&client(), &twitter(&server)).await.expect("login");

    let sent = received(&server, USERINFO_PATH).await;
    let userinfo = &sent[0];
    assert_eq!(userinfo.url.query(), Some("include_email=true"));
    let params = assert_signed_hmac_sha1(userinfo, ACCESS_SECRET);
    assert_eq!(params["oauth_token"], ACCESS_TOKEN);
    assert!(!params.contains_key("oauth_verifier"), "{params:?}");
    // Signed over the query: without include_email=true in the base string
    // the same signature does not verify.
    assert!(
        !signature_verifies(userinfo, &[], ACCESS_SECRET),
        "the signature ignores the query"
    );
}

#[tokio::test]
async fn access_token_401_is_refused_and_sent_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(ACCESS_TOKEN_PATH))
        .respond_with(ResponseTemplate::new(401).set_body_string("Invalid request token."))
        .expect(1)
        .mount(&server)
        .await;

    let err = exchange(&client(), &twitter(&server))
        .await
        .expect_err("refused");

    assert!(matches!(err, ProviderError::Refused(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert!(received(&server, USERINFO_PATH).await.is_empty());
    assert_no_secrets(&format!("{err} {err:?}"));
}

#[tokio::test]
async fn access_token_500_is_unavailable_and_sent_exactly_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(ACCESS_TOKEN_PATH))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;

    let err = exchange(&client(), &twitter(&server))
        .await
        .expect_err("500");

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert_eq!(received(&server, ACCESS_TOKEN_PATH).await.len(), 1);
    assert!(received(&server, USERINFO_PATH).await.is_empty());
}

#[tokio::test]
async fn access_token_timeout_is_unavailable_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(ACCESS_TOKEN_PATH))
        .respond_with(access_token_answer().set_delay(Duration::from_secs(10)))
        .mount(&server)
        .await;
    let c = ProviderClient::new(Duration::from_millis(300), 3);

    let err = exchange(&c, &twitter(&server)).await.expect_err("timeout");

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert_eq!(received(&server, ACCESS_TOKEN_PATH).await.len(), 1);
}

#[tokio::test]
async fn userinfo_503_then_200_succeeds_after_a_retry() {
    let server = MockServer::start().await;
    mount_access_token_ok(&server).await;
    Mock::given(method("GET"))
        .and(path(USERINFO_PATH))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(USERINFO_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(verify_credentials()))
        .mount(&server)
        .await;

    let login = exchange(&client(), &twitter(&server))
        .await
        .expect("login after a retry");

    assert_eq!(login.profile.uid, "1001");
    let sent = received(&server, USERINFO_PATH).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(received(&server, ACCESS_TOKEN_PATH).await.len(), 1);
    let first = assert_signed_hmac_sha1(&sent[0], ACCESS_SECRET);
    let second = assert_signed_hmac_sha1(&sent[1], ACCESS_SECRET);
    assert_ne!(first["oauth_nonce"], second["oauth_nonce"]);
}

#[tokio::test]
async fn userinfo_401_is_refused() {
    let server = MockServer::start().await;
    mount_access_token_ok(&server).await;
    Mock::given(method("GET"))
        .and(path(USERINFO_PATH))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"errors": [{"code": 89, "message": "Invalid or expired token."}]}),
        ))
        .expect(1)
        .mount(&server)
        .await;

    let err = exchange(&client(), &twitter(&server))
        .await
        .expect_err("refused");

    assert!(matches!(err, ProviderError::Refused(_)), "{err:?}");
}

#[tokio::test]
async fn without_userinfo_url_the_profile_comes_from_the_access_token_answer() {
    let server = MockServer::start().await;
    mount_access_token_ok(&server).await;
    let mut p = ProviderConfig {
        userinfo_url: None,
        ..twitter(&server)
    };
    p.profile.uid = "user_id".into();

    let login = exchange(&client(), &p).await.expect("login");

    assert_eq!(login.profile.uid, "1001");
    assert_eq!(login.profile.username.as_deref(), Some("tw"));
    assert!(login.raw.get("oauth_token").is_none(), "{:?}", login.raw);
}

#[tokio::test]
async fn without_userinfo_url_or_uid_in_the_access_token_answer_is_misconfigured() {
    let server = MockServer::start().await;
    mount_access_token_ok(&server).await;
    let p = ProviderConfig {
        userinfo_url: None,
        ..twitter(&server)
    };

    let err = exchange(&client(), &p).await.expect_err("no uid");

    assert!(matches!(err, ProviderError::Misconfigured(_)), "{err:?}");
}

#[tokio::test]
async fn debug_of_request_token_and_login_hides_tokens_and_secrets() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(REQUEST_TOKEN_PATH))
        .respond_with(request_token_answer())
        .mount(&server)
        .await;
    mount_access_token_ok(&server).await;
    Mock::given(method("GET"))
        .and(path(USERINFO_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(verify_credentials()))
        .mount(&server)
        .await;
    let c = client();
    let p = twitter(&server);

    let token: RequestToken = c.request_token(&p, CALLBACK).await.expect("step 1");
    let login = exchange(&c, &p).await.expect("step 2");

    let shown = format!("{token:?} {login:?} {p:?} {c:?}");
    assert_no_secrets(&shown);
    assert!(!shown.contains(REQUEST_TOKEN), "{shown}");
}
