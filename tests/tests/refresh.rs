//! Provider-token refresh (DESIGN §3): `POST /auth/social-accounts/{id}/refresh`
//! and `GET /auth/social-accounts/{id}/token`, against the real
//! oidc-provider issuing refresh tokens (`offline_access` with
//! `prompt=consent`), in production mode and in the embedded default.

use reqwest::StatusCode;
use serde_json::{Value, json};
use socialauth_tests::stack::Mode;
use socialauth_tests::world::{World, send};

socialauth_tests::in_both_modes!(
    a_refresh_on_demand_stores_new_tokens,
    the_token_endpoint_hands_out_a_fresh_token_refreshed_once_for_fifty_callers,
    a_revoked_grant_needs_its_user_again,
    a_link_without_a_refresh_token_cannot_be_refreshed,
    a_scheduled_refresh_keeps_a_token_alive_unasked,
    concurrent_refreshes_of_a_rotating_provider_spend_its_token_once,
);

const ADMIN_KEY: &str = "refresh-admin-key-for-tests";

/// `corp` asks for `offline_access` (and consent, which oidc-provider
/// wants before it issues a refresh token); the IdP's access tokens live
/// `access_ttl` seconds; the token endpoint wants `min_validity` seconds.
async fn world(mode: Mode, access_ttl: u64, min_validity: u64) -> anyhow::Result<World> {
    world_with(
        mode,
        access_ttl,
        &format!("min_validity_secs = {min_validity}"),
    )
    .await
}

/// [`world`] with these `[refresh]` settings.
async fn world_with(mode: Mode, access_ttl: u64, refresh: &str) -> anyhow::Result<World> {
    world_rotating(mode, access_ttl, refresh, false).await
}

/// [`world_with`], the IdP rotating refresh tokens at every grant when
/// `rotate`.
async fn world_rotating(
    mode: Mode,
    access_ttl: u64,
    refresh: &str,
    rotate: bool,
) -> anyhow::Result<World> {
    World::start_with_idp(
        mode,
        |idp| {
            idp.ttl.insert("AccessToken".into(), access_ttl);
            idp.rotate_refresh_tokens = rotate;
        },
        |o| {
            o.security_toml = format!("admin_key = \"{ADMIN_KEY}\"\n\n[refresh]\n{refresh}");
            o.providers_toml = o.providers_toml.replacen(
                "[providers.corp]\n",
                "[providers.corp]\nscopes = [\"openid\", \"email\", \"profile\", \"offline_access\"]\n\
                 authorize_params = { prompt = \"consent\" }\n",
                1,
            );
        },
    )
    .await
}

/// `user` signs in through `provider` (djoser flow): (app token, user id,
/// the link's id).
async fn sign_in(w: &World, provider: &str, user: &str) -> anyhow::Result<(String, i64, i64)> {
    let (status, body) = w.login(provider, user).await?;
    anyhow::ensure!(status.is_success(), "sign in: {status} {body}");
    let token = body["token"].as_str().unwrap_or_default().to_owned();
    let user_id = body["user"]["id"].as_i64().unwrap_or_default();
    let (_, links) = w.get_auth("/auth/social-accounts/", "Token", &token).await;
    let link = links
        .as_array()
        .and_then(|l| l.iter().find(|l| l["provider"] == provider))
        .and_then(|l| l["id"].as_i64())
        .unwrap_or_default();
    Ok((token, user_id, link))
}

async fn refresh(w: &World, token: &str, link: i64) -> (StatusCode, Value) {
    send(
        w.http
            .post(
                w.stack
                    .url(&format!("/auth/social-accounts/{link}/refresh")),
            )
            .header("Authorization", format!("Token {token}")),
    )
    .await
}

async fn provider_token(w: &World, scheme: &str, key: &str, link: i64) -> (StatusCode, Value) {
    w.get_auth(&format!("/auth/social-accounts/{link}/token"), scheme, key)
        .await
}

