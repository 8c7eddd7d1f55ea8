//! Store conformance: each test below runs against PostgreSQL and SQLite
//! (`postgres::<name>` and `sqlite::<name>`), each on a fresh database.
//!
//! PostgreSQL: a database `socialauth_t_<random hex>` is created through
//! `SOCIALAUTH_TEST_DATABASE_URL` (default
//! `postgres://postgres:postgres@127.0.0.1:5432/postgres`) and dropped
//! afterwards, best effort. SQLite: a file in a temporary directory.

use socialauth_common::jobs::{DiscoveredEndpoints, JobError, JobKind, JobResult, LoginResult};
use socialauth_common::secret::Secret;
use socialauth_common::store::{
    self, CodeClaim, CodeClaimed, Constraint, JobStatus, LoggedIn, LoginWrite, NewOAuthState,
    NewSocialAccount, NewUser, SealedTokens, SharedStore, Store, StoreError,
};
use socialauth_common::types::{User, UserId};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use std::any::Any;
use std::sync::Arc;
use tokio::sync::Barrier;
use uuid::Uuid;

const DEFAULT_ADMIN_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/postgres";

/// A fixed clock: every timestamp in these tests is relative to it.
const NOW: i64 = 1_700_000_000_000;

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let fixture = super::Fixture::postgres().await;
                    super::$test(fixture.store.clone()).await;
                }
            )*
        }

        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let fixture = super::Fixture::sqlite().await;
                    super::$test(fixture.store.clone()).await;
                }
            )*
        }
    };
}

conformance!(
    migrating_again_is_harmless,
    inserted_user_is_found_by_id_email_and_referral_code,
    duplicate_username_is_a_username_conflict,
    duplicate_normalized_email_is_an_email_conflict,
    duplicate_referral_code_is_a_referral_code_conflict,
    users_without_email_do_not_conflict,
    duplicate_social_identity_is_an_identity_conflict,
    social_identity_finds_its_user_and_link,
    updated_tokens_replace_the_stored_ones,
    app_token_finds_its_user_until_deleted,
    expired_app_token_finds_no_user,
    oauth_state_is_taken_once,
    a_taken_state_names_its_job_and_code,
    expired_oauth_state_is_taken_with_its_expiry,
    finished_job_is_found_with_its_result,
    result_written_before_the_pending_row_is_kept,
    job_delivery_is_taken_once_and_never_while_pending,
    stored_login_result_carries_no_app_token,
    transaction_dropped_without_commit_leaves_nothing,
    concurrent_links_of_one_identity_succeed_once,
    a_first_login_writes_user_link_token_and_job_at_once,
    a_code_is_claimed_by_its_first_job_only,
    a_failed_first_login_writes_nothing,
    a_returning_login_refreshes_tokens_and_issues_a_token,
    a_returning_login_of_an_inactive_user_writes_nothing,
    an_unknown_identity_without_a_user_to_create_is_none,
    a_referral_code_sets_the_referrer_and_an_unknown_one_creates_nothing,
);

// ---------------------------------------------------------------- fixtures

/// A migrated store on a database of its own, removed when dropped.
struct Fixture {
    store: SharedStore,
    /// The temporary directory or database, removed on drop (after `store`).
    _scratch: Box<dyn Any>,
}

impl Fixture {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        let store = store::connect(&url, 4).await.expect("open SQLite");
        store.migrate().await.expect("migrate SQLite");
        Self {
            store,
            _scratch: Box::new(dir),
        }
    }

    async fn postgres() -> Self {
        let scratch = PgScratch::create().await;
        let store = store::connect(&scratch.url, 4)
            .await
            .expect("open the scratch PostgreSQL database");
        store.migrate().await.expect("migrate PostgreSQL");
        Self {
            store,
            _scratch: Box::new(scratch),
        }
    }
}

/// A PostgreSQL database for one test.
struct PgScratch {
    admin_url: String,
    name: String,
    url: String,
}

impl PgScratch {
    async fn create() -> Self {
        let admin_url = std::env::var("SOCIALAUTH_TEST_DATABASE_URL")
            .unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let name = format!("socialauth_t_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is needed (SOCIALAUTH_TEST_DATABASE_URL or {DEFAULT_ADMIN_URL}): {e}"
            )
        });
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create the scratch database");
        let _ = admin.close().await;
        let mut url = url::Url::parse(&admin_url).expect("a database URL");
        url.set_path(&name);
        Self {
            admin_url,
            name,
            url: url.into(),
        }
    }
}

