//! A signed-in user's links (DESIGN §3): association through the djoser
//! flow (OpenID Connect, OAuth2 and OAuth 1.0a), the list, disconnect with
//! the last-login guard and the revocation at the provider, the audit log
//! — against the real oidc-provider and the oauthlib OAuth 1.0a provider,
//! in production mode and in the embedded default.

use reqwest::StatusCode;
use serde_json::{Value, json};
use socialauth_common::store::{NewSocialAccount, SealedTokens};
use socialauth_common::types::UserId;
use socialauth_tests::browser::ScriptedUser;
use socialauth_tests::stack::Mode;
use socialauth_tests::world::{REDIRECT_URI, World, send};
use std::time::{Duration, Instant};

socialauth_tests::in_both_modes!(
    association_links_oidc_oauth2_and_oauth1_identities,
    an_association_state_is_the_signed_in_users_only,
    disconnect_removes_one_or_all_but_never_the_last_way_in,
    disconnect_revokes_the_tokens_at_the_provider,
    the_audit_log_lists_links_refusals_and_disconnects,
    association_links_under_every_linking_policy,
);

const ADMIN_KEY: &str = "audit-admin-key-for-tests";

/// `corpoauth` (OAuth2) revokes at the IdP's RFC 7009 endpoint as
/// configured, `corp` (OpenID Connect) at the one its discovery document
/// names; an admin key for the audit log; `linking` for `corpoauth`.
async fn world(mode: Mode, linking: &str) -> anyhow::Result<World> {
    World::start_with(mode, |o| {
        o.security_toml = format!("admin_key = \"{ADMIN_KEY}\"\nlinking = \"deny\"");
        let issuer = o
            .providers_toml
            .lines()
            .find_map(|l| l.strip_prefix("issuer = "))
            .unwrap_or_default()
            .trim_matches('"')
            .to_owned();
        o.providers_toml = o.providers_toml.replace(
            "[providers.corpoauth]\n",
            &format!(
                "[providers.corpoauth]\nlinking = \"{linking}\"\nrevocation_url = \"{issuer}/token/revocation\"\n"
            ),
        );
    })
    .await
}

/// Signs `user` up (or in) through `/social-auth` on `corp`: (app token,
/// user id).
async fn sign_in(w: &World, user: &str) -> anyhow::Result<(String, i64)> {
    let (code, verifier) = w.client_side_code(user).await?;
    let (status, body) = w
        .social_auth(
            &json!({"provider": "corp", "code": code, "redirect_uri": REDIRECT_URI,
                             "code_verifier": verifier}),
        )
        .await;
    anyhow::ensure!(status.is_success(), "sign in {user}: {status} {body}");
    Ok((
        body["token"].as_str().unwrap_or_default().to_owned(),
        body["user"]["id"].as_i64().unwrap_or_default(),
    ))
}

fn with_token(req: reqwest::RequestBuilder, token: &str) -> reqwest::RequestBuilder {
    req.header("Authorization", format!("Token {token}"))
}

