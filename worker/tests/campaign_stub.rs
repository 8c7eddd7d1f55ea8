//! Refresh campaigns against a stub provider, for what a real one will not
//! do on demand: fail (5xx) for some accounts, refuse others, and take a
//! budget of calls a second. Planning and pages run as a worker runs them
//! (`campaign::plan`, `campaign::page`), the pages it publishes caught by a
//! queue that keeps them. The store is SQLite in memory.

mod support;

use async_trait::async_trait;
use serde_json::json;
use socialauth_common::crypto::{Binding, TokenCipher, TokenColumn};
use socialauth_common::jobs::{CampaignPlanJob, Job, JobEnvelope, JobResult};
use socialauth_common::now_ms;
use socialauth_common::queue::{JobQueue, QueueError, ReplyWaiter};
use socialauth_common::store::{
    CampaignStatus, NewCampaign, NewSocialAccount, NewUser, SealedTokens, SharedStore,
};
use socialauth_worker::{Deps, campaign};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Keeps what is published.
#[derive(Default)]
struct Kept(Mutex<Vec<JobEnvelope>>);

#[async_trait]
impl JobQueue for Kept {
    async fn submit(&self, job: &JobEnvelope) -> Result<ReplyWaiter, QueueError> {
        self.0.lock().expect("lock").push(job.clone());
        let (_, rx) = tokio::sync::oneshot::channel();
        Ok(ReplyWaiter::new(rx, None))
    }

    async fn check(&self) -> Result<(), QueueError> {
        Ok(())
    }
}

struct Setup {
    deps: Deps,
    store: SharedStore,
    kept: Arc<Kept>,
    server: MockServer,
}

