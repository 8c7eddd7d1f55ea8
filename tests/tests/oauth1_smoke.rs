//! The test OAuth 1.0a provider (Twitter's shape) and the scripted user work
//! end to end with a real OAuth1 client (`oauth1-request`, HMAC-SHA1), by
//! themselves (no socialauth process involved): what the other integration
//! tests rely on.

use oauth1_request::{Builder, Credentials, HmacSha1, ParameterList};
use reqwest::StatusCode;
use serde_json::Value;
use socialauth_tests::browser::{Callback, ScriptedUser};
use socialauth_tests::oauth1_idp::{Oauth1Config, Oauth1Idp};
use std::num::NonZeroU64;
use std::time::{SystemTime, UNIX_EPOCH};

/// Never contacted: the scripted user stops at the redirect.
const CALLBACK: &str = "http://127.0.0.1:9/auth/twitter/callback";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn start_idp() -> Oauth1Idp {
    Oauth1Idp::start(Oauth1Config::standard())
        .await
        .expect("the test OAuth1 provider starts")
}

/// A token and its secret, as the token endpoints return them.
struct TokenPair {
    token: String,
    secret: String,
    fields: Vec<(String, String)>,
}

impl TokenPair {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn parse_token_response(body: &str) -> TokenPair {
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let find = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in the token response"))
    };
    TokenPair {
        token: find("oauth_token"),
        secret: find("oauth_token_secret"),
        fields,
    }
}

/// The names of a callback's query parameters (their values are secrets).
fn param_names(callback: &Callback) -> Vec<&str> {
    callback.query.iter().map(|(k, _)| k.as_str()).collect()
}

/// POST /oauth/request_token signed with this consumer secret; the status
/// and the body.
async fn request_token_with_secret(idp: &Oauth1Idp, consumer_secret: &str) -> (StatusCode, String) {
    let url = idp.request_token_url();
    let consumer = Credentials::new(idp.consumer().key.as_str(), consumer_secret);
    let authorization = Builder::<_, _>::new(consumer, HmacSha1::new())
        .callback(CALLBACK)
        .post(&url, &());
    let response = http()
        .post(&url)
        .header(reqwest::header::AUTHORIZATION, authorization)
        .send()
        .await
        .expect("request_token answers");
    let status = response.status();
    (status, response.text().await.expect("a body"))
}

async fn request_token(idp: &Oauth1Idp) -> TokenPair {
    let (status, body) = request_token_with_secret(idp, &idp.consumer().secret).await;
    assert_eq!(status, StatusCode::OK, "request_token: {body}");
    parse_token_response(&body)
}

/// POST /oauth/access_token signed with the request token; the status and
/// the body.
async fn access_token(
    idp: &Oauth1Idp,
    request_token: &str,
    request_token_secret: &str,
    verifier: &str,
) -> (StatusCode, String) {
    let url = idp.access_token_url();
    let consumer = Credentials::new(idp.consumer().key.as_str(), idp.consumer().secret.as_str());
    let authorization = Builder::<_, _>::new(consumer, HmacSha1::new())
        .token(Credentials::new(request_token, request_token_secret))
        .verifier(verifier)
        .post(&url, &());
    let response = http()
        .post(&url)
        .header(reqwest::header::AUTHORIZATION, authorization)
        .send()
        .await
        .expect("access_token answers");
    let status = response.status();
    (status, response.text().await.expect("a body"))
}