impl Drop for PgScratch {
    /// Best effort, on a thread of its own since `drop` cannot await; runs
    /// after a failed test too.
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let drop_database = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(AssertSqlSafe(drop_database))
                        .execute(&mut admin)
                        .await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

// ----------------------------------------------------------------- helpers

fn new_user(name: &str) -> NewUser {
    NewUser {
        username: name.to_owned(),
        email: Some(format!("{name}@Example.com")),
        email_normalized: Some(format!("{name}@example.com")),
        first_name: "First".to_owned(),
        last_name: "Last".to_owned(),
        referral_code: format!("REF-{name}"),
        referred_by: None,
        created_at: NOW,
    }
}

fn new_account(user_id: UserId, provider: &str, uid: &str) -> NewSocialAccount {
    NewSocialAccount {
        user_id,
        provider: provider.to_owned(),
        uid: uid.to_owned(),
        email: Some(format!("{uid}@example.com")),
        extra_data: r#"{"sub":"x"}"#.to_owned(),
        tokens: SealedTokens {
            key_id: Some("k1".to_owned()),
            access_token: Some("sealed-access".to_owned()),
            refresh_token: Some("sealed-refresh".to_owned()),
            expires_at: Some(NOW + 3_600_000),
        },
        created_at: NOW,
    }
}

fn new_state(state_hash: &str, expires_at: i64) -> NewOAuthState {
    NewOAuthState {
        state_hash: state_hash.to_owned(),
        provider: "corp".to_owned(),
        redirect_uri: "http://localhost:3000/cb".to_owned(),
        pkce_verifier: Some("verifier".to_owned()),
        nonce: None,
        created_at: NOW - 1_000,
        expires_at,
    }
}

fn discovered() -> JobResult {
    JobResult::Discovered(DiscoveredEndpoints {
        authorization_endpoint: "https://id.example.com/authorize".to_owned(),
    })
}

fn json(result: &JobResult) -> serde_json::Value {
    serde_json::to_value(result).expect("a result encodes")
}

async fn create_user(store: &SharedStore, user: &NewUser) -> User {
    let mut tx = store.begin().await.expect("begin");
    let created = tx.insert_user(user).await.expect("insert user");
    tx.commit().await.expect("commit");
    created
}

/// The error of inserting `user`; the failed transaction is dropped.
async fn insert_user_error(store: &SharedStore, user: &NewUser) -> StoreError {
    let mut tx = store.begin().await.expect("begin");
    tx.insert_user(user)
        .await
        .expect_err("the insert should fail")
}

// ------------------------------------------------------------------- tests

async fn migrating_again_is_harmless(store: SharedStore) {
    store.migrate().await.expect("second migration");
    store.migrate().await.expect("third migration");
    store.ping().await.expect("ping");
    assert!(matches!(store.backend(), "postgres" | "sqlite"));
    let ann = create_user(&store, &new_user("ann")).await;
    assert_eq!(store.find_user(ann.id).await.expect("find"), Some(ann));
}

async fn inserted_user_is_found_by_id_email_and_referral_code(store: SharedStore) {
    let referrer = create_user(&store, &new_user("ref")).await;
    let ann = create_user(
        &store,
        &NewUser {
            referred_by: Some(referrer.id),
            ..new_user("ann")
        },
    )
    .await;
    assert_ne!(ann.id, referrer.id);
    assert_eq!(ann.username, "ann");
    assert_eq!(ann.email.as_deref(), Some("ann@Example.com"));
    assert_eq!(
        (ann.first_name.as_str(), ann.last_name.as_str()),
        ("First", "Last")
    );
    assert!(ann.is_active);
    assert_eq!(ann.referral_code, "REF-ann");
    assert_eq!(ann.referred_by, Some(referrer.id));
    assert_eq!(ann.created_at, NOW);

    assert_eq!(
        store.find_user(ann.id).await.expect("find"),
        Some(ann.clone())
    );
    assert_eq!(store.find_user(UserId(i64::MAX)).await.expect("find"), None);

    let mut tx = store.begin().await.expect("begin");
    let by_email = tx
        .find_user_by_email("ann@example.com")
        .await
        .expect("by email");
    assert_eq!(by_email, Some(ann.clone()));
    assert_eq!(
        tx.find_user_by_email("nobody@example.com")
            .await
            .expect("by email"),
        None
    );
    let by_code = tx
        .find_user_by_referral_code("REF-ann")
        .await
        .expect("by code");
    assert_eq!(by_code, Some(ann));
    assert_eq!(
        tx.find_user_by_referral_code("REF-none")
            .await
            .expect("by code"),
        None
    );
}

async fn duplicate_username_is_a_username_conflict(store: SharedStore) {
    create_user(&store, &new_user("ann")).await;
    let twin = NewUser {
        username: "ann".to_owned(),
        ..new_user("other")
    };
    let err = insert_user_error(&store, &twin).await;
    assert!(
        matches!(err, StoreError::Conflict(Constraint::UserUsername)),
        "{err:?}"
    );
}

async fn duplicate_normalized_email_is_an_email_conflict(store: SharedStore) {
    create_user(&store, &new_user("ann")).await;
    let twin = NewUser {
        email: Some("ANN@example.com".to_owned()),
        email_normalized: Some("ann@example.com".to_owned()),
        ..new_user("other")
    };
    let err = insert_user_error(&store, &twin).await;
    assert!(
        matches!(err, StoreError::Conflict(Constraint::UserEmail)),
        "{err:?}"
    );
}

async fn duplicate_referral_code_is_a_referral_code_conflict(store: SharedStore) {
    create_user(&store, &new_user("ann")).await;
    let twin = NewUser {
        referral_code: "REF-ann".to_owned(),
        ..new_user("other")
    };
    let err = insert_user_error(&store, &twin).await;
    assert!(
        matches!(err, StoreError::Conflict(Constraint::UserReferralCode)),
        "{err:?}"
    );
}

async fn users_without_email_do_not_conflict(store: SharedStore) {
    for name in ["ann", "bob"] {
        create_user(
            &store,
            &NewUser {
                email: None,
                email_normalized: None,
                ..new_user(name)
            },
        )
        .await;
    }
}

async fn duplicate_social_identity_is_an_identity_conflict(store: SharedStore) {
    let ann = create_user(&store, &new_user("ann")).await;
    let bob = create_user(&store, &new_user("bob")).await;
    let mut tx = store.begin().await.expect("begin");
    tx.insert_social_account(&new_account(ann.id, "corp", "42"))
        .await
        .expect("first link");
    // The same uid at another provider is another identity.
    tx.insert_social_account(&new_account(ann.id, "github", "42"))
        .await
        .expect("other provider");
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .insert_social_account(&new_account(bob.id, "corp", "42"))
        .await
        .expect_err("the identity is taken");
    assert!(
        matches!(err, StoreError::Conflict(Constraint::SocialAccountIdentity)),
        "{err:?}"
    );
}

async fn social_identity_finds_its_user_and_link(store: SharedStore) {
    let ann = create_user(&store, &new_user("ann")).await;
    let mut tx = store.begin().await.expect("begin");
    let first = tx
        .insert_social_account(&new_account(ann.id, "corp", "42"))
        .await
        .expect("link");
    let second = tx
        .insert_social_account(&new_account(ann.id, "github", "7"))
        .await
        .expect("link");
    tx.commit().await.expect("commit");
    assert_eq!(first.user_id, ann.id);
    assert_eq!(
        (first.provider.as_str(), first.uid.as_str()),
        ("corp", "42")
    );
    assert_eq!(first.email.as_deref(), Some("42@example.com"));
    assert_eq!(first.expires_at, Some(NOW + 3_600_000));
    assert!(!first.needs_reauth);
    assert_eq!(first.created_at, NOW);

    let mut tx = store.begin().await.expect("begin");
    let found = tx.find_user_by_social("corp", "42").await.expect("find");
    assert_eq!(found, Some((ann.clone(), first.id)));
    assert_eq!(
        tx.find_user_by_social("corp", "7").await.expect("find"),
        None
    );
    drop(tx);

    let links = store.find_social_accounts(ann.id).await.expect("list");
    assert_eq!(links, vec![first, second]);
    let nobody = store
        .find_social_accounts(UserId(i64::MAX))
        .await
        .expect("list");
    assert!(nobody.is_empty());
}

async fn updated_tokens_replace_the_stored_ones(store: SharedStore) {
    let ann = create_user(&store, &new_user("ann")).await;
    let mut tx = store.begin().await.expect("begin");
    let link = tx
        .insert_social_account(&new_account(ann.id, "corp", "42"))
        .await
        .expect("link");
    let fresh = SealedTokens {
        key_id: Some("k2".to_owned()),
        access_token: Some("sealed-access-2".to_owned()),
        refresh_token: None,
        expires_at: Some(NOW + 7_200_000),
    };
    tx.update_social_account_tokens(link.id, &fresh, NOW + 1)
        .await
        .expect("update");
    tx.commit().await.expect("commit");

    let links = store.find_social_accounts(ann.id).await.expect("list");
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].expires_at, Some(NOW + 7_200_000));
    assert!(!links[0].needs_reauth);
}

async fn app_token_finds_its_user_until_deleted(store: SharedStore) {
    let ann = create_user(&store, &new_user("ann")).await;
    store
        .insert_auth_token("hash-1", ann.id, NOW, None)
        .await
        .expect("insert token");
    let found = store.find_user_by_token("hash-1", NOW).await.expect("find");
    assert_eq!(found, Some(ann.clone()));
    assert_eq!(
        store.find_user_by_token("hash-2", NOW).await.expect("find"),
        None
    );

    // Tokens issued inside a login's transaction count once committed.
    let mut tx = store.begin().await.expect("begin");
    tx.insert_auth_token("hash-3", ann.id, NOW, None)
        .await
        .expect("insert token");
    tx.commit().await.expect("commit");
    let found = store.find_user_by_token("hash-3", NOW).await.expect("find");
    assert_eq!(found, Some(ann));

    assert!(store.delete_auth_token("hash-1").await.expect("delete"));
    assert!(
        !store
            .delete_auth_token("hash-1")
            .await
            .expect("delete again")
    );
    assert_eq!(
        store.find_user_by_token("hash-1", NOW).await.expect("find"),
        None
    );
}

