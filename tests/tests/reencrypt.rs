//! Re-encryption of provider tokens (`/admin/reencrypt`) after a key
//! rotation, in production mode and in the embedded default: links sealed
//! under `k1` (in the current format, and one in the format of releases
//! before tokens were bound to their place), the key rotated to `k2` with
//! `k1` kept as a previous key, the re-encryption run, every link then
//! under `k2` in the current format, and the same provider tokens handed
//! out before and after — and after `k1` is removed from the
//! configuration.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use serde_json::Value;
use socialauth_common::crypto::{Binding, TokenCipher, TokenColumn, generate_key};
use socialauth_common::now_ms;
use socialauth_common::store::{NewSocialAccount, NewUser, SealedCount, SealedTokens};
use socialauth_common::types::UserId;
use socialauth_tests::stack::Mode;
use socialauth_tests::world::{World, send};
use std::time::{Duration, Instant};

socialauth_tests::in_both_modes!(every_token_moves_to_the_new_key_and_opens_without_the_old_one);

const ADMIN_KEY: &str = "reencrypt-admin-key-for-tests";
/// Links made directly in the store besides the signed-in ones; every
/// fifth in the older format.
const SYNTHETIC: usize = 300;

async fn world(mode: Mode) -> anyhow::Result<World> {
    World::start_with_idp(
        mode,
        |_| {},
        |o| {
            o.security_toml = format!(
                "admin_key = \"{ADMIN_KEY}\"\n\n[reencrypt]\npoll_interval_ms = 100\npage_size = 64\n"
            );
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

/// `user` signs in through `corp`: (app token, user id, the link's id).
async fn sign_in(w: &World, user: &str) -> anyhow::Result<(String, i64, i64)> {
    let (status, body) = w.login("corp", user).await?;
    anyhow::ensure!(status.is_success(), "sign in: {status} {body}");
    let token = body["token"].as_str().unwrap_or_default().to_owned();
    let user_id = body["user"]["id"].as_i64().unwrap_or_default();
    let (_, links) = w.get_auth("/auth/social-accounts/", "Token", &token).await;
    let link = links[0]["id"].as_i64().unwrap_or_default();
    Ok((token, user_id, link))
}

/// The provider access token `GET /auth/social-accounts/{link}/token`
/// hands out (`scheme` `Token` with an app token, `Bearer` with the admin
/// key).
async fn handed(w: &World, scheme: &str, key: &str, link: i64) -> String {
    let (status, body) = w
        .get_auth(&format!("/auth/social-accounts/{link}/token"), scheme, key)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", w.stack.logs());
    body["access_token"].as_str().unwrap_or_default().to_owned()
}

async fn admin(w: &World, method: reqwest::Method, path: &str) -> (StatusCode, Value) {
    send(
        w.http
            .request(method, w.stack.url(path))
            .header("Authorization", format!("Bearer {ADMIN_KEY}")),
    )
    .await
}

/// `plaintext` as releases before bound ciphertexts sealed it: AES-256-GCM
/// without associated data, base64 of nonce ‖ ciphertext ‖ tag.
fn seal_v1(key_b64: &str, plaintext: &str) -> anyhow::Result<String> {
    use aes_gcm::aead::{Aead, KeyInit};
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&STANDARD.decode(key_b64)?)
        .map_err(|_| anyhow::anyhow!("a 32-byte key"))?;
    let nonce: [u8; 12] = rand_nonce();
    let ct = cipher
        .encrypt(&aes_gcm::Nonce::from(nonce), plaintext.as_bytes())
        .map_err(|_| anyhow::anyhow!("seal"))?;
    Ok(STANDARD.encode([nonce.as_slice(), &ct].concat()))
}

/// 12 random bytes.
fn rand_nonce() -> [u8; 12] {
    let random = URL_SAFE_NO_PAD
        .decode(socialauth_common::crypto::random_token(12))
        .unwrap_or_default();
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&random[..12]);
    nonce
}

fn count(key_id: &str, format: &str, links: usize) -> SealedCount {
    SealedCount {
        key_id: key_id.to_owned(),
        format: format.to_owned(),
        links: links as i64,
    }
}

/// A synthetic link: its user, id, and the plaintext tokens sealed in it.
struct Synthetic {
    user_id: i64,
    link: i64,
    access: String,
    refresh: String,
}

async fn every_token_moves_to_the_new_key_and_opens_without_the_old_one(
    mode: Mode,
) -> anyhow::Result<()> {
    let mut w = world(mode).await?;
    let (alice, alice_id, alice_link) = sign_in(&w, "alice").await?;
    let (bob, _, bob_link) = sign_in(&w, "bob").await?;
    let (k1_id, k1) = w.stack.current_key()?;
    assert_eq!(k1_id, "k1");
    let store = w.stack.store().await?;

    // Alice's tokens as a release before v2 sealed them.
    let (alice_access, alice_refresh) = w.stored_tokens(alice_id, alice_link).await?;
    let alice_refresh = alice_refresh.expect("offline_access gave a refresh token");
    let stored = store
        .find_stored_account(alice_link)
        .await?
        .expect("alice's link");
    let legacy = SealedTokens {
        key_id: Some("k1".into()),
        access_token: Some(seal_v1(&k1, &alice_access)?),
        refresh_token: Some(seal_v1(&k1, &alice_refresh)?),
        token_secret: None,
        expires_at: stored.tokens.expires_at,
    };
    let mut tx = store.begin().await?;
    assert!(
        tx.update_social_account_tokens(alice_link, UserId(alice_id), &legacy, now_ms())
            .await?
    );
    tx.commit().await?;
    assert_eq!(handed(&w, "Token", &alice, alice_link).await, alice_access);
    let bob_access = handed(&w, "Token", &bob, bob_link).await;

    // More links, under k1 too.
    let k1_cipher = TokenCipher::new("k1", [("k1", k1.as_str())])?;
    let mut synthetic = Vec::with_capacity(SYNTHETIC);
    let mut tx = store.begin().await?;
    for i in 0..SYNTHETIC {
        let user = tx
            .insert_user(&NewUser {
                username: format!("synth{i}"),
                email: None,
                email_normalized: None,
                email_verified: false,
                first_name: String::new(),
                last_name: String::new(),
                referral_code: format!("SYN{i:07}"),
                referred_by: None,
                created_at: now_ms(),
            })
            .await?;
        let uid = format!("synth-{i}");
        let (access, refresh) = (format!("at-{uid}"), format!("rt-{uid}"));
        let (a, r) = if i % 5 == 0 {
            (seal_v1(&k1, &access)?, seal_v1(&k1, &refresh)?)
        } else {
            let place = |column| Binding::Account {
                provider: "corp",
                uid: &uid,
                column,
            };
            (
                k1_cipher
                    .seal(&access, place(TokenColumn::AccessToken))
                    .data,
                k1_cipher
                    .seal(&refresh, place(TokenColumn::RefreshToken))
                    .data,
            )
        };
        let link = tx
            .insert_social_account(&NewSocialAccount {
                user_id: user.id,
                provider: "corp".into(),
                uid: uid.clone(),
                email: None,
                extra_data: "{}".into(),
                tokens: SealedTokens {
                    key_id: Some("k1".into()),
                    access_token: Some(a),
                    refresh_token: Some(r),
                    token_secret: None,
                    expires_at: Some(now_ms() + 3_600_000),
                },
                created_at: now_ms(),
            })
            .await?;
        synthetic.push(Synthetic {
            user_id: user.id.0,
            link: link.id,
            access,
            refresh,
        });
    }
    tx.commit().await?;
    let total = SYNTHETIC + 2;
    let legacy_links = 1 + SYNTHETIC.div_ceil(5);
    assert_eq!(
        store.count_sealed_tokens().await?,
        [
            count("k1", "v1", legacy_links),
            count("k1", "v2", total - legacy_links)
        ]
    );

    // The rotation: k2 current, k1 kept to open what it sealed.
    let k2 = generate_key();
    w.stack.set_keys(("k2", &k2), &[("k1", &k1)]).await?;
    assert_eq!(handed(&w, "Token", &alice, alice_link).await, alice_access);

    let (status, body) = send(w.http.post(w.stack.url("/admin/reencrypt"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    if mode == Mode::Production {
        // No worker takes it up meanwhile: a second start is refused.
        w.stack.stop_workers().await;
    }
    let started = Instant::now();
    let (status, run) = admin(&w, reqwest::Method::POST, "/admin/reencrypt").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    assert_eq!(run["key_id"], "k2", "{run}");
    assert_eq!(run["status"], "running", "{run}");
    let id = run["id"].as_str().expect("id").to_owned();
    if mode == Mode::Production {
        let (status, body) = admin(&w, reqwest::Method::POST, "/admin/reencrypt").await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(
            body,
            serde_json::json!({"non_field_errors": ["reencryption_running"]})
        );
        w.stack.start_worker()?;
    }
    let path = format!("/admin/reencrypt/{id}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let (status, body) = admin(&w, reqwest::Method::GET, &path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["status"] != "running" {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "never done: {body}\n{}",
            w.stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let elapsed = started.elapsed();
    let total = total as i64;
    assert_eq!(done["status"], "done", "{done}");
    for (field, expected) in [
        ("total", total),
        ("done", total),
        ("moved", total),
        ("changed", 0),
        ("failed", 0),
        ("remaining", 0),
    ] {
        assert_eq!(done[field], expected, "{field}: {done}");
    }
    eprintln!(
        "re-encryption ({mode:?}): {total} links moved from k1 to k2 in {} ms",
        elapsed.as_millis()
    );

    // In the database: every link under k2, in the current format.
    assert_eq!(
        store.count_sealed_tokens().await?,
        [count("k2", "v2", total as usize)]
    );
    let (_, list) = admin(&w, reqwest::Method::GET, "/admin/reencrypt").await;
    assert_eq!(list["results"][0]["id"], id.as_str(), "{list}");
    let doc: Value = w
        .http
        .get(w.stack.url("/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    let paths = &doc["paths"];
    assert!(paths["/admin/reencrypt"]["post"].is_object(), "{paths}");
    assert!(paths["/admin/reencrypt"]["get"].is_object(), "{paths}");
    assert!(paths["/admin/reencrypt/{id}"]["get"].is_object(), "{paths}");
    assert!(
        paths["/admin/reencrypt/{id}"]["delete"].is_object(),
        "{paths}"
    );
    let metrics = w.metrics().await?;
    let moved_gauge = metrics.lines().any(|l| {
        l.starts_with("socialauth_reencrypt_links{")
            && l.contains(&format!("id=\"{id}\""))
            && l.contains("state=\"moved\"")
            && l.ends_with(&format!(" {total}"))
    });
    assert!(moved_gauge, "{metrics}");
    if mode == Mode::Embedded {
        // The worker's own metrics are the api's in the embedded default.
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("socialauth_reencrypt_rows_total{")
                    && l.contains("outcome=\"moved\"")
                    && l.ends_with(&format!(" {total}"))),
            "{metrics}"
        );
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("socialauth_sealed_tokens{")
                    && l.contains("key_id=\"k2\"")
                    && l.contains("format=\"v2\"")
                    && l.ends_with(&format!(" {total}"))),
            "{metrics}"
        );
    }

    // The same tokens, opened with k2.
    assert_eq!(handed(&w, "Token", &alice, alice_link).await, alice_access);
    assert_eq!(handed(&w, "Token", &bob, bob_link).await, bob_access);
    for s in synthetic.iter().step_by(37) {
        let (access, refresh) = w.stored_tokens(s.user_id, s.link).await?;
        assert_eq!(
            (access, refresh),
            (s.access.clone(), Some(s.refresh.clone()))
        );
    }

    // k1 removed from the configuration: everything still opens.
    w.stack.set_keys(("k2", &k2), &[]).await?;
    assert_eq!(handed(&w, "Token", &alice, alice_link).await, alice_access);
    assert_eq!(handed(&w, "Token", &bob, bob_link).await, bob_access);
    for s in synthetic.iter().step_by(29) {
        assert_eq!(handed(&w, "Bearer", ADMIN_KEY, s.link).await, s.access);
    }
    // Alice's refresh token, moved from the old format, still refreshes.
    let (status, body) = send(
        w.http
            .post(
                w.stack
                    .url(&format!("/auth/social-accounts/{alice_link}/refresh")),
            )
            .header("Authorization", format!("Token {alice}")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", w.stack.logs());
    let fresh = handed(&w, "Token", &alice, alice_link).await;
    assert_ne!(fresh, alice_access);
    assert!(w.active_at_idp(&fresh).await?);
    assert_eq!(
        store.count_sealed_tokens().await?,
        [count("k2", "v2", total as usize)]
    );
    Ok(())
}
