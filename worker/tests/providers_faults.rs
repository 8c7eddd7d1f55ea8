//! Provider faults a real provider will not produce on demand, against
//! wiremock on 127.0.0.1: retries, the never-retried code exchange,
//! refusals, malformed answers, timeouts, and OIDC discovery, caching and
//! id_token checks with locally signed tokens.

use openidconnect::core::{
    CoreGenderClaim, CoreHmacKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreRsaPrivateSigningKey,
};
use openidconnect::{AdditionalClaims, IdToken, IdTokenClaims, JsonWebKeyId, PrivateSigningKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use socialauth_common::catalogue::{
    DEFAULT_ID_TOKEN_ALGS, ProfileMapping, Protocol, ProviderConfig, RequestBudget,
};
use socialauth_common::secret::Secret;
use socialauth_common::types::ProviderName;
use socialauth_worker::providers::{BreakerSettings, ProviderClient, ProviderError, ProviderLogin};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use url::Url;
use wiremock::matchers::{body_string_contains, header, header_exists, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const CLIENT_ID: &str = "client-1";
const CLIENT_SECRET: &str = "client-secret-value";
const CODE: &str = "code-value-123";
const ACCESS_TOKEN: &str = "access-token-value-456";
const REFRESH_TOKEN: &str = "refresh-token-value-789";
const REDIRECT_URI: &str = "http://localhost:3000/auth/callback";

fn client() -> ProviderClient {
    ProviderClient::new(Duration::from_secs(2), 3)
}

fn url(server: &MockServer, p: &str) -> Url {
    Url::parse(&format!("{}{p}", server.uri())).expect("url")
}

fn provider(name: &str, protocol: Protocol) -> ProviderConfig {
    ProviderConfig {
        name: ProviderName::parse(name).expect("name"),
        protocol,
        issuer: None,
        authorize_url: None,
        token_url: None,
        userinfo_url: None,
        request_token_url: None,
        access_token_url: None,
        revocation_url: None,
        emails_url: None,
        form_post_url: None,
        read_userinfo: true,
        minted_secret: None,
        client_id: CLIENT_ID.into(),
        client_secret: Secret::new(CLIENT_SECRET.into()),
        scopes: vec![],
        pkce: true,
        require_pkce: false,
        id_token_signing_algs: DEFAULT_ID_TOKEN_ALGS.map(String::from).to_vec(),
        tenant: None,
        profile: ProfileMapping::default(),
        allowed_email_domains: vec![],
        authorize_params: BTreeMap::new(),
        linking: Default::default(),
        token_login: Default::default(),
        token_endpoint_auth_method: None,
        refresh: Default::default(),
        budget: None,
        allowed_redirect_uris: None,
        require_iss: false,
    }
}

/// A GitHub-shaped OAuth2 provider on `server`.
fn github_like(server: &MockServer) -> ProviderConfig {
    ProviderConfig {
        authorize_url: Some(url(server, "/login/oauth/authorize")),
        token_url: Some(url(server, "/login/oauth/access_token")),
        userinfo_url: Some(url(server, "/user")),
        profile: ProfileMapping {
            uid: "id".into(),
            username: "login".into(),
            picture: "avatar_url".into(),
            ..ProfileMapping::default()
        },
        ..provider("github", Protocol::OAuth2)
    }
}

fn token_body() -> Value {
    json!({
        "access_token": ACCESS_TOKEN,
        "refresh_token": REFRESH_TOKEN,
        "token_type": "bearer",
        "expires_in": 3600,
        "scope": "read:user"
    })
}

async fn mount_token_ok(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/login/oauth/access_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body()))
        .mount(server)
        .await;
}

fn octocat() -> Value {
    json!({"id": 42, "login": "octo", "name": "Octo Cat", "email": "octo@example.com",
           "avatar_url": "https://avatars.example/42"})
}

async fn exchange(c: &ProviderClient, p: &ProviderConfig) -> Result<ProviderLogin, ProviderError> {
    c.exchange_code(
        p,
        &Secret::new(CODE.into()),
        REDIRECT_URI,
        Some(&Secret::new("pkce-verifier-value".into())),
        None,
    )
    .await
}

async fn requests_to(server: &MockServer, p: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r: &&Request| r.url.path() == p)
        .count()
}

fn assert_no_secrets(shown: &str) {
    for secret in [
        CLIENT_SECRET,
        CODE,
        ACCESS_TOKEN,
        REFRESH_TOKEN,
        "pkce-verifier-value",
    ] {
        assert!(!shown.contains(secret), "{secret} leaked into {shown}");
    }
}

// ---------------------------------------------------------------- OAuth2 --

