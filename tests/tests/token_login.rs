//! `POST /auth/token/{provider}/` (token login, DESIGN §3): the test acts as
//! a client-side SDK — it signs a user in at the real oidc-provider with
//! one of the IdP's clients, redeems the code itself, and posts the access
//! token or id_token it got. Every test runs in production mode (api +
//! worker processes, PostgreSQL, RabbitMQ) and in the embedded default.

use anyhow::Context;
use reqwest::StatusCode;
use serde_json::{Value, json};
use socialauth_common::crypto::hash_token;
use socialauth_tests::idp::{IOS_CLIENT_ID, OTHER_APP_CLIENT_ID, STANDARD_CLIENT_ID};
use socialauth_tests::stack::{Mode, StackOptions};
use socialauth_tests::world::{REDIRECT_URI, World, send};

socialauth_tests::in_both_modes!(
    the_request_takes_exactly_one_token,
    an_access_token_signs_up_then_logs_in,
    an_access_token_of_another_app_or_no_longer_active_is_refused,
    an_id_token_for_any_of_our_client_ids_signs_in,
    the_nonce_follows_the_providers_convention,
    apples_first_sign_in_name_is_kept_and_never_changed,
    the_same_token_posted_twice_gets_the_first_outcome,
    linking_policies_hold_on_token_login,
    a_token_login_keeps_the_tokens_a_code_flow_stored,
);

/// The scopes of a full sign-in; Apple's id_token has no name (`email`
/// only).
const FULL: &str = "openid email profile";
const EMAIL_ONLY: &str = "openid email";

const RAW_MISMATCH: &str = "does not match: this provider's id_token carries the nonce as sent";
const SHA256_MISMATCH: &str =
    "does not match: this provider's id_token carries the SHA-256 (hex) of the nonce sent";

fn invalid_credentials() -> Value {
    json!({"non_field_errors": "invalid_credentials"})
}

fn token(body: &Value) -> String {
    body["token"].as_str().unwrap_or_default().to_owned()
}

/// `corp` takes the iOS client's tokens too.
fn with_ios_client(o: &mut StackOptions) {
    o.providers_toml = o.providers_toml.replacen(
        "[providers.corp]\n",
        &format!("[providers.corp]\nclient_ids = [\"{IOS_CLIENT_ID}\"]\n"),
        1,
    );
}

/// Another provider `name` on the same IdP as `corp` (its client ids
/// too), with `lines` added.
fn add_corp_copy(o: &mut StackOptions, name: &str, lines: &str) {
    let corp = o
        .providers_toml
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .to_owned();
    let copy = corp.replace("[providers.corp]", &format!("[providers.{name}]"));
    o.providers_toml.push_str(&format!("\n{copy}\n{lines}\n"));
}

async fn start(mode: Mode, adjust: impl FnOnce(&mut StackOptions)) -> anyhow::Result<World> {
    World::start_with(mode, |o| {
        with_ios_client(o);
        adjust(o);
    })
    .await
}

/// What a client-side SDK holds once `user` signed in with the app's
/// client `client_id`.
struct SdkTokens {
    access_token: String,
    id_token: String,
}

/// The SDK's sign-in: an authorization request (PKCE, `nonce` if any,
/// `scope`), the user's login and consent, and the code redeemed at the
/// IdP's token endpoint with the client's own credentials.
async fn sdk_sign_in(
    w: &World,
    client_id: &str,
    user: &str,
    nonce: Option<&str>,
    scope: &str,
) -> anyhow::Result<SdkTokens> {
    let (code, verifier) = w
        .client_side_code_scoped(client_id, user, nonce, scope)
        .await?;
    let secret = &w
        .idp
        .config
        .clients
        .iter()
        .find(|c| c.client_id == client_id)
        .context("no such IdP client")?
        .client_secret;
    let (status, body) = send(
        w.http
            .post(w.idp.token_endpoint())
            .basic_auth(client_id, Some(secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
            ]),
    )
    .await;
    anyhow::ensure!(status == StatusCode::OK, "token endpoint: {status} {body}");
    Ok(SdkTokens {
        access_token: body["access_token"]
            .as_str()
            .context("access_token")?
            .to_owned(),
        id_token: body["id_token"].as_str().context("id_token")?.to_owned(),
    })
}

/// `POST /auth/token/{provider}/` with a JSON body.
async fn post_token(w: &World, provider: &str, body: &Value) -> (StatusCode, Value) {
    send(
        w.http
            .post(w.stack.url(&format!("/auth/token/{provider}/")))
            .json(body),
    )
    .await
}

