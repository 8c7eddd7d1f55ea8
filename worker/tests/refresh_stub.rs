//! Refresh against a stub provider, for what a real one will not do on
//! demand: a refused grant racing a sign-in (the stub answers
//! `invalid_grant` after a delay), and the providers' quirks — no
//! `expires_in`, no new refresh token, Basic or form client
//! authentication, tokens that are not refreshed. The store is SQLite in
//! memory.

mod support;

use serde_json::json;
use socialauth_common::crypto::{Binding, TokenCipher, TokenColumn};
use socialauth_common::jobs::{JobError, JobResult, RefreshJob};
use socialauth_common::now_ms;
use socialauth_common::store::{NewSocialAccount, NewUser, SealedTokens, SharedStore};
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

/// Where the link's (`acme`, `42`) token of `column` is stored.
fn place(column: TokenColumn) -> Binding<'static> {
    Binding::Account {
        provider: "acme",
        uid: "42",
        column,
    }
}

fn sealed(cipher: &TokenCipher, access: &str, refresh: &str, expires_at: i64) -> SealedTokens {
    let a = cipher.seal(access, place(TokenColumn::AccessToken));
    SealedTokens {
        key_id: Some(a.key_id),
        access_token: Some(a.data),
        refresh_token: Some(cipher.seal(refresh, place(TokenColumn::RefreshToken)).data),
        token_secret: None,
        expires_at: Some(expires_at),
    }
}

/// The stub's refresh grant answering `invalid_grant` after a delay.
fn refused_slowly() -> Mock {
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": "invalid_grant"}))
                .set_delay(Duration::from_millis(600)),
        )
}

/// A link of provider `acme` (the stub, `grant` mounted, `provider` keys
/// added to its configuration) whose access token has expired.
async fn setup(grant: Mock, provider: &[(&str, &str)]) -> Setup {
    let server = MockServer::start().await;
    grant.mount(&server).await;
    let (deps, store, cipher) = support::stub_deps(&server.uri(), provider).await;

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
        skip_if_busy: false,
    }
}

#[tokio::test]
async fn a_grant_refused_because_a_sign_in_replaced_the_token_leaves_the_link_healthy() {
    let s = setup(refused_slowly(), &[]).await;
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
    let link = stored(&s).await;
    assert!(!link.account.needs_reauth);
}

#[tokio::test]
async fn a_grant_refused_with_nothing_replaced_needs_the_user_again() {
    let s = setup(refused_slowly(), &[]).await;
    let result = refresh::handle(&s.deps, uuid::Uuid::new_v4(), &job(s.link)).await;
    assert!(
        matches!(result, JobResult::Failed(JobError::NeedsReauth)),
        "{result:?}"
    );
    let link = stored(&s).await;
    assert!(link.account.needs_reauth);
    // The lease was given back: the next caller is told at once.
    let again = refresh::handle(&s.deps, uuid::Uuid::new_v4(), &job(s.link)).await;
    assert!(
        matches!(again, JobResult::Failed(JobError::NeedsReauth)),
        "{again:?}"
    );
}

/// The link as stored.
async fn stored(s: &Setup) -> socialauth_common::store::StoredAccount {
    s.store
        .find_stored_account(s.link)
        .await
        .expect("read")
        .expect("link")
}

/// The stored refresh token of the link, opened.
async fn stored_refresh_token(s: &Setup) -> String {
    let link = stored(s).await;
    let sealed = socialauth_common::crypto::Sealed {
        key_id: link.tokens.key_id.unwrap_or_default(),
        data: link.tokens.refresh_token.unwrap_or_default(),
    };
    s.cipher
        .open(&sealed, place(TokenColumn::RefreshToken))
        .expect("open")
}

fn refreshed(result: JobResult) -> socialauth_common::jobs::RefreshResult {
    match result {
        JobResult::Refreshed(done) => done,
        other => panic!("not refreshed: {other:?}"),
    }
}

/// A grant answered without `expires_in` nor `refresh_token`: the
/// provider's configured lifetime, and the old refresh token kept.
#[tokio::test]
async fn a_grant_without_lifetime_or_new_refresh_token_keeps_the_old_and_uses_the_default() {
    let grant = Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("refresh_token=refresh-1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "access-2", "token_type": "bearer"})),
        )
        .expect(1);
    let s = setup(grant, &[("default_expires_in_secs", "7200")]).await;
    let before = now_ms();
    let done = refreshed(refresh::handle(&s.deps, uuid::Uuid::new_v4(), &job(s.link)).await);
    assert_eq!(
        done.access_token.map(|t| t.expose().clone()).as_deref(),
        Some("access-2")
    );
    let expires_at = done.expires_at.expect("an expiry");
    assert!(
        (before + 7_200_000..=now_ms() + 7_200_000).contains(&expires_at),
        "{expires_at}"
    );
    assert_eq!(stored_refresh_token(&s).await, "refresh-1");
}

/// A rotated refresh token is stored with the new access token.
#[tokio::test]
async fn a_rotated_refresh_token_is_stored() {
    let grant = Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "access-2", "token_type": "bearer",
            "expires_in": 60, "refresh_token": "refresh-2"
        })))
        .expect(1);
    let s = setup(grant, &[]).await;
    let done = refreshed(refresh::handle(&s.deps, uuid::Uuid::new_v4(), &job(s.link)).await);
    assert!(done.refreshed);
    assert_eq!(stored_refresh_token(&s).await, "refresh-2");
}

/// The client authenticates as configured: HTTP Basic, or the form (the
/// OAuth2 default).
#[tokio::test]
async fn the_client_authenticates_by_basic_or_by_form_as_configured() {
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("acme-client:acme-secret")
    );
    let by_basic = Mock::given(method("POST"))
        .and(path("/token"))
        .and(wiremock::matchers::header("authorization", basic.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "access-2", "token_type": "bearer", "expires_in": 60}),
        ))
        .expect(1);
    let s = setup(
        by_basic,
        &[("token_endpoint_auth_method", "client_secret_basic")],
    )
    .await;
    refreshed(refresh::handle(&s.deps, uuid::Uuid::new_v4(), &job(s.link)).await);

    let by_form = Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("client_secret=acme-secret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "access-2", "token_type": "bearer", "expires_in": 60}),
        ))
        .expect(1);
    let s = setup(by_form, &[]).await;
    refreshed(refresh::handle(&s.deps, uuid::Uuid::new_v4(), &job(s.link)).await);
}

/// A provider whose tokens are not refreshed (GitHub's do not expire):
/// `refresh_not_supported`, and the provider is not called.
#[tokio::test]
async fn a_provider_whose_tokens_are_not_refreshed_is_not_called() {
    let grant = Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0);
    let s = setup(grant, &[("refresh_tokens", "false")]).await;
    let result = refresh::handle(&s.deps, uuid::Uuid::new_v4(), &job(s.link)).await;
    assert!(
        matches!(result, JobResult::Failed(JobError::RefreshNotSupported)),
        "{result:?}"
    );
}