async fn a_refresh_on_demand_stores_new_tokens(mode: Mode) -> anyhow::Result<()> {
    let w = world(mode, 3600, 300).await?;
    let (alice, alice_id, link) = sign_in(&w, "corp", "alice").await?;
    let (first, refresh_token) = w.stored_tokens(alice_id, link).await?;
    assert!(
        refresh_token.is_some(),
        "offline_access gave a refresh token"
    );

    // Fresh enough: the stored token, no refresh.
    let (status, body) = provider_token(&w, "Token", &alice, link).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", w.stack.logs());
    assert_eq!(body["access_token"], first.as_str());
    assert!(body["expires_at"].is_i64(), "{body}");

    let (status, body) = refresh(&w, &alice, link).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", w.stack.logs());
    assert!(body["expires_at"].is_i64(), "{body}");
    let (second, _) = w.stored_tokens(alice_id, link).await?;
    assert_ne!(second, first);
    assert!(w.active_at_idp(&second).await?);
    // The token endpoint now hands out the new one, to the owner and to
    // the operator.
    for (scheme, key) in [("Token", alice.as_str()), ("Bearer", ADMIN_KEY)] {
        let (status, body) = provider_token(&w, scheme, key, link).await;
        assert_eq!(status, StatusCode::OK, "{scheme}: {body}");
        assert_eq!(body["access_token"], second.as_str(), "{scheme}");
    }

    // Another user's link, an unknown one, no token: 404 / 404 / 401.
    let (bob, _, _) = sign_in(&w, "corp", "bob").await?;
    let not_found = json!({"detail": "Not found."});
    for path_link in [link, 999_999] {
        let (status, body) = refresh(&w, &bob, path_link).await;
        assert_eq!((status, &body), (StatusCode::NOT_FOUND, &not_found));
        let (status, body) = provider_token(&w, "Token", &bob, path_link).await;
        assert_eq!((status, &body), (StatusCode::NOT_FOUND, &not_found));
    }
    let (status, _) = send(
        w.http
            .get(w.stack.url(&format!("/auth/social-accounts/{link}/token"))),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    Ok(())
}

/// Access tokens live 4 s; the token endpoint wants 2 s of validity. Once
/// the stored token is within 2 s of its end, fifty callers at once get
/// one new token: a single refresh at the provider (two would have given
/// two tokens).
async fn the_token_endpoint_hands_out_a_fresh_token_refreshed_once_for_fifty_callers(
    mode: Mode,
) -> anyhow::Result<()> {
    let w = world(mode, 4, 2).await?;
    let (alice, alice_id, link) = sign_in(&w, "corp", "alice").await?;
    let (first, _) = w.stored_tokens(alice_id, link).await?;
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;

    let calls = (0..50).map(|_| provider_token(&w, "Token", &alice, link));
    let answers = futures_util::future::join_all(calls).await;
    let mut tokens = std::collections::BTreeSet::new();
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}\n{}", w.stack.logs());
        tokens.insert(body["access_token"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let handed = tokens.into_iter().next().unwrap_or_default();
    assert_ne!(handed, first, "a fresh token, not the expiring one");
    assert_eq!(w.stored_tokens(alice_id, link).await?.0, handed);
    assert!(w.active_at_idp(&handed).await?);
    Ok(())
}

async fn a_revoked_grant_needs_its_user_again(mode: Mode) -> anyhow::Result<()> {
    let w = world(mode, 3600, 300).await?;
    let (alice, alice_id, link) = sign_in(&w, "corp", "alice").await?;
    let (_, refresh_token) = w.stored_tokens(alice_id, link).await?;
    // The user revokes the app's access at the provider.
    w.revoke_at_idp(&refresh_token.unwrap_or_default()).await?;

    let needs = json!({"non_field_errors": ["needs_reauth"]});
    let (status, body) = refresh(&w, &alice, link).await;
    assert_eq!(
        (status, &body),
        (StatusCode::CONFLICT, &needs),
        "{}",
        w.stack.logs()
    );
    let (_, links) = w.get_auth("/auth/social-accounts/", "Token", &alice).await;
    assert_eq!(links[0]["needs_reauth"], true, "{links}");
    let (status, body) = provider_token(&w, "Token", &alice, link).await;
    assert_eq!((status, &body), (StatusCode::CONFLICT, &needs));

    // Signing in again gives the link new tokens: usable again.
    sign_in(&w, "corp", "alice").await?;
    let (_, links) = w.get_auth("/auth/social-accounts/", "Token", &alice).await;
    assert_eq!(links[0]["needs_reauth"], false, "{links}");
    let (status, body) = refresh(&w, &alice, link).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Ok(())
}

async fn a_link_without_a_refresh_token_cannot_be_refreshed(mode: Mode) -> anyhow::Result<()> {
    let w = world(mode, 3600, 300).await?;
    // `corpoauth` asks for no `offline_access`: no refresh token.
    let (alice, _, link) = sign_in(&w, "corpoauth", "alice").await?;
    let (status, body) = refresh(&w, &alice, link).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, json!({"non_field_errors": ["refresh_not_supported"]}));
    // Its access token is still valid: handed out as it is.
    let (status, body) = provider_token(&w, "Token", &alice, link).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Ok(())
}

/// Access tokens live 4 s; every worker looks every 0.3 s for links
/// expiring within 3 s: the token is replaced before it expires, with
/// nobody asking.
async fn a_scheduled_refresh_keeps_a_token_alive_unasked(mode: Mode) -> anyhow::Result<()> {
    let w = world_with(
        mode,
        4,
        "schedule_window_secs = 3\nschedule_interval_ms = 300",
    )
    .await?;
    let (_, alice_id, link) = sign_in(&w, "corp", "alice").await?;
    let (first, _) = w.stored_tokens(alice_id, link).await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let renewed = loop {
        let (now, _) = w.stored_tokens(alice_id, link).await?;
        if now != first {
            break now;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "not refreshed\n{}",
            w.stack.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(w.active_at_idp(&renewed).await?);
    Ok(())
}

/// A provider that rotates refresh tokens spends the old one at each
/// grant (oidc-provider then revokes the whole grant if it sees it again).
/// Twenty forced refreshes at once make one grant: every caller answered,
/// the rotated token stored, the link healthy — and it refreshes again.
async fn concurrent_refreshes_of_a_rotating_provider_spend_its_token_once(
    mode: Mode,
) -> anyhow::Result<()> {
    let w = world_rotating(mode, 3600, "min_validity_secs = 300", true).await?;
    let (alice, alice_id, link) = sign_in(&w, "corp", "alice").await?;
    let (_, first_refresh) = w.stored_tokens(alice_id, link).await?;

    let calls = (0..20).map(|_| refresh(&w, &alice, link));
    for (status, body) in futures_util::future::join_all(calls).await {
        assert_eq!(status, StatusCode::OK, "{body}\n{}", w.stack.logs());
    }
    let (access, rotated) = w.stored_tokens(alice_id, link).await?;
    assert_ne!(
        rotated, first_refresh,
        "the rotated refresh token is stored"
    );
    assert!(w.active_at_idp(&access).await?);
    let (_, links) = w.get_auth("/auth/social-accounts/", "Token", &alice).await;
    assert_eq!(links[0]["needs_reauth"], false, "{links}");
    let (status, body) = refresh(&w, &alice, link).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Ok(())
}