async fn expired_app_token_finds_no_user(store: SharedStore) {
    let ann = create_user(&store, &new_user("ann")).await;
    store
        .insert_auth_token("hash-1", ann.id, NOW - 10, Some(NOW))
        .await
        .expect("insert token");
    let before = store
        .find_user_by_token("hash-1", NOW - 1)
        .await
        .expect("find");
    assert_eq!(before, Some(ann));
    assert_eq!(
        store.find_user_by_token("hash-1", NOW).await.expect("find"),
        None
    );
    assert_eq!(
        store
            .find_user_by_token("hash-1", NOW + 1)
            .await
            .expect("find"),
        None
    );
}

/// Taking state `hash` at `now` for a job of its own, with code `code-1`.
fn take_of(hash: &str, now: i64) -> store::OAuthStateTake<'_> {
    store::OAuthStateTake {
        state_hash: hash,
        now,
        job_id: Uuid::new_v4(),
        code_hash: "code-1",
    }
}

/// A code held by `job` since `at`, by the same request or not.
fn held(job: Uuid, at: i64, same_request: bool) -> CodeClaimed {
    CodeClaimed::Held(socialauth_common::redemption::FirstUse {
        job_id: job,
        at,
        same_request,
    })
}

async fn a_taken_state_names_its_job_and_code(store: SharedStore) {
    store
        .insert_oauth_state(&new_state("state-1", NOW + 600_000))
        .await
        .expect("insert state");
    assert_eq!(
        store.find_taken_oauth_state("state-1").await.expect("find"),
        None,
        "not taken yet"
    );
    let job = Uuid::new_v4();
    let take = store::OAuthStateTake {
        state_hash: "state-1",
        now: NOW + 3,
        job_id: job,
        code_hash: "code-hash-1",
    };
    assert!(store.take_oauth_state(&take).await.expect("take").is_some());
    let taken = store
        .find_taken_oauth_state("state-1")
        .await
        .expect("find")
        .expect("taken");
    assert_eq!(
        taken,
        store::TakenOAuthState {
            provider: "corp".into(),
            taken_at: NOW + 3,
            taken_by: Some(job),
            code_hash: Some("code-hash-1".into()),
        }
    );
    // A second take changes nothing of it.
    assert!(
        store
            .take_oauth_state(&take_of("state-1", NOW + 9))
            .await
            .expect("take")
            .is_none()
    );
    assert_eq!(
        store.find_taken_oauth_state("state-1").await.expect("find"),
        Some(taken)
    );
}

async fn oauth_state_is_taken_once(store: SharedStore) {
    store
        .insert_oauth_state(&new_state("state-1", NOW + 600_000))
        .await
        .expect("insert state");
    let taken = store
        .take_oauth_state(&take_of("state-1", NOW))
        .await
        .expect("take")
        .expect("the state is there");
    assert_eq!(taken.provider, "corp");
    assert_eq!(taken.redirect_uri, "http://localhost:3000/cb");
    assert_eq!(taken.pkce_verifier.as_deref(), Some("verifier"));
    assert_eq!(taken.nonce, None);
    assert_eq!(taken.expires_at, NOW + 600_000);

    assert!(
        store
            .take_oauth_state(&take_of("state-1", NOW))
            .await
            .expect("take")
            .is_none()
    );
    assert!(
        store
            .take_oauth_state(&take_of("unknown", NOW))
            .await
            .expect("take")
            .is_none()
    );
}

async fn expired_oauth_state_is_taken_with_its_expiry(store: SharedStore) {
    store
        .insert_oauth_state(&new_state("state-1", NOW - 1))
        .await
        .expect("insert state");
    let taken = store
        .take_oauth_state(&take_of("state-1", NOW))
        .await
        .expect("take")
        .expect("expired states are returned");
    assert_eq!(taken.expires_at, NOW - 1);
    assert!(
        store
            .take_oauth_state(&take_of("state-1", NOW))
            .await
            .expect("take")
            .is_none()
    );
}

async fn finished_job_is_found_with_its_result(store: SharedStore) {
    let id = Uuid::new_v4();
    assert!(store.find_job(id).await.expect("find").is_none());
    store
        .insert_pending_job(id, JobKind::Login, NOW)
        .await
        .expect("pending");
    let pending = store.find_job(id).await.expect("find").expect("the job");
    assert_eq!(pending.id, id);
    assert_eq!(pending.kind, JobKind::Login);
    assert_eq!(pending.status, JobStatus::Pending);
    assert!(pending.result.is_none());
    assert_eq!((pending.attempts, pending.created_at), (0, NOW));
    assert_eq!(pending.delivered_at, None);

    let mut tx = store.begin().await.expect("begin");
    tx.upsert_job_result(
        id,
        JobKind::Login,
        JobStatus::Succeeded,
        &discovered(),
        2,
        NOW + 5,
    )
    .await
    .expect("upsert");
    tx.commit().await.expect("commit");

    let done = store.find_job(id).await.expect("find").expect("the job");
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.result.as_ref().map(json), Some(json(&discovered())));
    assert_eq!(done.attempts, 2);
    assert_eq!((done.created_at, done.updated_at), (NOW, NOW + 5));
}

async fn result_written_before_the_pending_row_is_kept(store: SharedStore) {
    let id = Uuid::new_v4();
    let failed = JobResult::Failed(JobError::InvalidCredentials);
    let mut tx = store.begin().await.expect("begin");
    tx.upsert_job_result(id, JobKind::Login, JobStatus::Failed, &failed, 1, NOW)
        .await
        .expect("upsert");
    tx.commit().await.expect("commit");
    store
        .insert_pending_job(id, JobKind::Login, NOW + 1)
        .await
        .expect("late pending row");

    let job = store.find_job(id).await.expect("find").expect("the job");
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.result.as_ref().map(json), Some(json(&failed)));
    assert_eq!(job.attempts, 1);
}

async fn job_delivery_is_taken_once_and_never_while_pending(store: SharedStore) {
    let id = Uuid::new_v4();
    assert!(!store.take_job_delivery(id, NOW).await.expect("unknown job"));
    store
        .insert_pending_job(id, JobKind::Login, NOW)
        .await
        .expect("pending");
    assert!(!store.take_job_delivery(id, NOW).await.expect("pending job"));

    let mut tx = store.begin().await.expect("begin");
    tx.upsert_job_result(
        id,
        JobKind::Login,
        JobStatus::Succeeded,
        &discovered(),
        1,
        NOW + 1,
    )
    .await
    .expect("upsert");
    tx.commit().await.expect("commit");

    assert!(
        store
            .take_job_delivery(id, NOW + 2)
            .await
            .expect("first delivery")
    );
    assert!(
        !store
            .take_job_delivery(id, NOW + 3)
            .await
            .expect("second delivery")
    );
    let job = store.find_job(id).await.expect("find").expect("the job");
    assert_eq!(job.delivered_at, Some(NOW + 2));
}