/// The stub's refresh grant: `ok-*` refresh tokens get new tokens, `bad-*`
/// are refused (`invalid_grant`), `down-*` meet a 503.
async fn setup(provider: &[(&str, &str)], page_size: &str) -> Setup {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("refresh_token=ok-"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "fresh-access", "token_type": "Bearer", "expires_in": 3600
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("refresh_token=bad-"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("refresh_token=down-"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let (deps, store, _) = support::stub_deps_with(
        &server.uri(),
        provider,
        &[("REFRESH__CAMPAIGN_PAGE_SIZE", page_size)],
    )
    .await;
    let kept = Arc::new(Kept::default());
    let deps = deps.with_publisher(kept.clone());
    Setup {
        deps,
        store,
        kept,
        server,
    }
}

/// Links whose refresh tokens are `kinds` in order, access tokens expired.
async fn links(store: &SharedStore, cipher: &TokenCipher, kinds: &[&str]) {
    let mut tx = store.begin().await.expect("begin");
    for (i, kind) in kinds.iter().enumerate() {
        let user = tx
            .insert_user(&NewUser {
                username: format!("u{i}"),
                email: None,
                email_normalized: None,
                email_verified: false,
                first_name: String::new(),
                last_name: String::new(),
                referral_code: format!("REF{i:07}"),
                referred_by: None,
                created_at: 1,
            })
            .await
            .expect("user");
        let uid = i.to_string();
        let place = |column| Binding::Account {
            provider: "acme",
            uid: &uid,
            column,
        };
        let access = cipher.seal("old-access", place(TokenColumn::AccessToken));
        let refresh = cipher.seal(&format!("{kind}-{i}"), place(TokenColumn::RefreshToken));
        tx.insert_social_account(&NewSocialAccount {
            user_id: user.id,
            provider: "acme".into(),
            uid: uid.clone(),
            email: None,
            extra_data: "{}".into(),
            tokens: SealedTokens {
                key_id: Some(access.key_id),
                access_token: Some(access.data),
                refresh_token: Some(refresh.data),
                token_secret: None,
                expires_at: Some(now_ms() - 1_000),
            },
            created_at: 1,
        })
        .await
        .expect("link");
    }
    tx.commit().await.expect("commit");
}

async fn start(s: &Setup, rate: Option<f64>) -> Uuid {
    let id = Uuid::new_v4();
    s.store
        .insert_campaign(&NewCampaign {
            id,
            provider: Some("acme".into()),
            providers: vec!["acme".into()],
            expiring_within_secs: 0,
            expiring_before: now_ms(),
            rate_per_second: rate,
            created_at: now_ms(),
        })
        .await
        .expect("campaign");
    let planned = campaign::plan(
        &s.deps,
        &CampaignPlanJob {
            campaign_id: id,
            republish: false,
        },
    )
    .await;
    assert!(matches!(planned, JobResult::CampaignWork(_)), "{planned:?}");
    id
}

async fn campaign_now(s: &Setup, id: Uuid) -> socialauth_common::store::Campaign {
    s.store
        .find_campaign(id)
        .await
        .expect("find")
        .expect("campaign")
}

/// The pages published so far, handled at once; taken from the queue.
async fn handle_pages(s: &Setup) -> Vec<JobResult> {
    let pages: Vec<JobEnvelope> = std::mem::take(&mut *s.kept.0.lock().expect("lock"));
    let runs = pages.into_iter().map(|env| {
        let deps = s.deps.clone();
        tokio::spawn(async move {
            let Job::CampaignPage(page) = &env.job else {
                panic!("not a page: {:?}", env.job)
            };
            campaign::page(&deps, env.id, page).await
        })
    });
    let mut results = Vec::new();
    for run in runs.collect::<Vec<_>>() {
        results.push(run.await.expect("page"));
    }
    results
}

#[tokio::test]
async fn each_account_counts_as_the_provider_answered_once_and_pages_run_again_count_nothing() {
    let s = setup(&[], "4").await;
    let cipher = s.deps.cipher.clone();
    links(
        &s.store,
        &cipher,
        &[
            "ok", "bad", "down", "ok", "ok", "bad", "down", "ok", "ok", "ok",
        ],
    )
    .await;
    let id = start(&s, None).await;
    let published = s.kept.0.lock().expect("lock").clone();
    assert_eq!(published.len(), 3, "ten accounts in pages of four");
    handle_pages(&s).await;
    let c = campaign_now(&s, id).await;
    assert_eq!(c.status, CampaignStatus::Done, "{c:?}");
    assert_eq!(c.total, 10);
    assert_eq!(
        (
            c.counts.refreshed,
            c.counts.needs_reauth,
            c.counts.failed,
            c.counts.skipped
        ),
        (6, 2, 2, 0),
        "{c:?}"
    );
    // Every lease is given back; the refused grants wait for their users.
    for link in 1..=10 {
        let stored = s
            .store
            .find_stored_account(link)
            .await
            .expect("find")
            .expect("link");
        let refused = [2, 6].contains(&link);
        assert_eq!(stored.account.needs_reauth, refused, "link {link}");
    }
    // The same pages again (a redelivery): nothing is done or counted twice.
    let calls = s.server.received_requests().await.map_or(0, |r| r.len());
    s.kept.0.lock().expect("lock").extend(published);
    handle_pages(&s).await;
    assert_eq!(
        s.server.received_requests().await.map_or(0, |r| r.len()),
        calls,
        "no provider call for a handled account"
    );
    let again = campaign_now(&s, id).await;
    assert_eq!(again.counts, c.counts);
}

#[tokio::test]
async fn pages_handled_together_keep_to_the_providers_budget() {
    let s = setup(&[("refresh_rate_per_second", "40")], "20").await;
    let cipher = s.deps.cipher.clone();
    links(&s.store, &cipher, &["ok"; 60]).await;
    let started = Instant::now();
    let id = start(&s, None).await;
    assert_eq!(s.kept.0.lock().expect("lock").len(), 3);
    handle_pages(&s).await;
    let took = started.elapsed();
    let c = campaign_now(&s, id).await;
    assert_eq!(
        (c.status, c.counts.refreshed),
        (CampaignStatus::Done, 60),
        "{c:?}"
    );
    // Sixty calls at forty a second, three pages at once: the last call
    // is made no sooner than 59/40 s after the first.
    assert!(
        took >= Duration::from_millis(1_400),
        "60 calls in {took:?}: the budget was not kept"
    );
}

#[tokio::test]
async fn a_cancelled_campaign_stops_its_pages() {
    let s = setup(&[], "50").await;
    let cipher = s.deps.cipher.clone();
    links(&s.store, &cipher, &["ok"; 50]).await;
    let id = start(&s, Some(10.0)).await;
    let pages = handle_pages(&s);
    let cancel = async {
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(s.store.cancel_campaign(id, now_ms()).await.expect("cancel"));
    };
    let (results, ()) = tokio::join!(pages, cancel);
    assert_eq!(results.len(), 1);
    let c = campaign_now(&s, id).await;
    assert_eq!(c.status, CampaignStatus::Cancelled);
    // Ten a second, cancelled after about 0.6 s: a handful, not fifty.
    let handled = c.counts.handled();
    assert!((1..=15).contains(&handled), "{c:?}");
    assert_eq!(c.remaining(), 50 - handled);
}

#[tokio::test]
async fn a_campaign_whose_pages_were_lost_is_planned_again_and_finishes() {
    let s = setup(&[], "4").await;
    let cipher = s.deps.cipher.clone();
    links(&s.store, &cipher, &["ok"; 10]).await;
    let id = start(&s, None).await;
    // The queue loses the three pages (dead-lettered, or a restart of the
    // embedded queue); one page had been half done.
    let lost: Vec<JobEnvelope> = std::mem::take(&mut *s.kept.0.lock().expect("lock"));
    assert_eq!(lost.len(), 3);
    s.kept.0.lock().expect("lock").push(lost[0].clone());
    handle_pages(&s).await;

    // Not stalled yet for a minute's threshold; at once for none.
    assert_eq!(campaign::revive(&s.deps, 60_000).await, 0);
    assert_eq!(campaign::revive(&s.deps, 0).await, 1);
    let plans: Vec<JobEnvelope> = std::mem::take(&mut *s.kept.0.lock().expect("lock"));
    let [plan] = plans.as_slice() else {
        panic!("one planning job: {plans:?}")
    };
    let Job::CampaignPlan(job) = &plan.job else {
        panic!("not a plan: {:?}", plan.job)
    };
    assert!(job.republish);
    campaign::plan(&s.deps, job).await;
    assert_eq!(
        s.kept.0.lock().expect("lock").len(),
        2,
        "the two pages with work left"
    );
    handle_pages(&s).await;
    let c = campaign_now(&s, id).await;
    assert_eq!(
        (c.status, c.counts.refreshed),
        (CampaignStatus::Done, 10),
        "{c:?}"
    );
    // A campaign that ended is never revived.
    assert_eq!(campaign::revive(&s.deps, 0).await, 0);
}