#[tokio::test]
async fn oauth2_login_extracts_a_github_shaped_profile_with_a_custom_mapping() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/login/oauth/access_token"))
        .and(header("accept", "application/json"))
        .and(body_string_contains(format!("code={CODE}")))
        .and(body_string_contains("code_verifier=pkce-verifier-value"))
        .and(body_string_contains(format!(
            "client_secret={CLIENT_SECRET}"
        )))
        .and(body_string_contains(
            "redirect_uri=http%3A%2F%2Flocalhost%3A3000",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .and(header(
            "authorization",
            format!("Bearer {ACCESS_TOKEN}").as_str(),
        ))
        .and(header("accept", "application/json"))
        .and(header("user-agent", "socialauth"))
        .respond_with(ResponseTemplate::new(200).set_body_json(octocat()))
        .expect(1)
        .mount(&server)
        .await;

    let login = exchange(&client(), &github_like(&server))
        .await
        .expect("login");

    assert_eq!(login.profile.uid, "42");
    assert_eq!(login.profile.username.as_deref(), Some("octo"));
    assert_eq!(login.profile.email.as_deref(), Some("octo@example.com"));
    assert_eq!(
        login.profile.picture.as_deref(),
        Some("https://avatars.example/42")
    );
    assert_eq!(login.tokens.access_token.expose(), ACCESS_TOKEN);
    assert_eq!(
        login
            .tokens
            .refresh_token
            .as_ref()
            .map(|t| t.expose().as_str()),
        Some(REFRESH_TOKEN)
    );
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let expires_at = login.tokens.expires_at.expect("expiry");
    assert!((now_ms + 3_590_000..=now_ms + 3_610_000).contains(&expires_at));
    assert_eq!(login.raw["login"], "octo");
}

/// GitHub's private addresses: `/user/emails` read with the user's token,
/// the primary one taken with its verification; a list the token may not
/// read leaves the public (unverified) address.
#[tokio::test]
async fn a_provider_listing_addresses_apart_gives_the_primary_verified_one() {
    let server = MockServer::start().await;
    mount_token_ok(&server).await;
    let public = json!({"id": 42, "login": "octo", "email": null});
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(public))
        .mount(&server)
        .await;
    let emails = Mock::given(method("GET"))
        .and(path("/user/emails"))
        .and(header(
            "authorization",
            format!("Bearer {ACCESS_TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"email": "old@example.com", "primary": false, "verified": true, "visibility": null},
            {"email": "octo@example.com", "primary": true, "verified": true, "visibility": "private"},
        ])))
        .expect(1)
        .mount_as_scoped(&server)
        .await;
    let github = ProviderConfig {
        emails_url: Some(url(&server, "/user/emails")),
        profile: ProfileMapping {
            email: "emails[primary=true].email | email".into(),
            email_verified: "emails[primary=true].verified".into(),
            ..github_like(&server).profile
        },
        ..github_like(&server)
    };
    let login = exchange(&client(), &github).await.expect("login");
    assert_eq!(login.profile.email.as_deref(), Some("octo@example.com"));
    assert!(login.profile.email_verified);
    assert_eq!(login.raw["emails"][1]["primary"], true);
    drop(emails);

    // The token may not read the list (the scope was not granted).
    Mock::given(method("GET"))
        .and(path("/user/emails"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .mount(&server)
        .await;
    let login = exchange(&client(), &github).await.expect("login");
    assert_eq!(login.profile.uid, "42");
    assert_eq!(login.profile.email, None);
    assert!(!login.profile.email_verified);
}

/// A provider whose client secret is minted (Sign in with Apple's way):
/// the code exchange sends an ES256 JWT for this client, not a fixed
/// secret.
#[tokio::test]
async fn a_minted_client_secret_goes_to_the_token_endpoint() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    use base64::Engine;
    let server = MockServer::start().await;
    mount_token_ok(&server).await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(octocat()))
        .mount(&server)
        .await;
    let key = EcdsaKeyPair::generate_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .expect("key");
    let p = ProviderConfig {
        client_secret: Secret::new(String::new()),
        minted_secret: Some(socialauth_common::catalogue::SecretMinting {
            team_id: "TEAM123456".into(),
            key_id: "KEY1234567".into(),
            key: Secret::new(key.as_ref().to_vec()),
            audience: "https://appleid.apple.com".into(),
            ttl_secs: 3600,
        }),
        ..github_like(&server)
    };
    exchange(&client(), &p).await.expect("login");
    let requests = server.received_requests().await.unwrap_or_default();
    let token_request = requests
        .iter()
        .find(|r| r.url.path() == "/login/oauth/access_token")
        .expect("a token request");
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&token_request.body)
            .into_owned()
            .collect();
    let secret = form.get("client_secret").expect("client_secret");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(secret.split('.').nth(1).expect("claims"))
            .expect("base64url"),
    )
    .expect("json");
    assert_eq!(claims["iss"], "TEAM123456");
    assert_eq!(claims["sub"], p.client_id.as_str());
    assert_eq!(claims["aud"], "https://appleid.apple.com");
}

#[tokio::test]
async fn oauth2_discover_returns_the_configured_authorize_url() {
    let server = MockServer::start().await;
    let found = client()
        .discover(&github_like(&server))
        .await
        .expect("discover");
    assert_eq!(
        found.authorization_endpoint,
        url(&server, "/login/oauth/authorize").as_str()
    );
    assert_eq!(requests_to(&server, "/login/oauth/authorize").await, 0);
}

#[tokio::test]
async fn userinfo_503_then_200_succeeds_after_a_retry() {
    let server = MockServer::start().await;
    mount_token_ok(&server).await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(octocat()))
        .mount(&server)
        .await;

    let login = exchange(&client(), &github_like(&server))
        .await
        .expect("login");

    assert_eq!(login.profile.uid, "42");
    assert_eq!(requests_to(&server, "/user").await, 2);
    assert_eq!(requests_to(&server, "/login/oauth/access_token").await, 1);
}

#[tokio::test]
async fn userinfo_429_is_retried_after_the_retry_after_delay() {
    let server = MockServer::start().await;
    mount_token_ok(&server).await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(octocat()))
        .mount(&server)
        .await;

    let started = Instant::now();
    let login = exchange(&client(), &github_like(&server))
        .await
        .expect("login");

    assert_eq!(login.profile.uid, "42");
    assert_eq!(requests_to(&server, "/user").await, 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn userinfo_503_on_every_attempt_is_unavailable_after_max_attempts() {
    let server = MockServer::start().await;
    mount_token_ok(&server).await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;

    let err = exchange(&client(), &github_like(&server))
        .await
        .expect_err("down");

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(requests_to(&server, "/user").await, 3);
}

#[tokio::test]
async fn token_endpoint_500_is_unavailable_and_called_exactly_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/login/oauth/access_token"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error": "server_error"})))
        .expect(1)
        .mount(&server)
        .await;

    let err = exchange(&client(), &github_like(&server))
        .await
        .expect_err("500");

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert_eq!(requests_to(&server, "/login/oauth/access_token").await, 1);
    assert_eq!(requests_to(&server, "/user").await, 0);
}

#[tokio::test]
async fn token_endpoint_429_is_unavailable_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/login/oauth/access_token"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .expect(1)
        .mount(&server)
        .await;

    let err = exchange(&client(), &github_like(&server))
        .await
        .expect_err("429");

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
}

