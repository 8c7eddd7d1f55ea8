//! The embedded default: one `socialauth-api` process, nothing configured
//! but the provider, SQLite and the in-process queue.

use reqwest::StatusCode;
use serde_json::json;
use socialauth_tests::stack::Mode;
use socialauth_tests::world::World;

#[tokio::test]
async fn the_embedded_default_logs_in_and_finds_returning_users() -> anyhow::Result<()> {
    let w = World::start(Mode::Embedded).await?;
    let (status, first) = w.login("corp", "alice").await?;
    assert_eq!(status, StatusCode::CREATED, "{first}\n{}", w.stack.logs());
    assert_eq!(first["is_new"], true);
    let (status, again) = w.login("corp", "alice").await?;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again["is_new"], false);
    assert_eq!(again["user"]["id"], first["user"]["id"]);
    let (status, me) = w
        .get_auth(
            "/users/me",
            "Token",
            first["token"].as_str().expect("token"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
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
    Ok(())
}

#[tokio::test]
async fn the_embedded_default_reports_the_contract_errors() -> anyhow::Result<()> {
    let w = World::start(Mode::Embedded).await?;
    let cb = w.callback("corp", "bob").await?;
    let (status, body) = w
        .post_json("corp", &json!({"code": "refused", "state": cb.state}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"non_field_errors": ["invalid_credentials"]}));
    let (status, body) = w
        .post_form(
            "corp",
            &[("code", "x"), ("state", cb.state.as_deref().unwrap_or(""))],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"non_field_errors": ["invalid_state"]}));
    Ok(())
}
