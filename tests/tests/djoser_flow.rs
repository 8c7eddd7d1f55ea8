//! The djoser-compatible flow against the real oidc-provider, with the api
//! and the worker as separate processes on PostgreSQL and RabbitMQ.

use reqwest::StatusCode;
use serde_json::json;
use socialauth_common::crypto::{hash_token, random_token};
use socialauth_common::now_ms;
use socialauth_common::store::NewOAuthState;
use socialauth_tests::stack::{Mode, poll_json};
use socialauth_tests::world::{REDIRECT_URI, World};
use std::time::Duration;

#[tokio::test]
async fn first_login_creates_a_user_and_the_next_login_finds_it() -> anyhow::Result<()> {
    let w = World::start(Mode::Production).await?;
    let (status, first) = w.login("corp", "alice").await?;
    assert_eq!(status, StatusCode::CREATED, "{first}\n{}", w.stack.logs());
    assert_eq!(first["is_new"], true);
    assert_eq!(first["user"]["email"], "alice@example.test");
    assert_eq!(first["user"]["first_name"], "Alice");
    let token = first["token"].as_str().expect("token").to_owned();

    let (status, again) = w.login("corp", "alice").await?;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["is_new"], false);
    assert_eq!(again["user"]["id"], first["user"]["id"]);
    assert_ne!(again["token"], first["token"]);

    let (status, me) = w.get_auth("/users/me", "Token", &token).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["id"], first["user"]["id"]);
    assert_eq!(me["social_accounts"][0]["provider"], "corp");
    let (status, _) = w.get_auth("/users/me", "Bearer", &token).await;
    assert_eq!(status, StatusCode::OK);

    // Only the hash of the token is stored.
    let store = w.stack.store().await?;
    assert!(
        store
            .find_user_by_token(&hash_token(&token), now_ms())
            .await?
            .is_some()
    );
    Ok(())
}

#[tokio::test]
async fn logout_revokes_the_token() -> anyhow::Result<()> {
    let w = World::start(Mode::Production).await?;
    let (_, body) = w.login("corp", "alice").await?;
    let token = body["token"].as_str().expect("token");
    let resp = w
        .http
        .post(w.stack.url("/auth/logout"))
        .header("Authorization", format!("Token {token}"))
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (status, body) = w.get_auth("/users/me", "Token", token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({"detail": "Invalid token."}));
    let (status, body) = (
        w.http.get(w.stack.url("/users/me")).send().await?.status(),
        (),
    );
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body:?}");
    Ok(())
}

#[tokio::test]
async fn a_form_body_and_a_json_body_both_log_in() -> anyhow::Result<()> {
    let w = World::start(Mode::Production).await?;
    let cb = w.callback("corp", "zoe").await?;
    let code = cb.code.expect("code");
    let state = cb.state.expect("state");
    let (status, body) = w
        .post_form("corp", &[("code", &code), ("state", &state)])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["is_new"], true);
    assert_eq!(body["user"]["first_name"], "Zoë");
    assert_eq!(body["user"]["last_name"], "Ñandú 山田");

    let cb = w.callback("corp", "zoe").await?;
    let (status, body) = w
        .post_json("corp", &json!({"code": cb.code, "state": cb.state}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["is_new"], false);
    Ok(())
}