/// A provider that keeps answering 429 with `Retry-After: 40`: its breaker
/// opens after two refusals and stays open for the 40 s it asked for (not
/// the configured 1 s); the calls meanwhile fail without a request, and a
/// provider refusing a code (400) is an answer, not a failure.
#[tokio::test]
async fn a_provider_asking_to_retry_after_a_while_is_left_alone_that_long() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/login/oauth/access_token"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "40"))
        .expect(2)
        .mount(&server)
        .await;
    let c = ProviderClient::with_breaker(
        Duration::from_secs(2),
        3,
        BreakerSettings {
            failures: 2,
            open_for: Duration::from_secs(1),
            budget_wait: Duration::ZERO,
        },
    )
    .expect("client");
    let p = github_like(&server);
    for _ in 0..2 {
        let err = exchange(&c, &p).await.expect_err("429");
        assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    }
    let paused = c.paused_for(&p).expect("open");
    assert!(paused > Duration::from_secs(35), "{paused:?}");
    let started = Instant::now();
    let err = exchange(&c, &p).await.expect_err("open");
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(50));
    assert_eq!(requests_to(&server, "/login/oauth/access_token").await, 2);

    // Refusals are answers: another provider refusing codes stays closed.
    let refusing = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/login/oauth/access_token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"})))
        .mount(&refusing)
        .await;
    let q = ProviderConfig {
        name: ProviderName::parse("other").expect("name"),
        ..github_like(&refusing)
    };
    for _ in 0..5 {
        let err = exchange(&c, &q).await.expect_err("refused");
        assert!(matches!(err, ProviderError::Refused(_)), "{err:?}");
    }
    assert_eq!(c.paused_for(&q), None);
    assert_eq!(requests_to(&refusing, "/login/oauth/access_token").await, 5);
}

/// A budget of 2 requests a second with a burst of 2: the third call in a
/// row waits for its token within the allowed wait, a fourth with no wait
/// allowed fails at once without a request.
#[tokio::test]
async fn a_provider_budget_spaces_requests_and_refuses_past_its_wait() {
    let server = MockServer::start().await;
    mount_token_ok(&server).await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(octocat()))
        .mount(&server)
        .await;
    let budgeted = |wait: Duration| {
        ProviderClient::with_breaker(
            Duration::from_secs(2),
            3,
            BreakerSettings {
                failures: 5,
                open_for: Duration::from_secs(30),
                budget_wait: wait,
            },
        )
        .expect("client")
    };
    let p = ProviderConfig {
        budget: Some(RequestBudget {
            per_second: 4,
            burst: 2,
        }),
        ..github_like(&server)
    };
    // One login is two requests (token, userinfo): the burst.
    let c = budgeted(Duration::from_secs(1));
    exchange(&c, &p).await.expect("first");
    let started = Instant::now();
    exchange(&c, &p)
        .await
        .expect("second, after waiting for tokens");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );

    let c = budgeted(Duration::ZERO);
    exchange(&c, &p).await.expect("first");
    let err = exchange(&c, &p).await.expect_err("over budget");
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert_eq!(requests_to(&server, "/login/oauth/access_token").await, 3);
}

#[tokio::test]
async fn token_endpoint_timeout_is_unavailable_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/login/oauth/access_token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(token_body())
                .set_delay(Duration::from_secs(10)),
        )
        .mount(&server)
        .await;
    let c = ProviderClient::new(Duration::from_millis(300), 3);

    let err = exchange(&c, &github_like(&server))
        .await
        .expect_err("timeout");

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert_eq!(requests_to(&server, "/login/oauth/access_token").await, 1);
}

#[tokio::test]
async fn token_endpoint_invalid_grant_is_refused() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/login/oauth/access_token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": "invalid_grant", "error_description": "code already used"}),
        ))
        .expect(1)
        .mount(&server)
        .await;

    let err = exchange(&client(), &github_like(&server))
        .await
        .expect_err("refused");

    assert_eq!(err, ProviderError::Refused("invalid_grant".into()));
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn token_endpoint_401_with_an_html_body_is_refused() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/login/oauth/access_token"))
        .respond_with(ResponseTemplate::new(401).set_body_string("<html>nope</html>"))
        .mount(&server)
        .await;

    let err = exchange(&client(), &github_like(&server))
        .await
        .expect_err("refused");

    assert!(matches!(err, ProviderError::Refused(_)), "{err:?}");
}

#[tokio::test]
async fn github_style_error_with_status_200_is_refused() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/login/oauth/access_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "error": "bad_verification_code",
            "error_description": "The code passed is incorrect or expired."
        })))
        .mount(&server)
        .await;

    let err = exchange(&client(), &github_like(&server))
        .await
        .expect_err("refused");

    assert_eq!(err, ProviderError::Refused("bad_verification_code".into()));
}

#[tokio::test]
async fn token_endpoint_that_refuses_connections_is_unavailable() {
    // A port that was free a moment ago: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let server = MockServer::start().await;
    let p = ProviderConfig {
        token_url: Some(Url::parse(&format!("http://127.0.0.1:{port}/token")).expect("url")),
        ..github_like(&server)
    };

    let err = exchange(&client(), &p)
        .await
        .expect_err("refused connection");

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn malformed_userinfo_json_is_unavailable() {
    let server = MockServer::start().await;
    mount_token_ok(&server).await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/json")
                .set_body_string("{\"id\": 42, \"login\": "),
        )
        .mount(&server)
        .await;

    let err = exchange(&client(), &github_like(&server))
        .await
        .expect_err("malformed");

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn userinfo_401_is_refused() {
    let server = MockServer::start().await;
    mount_token_ok(&server).await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials"})),
        )
        .expect(1)
        .mount(&server)
        .await;

    let err = exchange(&client(), &github_like(&server))
        .await
        .expect_err("refused");

    assert!(matches!(err, ProviderError::Refused(_)), "{err:?}");
}

#[tokio::test]
async fn userinfo_that_never_answers_within_the_timeout_is_unavailable() {
    let server = MockServer::start().await;
    mount_token_ok(&server).await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(octocat())
                .set_delay(Duration::from_secs(30)),
        )
        .mount(&server)
        .await;
    let c = ProviderClient::new(Duration::from_millis(300), 2);

    let started = Instant::now();
    let err = exchange(&c, &github_like(&server))
        .await
        .expect_err("timeout");

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn userinfo_without_the_mapped_uid_is_refused_as_no_subject() {
    let server = MockServer::start().await;
    mount_token_ok(&server).await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"login": "octo"})))
        .mount(&server)
        .await;

    let err = exchange(&client(), &github_like(&server))
        .await
        .expect_err("no uid");

    assert_eq!(err, ProviderError::Refused("no subject".into()));
}

#[tokio::test]
async fn debug_of_logins_and_errors_contains_no_secret() {
    let server = MockServer::start().await;
    mount_token_ok(&server).await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(octocat()))
        .mount(&server)
        .await;
    let c = client();
    let p = github_like(&server);

    let login = exchange(&c, &p).await.expect("login");
    let shown = format!("{login:?} {c:?}");
    assert_no_secrets(&shown);
    assert!(shown.contains("[redacted]"), "{shown}");

    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/login/oauth/access_token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_grant",
            "error_description": format!("code {CODE} was used by client {CLIENT_SECRET}")
        })))
        .mount(&server)
        .await;
    let err = exchange(&c, &p).await.expect_err("refused");
    assert_no_secrets(&format!("{err:?} {err}"));

    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/login/oauth/access_token"))
        .respond_with(
            // A token response the crate cannot parse (a token_type that is
            // not a string) still carries the token in its body.
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": ACCESS_TOKEN, "token_type": 42})),
        )
        .mount(&server)
        .await;
    let err = exchange(&c, &p).await.expect_err("malformed");
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert_no_secrets(&format!("{err:?} {err}"));
}