/// `POST /auth/token/{provider}/` as a form.
async fn post_token_form(
    w: &World,
    provider: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, Value) {
    send(
        w.http
            .post(w.stack.url(&format!("/auth/token/{provider}/")))
            .form(fields),
    )
    .await
}

/// `user` signs in with the iOS client and posts the access token.
async fn access_token_login(
    w: &World,
    provider: &str,
    user: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    let t = sdk_sign_in(w, IOS_CLIENT_ID, user, None, FULL).await?;
    Ok(post_token(w, provider, &json!({"access_token": t.access_token})).await)
}

async fn the_request_takes_exactly_one_token(mode: Mode) -> anyhow::Result<()> {
    let w = start(mode, |_| {}).await?;
    let one = json!(["Send exactly one of access_token and id_token."]);
    let both = json!({"access_token": one, "id_token": one});
    for body in [
        json!({}),
        json!({"access_token": "", "id_token": ""}),
        json!({"access_token": "a", "id_token": "b"}),
    ] {
        let (status, answer) = post_token(&w, "corp", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer, both, "{body}");
    }
    let (status, answer) = post_token_form(&w, "corp", &[("email", "a@b.test")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer, both);
    let (status, answer) = post_token(&w, "nosuch", &json!({"access_token": "a"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer, json!({"provider": ["Invalid provider"]}));
    // An OAuth2 provider has no id_token to check; OAuth 1.0a takes no
    // client-side token.
    let (status, answer) = post_token(&w, "corpoauth", &json!({"id_token": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer,
        json!({"id_token": ["This provider issues no id_token; send an access_token."]})
    );
    // An OAuth2 provider without a check that binds an access token to
    // this app takes none: any app's token would do.
    let (status, answer) = post_token(&w, "corpoauth", &json!({"access_token": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer,
        json!({"access_token": ["This provider takes no client-side access tokens."]})
    );
    let (status, answer) = post_token(&w, "twitter", &json!({"access_token": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer,
        json!({"access_token": ["This provider takes no client-side access tokens."]})
    );
    let (status, answer) = post_token(&w, "corp", &json!({"id_token": "x", "user": 3})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer, json!({"user": ["Enter a JSON object."]}));
    // Garbage is refused by the worker like a refused code.
    let (status, answer) = post_token(&w, "corp", &json!({"id_token": "not.a.jwt"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer, invalid_credentials());
    let (status, doc) = send(w.http.get(w.stack.url("/openapi.json"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["paths"]["/auth/token/{provider}/"]["post"].is_object(),
        "{}",
        doc["paths"]
    );
    Ok(())
}

async fn an_access_token_signs_up_then_logs_in(mode: Mode) -> anyhow::Result<()> {
    let w = start(mode, |_| {}).await?;
    let t = sdk_sign_in(&w, STANDARD_CLIENT_ID, "zoe", None, FULL).await?;
    let (status, first) = post_token(&w, "corp", &json!({"access_token": t.access_token})).await;
    assert_eq!(status, StatusCode::CREATED, "{first}\n{}", w.stack.logs());
    assert_eq!(first["is_new"], true);
    assert_eq!(first["user"]["email"], "zoe@example.test");
    assert_eq!(first["user"]["email_verified"], true);
    assert_eq!(first["user"]["first_name"], "Zoë");
    assert_eq!(first["user"]["last_name"], "Ñandú 山田");

    // The iOS build's token, as a form: the same user, 200.
    let t = sdk_sign_in(&w, IOS_CLIENT_ID, "zoe", None, FULL).await?;
    let (status, again) = post_token_form(&w, "corp", &[("access_token", &t.access_token)]).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["is_new"], false);
    assert_eq!(again["user"]["id"], first["user"]["id"]);
    let (status, me) = w.get_auth("/users/me", "Token", &token(&again)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["social_accounts"].as_array().map(Vec::len), Some(1));

    // No email from the provider: resumable as on `/social-auth`.
    let (status, stopped) = access_token_login(&w, "corp", "nomail").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{stopped}");
    assert_eq!(stopped["email"], "no_email_provided");
    let partial = stopped["partial_token"].as_str().unwrap_or_default();
    let (status, resumed) = w
        .social_auth(&json!({"provider": "corp", "partial_token": partial,
                             "email": "noah@example.test"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{resumed}");
    assert_eq!(resumed["user"]["email_verified"], false);

    // No token taken by a login is stored in clear.
    let dump = w.stack.dump_tables().await?;
    assert!(!dump.contains(t.access_token.as_str()), "{dump}");
    Ok(())
}

async fn an_access_token_of_another_app_or_no_longer_active_is_refused(
    mode: Mode,
) -> anyhow::Result<()> {
    let w = start(mode, |_| {}).await?;
    // Another app's token works at userinfo; introspection says whose it is.
    let other = sdk_sign_in(&w, OTHER_APP_CLIENT_ID, "alice", None, FULL).await?;
    let (status, body) = post_token(&w, "corp", &json!({"access_token": other.access_token})).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{body}\n{}",
        w.stack.logs()
    );
    assert_eq!(body, invalid_credentials());

    // Our own token, revoked at the provider: introspection says inactive.
    let ours = sdk_sign_in(&w, STANDARD_CLIENT_ID, "alice", None, FULL).await?;
    let secret = &w.idp.client().client_secret;
    let (status, _) = send(
        w.http
            .post(format!("{}/token/revocation", w.idp.issuer))
            .basic_auth(STANDARD_CLIENT_ID, Some(secret))
            .form(&[("token", ours.access_token.as_str())]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = post_token(&w, "corp", &json!({"access_token": ours.access_token})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, invalid_credentials());
    let (status, body) = post_token(&w, "corp", &json!({"access_token": "no-such-token"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, invalid_credentials());

    // Nothing was made of them: alice's first accepted login is a signup.
    let (status, body) = access_token_login(&w, "corp", "alice").await?;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["is_new"], true);
    Ok(())
}

async fn an_id_token_for_any_of_our_client_ids_signs_in(mode: Mode) -> anyhow::Result<()> {
    let w = start(mode, |o| {
        add_corp_copy(o, "corpbrief", "id_token_max_age_secs = 1")
    })
    .await?;
    let ios = sdk_sign_in(&w, IOS_CLIENT_ID, "alice", Some("n-ios"), FULL).await?;
    let (status, first) = post_token(
        &w,
        "corp",
        &json!({"id_token": ios.id_token, "nonce": "n-ios"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}\n{}", w.stack.logs());
    assert_eq!(first["user"]["email"], "alice@example.test");
    assert_eq!(first["user"]["email_verified"], true);
    assert_eq!(first["user"]["first_name"], "Alice");

    // The web client's id_token (no nonce asked, none sent): the same user.
    let web = sdk_sign_in(&w, STANDARD_CLIENT_ID, "alice", None, FULL).await?;
    let (status, again) = post_token(&w, "corp", &json!({"id_token": web.id_token})).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["user"]["id"], first["user"]["id"]);

    // A client id we do not have: refused, whatever its signature.
    let other = sdk_sign_in(&w, OTHER_APP_CLIENT_ID, "alice", None, FULL).await?;
    let (status, body) = post_token(&w, "corp", &json!({"id_token": other.id_token})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, invalid_credentials());

    // Older than the provider's maximum age: refused.
    let old = sdk_sign_in(&w, STANDARD_CLIENT_ID, "bob", None, FULL).await?;
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let (status, body) = post_token(&w, "corpbrief", &json!({"id_token": old.id_token})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, invalid_credentials());
    // The same token is young enough for `corp` (600 s).
    let (status, body) = post_token(&w, "corp", &json!({"id_token": old.id_token})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Ok(())
}

async fn the_nonce_follows_the_providers_convention(mode: Mode) -> anyhow::Result<()> {
    let w = start(mode, |o| {
        add_corp_copy(o, "corpapple", "nonce_convention = \"sha256\"");
    })
    .await?;
    // `corp` (raw): the id_token carries the nonce as sent.
    let t = sdk_sign_in(&w, IOS_CLIENT_ID, "bob", Some("raw-one"), FULL).await?;
    let cases = [
        (
            json!({"id_token": t.id_token, "nonce": "raw-two"}),
            json!({"nonce": [RAW_MISMATCH]}),
        ),
        (
            json!({"id_token": t.id_token, "nonce": hash_token("raw-one")}),
            json!({"nonce": [RAW_MISMATCH]}),
        ),
        (
            json!({"id_token": t.id_token}),
            json!({"nonce": ["This field is required."]}),
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = post_token(&w, "corp", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer, expected);
    }
    // A refused nonce used nothing up: the right one signs in.
    let (status, bob) = post_token(
        &w,
        "corp",
        &json!({"id_token": t.id_token, "nonce": "raw-one"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{bob}\n{}", w.stack.logs());

    // `corpapple` (sha256): the app gives the provider the nonce's SHA-256
    // and us the nonce.
    let raw = "apple-raw-nonce";
    let t = sdk_sign_in(&w, IOS_CLIENT_ID, "zoe", Some(&hash_token(raw)), FULL).await?;
    let (status, answer) = post_token(
        &w,
        "corpapple",
        &json!({"id_token": t.id_token, "nonce": hash_token(raw)}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer, json!({"nonce": [SHA256_MISMATCH]}));
    let (status, answer) = post_token(&w, "corpapple", &json!({"id_token": t.id_token})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer, json!({"nonce": ["This field is required."]}));
    let (status, zoe) = post_token(
        &w,
        "corpapple",
        &json!({"id_token": t.id_token, "nonce": raw}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{zoe}");
    assert_eq!(zoe["user"]["email"], "zoe@example.test");
    Ok(())
}

async fn apples_first_sign_in_name_is_kept_and_never_changed(mode: Mode) -> anyhow::Result<()> {
    let w = start(mode, |o| {
        add_corp_copy(o, "corpapple", "nonce_convention = \"sha256\"");
    })
    .await?;
    // Apple's id_token: an email, no name; the name comes once, beside it,
    // as a JSON string in a form post. Its email is not used.
    let t = sdk_sign_in(
        &w,
        IOS_CLIENT_ID,
        "alice",
        Some(&hash_token("n1")),
        EMAIL_ONLY,
    )
    .await?;
    let user = json!({"name": {"firstName": "Ann", "lastName": "Apple"},
                      "email": "someone-else@example.test"})
    .to_string();
    let (status, first) = post_token_form(
        &w,
        "corpapple",
        &[("id_token", &t.id_token), ("nonce", "n1"), ("user", &user)],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}\n{}", w.stack.logs());
    assert_eq!(first["user"]["first_name"], "Ann");
    assert_eq!(first["user"]["last_name"], "Apple");
    assert_eq!(first["user"]["email"], "alice@example.test");
    assert_eq!(first["user"]["email_verified"], true);

    // A later sign-in with another name (an object this time) changes nothing.
    let t = sdk_sign_in(
        &w,
        IOS_CLIENT_ID,
        "alice",
        Some(&hash_token("n2")),
        EMAIL_ONLY,
    )
    .await?;
    let (status, again) = post_token(
        &w,
        "corpapple",
        &json!({"id_token": t.id_token, "nonce": "n2",
                "user": {"name": {"firstName": "Eve", "lastName": "Other"}}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["user"]["id"], first["user"]["id"]);
    assert_eq!(again["user"]["first_name"], "Ann");
    assert_eq!(again["user"]["last_name"], "Apple");

    // An id_token with a name keeps its own: the supplied one is cosmetic.
    let t = sdk_sign_in(&w, IOS_CLIENT_ID, "zoe", Some(&hash_token("n3")), FULL).await?;
    let (status, zoe) = post_token(
        &w,
        "corpapple",
        &json!({"id_token": t.id_token, "nonce": "n3",
                "user": {"name": {"firstName": "Eve", "lastName": "Other"}}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{zoe}");
    assert_eq!(zoe["user"]["first_name"], "Zoë");
    Ok(())
}

async fn the_same_token_posted_twice_gets_the_first_outcome(mode: Mode) -> anyhow::Result<()> {
    let w = start(mode, |o| o.security_toml = "retry_window_secs = 3".into()).await?;
    let t = sdk_sign_in(&w, IOS_CLIENT_ID, "alice", Some("n-twice"), FULL).await?;
    let at = json!({"access_token": t.access_token});
    // A double tap: both at once, one user, one app token.
    let (a, b) = tokio::join!(post_token(&w, "corp", &at), post_token(&w, "corp", &at));
    for (status, answer) in [&a, &b] {
        assert_eq!(*status, StatusCode::CREATED, "{answer}\n{}", w.stack.logs());
    }
    assert_eq!(token(&a.1), token(&b.1), "one token, never a second");
    let (status, c) = post_token(&w, "corp", &at).await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    assert_eq!(token(&c), token(&a.1));

    // The id_token of the same sign-in is a credential of its own.
    let id = json!({"id_token": t.id_token, "nonce": "n-twice"});
    let (status, first) = post_token(&w, "corp", &id).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["user"]["id"], a.1["user"]["id"]);
    let (status, second) = post_token(&w, "corp", &id).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(token(&second), token(&first));
    assert_ne!(token(&first), token(&a.1));
    // With another nonce it is not the same request: refused.
    let (status, body) =
        post_token(&w, "corp", &json!({"id_token": t.id_token, "nonce": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"nonce": [RAW_MISMATCH]}));

    // After the window, a replayed token gets nothing.
    tokio::time::sleep(std::time::Duration::from_millis(3_500)).await;
    for body in [&at, &id] {
        let (status, late) = post_token(&w, "corp", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{late}");
        assert_eq!(late, invalid_credentials());
    }
    Ok(())
}

/// `corpdeny`, `corplink`, `corponly`: `corp` again under each linking
/// policy, every way in deciding alike: alice (verified) and bob
/// (unverified) have accounts through `corp`.
async fn linking_policies_hold_on_token_login(mode: Mode) -> anyhow::Result<()> {
    let w = start(mode, |o| {
        o.security_toml = "linking = \"deny\"".into();
        add_corp_copy(o, "corpdeny", "");
        add_corp_copy(o, "corplink", "linking = \"link_verified\"");
        add_corp_copy(o, "corponly", "linking = \"link_only\"");
    })
    .await?;
    let (status, alice) = access_token_login(&w, "corp", "alice").await?;
    assert_eq!(status, StatusCode::CREATED, "{alice}\n{}", w.stack.logs());
    let (status, _) = access_token_login(&w, "corp", "bob").await?;
    assert_eq!(status, StatusCode::CREATED);
    let in_use = json!({"email": "email_already_in_use"});
    let closed = json!({"non_field_errors": ["signup_closed"]});

    // deny: never linked by email.
    let (status, body) = access_token_login(&w, "corpdeny", "alice").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, in_use);

    // link_verified: alice's verified email links (an id_token this time);
    // bob's unverified one does not; a new person signs up.
    let t = sdk_sign_in(&w, IOS_CLIENT_ID, "alice", None, FULL).await?;
    let (status, linked) = post_token(&w, "corplink", &json!({"id_token": t.id_token})).await;
    assert_eq!(status, StatusCode::OK, "{linked}");
    assert_eq!(linked["is_new"], false);
    assert_eq!(linked["user"]["id"], alice["user"]["id"]);
    let (status, body) = access_token_login(&w, "corplink", "bob").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, in_use);
    let (status, zoe) = access_token_login(&w, "corplink", "zoe").await?;
    assert_eq!(status, StatusCode::CREATED, "{zoe}");

    // link_only: alice is linked and signs in; nobody is created.
    for _ in 0..2 {
        let (status, body) = access_token_login(&w, "corponly", "alice").await?;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["user"]["id"], alice["user"]["id"]);
    }
    for user in ["bob", "nomail"] {
        let (status, body) = access_token_login(&w, "corponly", user).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{user}: {body}");
        assert_eq!(body, closed, "{user}");
    }
    let t = sdk_sign_in(&w, IOS_CLIENT_ID, "nomail", None, FULL).await?;
    let (status, body) = post_token(
        &w,
        "corponly",
        &json!({"id_token": t.id_token, "email": "noah@example.test"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, closed);
    let (_, me) = w.get_auth("/users/me", "Token", &token(&alice)).await;
    assert_eq!(
        me["social_accounts"].as_array().map(Vec::len),
        Some(3),
        "{me}"
    );
    Ok(())
}

/// A user whose link a code flow made signs in with the app's tokens: the
/// link keeps the provider tokens the code flow stored (which this service
/// can refresh and revoke), still active at the provider.
async fn a_token_login_keeps_the_tokens_a_code_flow_stored(mode: Mode) -> anyhow::Result<()> {
    let w = start(mode, |_| {}).await?;
    let (code, verifier) = w.client_side_code("alice").await?;
    let (status, first) = w
        .social_auth(
            &json!({"provider": "corp", "code": code, "redirect_uri": REDIRECT_URI,
                             "code_verifier": verifier}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let user_id = first["user"]["id"].as_i64().unwrap_or_default();
    let (_, links) = w
        .get_auth("/auth/social-accounts/", "Token", &token(&first))
        .await;
    let link = links[0]["id"].as_i64().unwrap_or_default();
    let stored = w.stored_access_token(user_id, link).await?;

    let t = sdk_sign_in(&w, IOS_CLIENT_ID, "alice", Some("n-1"), FULL).await?;
    let (status, by_id_token) =
        post_token(&w, "corp", &json!({"id_token": t.id_token, "nonce": "n-1"})).await;
    assert_eq!(status, StatusCode::OK, "{by_id_token}");
    let (status, by_access_token) =
        post_token(&w, "corp", &json!({"access_token": t.access_token})).await;
    assert_eq!(status, StatusCode::OK, "{by_access_token}");
    for body in [&by_id_token, &by_access_token] {
        assert_eq!(body["user"]["id"], user_id);
    }
    assert_eq!(w.stored_access_token(user_id, link).await?, stored);
    Ok(())
}
