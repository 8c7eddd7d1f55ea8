//! Outbound protection per provider: the real oidc-provider is killed
//! mid-test, its breaker opens, logins to it are refused at once (503
//! `provider_unavailable` with `Retry-After`, the state unused) while the
//! OAuth 1.0a provider keeps working, `GET /providers` and the metrics
//! show it, and once the IdP is back a login closes the breaker again.

use reqwest::StatusCode;
use serde_json::{Value, json};
use socialauth_tests::idp::{Idp, IdpConfig};
use socialauth_tests::stack::Mode;
use socialauth_tests::world::{REDIRECT_URI, World};
use std::time::{Duration, Instant};

socialauth_tests::in_both_modes!(
    a_provider_that_is_down_is_refused_at_once_and_the_others_keep_working,
    get_providers_lists_the_configured_providers,
);

/// The breaker of these tests: open after three failed requests, for 3 s.
const WORKER_TOML: &str = "breaker_failures = 3\nbreaker_open_secs = 3\nmax_attempts = 2\n";

async fn providers(w: &World) -> Value {
    let response = w
        .http
        .get(w.stack.url("/providers"))
        .send()
        .await
        .expect("GET /providers");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

fn provider<'a>(all: &'a Value, name: &str) -> &'a Value {
    all["providers"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("{name} in {all}"))
}

async fn get_providers_lists_the_configured_providers(mode: Mode) -> anyhow::Result<()> {
    let w = World::start(mode).await?;
    let all = providers(&w).await;
    let names: Vec<&str> = all["providers"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["corp", "corphs", "corpoauth", "twitter"], "{all}");
    assert_eq!(
        provider(&all, "corp"),
        &json!({"name": "corp", "protocol": "oidc", "available": true, "breaker": "closed", "retry_after": null})
    );
    assert_eq!(provider(&all, "twitter")["protocol"], "oauth1");
    Ok(())
}

async fn a_provider_that_is_down_is_refused_at_once_and_the_others_keep_working(
    mode: Mode,
) -> anyhow::Result<()> {
    let mut w = World::start_with(mode, |o| o.worker_toml = WORKER_TOML.into()).await?;
    let (status, body) = w.login("corp", "alice").await?;
    assert_eq!(status, StatusCode::CREATED, "{body}\n{}", w.stack.logs());

    // Codes the IdP issued before it went down.
    let mut callbacks = Vec::new();
    for _ in 0..10 {
        callbacks.push(w.callback("corp", "alice").await?);
    }
    w.idp.stop().await?;
    let down = Instant::now();

    // The first logins fail at the worker (the code exchange cannot
    // connect); once the breaker is open the api refuses them itself.
    let mut refused = None;
    for cb in &callbacks {
        let sent = Instant::now();
        let response = w
            .http
            .post(w.stack.url("/auth/o/corp/"))
            .json(&json!({"code": cb.code, "state": cb.state}))
            .send()
            .await?;
        let took = sent.elapsed();
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let body: Value = response.json().await?;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body, json!({"non_field_errors": ["provider_unavailable"]}));
        if let Some(secs) = retry_after {
            refused = Some((took, secs, sent.duration_since(down)));
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (took, secs, after) = refused.expect("the api refuses the provider at once");
    assert!(took < Duration::from_millis(500), "refused in {took:?}");
    assert!((1..=3).contains(&secs), "Retry-After {secs}");
    println!(
        "BREAKER mode={mode:?} refused_by_the_api_after_ms={} refusal_ms={} retry_after_s={secs}",
        after.as_millis(),
        took.as_millis()
    );

    let all = providers(&w).await;
    assert_eq!(provider(&all, "corp")["breaker"], "open", "{all}");
    assert_eq!(provider(&all, "corp")["available"], false);
    assert!(provider(&all, "corp")["retry_after"].as_u64() >= Some(1));
    assert_eq!(provider(&all, "twitter")["breaker"], "closed");

    // The OAuth 1.0a provider is another process: its logins go on.
    let (status, body) = w.begin("twitter", Some(REDIRECT_URI)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["authorization_url"].as_str().unwrap_or_default();
    let (oauth_token, verifier) = w.authorize_oauth1(url, "tw_alice").await?;
    let (status, body) = w
        .post_json(
            "twitter",
            &json!({"oauth_token": oauth_token, "oauth_verifier": verifier}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    if mode == Mode::Embedded {
        let metrics = w.metrics().await?;
        assert!(
            metrics.contains(r#"socialauth_provider_breaker_open{provider="corp"} 1"#),
            "{metrics}"
        );
        assert!(
            metrics.contains(r#"socialauth_provider_breaker_opened_total{provider="corp"}"#),
            "{metrics}"
        );
    }

    // The IdP comes back on its port; after the open time a trial login
    // goes through and closes the breaker.
    let port = url::Url::parse(&w.idp.issuer)?.port().unwrap_or_default();
    w.idp = Idp::start(IdpConfig {
        port,
        ..w.idp.config.clone()
    })
    .await?;
    let back = Instant::now();
    let deadline = back + Duration::from_secs(20);
    loop {
        // While open, the api sends nobody to the provider either.
        let (status, body) = w.begin("corp", Some(REDIRECT_URI)).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(
                Instant::now() < deadline,
                "corp never recovered\n{}",
                w.stack.logs()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = w.login("corp", "alice").await?;
        if status.is_success() {
            assert_eq!(body["is_new"], false, "{body}");
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(
            Instant::now() < deadline,
            "corp never recovered\n{}",
            w.stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let recovered = back.elapsed();
    let deadline = Instant::now() + Duration::from_secs(5);
    while provider(&providers(&w).await, "corp")["breaker"] != "closed" {
        assert!(
            Instant::now() < deadline,
            "GET /providers still shows it open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "BREAKER mode={mode:?} login_again_after_the_idp_returned_ms={}",
        recovered.as_millis()
    );
    Ok(())
}