/// GET verify_credentials signed with the access token (and the query);
/// the status and the JSON body.
async fn verify_credentials(
    idp: &Oauth1Idp,
    access: &TokenPair,
    include_email: bool,
) -> (StatusCode, Value) {
    let consumer = Credentials::new(idp.consumer().key.as_str(), idp.consumer().secret.as_str());
    let mut builder = Builder::<_, _>::new(consumer, HmacSha1::new());
    builder.token(Credentials::new(
        access.token.as_str(),
        access.secret.as_str(),
    ));
    let (url, authorization) = if include_email {
        let query = ParameterList::new([("include_email", "true")]);
        (
            oauth1_request::to_query(idp.verify_credentials_url(), &query),
            builder.get(idp.verify_credentials_url(), &query),
        )
    } else {
        (
            idp.verify_credentials_url(),
            builder.get(idp.verify_credentials_url(), &()),
        )
    };
    let response = http()
        .get(url)
        .header(reqwest::header::AUTHORIZATION, authorization)
        .send()
        .await
        .expect("verify_credentials answers");
    let status = response.status();
    let body = response.json::<Value>().await.expect("JSON");
    (status, body)
}

async fn authorize(idp: &Oauth1Idp, screen_name: &str, request: &TokenPair) -> Callback {
    let user = idp.user(screen_name);
    ScriptedUser::new()
        .expect("scripted user")
        .authorize_oauth1(
            &idp.authorization_url(&request.token),
            &user.screen_name,
            &user.password,
            CALLBACK,
        )
        .await
        .expect("the scripted user reaches the callback")
}

/// Request token → authorization → access token, for this user.
async fn sign_in(idp: &Oauth1Idp, screen_name: &str) -> TokenPair {
    let request = request_token(idp).await;
    let callback = authorize(idp, screen_name, &request).await;
    let verifier = callback
        .oauth_verifier()
        .unwrap_or_else(|| panic!("a verifier; got {:?}", param_names(&callback)));
    let (status, body) = access_token(idp, &request.token, &request.secret, verifier).await;
    assert_eq!(status, StatusCode::OK, "access_token: {body}");
    parse_token_response(&body)
}

#[tokio::test]
async fn full_flow_yields_an_access_token_whose_credentials_carry_the_email() {
    let idp = start_idp().await;
    let alice = idp.user("tw_alice");

    let request = request_token(&idp).await;
    assert_eq!(request.field("oauth_callback_confirmed"), Some("true"));

    let callback = authorize(&idp, "tw_alice", &request).await;
    assert!(callback.url.as_str().starts_with(CALLBACK));
    assert_eq!(callback.oauth_token(), Some(request.token.as_str()));
    assert_eq!(callback.denied(), None);
    let verifier = callback.oauth_verifier().expect("a verifier");

    let (status, body) = access_token(&idp, &request.token, &request.secret, verifier).await;
    assert_eq!(status, StatusCode::OK, "access_token: {body}");
    let access = parse_token_response(&body);
    assert_eq!(access.field("user_id"), Some(alice.id.as_str()));
    assert_eq!(access.field("screen_name"), Some("tw_alice"));
    assert_ne!(access.token, request.token);

    let (status, profile) = verify_credentials(&idp, &access, true).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["id_str"], alice.id.as_str());
    assert_eq!(
        profile["id"].as_u64(),
        Some(alice.id.parse::<u64>().expect("digits")),
        "id is a JSON number"
    );
    assert_eq!(profile["screen_name"], "tw_alice");
    assert_eq!(profile["name"], alice.name.as_str());
    assert_eq!(profile["email"], "tw_alice@example.test");
    let avatar = profile["profile_image_url_https"]
        .as_str()
        .expect("an avatar URL");
    assert!(avatar.starts_with(&idp.base_url), "{avatar}");
}

#[tokio::test]
async fn verify_credentials_without_include_email_omits_the_email() {
    let idp = start_idp().await;
    let access = sign_in(&idp, "tw_alice").await;
    let (status, profile) = verify_credentials(&idp, &access, false).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["screen_name"], "tw_alice");
    assert!(profile.get("email").is_none(), "{profile}");
}

#[tokio::test]
async fn a_user_without_email_has_no_email_key() {
    let idp = start_idp().await;
    let access = sign_in(&idp, "tw_nomail").await;
    let (status, profile) = verify_credentials(&idp, &access, true).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["id_str"], idp.user("tw_nomail").id.as_str());
    assert!(profile.get("email").is_none(), "{profile}");
}

