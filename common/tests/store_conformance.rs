//! Store conformance: each test below runs against PostgreSQL and SQLite
//! (`postgres::<name>` and `sqlite::<name>`), each on a fresh database.
//!
//! PostgreSQL: a database `socialauth_t_<random hex>` is created through
//! `SOCIALAUTH_TEST_DATABASE_URL` (default
//! `postgres://postgres:postgres@127.0.0.1:5432/postgres`) and dropped
//! afterwards, best effort. SQLite: a file in a temporary directory.
//!
//! Logins are the facts the store reads (`find_login_facts`) and the
//! writes the pipeline decided on (`write_login`), or both at once
//! (`log_in`, which asks a decider in between); deciding (an inactive
//! user, an email in use) is the worker's, and tested there.

use socialauth_common::jobs::{DiscoveredEndpoints, JobError, JobKind, JobResult, LoginResult};
use socialauth_common::secret::Secret;
use socialauth_common::store::SealedCount;
use socialauth_common::store::{
    self, AuditEvent, AuditQuery, Campaign, CampaignCounts, CampaignItem, CampaignStatus,
    CodeClaim, CodeClaimed, Constraint, DecideLogin, FactsQuery, ItemOutcome, JobStatus,
    LinkedUser, LoginChange, LoginFacts, LoginWrite, NewAuditEvent, NewCampaign,
    NewOAuth1RequestToken, NewOAuthState, NewPartialLogin, NewSocialAccount, NewUser, PlanState,
    PlanStep, PlannedLogin, SealedTokens, SharedStore, Store, StoreError, StoredAccount, Written,
};
use socialauth_common::types::{SocialAccount, User, UserId};
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row, SqliteConnection};
use std::any::Any;
use std::sync::{Arc, Mutex};
use tokio::sync::Barrier;
use uuid::Uuid;

const DEFAULT_ADMIN_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/postgres";

/// A fixed clock: every timestamp in these tests is relative to it.
const NOW: i64 = 1_700_000_000_000;

/// Each test of `store` takes the store; each of `raw` also takes direct
/// SQL access to its database, for what the store does not read back. A
/// test followed by `= "reason"` states what PostgreSQL's store does not
/// do yet (a known bug): it is ignored there until fixed (run it with
/// `--ignored`).
macro_rules! conformance {
    (
        store: [$($test:ident $(= $bug:literal)?),* $(,)?],
        raw: [$($raw:ident $(= $raw_bug:literal)?),* $(,)?] $(,)?
    ) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                $(#[ignore = $bug])?
                async fn $test() {
                    let fixture = super::Fixture::postgres().await;
                    super::$test(fixture.store.clone()).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                $(#[ignore = $raw_bug])?
                async fn $raw() {
                    let fixture = super::Fixture::postgres().await;
                    super::$raw(fixture.store.clone(), fixture.raw.clone()).await;
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
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $raw() {
                    let fixture = super::Fixture::sqlite().await;
                    super::$raw(fixture.store.clone(), fixture.raw.clone()).await;
                }
            )*
        }
    };
}

conformance! {
    store: [
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
        a_state_is_given_back_only_by_the_job_that_took_it,
        a_take_made_again_by_its_job_gets_the_state_again,
        purges_delete_only_rows_older_than_the_cut_off,
        provider_health_keeps_the_last_change_per_provider,
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
        a_returning_login_whose_link_is_not_its_users_writes_nothing,
        a_login_of_a_user_deactivated_meanwhile_writes_nothing,
        only_a_job_answered_with_202_is_delivered,
        a_lost_write_keeps_its_partial_login,
        the_facts_of_an_inactive_users_login_show_it_inactive,
        an_unknown_identity_has_no_facts_and_nothing_is_written_for_it,
        a_referral_code_names_its_referrer_and_an_unknown_one_nobody,
        the_facts_name_the_owner_of_the_email,
        a_partial_login_is_consumed_by_its_first_write_only,
        a_created_user_keeps_its_given_times,
        a_login_decided_not_to_write_writes_nothing,
        an_association_state_names_its_user_and_a_logins_none,
        an_oauth1_request_token_names_its_user_and_a_logins_none,
        a_links_last_login_is_its_creation_then_its_latest_login,
        logins_through_log_in_move_their_links_last_login,
        only_an_active_user_is_locked,
        stored_accounts_carry_their_sealed_tokens_oldest_first,
        a_link_is_deleted_once_and_by_its_own_user_only,
        a_link_deleted_in_a_dropped_transaction_stays,
        audit_events_are_listed_newest_first_by_user_and_provider,
        audit_events_are_paged_by_their_cursor_without_gaps,
        a_stored_account_carries_every_sealed_token_field,
        a_refresh_lease_is_held_by_one_owner_until_it_expires,
        links_due_for_a_scheduled_refresh_are_listed_soonest_first,
        a_claim_is_given_back_only_by_its_job,
        an_ended_refresh_keeps_the_tokens_and_marks_reauth_only_when_asked,
        concurrent_refresh_leases_of_one_link_go_to_one_owner,
        a_login_keeps_the_stored_tokens_unless_it_brings_its_own,
        a_new_campaign_runs_with_nothing_planned_or_counted,
        campaigns_are_listed_newest_first,
        a_running_campaign_is_cancelled_once,
        plan_candidates_are_usable_links_of_the_provider_expiring_before_the_bound_in_id_order,
        a_plan_step_is_recorded_once_from_the_state_it_was_planned_from,
        a_stopped_campaign_takes_no_plan_step,
        a_campaign_is_done_once_planned_with_every_item_handled,
        a_cancelled_campaign_stays_cancelled_when_its_items_are_handled,
        campaign_pages_are_found_by_range_and_while_an_item_is_unhandled,
        published_pages_only_grow,
        campaign_leases_are_taken_when_free_expired_or_the_owners_already,
        each_campaign_item_is_counted_once_with_its_first_outcome,
        concurrent_finishes_of_one_page_count_each_item_once,
        rate_reservations_follow_each_other_and_start_now_when_idle,
        concurrent_rate_reservations_never_overlap,
        a_refreshed_campaign_item_stores_its_tokens_as_given,
        tokens_without_their_lease_are_not_stored_and_count_failed,
        links_due_for_a_reencryption_are_those_under_another_key_or_format,
        a_reencryption_runs_alone_and_is_held_by_one_owner_at_a_time,
    ],
    raw: [
        a_returning_login_refreshes_tokens_and_issues_a_token,
        a_link_adds_an_identity_to_its_user_with_an_audit_event,
        a_login_audit_event_is_stored_as_given,
        reclaim_email_clears_an_unverified_email_only,
        states_made_and_taken_at_once_each_name_their_own_user,
        a_finished_refresh_writes_its_tokens_and_gives_the_lease_back,
        finished_campaign_items_settle_only_the_leases_their_owner_holds,
        a_reencryption_page_replaces_only_tokens_still_as_read,
    ],
}

// ---------------------------------------------------------------- fixtures

/// A migrated store on a database of its own, removed when dropped.
struct Fixture {
    store: SharedStore,
    raw: Raw,
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
            raw: Raw::Sqlite(url),
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
            raw: Raw::Postgres(scratch.url.clone()),
            _scratch: Box::new(scratch),
        }
    }
}

/// Direct SQL on a fixture's database, one connection a call.
#[derive(Clone)]
enum Raw {
    Postgres(String),
    Sqlite(String),
}

impl Raw {
    /// The rows `sql` selects, every column text (or NULL).
    async fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        fn texts<R: Row>(rows: &[R]) -> Vec<Vec<Option<String>>>
        where
            for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            usize: sqlx::ColumnIndex<R>,
        {
            rows.iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| row.try_get(i).expect("a text column"))
                        .collect()
                })
                .collect()
        }
        let sql = AssertSqlSafe(sql.to_owned());
        match self {
            Self::Postgres(url) => {
                let mut conn = PgConnection::connect(url).await.expect("connect");
                let rows = sqlx::query(sql).fetch_all(&mut conn).await.expect("query");
                let _ = conn.close().await;
                texts(&rows)
            }
            Self::Sqlite(url) => {
                let mut conn = SqliteConnection::connect(url).await.expect("connect");
                let rows = sqlx::query(sql).fetch_all(&mut conn).await.expect("query");
                let _ = conn.close().await;
                texts(&rows)
            }
        }
    }

    async fn execute(&self, sql: &str) {
        let sql = AssertSqlSafe(sql.to_owned());
        match self {
            Self::Postgres(url) => {
                let mut conn = PgConnection::connect(url).await.expect("connect");
                sqlx::query(sql).execute(&mut conn).await.expect("execute");
                let _ = conn.close().await;
            }
            Self::Sqlite(url) => {
                let mut conn = SqliteConnection::connect(url).await.expect("connect");
                sqlx::query(sql).execute(&mut conn).await.expect("execute");
                let _ = conn.close().await;
            }
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
        email_verified: true,
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
            token_secret: None,
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
        user_id: None,
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
    assert!(ann.email_verified);
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
        token_secret: Some("sealed-secret-2".to_owned()),
        expires_at: Some(NOW + 7_200_000),
    };
    assert!(
        tx.update_social_account_tokens(link.id, ann.id, &fresh, NOW + 1)
            .await
            .expect("update")
    );
    tx.commit().await.expect("commit");

    let links = store.find_social_accounts(ann.id).await.expect("list");
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].expires_at, Some(NOW + 7_200_000));
    assert!(!links[0].needs_reauth);

    // The link is not bob's (nor is a link that does not exist anyone's):
    // nothing is replaced.
    let bob = create_user(&store, &new_user("bob")).await;
    let other = SealedTokens {
        expires_at: Some(NOW + 9_000_000),
        ..SealedTokens::default()
    };
    let mut tx = store.begin().await.expect("begin");
    assert!(
        !tx.update_social_account_tokens(link.id, bob.id, &other, NOW + 2)
            .await
            .expect("update")
    );
    assert!(
        !tx.update_social_account_tokens(i64::MAX, ann.id, &other, NOW + 2)
            .await
            .expect("update")
    );
    tx.commit().await.expect("commit");
    let links = store.find_social_accounts(ann.id).await.expect("list");
    assert_eq!(links[0].expires_at, Some(NOW + 7_200_000));
    assert!(
        store
            .find_social_accounts(bob.id)
            .await
            .expect("list")
            .is_empty()
    );
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
    // Read while open (a form_post answer is relayed first), as often as
    // asked, and not after it is taken.
    for _ in 0..2 {
        let open = store
            .find_open_oauth_state("state-1")
            .await
            .expect("find open")
            .expect("open");
        assert_eq!(open.provider, "corp");
        assert_eq!(open.expires_at, NOW + 600_000);
    }
    assert!(
        store
            .find_open_oauth_state("state-2")
            .await
            .expect("find open")
            .is_none()
    );
    let job = Uuid::new_v4();
    let take = store::OAuthStateTake {
        state_hash: "state-1",
        now: NOW + 3,
        job_id: job,
        code_hash: "code-hash-1",
    };
    assert!(store.take_oauth_state(&take).await.expect("take").is_some());
    assert!(
        store
            .find_open_oauth_state("state-1")
            .await
            .expect("find open")
            .is_none()
    );
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
            user_id: None,
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

async fn a_state_is_given_back_only_by_the_job_that_took_it(store: SharedStore) {
    store
        .insert_oauth_state(&new_state("state-1", NOW + 600_000))
        .await
        .expect("insert state");
    let first = take_of("state-1", NOW);
    assert!(
        store
            .take_oauth_state(&first)
            .await
            .expect("take")
            .is_some()
    );
    assert!(
        !store
            .release_oauth_state("state-1", Uuid::new_v4())
            .await
            .expect("release"),
        "another job cannot give it back"
    );
    assert!(
        store
            .find_taken_oauth_state("state-1")
            .await
            .expect("find")
            .is_some()
    );
    assert!(
        store
            .release_oauth_state("state-1", first.job_id)
            .await
            .expect("release")
    );
    assert_eq!(
        store.find_taken_oauth_state("state-1").await.expect("find"),
        None,
        "given back"
    );
    // Taken again, by another job, as new.
    let second = take_of("state-1", NOW + 5);
    let again = store
        .take_oauth_state(&second)
        .await
        .expect("take")
        .expect("the state is there again");
    assert_eq!(again.redirect_uri, "http://localhost:3000/cb");
    let taken = store
        .find_taken_oauth_state("state-1")
        .await
        .expect("find")
        .expect("taken");
    assert_eq!(taken.taken_by, Some(second.job_id));
    assert!(
        !store
            .release_oauth_state("state-1", first.job_id)
            .await
            .expect("release"),
        "the first job's give-back comes too late"
    );
    assert!(
        !store
            .release_oauth_state("unknown", first.job_id)
            .await
            .expect("release")
    );
}

async fn a_take_made_again_by_its_job_gets_the_state_again(store: SharedStore) {
    store
        .insert_oauth_state(&new_state("state-1", NOW + 600_000))
        .await
        .expect("insert state");
    let first = take_of("state-1", NOW);
    let once = store.take_oauth_state(&first).await.expect("take");
    assert!(once.is_some());
    // Its answer lost, the same job takes it again: the same state, taken
    // when it was first.
    let again = store::OAuthStateTake {
        now: NOW + 4_000,
        ..first
    };
    let twice = store.take_oauth_state(&again).await.expect("take again");
    assert_eq!(
        twice.as_ref().map(|s| &s.redirect_uri),
        once.as_ref().map(|s| &s.redirect_uri)
    );
    let taken = store
        .find_taken_oauth_state("state-1")
        .await
        .expect("find")
        .expect("taken");
    assert_eq!(taken.taken_at, NOW);
    assert_eq!(taken.taken_by, Some(first.job_id));
    // Another job gets nothing.
    assert!(
        store
            .take_oauth_state(&take_of("state-1", NOW + 5_000))
            .await
            .expect("take")
            .is_none()
    );
}

async fn provider_health_keeps_the_last_change_per_provider(store: SharedStore) {
    assert!(store.list_provider_health().await.expect("list").is_empty());
    store
        .put_provider_health("corp", Some(NOW + 30_000), NOW)
        .await
        .expect("open");
    store
        .put_provider_health("alpha", None, NOW)
        .await
        .expect("closed");
    let all = store.list_provider_health().await.expect("list");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].provider, "alpha");
    assert!(!all[0].is_open(NOW));
    assert_eq!(all[1].open_until, Some(NOW + 30_000));
    assert!(all[1].is_open(NOW));
    assert!(!all[1].is_open(NOW + 30_000));
    store
        .put_provider_health("corp", None, NOW + 1)
        .await
        .expect("closed again");
    let all = store.list_provider_health().await.expect("list");
    assert_eq!(all[1].open_until, None);
    assert_eq!(all[1].updated_at, NOW + 1);
}

async fn purges_delete_only_rows_older_than_the_cut_off(store: SharedStore) {
    use socialauth_common::store::Purge;
    for (hash, expires_at) in [("old-1", NOW - 2), ("old-2", NOW - 1), ("new", NOW + 1)] {
        store
            .insert_oauth_state(&new_state(hash, expires_at))
            .await
            .expect("insert state");
    }
    // At most `limit` a statement.
    assert_eq!(
        store
            .purge(Purge::OAuthStates, NOW, 1)
            .await
            .expect("purge"),
        1
    );
    assert_eq!(
        store
            .purge(Purge::OAuthStates, NOW, 10)
            .await
            .expect("purge"),
        1
    );
    assert_eq!(
        store
            .purge(Purge::OAuthStates, NOW, 10)
            .await
            .expect("purge"),
        0
    );
    for gone in ["old-1", "old-2"] {
        assert!(
            store
                .take_oauth_state(&take_of(gone, NOW))
                .await
                .expect("take")
                .is_none()
        );
    }
    assert!(
        store
            .take_oauth_state(&take_of("new", NOW))
            .await
            .expect("take")
            .is_some()
    );

    let (old_job, new_job) = (Uuid::new_v4(), Uuid::new_v4());
    store
        .insert_pending_job(old_job, JobKind::Login, NOW - 10)
        .await
        .expect("job");
    store
        .insert_pending_job(new_job, JobKind::Login, NOW + 10)
        .await
        .expect("job");
    store
        .count_redelivery(old_job, NOW - 10)
        .await
        .expect("count");
    store
        .count_redelivery(new_job, NOW + 10)
        .await
        .expect("count");
    assert_eq!(store.purge(Purge::Jobs, NOW, 10).await.expect("purge"), 1);
    assert_eq!(
        store
            .purge(Purge::JobDeliveries, NOW, 10)
            .await
            .expect("purge"),
        1
    );
    assert!(store.find_job(old_job).await.expect("find").is_none());
    assert!(store.find_job(new_job).await.expect("find").is_some());
    assert_eq!(
        store
            .count_redelivery(new_job, NOW + 20)
            .await
            .expect("count"),
        2
    );
    assert_eq!(
        store
            .count_redelivery(old_job, NOW + 20)
            .await
            .expect("count"),
        1,
        "counted from the start again"
    );

    let ann = create_user(&store, &new_user("ann")).await;
    for (hash, expires_at) in [
        ("tok-old", Some(NOW - 1)),
        ("tok-new", Some(NOW + 1)),
        ("tok-forever", None),
    ] {
        store
            .insert_auth_token(hash, ann.id, NOW - 100, expires_at)
            .await
            .expect("token");
    }
    assert_eq!(
        store
            .purge(Purge::AuthTokens, NOW, 10)
            .await
            .expect("purge"),
        1
    );
    for kept in ["tok-new", "tok-forever"] {
        assert!(
            store
                .find_user_by_token(kept, NOW - 50)
                .await
                .expect("find")
                .is_some(),
            "{kept}"
        );
    }
    // The other kinds: nothing there, nothing deleted, no error.
    for what in [
        Purge::RequestTokens,
        Purge::PartialLogins,
        Purge::LoginCodes,
    ] {
        assert_eq!(store.purge(what, NOW, 10).await.expect("purge"), 0);
    }
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

// ------------------------------------- logins: the facts, then one write

/// A login's facts query for the identity of `account`.
fn facts_query<'a>(
    account: &'a NewSocialAccount,
    email_normalized: Option<&'a str>,
    referral_code: Option<&'a str>,
) -> FactsQuery<'a> {
    FactsQuery {
        provider: &account.provider,
        uid: &account.uid,
        email_normalized,
        referral_code,
    }
}

async fn facts(store: &SharedStore, query: &FactsQuery<'_>) -> LoginFacts {
    store.find_login_facts(query).await.expect("login facts")
}

/// Whether the store sets a new user's id aside when it reads a login's
/// facts (PostgreSQL) rather than when it writes the user (SQLite).
fn sets_ids_aside(store: &SharedStore) -> bool {
    store.backend() == "postgres"
}

/// Facts of an identity without a link: the id set aside for a new user,
/// where the store sets one aside.
fn unlinked(store: &SharedStore, facts: &LoginFacts) -> Option<UserId> {
    assert!(facts.account.is_none(), "{facts:?}");
    assert_eq!(
        facts.new_user_id.is_some(),
        sets_ids_aside(store),
        "{facts:?}"
    );
    facts.new_user_id
}

/// `user` as the store keeps it once written with `id`.
fn as_created(user: &NewUser, id: UserId) -> User {
    user.created(id)
}

/// A login's result as the pipeline stores it (no app token).
fn login_result(user: User, is_new: bool) -> JobResult {
    JobResult::Login(LoginResult {
        token: None,
        is_new,
        user,
        token_job: None,
    })
}

/// A login's writes at `NOW`: no token expiry, no partial login, no audit
/// event.
fn login_write<'a>(
    change: LoginChange<'a>,
    user_id: Option<UserId>,
    account: &'a NewSocialAccount,
    token: &'a str,
    job: Uuid,
    result: &'a JobResult,
) -> LoginWrite<'a> {
    LoginWrite {
        change,
        user_id,
        account,
        token_hash: token,
        token_expires_at: None,
        job_id: job,
        result,
        partial_hash: None,
        audit: None,
        now: NOW,
    }
}

async fn write(store: &SharedStore, login: &LoginWrite<'_>) -> Written {
    store.write_login(login).await.expect("write the login")
}

/// A first login as the pipeline makes it: the facts of an identity not
/// linked yet, then `Create` with the id they set aside. The user as
/// stored.
async fn sign_up(
    store: &SharedStore,
    user: &NewUser,
    account: &NewSocialAccount,
    token: &str,
    job: Uuid,
) -> User {
    let query = facts_query(account, user.email_normalized.as_deref(), None);
    let id = unlinked(store, &facts(store, &query).await);
    let result = login_result(as_created(user, id.unwrap_or(UserId(0))), true);
    let change = LoginChange::Create { user };
    let written = write(
        store,
        &login_write(change, id, account, token, job, &result),
    )
    .await;
    let Written::Done(created) = written else {
        panic!("a first login writes its user: {written:?}")
    };
    if let Some(id) = id {
        assert_eq!(created, id, "the id set aside");
    }
    store
        .find_user(created)
        .await
        .expect("find")
        .expect("the new user")
}

/// The link of `account`'s identity, from the facts.
async fn linked(store: &SharedStore, account: &NewSocialAccount) -> LinkedUser {
    let found = facts(store, &facts_query(account, None, None)).await;
    assert_eq!(found.new_user_id, None, "a linked identity: {found:?}");
    found.account.expect("a linked identity")
}

/// The stored result of a finished login job.
async fn stored_login(store: &SharedStore, job: Uuid) -> LoginResult {
    let record = store
        .find_job(job)
        .await
        .expect("find job")
        .expect("job row");
    assert_eq!(record.status, JobStatus::Succeeded);
    assert_eq!(record.attempts, 1);
    let Some(JobResult::Login(result)) = record.result else {
        panic!("not a login result: {:?}", record.result)
    };
    assert!(result.token.is_none(), "the app token is never stored");
    result
}

/// Neither the login's app token nor its job was written.
/// A `Create` refused by `constraint` wrote nothing: no token, no job, no
/// user with the new user's referral code.
async fn assert_refused_create(
    store: &SharedStore,
    err: &StoreError,
    constraint: Constraint,
    token_hash: &str,
    job: Uuid,
    referral_code: &str,
) {
    assert!(
        matches!(err, StoreError::Conflict(c) if *c == constraint),
        "{err:?}"
    );
    assert_no_token_nor_job(store, token_hash, job).await;
    assert!(
        store
            .find_user_by_referral_code(referral_code)
            .await
            .expect("find")
            .is_none()
    );
}

async fn assert_no_token_nor_job(store: &SharedStore, token: &str, job: Uuid) {
    assert!(
        store
            .find_user_by_token(token, NOW)
            .await
            .expect("find")
            .is_none(),
        "{token}"
    );
    assert!(store.find_job(job).await.expect("find job").is_none());
}

fn partial(token_hash: &str) -> NewPartialLogin {
    NewPartialLogin {
        token_hash: token_hash.to_owned(),
        provider: "corp".to_owned(),
        data_enc: "sealed-profile".to_owned(),
        token_key_id: "k1".to_owned(),
        created_at: NOW - 1_000,
        expires_at: NOW + 600_000,
    }
}

async fn partial_is_there(store: &SharedStore, token_hash: &str) -> bool {
    store
        .find_partial_login(token_hash, NOW)
        .await
        .expect("find partial login")
        .is_some()
}

/// Fresh provider tokens for `uid`'s link, OAuth 1.0a secret included.
fn fresh_account(uid: &str) -> NewSocialAccount {
    NewSocialAccount {
        tokens: SealedTokens {
            key_id: Some("k2".to_owned()),
            access_token: Some("sealed-new".to_owned()),
            refresh_token: None,
            token_secret: Some("sealed-secret".to_owned()),
            expires_at: Some(NOW + 1),
        },
        ..new_account(UserId(0), "corp", uid)
    }
}