// ------------------------------------------------------------------ OIDC --

// Test-only RSA keys (PKCS#1), generated for these tests and used nowhere
// else: the identity provider's signing keys before and after a rotation.
const KEY_A: &str = "\
-----BEGIN RSA PRIVATE KEY-----\n\
MIIEpAIBAAKCAQEA0mYqHQHYLUFmfScHG/eZ7PFzKjKjDOoYXphzMcehuJJOt6O4\n\
SlZE8Xz6Pbw2NnUhe2gbgUlKSaBRE/0War6d/EGn5c7sztWaLCye449NaC9UD4AV\n\
RMLd2tGrQKCJZE76w2w1SD44Xu/VYeSKgYFCLXpRduS18Vsb8IanDkNrw5ej5rAt\n\
XKYOPmFJNLxWsf+oDToby84aTXke0w7H8xWO5D6itD6F+HLLURyVUvBVV4iaKGVo\n\
XD7T28AQpWb7yCJPhCOPHXJpW5U5NQeIBnsoRHh8wpBZFu641/CpwfJk9qJQJUCF\n\
0oDjQKzxlEzqfoYzSCTeCvBdXHqtnZa3QEcLOwIDAQABAoIBAADQgW6hHUxrjOSE\n\
iQ81waqvpcth7Jl2GVSm0KDxzcsqBQdj9fVfteuc/4qYPTni8TEjmyINSq4HSPKq\n\
KT/BIvM6vW+/zp3fjzW6Xhd+bGvJulCtciehsEjF3mmLiL/Swgvz0fvIgq2NzlMo\n\
ydQStoYri4yWYES7a0IraBK/j93vD6VuP0ZL8VihDcGb3PTRGX+bze1yddImozBD\n\
/76NR7v2Uy0cFLCi8QJbgQQOjD6FWpUiaOQe1xwBg7h2jh/6VZOmFHkeg3yTFNAZ\n\
c7edj33enUR+e3cY9w4Kle5GQBoQLzb9wvySatHb5e53cRAbaGbPcRspzWLpWz4u\n\
h8ORWH0CgYEA774SiN+J3thZZv7OTl8TqbgryW2hCMsVihokij5F73BjXp3nNLjb\n\
D7I7eSZymw1xQKEsPsk6z05SHJ58wy8wphlY07+WDTH2uIR/QbG177yFLZMF+F7X\n\
tOprKBo1o1FVTmk6fFJ60Jlj1jHLGD0aqfai6u3XYR9c0U/EnGgzEQ8CgYEA4Kqw\n\
6Q+b4787di1vII/QILuszzz9eQc5XLdQJYnMz753u7pBuUQAOdsbdgUsmQWT3WzL\n\
JgMXXJjooQDikHQnfaQMs+aAbaGhI5J/YM0spJJWdofiaM/fkJXK9VWeTn9fslhz\n\
2IbH0mZicbIMb+xipdtNXFqkY1nuyHzexeH1CxUCgYEAmLRo+eXo25jS2VfT8Pd+\n\
fsxgl5zMxd0VizG7tJKV2T2tDcdmTZ6xaf4NA84JkdmuGYyPsi5a11D73F7W+TxF\n\
sIbUnYua+CyrCjzbEe0wBdP+wFi1pM5Ed2gZeSG4qJ5Vx+we5LFkqRoLDZQJ2RaS\n\
tU/z1dBJMAPaCzjT8wwr+uECgYBqSNYAq9231JQwyDW2VdLEaYTLVbMkOoKslhxY\n\
ZeR6s0S5jtfg6Yah2EIZh0Ed80GMkxdYGEZJDB2hbWXBqPG1wpIv2XAQbVJqHbgc\n\
93OTN5en44j8xLqjD/pALg0CXcfL+4RyfvCxXLZdyzmPCWlxxVnHwynZxoXsWwaY\n\
3tiqMQKBgQCE84hhDwUaUZAXJoPZ8oxmPU0spKL8MWWlvCLwjLCIW2fMp6+gIpDB\n\
vAzCfIxIv4/EYddqU7T4931XgbW9TzF74yAvchgdLqoklnwJ/qkFepp4X0xBJQgw\n\
v+wi/UokMSrUypfaz743NkEwRt/Rxs68pFfHz0rYiNMqDOKNeawRlQ==\n\
-----END RSA PRIVATE KEY-----\n";
const KEY_B: &str = "\
-----BEGIN RSA PRIVATE KEY-----\n\
MIIEpQIBAAKCAQEAxD+J4RAGuSHnv4r48EsZovr48GaHlHvSyR2BU176bbGVwgz+\n\
MveTwtxMv48j3ezQTV0vQFznHpeXIL9+0qJElRyrY5Tc4Jyx/BD7MCq+wOHGLg41\n\
vF+aCvkwB5LujbelnI9uD0ZuFT0n6lv+tq6hXO8CsNoeIjgFV8tghF9JroP56GxX\n\
lmSWL382C1tkh4x1XGodqpn7aSh0kRvNUUWgp9nVLj1ZoIy8dI7ib1RNxeryVBo2\n\
hRq/3Uw55/QDy7KUWxqQIbm0vF77KrB9jEKkcrFyx9wBfxLTJ6BCgxSvasr1x/rk\n\
Y+kDRpp+xrCp+Qa2UJCERKFqDW7i2uUbTRkQuwIDAQABAoIBAEqk/k04Os5tGoht\n\
FD3V2uT2f/x0iypLpMOxcNDkxe02SEeciI2bRL0v7RNJnzNY0WwzvvbEv3YP48Bl\n\
hhgY92weEQSaCR94CmzdiqVqBM85sRcweXjyhhWZbY7b8Ne/nAL+PTcbK2Dxt355\n\
Slty9dZy5Lue4ypR05putYHz+oMhbTjrlyrafWDm5znC5hAEKRBwWdT4CwN8re6N\n\
K7cwH60BYIk4i6TnXEwMLu9LgUu60cgbaTiogrFXxsJdSgQ+LQjlR8zhkYMKxY4T\n\
kzci4xNRbtm4O+RNSnKpN54bQjTVE0Y5qY91cmO86P6Qu9Ip1pRU9dlo+DoxRr7z\n\
/FkSJJECgYEA+pW2KU8r1ykRInZ/nSyoe3ERFBHd6XCJJdYFO1y/7W6+FO68MlTn\n\
HMROdaZGRSe/RzFeJb/akeZ6MM6/HU+RKrMfF8UAbs6XaCPI03B0CsA00F0MGF7P\n\
YW13my+VJ4DbrVuajiTU0RBSf4OjtsHSTHZmJoIFoPsNoIelgSwCHbECgYEAyH05\n\
rzdFZWwg9Zov769zGvoLc55af0b9MIkIPbVdYI9uNjX+bPn7StCXZmCTaAmBB+NS\n\
Zsd7ZDnd9nz40XUJiaqWbHvJOSWeXaa+FEKTDILi5jI8LG298IyZsLRMGg1HyBq+\n\
Ekec7fj6Uwm0+FIexcZ5B+qZ1oDFD7vf5mcAVCsCgYEAyV4vsYiOyWuV+mTRbkPp\n\
7LDSsZceBi7J957CO47wKOQaWgXzNFsoEeTqy/5fb8leG97fMmS3RxG4Vap+yBYd\n\
qPuiW96S13irESPYiZlPlygYCO0NADSIYFmwiQO2z7TsU6ZOUDXm005TjWcC06Vz\n\
0sA+nGlWDqRQshTvehscZDECgYEAxQOReOX2cskDxnWC36TolrzaHf6hbWtECLrP\n\
91vO68Fmiy0Z3Nr2HrnF3VvP3q9gNXEkG02xqnbW8I40MBgzjC2u7eHihh66dcsS\n\
BHS7bdL8xzrcOMiKmuR/bs5t7jfYrwHgf7QRuSQuUQU76b1A8har/qSCEfCuNVzo\n\
k8/p2csCgYEAjFqg7l8+zY3gY1YT5y5Q9T8dn1sgkWuqeh59PTyIC8xJUTGFwBBN\n\
hIwBzuc3y/IzTcLueuHNEeUaVrbAHaHpEGqfmpqwnYsEDxH+N/5POXg8cuId3Yjn\n\
FAejzGW0YW0BMpLqeNAN9ew9m0tLWclzXMYWDEjgCShA3Gixg36xq2U=\n\
-----END RSA PRIVATE KEY-----\n";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CustomClaims {
    /// Every non-standard claim (`hd`, `tid`, …), kept as signed.
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}
impl AdditionalClaims for CustomClaims {}