async fn stored_login_result_carries_no_app_token(store: SharedStore) {
    let ann = create_user(&store, &new_user("ann")).await;
    let id = Uuid::new_v4();
    let login = JobResult::Login(LoginResult {
        token: Some(Secret::new("app-token-value".to_owned())),
        is_new: true,
        user: ann.clone(),
        token_job: None,
    });
    let mut tx = store.begin().await.expect("begin");
    tx.upsert_job_result(id, JobKind::Login, JobStatus::Succeeded, &login, 1, NOW)
        .await
        .expect("upsert");
    tx.commit().await.expect("commit");

    let job = store.find_job(id).await.expect("find").expect("the job");
    let Some(JobResult::Login(stored)) = job.result else {
        panic!("a login result: {:?}", job.result)
    };
    assert!(stored.token.is_none());
    assert!(stored.is_new);
    assert_eq!(stored.user, ann);
}

async fn transaction_dropped_without_commit_leaves_nothing(store: SharedStore) {
    let job_id = Uuid::new_v4();
    {
        let mut tx = store.begin().await.expect("begin");
        let ann = tx.insert_user(&new_user("ann")).await.expect("insert user");
        tx.insert_social_account(&new_account(ann.id, "corp", "42"))
            .await
            .expect("link");
        tx.insert_auth_token("hash-1", ann.id, NOW, None)
            .await
            .expect("token");
        tx.upsert_job_result(
            job_id,
            JobKind::Login,
            JobStatus::Succeeded,
            &discovered(),
            1,
            NOW,
        )
        .await
        .expect("job");
    }

    assert_eq!(
        store.find_user_by_token("hash-1", NOW).await.expect("find"),
        None
    );
    assert!(store.find_job(job_id).await.expect("find").is_none());
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(
        tx.find_user_by_social("corp", "42").await.expect("find"),
        None
    );
    assert_eq!(
        tx.find_user_by_email("ann@example.com")
            .await
            .expect("find"),
        None
    );
    // Nothing left to conflict with.
    let ann = tx
        .insert_user(&new_user("ann"))
        .await
        .expect("insert again");
    tx.insert_social_account(&new_account(ann.id, "corp", "42"))
        .await
        .expect("link again");
    tx.commit().await.expect("commit");
}

async fn concurrent_links_of_one_identity_succeed_once(store: SharedStore) {
    let ann = create_user(&store, &new_user("ann")).await;
    let barrier = Arc::new(Barrier::new(2));
    let attempt = move |store: SharedStore, barrier: Arc<Barrier>| async move {
        barrier.wait().await;
        let mut tx = store.begin().await?;
        tx.insert_social_account(&new_account(ann.id, "corp", "42"))
            .await?;
        tx.commit().await
    };
    let first = tokio::spawn(attempt(store.clone(), barrier.clone()));
    let second = tokio::spawn(attempt(store.clone(), barrier));
    let results = [
        first.await.expect("first attempt ran"),
        second.await.expect("second attempt ran"),
    ];

    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(
        results.iter().any(|r| matches!(
            r,
            Err(StoreError::Conflict(Constraint::SocialAccountIdentity))
        )),
        "{results:?}"
    );
    let links = store.find_social_accounts(ann.id).await.expect("list");
    assert_eq!(links.len(), 1);
}

// ------------------------------------------------------------ SQLite only

#[tokio::test]
async fn in_memory_sqlite_store_keeps_its_data() {
    let store = store::connect("sqlite::memory:", 8)
        .await
        .expect("open in-memory SQLite");
    assert_eq!(store.backend(), "sqlite");
    store.migrate().await.expect("migrate");
    let ann = create_user(&store, &new_user("ann")).await;
    store
        .insert_auth_token("hash-1", ann.id, NOW, None)
        .await
        .expect("insert token");
    let found = store.find_user_by_token("hash-1", NOW).await.expect("find");
    assert_eq!(found, Some(ann));
}

// ------------------------------------------------- one-unit logins

fn login<'a>(
    account: &'a NewSocialAccount,
    user: Option<&'a NewUser>,
    token: &'a str,
    job: Uuid,
) -> LoginWrite<'a> {
    LoginWrite {
        account,
        user,
        referral_code: None,
        token_hash: token,
        token_expires_at: None,
        job_id: job,
        now: NOW,
    }
}

async fn log_in(store: &SharedStore, write: &LoginWrite<'_>) -> LoggedIn {
    store.log_in(write).await.expect("log in").expect("a user")
}

async fn a_first_login_writes_user_link_token_and_job_at_once(store: SharedStore) {
    let user = NewUser {
        first_name: "Zoë".to_owned(),
        last_name: "Ñandú 山田 \"quoted\"".to_owned(),
        ..new_user("ann")
    };
    let account = new_account(UserId(0), "corp", "uid-ann");
    let job = Uuid::new_v4();
    let done = log_in(&store, &login(&account, Some(&user), "tok-ann", job)).await;
    assert!(done.is_new);
    let created = done.user;
    assert_eq!(created.username, "ann");
    assert_eq!(created.last_name, "Ñandú 山田 \"quoted\"");
    let by_token = store
        .find_user_by_token("tok-ann", NOW)
        .await
        .expect("find");
    assert_eq!(by_token.as_ref().map(|u| u.id), Some(created.id));
    let links = store.find_social_accounts(created.id).await.expect("links");
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].uid, "uid-ann");
    let record = store
        .find_job(job)
        .await
        .expect("find job")
        .expect("job row");
    assert_eq!(record.status, JobStatus::Succeeded);
    let Some(JobResult::Login(LoginResult {
        token,
        is_new,
        user: stored,
        ..
    })) = record.result
    else {
        panic!("not a login result: {:?}", record.result)
    };
    assert!(token.is_none());
    assert!(is_new);
    assert_eq!(stored, created);
}

async fn a_code_is_claimed_by_its_first_job_only(store: SharedStore) {
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let claim = |provider: &'static str, request: &'static str, job: Uuid, now: i64| {
        let store = store.clone();
        async move {
            store
                .claim_login_code(&CodeClaim {
                    provider,
                    code_hash: "code-1",
                    request_hash: request,
                    job_id: job,
                    now,
                    expires_at: now + 600_000,
                })
                .await
                .expect("claim")
        }
    };
    assert_eq!(claim("corp", "r1", first, NOW).await, CodeClaimed::Claimed);
    assert_eq!(
        claim("corp", "r1", first, NOW).await,
        CodeClaimed::Claimed,
        "the same job"
    );
    assert_eq!(
        claim("corp", "r1", second, NOW + 5).await,
        held(first, NOW, true)
    );
    assert_eq!(
        claim("corp", "r2", second, NOW + 5).await,
        held(first, NOW, false),
        "another verifier or redirect URI"
    );
    // The same value at another provider is another code.
    assert_eq!(
        claim("other", "r2", second, NOW).await,
        CodeClaimed::Claimed
    );
    // Once expired, a claim is taken over.
    assert_eq!(
        claim("corp", "r2", second, NOW + 600_000).await,
        CodeClaimed::Claimed
    );
    assert_eq!(
        claim("corp", "r2", first, NOW + 600_001).await,
        held(second, NOW + 600_000, true)
    );
}