/// The sealed tokens stored on the link of `corp`/`uid`: key id, access,
/// refresh, secret.
async fn stored_tokens(raw: &Raw, uid: &str) -> Vec<Option<String>> {
    let rows = raw
        .rows(&format!(
            "SELECT token_key_id, access_token_enc, refresh_token_enc, token_secret_enc \
             FROM social_accounts WHERE provider = 'corp' AND uid = '{uid}'"
        ))
        .await;
    assert_eq!(rows.len(), 1, "one link of {uid}");
    rows.into_iter().next().unwrap_or_default()
}

fn owned(values: [Option<&str>; 4]) -> Vec<Option<String>> {
    values.iter().map(|v| v.map(str::to_owned)).collect()
}

/// The audit events, oldest first: kind, user id, provider, outcome,
/// detail, request id, time.
async fn audit_events(raw: &Raw) -> Vec<Vec<Option<String>>> {
    raw.rows(
        "SELECT kind, CAST(user_id AS TEXT), provider, outcome, detail, request_id, \
                CAST(at AS TEXT) FROM audit_events ORDER BY id",
    )
    .await
}

fn audit_row(event: &NewAuditEvent) -> Vec<Option<String>> {
    vec![
        Some(event.kind.to_owned()),
        event.user_id.map(|u| u.to_string()),
        event.provider.clone(),
        Some(event.outcome.to_owned()),
        Some(event.detail.clone()),
        event.request_id.clone(),
        Some(event.at.to_string()),
    ]
}

async fn a_first_login_writes_user_link_token_and_job_at_once(store: SharedStore) {
    let user = NewUser {
        first_name: "Zoë".to_owned(),
        last_name: "Ñandú 山田 \"quoted\"".to_owned(),
        ..new_user("ann")
    };
    let account = new_account(UserId(0), "corp", "uid-ann");
    let query = facts_query(&account, Some("ann@example.com"), None);
    let found = facts(&store, &query).await;
    assert_eq!(found.email_owner, None);
    assert_eq!(found.referrer, None);
    let id = unlinked(&store, &found);

    let job = Uuid::new_v4();
    let result = login_result(as_created(&user, id.unwrap_or(UserId(0))), true);
    let change = LoginChange::Create { user: &user };
    let written = write(
        &store,
        &login_write(change, id, &account, "tok-ann", job, &result),
    )
    .await;
    let Written::Done(user_id) = written else {
        panic!("written: {written:?}")
    };
    if let Some(id) = id {
        assert_eq!(user_id, id, "the id set aside");
    }
    let created = store.find_user(user_id).await.expect("find").expect("user");
    assert_eq!(created, as_created(&user, user_id));
    assert_eq!(created.username, "ann");
    assert_eq!(created.last_name, "Ñandú 山田 \"quoted\"");
    assert!(created.email_verified);

    let by_token = store
        .find_user_by_token("tok-ann", NOW)
        .await
        .expect("find");
    assert_eq!(by_token.as_ref().map(|u| u.id), Some(created.id));
    let links = store.find_social_accounts(created.id).await.expect("links");
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].uid, "uid-ann");
    let stored = stored_login(&store, job).await;
    assert!(stored.is_new);
    assert_eq!(stored.user, created, "the result names the user's id");

    // The identity is known now.
    let again = facts(&store, &query).await;
    assert_eq!(
        again,
        LoginFacts {
            account: Some(LinkedUser {
                account_id: links[0].id,
                user: created,
            }),
            // A linked identity's owner and referrer are not looked up.
            email_owner: None,
            referrer: None,
            new_user_id: None,
        }
    );
}

async fn a_failed_first_login_writes_nothing(store: SharedStore) {
    let first = new_user("bea");
    let bea_account = new_account(UserId(0), "corp", "uid-1");
    // Another login of the same identity reads the facts before the first
    // one is written.
    let racing = facts(&store, &facts_query(&bea_account, None, None)).await;
    let racing_id = unlinked(&store, &racing);
    let bea = sign_up(&store, &first, &bea_account, "t1", Uuid::new_v4()).await;

    // Same email, another identity: the email conflict writes nothing, and
    // the partial login it resumes stays.
    let clash = NewUser {
        username: "bea2".to_owned(),
        referral_code: "REF-bea2".to_owned(),
        ..new_user("bea")
    };
    let account = new_account(UserId(0), "corp", "uid-2");
    let found = facts(
        &store,
        &facts_query(&account, Some("bea@example.com"), None),
    )
    .await;
    assert_eq!(found.email_owner.as_ref(), Some(&bea));
    let id = unlinked(&store, &found);
    store
        .insert_partial_login(&partial("partial-bea2"))
        .await
        .expect("partial login");
    let job = Uuid::new_v4();
    let result = login_result(as_created(&clash, id.unwrap_or(UserId(0))), true);
    let err = store
        .write_login(&LoginWrite {
            partial_hash: Some("partial-bea2"),
            ..login_write(
                LoginChange::Create { user: &clash },
                id,
                &account,
                "t2",
                job,
                &result,
            )
        })
        .await
        .expect_err("email taken");
    assert_refused_create(&store, &err, Constraint::UserEmail, "t2", job, "REF-bea2").await;
    let after = facts(&store, &facts_query(&account, None, None)).await;
    assert!(after.account.is_none(), "{after:?}");
    assert!(partial_is_there(&store, "partial-bea2").await);

    // The identity was linked meanwhile: the identity conflict writes no
    // user either.
    let cat = new_user("cat");
    let job = Uuid::new_v4();
    let result = login_result(as_created(&cat, racing_id.unwrap_or(UserId(0))), true);
    let err = store
        .write_login(&login_write(
            LoginChange::Create { user: &cat },
            racing_id,
            &bea_account,
            "t3",
            job,
            &result,
        ))
        .await
        .expect_err("identity taken");
    assert_refused_create(
        &store,
        &err,
        Constraint::SocialAccountIdentity,
        "t3",
        job,
        "REF-cat",
    )
    .await;
    assert_eq!(linked(&store, &bea_account).await.user, bea);
}

async fn a_returning_login_refreshes_tokens_and_issues_a_token(store: SharedStore, raw: Raw) {
    let dan = sign_up(
        &store,
        &new_user("dan"),
        &new_account(UserId(0), "corp", "uid-dan"),
        "t1",
        Uuid::new_v4(),
    )
    .await;
    assert_eq!(
        stored_tokens(&raw, "uid-dan").await,
        owned([
            Some("k1"),
            Some("sealed-access"),
            Some("sealed-refresh"),
            None
        ])
    );
    raw.execute("UPDATE social_accounts SET needs_reauth = true")
        .await;

    let fresh = fresh_account("uid-dan");
    let found = facts(&store, &facts_query(&fresh, Some("dan@example.com"), None)).await;
    assert_eq!(
        found.new_user_id, None,
        "no id set aside for a known identity"
    );
    assert_eq!(
        found.email_owner, None,
        "not looked up for a known identity"
    );
    let link = found.account.expect("a known identity");
    assert_eq!(link.user, dan);

    let job = Uuid::new_v4();
    let result = login_result(dan.clone(), false);
    let change = LoginChange::Existing {
        account_id: link.account_id,
    };
    let written = write(
        &store,
        &LoginWrite {
            token_expires_at: Some(NOW + 10),
            ..login_write(change, Some(dan.id), &fresh, "t2", job, &result)
        },
    )
    .await;
    assert_eq!(written, Written::Done(dan.id));
    assert_eq!(
        store
            .find_user_by_token("t2", NOW)
            .await
            .expect("find")
            .map(|u| u.id),
        Some(dan.id)
    );
    assert!(
        store
            .find_user_by_token("t2", NOW + 10)
            .await
            .expect("find")
            .is_none()
    );
    let links = store.find_social_accounts(dan.id).await.expect("links");
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].id, link.account_id);
    assert_eq!(links[0].expires_at, Some(NOW + 1));
    assert!(!links[0].needs_reauth, "fresh tokens make the link usable");
    assert_eq!(
        stored_tokens(&raw, "uid-dan").await,
        owned([Some("k2"), Some("sealed-new"), None, Some("sealed-secret")])
    );
    let stored = stored_login(&store, job).await;
    assert!(!stored.is_new);
    assert_eq!(stored.user, dan);
    assert_eq!(store.find_user(dan.id).await.expect("find"), Some(dan));
}

async fn a_returning_login_whose_link_is_not_its_users_writes_nothing(store: SharedStore) {
    let dan_account = new_account(UserId(0), "corp", "uid-dan");
    let dan = sign_up(&store, &new_user("dan"), &dan_account, "t1", Uuid::new_v4()).await;
    let eve = sign_up(
        &store,
        &new_user("eve"),
        &new_account(UserId(0), "corp", "uid-eve"),
        "t2",
        Uuid::new_v4(),
    )
    .await;
    let link = linked(&store, &dan_account).await;
    let fresh = fresh_account("uid-dan");
    let result = login_result(eve.clone(), false);

    // The link is dan's, not eve's.
    let job = Uuid::new_v4();
    let change = LoginChange::Existing {
        account_id: link.account_id,
    };
    let written = write(
        &store,
        &login_write(change, Some(eve.id), &fresh, "t-lost", job, &result),
    )
    .await;
    assert_eq!(written, Written::Lost);
    assert_no_token_nor_job(&store, "t-lost", job).await;
    let links = store.find_social_accounts(dan.id).await.expect("links");
    assert_eq!(
        links[0].expires_at,
        Some(NOW + 3_600_000),
        "tokens untouched"
    );

    // A link that is gone, and a login without a user to write to.
    for (change, user_id) in [
        (
            LoginChange::Existing {
                account_id: i64::MAX,
            },
            Some(dan.id),
        ),
        (
            LoginChange::Existing {
                account_id: link.account_id,
            },
            None,
        ),
        (LoginChange::Link, None),
    ] {
        let job = Uuid::new_v4();
        let other = new_account(UserId(0), "corp", "uid-other");
        let written = write(
            &store,
            &login_write(change, user_id, &other, "t-lost", job, &result),
        )
        .await;
        assert_eq!(written, Written::Lost, "{change:?} of {user_id:?}");
        assert_no_token_nor_job(&store, "t-lost", job).await;
    }
    let other = facts(
        &store,
        &facts_query(&fresh_account("uid-other"), None, None),
    )
    .await;
    assert!(other.account.is_none(), "{other:?}");
    assert_eq!(linked(&store, &dan_account).await, link);
}

/// The partial login of a write that was lost stays for the next try, as
/// it stays after a conflict.
async fn a_lost_write_keeps_its_partial_login(store: SharedStore) {
    let dan_account = new_account(UserId(0), "corp", "uid-dan");
    sign_up(&store, &new_user("dan"), &dan_account, "t1", Uuid::new_v4()).await;
    let eve = sign_up(
        &store,
        &new_user("eve"),
        &new_account(UserId(0), "corp", "uid-eve"),
        "t2",
        Uuid::new_v4(),
    )
    .await;
    let link = linked(&store, &dan_account).await;
    store
        .insert_partial_login(&partial("partial-1"))
        .await
        .expect("partial login");
    let result = login_result(eve.clone(), false);
    let change = LoginChange::Existing {
        account_id: link.account_id,
    };
    let fresh = fresh_account("uid-dan");
    let written = write(
        &store,
        &LoginWrite {
            partial_hash: Some("partial-1"),
            ..login_write(
                change,
                Some(eve.id),
                &fresh,
                "t-lost",
                Uuid::new_v4(),
                &result,
            )
        },
    )
    .await;
    assert_eq!(written, Written::Lost);
    assert!(
        partial_is_there(&store, "partial-1").await,
        "a lost write consumed its partial login"
    );
}

async fn the_facts_of_an_inactive_users_login_show_it_inactive(store: SharedStore) {
    let account = new_account(UserId(0), "corp", "uid-eve");
    let eve = sign_up(&store, &new_user("eve"), &account, "t1", Uuid::new_v4()).await;
    deactivate(&store, eve.id).await;
    // The pipeline refuses the login; the store only tells.
    let found = facts(
        &store,
        &facts_query(&account, Some("eve@example.com"), None),
    )
    .await;
    let link = found.account.expect("a known identity");
    assert_eq!(link.user.id, eve.id);
    assert!(!link.user.is_active);
    assert_eq!(
        found.email_owner, None,
        "not looked up for a known identity"
    );
    assert_eq!(found.new_user_id, None);
    // Reading the facts wrote nothing.
    let links = store.find_social_accounts(eve.id).await.expect("links");
    assert_eq!(
        links[0].expires_at,
        Some(NOW + 3_600_000),
        "tokens untouched"
    );
    assert!(
        !store
            .find_user(eve.id)
            .await
            .expect("find")
            .expect("eve")
            .is_active
    );
}

async fn an_unknown_identity_has_no_facts_and_nothing_is_written_for_it(store: SharedStore) {
    let account = new_account(UserId(0), "corp", "nobody");
    let query = facts_query(&account, Some("nobody@example.com"), Some("NOSUCHCODE"));
    let found = facts(&store, &query).await;
    let id = unlinked(&store, &found);
    assert_eq!(
        found,
        LoginFacts {
            new_user_id: id,
            ..LoginFacts::default()
        }
    );
    // Each reading sets another id aside.
    let again = facts(&store, &query).await;
    let other = unlinked(&store, &again);
    if sets_ids_aside(&store) {
        assert_ne!(id, other);
    }
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
    if let Some(id) = id {
        assert!(store.find_user(id).await.expect("find").is_none());
    }
}

async fn a_referral_code_names_its_referrer_and_an_unknown_one_nobody(store: SharedStore) {
    let rita = sign_up(
        &store,
        &new_user("rita"),
        &new_account(UserId(0), "corp", "uid-r"),
        "t1",
        Uuid::new_v4(),
    )
    .await;
    let account = new_account(UserId(0), "corp", "uid-s");
    let unknown = facts(
        &store,
        &facts_query(&account, Some("sam@example.com"), Some("NOSUCHCODE")),
    )
    .await;
    assert_eq!(unknown.referrer, None);
    unlinked(&store, &unknown);
    assert!(
        store
            .find_user_by_referral_code("REF-sam")
            .await
            .expect("find")
            .is_none()
    );

    let found = facts(
        &store,
        &facts_query(&account, Some("sam@example.com"), Some("REF-rita")),
    )
    .await;
    assert_eq!(found.referrer, Some(rita.id));
    let id = unlinked(&store, &found);
    let sam = NewUser {
        referred_by: found.referrer,
        ..new_user("sam")
    };
    let job = Uuid::new_v4();
    let result = login_result(as_created(&sam, id.unwrap_or(UserId(0))), true);
    let written = write(
        &store,
        &login_write(
            LoginChange::Create { user: &sam },
            id,
            &account,
            "t3",
            job,
            &result,
        ),
    )
    .await;
    let Written::Done(sam_id) = written else {
        panic!("written: {written:?}")
    };
    let created = store.find_user(sam_id).await.expect("find").expect("sam");
    assert_eq!(created.referred_by, Some(rita.id));
    let stored = stored_login(&store, job).await;
    assert!(stored.is_new);
    assert_eq!(stored.user, created);
}

async fn the_facts_name_the_owner_of_the_email(store: SharedStore) {
    let ann_account = new_account(UserId(0), "corp", "uid-ann");
    let ann = sign_up(&store, &new_user("ann"), &ann_account, "t1", Uuid::new_v4()).await;
    let tia = sign_up(
        &store,
        &NewUser {
            email_verified: false,
            ..new_user("tia")
        },
        &new_account(UserId(0), "corp", "uid-tia"),
        "t2",
        Uuid::new_v4(),
    )
    .await;
    assert!(ann.email_verified);
    assert!(!tia.email_verified);

    let newcomer = new_account(UserId(0), "github", "uid-ann");
    for (email, owner) in [
        (Some("ann@example.com"), Some(&ann)),
        (Some("tia@example.com"), Some(&tia)),
        (Some("nobody@example.com"), None),
        (None, None),
    ] {
        let found = facts(&store, &facts_query(&newcomer, email, None)).await;
        unlinked(&store, &found);
        assert_eq!(found.email_owner.as_ref(), owner, "{email:?}");
        assert_eq!(found.referrer, None);
    }
    // An identity of one user, the email of another: the link is what
    // counts, the owner and the referrer are left out.
    let found = facts(
        &store,
        &facts_query(&ann_account, Some("tia@example.com"), Some("REF-tia")),
    )
    .await;
    assert_eq!(found.account.map(|l| l.user), Some(ann));
    assert_eq!(found.email_owner, None);
    assert_eq!(found.referrer, None);
    assert_eq!(found.new_user_id, None);
}

async fn a_partial_login_is_consumed_by_its_first_write_only(store: SharedStore) {
    for hash in ["partial-1", "partial-2"] {
        store
            .insert_partial_login(&partial(hash))
            .await
            .expect("partial login");
    }
    let ann_account = new_account(UserId(0), "corp", "uid-ann");
    let ann_user = new_user("ann");
    let found = facts(&store, &facts_query(&ann_account, None, None)).await;
    let id = unlinked(&store, &found);
    let job = Uuid::new_v4();
    let result = login_result(as_created(&ann_user, id.unwrap_or(UserId(0))), true);
    let change = LoginChange::Create { user: &ann_user };
    let written = write(
        &store,
        &LoginWrite {
            partial_hash: Some("partial-1"),
            ..login_write(change, id, &ann_account, "t1", job, &result)
        },
    )
    .await;
    let Written::Done(ann_id) = written else {
        panic!("written: {written:?}")
    };
    assert!(!partial_is_there(&store, "partial-1").await, "consumed");
    assert!(partial_is_there(&store, "partial-2").await, "another's");
    assert!(stored_login(&store, job).await.is_new);

    // A second resume of the same partial login writes nothing.
    let bob_account = new_account(UserId(0), "corp", "uid-bob");
    let bob = new_user("bob");
    let found = facts(&store, &facts_query(&bob_account, None, None)).await;
    let id = unlinked(&store, &found);
    let job = Uuid::new_v4();
    let result = login_result(as_created(&bob, id.unwrap_or(UserId(0))), true);
    let written = write(
        &store,
        &LoginWrite {
            partial_hash: Some("partial-1"),
            ..login_write(
                LoginChange::Create { user: &bob },
                id,
                &bob_account,
                "t2",
                job,
                &result,
            )
        },
    )
    .await;
    assert_eq!(written, Written::PartialGone);
    assert_no_token_nor_job(&store, "t2", job).await;
    assert!(
        store
            .find_user_by_referral_code("REF-bob")
            .await
            .expect("find")
            .is_none()
    );
    let after = facts(&store, &facts_query(&bob_account, None, None)).await;
    assert!(after.account.is_none(), "{after:?}");

    // A partial login that never was: nothing either, tokens untouched.
    let link = linked(&store, &ann_account).await;
    let ann = link.user.clone();
    assert_eq!(ann.id, ann_id);
    let fresh = fresh_account("uid-ann");
    let result = login_result(ann.clone(), false);
    let change = LoginChange::Existing {
        account_id: link.account_id,
    };
    let job = Uuid::new_v4();
    let written = write(
        &store,
        &LoginWrite {
            partial_hash: Some("no-such-partial"),
            ..login_write(change, Some(ann.id), &fresh, "t3", job, &result)
        },
    )
    .await;
    assert_eq!(written, Written::PartialGone);
    assert_no_token_nor_job(&store, "t3", job).await;
    let links = store.find_social_accounts(ann.id).await.expect("links");
    assert_eq!(links[0].expires_at, Some(NOW + 3_600_000));

    // The other partial login is there to resume.
    let job = Uuid::new_v4();
    let written = write(
        &store,
        &LoginWrite {
            partial_hash: Some("partial-2"),
            ..login_write(change, Some(ann.id), &fresh, "t4", job, &result)
        },
    )
    .await;
    assert_eq!(written, Written::Done(ann.id));
    assert!(!partial_is_there(&store, "partial-2").await, "consumed");
    let links = store.find_social_accounts(ann.id).await.expect("links");
    assert_eq!(links[0].expires_at, Some(NOW + 1));
}

fn link_event(user: UserId, provider: &str) -> NewAuditEvent {
    NewAuditEvent {
        kind: "automatic_link",
        user_id: Some(user),
        provider: Some(provider.to_owned()),
        outcome: "linked",
        detail: r#"{"uid":"gh-ann"}"#.to_owned(),
        request_id: Some("req-1".to_owned()),
        at: NOW,
    }
}

async fn a_link_adds_an_identity_to_its_user_with_an_audit_event(store: SharedStore, raw: Raw) {
    let ann = sign_up(
        &store,
        &new_user("ann"),
        &new_account(UserId(0), "corp", "uid-ann"),
        "t1",
        Uuid::new_v4(),
    )
    .await;
    let github = new_account(UserId(0), "github", "gh-ann");
    let found = facts(&store, &facts_query(&github, Some("ann@example.com"), None)).await;
    unlinked(&store, &found);
    assert_eq!(found.email_owner.as_ref(), Some(&ann));

    let event = link_event(ann.id, "github");
    let job = Uuid::new_v4();
    let result = login_result(ann.clone(), false);
    let written = write(
        &store,
        &LoginWrite {
            audit: Some(&event),
            ..login_write(LoginChange::Link, Some(ann.id), &github, "t2", job, &result)
        },
    )
    .await;
    assert_eq!(written, Written::Done(ann.id));
    let links = store.find_social_accounts(ann.id).await.expect("links");
    let identities: Vec<(&str, &str)> = links
        .iter()
        .map(|l| (l.provider.as_str(), l.uid.as_str()))
        .collect();
    assert_eq!(identities, [("corp", "uid-ann"), ("github", "gh-ann")]);
    assert_eq!(linked(&store, &github).await.user, ann);
    assert_eq!(
        store
            .find_user_by_token("t2", NOW)
            .await
            .expect("find")
            .map(|u| u.id),
        Some(ann.id)
    );
    let stored = stored_login(&store, job).await;
    assert!(!stored.is_new);
    assert_eq!(stored.user, ann);
    let events = audit_events(&raw).await;
    assert_eq!(events.len(), 1, "{events:?}");
    // Kind, user, provider and detail as the pipeline wrote them.
    let expected = audit_row(&event);
    for column in [0, 1, 2, 4] {
        assert_eq!(events[0][column], expected[column], "column {column}");
    }

    // The identity is linked already: a second link conflicts and writes
    // nothing, no event either.
    let bob = sign_up(
        &store,
        &new_user("bob"),
        &new_account(UserId(0), "corp", "uid-bob"),
        "t3",
        Uuid::new_v4(),
    )
    .await;
    let event = link_event(bob.id, "github");
    let job = Uuid::new_v4();
    let result = login_result(bob.clone(), false);
    let err = store
        .write_login(&LoginWrite {
            audit: Some(&event),
            ..login_write(LoginChange::Link, Some(bob.id), &github, "t4", job, &result)
        })
        .await
        .expect_err("identity taken");
    assert!(
        matches!(err, StoreError::Conflict(Constraint::SocialAccountIdentity)),
        "{err:?}"
    );
    assert_no_token_nor_job(&store, "t4", job).await;
    assert_eq!(audit_events(&raw).await.len(), 1);
    assert_eq!(
        store
            .find_social_accounts(bob.id)
            .await
            .expect("links")
            .len(),
        1
    );
}