/// A double submit of the callback gets the first answer, its very token;
/// the state with another code, or after the retry window, is refused.
#[tokio::test]
async fn a_double_submitted_state_gets_the_first_result_and_nothing_else() -> anyhow::Result<()> {
    let w = World::start_with(Mode::Production, |o| {
        o.security_toml = "retry_window_secs = 2".into()
    })
    .await?;
    let cb = w.callback("corp", "alice").await?;
    let body = json!({"code": cb.code, "state": cb.state});
    let ((s1, first), (s2, second)) =
        tokio::join!(w.post_json("corp", &body), w.post_json("corp", &body));
    for (status, answer) in [(s1, &first), (s2, &second)] {
        assert_eq!(status, StatusCode::CREATED, "{answer}\n{}", w.stack.logs());
    }
    assert_eq!(first["token"], second["token"], "one token, never a second");
    assert_eq!(first["user"]["id"], second["user"]["id"]);
    let (status, again) = w.post_json("corp", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["token"], first["token"]);

    let forged = json!({"code": "another-code", "state": cb.state});
    let (status, refused) = w.post_json("corp", &forged).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused, json!({"non_field_errors": ["invalid_state"]}));

    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let (status, late) = w.post_json("corp", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{late}");
    assert_eq!(late, json!({"non_field_errors": ["invalid_state"]}));
    let token = first["token"].as_str().expect("token");
    let (status, _) = w.get_auth("/users/me", "Token", token).await;
    assert_eq!(status, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn an_expired_state_is_rejected() -> anyhow::Result<()> {
    let w = World::start(Mode::Production).await?;
    let state = random_token(32);
    let store = w.stack.store().await?;
    let past = now_ms() - 1_000;
    store
        .insert_oauth_state(&NewOAuthState {
            state_hash: hash_token(&state),
            provider: "corp".into(),
            redirect_uri: REDIRECT_URI.into(),
            pkce_verifier: Some(random_token(32)),
            nonce: Some(random_token(16)),
            created_at: past - 600_000,
            expires_at: past,
            user_id: None,
        })
        .await?;
    let (status, body) = w
        .post_json("corp", &json!({"code": "any", "state": state}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"non_field_errors": ["state_expired"]}));
    Ok(())
}

#[tokio::test]
async fn redirect_uris_off_the_allow_list_and_unknown_providers_are_refused() -> anyhow::Result<()>
{
    let w = World::start(Mode::Production).await?;
    let (status, body) = w.begin("corp", Some("http://127.0.0.1:9/evil")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"non_field_errors": ["redirect_uri_not_allowed"]})
    );
    let (status, body) = w.begin("corp", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"non_field_errors": ["redirect_uri_required"]}));
    let (status, body) = w.begin("nosuch", Some(REDIRECT_URI)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"provider": ["Invalid provider"]}));
    let (status, body) = w
        .post_json("nosuch", &json!({"code": "c", "state": "s"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"provider": ["Invalid provider"]}));
    Ok(())
}