fn signing_key(pem: &str, kid: &str) -> CoreRsaPrivateSigningKey {
    CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new(kid.into()))).expect("pem")
}

fn jwks(keys: &[&CoreRsaPrivateSigningKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.as_verification_key()).collect::<Vec<_>>()})
}

struct IdTokenSpec<'a> {
    issuer: String,
    audience: &'a str,
    subject: &'a str,
    nonce: &'a str,
    expires_in_secs: i64,
    /// `iat` relative to now.
    issued_in_secs: i64,
    /// Claims added to (or replacing) the standard ones: `azp`, `tid`, …
    extra: Value,
}

fn claims_of(spec: &IdTokenSpec<'_>) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let mut claims = json!({
        "iss": spec.issuer,
        "aud": [spec.audience],
        "exp": now + spec.expires_in_secs,
        "iat": now + spec.issued_in_secs,
        "sub": spec.subject,
        "nonce": spec.nonce,
        "email": "ada@example.com",
        "email_verified": true,
        "name": "Ada from the id_token",
        "hd": "example.com",
    });
    if let (Some(doc), Some(extra)) = (claims.as_object_mut(), spec.extra.as_object()) {
        doc.extend(extra.clone());
    }
    claims
}

fn signed<K>(spec: &IdTokenSpec<'_>, key: &K, alg: CoreJwsSigningAlgorithm) -> String
where
    K: PrivateSigningKey,
    K::VerificationKey: openidconnect::JsonWebKey<SigningAlgorithm = CoreJwsSigningAlgorithm>,
{
    let claims: IdTokenClaims<CustomClaims, CoreGenderClaim> =
        serde_json::from_value(claims_of(spec)).expect("claims");
    IdToken::<
        CustomClaims,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >::new(claims, key, alg, None, None)
    .expect("sign")
    .to_string()
}

fn id_token(spec: &IdTokenSpec<'_>, key: &CoreRsaPrivateSigningKey) -> String {
    signed(spec, key, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256)
}

/// An id_token signed HS256 with the client secret as the key: what a
/// provider that lists HS256 may send, and anyone who knows the secret
/// can forge.
fn id_token_hs256(spec: &IdTokenSpec<'_>) -> String {
    let key = CoreHmacKey::new(CLIENT_SECRET.as_bytes().to_vec());
    signed(spec, &key, CoreJwsSigningAlgorithm::HmacSha256)
}

/// An unsigned id_token (`alg: none`).
fn id_token_unsigned(spec: &IdTokenSpec<'_>) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims_of(spec).to_string())
    )
}

/// An OIDC provider on `server`; `auth_methods` is the discovery document's
/// `token_endpoint_auth_methods_supported`, `userinfo` whether it lists a
/// userinfo endpoint.
async fn mount_discovery(server: &MockServer, auth_methods: Option<&[&str]>, userinfo: bool) {
    mount_discovery_doc(
        server,
        auth_methods,
        userinfo,
        &["RS256"],
        &server.uri(),
        "",
    )
    .await;
}

/// The discovery document at `{path}/.well-known/openid-configuration`,
/// naming `issuer` and the signing algorithms `algs`.
async fn mount_discovery_doc(
    server: &MockServer,
    auth_methods: Option<&[&str]>,
    userinfo: bool,
    algs: &[&str],
    issuer_named: &str,
    prefix: &str,
) {
    let issuer = server.uri();
    let mut doc = json!({
        "issuer": issuer_named,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
    });
    if userinfo {
        doc["userinfo_endpoint"] = json!(format!("{issuer}/me"));
    }
    if let Some(methods) = auth_methods {
        doc["token_endpoint_auth_methods_supported"] = json!(methods);
    }
    Mock::given(method("GET"))
        .and(path(format!("{prefix}/.well-known/openid-configuration")))
        .respond_with(ResponseTemplate::new(200).set_body_json(doc))
        .mount(server)
        .await;
}