/// The audit event of a login is the one the pipeline wrote: outcome,
/// request id and time included.
async fn a_login_audit_event_is_stored_as_given(store: SharedStore, raw: Raw) {
    let ann = sign_up(
        &store,
        &new_user("ann"),
        &new_account(UserId(0), "corp", "uid-ann"),
        "t1",
        Uuid::new_v4(),
    )
    .await;
    let github = new_account(UserId(0), "github", "gh-ann");
    let event = NewAuditEvent {
        at: NOW - 7,
        ..link_event(ann.id, "github")
    };
    let result = login_result(ann.clone(), false);
    let written = write(
        &store,
        &LoginWrite {
            audit: Some(&event),
            ..login_write(
                LoginChange::Link,
                Some(ann.id),
                &github,
                "t2",
                Uuid::new_v4(),
                &result,
            )
        },
    )
    .await;
    assert_eq!(written, Written::Done(ann.id));
    assert_eq!(audit_events(&raw).await, [audit_row(&event)]);
}

/// A new user and its link keep the times the pipeline gave them.
async fn a_created_user_keeps_its_given_times(store: SharedStore) {
    let user = NewUser {
        created_at: NOW - 5,
        ..new_user("ann")
    };
    let account = NewSocialAccount {
        created_at: NOW - 3,
        ..new_account(UserId(0), "corp", "uid-ann")
    };
    let created = sign_up(&store, &user, &account, "t1", Uuid::new_v4()).await;
    assert_eq!(created.created_at, NOW - 5, "the user's creation time");
    let links = store.find_social_accounts(created.id).await.expect("links");
    assert_eq!(links[0].created_at, NOW - 3, "the link's creation time");
}

async fn reclaim_email_clears_an_unverified_email_only(store: SharedStore, raw: Raw) {
    let tia = sign_up(
        &store,
        &NewUser {
            email_verified: false,
            ..new_user("tia")
        },
        &new_account(UserId(0), "corp", "uid-tia"),
        "t1",
        Uuid::new_v4(),
    )
    .await;
    let val = sign_up(
        &store,
        &new_user("val"),
        &new_account(UserId(0), "corp", "uid-val"),
        "t2",
        Uuid::new_v4(),
    )
    .await;
    let event = |user: UserId| NewAuditEvent {
        kind: "email_reclaimed",
        user_id: Some(user),
        provider: Some("corp".to_owned()),
        outcome: "done",
        detail: r#"{"email":"tia@example.com"}"#.to_owned(),
        request_id: None,
        at: NOW,
    };
    let reclaim = |user: UserId, email: &'static str| {
        let store = store.clone();
        let event = event(user);
        async move {
            store
                .reclaim_email(user, email, &event)
                .await
                .expect("reclaim")
        }
    };
    assert!(!reclaim(tia.id, "val@example.com").await, "not tia's");
    assert!(!reclaim(val.id, "val@example.com").await, "verified");
    assert_eq!(
        store.find_user(val.id).await.expect("find"),
        Some(val.clone())
    );
    assert!(audit_events(&raw).await.is_empty());

    assert!(reclaim(tia.id, "tia@example.com").await);
    let after = store.find_user(tia.id).await.expect("find").expect("tia");
    assert_eq!(after.email, None);
    assert_eq!(
        after,
        User {
            email: None,
            ..tia.clone()
        }
    );
    let newcomer = new_account(UserId(0), "github", "uid-tia");
    let found = facts(
        &store,
        &facts_query(&newcomer, Some("tia@example.com"), None),
    )
    .await;
    assert_eq!(found.email_owner, None, "the address is free");
    assert!(!reclaim(tia.id, "tia@example.com").await, "taken already");
    let events = audit_events(&raw).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0][0].as_deref(), Some("email_reclaimed"));
    assert_eq!(events[0][1], Some(tia.id.to_string()));

    // Its verified owner may have it now.
    let owner = NewUser {
        username: "tia-verified".to_owned(),
        referral_code: "REF-tia-verified".to_owned(),
        ..new_user("tia")
    };
    let created = sign_up(&store, &owner, &newcomer, "t3", Uuid::new_v4()).await;
    assert_eq!(created.email.as_deref(), Some("tia@Example.com"));
    assert!(created.email_verified);
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