#[tokio::test]
async fn names_outside_ascii_come_back_intact() {
    let idp = start_idp().await;
    let access = sign_in(&idp, "tw_zoe").await;
    let (status, profile) = verify_credentials(&idp, &access, true).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["name"], "Zoë Ñandú 山田");
    assert_eq!(profile["email"], "tw_zoe@example.test");
}

#[tokio::test]
async fn a_wrong_consumer_secret_is_refused_at_request_token_with_401() {
    let idp = start_idp().await;
    let (status, body) = request_token_with_secret(&idp, "not-the-consumer-secret").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let error: Value = serde_json::from_str(&body).expect("a JSON error");
    assert_eq!(error["errors"][0]["code"], 32);
}

#[tokio::test]
async fn a_verifier_used_twice_is_refused_with_401() {
    let idp = start_idp().await;
    let request = request_token(&idp).await;
    let callback = authorize(&idp, "tw_alice", &request).await;
    let verifier = callback.oauth_verifier().expect("a verifier");

    let (first, body) = access_token(&idp, &request.token, &request.secret, verifier).await;
    assert_eq!(first, StatusCode::OK, "{body}");
    let (second, body) = access_token(&idp, &request.token, &request.secret, verifier).await;
    assert_eq!(second, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn a_wrong_verifier_or_unknown_request_token_is_refused_with_401() {
    let idp = start_idp().await;
    let request = request_token(&idp).await;
    let callback = authorize(&idp, "tw_alice", &request).await;
    let verifier = callback.oauth_verifier().expect("a verifier");

    let forged_verifier = "x".repeat(verifier.len());
    let (status, body) =
        access_token(&idp, &request.token, &request.secret, &forged_verifier).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    let forged_token = "y".repeat(request.token.len());
    let (status, body) = access_token(&idp, &forged_token, &request.secret, verifier).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // The forgeries did not spend the real pair.
    let (status, body) = access_token(&idp, &request.token, &request.secret, verifier).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_wrong_password_yields_no_verifier() {
    let idp = start_idp().await;
    let request = request_token(&idp).await;
    let wrong_password = "tw_alice-wrong-password";
    let error = ScriptedUser::new()
        .expect("scripted user")
        .authorize_oauth1(
            &idp.authorization_url(&request.token),
            "tw_alice",
            wrong_password,
            CALLBACK,
        )
        .await
        .expect_err("a wrong password never reaches the callback");
    let message = format!("{error:#}");
    assert!(message.contains("refused the login"), "{message}");
    assert!(
        message.contains("Invalid username or password"),
        "{message}"
    );
    assert!(!message.contains(wrong_password), "{message}");
    assert!(!message.contains(&request.token), "{message}");

    // The request token is still good for the right password.
    let callback = authorize(&idp, "tw_alice", &request).await;
    assert!(callback.oauth_verifier().is_some());
}

#[tokio::test]
async fn deny_redirects_with_denied_and_spends_the_request_token() {
    let idp = start_idp().await;
    let request = request_token(&idp).await;
    let callback = ScriptedUser::new()
        .expect("scripted user")
        .deny_oauth1(&idp.authorization_url(&request.token), CALLBACK)
        .await
        .expect("the scripted user reaches the callback");
    assert_eq!(callback.denied(), Some(request.token.as_str()));
    assert_eq!(
        callback.oauth_verifier(),
        None,
        "{:?}",
        param_names(&callback)
    );

    // The page is gone for that token, and no verifier can be exchanged.
    let again = ScriptedUser::new()
        .expect("scripted user")
        .authorize_oauth1(
            &idp.authorization_url(&request.token),
            "tw_alice",
            &idp.user("tw_alice").password,
            CALLBACK,
        )
        .await
        .expect_err("a denied request token cannot be authorized");
    assert!(format!("{again:#}").contains("400"), "{again:#}");
    let (status, body) = access_token(&idp, &request.token, &request.secret, &"z".repeat(43)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn a_forged_signature_at_verify_credentials_is_refused_with_code_32() {
    let idp = start_idp().await;
    let access = sign_in(&idp, "tw_alice").await;
    let forged = TokenPair {
        token: access.token.clone(),
        secret: "not-the-access-token-secret".to_owned(),
        fields: Vec::new(),
    };
    let (status, body) = verify_credentials(&idp, &forged, true).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["errors"][0]["code"], 32);
    assert_eq!(body["errors"][0]["message"], "Could not authenticate you.");
}

#[tokio::test]
async fn a_replayed_nonce_is_refused_with_401() {
    let idp = start_idp().await;
    let url = idp.request_token_url();
    let consumer = Credentials::new(idp.consumer().key.as_str(), idp.consumer().secret.as_str());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let authorization = Builder::<_, _>::new(consumer, HmacSha1::new())
        .callback(CALLBACK)
        .nonce(nonce.as_str())
        .timestamp(NonZeroU64::new(now))
        .post(&url, &());
    let send = || {
        http()
            .post(&url)
            .header(reqwest::header::AUTHORIZATION, authorization.clone())
            .send()
    };
    let first = send().await.expect("request_token answers");
    assert_eq!(first.status(), StatusCode::OK);
    let second = send().await.expect("request_token answers");
    assert_eq!(second.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_timestamp_outside_ten_minutes_is_refused() {
    let idp = start_idp().await;
    let url = idp.request_token_url();
    let consumer = Credentials::new(idp.consumer().key.as_str(), idp.consumer().secret.as_str());
    let stale = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        - 3600;
    let authorization = Builder::<_, _>::new(consumer, HmacSha1::new())
        .callback(CALLBACK)
        .timestamp(NonZeroU64::new(stale))
        .post(&url, &());
    let response = http()
        .post(&url)
        .header(reqwest::header::AUTHORIZATION, authorization)
        .send()
        .await
        .expect("request_token answers");
    // oauthlib's answer: 400 invalid_request (Twitter says 401, code 135).
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn concurrent_sign_ins_complete_independently() {
    let idp = start_idp().await;
    let (alice, nomail, zoe) = tokio::join!(
        sign_in(&idp, "tw_alice"),
        sign_in(&idp, "tw_nomail"),
        sign_in(&idp, "tw_zoe"),
    );
    for (access, screen_name) in [
        (&alice, "tw_alice"),
        (&nomail, "tw_nomail"),
        (&zoe, "tw_zoe"),
    ] {
        assert_eq!(access.field("screen_name"), Some(screen_name));
        let (status, profile) = verify_credentials(&idp, access, true).await;
        assert_eq!(status, StatusCode::OK, "{profile}");
        assert_eq!(profile["screen_name"], screen_name);
    }
}

#[tokio::test]
async fn an_expired_request_token_is_refused_at_access_token() {
    let mut config = Oauth1Config::standard();
    config.request_token_ttl = Some(1);
    let idp = Oauth1Idp::start(config)
        .await
        .expect("the test OAuth1 provider starts");
    let first = request_token(&idp).await;
    let callback = authorize(&idp, "tw_alice", &first).await;
    let verifier = callback.oauth_verifier().expect("a verifier");

    // A later request token's page going away proves the first one expired.
    let second = request_token(&idp).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let status = http()
            .get(idp.authorization_url(&second.token))
            .send()
            .await
            .expect("the authorization page answers")
            .status();
        if status == StatusCode::BAD_REQUEST {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the request token did not expire"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let (status, body) = access_token(&idp, &first.token, &first.secret, verifier).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn a_bad_config_fails_to_start_with_the_providers_reason() {
    let mut config = Oauth1Config::standard();
    config.consumers[0].key = "not a valid key!".to_owned();
    let error = Oauth1Idp::start(config)
        .await
        .expect_err("a consumer key with spaces is refused");
    let message = format!("{error:#}");
    assert!(message.contains("did not start"), "{message}");
    assert!(message.contains("consumer key"), "{message}");
}
