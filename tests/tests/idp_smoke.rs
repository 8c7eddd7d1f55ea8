//! The test identity provider and the scripted user work end to end, by
//! themselves (no socialauth process involved): what the other integration
//! tests rely on.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};
use socialauth_tests::browser::{Callback, ScriptedUser};
use socialauth_tests::idp::{Idp, IdpConfig};
use url::Url;

/// Never contacted: the scripted user stops at the redirect.
const REDIRECT_URI: &str = "http://127.0.0.1:9/auth/callback";

struct Authorization {
    url: String,
    state: String,
    nonce: String,
    verifier: String,
}

fn random() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn authorization(idp: &Idp, scope: &str, extra: &[(&str, &str)]) -> Authorization {
    let state = random();
    let nonce = random();
    let verifier = random();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut url = Url::parse(&idp.authorization_endpoint()).expect("authorization endpoint");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &idp.client().client_id)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", scope)
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    for (k, v) in extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    Authorization {
        url: url.into(),
        state,
        nonce,
        verifier,
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn start_idp() -> Idp {
    Idp::start(IdpConfig::standard(REDIRECT_URI))
        .await
        .expect("the test IdP starts")
}

async fn sign_in(idp: &Idp, username: &str, auth: &Authorization) -> Callback {
    let user = idp.user(username);
    ScriptedUser::new()
        .expect("scripted user")
        .authorize(&auth.url, &user.username, &user.password, REDIRECT_URI)
        .await
        .expect("the scripted user reaches the redirect URI")
}

/// POST /token; returns the status and the JSON body.
async fn token_request(idp: &Idp, form: &[(&str, &str)]) -> (reqwest::StatusCode, Value) {
    let client = idp.client();
    let response = http()
        .post(idp.token_endpoint())
        .basic_auth(&client.client_id, Some(&client.client_secret))
        .form(form)
        .send()
        .await
        .expect("token endpoint answers");
    let status = response.status();
    let body = response.json::<Value>().await.expect("token endpoint JSON");
    (status, body)
}

async fn exchange(idp: &Idp, code: &str, verifier: &str) -> (reqwest::StatusCode, Value) {
    token_request(
        idp,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ],
    )
    .await
}

fn jwt_claims(jwt: &str) -> anyhow::Result<Value> {
    let parts: Vec<&str> = jwt.split('.').collect();
    anyhow::ensure!(parts.len() == 3, "a JWS has three parts");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0])?)?;
    anyhow::ensure!(header["alg"] == "RS256", "alg is {}", header["alg"]);
    let payload = URL_SAFE_NO_PAD.decode(parts[1]).context("payload")?;
    Ok(serde_json::from_slice(&payload)?)
}