/// The facts of `queries` read together, each also read alone: the same
/// but for the ids set aside, which are all distinct, and set aside for
/// the identities without a link only.
async fn facts_together_as_alone(
    pg: &store::PgStore,
    shared: &SharedStore,
    queries: &[FactsQuery<'_>],
) -> Vec<LoginFacts> {
    let together: Vec<LoginFacts> = pg
        .find_login_facts_together(queries)
        .await
        .into_iter()
        .map(|r| r.expect("login facts"))
        .collect();
    assert_eq!(together.len(), queries.len());
    let mut set_aside = Vec::new();
    for (query, found) in queries.iter().zip(&together) {
        let alone = facts(shared, query).await;
        assert_eq!(
            LoginFacts {
                new_user_id: None,
                ..found.clone()
            },
            LoginFacts {
                new_user_id: None,
                ..alone.clone()
            },
            "{query:?}"
        );
        for facts in [found, &alone] {
            assert_eq!(
                facts.new_user_id.is_some(),
                facts.account.is_none(),
                "{query:?}"
            );
            set_aside.extend(facts.new_user_id);
        }
    }
    let distinct: std::collections::HashSet<UserId> = set_aside.iter().copied().collect();
    assert_eq!(distinct.len(), set_aside.len(), "{set_aside:?}");
    together
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_logins_written_together_answer_as_each_alone() {
    let (pg, scratch) = pg_store().await;
    let shared: SharedStore = pg.clone();
    let mut known = Vec::new();
    for name in ["dan", "eve", "rita"] {
        let account = new_account(UserId(0), "corp", &format!("uid-{name}"));
        let token = format!("t-{name}-1");
        known.push(sign_up(&shared, &new_user(name), &account, &token, Uuid::new_v4()).await);
    }
    let [dan, eve, rita] = <[User; 3]>::try_from(known).expect("three users");
    deactivate(&shared, eve.id).await;

    let ann_account = new_account(UserId(0), "corp", "uid-ann");
    let dan_fresh = fresh_account("uid-dan");
    let eve_account = new_account(UserId(0), "corp", "uid-eve");
    let nobody = new_account(UserId(0), "corp", "uid-nobody");
    let sam_account = new_account(UserId(0), "corp", "uid-sam");
    let tom_account = new_account(UserId(0), "corp", "uid-tom");
    let queries = [
        facts_query(&ann_account, Some("ann@example.com"), None),
        facts_query(&dan_fresh, Some("dan@example.com"), None),
        facts_query(&eve_account, Some("eve@example.com"), None),
        facts_query(&nobody, Some("rita@example.com"), None),
        facts_query(&sam_account, Some("sam@example.com"), Some("REF-rita")),
        facts_query(&tom_account, Some("tom@example.com"), Some("NOSUCHCODE")),
    ];
    let found = facts_together_as_alone(&pg, &shared, &queries).await;
    assert!(found[0].account.is_none() && found[0].email_owner.is_none());
    let dan_link = found[1].account.clone().expect("dan's link");
    assert_eq!(dan_link.user, dan);
    assert_eq!(
        found[1].email_owner, None,
        "not looked up for a known identity"
    );
    let eve_link = found[2].account.clone().expect("eve's link");
    assert_eq!(eve_link.user.id, eve.id);
    assert!(!eve_link.user.is_active);
    assert!(found[3].account.is_none());
    assert_eq!(found[3].email_owner.as_ref(), Some(&rita));
    assert_eq!(found[4].referrer, Some(rita.id));
    assert_eq!(found[5].referrer, None);
    let ann_id = found[0].new_user_id.expect("an id set aside for ann");
    let sam_id = found[4].new_user_id.expect("an id set aside for sam");
    let tom_id = found[5].new_user_id.expect("an id set aside for tom");

    let ann = new_user("ann");
    let sam = NewUser {
        referred_by: found[4].referrer,
        ..new_user("sam")
    };
    let tom = new_user("tom");
    let results = [
        login_result(as_created(&ann, ann_id), true),
        login_result(dan.clone(), false),
        login_result(as_created(&sam, sam_id), true),
        login_result(dan.clone(), false),
        login_result(rita.clone(), false),
        login_result(as_created(&tom, tom_id), true),
    ];
    let event = link_event(rita.id, "corp");
    let jobs: Vec<Uuid> = (0..6).map(|_| Uuid::new_v4()).collect();
    let writes = [
        login_write(
            LoginChange::Create { user: &ann },
            Some(ann_id),
            &ann_account,
            "t-ann",
            jobs[0],
            &results[0],
        ),
        login_write(
            LoginChange::Existing {
                account_id: dan_link.account_id,
            },
            Some(dan.id),
            &dan_fresh,
            "t-dan-2",
            jobs[1],
            &results[1],
        ),
        login_write(
            LoginChange::Create { user: &sam },
            Some(sam_id),
            &sam_account,
            "t-sam",
            jobs[2],
            &results[2],
        ),
        // Eve's link, not dan's.
        login_write(
            LoginChange::Existing {
                account_id: eve_link.account_id,
            },
            Some(dan.id),
            &eve_account,
            "t-eve-2",
            jobs[3],
            &results[3],
        ),
        LoginWrite {
            audit: Some(&event),
            ..login_write(
                LoginChange::Link,
                Some(rita.id),
                &nobody,
                "t-nobody",
                jobs[4],
                &results[4],
            )
        },
        LoginWrite {
            partial_hash: Some("no-such-partial"),
            ..login_write(
                LoginChange::Create { user: &tom },
                Some(tom_id),
                &tom_account,
                "t-tom",
                jobs[5],
                &results[5],
            )
        },
    ];
    let answers: Vec<Written> = pg
        .write_logins_together(&writes)
        .await
        .into_iter()
        .map(|r| r.expect("no error"))
        .collect();
    assert_eq!(
        answers,
        [
            Written::Done(ann_id),
            Written::Done(dan.id),
            Written::Done(sam_id),
            Written::Lost,
            Written::Done(rita.id),
            Written::PartialGone,
        ]
    );
    let written = ["t-ann", "t-dan-2", "t-sam", "t-nobody"].map(str::to_owned);
    assert_eq!(
        writing_transactions(&scratch, "auth_tokens", "token_hash", &written).await,
        1,
        "one statement wrote them all"
    );

    // Each login's own user, token, link and job, and nothing for the
    // others.
    let ann_in = shared.find_user(ann_id).await.expect("find").expect("ann");
    assert_eq!(ann_in, as_created(&ann, ann_id));
    let sam_in = shared.find_user(sam_id).await.expect("find").expect("sam");
    assert_eq!(sam_in, as_created(&sam, sam_id));
    assert_eq!(sam_in.referred_by, Some(rita.id));
    for (token, user) in [
        ("t-ann", Some(ann_id)),
        ("t-dan-2", Some(dan.id)),
        ("t-sam", Some(sam_id)),
        ("t-nobody", Some(rita.id)),
        ("t-eve-2", None),
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
    let ann_links = shared.find_social_accounts(ann_id).await.expect("links");
    assert_eq!(ann_links.len(), 1);
    assert_eq!(ann_links[0].uid, "uid-ann");
    let rita_links = shared.find_social_accounts(rita.id).await.expect("links");
    let uids: Vec<&str> = rita_links.iter().map(|l| l.uid.as_str()).collect();
    assert_eq!(uids, ["uid-rita", "uid-nobody"]);
    for (job, user, is_new) in [
        (jobs[0], &ann_in, true),
        (jobs[1], &dan, false),
        (jobs[2], &sam_in, true),
        (jobs[4], &rita, false),
    ] {
        let stored = stored_login(&shared, job).await;
        assert_eq!(&stored.user, user);
        assert_eq!(stored.is_new, is_new);
    }
    for job in [jobs[3], jobs[5]] {
        assert!(shared.find_job(job).await.expect("find").is_none());
    }
    assert!(shared.find_user(tom_id).await.expect("find").is_none());
    assert!(
        shared
            .find_user_by_referral_code("REF-tom")
            .await
            .expect("find")
            .is_none()
    );
    let tom_after = facts(&shared, &facts_query(&tom_account, None, None)).await;
    assert!(tom_after.account.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_clash_among_logins_written_together_fails_only_its_own() {
    let (pg, scratch) = pg_store().await;
    let shared: SharedStore = pg.clone();
    sign_up(
        &shared,
        &new_user("bea"),
        &new_account(UserId(0), "corp", "uid-bea"),
        "t-bea",
        Uuid::new_v4(),
    )
    .await;
    let clash = NewUser {
        username: "bea2".to_owned(),
        referral_code: "REF-bea2".to_owned(),
        ..new_user("bea")
    };
    let users = [new_user("cat"), clash, new_user("dot")];
    let accounts = [
        new_account(UserId(0), "corp", "uid-cat"),
        new_account(UserId(0), "corp", "uid-bea2"),
        new_account(UserId(0), "corp", "uid-dot"),
    ];
    let queries: Vec<FactsQuery<'_>> = users
        .iter()
        .zip(&accounts)
        .map(|(u, a)| facts_query(a, u.email_normalized.as_deref(), None))
        .collect();
    let ids: Vec<UserId> = facts_together_as_alone(&pg, &shared, &queries)
        .await
        .iter()
        .map(|f| f.new_user_id.expect("an id set aside"))
        .collect();
    let results: Vec<JobResult> = users
        .iter()
        .zip(&ids)
        .map(|(u, &id)| login_result(as_created(u, id), true))
        .collect();
    let jobs: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let tokens = ["t-cat", "t-bea2", "t-dot"];
    let writes: Vec<LoginWrite<'_>> = (0..3)
        .map(|i| {
            login_write(
                LoginChange::Create { user: &users[i] },
                Some(ids[i]),
                &accounts[i],
                tokens[i],
                jobs[i],
                &results[i],
            )
        })
        .collect();
    let mut answers = pg.write_logins_together(&writes).await.into_iter();
    assert_eq!(
        answers.next().expect("3").expect("cat"),
        Written::Done(ids[0])
    );
    let clashed = answers.next().expect("3");
    assert!(
        matches!(clashed, Err(StoreError::Conflict(Constraint::UserEmail))),
        "{clashed:?}"
    );
    assert_eq!(
        answers.next().expect("3").expect("dot"),
        Written::Done(ids[2])
    );
    assert_no_token_nor_job(&shared, "t-bea2", jobs[1]).await;
    assert!(shared.find_user(ids[1]).await.expect("find").is_none());
    for (i, name) in [(0, "cat"), (2, "dot")] {
        let user = shared.find_user(ids[i]).await.expect("find").expect(name);
        assert_eq!(user.username, name);
        let found = shared
            .find_user_by_token(tokens[i], NOW)
            .await
            .expect("find");
        assert_eq!(found.map(|u| u.id), Some(ids[i]), "{name}");
        assert_eq!(stored_login(&shared, jobs[i]).await.user, user);
    }
    let written = ["t-cat", "t-dot"].map(str::to_owned);
    assert_eq!(
        writing_transactions(&scratch, "auth_tokens", "token_hash", &written).await,
        2,
        "written again one by one"
    );
}

/// A decider as the pipeline's, for [`log_in`]: the link refreshed, or a
/// new user with the id the facts set aside; what it decided is kept.
struct SignUpOrIn {
    user: NewUser,
    account: NewSocialAccount,
    token: String,
    job: Uuid,
    decided: Mutex<Option<JobResult>>,
}

/// What [`SignUpOrIn`] decided to write.
struct Plan {
    existing: Option<i64>,
    user: NewUser,
    user_id: UserId,
    account: NewSocialAccount,
    token: String,
    job: Uuid,
    result: JobResult,
}

impl PlannedLogin for Plan {
    fn write(&self) -> LoginWrite<'_> {
        let change = match self.existing {
            Some(account_id) => LoginChange::Existing { account_id },
            None => LoginChange::Create { user: &self.user },
        };
        let user_id = Some(self.user_id).filter(|id| id.0 != 0);
        login_write(
            change,
            user_id,
            &self.account,
            &self.token,
            self.job,
            &self.result,
        )
    }
}

impl DecideLogin for SignUpOrIn {
    fn decide(&self, found: &LoginFacts) -> Option<Box<dyn PlannedLogin>> {
        let (existing, user_id, result) = match &found.account {
            Some(link) => (
                Some(link.account_id),
                link.user.id,
                login_result(link.user.clone(), false),
            ),
            None => {
                // SQLite assigns the id when it writes the user.
                let id = found.new_user_id.unwrap_or(UserId(0));
                (None, id, login_result(as_created(&self.user, id), true))
            }
        };
        *self.decided.lock().expect("lock") = Some(result.clone());
        Some(Box::new(Plan {
            existing,
            user: self.user.clone(),
            user_id,
            account: self.account.clone(),
            token: self.token.clone(),
            job: self.job,
            result,
        }))
    }

    fn size_hint(&self) -> usize {
        1024
    }
}

/// One login as the pipeline makes it, through `Store::log_in`: the facts,
/// then the write they lead to (the link refreshed, or a new user).
async fn log_in(
    store: &SharedStore,
    user: &NewUser,
    account: &NewSocialAccount,
    token: &str,
    job: Uuid,
) -> (Written, JobResult) {
    let query = facts_query(account, user.email_normalized.as_deref(), None);
    let decider = Arc::new(SignUpOrIn {
        user: user.clone(),
        account: account.clone(),
        token: token.to_owned(),
        job,
        decided: Mutex::new(None),
    });
    let written = store
        .log_in(&query, decider.clone())
        .await
        .expect("log in")
        .expect("a write");
    let mut result = decider
        .decided
        .lock()
        .expect("lock")
        .take()
        .expect("decided");
    if let (Written::Done(id), JobResult::Login(login)) = (written, &mut result) {
        login.user.id = id;
    }
    (written, result)
}

/// A decider that writes nothing and keeps the facts it was shown.
#[derive(Default)]
struct Refuses {
    shown: Mutex<Vec<LoginFacts>>,
}

impl DecideLogin for Refuses {
    fn decide(&self, found: &LoginFacts) -> Option<Box<dyn PlannedLogin>> {
        self.shown.lock().expect("lock").push(found.clone());
        None
    }

    fn size_hint(&self) -> usize {
        0
    }
}

async fn a_login_decided_not_to_write_writes_nothing(store: SharedStore) {
    let account = new_account(UserId(0), "corp", "uid-ann");
    let ann = sign_up(
        &store,
        &new_user("ann"),
        &account,
        "t-ann-1",
        Uuid::new_v4(),
    )
    .await;
    let again = new_account(UserId(0), "corp", "uid-ann");
    let job = Uuid::new_v4();
    let refuses = Arc::new(Refuses::default());
    let query = facts_query(&again, ann.email.as_deref(), None);
    let outcome = store.log_in(&query, refuses.clone()).await.expect("log in");
    assert_eq!(outcome, None);
    let shown = refuses.shown.lock().expect("lock").clone();
    assert_eq!(shown.len(), 1, "asked once");
    assert_eq!(shown[0].account.as_ref().map(|l| &l.user), Some(&ann));
    assert!(store.find_job(job).await.expect("find").is_none());
    // And a login that writes goes through the same call.
    let (written, _) = log_in(&store, &new_user("ann"), &again, "t-ann-2", job).await;
    assert_eq!(written, Written::Done(ann.id));
    let found = store
        .find_user_by_token("t-ann-2", NOW)
        .await
        .expect("find");
    assert_eq!(found.map(|u| u.id), Some(ann.id));
}

/// Many logins at once through `Store::log_in`, which reads, decides and
/// writes them together: each caller gets its own user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_logins_are_grouped_and_each_gets_its_own_user() {
    let (pg, scratch) = pg_store().await;
    let shared: SharedStore = pg.clone();
    let mut known = Vec::new();
    for i in 0..20 {
        let name = format!("old{i}");
        let account = new_account(UserId(0), "corp", &format!("uid-{name}"));
        let token = format!("t-{name}-1");
        known.push(sign_up(&shared, &new_user(&name), &account, &token, Uuid::new_v4()).await);
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
                let token = format!("t-{name}-2");
                let job = Uuid::new_v4();
                let (written, result) =
                    log_in(&store, &new_user(&name), &account, &token, job).await;
                (name, token, job, written, result)
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for task in tasks {
        let (name, token, job, written, result) = task.await.expect("task");
        tokens.push(token.clone());
        let Written::Done(id) = written else {
            panic!("{name}: {written:?}")
        };
        let JobResult::Login(expected) = result else {
            panic!("a login result")
        };
        let user = shared.find_user(id).await.expect("find").expect("the user");
        if let Some(old) = name.strip_prefix("old") {
            let i: usize = old.parse().expect("index");
            assert!(!expected.is_new, "{name}");
            assert_eq!(user, known[i], "{name}");
        } else {
            assert!(expected.is_new, "{name}");
            assert_eq!(user.username, name);
        }
        assert_eq!(expected.user, user, "{name}");
        let found = shared.find_user_by_token(&token, NOW).await.expect("find");
        assert_eq!(found.map(|u| u.id), Some(id), "{name}");
        let stored = stored_login(&shared, job).await;
        assert_eq!(stored.user, user, "{name}");
        assert_eq!(stored.is_new, expected.is_new, "{name}");
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

/// What reading and writing logins in a session of its own did to
/// `tables`: the sequential scans, the index scans and the rows read.
async fn scans_of(
    scratch: &PgScratch,
    tables: &[&str],
    before: (i64, i64, i64),
) -> (i64, i64, i64) {
    let after = scans_when_alone(scratch, tables).await;
    (after.0 - before.0, after.1 - before.1, after.2 - before.2)
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
    let accounts: Vec<NewSocialAccount> = names
        .iter()
        .map(|n| new_account(UserId(0), "corp", &format!("uid-{n}")))
        .collect();
    let seed = open().await;
    seed.migrate().await.expect("migrate PostgreSQL");
    let users: Vec<NewUser> = names.iter().map(|n| new_user(n)).collect();
    let tokens: Vec<String> = names.iter().map(|n| format!("t-{n}")).collect();
    let jobs: Vec<Uuid> = names.iter().map(|_| Uuid::new_v4()).collect();
    for chunk in (0..200).collect::<Vec<_>>().chunks(8) {
        let queries: Vec<FactsQuery<'_>> = chunk
            .iter()
            .map(|&i| facts_query(&accounts[i], users[i].email_normalized.as_deref(), None))
            .collect();
        let ids: Vec<UserId> = seed
            .find_login_facts_together(&queries)
            .await
            .into_iter()
            .map(|f| f.expect("facts").new_user_id.expect("an id set aside"))
            .collect();
        let results: Vec<JobResult> = chunk
            .iter()
            .zip(&ids)
            .map(|(&i, &id)| login_result(as_created(&users[i], id), true))
            .collect();
        let batch: Vec<LoginWrite<'_>> = chunk
            .iter()
            .zip(&ids)
            .zip(&results)
            .map(|((&i, &id), result)| {
                let change = LoginChange::Create { user: &users[i] };
                login_write(change, Some(id), &accounts[i], &tokens[i], jobs[i], result)
            })
            .collect();
        for (answer, id) in seed
            .write_logins_together(&batch)
            .await
            .into_iter()
            .zip(ids)
        {
            assert_eq!(answer.expect("log in"), Written::Done(id));
        }
    }
    seed.close().await;
    let tables = ["users", "social_accounts", "auth_tokens", "jobs"];

    // Sessions of their own: their prepared statements reach their generic
    // plan (PostgreSQL's sixth run) while the tables are small, as in the
    // first minutes of a fresh deployment's signup burst. Returning logins
    // (new jobs, new tokens) with a new, referred user in every batch, so
    // every part of the statements runs. First the facts of them all…
    let chunks: Vec<Vec<usize>> = (0..100)
        .collect::<Vec<_>>()
        .chunks(8)
        .map(|chunk| {
            let mut logins = chunk.to_vec();
            logins.push(200 + chunk[0]);
            logins
        })
        .collect();
    let logins: i64 = chunks.iter().map(|c| c.len() as i64).sum();
    assert_eq!(logins, 100 + 13);
    let before = scans_when_alone(&scratch, &tables).await;
    let pg = open().await;
    let mut found: Vec<Vec<LoginFacts>> = Vec::new();
    for chunk in &chunks {
        let queries: Vec<FactsQuery<'_>> = chunk
            .iter()
            .map(|&i| {
                let code = (i >= 200).then_some("REF-young-0");
                facts_query(&accounts[i], users[i].email_normalized.as_deref(), code)
            })
            .collect();
        let facts: Vec<LoginFacts> = pg
            .find_login_facts_together(&queries)
            .await
            .into_iter()
            .map(|f| f.expect("facts"))
            .collect();
        for (f, &i) in facts.iter().zip(chunk) {
            if i < 200 {
                let link = f.account.as_ref().expect("a returning login");
                assert_eq!(link.user.username, names[i]);
            } else {
                assert!(f.account.is_none() && f.new_user_id.is_some(), "{f:?}");
                assert!(f.referrer.is_some(), "{f:?}");
            }
        }
        found.push(facts);
    }
    pg.close().await;
    let (seq, idx, read) = scans_of(&scratch, &tables, before).await;
    assert!(idx > 0, "no index scan was counted");
    assert_eq!(seq, 0, "sequential scans of {tables:?} while reading facts");
    // Each login looks up its identity and user, the owner of its email
    // and its referrer; a join that read a whole table (even through an
    // index) would read hundreds of rows a batch.
    assert!(
        read <= 4 * logins,
        "{read} rows read for the facts of {logins} logins"
    );

    // …then their writes.
    let again: Vec<(String, Uuid)> = (0..400)
        .map(|i| (format!("t2-{i}"), Uuid::new_v4()))
        .collect();
    let new_users: Vec<Vec<NewUser>> = chunks
        .iter()
        .zip(&found)
        .map(|(chunk, facts)| {
            chunk
                .iter()
                .zip(facts)
                .map(|(&i, f)| NewUser {
                    referred_by: f.referrer,
                    ..users[i].clone()
                })
                .collect()
        })
        .collect();
    let results: Vec<Vec<JobResult>> = found
        .iter()
        .zip(&new_users)
        .map(|(facts, users)| {
            facts
                .iter()
                .zip(users)
                .map(|(f, user)| match (&f.account, f.new_user_id) {
                    (Some(link), _) => login_result(link.user.clone(), false),
                    (None, id) => login_result(as_created(user, id.expect("an id")), true),
                })
                .collect()
        })
        .collect();
    let before = scans_when_alone(&scratch, &tables).await;
    let pg = open().await;
    for (c, chunk) in chunks.iter().enumerate() {
        let batch: Vec<LoginWrite<'_>> = chunk
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                let f = &found[c][k];
                let (change, user_id) = match &f.account {
                    Some(link) => (
                        LoginChange::Existing {
                            account_id: link.account_id,
                        },
                        Some(link.user.id),
                    ),
                    None => (
                        LoginChange::Create {
                            user: &new_users[c][k],
                        },
                        f.new_user_id,
                    ),
                };
                let (token, job) = &again[i];
                login_write(change, user_id, &accounts[i], token, *job, &results[c][k])
            })
            .collect();
        for (k, answer) in pg
            .write_logins_together(&batch)
            .await
            .into_iter()
            .enumerate()
        {
            let f = &found[c][k];
            let id = f
                .account
                .as_ref()
                .map(|link| link.user.id)
                .or(f.new_user_id)
                .expect("a user");
            assert_eq!(answer.expect("log in"), Written::Done(id), "{}", chunk[k]);
        }
    }
    pg.close().await;
    let (seq, idx, read) = scans_of(&scratch, &tables, before).await;
    assert!(idx > 0, "no index scan was counted");
    assert_eq!(
        seq, 0,
        "sequential scans of {tables:?} while writing logins"
    );
    // Each login refreshes its link or writes its user and link, then its
    // token and job: index probes of their own rows only.
    assert!(
        read <= 4 * logins,
        "{read} rows read for the writes of {logins} logins"
    );
    let check: SharedStore = Arc::new(open().await);
    let referrer = check
        .find_user_by_referral_code("REF-young-0")
        .await
        .expect("find")
        .expect("young-0");
    let referred = check
        .find_user_by_referral_code("REF-young-200")
        .await
        .expect("find")
        .expect("a new user");
    assert_eq!(referred.referred_by, Some(referrer.id));
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

/// The facts said active; the user was deactivated before the write: an
/// `Existing` or `Link` write comes back `Lost` with nothing written, so
/// the pipeline decides again.
async fn a_login_of_a_user_deactivated_meanwhile_writes_nothing(store: SharedStore) {
    let dan_account = new_account(UserId(0), "corp", "uid-dan");
    let dan = sign_up(&store, &new_user("dan"), &dan_account, "t1", Uuid::new_v4()).await;
    let link = linked(&store, &dan_account).await;
    deactivate(&store, dan.id).await;
    let result = login_result(dan.clone(), false);
    let fresh = fresh_account("uid-dan");
    let job = Uuid::new_v4();
    let existing = LoginChange::Existing {
        account_id: link.account_id,
    };
    let written = write(
        &store,
        &login_write(existing, Some(dan.id), &fresh, "t-existing", job, &result),
    )
    .await;
    assert_eq!(written, Written::Lost);
    assert_no_token_nor_job(&store, "t-existing", job).await;

    let other = new_account(UserId(0), "github", "uid-dan-gh");
    let job = Uuid::new_v4();
    let written = write(
        &store,
        &login_write(
            LoginChange::Link,
            Some(dan.id),
            &other,
            "t-link",
            job,
            &result,
        ),
    )
    .await;
    assert_eq!(written, Written::Lost);
    assert_no_token_nor_job(&store, "t-link", job).await;
    assert_eq!(
        store
            .find_social_accounts(dan.id)
            .await
            .expect("links")
            .len(),
        1,
        "no link to an inactive user"
    );
}

/// A finished job the api answered at once never hands out its result to
/// a poll; one it answered with 202 does, once.
async fn only_a_job_answered_with_202_is_delivered(store: SharedStore) {
    let (direct, accepted) = (Uuid::new_v4(), Uuid::new_v4());
    store
        .insert_pending_job(accepted, JobKind::Login, NOW)
        .await
        .expect("pending");
    for id in [direct, accepted] {
        let mut tx = store.begin().await.expect("begin");
        tx.upsert_job_result(
            id,
            JobKind::Login,
            JobStatus::Succeeded,
            &discovered(),
            1,
            NOW,
        )
        .await
        .expect("upsert");
        tx.commit().await.expect("commit");
    }
    assert!(
        !store
            .take_job_delivery(direct, NOW + 1)
            .await
            .expect("direct")
    );
    assert!(
        store
            .take_job_delivery(accepted, NOW + 1)
            .await
            .expect("accepted")
    );
    assert!(
        !store
            .take_job_delivery(accepted, NOW + 2)
            .await
            .expect("again")
    );
    // The api's pending row written after the worker's result counts too.
    let late = Uuid::new_v4();
    let mut tx = store.begin().await.expect("begin");
    tx.upsert_job_result(
        late,
        JobKind::Login,
        JobStatus::Succeeded,
        &discovered(),
        1,
        NOW,
    )
    .await
    .expect("upsert");
    tx.commit().await.expect("commit");
    store
        .insert_pending_job(late, JobKind::Login, NOW + 1)
        .await
        .expect("pending after the result");
    let job = store.find_job(late).await.expect("find").expect("job");
    assert_eq!(job.status, JobStatus::Succeeded, "the outcome is kept");
    assert!(store.take_job_delivery(late, NOW + 2).await.expect("late"));
}

// -------------------------- association: states, links, locks, the audit log

async fn an_association_state_names_its_user_and_a_logins_none(store: SharedStore) {
    let ann = create_user(&store, &new_user("ann")).await;
    for state in [
        NewOAuthState {
            user_id: Some(ann.id),
            ..new_state("state-ann", NOW + 600_000)
        },
        new_state("state-login", NOW + 600_000),
        // Expired, an association's all the same.
        NewOAuthState {
            user_id: Some(ann.id),
            ..new_state("state-old", NOW - 1)
        },
    ] {
        store
            .insert_oauth_state(&state)
            .await
            .expect("insert state");
    }
    let take = |hash: &'static str| {
        let store = store.clone();
        async move {
            store
                .take_oauth_state(&take_of(hash, NOW))
                .await
                .expect("take")
        }
    };
    let association = take("state-ann").await.expect("the association's state");
    assert_eq!(association.user_id, Some(ann.id));
    assert_eq!(association.provider, "corp");
    assert_eq!(association.expires_at, NOW + 600_000);
    let login = take("state-login").await.expect("the login's state");
    assert_eq!(login.user_id, None);
    let expired = take("state-old")
        .await
        .expect("expired states are returned");
    assert_eq!(expired.user_id, Some(ann.id));
    assert_eq!(expired.expires_at, NOW - 1);
    for hash in ["state-ann", "state-login", "state-old"] {
        assert!(take(hash).await.is_none(), "{hash} taken twice");
    }
}

/// PostgreSQL: how many transactions last wrote the login states (`None`
/// on SQLite).
async fn state_writers(raw: &Raw) -> Option<usize> {
    let Raw::Postgres(_) = raw else {
        return None;
    };
    let rows = raw
        .rows("SELECT CAST(count(DISTINCT xmin::text) AS TEXT) FROM oauth_states")
        .await;
    let count = rows[0][0].as_deref().expect("a count");
    Some(count.parse().expect("a number"))
}

/// States inserted at once, then taken at once (each twice): every other
/// one an association's, each of a user of its own. Each take gets its own
/// state, user included — on PostgreSQL, where the inserts and the takes
/// are made together, too.
async fn states_made_and_taken_at_once_each_name_their_own_user(store: SharedStore, raw: Raw) {
    const STATES: usize = 40;
    let mut owners: Vec<Option<UserId>> = Vec::with_capacity(STATES);
    for i in 0..STATES {
        let owner = if i % 2 == 1 {
            Some(create_user(&store, &new_user(&format!("user{i}"))).await.id)
        } else {
            None
        };
        owners.push(owner);
    }
    let hashes: Vec<String> = (0..STATES).map(|i| format!("state-{i}")).collect();
    let barrier = Arc::new(Barrier::new(STATES));
    let inserts: Vec<_> = hashes
        .iter()
        .zip(&owners)
        .enumerate()
        .map(|(i, (hash, &user_id))| {
            let (store, barrier) = (store.clone(), barrier.clone());
            let state = NewOAuthState {
                nonce: Some(format!("nonce-{i}")),
                user_id,
                ..new_state(hash, NOW + 600_000)
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
    if let Some(writers) = state_writers(&raw).await {
        assert!(
            writers < STATES,
            "{writers} transactions for {STATES} states"
        );
    }

    let barrier = Arc::new(Barrier::new(2 * STATES));
    let takes: Vec<_> = (0..2 * STATES)
        .map(|n| {
            let i = n % STATES;
            let hash = hashes[i].clone();
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let taken = store
                    .take_oauth_state(&take_of(&hash, NOW))
                    .await
                    .expect("take");
                (i, taken)
            })
        })
        .collect();
    let mut by_state: Vec<Vec<store::OAuthState>> = vec![Vec::new(); STATES];
    for take in takes {
        let (i, taken) = take.await.expect("task");
        by_state[i].extend(taken);
    }
    for (i, taken) in by_state.iter().enumerate() {
        assert_eq!(taken.len(), 1, "state-{i} taken {} times", taken.len());
        assert_eq!(
            taken[0].nonce.as_deref(),
            Some(format!("nonce-{i}").as_str())
        );
        assert_eq!(taken[0].user_id, owners[i], "state-{i}");
    }
    if let Some(writers) = state_writers(&raw).await {
        assert!(
            writers < STATES,
            "{writers} transactions took {STATES} states"
        );
    }
}

/// A request token between the two steps of an OAuth 1.0a login, or of an
/// association for `user_id`.
fn request_token(oauth_token: &str, user_id: Option<UserId>) -> NewOAuth1RequestToken {
    NewOAuth1RequestToken {
        oauth_token: oauth_token.to_owned(),
        provider: "twitter".to_owned(),
        token_secret_enc: format!("sealed-{oauth_token}"),
        token_key_id: "k1".to_owned(),
        redirect_uri: "http://localhost:3000/cb".to_owned(),
        created_at: NOW - 1_000,
        expires_at: NOW + 600_000,
        user_id,
    }
}

async fn an_oauth1_request_token_names_its_user_and_a_logins_none(store: SharedStore) {
    let ann = create_user(&store, &new_user("ann")).await;
    for (token, user_id) in [("rt-ann", Some(ann.id)), ("rt-login", None)] {
        store
            .insert_oauth1_request_token(&request_token(token, user_id))
            .await
            .expect("insert request token");
    }
    for (token, user_id) in [("rt-ann", Some(ann.id)), ("rt-login", None)] {
        let taken = store
            .take_oauth1_request_token(token, NOW)
            .await
            .expect("take")
            .unwrap_or_else(|| panic!("{token} is there"));
        assert_eq!(taken.user_id, user_id, "{token}");
        assert_eq!(taken.provider, "twitter");
        assert_eq!(taken.token_secret_enc, format!("sealed-{token}"));
        assert_eq!(taken.token_key_id, "k1");
        assert_eq!(taken.redirect_uri, "http://localhost:3000/cb");
        assert_eq!(taken.expires_at, NOW + 600_000);
        assert!(
            store
                .take_oauth1_request_token(token, NOW)
                .await
                .expect("take")
                .is_none(),
            "{token} taken twice"
        );
    }
}

/// Each link of `user`: provider, creation and last login.
async fn login_times(store: &SharedStore, user: UserId) -> Vec<(String, i64, i64)> {
    store
        .find_social_accounts(user)
        .await
        .expect("links")
        .into_iter()
        .map(|l| (l.provider, l.created_at, l.last_login_at))
        .collect()
}

fn times(links: &[(&str, i64, i64)]) -> Vec<(String, i64, i64)> {
    links
        .iter()
        .map(|&(provider, created, last)| (provider.to_owned(), created, last))
        .collect()
}

/// A link is last used when it is made (its `created_at`, whatever the
/// login's `now`), then at each login through it.
async fn a_links_last_login_is_its_creation_then_its_latest_login(store: SharedStore) {
    let corp = NewSocialAccount {
        created_at: NOW - 30,
        ..new_account(UserId(0), "corp", "uid-ann")
    };
    let ann = sign_up(&store, &new_user("ann"), &corp, "t1", Uuid::new_v4()).await;
    assert_eq!(
        login_times(&store, ann.id).await,
        times(&[("corp", NOW - 30, NOW - 30)])
    );

    let link = linked(&store, &corp).await;
    let result = login_result(ann.clone(), false);
    let existing = LoginChange::Existing {
        account_id: link.account_id,
    };
    let fresh = fresh_account("uid-ann");
    let written = write(
        &store,
        &LoginWrite {
            now: NOW + 40,
            ..login_write(
                existing,
                Some(ann.id),
                &fresh,
                "t2",
                Uuid::new_v4(),
                &result,
            )
        },
    )
    .await;
    assert_eq!(written, Written::Done(ann.id));

    let github = NewSocialAccount {
        created_at: NOW - 20,
        ..new_account(UserId(0), "github", "gh-ann")
    };
    let written = write(
        &store,
        &LoginWrite {
            now: NOW + 50,
            ..login_write(
                LoginChange::Link,
                Some(ann.id),
                &github,
                "t3",
                Uuid::new_v4(),
                &result,
            )
        },
    )
    .await;
    assert_eq!(written, Written::Done(ann.id));

    let mut tx = store.begin().await.expect("begin");
    let made = tx
        .insert_social_account(&NewSocialAccount {
            created_at: NOW - 10,
            ..new_account(ann.id, "gitlab", "gl-ann")
        })
        .await
        .expect("link");
    tx.commit().await.expect("commit");
    assert_eq!((made.created_at, made.last_login_at), (NOW - 10, NOW - 10));

    // A login that is lost (the link is not bob's) moves nothing.
    let bob = sign_up(
        &store,
        &new_user("bob"),
        &new_account(UserId(0), "corp", "uid-bob"),
        "t4",
        Uuid::new_v4(),
    )
    .await;
    let written = write(
        &store,
        &LoginWrite {
            now: NOW + 60,
            ..login_write(
                existing,
                Some(bob.id),
                &fresh,
                "t5",
                Uuid::new_v4(),
                &result,
            )
        },
    )
    .await;
    assert_eq!(written, Written::Lost);

    assert_eq!(
        login_times(&store, ann.id).await,
        times(&[
            ("corp", NOW - 30, NOW + 40),
            ("github", NOW - 20, NOW - 20),
            ("gitlab", NOW - 10, NOW - 10),
        ])
    );
}

/// Logins through `Store::log_in`, made at once (on PostgreSQL, read and
/// written together): a returning login's link is last used at the
/// login's `now`, a new link when it was made.
async fn logins_through_log_in_move_their_links_last_login(store: SharedStore) {
    let account = |name: &str| NewSocialAccount {
        created_at: NOW - 100,
        ..new_account(UserId(0), "corp", &format!("uid-{name}"))
    };
    let mut known = Vec::new();
    for i in 0..4 {
        let name = format!("old{i}");
        let token = format!("t-{name}-1");
        known.push(
            sign_up(
                &store,
                &new_user(&name),
                &account(&name),
                &token,
                Uuid::new_v4(),
            )
            .await,
        );
    }
    let barrier = Arc::new(Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            // Every other one a returning user.
            let name = if i % 2 == 0 {
                format!("old{}", i / 2)
            } else {
                format!("new{i}")
            };
            let account = account(&name);
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let token = format!("t-{name}-2");
                let (written, _) =
                    log_in(&store, &new_user(&name), &account, &token, Uuid::new_v4()).await;
                (name, written)
            })
        })
        .collect();
    for task in tasks {
        let (name, written) = task.await.expect("task");
        let Written::Done(id) = written else {
            panic!("{name}: {written:?}")
        };
        let last_login = match name.strip_prefix("old") {
            Some(i) => {
                let i: usize = i.parse().expect("index");
                assert_eq!(id, known[i].id, "{name}");
                NOW
            }
            None => NOW - 100,
        };
        assert_eq!(
            login_times(&store, id).await,
            times(&[("corp", NOW - 100, last_login)]),
            "{name}"
        );
    }
}

async fn only_an_active_user_is_locked(store: SharedStore) {
    let ann = create_user(&store, &new_user("ann")).await;
    let bob = create_user(&store, &new_user("bob")).await;
    deactivate(&store, bob.id).await;
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.lock_active_user(ann.id).await.expect("lock ann"));
    assert!(
        !tx.lock_active_user(bob.id).await.expect("lock bob"),
        "inactive"
    );
    assert!(
        !tx.lock_active_user(UserId(i64::MAX))
            .await
            .expect("lock nobody"),
        "unknown"
    );
    // Its holder locks it again and changes its links.
    assert!(tx.lock_active_user(ann.id).await.expect("lock ann again"));
    let link = tx
        .insert_social_account(&new_account(ann.id, "corp", "42"))
        .await
        .expect("a link under the lock");
    tx.commit().await.expect("commit");
    assert_eq!(
        store.find_social_accounts(ann.id).await.expect("links"),
        [link]
    );

    // Released by the commit, and by a rollback.
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.lock_active_user(ann.id).await.expect("lock"));
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.lock_active_user(ann.id).await.expect("lock"));
    tx.commit().await.expect("commit");
}

/// Sealed tokens' fields: key id, access, refresh, secret, expiry.
type TokenFields<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<i64>,
);

fn token_fields(tokens: &SealedTokens) -> TokenFields<'_> {
    (
        tokens.key_id.as_deref(),
        tokens.access_token.as_deref(),
        tokens.refresh_token.as_deref(),
        tokens.token_secret.as_deref(),
        tokens.expires_at,
    )
}

async fn stored_accounts_carry_their_sealed_tokens_oldest_first(store: SharedStore) {
    let ann = create_user(&store, &new_user("ann")).await;
    let bob = create_user(&store, &new_user("bob")).await;
    let corp = new_account(ann.id, "corp", "uid-ann");
    let twitter = NewSocialAccount {
        tokens: SealedTokens {
            key_id: Some("k2".to_owned()),
            access_token: Some("sealed-access-2".to_owned()),
            refresh_token: None,
            token_secret: Some("sealed-secret-2".to_owned()),
            expires_at: None,
        },
        created_at: NOW + 1,
        ..new_account(ann.id, "twitter", "tw-ann")
    };
    let bare = NewSocialAccount {
        tokens: SealedTokens::default(),
        created_at: NOW + 2,
        ..new_account(ann.id, "github", "gh-ann")
    };
    let written = [&corp, &twitter, &bare];
    let mut tx = store.begin().await.expect("begin");
    let mut made = Vec::new();
    for account in written {
        made.push(tx.insert_social_account(account).await.expect("link"));
    }
    tx.insert_social_account(&new_account(bob.id, "corp", "uid-bob"))
        .await
        .expect("bob's link");
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    let stored = tx.find_stored_accounts(ann.id).await.expect("stored");
    let nobody = tx
        .find_stored_accounts(UserId(i64::MAX))
        .await
        .expect("stored");
    tx.commit().await.expect("commit");
    assert!(nobody.is_empty());
    let accounts: Vec<SocialAccount> = stored.iter().map(|s| s.account.clone()).collect();
    assert_eq!(accounts, made);
    assert_eq!(
        accounts,
        store.find_social_accounts(ann.id).await.expect("links")
    );
    for (stored, account) in stored.iter().zip(written) {
        assert_eq!(
            token_fields(&stored.tokens),
            token_fields(&account.tokens),
            "{}",
            account.provider
        );
    }
}

async fn a_link_is_deleted_once_and_by_its_own_user_only(store: SharedStore) {
    let ann = create_user(&store, &new_user("ann")).await;
    let bob = create_user(&store, &new_user("bob")).await;
    let mut tx = store.begin().await.expect("begin");
    let corp = tx
        .insert_social_account(&new_account(ann.id, "corp", "uid-ann"))
        .await
        .expect("link");
    let github = tx
        .insert_social_account(&new_account(ann.id, "github", "gh-ann"))
        .await
        .expect("link");
    let bobs = tx
        .insert_social_account(&new_account(bob.id, "corp", "uid-bob"))
        .await
        .expect("link");
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    assert!(
        !tx.delete_social_account(corp.id, bob.id)
            .await
            .expect("delete"),
        "not bob's"
    );
    assert!(
        !tx.delete_social_account(i64::MAX, ann.id)
            .await
            .expect("delete"),
        "no such link"
    );
    assert!(
        tx.delete_social_account(corp.id, ann.id)
            .await
            .expect("delete")
    );
    assert!(
        !tx.delete_social_account(corp.id, ann.id)
            .await
            .expect("delete"),
        "deleted already"
    );
    let left = tx.find_stored_accounts(ann.id).await.expect("stored");
    assert_eq!(
        left.iter().map(|s| s.account.id).collect::<Vec<_>>(),
        [github.id]
    );
    tx.commit().await.expect("commit");

    assert_eq!(
        store.find_social_accounts(ann.id).await.expect("links"),
        [github]
    );
    assert_eq!(
        store.find_social_accounts(bob.id).await.expect("links"),
        [bobs]
    );
    let mut tx = store.begin().await.expect("begin");
    assert!(
        !tx.delete_social_account(corp.id, ann.id)
            .await
            .expect("delete"),
        "deleted for good"
    );
    // The identity is free to link again.
    assert_eq!(
        tx.find_user_by_social("corp", "uid-ann")
            .await
            .expect("find"),
        None
    );
    tx.insert_social_account(&new_account(bob.id, "corp", "uid-ann"))
        .await
        .expect("link again");
    tx.commit().await.expect("commit");
}