#[tokio::test]
async fn a_code_the_provider_refuses_is_invalid_credentials() -> anyhow::Result<()> {
    let w = World::start(Mode::Production).await?;
    let cb = w.callback("corp", "alice").await?;
    let (status, body) = w
        .post_json("corp", &json!({"code": "not-a-code", "state": cb.state}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}", w.stack.logs());
    assert_eq!(body, json!({"non_field_errors": ["invalid_credentials"]}));
    Ok(())
}

#[tokio::test]
async fn bad_bodies_get_contract_shaped_errors() -> anyhow::Result<()> {
    let w = World::start(Mode::Production).await?;
    let (status, body) = w.post_json("corp", &json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"code": ["This field is required."], "state": ["This field is required."]})
    );
    let (status, body) = w.post_form("corp", &[("code", "x")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"state": ["This field is required."]}));
    let resp = w
        .http
        .post(w.stack.url("/auth/o/corp/"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = resp.json().await?;
    assert!(body["non_field_errors"][0].is_string(), "{body}");
    let resp = w
        .http
        .post(w.stack.url("/auth/o/corp/"))
        .header("content-type", "text/plain")
        .body("code=x")
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let resp = w
        .http
        .post(w.stack.url("/auth/o/corp/"))
        .header("content-type", "application/json")
        .body(vec![b' '; 200_000])
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    Ok(())
}

#[tokio::test]
async fn pipeline_errors_for_missing_and_taken_emails() -> anyhow::Result<()> {
    let w = World::start(Mode::Production).await?;
    let (status, body) = w.login("corp", "nomail").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["email"], "no_email_provided");

    // An email sent with the request completes the signup.
    let cb = w.callback("corp", "nomail").await?;
    let (status, body) = w
        .post_json(
            "corp",
            &json!({"code": cb.code, "state": cb.state, "email": "noah@example.test"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["email"], "noah@example.test");

    // alice signs up with `corp`; the same email through another provider
    // is not linked by default.
    let (status, _) = w.login("corp", "alice").await?;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = w.login("corpoauth", "alice").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, json!({"email": "email_already_in_use"}));
    Ok(())
}

#[tokio::test]
async fn a_plain_oauth2_provider_logs_in() -> anyhow::Result<()> {
    let w = World::start(Mode::Production).await?;
    let (status, body) = w.login("corpoauth", "bob").await?;
    assert_eq!(status, StatusCode::CREATED, "{body}\n{}", w.stack.logs());
    assert_eq!(body["is_new"], true);
    assert_eq!(body["user"]["email"], "bob@example.test");
    Ok(())
}

#[tokio::test]
async fn a_login_posted_while_no_worker_runs_is_answered_by_polling() -> anyhow::Result<()> {
    let w = World::start_with(Mode::Production, |o| o.reply_timeout_ms = 1_500).await?;
    let cb = w.callback("corp", "alice").await?;
    let mut w = w;
    w.stack.stop_workers().await;

    let (status, accepted) = w
        .post_json("corp", &json!({"code": cb.code, "state": cb.state}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let job_id = accepted["job_id"].as_str().expect("job_id").to_owned();
    assert_eq!(accepted["status_url"], format!("/auth/jobs/{job_id}"));
    let status_url = w.stack.url(&format!("/auth/jobs/{job_id}"));
    let pending: serde_json::Value = w.http.get(&status_url).send().await?.json().await?;
    assert_eq!(pending, json!({"status": "pending"}));

    w.stack.start_worker()?;
    let done = poll_json(&w.http, &status_url, Duration::from_secs(30), |b| {
        b["status"] != "pending"
    })
    .await?;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", w.stack.logs());
    assert_eq!(done["result"]["is_new"], true);
    let token = done["result"]["token"].as_str().expect("token");
    let (status, me) = w.get_auth("/users/me", "Token", token).await;
    assert_eq!(status, StatusCode::OK, "{me}");

    // The token is handed out once.
    let again: serde_json::Value = w.http.get(&status_url).send().await?.json().await?;
    assert_eq!(again["status"], "succeeded");
    assert!(again["result"].get("token").is_none(), "{again}");
    let (status, body) = (
        w.http
            .get(
                w.stack
                    .url("/auth/jobs/00000000-0000-0000-0000-000000000000"),
            )
            .send()
            .await?
            .status(),
        (),
    );
    assert_eq!(status, StatusCode::NOT_FOUND, "{body:?}");
    Ok(())
}

#[tokio::test]
async fn operations_endpoints_answer() -> anyhow::Result<()> {
    let w = World::start(Mode::Production).await?;
    let (status, _) = w.login("corp", "alice").await?;
    assert_eq!(status, StatusCode::CREATED);
    let ready: serde_json::Value = w
        .http
        .get(w.stack.url("/readyz"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        ready,
        json!({"status": "ready", "store": "ok", "queue": "ok"})
    );
    let metrics = w.metrics().await?;
    assert!(
        metrics.contains("socialauth_http_requests_total{route=\"/auth/o/{provider}/\",method=\"POST\",status=\"201\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("socialauth_jobs_published_total{kind=\"login\"}"));
    let doc: serde_json::Value = w
        .http
        .get(w.stack.url("/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    assert!(
        doc["paths"]["/auth/o/{provider}/"]["post"].is_object(),
        "{doc}"
    );
    assert!(doc["paths"]["/users/me"]["get"].is_object());
    Ok(())
}

/// A key rotation in the middle of logins, applied to the api first (a
/// rolling deploy): a state made before it still makes its PKCE verifier
/// and nonce (it names its key), and a token a worker on the old key
/// issued is shown to the poll by the rotated api — the very token, which
/// logs in.
#[tokio::test]
async fn a_key_rotation_mid_login_keeps_states_and_issued_tokens() -> anyhow::Result<()> {
    let mut w = World::start_with(Mode::Production, |o| o.reply_timeout_ms = 1_500).await?;
    let cb = w.callback("corp", "alice").await?;
    let state = cb.state.clone().expect("the callback's state");
    assert!(state.ends_with(".k1"), "{state}");
    w.stack.stop_workers().await;
    let old_config = w.stack.rotate_key().await?;

    let (status, accepted) = w
        .post_json("corp", &json!({"code": cb.code, "state": cb.state}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let job_id = accepted["job_id"].as_str().expect("job_id").to_owned();
    w.stack.start_worker_with(&old_config)?;
    let status_url = w.stack.url(&format!("/auth/jobs/{job_id}"));
    let done = poll_json(&w.http, &status_url, Duration::from_secs(30), |b| {
        b["status"] != "pending"
    })
    .await?;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", w.stack.logs());
    let token = done["result"]["token"].as_str().expect("token");
    let (status, me) = w.get_auth("/users/me", "Token", token).await;
    assert_eq!(status, StatusCode::OK, "{me}");

    // The deploy finished: a new login's state names the new key.
    w.stack.stop_workers().await;
    w.stack.start_worker()?;
    let (status, again) = w.login("corp", "alice").await?;
    assert_eq!(status, StatusCode::CREATED, "{again}\n{}", w.stack.logs());
    assert_eq!(again["is_new"], false);
    let (_, begun) = w.begin("corp", Some(REDIRECT_URI)).await;
    let url = begun["authorization_url"]
        .as_str()
        .expect("authorization_url");
    assert!(url.contains(".k2"), "{url}");
    Ok(())
}
