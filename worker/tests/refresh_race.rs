//! A refused refresh grant is checked against a fresh read before the link
//! is marked `needs_reauth`: a sign-in that stored new tokens while the
//! grant was in flight (the provider had already spent the old refresh
//! token) leaves a healthy link. The provider is a stub that answers the
//! grant `invalid_grant` after a delay, so the race happens on demand; the
//! store is SQLite in memory.

use serde_json::json;
use socialauth_common::catalogue::Catalogue;
use socialauth_common::config::Settings;
use socialauth_common::crypto::{TokenCipher, generate_key};
use socialauth_common::jobs::{JobError, JobResult, RefreshJob};
use socialauth_common::now_ms;
use socialauth_common::store::{self, NewSocialAccount, NewUser, SealedTokens, SharedStore};
use socialauth_common::types::UserId;
use socialauth_worker::{Deps, refresh};
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

struct Setup {
    deps: Deps,
    store: SharedStore,
    cipher: Arc<TokenCipher>,
    user: UserId,
    link: i64,
    _server: MockServer,
}

fn sealed(cipher: &TokenCipher, access: &str, refresh: &str, expires_at: i64) -> SealedTokens {
    let a = cipher.encrypt(access);
    SealedTokens {
        key_id: Some(a.key_id),
        access_token: Some(a.data),
        refresh_token: Some(cipher.encrypt(refresh).data),
        token_secret: None,
        expires_at: Some(expires_at),
    }
}

/// A link of provider `acme` (the stub) whose access token has expired.
async fn setup() -> Setup {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": "invalid_grant"}))
                .set_delay(Duration::from_millis(600)),
        )
        .mount(&server)
        .await;
    let base = server.uri();
    let env = [
        ("SOCIALAUTH__DATABASE__URL", "sqlite::memory:".to_owned()),
        ("SOCIALAUTH__PROVIDERS__ACME__PROTOCOL", "oauth2".into()),
        (
            "SOCIALAUTH__PROVIDERS__ACME__AUTHORIZE_URL",
            format!("{base}/authorize"),
        ),
        (
            "SOCIALAUTH__PROVIDERS__ACME__TOKEN_URL",
            format!("{base}/token"),
        ),
        (
            "SOCIALAUTH__PROVIDERS__ACME__USERINFO_URL",
            format!("{base}/me"),
        ),
        (
            "SOCIALAUTH__PROVIDERS__ACME__CLIENT_ID",
            "acme-client".into(),
        ),
        (
            "SOCIALAUTH__PROVIDERS__ACME__CLIENT_SECRET",
            "acme-secret".into(),
        ),
        ("SOCIALAUTH__WORKER__MAX_ATTEMPTS", "1".into()),
    ];
    let settings = Settings::load_with_env(None, env.into_iter().map(|(k, v)| (k.to_owned(), v)))
        .expect("settings");
    let store = store::connect(&settings.database_url(), 1)
        .await
        .expect("store");
    store.migrate().await.expect("migrate");
    let key = generate_key();
    let cipher = Arc::new(TokenCipher::new("k1", vec![("k1", key.as_str())]).expect("cipher"));
    let catalogue = Arc::new(Catalogue::from_settings(&settings).expect("catalogue"));
    let deps = Deps::new(&settings, store.clone(), catalogue, cipher.clone());

    let mut tx = store.begin().await.expect("begin");
    let user = tx
        .insert_user(&NewUser {
            username: "ann".into(),
            email: None,
            email_normalized: None,
            email_verified: false,
            first_name: String::new(),
            last_name: String::new(),
            referral_code: "REFANN0001".into(),
            referred_by: None,
            created_at: 1,
        })
        .await
        .expect("user");
    let link = tx
        .insert_social_account(&NewSocialAccount {
            user_id: user.id,
            provider: "acme".into(),
            uid: "42".into(),
            email: None,
            extra_data: "{}".into(),
            tokens: sealed(&cipher, "access-1", "refresh-1", now_ms() - 1_000),
            created_at: 1,
        })
        .await
        .expect("link");
    tx.commit().await.expect("commit");
    Setup {
        deps,
        store,
        cipher,
        user: user.id,
        link: link.id,
        _server: server,
    }
}

fn job(link: i64) -> RefreshJob {
    RefreshJob {
        account_id: link,
        user_id: None,
        force: false,
        min_validity_secs: 60,
    }
}

#[tokio::test]
async fn a_grant_refused_because_a_sign_in_replaced_the_token_leaves_the_link_healthy() {
    let s = setup().await;
    let refreshing = {
        let deps = s.deps.clone();
        let job = job(s.link);
        tokio::spawn(async move { refresh::handle(&deps, uuid::Uuid::new_v4(), &job).await })
    };
    // While the grant is in flight, a sign-in stores new tokens.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut tx = s.store.begin().await.expect("begin");
    let fresh = sealed(&s.cipher, "access-2", "refresh-2", now_ms() + 3_600_000);
    assert!(
        tx.update_social_account_tokens(s.link, s.user, &fresh, now_ms())
            .await
            .expect("sign-in")
    );
    tx.commit().await.expect("commit");

    let result = refreshing.await.expect("job");
    let JobResult::Refreshed(done) = result else {
        panic!("not refreshed: {result:?}")
    };
    assert_eq!(
        done.access_token.map(|t| t.expose().clone()).as_deref(),
        Some("access-2")
    );
    let link = s
        .store
        .find_stored_account(s.link)
        .await
        .expect("read")
        .expect("link");
    assert!(!link.account.needs_reauth);
}

#[tokio::test]
async fn a_grant_refused_with_nothing_replaced_needs_the_user_again() {
    let s = setup().await;
    let result = refresh::handle(&s.deps, uuid::Uuid::new_v4(), &job(s.link)).await;
    assert!(
        matches!(result, JobResult::Failed(JobError::NeedsReauth)),
        "{result:?}"
    );
    let link = s
        .store
        .find_stored_account(s.link)
        .await
        .expect("read")
        .expect("link");
    assert!(link.account.needs_reauth);
    // The lease was given back: the next caller is told at once.
    let again = refresh::handle(&s.deps, uuid::Uuid::new_v4(), &job(s.link)).await;
    assert!(
        matches!(again, JobResult::Failed(JobError::NeedsReauth)),
        "{again:?}"
    );
}