async fn a_link_deleted_in_a_dropped_transaction_stays(store: SharedStore) {
    let ann = create_user(&store, &new_user("ann")).await;
    let mut tx = store.begin().await.expect("begin");
    let link = tx
        .insert_social_account(&new_account(ann.id, "corp", "uid-ann"))
        .await
        .expect("link");
    tx.commit().await.expect("commit");
    {
        let mut tx = store.begin().await.expect("begin");
        assert!(
            tx.delete_social_account(link.id, ann.id)
                .await
                .expect("delete")
        );
    }
    assert_eq!(
        store.find_social_accounts(ann.id).await.expect("links"),
        std::slice::from_ref(&link)
    );
    let mut tx = store.begin().await.expect("begin");
    assert!(
        tx.delete_social_account(link.id, ann.id)
            .await
            .expect("delete"),
        "still there to delete"
    );
    tx.commit().await.expect("commit");
    assert!(
        store
            .find_social_accounts(ann.id)
            .await
            .expect("links")
            .is_empty()
    );
}

/// The `i`th audit event of the listing tests, of `user` at `provider`.
/// Times are out of order: the listing goes by id.
fn audit_event(i: usize, user: Option<UserId>, provider: Option<&str>) -> NewAuditEvent {
    NewAuditEvent {
        kind: if i.is_multiple_of(2) {
            "link"
        } else {
            "disconnect"
        },
        user_id: user,
        provider: provider.map(str::to_owned),
        outcome: if i.is_multiple_of(3) {
            "refused"
        } else {
            "done"
        },
        detail: format!(r#"{{"n":{i}}}"#),
        request_id: (!i.is_multiple_of(4)).then(|| format!("req-{i}")),
        at: NOW - (i as i64 % 5) * 1_000,
    }
}

/// `event` as listed with `id`.
fn listed(event: &NewAuditEvent, id: i64) -> AuditEvent {
    AuditEvent {
        id,
        at: event.at,
        kind: event.kind.to_owned(),
        user_id: event.user_id,
        provider: event.provider.clone(),
        outcome: event.outcome.to_owned(),
        detail: event.detail.clone(),
        request_id: event.request_id.clone(),
    }
}

/// Twelve events of ann, bob and nobody at `corp`, `github` and no
/// provider, a few a transaction; every event as listed, newest first.
async fn insert_audit_events(store: &SharedStore, ann: UserId, bob: UserId) -> Vec<AuditEvent> {
    let owners = [
        (Some(ann), Some("corp")),
        (Some(bob), Some("corp")),
        (Some(ann), Some("github")),
        (None, Some("corp")),
        (Some(ann), Some("corp")),
        (Some(bob), Some("github")),
        (Some(ann), None),
        (Some(bob), Some("corp")),
        (Some(ann), Some("github")),
        (None, None),
        (Some(ann), Some("corp")),
        (Some(bob), Some("corp")),
    ];
    let events: Vec<NewAuditEvent> = owners
        .iter()
        .enumerate()
        .map(|(i, &(user, provider))| audit_event(i, user, provider))
        .collect();
    for chunk in events.chunks(3) {
        let mut tx = store.begin().await.expect("begin");
        for event in chunk {
            tx.insert_audit_event(event).await.expect("insert event");
        }
        tx.commit().await.expect("commit");
    }
    let all = store
        .find_audit_events(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(all.len(), events.len(), "{all:?}");
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let expected: Vec<AuditEvent> = all
        .iter()
        .zip(events.iter().rev())
        .map(|(found, event)| listed(event, found.id))
        .collect();
    assert_eq!(all, expected, "as given, newest first");
    all
}

async fn audit_events_are_listed_newest_first_by_user_and_provider(store: SharedStore) {
    let ann = create_user(&store, &new_user("ann")).await;
    let bob = create_user(&store, &new_user("bob")).await;
    let all = insert_audit_events(&store, ann.id, bob.id).await;
    let of = |user: Option<UserId>, provider: Option<&str>| -> Vec<AuditEvent> {
        all.iter()
            .filter(|e| user.is_none_or(|u| e.user_id == Some(u)))
            .filter(|e| provider.is_none_or(|p| e.provider.as_deref() == Some(p)))
            .cloned()
            .collect()
    };
    for (user, provider, count) in [
        (Some(ann.id), None, 6),
        (Some(bob.id), None, 4),
        (None, Some("corp"), 7),
        (None, Some("github"), 3),
        (Some(ann.id), Some("corp"), 3),
        (Some(bob.id), Some("github"), 1),
        (Some(bob.id), Some("gitlab"), 0),
        (Some(UserId(i64::MAX)), None, 0),
    ] {
        let found = store
            .find_audit_events(&AuditQuery {
                user_id: user,
                provider,
                before: None,
                limit: 100,
            })
            .await
            .expect("list");
        assert_eq!(found.len(), count, "{user:?} at {provider:?}");
        assert_eq!(found, of(user, provider), "{user:?} at {provider:?}");
    }
    // At most `limit`, the newest.
    for limit in [1, 2, 5] {
        let found = store
            .find_audit_events(&AuditQuery {
                limit,
                ..AuditQuery::default()
            })
            .await
            .expect("list");
        assert_eq!(found, all[..limit as usize], "limit {limit}");
        let anns = store
            .find_audit_events(&AuditQuery {
                user_id: Some(ann.id),
                provider: Some("corp"),
                limit,
                ..AuditQuery::default()
            })
            .await
            .expect("list");
        let expected = of(Some(ann.id), Some("corp"));
        assert_eq!(anns, expected[..expected.len().min(limit as usize)]);
    }
}

async fn audit_events_are_paged_by_their_cursor_without_gaps(store: SharedStore) {
    let ann = create_user(&store, &new_user("ann")).await;
    let bob = create_user(&store, &new_user("bob")).await;
    let all = insert_audit_events(&store, ann.id, bob.id).await;
    for (user, provider) in [
        (None, None),
        (Some(ann.id), None),
        (None, Some("corp")),
        (Some(ann.id), Some("corp")),
    ] {
        let expected: Vec<&AuditEvent> = all
            .iter()
            .filter(|e| user.is_none_or(|u| e.user_id == Some(u)))
            .filter(|e| provider.is_none_or(|p| e.provider.as_deref() == Some(p)))
            .collect();
        for limit in [1_u32, 2, 3, 5] {
            let mut paged: Vec<AuditEvent> = Vec::new();
            let mut before = None;
            loop {
                let page = store
                    .find_audit_events(&AuditQuery {
                        user_id: user,
                        provider,
                        before,
                        limit,
                    })
                    .await
                    .expect("list");
                assert!(page.len() <= limit as usize);
                let Some(last) = page.last() else {
                    break;
                };
                before = Some(last.id);
                let full = page.len() == limit as usize;
                paged.extend(page);
                if !full {
                    break;
                }
            }
            assert_eq!(
                paged.iter().collect::<Vec<_>>(),
                expected,
                "{user:?} at {provider:?}, {limit} a page"
            );
        }
    }
    // A cursor is any id: the events older than it.
    let cursor = all[3].id;
    let older = store
        .find_audit_events(&AuditQuery {
            before: Some(cursor),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(older, all[4..]);
    let oldest = all.last().expect("events").id;
    let none = store
        .find_audit_events(&AuditQuery {
            before: Some(oldest),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .expect("list");
    assert!(none.is_empty(), "{none:?}");
}

// ------------------------------- refresh: stored tokens and refresh leases

/// A link of `account`'s identity, made as it is (its own user id).
async fn create_link(store: &SharedStore, account: &NewSocialAccount) -> SocialAccount {
    let mut tx = store.begin().await.expect("begin");
    let link = tx.insert_social_account(account).await.expect("link");
    tx.commit().await.expect("commit");
    link
}

/// The link `account_id` with its sealed tokens, as stored now.
async fn stored_account(store: &SharedStore, account_id: i64) -> StoredAccount {
    store
        .find_stored_account(account_id)
        .await
        .expect("find")
        .unwrap_or_else(|| panic!("link {account_id} is there"))
}

/// A stored link's account and sealed tokens, to compare.
fn stored_fields(stored: &StoredAccount) -> (SocialAccount, TokenFields<'_>) {
    (stored.account.clone(), token_fields(&stored.tokens))
}

/// Marks the link as needing its user again, as a refresher does when the
/// provider refuses its grant: a lease of its own, given back with
/// `needs_reauth`.
async fn mark_needs_reauth(store: &SharedStore, account_id: i64) {
    let owner = Uuid::new_v4();
    let leased = store
        .take_refresh_lease(account_id, owner, NOW, NOW + 1_000)
        .await
        .expect("take");
    assert!(leased.is_some(), "nobody holds the lease of {account_id}");
    assert!(
        store
            .end_refresh(account_id, owner, true)
            .await
            .expect("end")
    );
    assert!(stored_account(store, account_id).await.account.needs_reauth);
}

/// New tokens from a provider's refresh: another key, access and refresh
/// token, and expiry.
fn refreshed_tokens() -> SealedTokens {
    SealedTokens {
        key_id: Some("k3".to_owned()),
        access_token: Some("sealed-access-3".to_owned()),
        refresh_token: Some("sealed-refresh-3".to_owned()),
        token_secret: Some("sealed-secret-3".to_owned()),
        expires_at: Some(NOW + 9_000_000),
    }
}

async fn a_stored_account_carries_every_sealed_token_field(store: SharedStore) {
    let ann = create_user(&store, &new_user("ann")).await;
    let full = NewSocialAccount {
        tokens: SealedTokens {
            key_id: Some("k2".to_owned()),
            access_token: Some("sealed-access-2".to_owned()),
            refresh_token: Some("sealed-refresh-2".to_owned()),
            token_secret: Some("sealed-secret-2".to_owned()),
            expires_at: Some(NOW + 7_200_000),
        },
        ..new_account(ann.id, "corp", "uid-ann")
    };
    let bare = NewSocialAccount {
        tokens: SealedTokens::default(),
        ..new_account(ann.id, "github", "gh-ann")
    };
    for account in [&full, &bare] {
        let link = create_link(&store, account).await;
        let stored = stored_account(&store, link.id).await;
        assert_eq!(stored.account, link, "{}", account.provider);
        assert_eq!(
            token_fields(&stored.tokens),
            token_fields(&account.tokens),
            "{}",
            account.provider
        );
    }
    assert!(
        store
            .find_stored_account(i64::MAX)
            .await
            .expect("find")
            .is_none(),
        "no such link"
    );
}

async fn a_refresh_lease_is_held_by_one_owner_until_it_expires(store: SharedStore) {
    let ann = create_user(&store, &new_user("ann")).await;
    let link = create_link(&store, &new_account(ann.id, "corp", "uid-ann")).await;
    let before = stored_account(&store, link.id).await;
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let take = |owner: Uuid, now: i64, until: i64| {
        let store = store.clone();
        async move {
            store
                .take_refresh_lease(link.id, owner, now, until)
                .await
                .expect("take")
        }
    };

    // The link as it is, tokens included, to its first taker.
    let leased = take(first, NOW, NOW + 1_000)
        .await
        .expect("nobody holds it");
    assert_eq!(stored_fields(&leased), stored_fields(&before));
    // Another owner gets nothing while the lease runs.
    for now in [NOW, NOW + 1, NOW + 999] {
        assert!(
            take(second, now, now + 1_000).await.is_none(),
            "held at {now}"
        );
    }
    // Taken again once it expired: at its end, and later.
    let retaken = take(second, NOW + 1_000, NOW + 2_000)
        .await
        .expect("expired at its end");
    assert_eq!(stored_fields(&retaken), stored_fields(&before));
    assert!(take(first, NOW + 1_999, NOW + 3_000).await.is_none());
    assert!(take(first, NOW + 5_000, NOW + 6_000).await.is_some());
    // The first owner took it back: the second holds nothing any more.
    assert!(
        !store
            .finish_refresh(link.id, second, &refreshed_tokens(), NOW + 5_001)
            .await
            .expect("finish")
    );
    assert!(
        !store
            .end_refresh(link.id, second, false)
            .await
            .expect("end")
    );
    assert!(store.end_refresh(link.id, first, false).await.expect("end"));
    // Taking a lease writes nothing of the link.
    assert_eq!(
        stored_fields(&stored_account(&store, link.id).await),
        stored_fields(&before)
    );
    assert!(
        store
            .take_refresh_lease(i64::MAX, first, NOW, NOW + 1_000)
            .await
            .expect("take")
            .is_none(),
        "no such link"
    );
}

async fn a_finished_refresh_writes_its_tokens_and_gives_the_lease_back(
    store: SharedStore,
    raw: Raw,
) {
    let ann = create_user(&store, &new_user("ann")).await;
    let link = create_link(&store, &new_account(ann.id, "corp", "uid-ann")).await;
    mark_needs_reauth(&store, link.id).await;
    let before = stored_account(&store, link.id).await;
    let lease = |id: i64| {
        let raw = raw.clone();
        async move {
            raw.rows(&format!(
                "SELECT CAST(updated_at AS TEXT), refresh_lease_owner, \
                        CAST(refresh_lease_until AS TEXT) \
                 FROM social_accounts WHERE id = {id}"
            ))
            .await
        }
    };
    let (holder, other) = (Uuid::new_v4(), Uuid::new_v4());
    let fresh = refreshed_tokens();

    // Nobody holds the lease: nothing is written.
    assert!(
        !store
            .finish_refresh(link.id, holder, &fresh, NOW + 1)
            .await
            .expect("finish")
    );
    store
        .take_refresh_lease(link.id, holder, NOW + 2, NOW + 60_000)
        .await
        .expect("take")
        .expect("nobody holds it");
    // Another owner's tokens are not written either.
    assert!(
        !store
            .finish_refresh(link.id, other, &fresh, NOW + 3)
            .await
            .expect("finish")
    );
    let unchanged = stored_account(&store, link.id).await;
    assert_eq!(stored_fields(&unchanged), stored_fields(&before));
    assert_eq!(
        lease(link.id).await,
        [vec![
            Some(NOW.to_string()),
            Some(holder.to_string()),
            Some((NOW + 60_000).to_string())
        ]]
    );

    assert!(
        store
            .finish_refresh(link.id, holder, &fresh, NOW + 5)
            .await
            .expect("finish")
    );
    let after = stored_account(&store, link.id).await;
    assert_eq!(token_fields(&after.tokens), token_fields(&fresh));
    assert_eq!(
        after.account,
        SocialAccount {
            expires_at: fresh.expires_at,
            needs_reauth: false,
            ..before.account.clone()
        },
        "usable again; the last login stays"
    );
    assert_eq!(
        lease(link.id).await,
        [vec![Some((NOW + 5).to_string()), None, None]],
        "updated, the lease given back"
    );
    // Given back: another owner takes it at once, long before it would
    // have run out; the first holds it no more.
    let leased = store
        .take_refresh_lease(link.id, other, NOW + 6, NOW + 60_000)
        .await
        .expect("take")
        .expect("given back");
    assert_eq!(token_fields(&leased.tokens), token_fields(&fresh));
    assert!(
        !store
            .finish_refresh(link.id, holder, &refreshed_tokens(), NOW + 7)
            .await
            .expect("finish")
    );
    assert!(
        store
            .finish_refresh(link.id, other, &fresh, NOW + 8)
            .await
            .expect("finish")
    );
    assert!(
        !store
            .finish_refresh(i64::MAX, other, &fresh, NOW + 9)
            .await
            .expect("finish"),
        "no such link"
    );
}

async fn an_ended_refresh_keeps_the_tokens_and_marks_reauth_only_when_asked(store: SharedStore) {
    let ann = create_user(&store, &new_user("ann")).await;
    let link = create_link(&store, &new_account(ann.id, "corp", "uid-ann")).await;
    let before = stored_account(&store, link.id).await;
    assert!(!before.account.needs_reauth);
    let (holder, other) = (Uuid::new_v4(), Uuid::new_v4());
    let take = |owner: Uuid, now: i64| {
        let store = store.clone();
        async move {
            store
                .take_refresh_lease(link.id, owner, now, now + 60_000)
                .await
                .expect("take")
        }
    };
    let end = |owner: Uuid, needs_reauth: bool| {
        let store = store.clone();
        async move {
            store
                .end_refresh(link.id, owner, needs_reauth)
                .await
                .expect("end")
        }
    };
    let needs_reauth = || {
        let store = store.clone();
        async move { stored_account(&store, link.id).await.account.needs_reauth }
    };

    // Nobody holds the lease.
    assert!(!end(holder, true).await);
    assert!(!needs_reauth().await);

    // Given back without the flag: the link as it was, the lease free.
    take(holder, NOW).await.expect("nobody holds it");
    assert!(!end(other, true).await, "another owner's");
    assert!(!needs_reauth().await, "another owner marks nothing");
    assert!(end(holder, false).await);
    assert_eq!(
        stored_fields(&stored_account(&store, link.id).await),
        stored_fields(&before)
    );
    assert!(!end(holder, false).await, "given back already");

    // Given back with the flag: the link needs its user, tokens kept.
    take(other, NOW + 1).await.expect("given back at once");
    assert!(end(other, true).await);
    let marked = stored_account(&store, link.id).await;
    assert_eq!(token_fields(&marked.tokens), token_fields(&before.tokens));
    assert_eq!(
        marked.account,
        SocialAccount {
            needs_reauth: true,
            ..before.account.clone()
        }
    );

    // Given back without the flag, from a link that needs its user: it
    // still does.
    take(holder, NOW + 2).await.expect("given back at once");
    assert!(end(holder, false).await);
    assert_eq!(
        stored_fields(&stored_account(&store, link.id).await),
        stored_fields(&marked)
    );
    take(other, NOW + 3).await.expect("given back at once");
    assert!(end(other, true).await);
    assert!(needs_reauth().await);
    assert!(
        !store.end_refresh(i64::MAX, other, true).await.expect("end"),
        "no such link"
    );
}

async fn concurrent_refresh_leases_of_one_link_go_to_one_owner(store: SharedStore) {
    const TAKERS: usize = 20;
    let ann = create_user(&store, &new_user("ann")).await;
    let link = create_link(&store, &new_account(ann.id, "corp", "uid-ann")).await;
    let barrier = Arc::new(Barrier::new(TAKERS));
    let tasks: Vec<_> = (0..TAKERS)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                let owner = Uuid::new_v4();
                barrier.wait().await;
                let leased = store
                    .take_refresh_lease(link.id, owner, NOW, NOW + 60_000)
                    .await
                    .expect("take");
                (owner, leased)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            (owner, Some(leased)) => {
                assert_eq!(leased.account, link);
                winners.push(owner);
            }
            (owner, None) => losers.push(owner),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    // The lease is the winner's alone.
    for owner in losers {
        assert!(
            !store.end_refresh(link.id, owner, true).await.expect("end"),
            "{owner}"
        );
    }
    assert!(
        store
            .end_refresh(link.id, winners[0], false)
            .await
            .expect("end")
    );
    assert!(!stored_account(&store, link.id).await.account.needs_reauth);
}

/// A returning login without tokens (the provider gave none) keeps the
/// link's stored tokens and whether it needs its user; one with tokens
/// replaces them and makes it usable again. Either is a login through it.
async fn a_login_keeps_the_stored_tokens_unless_it_brings_its_own(store: SharedStore) {
    let mut users = Vec::new();
    let mut links = Vec::new();
    for name in ["ann", "bob"] {
        let account = new_account(UserId(0), "corp", &format!("uid-{name}"));
        let token = format!("t-{name}-1");
        users.push(sign_up(&store, &new_user(name), &account, &token, Uuid::new_v4()).await);
        links.push(linked(&store, &account).await.account_id);
    }
    // Ann's link needs its user; bob's does not.
    mark_needs_reauth(&store, links[0]).await;
    let before = [
        stored_account(&store, links[0]).await,
        stored_account(&store, links[1]).await,
    ];
    let login = |i: usize, account: NewSocialAccount, token: &'static str, now: i64| {
        let store = store.clone();
        let user = users[i].clone();
        let account_id = links[i];
        async move {
            let result = login_result(user.clone(), false);
            let change = LoginChange::Existing { account_id };
            write(
                &store,
                &LoginWrite {
                    now,
                    ..login_write(
                        change,
                        Some(user.id),
                        &account,
                        token,
                        Uuid::new_v4(),
                        &result,
                    )
                },
            )
            .await
        }
    };
    let bare = |uid: &str| NewSocialAccount {
        tokens: SealedTokens::default(),
        ..new_account(UserId(0), "corp", uid)
    };

    assert_eq!(
        login(0, bare("uid-ann"), "t-ann-2", NOW + 10).await,
        Written::Done(users[0].id)
    );
    assert_eq!(
        login(1, bare("uid-bob"), "t-bob-2", NOW + 10).await,
        Written::Done(users[1].id)
    );
    for (link, before) in links.iter().zip(&before) {
        let after = stored_account(&store, *link).await;
        assert_eq!(token_fields(&after.tokens), token_fields(&before.tokens));
        assert_eq!(
            after.account,
            SocialAccount {
                last_login_at: NOW + 10,
                ..before.account.clone()
            },
            "only the last login moves"
        );
    }

    let fresh = fresh_account("uid-ann");
    assert_eq!(
        login(0, fresh.clone(), "t-ann-3", NOW + 20).await,
        Written::Done(users[0].id)
    );
    let after = stored_account(&store, links[0]).await;
    assert_eq!(token_fields(&after.tokens), token_fields(&fresh.tokens));
    assert_eq!(
        after.account,
        SocialAccount {
            expires_at: fresh.tokens.expires_at,
            needs_reauth: false,
            last_login_at: NOW + 20,
            ..before[0].account.clone()
        },
        "fresh tokens make the link usable"
    );
    // Without tokens again: the fresh ones stay, and so does the link's
    // being usable.
    assert_eq!(
        login(0, bare("uid-ann"), "t-ann-4", NOW + 30).await,
        Written::Done(users[0].id)
    );
    let kept = stored_account(&store, links[0]).await;
    assert_eq!(token_fields(&kept.tokens), token_fields(&fresh.tokens));
    assert_eq!(
        kept.account,
        SocialAccount {
            last_login_at: NOW + 30,
            ..after.account.clone()
        }
    );
}

/// Logins written together keep or replace each link's tokens as a login
/// written alone does — in the plain statement and in the one that also
/// records audit events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_logins_written_together_keep_the_stored_tokens_unless_they_bring_their_own() {
    let (pg, scratch) = pg_store().await;
    let shared: SharedStore = pg.clone();
    let names = ["dan", "eve", "rita"];
    let mut users = Vec::new();
    let mut links = Vec::new();
    for name in names {
        let account = new_account(UserId(0), "corp", &format!("uid-{name}"));
        let token = format!("t-{name}-0");
        users.push(sign_up(&shared, &new_user(name), &account, &token, Uuid::new_v4()).await);
        links.push(linked(&shared, &account).await.account_id);
    }
    let bare = |uid: &str| NewSocialAccount {
        tokens: SealedTokens::default(),
        ..new_account(UserId(0), "corp", uid)
    };
    let results: Vec<JobResult> = users
        .iter()
        .map(|u| login_result(u.clone(), false))
        .collect();
    for round in 1..=2_i64 {
        // Dan's and rita's links need their users; eve's does not. Dan and
        // eve log in without tokens, rita with fresh ones.
        for link in [links[0], links[2]] {
            mark_needs_reauth(&shared, link).await;
        }
        let before = [
            stored_account(&shared, links[0]).await,
            stored_account(&shared, links[1]).await,
            stored_account(&shared, links[2]).await,
        ];
        let fresh = NewSocialAccount {
            tokens: SealedTokens {
                access_token: Some(format!("sealed-new-{round}")),
                ..fresh_account("uid-rita").tokens
            },
            ..fresh_account("uid-rita")
        };
        let accounts = [bare("uid-dan"), bare("uid-eve"), fresh.clone()];
        let tokens: Vec<String> = names.iter().map(|n| format!("t-{n}-{round}")).collect();
        let event = link_event(users[1].id, "corp");
        let now = NOW + 10 * round;
        let writes: Vec<LoginWrite<'_>> = (0..3)
            .map(|i| {
                let write = login_write(
                    LoginChange::Existing {
                        account_id: links[i],
                    },
                    Some(users[i].id),
                    &accounts[i],
                    &tokens[i],
                    Uuid::new_v4(),
                    &results[i],
                );
                // The second round's batch records an audit event.
                let audit = (round == 2 && i == 1).then_some(&event);
                LoginWrite {
                    now,
                    audit,
                    ..write
                }
            })
            .collect();
        let answers: Vec<Written> = pg
            .write_logins_together(&writes)
            .await
            .into_iter()
            .map(|r| r.expect("no error"))
            .collect();
        let done: Vec<Written> = users.iter().map(|u| Written::Done(u.id)).collect();
        assert_eq!(answers, done, "round {round}");
        assert_eq!(
            writing_transactions(&scratch, "auth_tokens", "token_hash", &tokens).await,
            1,
            "round {round}: one statement wrote them all"
        );

        for i in [0, 1] {
            let after = stored_account(&shared, links[i]).await;
            assert_eq!(
                token_fields(&after.tokens),
                token_fields(&before[i].tokens),
                "round {round}: {}",
                names[i]
            );
            assert_eq!(
                after.account,
                SocialAccount {
                    last_login_at: now,
                    ..before[i].account.clone()
                },
                "round {round}: {}",
                names[i]
            );
        }
        let rita = stored_account(&shared, links[2]).await;
        assert_eq!(
            token_fields(&rita.tokens),
            token_fields(&fresh.tokens),
            "round {round}"
        );
        assert_eq!(
            rita.account,
            SocialAccount {
                expires_at: fresh.tokens.expires_at,
                needs_reauth: false,
                last_login_at: now,
                ..before[2].account.clone()
            },
            "round {round}"
        );
    }
}

/// `lock_active_user` holds the user until its transaction ends: another
/// transaction's lock of the same user waits until the first commits.
/// Another user is not held, nor is a new link of the held one (its
/// foreign key check).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_locked_user_waits_for_its_holder_to_commit() {
    let fixture = Fixture::postgres().await;
    let store = fixture.store.clone();
    let ann = create_user(&store, &new_user("ann")).await;
    let bob = create_user(&store, &new_user("bob")).await;
    let soon = std::time::Duration::from_secs(5);
    let mut first = store.begin().await.expect("begin");
    assert!(first.lock_active_user(ann.id).await.expect("lock"));

    let mut other = store.begin().await.expect("begin");
    let locked = tokio::time::timeout(soon, other.lock_active_user(bob.id))
        .await
        .expect("bob is not held")
        .expect("lock");
    assert!(locked);
    other.commit().await.expect("commit");
    let mut linking = store.begin().await.expect("begin");
    tokio::time::timeout(
        soon,
        linking.insert_social_account(&new_account(ann.id, "corp", "42")),
    )
    .await
    .expect("a new link is not held up")
    .expect("link");
    linking.commit().await.expect("commit");

    let mut second = tokio::spawn({
        let store = store.clone();
        async move {
            let mut tx = store.begin().await.expect("begin");
            let locked = tx.lock_active_user(ann.id).await.expect("lock");
            tx.commit().await.expect("commit");
            locked
        }
    });
    let waited = tokio::time::timeout(std::time::Duration::from_millis(200), &mut second).await;
    assert!(waited.is_err(), "the second lock did not wait");
    // It waits on the first's lock, not merely slowly.
    let deadline = std::time::Instant::now() + soon;
    loop {
        let rows = fixture
            .raw
            .rows(
                "SELECT CAST(count(*) AS TEXT) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .await;
        if rows[0][0].as_deref() == Some("1") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no session waits for a lock: {rows:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!second.is_finished());
    first.commit().await.expect("commit");
    let locked = tokio::time::timeout(soon, second)
        .await
        .expect("the second lock once the first committed")
        .expect("task");
    assert!(locked);
}

/// Logins written together keep each link's last login: a new link's is
/// its creation, a refreshed one's the login's `now`, a lost login's stays
/// — in the plain statement and in the one that also records audit events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_logins_written_together_keep_each_links_last_login() {
    let (pg, scratch) = pg_store().await;
    let shared: SharedStore = pg.clone();
    let account = |provider: &str, uid: &str, created_at: i64| NewSocialAccount {
        created_at,
        ..new_account(UserId(0), provider, uid)
    };
    let dan = sign_up(
        &shared,
        &new_user("dan"),
        &account("corp", "uid-dan", NOW - 100),
        "t-dan-1",
        Uuid::new_v4(),
    )
    .await;
    let rita = sign_up(
        &shared,
        &new_user("rita"),
        &account("corp", "uid-rita", NOW - 100),
        "t-rita-1",
        Uuid::new_v4(),
    )
    .await;
    let ann_account = account("corp", "uid-ann", NOW - 5);
    let rita_github = account("github", "gh-rita", NOW - 6);
    let ann_user = new_user("ann");
    let ann_id = unlinked(
        &shared,
        &facts(&shared, &facts_query(&ann_account, None, None)).await,
    )
    .expect("an id set aside");
    let dan_link = linked(&shared, &fresh_account("uid-dan")).await;
    let dan_fresh = fresh_account("uid-dan");
    let ann_result = login_result(as_created(&ann_user, ann_id), true);
    let dan_result = login_result(dan.clone(), false);
    let rita_result = login_result(rita.clone(), false);
    let plain = [
        login_write(
            LoginChange::Create { user: &ann_user },
            Some(ann_id),
            &ann_account,
            "t-ann-1",
            Uuid::new_v4(),
            &ann_result,
        ),
        login_write(
            LoginChange::Existing {
                account_id: dan_link.account_id,
            },
            Some(dan.id),
            &dan_fresh,
            "t-dan-2",
            Uuid::new_v4(),
            &dan_result,
        ),
        login_write(
            LoginChange::Link,
            Some(rita.id),
            &rita_github,
            "t-rita-2",
            Uuid::new_v4(),
            &rita_result,
        ),
    ]
    .map(|w| LoginWrite { now: NOW + 7, ..w });
    let answers: Vec<Written> = pg
        .write_logins_together(&plain)
        .await
        .into_iter()
        .map(|r| r.expect("no error"))
        .collect();
    assert_eq!(
        answers,
        [
            Written::Done(ann_id),
            Written::Done(dan.id),
            Written::Done(rita.id)
        ]
    );
    let tokens = ["t-ann-1", "t-dan-2", "t-rita-2"].map(str::to_owned);
    assert_eq!(
        writing_transactions(&scratch, "auth_tokens", "token_hash", &tokens).await,
        1,
        "one statement wrote them all"
    );

    let ann_link = linked(&shared, &ann_account).await;
    let rita_link = linked(&shared, &fresh_account("uid-rita")).await;
    let (ann_fresh, rita_fresh) = (fresh_account("uid-ann"), fresh_account("uid-rita"));
    let ann_in = shared.find_user(ann_id).await.expect("find").expect("ann");
    let ann_result = login_result(ann_in, false);
    let event = link_event(rita.id, "corp");
    let audited = [
        login_write(
            LoginChange::Existing {
                account_id: ann_link.account_id,
            },
            Some(ann_id),
            &ann_fresh,
            "t-ann-2",
            Uuid::new_v4(),
            &ann_result,
        ),
        LoginWrite {
            audit: Some(&event),
            ..login_write(
                LoginChange::Existing {
                    account_id: rita_link.account_id,
                },
                Some(rita.id),
                &rita_fresh,
                "t-rita-3",
                Uuid::new_v4(),
                &rita_result,
            )
        },
        // Dan's link, not rita's.
        login_write(
            LoginChange::Existing {
                account_id: dan_link.account_id,
            },
            Some(rita.id),
            &dan_fresh,
            "t-dan-3",
            Uuid::new_v4(),
            &rita_result,
        ),
    ]
    .map(|w| LoginWrite { now: NOW + 9, ..w });
    let answers: Vec<Written> = pg
        .write_logins_together(&audited)
        .await
        .into_iter()
        .map(|r| r.expect("no error"))
        .collect();
    assert_eq!(
        answers,
        [Written::Done(ann_id), Written::Done(rita.id), Written::Lost]
    );
    let tokens = ["t-ann-2", "t-rita-3"].map(str::to_owned);
    assert_eq!(
        writing_transactions(&scratch, "auth_tokens", "token_hash", &tokens).await,
        1,
        "one statement wrote them both"
    );

    for (user, expected) in [
        (ann_id, times(&[("corp", NOW - 5, NOW + 9)])),
        (dan.id, times(&[("corp", NOW - 100, NOW + 7)])),
        (
            rita.id,
            times(&[("corp", NOW - 100, NOW + 9), ("github", NOW - 6, NOW - 6)]),
        ),
    ] {
        assert_eq!(login_times(&shared, user).await, expected, "{user:?}");
    }
}

// ------------------------------------------------------------------ plans

/// A prepared statement of the PostgreSQL store keeps its generic plan
/// for the session. Made on a database whose tables were analyzed while
/// small (ten rows: a fresh deployment analyzed after its first logins),
/// every scan of a table in a batch statement's generic plan must still be
/// an index probe bounded by the batch — an index condition — never a
/// scan of the whole table, which would then run on every batch as the
/// table grows. (Analyzed with three rows or fewer, a table's probe and a
/// scan of a whole index cost the planner the same; the updates are
/// bounded even then, by `= ANY` over the batch's keys.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_batch_statements_planned_on_small_tables_probe_indexes() {
    let fixture = Fixture::postgres().await;
    let Raw::Postgres(url) = &fixture.raw else {
        unreachable!("a PostgreSQL fixture")
    };
    let mut conn = PgConnection::connect(url).await.expect("connect");
    sqlx::raw_sql(store::PG_SESSION_SETTINGS)
        .execute(&mut conn)
        .await
        .expect("the store's session settings");
    sqlx::raw_sql(
        "SET plan_cache_mode = force_generic_plan; \
         INSERT INTO users (id, username, referral_code, created_at) \
           SELECT g, 'u' || g, 'r' || g, 0 FROM generate_series(1, 10) g; \
         INSERT INTO social_accounts (user_id, provider, uid, created_at, updated_at) \
           SELECT g, 'p', 'uid' || g, 0, 0 FROM generate_series(1, 10) g; \
         INSERT INTO partial_logins (token_hash, provider, data_enc, token_key_id, created_at, \
                                     expires_at) \
           SELECT 'h' || g, 'p', 'd', 'k', 0, 0 FROM generate_series(1, 10) g; \
         INSERT INTO oauth_states (state_hash, provider, redirect_uri, created_at, expires_at) \
           SELECT 's' || g, 'p', 'r', 0, 0 FROM generate_series(1, 10) g; \
         INSERT INTO login_codes (provider, code_hash, job_id, request_hash, created_at, \
                                  expires_at) \
           SELECT 'p', 'c' || g, 'j', 'r', 0, 0 FROM generate_series(1, 10) g; \
         INSERT INTO auth_tokens (token_hash, user_id, created_at) \
           SELECT 't' || g, g, 0 FROM generate_series(1, 10) g; \
         INSERT INTO jobs (id, kind, status, created_at, updated_at) \
           SELECT 'j' || g, 'login', 'succeeded', 0, 0 FROM generate_series(1, 10) g; \
         ANALYZE",
    )
    .execute(&mut conn)
    .await
    .expect("ten rows a table, analyzed; generic plans");
    for (name, sql) in store::PG_BATCH_STATEMENTS {
        let params = (1..=64)
            .take_while(|n| sql.contains(&format!("${n}")))
            .count();
        sqlx::raw_sql(AssertSqlSafe(format!("PREPARE batch AS {sql}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("prepare {name}: {e}"));
        let nulls = vec!["NULL"; params].join(", ");
        let plan: Vec<String> =
            sqlx::query_scalar(AssertSqlSafe(format!("EXPLAIN EXECUTE batch({nulls})")))
                .fetch_all(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("explain {name}: {e}"));
        sqlx::raw_sql("DEALLOCATE batch")
            .execute(&mut conn)
            .await
            .expect("deallocate");
        let unbounded = unbounded_table_scans(&plan);
        assert!(
            unbounded.is_empty(),
            "{name}: scans not bounded by the batch: {unbounded:?}\n{}",
            plan.join("\n")
        );
    }
    let _ = conn.close().await;
}

/// The nodes of a text plan that read a table without an index or TID
/// condition.
fn unbounded_table_scans(plan: &[String]) -> Vec<String> {
    let mut nodes: Vec<Vec<&str>> = Vec::new();
    for line in plan {
        let trimmed = line.trim_start();
        let is_node = nodes.is_empty() || trimmed.starts_with("->");
        if is_node {
            nodes.push(vec![trimmed.trim_start_matches("->").trim_start()]);
        } else if let Some(node) = nodes.last_mut() {
            node.push(trimmed);
        }
    }
    nodes
        .into_iter()
        .filter(|node| {
            let head = node[0];
            let reads_a_table = [
                "Seq Scan",
                "Index Scan",
                "Index Only Scan",
                "Bitmap Index Scan",
            ]
            .iter()
            .any(|kind| head.starts_with(kind));
            let bounded = node[1..]
                .iter()
                .any(|d| d.starts_with("Index Cond:") || d.starts_with("TID Cond:"));
            reads_a_table && !bounded
        })
        .map(|node| node[0].to_owned())
        .collect()
}

/// The code claims' statement commits without waiting for the WAL flush,
/// for its own transaction only: the next statement on the same
/// connection (a login's write, say) waits for it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_code_claims_skip_the_flush_for_their_own_commit_only() {
    let fixture = Fixture::postgres().await;
    let Raw::Postgres(url) = &fixture.raw else {
        unreachable!("a PostgreSQL fixture")
    };
    let (_, claims) = store::PG_BATCH_STATEMENTS
        .into_iter()
        .find(|(name, _)| *name == "code claims")
        .expect("the code claims' statement");
    let mut conn = PgConnection::connect(url).await.expect("connect");
    let claimed: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(claims.to_owned()))
        .bind(vec!["p"])
        .bind(vec!["code-hash"])
        .bind(vec![Uuid::new_v4().to_string()])
        .bind(vec!["request-hash"])
        .bind(vec![1_i64])
        .bind(vec![60_001_i64])
        .fetch_all(&mut conn)
        .await
        .expect("claim");
    assert_eq!(claimed, [("p".to_owned(), "code-hash".to_owned())]);
    let setting: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&mut conn)
        .await
        .expect("show");
    assert_eq!(
        setting, "on",
        "the claim's setting outlived its transaction"
    );
    let _ = conn.close().await;
}

/// Due: a refresh token, an expiry in the window, usable, nobody
/// refreshing; the soonest first, at most the limit.
async fn links_due_for_a_scheduled_refresh_are_listed_soonest_first(store: SharedStore) {
    let ann = create_user(&store, &new_user("ann")).await;
    let link = |uid: &str, expires_at: Option<i64>, refresh: bool| {
        let mut account = new_account(ann.id, "corp", uid);
        account.tokens.expires_at = expires_at;
        if !refresh {
            account.tokens.refresh_token = None;
        }
        account
    };
    let later = create_link(&store, &link("later", Some(NOW + 500), true)).await;
    let soon = create_link(&store, &link("soon", Some(NOW + 100), true)).await;
    let just_expired = create_link(&store, &link("expired", Some(NOW - 100), true)).await;
    // Not due: outside the window, no expiry, no refresh token.
    create_link(&store, &link("far", Some(NOW + 5_000), true)).await;
    create_link(&store, &link("long-gone", Some(NOW - 5_000), true)).await;
    create_link(&store, &link("forever", None, true)).await;
    create_link(&store, &link("no-refresh", Some(NOW + 100), false)).await;
    // Not due: waiting for its user, or being refreshed.
    let reauth = create_link(&store, &link("reauth", Some(NOW + 200), true)).await;
    mark_needs_reauth(&store, reauth.id).await;
    let leased = create_link(&store, &link("leased", Some(NOW + 300), true)).await;
    let owner = Uuid::new_v4();
    assert!(
        store
            .take_refresh_lease(leased.id, owner, NOW, NOW + 1_000)
            .await
            .expect("take")
            .is_some()
    );

    let due = |limit| store.find_refresh_due(NOW - 1_000, NOW + 1_000, NOW, limit);
    assert_eq!(
        due(10).await.expect("due"),
        vec![just_expired.id, soon.id, later.id]
    );
    assert_eq!(due(2).await.expect("due"), vec![just_expired.id, soon.id]);
    // Once its lease expired, the leased one is due again.
    assert_eq!(
        store
            .find_refresh_due(NOW - 1_000, NOW + 1_000, NOW + 1_000, 10)
            .await
            .expect("due"),
        vec![just_expired.id, soon.id, leased.id, later.id]
    );
}

/// A claim given back by the job that holds it is gone: the credential can
/// be claimed afresh. Another job cannot give it back.
async fn a_claim_is_given_back_only_by_its_job(store: SharedStore) {
    let (first, other) = (Uuid::new_v4(), Uuid::new_v4());
    let claimed = store
        .claim_login_code(&code_claim("token-hash", "r", first, NOW))
        .await
        .expect("claim");
    assert_eq!(claimed, CodeClaimed::Claimed);
    let release = |job| store.release_login_code("corp", "token-hash", job);
    assert!(!release(other).await.expect("release"));
    assert!(release(first).await.expect("release"));
    assert!(!release(first).await.expect("release"));
    let again = store
        .claim_login_code(&code_claim("token-hash", "r", other, NOW + 1))
        .await
        .expect("claim");
    assert_eq!(again, CodeClaimed::Claimed);
}

// ------------------------------------------------------- refresh campaigns

/// A campaign of every refreshed provider (`corp`, then `github`), made at
/// `created_at`.
fn new_campaign(created_at: i64) -> NewCampaign {
    NewCampaign {
        id: Uuid::new_v4(),
        provider: None,
        providers: vec!["corp".to_owned(), "github".to_owned()],
        expiring_within_secs: 3_600,
        expiring_before: NOW + 3_600_000,
        rate_per_second: Some(2.5),
        created_at,
    }
}

/// `campaign` as it starts: running, nothing planned, published or counted.
fn as_started(campaign: &NewCampaign) -> Campaign {
    Campaign {
        id: campaign.id,
        provider: campaign.provider.clone(),
        providers: campaign.providers.clone(),
        expiring_within_secs: campaign.expiring_within_secs,
        expiring_before: campaign.expiring_before,
        rate_per_second: campaign.rate_per_second,
        status: CampaignStatus::Running,
        plan: PlanState::default(),
        planned: false,
        pages: 0,
        published_pages: 0,
        total: 0,
        counts: CampaignCounts::default(),
        created_at: campaign.created_at,
        updated_at: campaign.created_at,
        finished_at: None,
    }
}

/// A campaign started at `NOW`: its id.
async fn start_campaign(store: &SharedStore) -> Uuid {
    let campaign = new_campaign(NOW);
    store.insert_campaign(&campaign).await.expect("insert");
    campaign.id
}

/// The campaign `id` as stored now.
async fn campaign(store: &SharedStore, id: Uuid) -> Campaign {
    store
        .find_campaign(id)
        .await
        .expect("find")
        .unwrap_or_else(|| panic!("campaign {id} is there"))
}

fn plan_state(provider_index: i64, cursor: i64) -> PlanState {
    PlanState {
        provider_index,
        cursor,
    }
}

/// A planning step from `from` to `to`: `items` (account, page) and the
/// `pages` (page, provider) it opens.
fn plan_step(
    from: PlanState,
    to: PlanState,
    planned: bool,
    items: &[(i64, i64)],
    pages: &[(i64, &str)],
) -> PlanStep {
    PlanStep {
        from,
        to,
        planned,
        items: items.to_vec(),
        pages: pages_of(pages),
    }
}

fn pages_of(pages: &[(i64, &str)]) -> Vec<(i64, String)> {
    pages
        .iter()
        .map(|(page, provider)| (*page, (*provider).to_owned()))
        .collect()
}

async fn add_plan_step(store: &SharedStore, id: Uuid, step: &PlanStep, now: i64) -> bool {
    store.add_plan_step(id, step, now).await.expect("plan")
}

/// A campaign started and planned at `NOW` in one step: `accounts` on
/// page 0 (`corp`); `planned`: nothing is left to plan.
async fn campaign_of(store: &SharedStore, accounts: &[i64], planned: bool) -> Uuid {
    let id = start_campaign(store).await;
    let items: Vec<(i64, i64)> = accounts.iter().map(|a| (*a, 0)).collect();
    let step = plan_step(
        PlanState::default(),
        plan_state(1, 0),
        planned,
        &items,
        &[(0, "corp")],
    );
    assert!(add_plan_step(store, id, &step, NOW).await);
    id
}

async fn page_items(store: &SharedStore, id: Uuid, page: i64) -> Vec<i64> {
    store.find_page_items(id, page).await.expect("page items")
}

/// An item handled without new tokens.
fn handled(account_id: i64, outcome: ItemOutcome) -> CampaignItem {
    CampaignItem {
        account_id,
        outcome,
        tokens: None,
    }
}

fn refreshed(account_id: i64, tokens: &SealedTokens) -> CampaignItem {
    CampaignItem {
        account_id,
        outcome: ItemOutcome::Refreshed,
        tokens: Some(tokens.clone()),
    }
}

fn counts(refreshed: i64, failed: i64, needs_reauth: i64, skipped: i64) -> CampaignCounts {
    CampaignCounts {
        refreshed,
        failed,
        needs_reauth,
        skipped,
    }
}

fn sum(a: CampaignCounts, b: CampaignCounts) -> CampaignCounts {
    counts(
        a.refreshed + b.refreshed,
        a.failed + b.failed,
        a.needs_reauth + b.needs_reauth,
        a.skipped + b.skipped,
    )
}

async fn finish(
    store: &SharedStore,
    id: Uuid,
    owner: Uuid,
    items: &[CampaignItem],
    now: i64,
) -> CampaignCounts {
    store
        .finish_campaign_items(id, owner, items, now)
        .await
        .expect("finish items")
}

/// New tokens from a campaign's refresh, an OAuth 2 grant (no token
/// secret), told apart by `n`.
fn granted_tokens(n: i64) -> SealedTokens {
    SealedTokens {
        key_id: Some("k4".to_owned()),
        access_token: Some(format!("sealed-access-4-{n}")),
        refresh_token: Some(format!("sealed-refresh-4-{n}")),
        token_secret: None,
        expires_at: Some(NOW + 9_000_000 + n),
    }
}

/// A link of `corp` for `uid`, its access token its own: its id.
async fn corp_link(store: &SharedStore, user: UserId, uid: &str) -> i64 {
    let mut account = new_account(user, "corp", uid);
    account.tokens.access_token = Some(format!("sealed-access-{uid}"));
    create_link(store, &account).await.id
}

/// Who holds link `id`'s refresh lease, and until when.
async fn lease_of(raw: &Raw, id: i64) -> Vec<Option<String>> {
    let rows = raw
        .rows(&format!(
            "SELECT refresh_lease_owner, CAST(refresh_lease_until AS TEXT) \
             FROM social_accounts WHERE id = {id}"
        ))
        .await;
    assert_eq!(rows.len(), 1, "one link {id}");
    rows.into_iter().next().unwrap_or_default()
}

async fn a_new_campaign_runs_with_nothing_planned_or_counted(store: SharedStore) {
    let every = new_campaign(NOW);
    let one = NewCampaign {
        provider: Some("github".to_owned()),
        providers: vec!["github".to_owned()],
        rate_per_second: None,
        ..new_campaign(NOW + 1)
    };
    for new in [&every, &one] {
        let started = store.insert_campaign(new).await.expect("insert");
        assert_eq!(started, as_started(new));
        assert_eq!(campaign(&store, new.id).await, started);
        assert_eq!(started.remaining(), 0);
    }
    assert!(
        store
            .find_campaign(Uuid::new_v4())
            .await
            .expect("find")
            .is_none(),
        "no such campaign"
    );
}

async fn campaigns_are_listed_newest_first(store: SharedStore) {
    let mut started = Vec::new();
    // Started out of order: listed by when they were started.
    for created_at in [NOW + 1, NOW + 3, NOW, NOW + 2] {
        let new = new_campaign(created_at);
        started.push(store.insert_campaign(&new).await.expect("insert"));
    }
    started.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    assert_eq!(store.list_campaigns(10).await.expect("list"), started);
    assert_eq!(
        store.list_campaigns(2).await.expect("list"),
        started[..2].to_vec()
    );
}

async fn a_running_campaign_is_cancelled_once(store: SharedStore) {
    let started = store
        .insert_campaign(&new_campaign(NOW))
        .await
        .expect("insert");
    let other = store
        .insert_campaign(&new_campaign(NOW))
        .await
        .expect("insert");
    assert!(
        store
            .cancel_campaign(started.id, NOW + 5)
            .await
            .expect("cancel")
    );
    let cancelled = Campaign {
        status: CampaignStatus::Cancelled,
        updated_at: NOW + 5,
        finished_at: Some(NOW + 5),
        ..started.clone()
    };
    assert_eq!(campaign(&store, started.id).await, cancelled);
    // Stopped already: nothing changes.
    assert!(
        !store
            .cancel_campaign(started.id, NOW + 6)
            .await
            .expect("cancel")
    );
    assert_eq!(campaign(&store, started.id).await, cancelled);
    assert!(
        !store
            .cancel_campaign(Uuid::new_v4(), NOW + 7)
            .await
            .expect("cancel"),
        "no such campaign"
    );
    assert_eq!(campaign(&store, other.id).await, other, "another runs on");
}

/// Covered: a link of the provider after the cursor, with a refresh token,
/// usable, its access token expiring before the bound; in id order, at
/// most the limit.
async fn plan_candidates_are_usable_links_of_the_provider_expiring_before_the_bound_in_id_order(
    store: SharedStore,
) {
    let ann = create_user(&store, &new_user("ann")).await;
    let bound = NOW + 1_000;
    let link = |provider: &str, uid: &str, expires_at: Option<i64>, refresh: bool| {
        let mut account = new_account(ann.id, provider, uid);
        account.tokens.expires_at = expires_at;
        if !refresh {
            account.tokens.refresh_token = None;
        }
        account
    };
    // Covered, in id order whatever their expiry.
    let late = create_link(&store, &link("corp", "late", Some(bound - 1), true)).await;
    let gone = create_link(&store, &link("corp", "gone", Some(NOW - 5_000_000), true)).await;
    // Not covered: another provider's, no refresh token, no expiry,
    // expiring at the bound or after it, waiting for its user.
    let github = create_link(&store, &link("github", "gh", Some(NOW), true)).await;
    create_link(&store, &link("corp", "no-refresh", Some(NOW), false)).await;
    create_link(&store, &link("corp", "forever", None, true)).await;
    create_link(&store, &link("corp", "at-bound", Some(bound), true)).await;
    create_link(&store, &link("corp", "after", Some(bound + 1), true)).await;
    let reauth = create_link(&store, &link("corp", "reauth", Some(NOW), true)).await;
    mark_needs_reauth(&store, reauth.id).await;
    let soon = create_link(&store, &link("corp", "soon", Some(NOW + 1), true)).await;

    let candidates = |provider: &'static str, after: i64, limit: u32| {
        let store = store.clone();
        async move {
            store
                .find_plan_candidates(provider, after, bound, limit)
                .await
                .expect("candidates")
        }
    };
    assert_eq!(
        candidates("corp", 0, 10).await,
        vec![late.id, gone.id, soon.id]
    );
    assert_eq!(candidates("corp", 0, 2).await, vec![late.id, gone.id]);
    assert_eq!(
        candidates("corp", late.id, 10).await,
        vec![gone.id, soon.id]
    );
    assert_eq!(candidates("corp", gone.id, 1).await, vec![soon.id]);
    assert!(candidates("corp", soon.id, 10).await.is_empty());
    assert_eq!(candidates("github", 0, 10).await, vec![github.id]);
    assert_eq!(
        store
            .find_plan_candidates("corp", 0, NOW + 1, 10)
            .await
            .expect("candidates"),
        vec![gone.id],
        "an earlier bound covers fewer"
    );
}

async fn a_plan_step_is_recorded_once_from_the_state_it_was_planned_from(store: SharedStore) {
    let id = start_campaign(&store).await;
    let started = campaign(&store, id).await;
    let pages = |from: i64, to: i64| {
        let store = store.clone();
        async move {
            store
                .find_campaign_pages(id, from, to)
                .await
                .expect("pages")
        }
    };

    let first = plan_step(
        PlanState::default(),
        plan_state(0, 30),
        false,
        &[(10, 0), (20, 0), (30, 1)],
        &[(0, "corp"), (1, "corp")],
    );
    assert!(add_plan_step(&store, id, &first, NOW + 1).await);
    let after_first = Campaign {
        plan: plan_state(0, 30),
        pages: 2,
        total: 3,
        updated_at: NOW + 1,
        ..started.clone()
    };
    assert_eq!(campaign(&store, id).await, after_first);
    assert_eq!(after_first.remaining(), 3);
    assert_eq!(pages(0, 10).await, pages_of(&[(0, "corp"), (1, "corp")]));
    assert_eq!(page_items(&store, id, 0).await, vec![10, 20]);
    assert_eq!(page_items(&store, id, 1).await, vec![30]);

    // Planned again from the same state (another planner), or from a
    // state the campaign is not at: refused, nothing written.
    let again = plan_step(
        PlanState::default(),
        plan_state(0, 40),
        false,
        &[(40, 2)],
        &[(2, "corp")],
    );
    let ahead = plan_step(
        plan_state(0, 40),
        plan_state(1, 0),
        false,
        &[(50, 2)],
        &[(2, "corp")],
    );
    for refused in [&again, &first, &ahead] {
        assert!(!add_plan_step(&store, id, refused, NOW + 2).await);
        assert_eq!(campaign(&store, id).await, after_first);
        assert_eq!(pages(0, 10).await, pages_of(&[(0, "corp"), (1, "corp")]));
        assert!(page_items(&store, id, 2).await.is_empty());
        assert_eq!(page_items(&store, id, 0).await, vec![10, 20]);
    }

    // On from where it stands: the rest of `corp`, then `github`, planned.
    let second = plan_step(
        plan_state(0, 30),
        plan_state(1, 0),
        false,
        &[(40, 2)],
        &[(2, "corp")],
    );
    assert!(add_plan_step(&store, id, &second, NOW + 3).await);
    let last = plan_step(
        plan_state(1, 0),
        plan_state(2, 0),
        true,
        &[(50, 3), (5, 3)],
        &[(3, "github")],
    );
    assert!(add_plan_step(&store, id, &last, NOW + 4).await);
    let planned = Campaign {
        plan: plan_state(2, 0),
        planned: true,
        pages: 4,
        total: 6,
        updated_at: NOW + 4,
        ..started
    };
    assert_eq!(
        campaign(&store, id).await,
        planned,
        "running while items are left"
    );
    assert_eq!(
        pages(0, 10).await,
        pages_of(&[(0, "corp"), (1, "corp"), (2, "corp"), (3, "github")])
    );
    assert_eq!(page_items(&store, id, 2).await, vec![40]);
    assert_eq!(page_items(&store, id, 3).await, vec![5, 50]);
    assert!(!add_plan_step(&store, id, &last, NOW + 5).await);
    assert_eq!(campaign(&store, id).await, planned);
}

async fn a_stopped_campaign_takes_no_plan_step(store: SharedStore) {
    let id = start_campaign(&store).await;
    assert!(store.cancel_campaign(id, NOW + 1).await.expect("cancel"));
    let cancelled = campaign(&store, id).await;
    let step = plan_step(
        PlanState::default(),
        plan_state(1, 0),
        true,
        &[(10, 0)],
        &[(0, "corp")],
    );
    assert!(!add_plan_step(&store, id, &step, NOW + 2).await);
    assert_eq!(campaign(&store, id).await, cancelled);
    assert!(
        store
            .find_campaign_pages(id, 0, 10)
            .await
            .expect("pages")
            .is_empty()
    );
    assert!(page_items(&store, id, 0).await.is_empty());
    assert!(
        !add_plan_step(&store, Uuid::new_v4(), &step, NOW + 2).await,
        "no such campaign"
    );
}

async fn a_campaign_is_done_once_planned_with_every_item_handled(store: SharedStore) {
    let owner = Uuid::new_v4();
    let status = |id: Uuid| {
        let store = store.clone();
        async move {
            let c = campaign(&store, id).await;
            (c.status, c.finished_at)
        }
    };

    // Nothing to cover: done as planning ends.
    let empty = start_campaign(&store).await;
    let nothing = plan_step(PlanState::default(), plan_state(2, 0), true, &[], &[]);
    assert!(add_plan_step(&store, empty, &nothing, NOW + 1).await);
    let done = campaign(&store, empty).await;
    assert_eq!(
        (done.status, done.planned, done.finished_at),
        (CampaignStatus::Done, true, Some(NOW + 1))
    );
    // Done: neither planned on nor cancelled.
    let more = plan_step(plan_state(2, 0), plan_state(3, 0), true, &[], &[]);
    assert!(!add_plan_step(&store, empty, &more, NOW + 2).await);
    assert!(!store.cancel_campaign(empty, NOW + 3).await.expect("cancel"));
    assert_eq!(campaign(&store, empty).await, done);

    // Every item handled while planning goes on: done by its last step.
    let early = start_campaign(&store).await;
    let first = plan_step(
        PlanState::default(),
        plan_state(0, 2),
        false,
        &[(1, 0), (2, 0)],
        &[(0, "corp")],
    );
    assert!(add_plan_step(&store, early, &first, NOW + 1).await);
    let items = [
        handled(1, ItemOutcome::Failed),
        handled(2, ItemOutcome::Skipped),
    ];
    finish(&store, early, owner, &items, NOW + 2).await;
    assert_eq!(campaign(&store, early).await.remaining(), 0);
    assert_eq!(status(early).await, (CampaignStatus::Running, None));
    let next = plan_step(plan_state(0, 2), plan_state(1, 0), false, &[], &[]);
    assert!(add_plan_step(&store, early, &next, NOW + 3).await);
    assert_eq!(status(early).await, (CampaignStatus::Running, None));
    let last = plan_step(plan_state(1, 0), plan_state(2, 0), true, &[], &[]);
    assert!(add_plan_step(&store, early, &last, NOW + 4).await);
    assert_eq!(status(early).await, (CampaignStatus::Done, Some(NOW + 4)));

    // Planned before its items are handled: done by the last of them.
    let late = campaign_of(&store, &[1, 2], true).await;
    assert_eq!(status(late).await, (CampaignStatus::Running, None));
    finish(
        &store,
        late,
        owner,
        &[handled(1, ItemOutcome::Skipped)],
        NOW + 5,
    )
    .await;
    assert_eq!(status(late).await, (CampaignStatus::Running, None));
    let written = finish(
        &store,
        late,
        owner,
        &[handled(2, ItemOutcome::NeedsReauth)],
        NOW + 6,
    )
    .await;
    assert_eq!(written, counts(0, 0, 1, 0));
    let done = campaign(&store, late).await;
    assert_eq!(
        (done.status, done.finished_at, done.counts),
        (CampaignStatus::Done, Some(NOW + 6), counts(0, 0, 1, 1))
    );
    // Handled again: nothing changes.
    let again = finish(
        &store,
        late,
        owner,
        &[handled(2, ItemOutcome::Failed)],
        NOW + 7,
    )
    .await;
    assert_eq!(again, CampaignCounts::default());
    assert_eq!(campaign(&store, late).await, done);
}

/// Pages at work when their campaign was cancelled write what they did;
/// the campaign stays cancelled.
async fn a_cancelled_campaign_stays_cancelled_when_its_items_are_handled(store: SharedStore) {
    let id = campaign_of(&store, &[1, 2], true).await;
    assert!(store.cancel_campaign(id, NOW + 5).await.expect("cancel"));
    let cancelled = campaign(&store, id).await;
    let items = [
        handled(1, ItemOutcome::Failed),
        handled(2, ItemOutcome::Skipped),
    ];
    let written = finish(&store, id, Uuid::new_v4(), &items, NOW + 10).await;
    assert_eq!(written, counts(0, 1, 0, 1));
    assert_eq!(
        campaign(&store, id).await,
        Campaign {
            counts: written,
            updated_at: NOW + 10,
            ..cancelled
        }
    );
}

async fn campaign_pages_are_found_by_range_and_while_an_item_is_unhandled(store: SharedStore) {
    let owner = Uuid::new_v4();
    let id = start_campaign(&store).await;
    let step = plan_step(
        PlanState::default(),
        plan_state(2, 0),
        true,
        &[(1, 0), (2, 0), (3, 1), (4, 2)],
        &[(0, "corp"), (1, "corp"), (2, "github")],
    );
    assert!(add_plan_step(&store, id, &step, NOW).await);
    // Another campaign covers the same accounts, in a page of its own.
    let other = start_campaign(&store).await;
    let other_step = plan_step(
        PlanState::default(),
        plan_state(2, 0),
        true,
        &[(1, 0), (2, 0), (3, 0), (4, 0)],
        &[(0, "github")],
    );
    assert!(add_plan_step(&store, other, &other_step, NOW).await);

    let all = pages_of(&[(0, "corp"), (1, "corp"), (2, "github")]);
    let pages = |from: i64, to: i64| {
        let store = store.clone();
        async move {
            store
                .find_campaign_pages(id, from, to)
                .await
                .expect("pages")
        }
    };
    assert_eq!(pages(0, 3).await, all);
    assert_eq!(pages(0, 100).await, all);
    assert_eq!(pages(1, 2).await, all[1..2].to_vec());
    assert_eq!(pages(1, 3).await, all[1..].to_vec());
    assert!(pages(1, 1).await.is_empty());
    assert!(pages(3, 10).await.is_empty());
    assert!(
        store
            .find_campaign_pages(Uuid::new_v4(), 0, 10)
            .await
            .expect("pages")
            .is_empty()
    );

    let unfinished = |id: Uuid| {
        let store = store.clone();
        async move { store.find_unfinished_pages(id).await.expect("unfinished") }
    };
    assert_eq!(unfinished(id).await, all);
    assert_eq!(page_items(&store, id, 0).await, vec![1, 2]);
    // A page has work left until its last item is handled.
    finish(
        &store,
        id,
        owner,
        &[handled(2, ItemOutcome::Failed)],
        NOW + 1,
    )
    .await;
    assert_eq!(page_items(&store, id, 0).await, vec![1]);
    assert_eq!(unfinished(id).await, all);
    let items = [
        handled(1, ItemOutcome::Skipped),
        handled(4, ItemOutcome::NeedsReauth),
    ];
    finish(&store, id, owner, &items, NOW + 2).await;
    assert!(page_items(&store, id, 0).await.is_empty());
    assert!(page_items(&store, id, 2).await.is_empty());
    assert_eq!(unfinished(id).await, all[1..2].to_vec());
    finish(
        &store,
        id,
        owner,
        &[handled(3, ItemOutcome::Skipped)],
        NOW + 3,
    )
    .await;
    assert!(unfinished(id).await.is_empty());
    assert!(page_items(&store, id, 1).await.is_empty());
    // The other campaign's items are its own: none handled.
    assert_eq!(unfinished(other).await, pages_of(&[(0, "github")]));
    assert_eq!(page_items(&store, other, 0).await, vec![1, 2, 3, 4]);
}

async fn published_pages_only_grow(store: SharedStore) {
    let id = start_campaign(&store).await;
    let other = start_campaign(&store).await;
    let step = plan_step(
        PlanState::default(),
        plan_state(2, 0),
        true,
        &[(1, 0), (2, 1), (3, 2)],
        &[(0, "corp"), (1, "corp"), (2, "corp")],
    );
    assert!(add_plan_step(&store, id, &step, NOW).await);
    let publish = |id: Uuid, pages: i64| {
        let store = store.clone();
        async move {
            store
                .mark_pages_published(id, pages)
                .await
                .expect("published");
            campaign(&store, id).await.published_pages
        }
    };
    assert_eq!(publish(id, 2).await, 2);
    // A planner behind marks nothing back.
    assert_eq!(publish(id, 1).await, 2);
    assert_eq!(publish(id, 0).await, 2);
    assert_eq!(publish(id, 2).await, 2);
    assert_eq!(publish(id, 3).await, 3);
    assert_eq!(campaign(&store, other).await.published_pages, 0);
    store
        .mark_pages_published(Uuid::new_v4(), 1)
        .await
        .expect("no such campaign: nothing to mark");
}

async fn campaign_leases_are_taken_when_free_expired_or_the_owners_already(store: SharedStore) {
    let ann = create_user(&store, &new_user("ann")).await;
    let (owner, other) = (Uuid::new_v4(), Uuid::new_v4());
    let free = corp_link(&store, ann.id, "free").await;
    let expired = corp_link(&store, ann.id, "expired").await;
    let held = corp_link(&store, ann.id, "held").await;
    let own = corp_link(&store, ann.id, "own").await;
    // Another's lease that runs out at `NOW`, another's that runs on, and
    // the owner's own (the call made again after its answer was lost).
    for (id, holder, until) in [
        (expired, other, NOW),
        (held, other, NOW + 1_000),
        (own, owner, NOW + 1_000),
    ] {
        let leased = store
            .take_refresh_lease(id, holder, NOW - 1_000, until)
            .await
            .expect("take");
        assert!(leased.is_some(), "nobody holds {id}");
    }
    let mut before = Vec::new();
    for id in [free, expired, own] {
        before.push(stored_account(&store, id).await);
    }

    let mut taken = store
        .take_refresh_leases(
            &[free, expired, held, own, i64::MAX],
            owner,
            NOW,
            NOW + 60_000,
        )
        .await
        .expect("take");
    taken.sort_by_key(|s| s.account.id);
    assert_eq!(
        taken.iter().map(stored_fields).collect::<Vec<_>>(),
        before.iter().map(stored_fields).collect::<Vec<_>>(),
        "the links, with their tokens"
    );
    // The owner's until the new end, the own one's included.
    for id in [free, expired, own] {
        let another = store
            .take_refresh_lease(id, other, NOW + 59_999, NOW + 70_000)
            .await
            .expect("take");
        assert!(another.is_none(), "{id} is held");
    }
    // Another's running lease is not taken, until it runs out.
    let later = |now: i64| {
        let store = store.clone();
        async move {
            store
                .take_refresh_leases(&[held], owner, now, now + 60_000)
                .await
                .expect("take")
        }
    };
    assert!(later(NOW + 999).await.is_empty());
    let retaken = later(NOW + 1_000).await;
    assert_eq!(
        retaken.iter().map(|s| s.account.id).collect::<Vec<_>>(),
        vec![held]
    );
    for id in [free, expired, own, held] {
        assert!(
            store.end_refresh(id, owner, false).await.expect("end"),
            "{id} is the owner's"
        );
    }
    assert!(
        store
            .take_refresh_leases(&[], owner, NOW, NOW + 1)
            .await
            .expect("take")
            .is_empty()
    );
}

/// A refreshed item's tokens are stored and a refused one marks its link,
/// where the finishing owner holds the lease, which it gives back; the
/// outcome of each is counted all the same.
async fn finished_campaign_items_settle_only_the_leases_their_owner_holds(
    store: SharedStore,
    raw: Raw,
) {
    let ann = create_user(&store, &new_user("ann")).await;
    let (owner, other) = (Uuid::new_v4(), Uuid::new_v4());
    let ours_refreshed = corp_link(&store, ann.id, "refreshed").await;
    let ours_refused = corp_link(&store, ann.id, "refused").await;
    let ours_failed = corp_link(&store, ann.id, "failed").await;
    let ours_skipped = corp_link(&store, ann.id, "skipped").await;
    let theirs_refreshed = corp_link(&store, ann.id, "theirs-refreshed").await;
    let theirs_refused = corp_link(&store, ann.id, "theirs-refused").await;
    // Removed meanwhile: an item without its link.
    let gone = i64::MAX;
    let id = campaign_of(
        &store,
        &[
            ours_refreshed,
            ours_refused,
            ours_failed,
            ours_skipped,
            theirs_refreshed,
            theirs_refused,
            gone,
        ],
        true,
    )
    .await;
    let ours = [ours_refreshed, ours_refused, ours_failed, ours_skipped];
    let theirs = [theirs_refreshed, theirs_refused];
    let until = NOW + 60_000;
    let taken = store
        .take_refresh_leases(&ours, owner, NOW, until)
        .await
        .expect("take");
    assert_eq!(taken.len(), ours.len());
    let taken = store
        .take_refresh_leases(&theirs, other, NOW, until)
        .await
        .expect("take");
    assert_eq!(taken.len(), theirs.len());
    let mut before = std::collections::HashMap::new();
    for link in ours.iter().chain(&theirs) {
        before.insert(*link, stored_account(&store, *link).await);
    }
    let fresh = granted_tokens(1);

    let items = [
        refreshed(ours_refreshed, &fresh),
        handled(ours_refused, ItemOutcome::NeedsReauth),
        handled(ours_failed, ItemOutcome::Failed),
        handled(ours_skipped, ItemOutcome::Skipped),
        refreshed(theirs_refreshed, &granted_tokens(2)),
        handled(theirs_refused, ItemOutcome::NeedsReauth),
        handled(gone, ItemOutcome::Skipped),
    ];
    let written = finish(&store, id, owner, &items, NOW + 10).await;
    // Their refreshed link's new tokens are not stored: failed.
    assert_eq!(written, counts(1, 2, 2, 2));
    let given_back = vec![None, None];

    // Refreshed: its new tokens, usable, updated; the lease given back.
    let after = stored_account(&store, ours_refreshed).await;
    assert_eq!(token_fields(&after.tokens), token_fields(&fresh));
    assert_eq!(
        after.account,
        SocialAccount {
            expires_at: fresh.expires_at,
            ..before[&ours_refreshed].account.clone()
        }
    );
    assert_eq!(lease_of(&raw, ours_refreshed).await, given_back);
    let updated = raw
        .rows(&format!(
            "SELECT CAST(updated_at AS TEXT) FROM social_accounts WHERE id = {ours_refreshed}"
        ))
        .await;
    assert_eq!(updated, [vec![Some((NOW + 10).to_string())]]);
    // Refused: the link needs its user, its tokens kept.
    let after = stored_account(&store, ours_refused).await;
    assert_eq!(
        token_fields(&after.tokens),
        token_fields(&before[&ours_refused].tokens)
    );
    assert_eq!(
        after.account,
        SocialAccount {
            needs_reauth: true,
            ..before[&ours_refused].account.clone()
        }
    );
    assert_eq!(lease_of(&raw, ours_refused).await, given_back);
    // Failed or skipped: the link as it was, the lease given back.
    for link in [ours_failed, ours_skipped] {
        assert_eq!(
            stored_fields(&stored_account(&store, link).await),
            stored_fields(&before[&link]),
            "{link}"
        );
        assert_eq!(lease_of(&raw, link).await, given_back, "{link}");
    }
    // Another's lease: neither tokens nor a refusal written, still theirs.
    for link in theirs {
        assert_eq!(
            stored_fields(&stored_account(&store, link).await),
            stored_fields(&before[&link]),
            "{link}"
        );
        assert_eq!(
            lease_of(&raw, link).await,
            [Some(other.to_string()), Some(until.to_string())],
            "{link}"
        );
    }
    let done = campaign(&store, id).await;
    assert_eq!(
        (done.counts, done.status, done.finished_at),
        (written, CampaignStatus::Done, Some(NOW + 10))
    );

    // Handled again, the leases given back: nothing more is written.
    let mut links = Vec::new();
    for link in ours.iter().chain(&theirs) {
        links.push(stored_account(&store, *link).await);
    }
    let again = [
        handled(ours_refreshed, ItemOutcome::NeedsReauth),
        refreshed(ours_refused, &granted_tokens(3)),
        handled(theirs_refused, ItemOutcome::NeedsReauth),
    ];
    assert_eq!(
        finish(&store, id, owner, &again, NOW + 20).await,
        CampaignCounts::default()
    );
    for stored in &links {
        assert_eq!(
            stored_fields(&stored_account(&store, stored.account.id).await),
            stored_fields(stored)
        );
    }
    assert_eq!(campaign(&store, id).await, done);
}

/// A refreshed item's tokens are stored as given, as
/// [`Store::finish_refresh`] stores a refresh's: every sealed field, the
/// token secret included.
async fn a_refreshed_campaign_item_stores_its_tokens_as_given(store: SharedStore) {
    let ann = create_user(&store, &new_user("ann")).await;
    let owner = Uuid::new_v4();
    let link = corp_link(&store, ann.id, "uid-ann").await;
    let id = campaign_of(&store, &[link], true).await;
    let taken = store
        .take_refresh_leases(&[link], owner, NOW, NOW + 60_000)
        .await
        .expect("take");
    assert_eq!(taken.len(), 1);
    let tokens = refreshed_tokens();
    assert!(tokens.token_secret.is_some());
    let written = finish(&store, id, owner, &[refreshed(link, &tokens)], NOW + 1).await;
    assert_eq!(written, counts(1, 0, 0, 0));
    assert_eq!(
        token_fields(&stored_account(&store, link).await.tokens),
        token_fields(&tokens)
    );
}

/// New tokens whose lease was lost meanwhile (another refresher took it
/// after it ran out) are not stored, and the item is `failed`.
async fn tokens_without_their_lease_are_not_stored_and_count_failed(store: SharedStore) {
    let ann = create_user(&store, &new_user("ann")).await;
    let (owner, other) = (Uuid::new_v4(), Uuid::new_v4());
    let link = corp_link(&store, ann.id, "uid-ann").await;
    let id = campaign_of(&store, &[link], true).await;
    let before = stored_account(&store, link).await;
    assert_eq!(
        store
            .take_refresh_leases(&[link], owner, NOW, NOW + 10)
            .await
            .expect("take")
            .len(),
        1
    );
    // Run out, taken by another.
    assert!(
        store
            .take_refresh_lease(link, other, NOW + 10, NOW + 60_000)
            .await
            .expect("take")
            .is_some()
    );
    let written = finish(
        &store,
        id,
        owner,
        &[refreshed(link, &refreshed_tokens())],
        NOW + 20,
    )
    .await;
    assert_eq!(written, counts(0, 1, 0, 0));
    assert_eq!(
        stored_fields(&stored_account(&store, link).await),
        stored_fields(&before)
    );
    // The other's lease stands.
    assert!(store.end_refresh(link, other, false).await.expect("end"));
}

async fn each_campaign_item_is_counted_once_with_its_first_outcome(store: SharedStore) {
    let owner = Uuid::new_v4();
    let id = campaign_of(&store, &[1, 2, 3, 4], false).await;
    let other = campaign_of(&store, &[1, 2, 3, 4], false).await;

    // (No links behind these ids: outcomes without tokens to store.)
    let first = [
        handled(1, ItemOutcome::Refreshed),
        handled(2, ItemOutcome::Failed),
    ];
    assert_eq!(
        finish(&store, id, owner, &first, NOW + 1).await,
        counts(1, 1, 0, 0)
    );
    // Handled again with other outcomes, with an item not yet handled and
    // one the campaign does not cover: only the new item counts.
    let second = [
        handled(1, ItemOutcome::Failed),
        handled(2, ItemOutcome::Refreshed),
        handled(3, ItemOutcome::NeedsReauth),
        handled(99, ItemOutcome::Skipped),
    ];
    assert_eq!(
        finish(&store, id, owner, &second, NOW + 2).await,
        counts(0, 0, 1, 0)
    );
    for items in [&second[..], &first[..], &[]] {
        assert_eq!(
            finish(&store, id, Uuid::new_v4(), items, NOW + 3).await,
            CampaignCounts::default()
        );
    }
    let c = campaign(&store, id).await;
    assert_eq!(
        (c.counts, c.total, c.remaining()),
        (counts(1, 1, 1, 0), 4, 1)
    );
    assert_eq!(page_items(&store, id, 0).await, vec![4]);

    // The other campaign's items are its own.
    assert_eq!(
        campaign(&store, other).await.counts,
        CampaignCounts::default()
    );
    assert_eq!(page_items(&store, other, 0).await, vec![1, 2, 3, 4]);
    assert_eq!(
        finish(
            &store,
            other,
            owner,
            &[handled(1, ItemOutcome::Skipped)],
            NOW + 4
        )
        .await,
        counts(0, 0, 0, 1)
    );
    assert_eq!(campaign(&store, id).await.counts, counts(1, 1, 1, 0));
}

/// [`Store::finish_campaign_items`], tried again while it fails for a
/// passing reason, as the worker does.
async fn finish_retrying(
    store: &SharedStore,
    id: Uuid,
    owner: Uuid,
    items: &[CampaignItem],
    now: i64,
) -> CampaignCounts {
    let mut attempts = 0;
    loop {
        match store.finish_campaign_items(id, owner, items, now).await {
            Ok(counts) => return counts,
            Err(e) if e.is_transient() && attempts < 20 => attempts += 1,
            Err(e) => panic!("finish items: {e}"),
        }
    }
}

/// A page handled by several workers at once (its message delivered
/// again while the first still works): each item is counted once.
async fn concurrent_finishes_of_one_page_count_each_item_once(store: SharedStore) {
    const FINISHERS: usize = 8;
    let accounts: Vec<i64> = (1..=60).collect();
    let id = campaign_of(&store, &accounts, true).await;
    let barrier = Arc::new(Barrier::new(FINISHERS));
    let tasks: Vec<_> = (0..FINISHERS)
        .map(|k| {
            let (store, barrier) = (store.clone(), barrier.clone());
            // Each its own order and outcome.
            let mut order = accounts.clone();
            order.rotate_left(k * 7);
            if k % 2 == 1 {
                order.reverse();
            }
            let outcome = [
                ItemOutcome::Failed,
                ItemOutcome::Skipped,
                ItemOutcome::NeedsReauth,
            ][k % 3];
            let items: Vec<CampaignItem> = order.iter().map(|a| handled(*a, outcome)).collect();
            tokio::spawn(async move {
                let owner = Uuid::new_v4();
                barrier.wait().await;
                let mut written = CampaignCounts::default();
                for batch in items.chunks(20) {
                    let counts = finish_retrying(&store, id, owner, batch, NOW + 1).await;
                    written = sum(written, counts);
                }
                written
            })
        })
        .collect();
    let mut written = CampaignCounts::default();
    for task in tasks {
        written = sum(written, task.await.expect("task"));
    }
    assert_eq!(written.handled(), accounts.len() as i64, "{written:?}");
    let done = campaign(&store, id).await;
    assert_eq!((done.counts, done.status), (written, CampaignStatus::Done));
    assert!(
        store
            .find_unfinished_pages(id)
            .await
            .expect("unfinished")
            .is_empty()
    );
}

async fn rate_reservations_follow_each_other_and_start_now_when_idle(store: SharedStore) {
    let now = NOW * 1_000;
    let reserve = |key: &'static str, span: i64, now: i64| {
        let store = store.clone();
        async move { store.reserve_rate(key, span, now).await.expect("reserve") }
    };
    // A new budget is idle: its first reservation starts now.
    assert_eq!(reserve("campaign:a", 100, now).await, now);
    // Busy: each starts where the one before ends.
    assert_eq!(reserve("campaign:a", 50, now).await, now + 100);
    assert_eq!(reserve("campaign:a", 10, now + 120).await, now + 150);
    // Another budget is its own.
    assert_eq!(reserve("provider:corp", 10, now + 120).await, now + 120);
    assert_eq!(reserve("provider:corp", 10, now + 120).await, now + 130);
    // Idle again from the end of its last reservation.
    assert_eq!(reserve("campaign:a", 10, now + 160).await, now + 160);
    assert_eq!(reserve("campaign:a", 10, now + 5_000).await, now + 5_000);
    assert_eq!(reserve("campaign:a", 10, now + 5_000).await, now + 5_010);
    assert_eq!(reserve("provider:corp", 10, now + 5_000).await, now + 5_000);
}

/// Reservations of one budget made at once by many workers: one after
/// another, none overlapping.
async fn concurrent_rate_reservations_never_overlap(store: SharedStore) {
    const TAKERS: i64 = 20;
    let now = NOW * 1_000;
    let barrier = Arc::new(Barrier::new(TAKERS as usize));
    let tasks: Vec<_> = (0..TAKERS)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .reserve_rate("campaign:a", 10, now)
                    .await
                    .expect("reserve")
            })
        })
        .collect();
    let mut starts = Vec::new();
    for task in tasks {
        starts.push(task.await.expect("task"));
    }
    starts.sort_unstable();
    assert_eq!(
        starts,
        (0..TAKERS).map(|k| now + 10 * k).collect::<Vec<_>>()
    );
}