async fn mount_jwks(server: &MockServer, keys: &[&CoreRsaPrivateSigningKey]) {
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks(keys)))
        .mount(server)
        .await;
}

async fn mount_oidc_token(server: &MockServer, id_token: String) {
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": ACCESS_TOKEN,
            "token_type": "Bearer",
            "expires_in": 600,
            "id_token": id_token,
        })))
        .expect(1)
        .mount(server)
        .await;
}

async fn mount_userinfo(server: &MockServer, subject: &str) {
    Mock::given(method("GET"))
        .and(path("/me"))
        .and(header(
            "authorization",
            format!("Bearer {ACCESS_TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "sub": subject,
            "name": "Ada Lovelace",
            "preferred_username": "ada",
        })))
        .mount(server)
        .await;
}

fn oidc_provider(server: &MockServer) -> ProviderConfig {
    ProviderConfig {
        issuer: Some(Url::parse(&server.uri()).expect("issuer")),
        scopes: vec!["openid".into(), "email".into(), "profile".into()],
        ..provider("corp", Protocol::Oidc)
    }
}

fn spec(server: &MockServer) -> IdTokenSpec<'static> {
    IdTokenSpec {
        issuer: server.uri(),
        audience: CLIENT_ID,
        subject: "user-1",
        nonce: "nonce-value",
        expires_in_secs: 300,
        issued_in_secs: -10,
        extra: json!({}),
    }
}

async fn oidc_exchange(
    c: &ProviderClient,
    p: &ProviderConfig,
    nonce: &str,
) -> Result<ProviderLogin, ProviderError> {
    c.exchange_code(
        p,
        &Secret::new(CODE.into()),
        REDIRECT_URI,
        Some(&Secret::new("pkce-verifier-value".into())),
        Some(&Secret::new(nonce.into())),
    )
    .await
}

#[tokio::test]
async fn oidc_discovery_is_fetched_once_for_two_calls() {
    let server = MockServer::start().await;
    mount_discovery(&server, None, true).await;
    mount_jwks(&server, &[&signing_key(KEY_A, "a")]).await;
    let c = client();
    let p = oidc_provider(&server);

    let first = c.discover(&p).await.expect("discover");
    let second = c.discover(&p).await.expect("discover again");

    assert_eq!(
        first.authorization_endpoint,
        format!("{}/auth", server.uri())
    );
    assert_eq!(second, first);
    assert_eq!(
        requests_to(&server, "/.well-known/openid-configuration").await,
        1
    );
    assert_eq!(requests_to(&server, "/jwks").await, 1);
}

#[tokio::test]
async fn oidc_discovery_503_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_discovery(&server, None, true).await;
    mount_jwks(&server, &[&signing_key(KEY_A, "a")]).await;

    let found = client()
        .discover(&oidc_provider(&server))
        .await
        .expect("discover");

    assert_eq!(
        found.authorization_endpoint,
        format!("{}/auth", server.uri())
    );
    assert_eq!(
        requests_to(&server, "/.well-known/openid-configuration").await,
        2
    );
}

#[tokio::test]
async fn oidc_issuer_without_discovery_document_is_misconfigured() {
    let server = MockServer::start().await;

    let err = client()
        .discover(&oidc_provider(&server))
        .await
        .expect_err("404");

    assert!(matches!(err, ProviderError::Misconfigured(_)), "{err:?}");
}

#[tokio::test]
async fn oidc_login_verifies_the_id_token_and_merges_userinfo_over_its_claims() {
    let server = MockServer::start().await;
    let key = signing_key(KEY_A, "a");
    mount_discovery(&server, None, true).await;
    mount_jwks(&server, &[&key]).await;
    mount_oidc_token(&server, id_token(&spec(&server), &key)).await;
    mount_userinfo(&server, "user-1").await;

    let login = oidc_exchange(&client(), &oidc_provider(&server), "nonce-value")
        .await
        .expect("login");

    assert_eq!(login.profile.uid, "user-1");
    assert_eq!(login.profile.email.as_deref(), Some("ada@example.com"));
    assert!(login.profile.email_verified);
    assert_eq!(
        login.profile.name.as_deref(),
        Some("Ada Lovelace"),
        "userinfo wins"
    );
    assert_eq!(login.profile.username.as_deref(), Some("ada"));
    assert_eq!(
        login.raw["hd"], "example.com",
        "non-standard claims are kept"
    );
    assert!(login.raw.get("nonce").is_none(), "{:?}", login.raw);
    assert_eq!(login.tokens.access_token.expose(), ACCESS_TOKEN);
    assert!(login.tokens.refresh_token.is_none());
    assert!(login.tokens.expires_at.is_some());
    assert_no_secrets(&format!("{login:?}"));

    // client_secret_basic by default: the secret is in the Authorization
    // header, not in the body; the PKCE verifier and redirect_uri are sent.
    let token_request = server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.url.path() == "/token")
        .expect("token request");
    let body = String::from_utf8_lossy(&token_request.body).into_owned();
    assert!(token_request.headers.contains_key("authorization"));
    assert!(!body.contains("client_secret"), "{body}");
    assert!(body.contains("code_verifier=pkce-verifier-value"), "{body}");
    assert!(body.contains(&format!("code={CODE}")), "{body}");
}

#[tokio::test]
async fn oidc_client_secret_goes_in_the_body_when_only_post_is_listed() {
    let server = MockServer::start().await;
    let key = signing_key(KEY_A, "a");
    mount_discovery(&server, Some(&["client_secret_post"]), true).await;
    mount_jwks(&server, &[&key]).await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains(format!(
            "client_secret={CLIENT_SECRET}"
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": ACCESS_TOKEN,
            "token_type": "Bearer",
            "id_token": id_token(&spec(&server), &key),
        })))
        .expect(1)
        .mount(&server)
        .await;
    mount_userinfo(&server, "user-1").await;

    let login = oidc_exchange(&client(), &oidc_provider(&server), "nonce-value")
        .await
        .expect("login");

    assert_eq!(login.profile.uid, "user-1");
    let token_request = server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.url.path() == "/token")
        .expect("token request");
    assert!(!token_request.headers.contains_key("authorization"));
}