async fn a_failed_first_login_writes_nothing(store: SharedStore) {
    let first = new_user("bea");
    log_in(
        &store,
        &login(
            &new_account(UserId(0), "corp", "uid-1"),
            Some(&first),
            "t1",
            Uuid::new_v4(),
        ),
    )
    .await;
    // Same email, another identity: the email conflict rolls everything back.
    let clash = NewUser {
        username: "bea2".to_owned(),
        referral_code: "REF-bea2".to_owned(),
        ..new_user("bea")
    };
    let job = Uuid::new_v4();
    let account = new_account(UserId(0), "corp", "uid-2");
    let err = store
        .log_in(&login(&account, Some(&clash), "t2", job))
        .await
        .expect_err("email taken");
    assert!(
        matches!(err, StoreError::Conflict(Constraint::UserEmail)),
        "{err:?}"
    );
    assert!(
        store
            .find_user_by_token("t2", NOW)
            .await
            .expect("find")
            .is_none()
    );
    assert!(store.find_job(job).await.expect("find job").is_none());
}

async fn a_returning_login_refreshes_tokens_and_issues_a_token(store: SharedStore) {
    let user = new_user("dan");
    let created = log_in(
        &store,
        &login(
            &new_account(UserId(0), "corp", "uid-dan"),
            Some(&user),
            "t1",
            Uuid::new_v4(),
        ),
    )
    .await
    .user;
    let fresh = NewSocialAccount {
        tokens: SealedTokens {
            key_id: Some("k2".to_owned()),
            access_token: Some("sealed-new".to_owned()),
            refresh_token: None,
            expires_at: Some(NOW + 1),
        },
        ..new_account(UserId(0), "corp", "uid-dan")
    };
    // A returning identity never creates a user, even when offered one.
    let other = new_user("someone-else");
    let job = Uuid::new_v4();
    let found = log_in(
        &store,
        &LoginWrite {
            token_expires_at: Some(NOW + 10),
            ..login(&fresh, Some(&other), "t2", job)
        },
    )
    .await;
    assert!(!found.is_new);
    assert_eq!(found.user, created);
    assert!(
        store
            .find_user_by_referral_code("REF-someone-else")
            .await
            .expect("find")
            .is_none()
    );
    assert!(
        store
            .find_user_by_token("t2", NOW)
            .await
            .expect("find")
            .is_some()
    );
    assert!(
        store
            .find_user_by_token("t2", NOW + 10)
            .await
            .expect("find")
            .is_none()
    );
    let links = store.find_social_accounts(created.id).await.expect("links");
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].expires_at, Some(NOW + 1));
    let record = store.find_job(job).await.expect("find").expect("row");
    let Some(JobResult::Login(result)) = record.result else {
        panic!("not a login result")
    };
    assert!(!result.is_new);
    assert_eq!(result.user, created);
}

async fn a_returning_login_of_an_inactive_user_writes_nothing(store: SharedStore) {
    let created = log_in(
        &store,
        &login(
            &new_account(UserId(0), "corp", "uid-eve"),
            Some(&new_user("eve")),
            "t1",
            Uuid::new_v4(),
        ),
    )
    .await
    .user;
    deactivate(&store, created.id).await;
    let fresh = NewSocialAccount {
        tokens: SealedTokens::default(),
        ..new_account(UserId(0), "corp", "uid-eve")
    };
    let job = Uuid::new_v4();
    let found = log_in(&store, &login(&fresh, None, "t2", job)).await;
    assert!(!found.user.is_active);
    assert!(
        store
            .find_user_by_token("t2", NOW)
            .await
            .expect("find")
            .is_none()
    );
    assert!(store.find_job(job).await.expect("find").is_none());
    let links = store.find_social_accounts(created.id).await.expect("links");
    assert_eq!(
        links[0].expires_at,
        Some(NOW + 3_600_000),
        "tokens untouched"
    );
}

async fn an_unknown_identity_without_a_user_to_create_is_none(store: SharedStore) {
    let account = new_account(UserId(0), "corp", "nobody");
    let found = store
        .log_in(&login(&account, None, "t", Uuid::new_v4()))
        .await
        .expect("log in");
    assert!(found.is_none());
    assert!(
        store
            .find_user_by_token("t", NOW)
            .await
            .expect("find")
            .is_none()
    );
    let mut tx = store.begin().await.expect("begin");
    assert!(
        tx.find_user_by_social("corp", "nobody")
            .await
            .expect("find")
            .is_none()
    );
}

async fn a_referral_code_sets_the_referrer_and_an_unknown_one_creates_nothing(store: SharedStore) {
    let referrer = log_in(
        &store,
        &login(
            &new_account(UserId(0), "corp", "uid-r"),
            Some(&new_user("rita")),
            "t1",
            Uuid::new_v4(),
        ),
    )
    .await
    .user;
    let referred = new_user("sam");
    let account = new_account(UserId(0), "corp", "uid-s");
    let none = store
        .log_in(&LoginWrite {
            referral_code: Some("NOSUCHCODE"),
            ..login(&account, Some(&referred), "t2", Uuid::new_v4())
        })
        .await
        .expect("log in");
    assert!(none.is_none());
    assert!(
        store
            .find_user_by_referral_code("REF-sam")
            .await
            .expect("find")
            .is_none()
    );
    let done = log_in(
        &store,
        &LoginWrite {
            referral_code: Some("REF-rita"),
            ..login(&account, Some(&referred), "t3", Uuid::new_v4())
        },
    )
    .await;
    assert!(done.is_new);
    assert_eq!(done.user.referred_by, Some(referrer.id));
}

async fn deactivate(store: &SharedStore, id: UserId) {
    assert!(
        store
            .update_user_active(id, false)
            .await
            .expect("deactivate")
    );
    assert!(
        !store
            .update_user_active(UserId(-1), false)
            .await
            .expect("no such user")
    );
}

// ------------------------------------- PostgreSQL: logins written together

/// A migrated PostgreSQL store, with the scratch database it lives on.
async fn pg_store() -> (Arc<store::PgStore>, PgScratch) {
    let scratch = PgScratch::create().await;
    let pg = store::PgStore::connect(&scratch.url, 4)
        .await
        .expect("open the scratch PostgreSQL database");
    pg.migrate().await.expect("migrate PostgreSQL");
    (Arc::new(pg), scratch)
}