// ------------------------------------------------------------ re-encryption

/// Sealed tokens under `key_id` (each column's text as given: the store
/// tells formats by the `v2:` prefix alone).
fn sealed_as(
    key_id: &str,
    access: Option<&str>,
    refresh: Option<&str>,
    secret: Option<&str>,
) -> SealedTokens {
    SealedTokens {
        key_id: Some(key_id.to_owned()),
        access_token: access.map(str::to_owned),
        refresh_token: refresh.map(str::to_owned),
        token_secret: secret.map(str::to_owned),
        expires_at: Some(NOW + 3_600_000),
    }
}

/// A user `name` with a `corp` link of uid `name` holding `tokens`: the
/// link's id.
async fn link_with(store: &SharedStore, name: &str, tokens: SealedTokens) -> (UserId, i64) {
    let user = create_user(store, &new_user(name)).await;
    let mut tx = store.begin().await.expect("begin");
    let link = tx
        .insert_social_account(&NewSocialAccount {
            tokens,
            ..new_account(user.id, "corp", name)
        })
        .await
        .expect("link");
    tx.commit().await.expect("commit");
    (user.id, link.id)
}

fn count(key_id: &str, format: &str, links: i64) -> SealedCount {
    SealedCount {
        key_id: key_id.to_owned(),
        format: format.to_owned(),
        links,
    }
}