#[tokio::test]
async fn oidc_id_token_with_another_nonce_is_refused() {
    let server = MockServer::start().await;
    let key = signing_key(KEY_A, "a");
    mount_discovery(&server, None, true).await;
    mount_jwks(&server, &[&key]).await;
    mount_oidc_token(&server, id_token(&spec(&server), &key)).await;
    mount_userinfo(&server, "user-1").await;

    let err = oidc_exchange(&client(), &oidc_provider(&server), "another-nonce")
        .await
        .expect_err("nonce");

    assert!(
        matches!(&err, ProviderError::Refused(r) if r.contains("nonce")),
        "{err:?}"
    );
    assert_eq!(requests_to(&server, "/me").await, 0);
}

#[tokio::test]
async fn oidc_id_token_for_another_audience_is_refused() {
    let server = MockServer::start().await;
    let key = signing_key(KEY_A, "a");
    mount_discovery(&server, None, true).await;
    mount_jwks(&server, &[&key]).await;
    let other = IdTokenSpec {
        audience: "someone-else",
        ..spec(&server)
    };
    mount_oidc_token(&server, id_token(&other, &key)).await;

    let err = oidc_exchange(&client(), &oidc_provider(&server), "nonce-value")
        .await
        .expect_err("audience");

    assert!(
        matches!(&err, ProviderError::Refused(r) if r.contains("audience")),
        "{err:?}"
    );
}

#[tokio::test]
async fn oidc_expired_id_token_is_refused() {
    let server = MockServer::start().await;
    let key = signing_key(KEY_A, "a");
    mount_discovery(&server, None, true).await;
    mount_jwks(&server, &[&key]).await;
    let expired = IdTokenSpec {
        expires_in_secs: -120,
        ..spec(&server)
    };
    mount_oidc_token(&server, id_token(&expired, &key)).await;

    let err = oidc_exchange(&client(), &oidc_provider(&server), "nonce-value")
        .await
        .expect_err("expired");

    assert!(
        matches!(&err, ProviderError::Refused(r) if r.contains("expired")),
        "{err:?}"
    );
}

#[tokio::test]
async fn oidc_keys_are_fetched_again_once_when_the_signature_does_not_verify() {
    let server = MockServer::start().await;
    let (old, new) = (signing_key(KEY_A, "a"), signing_key(KEY_B, "b"));
    mount_discovery(&server, None, true).await;
    // The provider rotated its key after our first discovery.
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks(&[&old])))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_jwks(&server, &[&new]).await;
    mount_oidc_token(&server, id_token(&spec(&server), &new)).await;
    mount_userinfo(&server, "user-1").await;
    let c = client();
    let p = oidc_provider(&server);
    c.discover(&p).await.expect("first discovery");

    let login = oidc_exchange(&c, &p, "nonce-value").await.expect("login");

    assert_eq!(login.profile.uid, "user-1");
    assert_eq!(requests_to(&server, "/jwks").await, 2);
    assert_eq!(
        requests_to(&server, "/.well-known/openid-configuration").await,
        2
    );
}

#[tokio::test]
async fn oidc_id_token_signed_by_an_unknown_key_is_refused_after_one_refresh() {
    let server = MockServer::start().await;
    let (published, forged) = (signing_key(KEY_A, "a"), signing_key(KEY_B, "a"));
    mount_discovery(&server, None, true).await;
    mount_jwks(&server, &[&published]).await;
    mount_oidc_token(&server, id_token(&spec(&server), &forged)).await;

    let err = oidc_exchange(&client(), &oidc_provider(&server), "nonce-value")
        .await
        .expect_err("forged");

    assert!(
        matches!(&err, ProviderError::Refused(r) if r.contains("signature")),
        "{err:?}"
    );
    assert_eq!(requests_to(&server, "/jwks").await, 2);
}

#[tokio::test]
async fn oidc_userinfo_for_another_subject_is_refused() {
    let server = MockServer::start().await;
    let key = signing_key(KEY_A, "a");
    mount_discovery(&server, None, true).await;
    mount_jwks(&server, &[&key]).await;
    mount_oidc_token(&server, id_token(&spec(&server), &key)).await;
    mount_userinfo(&server, "someone-else").await;

    let err = oidc_exchange(&client(), &oidc_provider(&server), "nonce-value")
        .await
        .expect_err("subject");

    assert!(matches!(err, ProviderError::Refused(_)), "{err:?}");
}

#[tokio::test]
async fn oidc_without_userinfo_endpoint_takes_the_profile_from_the_id_token() {
    let server = MockServer::start().await;
    let key = signing_key(KEY_A, "a");
    mount_discovery(&server, None, false).await;
    mount_jwks(&server, &[&key]).await;
    mount_oidc_token(&server, id_token(&spec(&server), &key)).await;

    let login = oidc_exchange(&client(), &oidc_provider(&server), "nonce-value")
        .await
        .expect("login");

    assert_eq!(login.profile.uid, "user-1");
    assert_eq!(login.profile.name.as_deref(), Some("Ada from the id_token"));
}

#[tokio::test]
async fn oidc_without_userinfo_endpoint_or_uid_claim_is_misconfigured() {
    let server = MockServer::start().await;
    let key = signing_key(KEY_A, "a");
    mount_discovery(&server, None, false).await;
    mount_jwks(&server, &[&key]).await;
    mount_oidc_token(&server, id_token(&spec(&server), &key)).await;
    let p = ProviderConfig {
        profile: ProfileMapping {
            uid: "oid".into(),
            ..ProfileMapping::default()
        },
        ..oidc_provider(&server)
    };

    let err = oidc_exchange(&client(), &p, "nonce-value")
        .await
        .expect_err("no uid");

    assert!(matches!(err, ProviderError::Misconfigured(_)), "{err:?}");
}

#[tokio::test]
async fn oidc_token_endpoint_500_is_unavailable_and_called_exactly_once() {
    let server = MockServer::start().await;
    mount_discovery(&server, None, true).await;
    mount_jwks(&server, &[&signing_key(KEY_A, "a")]).await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header_exists("authorization"))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&server)
        .await;

    let err = oidc_exchange(&client(), &oidc_provider(&server), "nonce-value")
        .await
        .expect_err("502");

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
}