/// How many transactions last wrote the rows of `table` whose `key` is one
/// of `keys`.
async fn writing_transactions(scratch: &PgScratch, table: &str, key: &str, keys: &[String]) -> i64 {
    let mut conn = PgConnection::connect(&scratch.url).await.expect("connect");
    let sql = format!("SELECT count(DISTINCT xmin::text) FROM {table} WHERE {key} = ANY($1)");
    let (n,): (i64,) = sqlx::query_as(AssertSqlSafe(sql))
        .bind(keys)
        .fetch_one(&mut conn)
        .await
        .expect("count writers");
    let _ = conn.close().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_logins_written_together_answer_as_each_alone() {
    let (pg, scratch) = pg_store().await;
    let shared: SharedStore = pg.clone();
    let dan = log_in(
        &shared,
        &login(
            &new_account(UserId(0), "corp", "uid-dan"),
            Some(&new_user("dan")),
            "t-dan-1",
            Uuid::new_v4(),
        ),
    )
    .await
    .user;
    let eve = log_in(
        &shared,
        &login(
            &new_account(UserId(0), "corp", "uid-eve"),
            Some(&new_user("eve")),
            "t-eve-1",
            Uuid::new_v4(),
        ),
    )
    .await
    .user;
    deactivate(&shared, eve.id).await;
    let rita = log_in(
        &shared,
        &login(
            &new_account(UserId(0), "corp", "uid-rita"),
            Some(&new_user("rita")),
            "t-rita-1",
            Uuid::new_v4(),
        ),
    )
    .await
    .user;

    let (ann, sam, tom, other) = (
        new_user("ann"),
        new_user("sam"),
        new_user("tom"),
        new_user("someone-else"),
    );
    let ann_account = new_account(UserId(0), "corp", "uid-ann");
    let dan_fresh = NewSocialAccount {
        tokens: SealedTokens {
            key_id: Some("k2".to_owned()),
            access_token: Some("sealed-new".to_owned()),
            refresh_token: None,
            expires_at: Some(NOW + 1),
        },
        ..new_account(UserId(0), "corp", "uid-dan")
    };
    let eve_account = new_account(UserId(0), "corp", "uid-eve");
    let nobody = new_account(UserId(0), "corp", "nobody");
    let sam_account = new_account(UserId(0), "corp", "uid-sam");
    let tom_account = new_account(UserId(0), "corp", "uid-tom");
    let jobs: Vec<Uuid> = (0..6).map(|_| Uuid::new_v4()).collect();
    let writes = [
        login(&ann_account, Some(&ann), "t-ann", jobs[0]),
        login(&dan_fresh, Some(&other), "t-dan-2", jobs[1]),
        login(&eve_account, None, "t-eve-2", jobs[2]),
        login(&nobody, None, "t-nobody", jobs[3]),
        LoginWrite {
            referral_code: Some("REF-rita"),
            ..login(&sam_account, Some(&sam), "t-sam", jobs[4])
        },
        LoginWrite {
            referral_code: Some("NOSUCHCODE"),
            ..login(&tom_account, Some(&tom), "t-tom", jobs[5])
        },
    ];
    let results = pg.log_in_together(&writes).await;
    let written = ["t-ann", "t-dan-2", "t-sam"].map(str::to_owned);
    assert_eq!(
        writing_transactions(&scratch, "auth_tokens", "token_hash", &written).await,
        1,
        "one statement wrote them all"
    );
    let results: Vec<Option<LoggedIn>> =
        results.into_iter().map(|r| r.expect("no error")).collect();

    let ann_in = results[0].clone().expect("ann created");
    assert!(ann_in.is_new);
    assert_eq!(ann_in.user.username, "ann");
    let dan_in = results[1].clone().expect("dan found");
    assert!(!dan_in.is_new);
    assert_eq!(dan_in.user, dan);
    let eve_in = results[2].clone().expect("eve found");
    assert_eq!(eve_in.user.id, eve.id);
    assert!(!eve_in.user.is_active);
    assert!(results[3].is_none(), "unknown identity, nobody to create");
    let sam_in = results[4].clone().expect("sam created");
    assert!(sam_in.is_new);
    assert_eq!(sam_in.user.username, "sam");
    assert_eq!(sam_in.user.referred_by, Some(rita.id));
    assert!(results[5].is_none(), "unknown referral code");

    // Each login's own token, link and job, and nothing for the others.
    for (token, user) in [
        ("t-ann", Some(ann_in.user.id)),
        ("t-dan-2", Some(dan.id)),
        ("t-sam", Some(sam_in.user.id)),
        ("t-eve-2", None),
        ("t-nobody", None),
        ("t-tom", None),
    ] {
        let found = shared.find_user_by_token(token, NOW).await.expect("find");
        assert_eq!(found.map(|u| u.id), user, "{token}");
    }
    let dan_links = shared.find_social_accounts(dan.id).await.expect("links");
    assert_eq!(dan_links.len(), 1);
    assert_eq!(dan_links[0].expires_at, Some(NOW + 1), "fresh tokens");
    let eve_links = shared.find_social_accounts(eve.id).await.expect("links");
    assert_eq!(eve_links[0].expires_at, Some(NOW + 3_600_000), "untouched");
    let ann_links = shared
        .find_social_accounts(ann_in.user.id)
        .await
        .expect("links");
    assert_eq!(ann_links.len(), 1);
    assert_eq!(ann_links[0].uid, "uid-ann");
    for (job, expected) in [(jobs[0], &ann_in), (jobs[1], &dan_in), (jobs[4], &sam_in)] {
        let record = shared.find_job(job).await.expect("find").expect("row");
        let Some(JobResult::Login(stored)) = record.result else {
            panic!("not a login result: {:?}", record.result)
        };
        assert_eq!(stored.user, expected.user);
        assert_eq!(stored.is_new, expected.is_new);
        assert!(stored.token.is_none());
    }
    for job in [jobs[2], jobs[3], jobs[5]] {
        assert!(shared.find_job(job).await.expect("find").is_none());
    }
    for code in ["REF-someone-else", "REF-tom"] {
        assert!(
            shared
                .find_user_by_referral_code(code)
                .await
                .expect("find")
                .is_none(),
            "{code}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_clash_among_logins_written_together_fails_only_its_own() {
    let (pg, scratch) = pg_store().await;
    let shared: SharedStore = pg.clone();
    log_in(
        &shared,
        &login(
            &new_account(UserId(0), "corp", "uid-bea"),
            Some(&new_user("bea")),
            "t-bea",
            Uuid::new_v4(),
        ),
    )
    .await;
    let clash = NewUser {
        username: "bea2".to_owned(),
        referral_code: "REF-bea2".to_owned(),
        ..new_user("bea")
    };
    let (cat, dot) = (new_user("cat"), new_user("dot"));
    let accounts = [
        new_account(UserId(0), "corp", "uid-cat"),
        new_account(UserId(0), "corp", "uid-bea2"),
        new_account(UserId(0), "corp", "uid-dot"),
    ];
    let jobs: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let writes = [
        login(&accounts[0], Some(&cat), "t-cat", jobs[0]),
        login(&accounts[1], Some(&clash), "t-bea2", jobs[1]),
        login(&accounts[2], Some(&dot), "t-dot", jobs[2]),
    ];
    let mut results = pg.log_in_together(&writes).await.into_iter();
    let cat_in = results.next().expect("3").expect("cat").expect("created");
    assert_eq!(cat_in.user.username, "cat");
    assert!(matches!(
        results.next().expect("3"),
        Err(StoreError::Conflict(Constraint::UserEmail))
    ));
    let dot_in = results.next().expect("3").expect("dot").expect("created");
    assert_eq!(dot_in.user.username, "dot");
    assert!(shared.find_job(jobs[1]).await.expect("find").is_none());
    assert!(
        shared
            .find_user_by_token("t-bea2", NOW)
            .await
            .expect("find")
            .is_none()
    );
    for (token, user) in [("t-cat", cat_in.user.id), ("t-dot", dot_in.user.id)] {
        let found = shared.find_user_by_token(token, NOW).await.expect("find");
        assert_eq!(found.map(|u| u.id), Some(user), "{token}");
    }
    let written = ["t-cat", "t-dot"].map(str::to_owned);
    assert_eq!(
        writing_transactions(&scratch, "auth_tokens", "token_hash", &written).await,
        2,
        "written again one by one"
    );
}

/// Many logins at once through `Store::log_in`, which groups them: each
/// caller gets its own user back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_logins_are_grouped_and_each_gets_its_own_user() {
    let (pg, scratch) = pg_store().await;
    let shared: SharedStore = pg.clone();
    let mut known = Vec::new();
    for i in 0..20 {
        let name = format!("old{i}");
        let user = log_in(
            &shared,
            &login(
                &new_account(UserId(0), "corp", &format!("uid-{name}")),
                Some(&new_user(&name)),
                &format!("t-{name}-1"),
                Uuid::new_v4(),
            ),
        )
        .await
        .user;
        known.push(user);
    }
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let store = shared.clone();
            // Every third a returning user, the rest new ones.
            let name = if i % 3 == 0 {
                format!("old{}", i / 3)
            } else {
                format!("new{i}")
            };
            tokio::spawn(async move {
                let account = new_account(UserId(0), "corp", &format!("uid-{name}"));
                let user = new_user(&name);
                let token = format!("t-{name}-2");
                let job = Uuid::new_v4();
                let done = store
                    .log_in(&login(&account, Some(&user), &token, job))
                    .await
                    .expect("log in")
                    .expect("a user");
                (name, token, job, done)
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for task in tasks {
        let (name, token, job, done) = task.await.expect("task");
        tokens.push(token.clone());
        if let Some(old) = name.strip_prefix("old") {
            let i: usize = old.parse().expect("index");
            assert!(!done.is_new, "{name}");
            assert_eq!(done.user, known[i], "{name}");
        } else {
            assert!(done.is_new, "{name}");
            assert_eq!(done.user.username, name);
        }
        let found = shared.find_user_by_token(&token, NOW).await.expect("find");
        assert_eq!(found.map(|u| u.id), Some(done.user.id), "{name}");
        let record = shared.find_job(job).await.expect("find").expect("row");
        let Some(JobResult::Login(stored)) = record.result else {
            panic!("not a login result")
        };
        assert_eq!(stored.user, done.user, "{name}");
    }
    // The writer writes one batch at a time: logins that come in while one
    // is written go together in the next.
    let writers = writing_transactions(&scratch, "auth_tokens", "token_hash", &tokens).await;
    assert!(writers < 60, "{writers} transactions for 60 logins");
}

fn code_claim<'a>(code: &'a str, request: &'a str, job: Uuid, now: i64) -> CodeClaim<'a> {
    CodeClaim {
        provider: "corp",
        code_hash: code,
        request_hash: request,
        job_id: job,
        now,
        expires_at: now + 600_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_code_claims_made_together_answer_as_each_alone() {
    let (pg, scratch) = pg_store().await;
    let shared: SharedStore = pg.clone();
    let jobs: Vec<Uuid> = (0..8).map(|_| Uuid::new_v4()).collect();
    let mut stale = code_claim("stale", "r-stale", jobs[0], NOW - 700_000);
    stale.expires_at = NOW - 100_000;
    for before in [
        code_claim("held", "r-held", jobs[1], NOW),
        code_claim("mine", "r-mine", jobs[2], NOW),
        stale,
    ] {
        let claimed = shared.claim_login_code(&before).await.expect("claim");
        assert_eq!(claimed, CodeClaimed::Claimed);
    }
    let together = [
        code_claim("new-1", "r-1", jobs[3], NOW),
        code_claim("held", "r-held", jobs[4], NOW),
        code_claim("new-2", "r-2", jobs[5], NOW),
        code_claim("mine", "r-mine", jobs[2], NOW),
        code_claim("held-too", "r-x", jobs[6], NOW),
        code_claim("stale", "r-late", jobs[7], NOW),
    ];
    // "held-too" is held by another request once the batch is on its way:
    // claimed first by a job whose request differs.
    let other = code_claim("held-too", "r-other", jobs[0], NOW);
    assert_eq!(
        shared.claim_login_code(&other).await.expect("claim"),
        CodeClaimed::Claimed
    );
    let answers: Vec<CodeClaimed> = pg
        .claim_codes_together(&together)
        .await
        .into_iter()
        .map(|r| r.expect("claim"))
        .collect();
    assert_eq!(
        answers,
        [
            CodeClaimed::Claimed,
            held(jobs[1], NOW, true),
            CodeClaimed::Claimed,
            CodeClaimed::Claimed,
            held(jobs[0], NOW, false),
            CodeClaimed::Claimed,
        ]
    );
    // What the batch claimed, it claimed in one statement.
    let fresh = ["new-1", "new-2", "stale"].map(str::to_owned);
    assert_eq!(
        writing_transactions(&scratch, "login_codes", "code_hash", &fresh).await,
        1
    );
    // Each claim is its job's, as a claim made alone would leave it.
    for (code, job) in [("new-1", jobs[3]), ("stale", jobs[7]), ("held", jobs[1])] {
        let again = shared
            .claim_login_code(&code_claim(code, "r-again", Uuid::new_v4(), NOW + 1))
            .await
            .expect("claim");
        assert_eq!(again, held(job, NOW, false), "{code}");
        let replay = [code_claim(code, "r-again", job, NOW + 1)];
        assert_eq!(
            pg.claim_codes_together(&replay)
                .await
                .pop()
                .expect("one")
                .expect("claim"),
            CodeClaimed::Claimed,
            "{code}: its own job"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_claims_of_one_code_leave_it_one_job() {
    let (pg, scratch) = pg_store().await;
    let shared: SharedStore = pg.clone();
    let barrier = Arc::new(Barrier::new(60));
    // Thirty codes, each claimed by two jobs of the same request at once.
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let (store, barrier) = (shared.clone(), barrier.clone());
            tokio::spawn(async move {
                let code = format!("code-{}", i / 2);
                let job = Uuid::new_v4();
                barrier.wait().await;
                let claimed = store
                    .claim_login_code(&code_claim(&code, "r", job, NOW))
                    .await
                    .expect("claim");
                (code, job, claimed)
            })
        })
        .collect();
    let mut by_code: std::collections::HashMap<String, Vec<(Uuid, CodeClaimed)>> =
        std::collections::HashMap::new();
    for task in tasks {
        let (code, job, claimed) = task.await.expect("task");
        by_code.entry(code).or_default().push((job, claimed));
    }
    assert_eq!(by_code.len(), 30);
    for (code, answers) in &by_code {
        let winners: Vec<Uuid> = answers
            .iter()
            .filter(|(_, c)| *c == CodeClaimed::Claimed)
            .map(|(job, _)| *job)
            .collect();
        assert_eq!(winners.len(), 1, "{code}: {answers:?}");
        for (job, claimed) in answers {
            if *job != winners[0] {
                assert_eq!(*claimed, held(winners[0], NOW, true), "{code}");
            }
        }
    }
    let codes: Vec<String> = by_code.into_keys().collect();
    let writers = writing_transactions(&scratch, "login_codes", "code_hash", &codes).await;
    assert!(writers < 30, "{writers} transactions for 30 claims");
}

/// Sequential scans, index scans and rows read (by either) of `tables`,
/// once every other session of the database has ended (a session's
/// statistics are all counted by the time it leaves `pg_stat_activity`).
async fn scans_when_alone(scratch: &PgScratch, tables: &[&str]) -> (i64, i64, i64) {
    let mut conn = PgConnection::connect(&scratch.url).await.expect("connect");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (others,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut conn)
        .await
        .expect("read pg_stat_activity");
        if others == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{others} sessions still open"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let counts: (i64, i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(seq_scan), 0)::bigint, coalesce(sum(idx_scan), 0)::bigint, \
                coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0)::bigint \
         FROM pg_stat_user_tables WHERE relname = ANY($1)",
    )
    .bind(tables)
    .fetch_one(&mut conn)
    .await
    .expect("read scan statistics");
    let _ = conn.close().await;
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_logins_of_a_young_table_never_read_the_whole_table() {
    let scratch = PgScratch::create().await;
    let open = || async {
        store::PgStore::connect(&scratch.url, 1)
            .await
            .expect("open the scratch PostgreSQL database")
    };
    let names: Vec<String> = (0..400).map(|i| format!("young-{i}")).collect();
    let users: Vec<NewUser> = names.iter().map(|n| new_user(n)).collect();
    let accounts: Vec<NewSocialAccount> = names
        .iter()
        .map(|n| new_account(UserId(0), "corp", &format!("uid-{n}")))
        .collect();
    let tokens: Vec<String> = names.iter().map(|n| format!("t-{n}")).collect();
    let jobs: Vec<Uuid> = names.iter().map(|_| Uuid::new_v4()).collect();
    let write = |i: usize| login(&accounts[i], Some(&users[i]), &tokens[i], jobs[i]);
    let seed = open().await;
    seed.migrate().await.expect("migrate PostgreSQL");
    for chunk in (0..200).collect::<Vec<_>>().chunks(8) {
        let batch: Vec<LoginWrite<'_>> = chunk.iter().map(|&i| write(i)).collect();
        for answer in seed.log_in_together(&batch).await {
            assert!(answer.expect("log in").expect("a user").is_new);
        }
    }
    seed.close().await;
    let tables = ["users", "social_accounts", "auth_tokens", "jobs"];
    let (seq_before, idx_before, read_before) = scans_when_alone(&scratch, &tables).await;

    // A session of its own: its prepared statements reach their generic
    // plan (PostgreSQL's sixth run) while the tables are small, as in the
    // first minutes of a fresh deployment's signup burst. Returning logins
    // (new jobs, new tokens) with a new, referred user in every batch, so
    // every part of the statement runs.
    let pg = open().await;
    let again: Vec<(String, Uuid)> = (0..100)
        .map(|i| (format!("t2-{i}"), Uuid::new_v4()))
        .collect();
    for chunk in (0..100).collect::<Vec<_>>().chunks(8) {
        let mut batch: Vec<LoginWrite<'_>> = chunk
            .iter()
            .map(|&i| login(&accounts[i], Some(&users[i]), &again[i].0, again[i].1))
            .collect();
        batch.push(LoginWrite {
            referral_code: Some("REF-young-0"),
            ..write(200 + chunk[0])
        });
        for (answer, &i) in pg.log_in_together(&batch).await.iter().zip(chunk) {
            let done = answer.as_ref().expect("log in").as_ref().expect("a user");
            assert_eq!(done.user.username, names[i]);
        }
    }
    pg.close().await;
    let (seq_after, idx_after, read_after) = scans_when_alone(&scratch, &tables).await;
    assert!(idx_after > idx_before, "no index scan was counted");
    assert_eq!(
        seq_after - seq_before,
        0,
        "sequential scans of {tables:?} while logging in"
    );
    // Each login looks up its identity and user; a join that read a whole
    // table (even through an index) would read hundreds of rows a batch.
    let logins = 100 + 13;
    let read = read_after - read_before;
    assert!(read <= 4 * logins, "{read} rows read for {logins} logins");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_states_made_and_taken_together_are_each_taken_once() {
    let (pg, scratch) = pg_store().await;
    let shared: SharedStore = pg.clone();
    let hashes: Vec<String> = (0..40).map(|i| format!("state-{i}")).collect();
    let barrier = Arc::new(Barrier::new(hashes.len()));
    let inserts: Vec<_> = hashes
        .iter()
        .enumerate()
        .map(|(i, hash)| {
            let (store, barrier) = (shared.clone(), barrier.clone());
            let state = NewOAuthState {
                nonce: Some(format!("nonce-{i}")),
                ..new_state(hash, NOW + 600_000 + i as i64)
            };
            tokio::spawn(async move {
                barrier.wait().await;
                store.insert_oauth_state(&state).await
            })
        })
        .collect();
    for insert in inserts {
        insert.await.expect("task").expect("insert state");
    }
    let writers = writing_transactions(&scratch, "oauth_states", "state_hash", &hashes).await;
    assert!(writers < 40, "{writers} transactions for 40 states");

    // Every state taken twice at once, and one that never was.
    let barrier = Arc::new(Barrier::new(2 * hashes.len() + 1));
    let takes: Vec<_> = hashes
        .iter()
        .chain(hashes.iter())
        .cloned()
        .chain(std::iter::once("unknown".to_owned()))
        .map(|hash| {
            let (store, barrier) = (shared.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let taken = store
                    .take_oauth_state(&take_of(&hash, NOW))
                    .await
                    .expect("take");
                (hash, taken)
            })
        })
        .collect();
    let mut by_hash: std::collections::HashMap<String, Vec<Option<store::OAuthState>>> =
        std::collections::HashMap::new();
    for take in takes {
        let (hash, taken) = take.await.expect("task");
        by_hash.entry(hash).or_default().push(taken);
    }
    assert!(by_hash["unknown"].iter().all(Option::is_none));
    for (i, hash) in hashes.iter().enumerate() {
        let got: Vec<&store::OAuthState> = by_hash[hash].iter().flatten().collect();
        assert_eq!(got.len(), 1, "{hash} taken {} times", got.len());
        // Each take got its own state, not another's.
        assert_eq!(got[0].nonce.as_deref(), Some(format!("nonce-{i}").as_str()));
        assert_eq!(got[0].expires_at, NOW + 600_000 + i as i64);
    }
    let consumers = writing_transactions(&scratch, "oauth_states", "state_hash", &hashes).await;
    assert!(
        consumers < 40,
        "{consumers} transactions consumed 40 states"
    );
}