async fn due_ids(store: &SharedStore, key_id: &str, after: i64, limit: u32) -> Vec<i64> {
    store
        .find_reencryption_due(key_id, after, limit)
        .await
        .expect("due links")
        .iter()
        .map(|s| s.account.id)
        .collect()
}

/// Links due for a re-encryption to a key: those under another key, or
/// with a column not in the current format; in id order after the place
/// given, with their sealed tokens. Links are counted by key and format.
async fn links_due_for_a_reencryption_are_those_under_another_key_or_format(store: SharedStore) {
    let (_, other_key) = link_with(
        &store,
        "a",
        sealed_as("k1", Some("v2:a"), Some("v2:r"), None),
    )
    .await;
    let (_, current) = link_with(
        &store,
        "b",
        sealed_as("k2", Some("v2:a"), Some("v2:r"), None),
    )
    .await;
    let (_, old_access) = link_with(
        &store,
        "c",
        sealed_as("k2", Some("old"), Some("v2:r"), None),
    )
    .await;
    let (_, old_secret) = link_with(
        &store,
        "d",
        sealed_as("k2", Some("v2:a"), None, Some("old")),
    )
    .await;
    let (_, no_tokens) = link_with(&store, "e", SealedTokens::default()).await;
    let (_, old_refresh) = link_with(
        &store,
        "f",
        sealed_as("k2", Some("v2:a"), Some("old"), None),
    )
    .await;
    assert!(no_tokens > current);

    assert_eq!(
        due_ids(&store, "k2", 0, 10).await,
        [other_key, old_access, old_secret, old_refresh]
    );
    assert_eq!(
        due_ids(&store, "k2", old_access, 10).await,
        [old_secret, old_refresh]
    );
    assert_eq!(due_ids(&store, "k2", 0, 2).await, [other_key, old_access]);
    assert_eq!(
        due_ids(&store, "k2", old_refresh, 10).await,
        Vec::<i64>::new()
    );
    assert_eq!(
        due_ids(&store, "k1", 0, 10).await,
        [current, old_access, old_secret, old_refresh]
    );
    let page = store
        .find_reencryption_due("k2", 0, 1)
        .await
        .expect("due links");
    assert_eq!(page[0].account.uid, "a");
    assert_eq!(page[0].account.provider, "corp");
    assert_eq!(
        (
            page[0].tokens.key_id.as_deref(),
            page[0].tokens.access_token.as_deref(),
            page[0].tokens.refresh_token.as_deref(),
            page[0].tokens.token_secret.as_deref(),
        ),
        (Some("k1"), Some("v2:a"), Some("v2:r"), None)
    );

    assert_eq!(
        store.count_sealed_tokens().await.expect("count"),
        [
            count("k1", "v2", 1),
            count("k2", "v1", 3),
            count("k2", "v2", 1)
        ]
    );
}