/// A provider whose discovery document lists HS256 and `none` next to
/// RS256: an id_token signed HS256 (with the client secret) or not signed
/// at all is refused, since only the pinned asymmetric algorithms count.
#[tokio::test]
async fn oidc_id_tokens_signed_hs256_or_not_at_all_are_refused() {
    for unsigned in [false, true] {
        let server = MockServer::start().await;
        let key = signing_key(KEY_A, "a");
        mount_discovery_doc(
            &server,
            None,
            true,
            &["RS256", "HS256", "none"],
            &server.uri(),
            "",
        )
        .await;
        mount_jwks(&server, &[&key]).await;
        let token = if unsigned {
            id_token_unsigned(&spec(&server))
        } else {
            id_token_hs256(&spec(&server))
        };
        mount_oidc_token(&server, token).await;
        mount_userinfo(&server, "user-1").await;

        let err = oidc_exchange(&client(), &oidc_provider(&server), "nonce-value")
            .await
            .expect_err("refused");

        assert!(
            matches!(&err, ProviderError::Refused(r) if r.contains("algorithm")),
            "unsigned={unsigned}: {err:?}"
        );
        assert_eq!(requests_to(&server, "/me").await, 0);
    }
}

/// HS256 is taken only from a provider configured to list it.
#[tokio::test]
async fn oidc_hs256_is_accepted_only_where_configured() {
    let server = MockServer::start().await;
    mount_discovery_doc(&server, None, true, &["HS256"], &server.uri(), "").await;
    mount_jwks(&server, &[&signing_key(KEY_A, "a")]).await;
    mount_oidc_token(&server, id_token_hs256(&spec(&server))).await;
    mount_userinfo(&server, "user-1").await;
    let p = ProviderConfig {
        id_token_signing_algs: vec!["HS256".into()],
        ..oidc_provider(&server)
    };

    let login = oidc_exchange(&client(), &p, "nonce-value")
        .await
        .expect("HS256 configured");

    assert_eq!(login.profile.uid, "user-1");
}

#[tokio::test]
async fn oidc_id_token_issued_in_the_future_is_refused() {
    let server = MockServer::start().await;
    let key = signing_key(KEY_A, "a");
    mount_discovery(&server, None, true).await;
    mount_jwks(&server, &[&key]).await;
    let future = IdTokenSpec {
        issued_in_secs: 600,
        expires_in_secs: 900,
        ..spec(&server)
    };
    mount_oidc_token(&server, id_token(&future, &key)).await;

    let err = oidc_exchange(&client(), &oidc_provider(&server), "nonce-value")
        .await
        .expect_err("future iat");

    assert!(
        matches!(&err, ProviderError::Refused(r) if r.contains("future")),
        "{err:?}"
    );
}

#[tokio::test]
async fn oidc_id_token_authorized_for_another_party_is_refused() {
    let server = MockServer::start().await;
    let key = signing_key(KEY_A, "a");
    mount_discovery(&server, None, true).await;
    mount_jwks(&server, &[&key]).await;
    let foreign = IdTokenSpec {
        extra: json!({"azp": "another-client"}),
        ..spec(&server)
    };
    mount_oidc_token(&server, id_token(&foreign, &key)).await;

    let err = oidc_exchange(&client(), &oidc_provider(&server), "nonce-value")
        .await
        .expect_err("foreign azp");

    assert!(
        matches!(&err, ProviderError::Refused(r) if r.contains("azp")),
        "{err:?}"
    );
}

#[tokio::test]
async fn oidc_id_token_authorized_for_us_is_accepted() {
    let server = MockServer::start().await;
    let key = signing_key(KEY_A, "a");
    mount_discovery(&server, None, true).await;
    mount_jwks(&server, &[&key]).await;
    let ours = IdTokenSpec {
        extra: json!({"azp": CLIENT_ID}),
        ..spec(&server)
    };
    mount_oidc_token(&server, id_token(&ours, &key)).await;
    mount_userinfo(&server, "user-1").await;

    oidc_exchange(&client(), &oidc_provider(&server), "nonce-value")
        .await
        .expect("azp = our client id");
}

/// Microsoft's shape: the `common` tenant's discovery document names the
/// templated issuer `…/{tenantid}/v2.0`; an id_token's issuer must be its
/// own `tid`'s.
#[tokio::test]
async fn a_multi_tenant_issuer_checks_each_id_token_against_its_tenant() {
    const TID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
    for (iss_tenant, tid, accepted) in [(TID, TID, true), ("another-tenant", TID, false)] {
        let server = MockServer::start().await;
        let key = signing_key(KEY_A, "a");
        let base = server.uri();
        mount_discovery_doc(
            &server,
            None,
            true,
            &["RS256"],
            &format!("{base}/{{tenantid}}/v2.0"),
            "/common/v2.0",
        )
        .await;
        mount_jwks(&server, &[&key]).await;
        let token = IdTokenSpec {
            issuer: format!("{base}/{iss_tenant}/v2.0"),
            extra: json!({"tid": tid}),
            ..spec(&server)
        };
        mount_oidc_token(&server, id_token(&token, &key)).await;
        mount_userinfo(&server, "user-1").await;
        let p = ProviderConfig {
            issuer: Some(Url::parse(&format!("{base}/common/v2.0")).expect("issuer")),
            tenant: Some("common".into()),
            ..oidc_provider(&server)
        };

        let result = oidc_exchange(&client(), &p, "nonce-value").await;

        if accepted {
            let login = result.expect("the tenant's own issuer");
            assert_eq!(login.raw["tid"], TID);
        } else {
            let err = result.expect_err("another tenant's issuer");
            assert!(
                matches!(&err, ProviderError::Refused(r) if r.contains("tenant")),
                "{err:?}"
            );
        }
    }
}

/// Forged id_tokens (token login takes them from anyone) make one fetch of
/// the provider's keys, not one each.
#[tokio::test]
async fn a_stream_of_forged_id_tokens_fetches_the_keys_again_once() {
    let server = MockServer::start().await;
    let (published, forged) = (signing_key(KEY_A, "a"), signing_key(KEY_B, "a"));
    mount_discovery(&server, None, true).await;
    mount_jwks(&server, &[&published]).await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": ACCESS_TOKEN,
            "token_type": "Bearer",
            "id_token": id_token(&spec(&server), &forged),
        })))
        .mount(&server)
        .await;
    let (c, p) = (client(), oidc_provider(&server));

    for _ in 0..5 {
        let err = oidc_exchange(&c, &p, "nonce-value")
            .await
            .expect_err("forged");
        assert!(matches!(err, ProviderError::Refused(_)), "{err:?}");
    }
    assert_eq!(requests_to(&server, "/jwks").await, 2);
}