async fn userinfo(idp: &Idp, access_token: &str) -> (reqwest::StatusCode, Value) {
    let response = http()
        .get(idp.userinfo_endpoint())
        .bearer_auth(access_token)
        .send()
        .await
        .expect("userinfo answers");
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test]
async fn discovery_document_names_the_issuer_and_the_endpoints() {
    let idp = start_idp().await;
    assert!(
        idp.issuer.starts_with("http://127.0.0.1:"),
        "{}",
        idp.issuer
    );
    let doc: Value = http()
        .get(idp.discovery_url())
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("discovery JSON");
    assert_eq!(doc["issuer"], idp.issuer.as_str());
    assert_eq!(
        doc["authorization_endpoint"],
        idp.authorization_endpoint().as_str()
    );
    assert_eq!(doc["token_endpoint"], idp.token_endpoint().as_str());
    assert_eq!(doc["userinfo_endpoint"], idp.userinfo_endpoint().as_str());
    assert_eq!(doc["jwks_uri"], idp.jwks_uri().as_str());
    assert_eq!(
        doc["introspection_endpoint"],
        idp.introspection_endpoint().as_str()
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    let jwks: Value = http()
        .get(idp.jwks_uri())
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("jwks JSON");
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
}

#[tokio::test]
async fn scripted_login_yields_a_code_that_exchanges_for_working_tokens() {
    let idp = start_idp().await;
    let auth = authorization(&idp, "openid email profile", &[]);
    let callback = sign_in(&idp, "alice", &auth).await;
    assert_eq!(callback.error, None, "{:?}", callback.query);
    assert_eq!(callback.state.as_deref(), Some(auth.state.as_str()));
    assert_eq!(callback.param("iss"), Some(idp.issuer.as_str()));
    let code = callback.code.expect("a code");

    let (status, tokens) = exchange(&idp, &code, &auth.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(
        tokens.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );

    let claims = jwt_claims(tokens["id_token"].as_str().expect("an id_token")).expect("id_token");
    let alice = idp.user("alice");
    assert_eq!(claims["iss"], idp.issuer.as_str());
    assert_eq!(claims["aud"], idp.client().client_id.as_str());
    assert_eq!(claims["sub"], alice.id.as_str());
    assert_eq!(claims["nonce"], auth.nonce.as_str());
    assert_eq!(claims["email"], "alice@example.test");

    let access_token = tokens["access_token"].as_str().expect("an access_token");
    let (status, info) = userinfo(&idp, access_token).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sub"], alice.id.as_str());
    assert_eq!(info["email"], "alice@example.test");
    assert_eq!(info["email_verified"], true);
    assert_eq!(info["name"], "Alice Doe");
    assert_eq!(info["preferred_username"], "alice");
}

#[tokio::test]
async fn a_code_exchanged_twice_is_refused_with_invalid_grant() {
    let idp = start_idp().await;
    let auth = authorization(&idp, "openid email profile", &[]);
    let code = sign_in(&idp, "alice", &auth).await.code.expect("a code");

    let (first, body) = exchange(&idp, &code, &auth.verifier).await;
    assert_eq!(first, 200, "{body}");
    let (second, body) = exchange(&idp, &code, &auth.verifier).await;
    assert_eq!(second, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn an_unknown_code_is_refused_with_invalid_grant() {
    let idp = start_idp().await;
    let (status, body) = exchange(&idp, "not-a-code", "x".repeat(43).as_str()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn a_wrong_code_verifier_is_refused() {
    let idp = start_idp().await;
    let auth = authorization(&idp, "openid email", &[]);
    let code = sign_in(&idp, "alice", &auth).await.code.expect("a code");
    let (status, body) = exchange(&idp, &code, &random()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn a_wrong_password_yields_no_code() {
    let idp = start_idp().await;
    let auth = authorization(&idp, "openid email profile", &[]);
    let err = ScriptedUser::new()
        .expect("scripted user")
        .authorize(&auth.url, "alice", "not-her-password", REDIRECT_URI)
        .await
        .expect_err("a wrong password must not reach the redirect URI");
    assert!(
        err.to_string().contains("Invalid username or password"),
        "{err:#}"
    );
}

#[tokio::test]
async fn denying_consent_redirects_with_access_denied() {
    let idp = start_idp().await;
    let auth = authorization(&idp, "openid email profile", &[]);
    let alice = idp.user("alice");
    let callback = ScriptedUser::new()
        .expect("scripted user")
        .deny(&auth.url, &alice.username, &alice.password, REDIRECT_URI)
        .await
        .expect("the redirect URI is reached");
    assert_eq!(callback.error.as_deref(), Some("access_denied"));
    assert_eq!(callback.code, None);
    assert_eq!(callback.state.as_deref(), Some(auth.state.as_str()));

    let auth = authorization(&idp, "openid", &[]);
    let callback = ScriptedUser::new()
        .expect("scripted user")
        .cancel(&auth.url, REDIRECT_URI)
        .await
        .expect("the redirect URI is reached");
    assert_eq!(callback.error.as_deref(), Some("access_denied"));
}

#[tokio::test]
async fn a_user_without_email_has_no_email_claim_and_unicode_names_survive() {
    let idp = start_idp().await;
    let auth = authorization(&idp, "openid email profile", &[]);
    let code = sign_in(&idp, "nomail", &auth).await.code.expect("a code");
    let (_, tokens) = exchange(&idp, &code, &auth.verifier).await;
    let (status, info) = userinfo(&idp, tokens["access_token"].as_str().expect("token")).await;
    assert_eq!(status, 200, "{info}");
    assert!(info.get("email").is_none(), "{info}");
    assert!(info.get("email_verified").is_none(), "{info}");

    let auth = authorization(&idp, "openid email profile", &[]);
    let code = sign_in(&idp, "zoe", &auth).await.code.expect("a code");
    let (_, tokens) = exchange(&idp, &code, &auth.verifier).await;
    let claims = jwt_claims(tokens["id_token"].as_str().expect("id_token")).expect("claims");
    assert_eq!(claims["name"], "Zoë Ñandú 山田");
    assert_eq!(claims["given_name"], "Zoë");
}

#[tokio::test]
async fn offline_access_with_prompt_consent_issues_a_working_refresh_token() {
    let idp = start_idp().await;
    let auth = authorization(
        &idp,
        "openid email offline_access",
        &[("prompt", "consent")],
    );
    let code = sign_in(&idp, "alice", &auth).await.code.expect("a code");
    let (status, tokens) = exchange(&idp, &code, &auth.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().expect("a refresh_token");

    let (status, refreshed) = token_request(
        &idp,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    let access_token = refreshed["access_token"].as_str().expect("access_token");
    assert_ne!(
        access_token,
        tokens["access_token"].as_str().expect("token")
    );
    let (status, info) = userinfo(&idp, access_token).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["email"], "alice@example.test");
}

#[tokio::test]
async fn offline_access_without_prompt_consent_gets_no_refresh_token() {
    let idp = start_idp().await;
    let auth = authorization(&idp, "openid email offline_access", &[]);
    let code = sign_in(&idp, "alice", &auth).await.code.expect("a code");
    let (status, tokens) = exchange(&idp, &code, &auth.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
}

#[tokio::test]
async fn a_config_the_idp_rejects_fails_the_start_with_its_stderr() {
    let mut config = IdpConfig::standard(REDIRECT_URI);
    config.clients[0].redirect_uris = vec!["not a url".to_owned()];
    let err = Idp::start(config)
        .await
        .expect_err("an invalid redirect_uri must stop the IdP");
    let message = format!("{err:#}");
    assert!(message.contains("redirect_uris"), "{message}");
}

#[tokio::test]
async fn an_unregistered_redirect_uri_never_reaches_the_app() {
    let idp = start_idp().await;
    let auth = authorization(&idp, "openid", &[]);
    let url = auth.url.replace("%2Fauth%2Fcallback", "%2Fevil");
    assert_ne!(url, auth.url);
    let err = ScriptedUser::new()
        .expect("scripted user")
        .authorize(&url, "alice", "alice-password", "http://127.0.0.1:9/")
        .await
        .expect_err("the IdP must refuse the redirect_uri");
    assert!(err.to_string().contains("400"), "{err:#}");
}