/// `GET /auth/associate/{provider}/` as the holder of `token`.
async fn associate_url(w: &World, token: &str, provider: &str) -> anyhow::Result<String> {
    let req = w
        .http
        .get(w.stack.url(&format!("/auth/associate/{provider}/")))
        .query(&[("redirect_uri", REDIRECT_URI)]);
    let (status, body) = send(with_token(req, token)).await;
    anyhow::ensure!(status == StatusCode::OK, "associate url: {status} {body}");
    Ok(body["authorization_url"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// The IdP user `idp_user` signs in at the provider: (code, state).
async fn at_the_idp(w: &World, url: &str, idp_user: &str) -> anyhow::Result<(String, String)> {
    let password = &w.idp.user(idp_user).password;
    let cb = ScriptedUser::new()?
        .authorize(url, idp_user, password, REDIRECT_URI)
        .await?;
    Ok((cb.code.unwrap_or_default(), cb.state.unwrap_or_default()))
}

/// The OAuth 1.0a provider's answer to an association: a request token
/// obtained for the holder of `token`, authorized by `screen_name`.
async fn at_twitter(w: &World, token: &str, screen_name: &str) -> anyhow::Result<Value> {
    let url = associate_url(w, token, "twitter").await?;
    let (oauth_token, verifier) = w.authorize_oauth1(&url, screen_name).await?;
    Ok(json!({"oauth_token": oauth_token, "oauth_verifier": verifier}))
}

/// `POST /auth/associate/{provider}/` as the holder of `token`.
async fn associate_post(
    w: &World,
    token: &str,
    provider: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let req = w
        .http
        .post(w.stack.url(&format!("/auth/associate/{provider}/")))
        .json(body);
    send(with_token(req, token)).await
}

/// A whole association of the IdP identity `idp_user` through `provider`.
async fn associate(
    w: &World,
    token: &str,
    provider: &str,
    idp_user: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    let url = associate_url(w, token, provider).await?;
    let (code, state) = at_the_idp(w, &url, idp_user).await?;
    Ok(associate_post(w, token, provider, &json!({"code": code, "state": state})).await)
}

async fn social_accounts(w: &World, token: &str) -> Value {
    let (status, body) = w.get_auth("/auth/social-accounts/", "Token", token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn delete(w: &World, token: &str, path: &str) -> (StatusCode, Value) {
    send(with_token(w.http.delete(w.stack.url(path)), token)).await
}

async fn association_links_oidc_oauth2_and_oauth1_identities(mode: Mode) -> anyhow::Result<()> {
    let w = world(mode, "deny").await?;
    let (alice, alice_id) = sign_in(&w, "alice").await?;

    // OAuth2 (`corpoauth`): the same IdP person, another provider.
    let (status, linked) = associate(&w, &alice, "corpoauth", "alice").await?;
    assert_eq!(status, StatusCode::CREATED, "{linked}\n{}", w.stack.logs());
    assert_eq!(linked["provider"], "corpoauth");
    assert_eq!(linked["email"], "alice@example.test");
    assert_eq!(linked["needs_reauth"], false);
    assert!(
        linked["id"].is_i64() && linked["created_at"].is_i64() && linked["last_login_at"].is_i64()
    );
    // The same identity again: the link, 200, with the tokens this grant
    // gave (linking again is how a user reconnects a link).
    let id = linked["id"].as_i64().unwrap_or_default();
    let before = w.stored_access_token(alice_id, id).await?;
    let (status, again) = associate(&w, &alice, "corpoauth", "alice").await?;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], linked["id"]);
    assert_ne!(w.stored_access_token(alice_id, id).await?, before);

    // OpenID Connect (`corp`), another IdP person (zoe): linked to alice,
    // whose own email stays hers.
    let (status, zoe_link) = associate(&w, &alice, "corp", "zoe").await?;
    assert_eq!(status, StatusCode::CREATED, "{zoe_link}");
    assert_eq!(zoe_link["email"], "zoe@example.test");
    // zoe's identity now signs in as alice.
    let (zoe_token, zoe_user) = sign_in(&w, "zoe").await?;
    assert_eq!(zoe_user, alice_id);
    let (_, me) = w.get_auth("/users/me", "Token", &zoe_token).await;
    assert_eq!(me["email"], "alice@example.test", "{me}");

    // OAuth 1.0a (`twitter`): the request token is bound to alice.
    let answer = at_twitter(&w, &alice, "tw_alice").await?;
    let (status, tw) = associate_post(&w, &alice, "twitter", &answer).await;
    assert_eq!(status, StatusCode::CREATED, "{tw}\n{}", w.stack.logs());
    assert_eq!(tw["provider"], "twitter");

    // The list: every link with what an app shows.
    let list = social_accounts(&w, &alice).await;
    let providers: Vec<&str> = list
        .as_array()
        .map(|a| a.iter().filter_map(|l| l["provider"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        providers,
        ["corp", "corpoauth", "corp", "twitter"],
        "{list}"
    );
    for link in list.as_array().into_iter().flatten() {
        for field in [
            "id",
            "provider",
            "uid",
            "email",
            "created_at",
            "last_login_at",
            "needs_reauth",
        ] {
            assert!(link.get(field).is_some(), "{field} in {link}");
        }
    }
    // zoe's sign-in moved her link's last login.
    let zoe_now = list
        .as_array()
        .and_then(|a| a.iter().find(|l| l["id"] == zoe_link["id"]))
        .cloned()
        .unwrap_or_default();
    assert!(
        zoe_now["last_login_at"].as_i64() > zoe_link["last_login_at"].as_i64(),
        "{zoe_now} {zoe_link}"
    );

    // bob cannot take alice's identities: 409, nothing changes.
    let (bob, _) = sign_in(&w, "bob").await?;
    let (status, body) = associate(&w, &bob, "corpoauth", "alice").await?;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body,
        json!({"non_field_errors": ["social_account_already_associated"]})
    );
    let answer = at_twitter(&w, &bob, "tw_alice").await?;
    let (status, body) = associate_post(&w, &bob, "twitter", &answer).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        social_accounts(&w, &bob).await.as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(
        social_accounts(&w, &alice).await.as_array().map(Vec::len),
        Some(4)
    );

    // Without an app token: 401.
    let (status, _) = send(
        w.http
            .get(w.stack.url("/auth/associate/corp/"))
            .query(&[("redirect_uri", REDIRECT_URI)]),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = send(w.http.get(w.stack.url("/auth/social-accounts/"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    Ok(())
}

async fn an_association_state_is_the_signed_in_users_only(mode: Mode) -> anyhow::Result<()> {
    let w = world(mode, "deny").await?;
    let (alice, _) = sign_in(&w, "alice").await?;
    let (bob, _) = sign_in(&w, "bob").await?;
    let invalid = json!({"non_field_errors": ["invalid_state"]});

    // A state issued to alice, finished by bob: refused, nothing linked.
    let url = associate_url(&w, &alice, "corpoauth").await?;
    let (code, state) = at_the_idp(&w, &url, "zoe").await?;
    let (status, body) = associate_post(
        &w,
        &bob,
        "corpoauth",
        &json!({"code": code, "state": state}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, invalid);

    // Nor can it finish a login.
    let url = associate_url(&w, &alice, "corpoauth").await?;
    let (code, state) = at_the_idp(&w, &url, "zoe").await?;
    let (status, body) = w
        .post_json("corpoauth", &json!({"code": code, "state": state}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, invalid);

    // A login's state cannot finish an association.
    let cb = w.callback("corpoauth", "zoe").await?;
    let (status, body) = associate_post(
        &w,
        &alice,
        "corpoauth",
        &json!({"code": cb.code, "state": cb.state}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, invalid);

    // An OAuth 1.0a request token obtained for alice, finished by bob.
    let answer = at_twitter(&w, &alice, "tw_zoe").await?;
    let (status, body) = associate_post(&w, &bob, "twitter", &answer).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, json!({"non_field_errors": ["invalid_credentials"]}));

    // Missing fields are named; nothing was linked to anyone.
    let (status, body) = associate_post(&w, &alice, "corpoauth", &json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"code": ["This field is required."], "state": ["This field is required."]})
    );
    assert_eq!(
        social_accounts(&w, &alice).await.as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(
        social_accounts(&w, &bob).await.as_array().map(Vec::len),
        Some(1)
    );

    // The rightful user finishes it; the same code and state posted to
    // the login endpoint afterwards (a shared callback page) are no
    // login's retry.
    let url = associate_url(&w, &alice, "corpoauth").await?;
    let (code, state) = at_the_idp(&w, &url, "zoe").await?;
    let answer = json!({"code": code, "state": state});
    let (status, body) = associate_post(&w, &alice, "corpoauth", &answer).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = w.post_json("corpoauth", &answer).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, invalid);
    Ok(())
}

async fn disconnect_removes_one_or_all_but_never_the_last_way_in(mode: Mode) -> anyhow::Result<()> {
    let w = world(mode, "deny").await?;
    let (alice, alice_id) = sign_in(&w, "alice").await?;
    let (bob, _) = sign_in(&w, "bob").await?;
    let last = json!({"non_field_errors": ["cannot_disconnect_last_login"]});
    let own = social_accounts(&w, &alice).await;
    let corp_alice = own[0]["id"].as_i64().unwrap_or_default();

    // Alone, the one link is the last way in, by id or by provider.
    let (status, body) = delete(&w, &alice, &format!("/auth/disconnect/corp/{corp_alice}/")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body, last);
    let (status, body) = delete(&w, &alice, "/auth/disconnect/corp/").await;
    assert_eq!((status, body), (StatusCode::CONFLICT, last.clone()));

    // Two corp identities and one corpoauth.
    let (status, _) = associate(&w, &alice, "corp", "zoe").await?;
    assert_eq!(status, StatusCode::CREATED);
    let (status, oauth) = associate(&w, &alice, "corpoauth", "alice").await?;
    assert_eq!(status, StatusCode::CREATED);

    // Unknown ids, another user's link, another provider's id: 404.
    let bob_link = social_accounts(&w, &bob).await[0]["id"]
        .as_i64()
        .unwrap_or_default();
    for path in [
        format!("/auth/disconnect/corp/{bob_link}/"),
        format!("/auth/disconnect/corp/{}/", oauth["id"]),
        "/auth/disconnect/corp/999999/".to_owned(),
        "/auth/disconnect/corp/not-a-number/".to_owned(),
        "/auth/disconnect/nosuch/".to_owned(),
    ] {
        let (status, body) = delete(&w, &alice, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body, json!({"detail": "Not found."}));
    }
    let (status, _) = send(w.http.delete(w.stack.url("/auth/disconnect/corp/"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // One by id, then all of a provider.
    let (status, body) = delete(&w, &alice, &format!("/auth/disconnect/corp/{corp_alice}/")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        social_accounts(&w, &alice).await.as_array().map(Vec::len),
        Some(2)
    );
    let (status, _) = associate(&w, &alice, "corp", "alice").await?;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = delete(&w, &alice, "/auth/disconnect/corp/").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let left = social_accounts(&w, &alice).await;
    assert_eq!(left.as_array().map(Vec::len), Some(1), "{left}");
    assert_eq!(left[0]["provider"], "corpoauth");
    // The last one stays, even beside a link of a provider no longer
    // configured (no way in), which can itself be removed.
    let store = w.stack.store().await?;
    let mut tx = store.begin().await?;
    tx.insert_social_account(&NewSocialAccount {
        user_id: UserId(alice_id),
        provider: "gone".into(),
        uid: "g-1".into(),
        email: None,
        extra_data: "{}".into(),
        tokens: SealedTokens::default(),
        created_at: 1,
    })
    .await?;
    tx.commit().await?;
    let (status, body) = delete(&w, &alice, "/auth/disconnect/corpoauth/").await;
    assert_eq!((status, body), (StatusCode::CONFLICT, last));
    let (status, body) = delete(&w, &alice, "/auth/disconnect/gone/").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // A disconnected identity signs in as whom its email says: zoe's is
    // nobody's now, so it signs up.
    let (_, zoe_user) = sign_in(&w, "zoe").await?;
    assert_ne!(zoe_user, alice_id);
    // The app token still works: only the link is gone.
    let (status, _) = w.get_auth("/users/me", "Token", &alice).await;
    assert_eq!(status, StatusCode::OK);
    Ok(())
}

/// Through `corpoauth` (a configured `revocation_url`) and `corp` (the
/// discovery document's `revocation_endpoint`).
async fn disconnect_revokes_the_tokens_at_the_provider(mode: Mode) -> anyhow::Result<()> {
    let w = world(mode, "deny").await?;
    let (alice, alice_id) = sign_in(&w, "alice").await?;
    for (provider, idp_user) in [("corpoauth", "alice"), ("corp", "zoe")] {
        let (_, linked) = associate(&w, &alice, provider, idp_user).await?;
        let id = linked["id"].as_i64().unwrap_or_default();
        let access = w.stored_access_token(alice_id, id).await?;
        assert!(w.active_at_idp(&access).await?, "a fresh token is active");

        let (status, body) =
            delete(&w, &alice, &format!("/auth/disconnect/{provider}/{id}/")).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        // The stored tokens are gone with the link ...
        let store = w.stack.store().await?;
        let mut tx = store.begin().await?;
        assert!(
            tx.find_stored_accounts(UserId(alice_id))
                .await?
                .iter()
                .all(|s| s.account.id != id)
        );
        drop(tx);
        // ... and a worker revoked them at the provider.
        let deadline = Instant::now() + Duration::from_secs(15);
        while w.active_at_idp(&access).await? {
            anyhow::ensure!(
                Instant::now() < deadline,
                "{provider}: the token is still active at the IdP\n{}",
                w.stack.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

async fn admin_get(w: &World, query: &str) -> (StatusCode, Value) {
    w.get_auth(&format!("/admin/audit{query}"), "Bearer", ADMIN_KEY)
        .await
}

async fn the_audit_log_lists_links_refusals_and_disconnects(mode: Mode) -> anyhow::Result<()> {
    let w = world(mode, "deny").await?;
    let (alice, alice_id) = sign_in(&w, "alice").await?;
    let (bob, bob_id) = sign_in(&w, "bob").await?;
    // A refused login link (alice's verified email is her verified
    // account's; `corpoauth` links by none), a link, a refused
    // association, a disconnect and a refused one.
    let (code, verifier) = w.client_side_code("alice").await?;
    let login = json!({"provider": "corpoauth", "code": code, "redirect_uri": REDIRECT_URI,
                       "code_verifier": verifier});
    let (status, body) = w.social_auth(&login).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, json!({"email": "email_already_in_use"}));
    let (_, linked) = associate(&w, &alice, "corpoauth", "alice").await?;
    let (status, _) = associate(&w, &bob, "corpoauth", "alice").await?;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = delete(
        &w,
        &alice,
        &format!("/auth/disconnect/corpoauth/{}/", linked["id"]),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = delete(&w, &alice, "/auth/disconnect/corp/").await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Without the admin key, or with an app token: 401.
    for auth in [
        None,
        Some(("Bearer", "wrong")),
        Some(("Token", alice.as_str())),
    ] {
        let mut req = w.http.get(w.stack.url("/admin/audit"));
        if let Some((scheme, key)) = auth {
            req = req.header("Authorization", format!("{scheme} {key}"));
        }
        let (status, body) = send(req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body, json!({"detail": "A valid admin key is required."}));
    }

    let (status, page) = admin_get(&w, "").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let kinds: Vec<(String, Option<i64>, String)> = page["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_owned(),
                e["user_id"].as_i64(),
                e["provider"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("disconnect_refused", alice_id, "corp"),
        ("disconnected", alice_id, "corpoauth"),
        ("link_refused", bob_id, "corpoauth"),
        ("account_linked", alice_id, "corpoauth"),
        ("link_refused", alice_id, "corpoauth"),
    ];
    let expected: Vec<(String, Option<i64>, String)> = expected
        .iter()
        .map(|(k, u, p)| ((*k).to_owned(), Some(*u), (*p).to_owned()))
        .collect();
    assert_eq!(kinds, expected, "{page}");
    let first = &page["results"][0];
    assert!(first["at"].is_i64() && first["id"].is_i64(), "{first}");
    assert_eq!(first["outcome"], "refused");
    assert_eq!(first["detail"]["reason"], "cannot_disconnect_last_login");
    let refused = &page["results"][2];
    assert_eq!(
        refused["detail"]["reason"],
        "social_account_already_associated"
    );
    assert_eq!(refused["detail"]["holder_id"], alice_id);
    let by_email = &page["results"][4];
    assert_eq!(by_email["detail"]["reason"], "email_already_in_use");
    assert_eq!(by_email["detail"]["email_verified"], true);
    assert!(page.get("next_cursor").is_none(), "{page}");

    // Filters, alone and together.
    let (_, bobs) = admin_get(&w, &format!("?user_id={bob_id}")).await;
    assert_eq!(bobs["results"].as_array().map(Vec::len), Some(1), "{bobs}");
    let (_, corpoauth) = admin_get(&w, "?provider=corpoauth").await;
    assert_eq!(
        corpoauth["results"].as_array().map(Vec::len),
        Some(4),
        "{corpoauth}"
    );
    let (_, both) = admin_get(&w, &format!("?provider=corpoauth&user_id={alice_id}")).await;
    assert_eq!(both["results"].as_array().map(Vec::len), Some(3), "{both}");

    // Pages of two, newest first, following the cursor.
    let mut seen = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let (status, page) = admin_get(&w, &query).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for e in page["results"].as_array().into_iter().flatten() {
            seen.push(e["id"].as_i64().unwrap_or_default());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let all: Vec<i64> = page["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["id"].as_i64().unwrap_or_default())
        .collect();
    assert_eq!(seen, all);

    for bad in ["?limit=0", "?limit=501", "?cursor=abc"] {
        let (status, body) = admin_get(&w, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    Ok(())
}

/// The linking policy is about logins (linking by email, signing up): an
/// association links under each, and the identity then signs in through
/// its link — even under `link_only`, where it could not have signed up.
async fn association_links_under_every_linking_policy(mode: Mode) -> anyhow::Result<()> {
    for linking in ["deny", "link_verified", "link_only"] {
        let w = world(mode, linking).await?;
        let (bob, bob_id) = sign_in(&w, "bob").await?;
        // bob's email is unverified: no policy links his login by email.
        let (code, verifier) = w.client_side_code("bob").await?;
        let login = json!({"provider": "corpoauth", "code": code, "redirect_uri": REDIRECT_URI,
                           "code_verifier": verifier});
        let (status, body) = w.social_auth(&login).await;
        let expected = match linking {
            "link_only" => json!({"non_field_errors": ["signup_closed"]}),
            _ => json!({"email": "email_already_in_use"}),
        };
        assert_eq!(status, StatusCode::BAD_REQUEST, "{linking}: {body}");
        assert_eq!(body, expected, "{linking}");

        let (status, body) = associate(&w, &bob, "corpoauth", "bob").await?;
        assert_eq!(status, StatusCode::CREATED, "{linking}: {body}");
        let (code, verifier) = w.client_side_code("bob").await?;
        let (status, body) = w
            .social_auth(
                &json!({"provider": "corpoauth", "code": code, "redirect_uri": REDIRECT_URI,
                                 "code_verifier": verifier}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{linking}: {body}");
        assert_eq!(body["user"]["id"], bob_id, "{linking}");
        let (status, body) = w.login("corpoauth", "bob").await?;
        assert_eq!(status, StatusCode::CREATED, "{linking}: {body}");
        assert_eq!(body["user"]["id"], bob_id, "{linking}");
    }
    Ok(())
}