/// A page's writes hold only for links whose tokens are still as read: a
/// sign-in that wrote meanwhile keeps its tokens (counted `changed`); the
/// run's place and counts move with the page, once.
async fn a_reencryption_page_replaces_only_tokens_still_as_read(store: SharedStore, raw: Raw) {
    let id = Uuid::new_v4();
    let owner = Uuid::new_v4();
    let started = store
        .insert_reencryption(id, "k2", NOW)
        .await
        .expect("start");
    assert_eq!(started.status, store::ReencryptionStatus::Running);
    assert_eq!(
        (started.total, started.after_id, started.done()),
        (None, 0, 0)
    );
    assert_eq!(started.remaining(), None);
    let taken = store
        .take_reencryption("k2", owner, NOW, NOW + 60_000)
        .await
        .expect("take")
        .expect("free to take");
    assert_eq!(taken.lease_owner, Some(owner));
    assert!(
        store
            .set_reencryption_total(id, owner, 3)
            .await
            .expect("total")
    );
    assert!(
        !store
            .set_reencryption_total(id, owner, 9)
            .await
            .expect("total once")
    );

    let (_, a) = link_with(&store, "a", sealed_as("k1", Some("a1"), Some("r1"), None)).await;
    let (bob, b) = link_with(&store, "b", sealed_as("k1", Some("a1"), None, Some("s1"))).await;
    let (_, c) = link_with(&store, "c", sealed_as("k1", Some("a1"), None, None)).await;
    let rows = store
        .find_reencryption_due("k2", 0, 10)
        .await
        .expect("due links");
    assert_eq!(rows.len(), 3);
    // Bob signs in again meanwhile: new tokens under the new key.
    let signed_in = sealed_as("k2", Some("v2:fresh"), None, None);
    let mut tx = store.begin().await.expect("begin");
    assert!(
        tx.update_social_account_tokens(b, bob, &signed_in, NOW + 1)
            .await
            .expect("sign-in")
    );
    tx.commit().await.expect("commit");
    // a and b sealed again; c's could not be opened.
    let resealed = |row: &StoredAccount| store::Resealed {
        account_id: row.account.id,
        old: row.tokens.clone(),
        new: SealedTokens {
            key_id: Some("k2".to_owned()),
            access_token: Some(format!("v2:{}", row.account.uid)),
            refresh_token: row.tokens.refresh_token.as_ref().map(|_| "v2:r".to_owned()),
            token_secret: row.tokens.token_secret.as_ref().map(|_| "v2:s".to_owned()),
            expires_at: row.tokens.expires_at,
        },
    };
    let items: Vec<_> = rows[..2].iter().map(resealed).collect();
    let page = store::ReencryptionPage {
        id,
        owner,
        from: 0,
        to: c,
        items: &items,
        failed: 1,
        now: NOW + 2,
        lease_until: NOW + 60_002,
    };
    let written = store
        .write_reencryption_page(&page)
        .await
        .expect("page")
        .expect("held");
    assert_eq!(written, [a]);
    assert_eq!(
        stored_tokens(&raw, "a").await,
        owned([Some("k2"), Some("v2:a"), Some("v2:r"), None])
    );
    assert_eq!(
        stored_tokens(&raw, "b").await,
        owned([Some("k2"), Some("v2:fresh"), None, None])
    );
    assert_eq!(
        stored_tokens(&raw, "c").await,
        owned([Some("k1"), Some("a1"), None, None])
    );
    let run = store
        .find_reencryption(id)
        .await
        .expect("find")
        .expect("run");
    assert_eq!(
        (run.after_id, run.moved, run.changed, run.failed),
        (c, 1, 1, 1)
    );
    assert_eq!(
        (run.total, run.done(), run.remaining()),
        (Some(3), 3, Some(0))
    );
    assert_eq!(
        (run.updated_at, run.lease_until),
        (NOW + 2, Some(NOW + 60_002))
    );

    // The same page again (its answer lost): nothing written or counted.
    let again = store.write_reencryption_page(&page).await.expect("page");
    assert_eq!(again, None);
    let same = store
        .find_reencryption(id)
        .await
        .expect("find")
        .expect("run");
    assert_eq!((same.moved, same.changed, same.failed), (1, 1, 1));

    assert!(
        store
            .finish_reencryption(id, owner, 1, NOW + 3)
            .await
            .expect("finish")
    );
    let done = store
        .find_reencryption(id)
        .await
        .expect("find")
        .expect("run");
    assert_eq!(done.status, store::ReencryptionStatus::Done);
    assert_eq!(
        (done.remaining_at_end, done.remaining(), done.finished_at),
        (Some(1), Some(1), Some(NOW + 3))
    );
    assert_eq!((done.lease_owner, done.lease_until), (None, None));
    assert!(
        !store
            .finish_reencryption(id, owner, 0, NOW + 4)
            .await
            .expect("finish again")
    );
    let listed = store.list_reencryptions(10).await.expect("list");
    assert_eq!(listed, [done]);
}

/// One re-encryption runs at a time; it is held by one owner until its
/// lease expires (or it is given back), taken by workers of its key only,
/// and of many takers at once, one gets it. A page of an owner that lost
/// it, or of a cancelled one, writes nothing.
async fn a_reencryption_runs_alone_and_is_held_by_one_owner_at_a_time(store: SharedStore) {
    let id = Uuid::new_v4();
    store
        .insert_reencryption(id, "k2", NOW)
        .await
        .expect("start");
    assert!(matches!(
        store
            .insert_reencryption(Uuid::new_v4(), "k2", NOW + 1)
            .await,
        Err(StoreError::Conflict(Constraint::RunningReencryption))
    ));
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let take = |owner: Uuid, key_id: &'static str, now: i64| {
        let store = store.clone();
        async move {
            store
                .take_reencryption(key_id, owner, now, now + 1_000)
                .await
                .expect("take")
                .map(|r| (r.id, r.lease_owner))
        }
    };
    // A worker whose current key is another has nothing to do.
    assert_eq!(take(a, "k3", NOW).await, None);
    assert_eq!(take(a, "k2", NOW).await, Some((id, Some(a))));
    assert_eq!(take(b, "k2", NOW + 500).await, None);
    assert_eq!(take(a, "k2", NOW + 600).await, Some((id, Some(a))));
    // A's lease (until NOW + 1_600) has expired: B takes over.
    assert_eq!(take(b, "k2", NOW + 1_600).await, Some((id, Some(b))));
    let page = |owner: Uuid| store::ReencryptionPage {
        id,
        owner,
        from: 0,
        to: 0,
        items: &[],
        failed: 0,
        now: NOW + 1_700,
        lease_until: NOW + 2_700,
    };
    assert_eq!(
        store.write_reencryption_page(&page(a)).await.expect("page"),
        None
    );
    assert_eq!(
        store.write_reencryption_page(&page(b)).await.expect("page"),
        Some(Vec::new())
    );
    // Given back: free at once.
    store.release_reencryption(id, b).await.expect("release");
    assert_eq!(take(c, "k2", NOW + 1_800).await, Some((id, Some(c))));
    store.release_reencryption(id, c).await.expect("release");

    let takers: Vec<_> = (0..8)
        .map(|_| tokio::spawn(take(Uuid::new_v4(), "k2", NOW + 1_900)))
        .collect();
    let mut won = 0;
    for t in takers {
        won += usize::from(t.await.expect("taker").is_some());
    }
    assert_eq!(won, 1, "one of many takers at once");

    assert!(
        store
            .cancel_reencryption(id, NOW + 2_000)
            .await
            .expect("cancel")
    );
    assert!(
        !store
            .cancel_reencryption(id, NOW + 2_001)
            .await
            .expect("cancel again")
    );
    let cancelled = store
        .find_reencryption(id)
        .await
        .expect("find")
        .expect("run");
    assert_eq!(cancelled.status, store::ReencryptionStatus::Cancelled);
    assert_eq!(cancelled.finished_at, Some(NOW + 2_000));
    assert_eq!(take(a, "k2", NOW + 9_000).await, None);
    // A new one may start once none runs.
    let next = store
        .insert_reencryption(Uuid::new_v4(), "k3", NOW + 3_000)
        .await
        .expect("a second one");
    let listed = store.list_reencryptions(10).await.expect("list");
    assert_eq!(
        listed.iter().map(|r| r.id).collect::<Vec<_>>(),
        [next.id, id]
    );
    assert_eq!(
        store.find_reencryption(Uuid::new_v4()).await.expect("find"),
        None
    );
}
