//! Refresh campaigns: planning (the accounts a campaign covers, recorded in
//! pages, one message per page) and pages (each account refreshed through
//! the refresh rule and grant of [`crate::refresh`], under the link's
//! lease, within the campaign's and the provider's rate budgets).
//!
//! Progress lives in the database: an account's outcome is written once,
//! so a page handled again (its worker killed, its message published
//! twice) skips what was done and counts nothing twice; planning goes on
//! from where the database says it stopped.

use crate::deps::Deps;
use crate::error::WorkerError;
use crate::refresh::{self, Grant, Step};
use backon::{ExponentialBuilder, Retryable};
use socialauth_common::jobs::{
    CampaignPageJob, CampaignPlanJob, CampaignWork, Job, JobEnvelope, JobError, JobResult,
};
use socialauth_common::now_ms;
use socialauth_common::store::{
    Campaign, CampaignItem, CampaignStatus, ItemOutcome, PlanState, PlanStep, StoreError,
    StoredAccount,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::warn;
use uuid::Uuid;

/// Accounts planned per planning step (one transaction).
const PLAN_STEP: u32 = 5_000;
/// Accounts leased together when no budget sets the pace.
const CHUNK: usize = 100;
/// How often a page looks whether its campaign was cancelled.
const STATUS_EVERY: Duration = Duration::from_millis(250);
/// How often a page looks again at accounts another refresher holds.
const BUSY_STEP: Duration = Duration::from_millis(100);
/// Outcomes written together, at most.
const WRITE_BATCH: usize = 512;
/// Stalled campaigns revived per look, at most (the longest stalled first).
const REVIVE_LOOK: u32 = 50;

/// How long a start waits at most for the stopping process to let go of
/// its campaigns ([`revive_at_start`]).
const REVIVE_PATIENCE: Duration = Duration::from_secs(120);

pub async fn plan(deps: &Deps, job: &CampaignPlanJob) -> JobResult {
    match run_plan(deps, job).await {
        Ok(pages) => JobResult::CampaignWork(CampaignWork {
            handled: pages,
            interrupted: false,
        }),
        Err(e) => {
            warn!(campaign = %job.campaign_id, error = %e, "planning a campaign failed");
            JobResult::Failed(e.to_job_error())
        }
    }
}

pub async fn page(deps: &Deps, job_id: Uuid, job: &CampaignPageJob) -> JobResult {
    match run_page(deps, job_id, job).await {
        Ok((handled, interrupted)) => JobResult::CampaignWork(CampaignWork {
            handled,
            interrupted,
        }),
        Err(e) => {
            warn!(campaign = %job.campaign_id, page = job.page, error = %e, "a campaign page failed");
            JobResult::Failed(e.to_job_error())
        }
    }
}

/// A store call retried while the failure is transient, for about a
/// minute: a page whose database is away a few seconds waits for it
/// rather than being dead-lettered.
async fn stored<T, F, Fut>(call: F) -> Result<T, WorkerError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    Ok(call.retry(patient()).when(StoreError::is_transient).await?)
}

fn patient() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(2))
        .with_max_times(40)
        .with_jitter()
}

async fn running(deps: &Deps, id: Uuid) -> Result<Option<Campaign>, WorkerError> {
    let found = stored(|| deps.store.find_campaign(id)).await?;
    Ok(found.filter(|c| c.status == CampaignStatus::Running))
}

async fn run_plan(deps: &Deps, job: &CampaignPlanJob) -> Result<u64, WorkerError> {
    let publisher = deps.publisher.as_ref().ok_or(JobError::Internal)?;
    let id = job.campaign_id;
    let Some(mut campaign) = running(deps, id).await? else {
        return Ok(0);
    };
    let mut published = 0;
    // Pages recorded but perhaps never published (a planner stopped
    // between the two), or, after the embedded queue lost its jobs, every
    // page with work left.
    let unpublished = if job.republish {
        stored(|| deps.store.find_unfinished_pages(id)).await?
    } else if campaign.published_pages < campaign.pages {
        stored(|| {
            deps.store
                .find_campaign_pages(id, campaign.published_pages, campaign.pages)
        })
        .await?
    } else {
        Vec::new()
    };
    published += publish(deps, publisher.as_ref(), id, &unpublished, campaign.pages).await?;
    while !campaign.planned {
        let step = next_step(deps, &campaign).await?;
        let opened = step.pages.clone();
        let pages = campaign.pages + opened.len() as i64;
        if stored(|| deps.store.add_plan_step(id, &step, now_ms())).await? {
            published += publish(deps, publisher.as_ref(), id, &opened, pages).await?;
        }
        match running(deps, id).await? {
            Some(c) => campaign = c,
            None => break,
        }
    }
    Ok(published)
}

/// The planning step after where `campaign` stands: the next accounts of
/// its current provider, in pages that never mix providers.
async fn next_step(deps: &Deps, campaign: &Campaign) -> Result<PlanStep, WorkerError> {
    let from = campaign.plan;
    let index = usize::try_from(from.provider_index).unwrap_or(usize::MAX);
    let Some(provider) = campaign.providers.get(index) else {
        return Ok(PlanStep {
            from,
            to: from,
            planned: true,
            items: Vec::new(),
            pages: Vec::new(),
        });
    };
    let ids = stored(|| {
        deps.store
            .find_plan_candidates(provider, from.cursor, campaign.expiring_before, PLAN_STEP)
    })
    .await?;
    let page_size = i64::from(deps.campaigns.page_size);
    let items: Vec<(i64, i64)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, campaign.pages + i as i64 / page_size))
        .collect();
    let count = (ids.len() as i64 + page_size - 1) / page_size;
    let pages = (0..count)
        .map(|p| (campaign.pages + p, provider.clone()))
        .collect();
    let exhausted = ids.len() < PLAN_STEP as usize;
    let to = match ids.last() {
        Some(last) if !exhausted => PlanState {
            provider_index: from.provider_index,
            cursor: *last,
        },
        _ => PlanState {
            provider_index: from.provider_index + 1,
            cursor: 0,
        },
    };
    Ok(PlanStep {
        from,
        to,
        planned: exhausted && index + 1 >= campaign.providers.len(),
        items,
        pages,
    })
}

/// Publishes a page job for each of `pages`, then records every page
/// before `upto` as published.
async fn publish(
    deps: &Deps,
    publisher: &dyn socialauth_common::queue::JobQueue,
    id: Uuid,
    pages: &[(i64, String)],
    upto: i64,
) -> Result<u64, WorkerError> {
    for (page, provider) in pages {
        let provider = socialauth_common::types::ProviderName::parse(provider)
            .ok_or_else(|| WorkerError::Internal(format!("a page of provider {provider:?}")))?;
        let job = Job::CampaignPage(CampaignPageJob {
            campaign_id: id,
            page: *page,
            provider,
        });
        let envelope = JobEnvelope::new(job, None);
        let submit = || publisher.submit(&envelope);
        // Nobody waits for a page's reply: the waiter is dropped at once.
        submit
            .retry(crate::dispatch::backoff(deps))
            .await
            .map_err(|e| WorkerError::Internal(format!("publishing a campaign page: {e}")))?;
    }
    if !pages.is_empty() {
        stored(|| deps.store.mark_pages_published(id, upto)).await?;
    }
    Ok(pages.len() as u64)
}

/// A rate budget a page keeps to: its key and the time one call takes of it.
struct Budget {
    key: String,
    interval_us: i64,
}

impl Budget {
    fn per_second(key: String, rate: f64) -> Self {
        Self {
            key,
            interval_us: (1_000_000.0 / rate).round().max(1.0) as i64,
        }
    }
}

/// The accounts handled, and whether the page stopped part-way because
/// this worker is shutting down.
async fn run_page(
    deps: &Deps,
    job_id: Uuid,
    job: &CampaignPageJob,
) -> Result<(u64, bool), WorkerError> {
    let id = job.campaign_id;
    let Some(campaign) = running(deps, id).await? else {
        return Ok((0, false));
    };
    let provider = deps.catalogue.get(job.provider.as_str());
    let mut budgets = Vec::new();
    if let Some(rate) = campaign.rate_per_second.filter(|r| *r > 0.0) {
        budgets.push(Budget::per_second(format!("campaign:{id}"), rate));
    }
    if let Some(rate) = provider.and_then(|p| p.refresh.rate_per_second) {
        budgets.push(Budget::per_second(
            format!("provider:{}", job.provider.as_str()),
            f64::from(rate),
        ));
    }
    // Taken together: about a tenth of a second of the slowest budget, and
    // at most this page's share of the calls this process may have in
    // flight (each chunk takes its slots at once).
    let share = (deps.campaigns.concurrency / deps.campaigns.pages.max(1)).max(1);
    let chunk = budgets
        .iter()
        .map(|b| usize::try_from(100_000 / b.interval_us).unwrap_or(1).max(1))
        .min()
        .unwrap_or(CHUNK)
        .min(CHUNK)
        .min(share);
    // This run's own lease owner: a page delivered again while a first run
    // still goes (a broker that gave up on the first) never shares a lease
    // with it; what a dead run held is taken once its lease has expired.
    let owner = Uuid::new_v4();
    let (tx, rx) = mpsc::unbounded_channel::<CampaignItem>();
    let mut page = Page {
        deps,
        provider: provider.cloned(),
        can_refresh: deps.catalogue.refreshes(job.provider.as_str()),
        expiring_before: campaign.expiring_before,
        budgets,
        owner,
        watch: Watch::new(id, deps.campaigns.heartbeat),
        writer: tokio::spawn(write_outcomes(
            deps.clone(),
            id,
            owner,
            job.provider.as_str().to_owned(),
            rx,
        )),
        tx,
    };
    tracing::debug!(job_id = %job_id, owner = %page.owner, page = job.page, "campaign page");
    let pending = stored(|| deps.store.find_page_items(id, job.page)).await?;
    let mut busy = Vec::new();
    let mut stopped = false;
    for ids in pending.chunks(chunk) {
        if deps.is_stopping() {
            stopped = true;
            break;
        }
        match page.chunk(ids, true).await? {
            Some(held) => busy.extend(held),
            None => {
                stopped = true;
                break;
            }
        }
    }
    // Held by another refresher: looked at again until it is done (then,
    // refreshed by it, skipped), for two leases' time; then left to a
    // later run (no outcome written; a removed link is skipped).
    let busy_until = now_ms().saturating_add(deps.policy.refresh_lease_ms.saturating_mul(2));
    while !stopped && !busy.is_empty() {
        if deps.is_stopping() {
            stopped = true;
            break;
        }
        if now_ms() >= busy_until {
            for account_id in busy {
                let found = stored(|| deps.store.find_stored_account(account_id)).await?;
                if found.is_none() {
                    page.send(item(account_id, ItemOutcome::Skipped, None));
                }
            }
            break;
        }
        if !page
            .watch
            .sleep_until(deps, tokio::time::Instant::now() + BUSY_STEP)
            .await?
        {
            stopped = true;
            break;
        }
        let mut still = Vec::new();
        for ids in busy.chunks(chunk) {
            match page.chunk(ids, false).await? {
                Some(held) => still.extend(held),
                None => {
                    stopped = true;
                    break;
                }
            }
        }
        busy = still;
    }
    let Page { writer, tx, .. } = page;
    drop(tx);
    let handled = writer
        .await
        .map_err(|e| WorkerError::Internal(format!("campaign writer: {e}")))??;
    let interrupted = stopped && deps.is_stopping();
    if stopped {
        tracing::info!(campaign = %id, page = job.page, interrupted, "campaign page stopped");
    }
    Ok((handled, interrupted))
}

/// One run of a page: what its chunks share.
struct Page<'a> {
    deps: &'a Deps,
    provider: Option<Arc<socialauth_common::catalogue::ProviderConfig>>,
    can_refresh: bool,
    expiring_before: i64,
    budgets: Vec<Budget>,
    owner: Uuid,
    watch: Watch,
    writer: tokio::task::JoinHandle<Result<u64, WorkerError>>,
    tx: mpsc::UnboundedSender<CampaignItem>,
}

impl Page<'_> {
    fn send(&self, item: CampaignItem) {
        let _ = self.tx.send(item);
    }

    /// Calls for the accounts `ids` (a chunk): `Some` of the ones another
    /// refresher holds; `None`: the page stops (cancelled, or its writer is
    /// gone).
    ///
    /// `reserve_first`: the chunk's places in the budgets are reserved and
    /// waited for before its leases are taken (a lease is never held
    /// through a wait); a chunk looked at again — the few accounts held
    /// the first time — takes its leases first and reserves places for
    /// the calls it will make only, so held accounts spend no budget.
    async fn chunk(
        &mut self,
        ids: &[i64],
        reserve_first: bool,
    ) -> Result<Option<Vec<i64>>, WorkerError> {
        let deps = self.deps;
        if self.writer.is_finished() || !self.watch.still_running(deps).await? {
            return Ok(None);
        }
        // While the provider's breaker is open its calls fail at once: the
        // page waits for it rather than fail its accounts.
        while let Some(wait) = self
            .provider
            .as_ref()
            .and_then(|p| deps.providers.paused_for(p))
        {
            let until = tokio::time::Instant::now()
                + wait.clamp(Duration::from_millis(100), Duration::from_secs(1));
            if deps.is_stopping() || !self.watch.sleep_until(deps, until).await? {
                return Ok(None);
            }
        }
        let mut slots = Vec::new();
        if reserve_first {
            slots = reserve(deps, &self.budgets, ids.len()).await?;
            if let Some(first) = slots.first().copied().flatten()
                && !self.watch.sleep_until(deps, first).await?
            {
                return Ok(None);
            }
        }
        let Ok(mut permits) = deps
            .campaigns
            .slots
            .clone()
            .acquire_many_owned(ids.len() as u32)
            .await
        else {
            return Err(WorkerError::Internal("campaign slots closed".into()));
        };
        let now = now_ms();
        let until = now.saturating_add(deps.policy.refresh_lease_ms);
        let owner = self.owner;
        let leased = stored(|| deps.store.take_refresh_leases(ids, owner, now, until)).await?;
        let mut leased: HashMap<i64, StoredAccount> =
            leased.into_iter().map(|s| (s.account.id, s)).collect();
        let min_validity = self.expiring_before.saturating_sub(now);
        let mut held = Vec::new();
        let mut due = Vec::new();
        for (index, account_id) in ids.iter().enumerate() {
            let Some(stored) = leased.remove(account_id) else {
                held.push(*account_id);
                continue;
            };
            match refresh::next_step(&stored, now, false, min_validity, self.can_refresh) {
                Step::Refresh => due.push((index, stored)),
                // Fresh (refreshed meanwhile), waiting for its user, or no
                // longer refreshable: nothing for the campaign.
                Step::Hand | Step::Refuse(_) => {
                    self.send(item(*account_id, ItemOutcome::Skipped, None));
                }
            }
        }
        if !reserve_first {
            let places = reserve(deps, &self.budgets, due.len()).await?;
            slots = vec![None; ids.len()];
            for ((index, _), at) in due.iter().zip(places) {
                slots[*index] = at;
            }
        }
        for (index, stored) in due {
            if let Some(at) = slots.get(index).copied().flatten() {
                tokio::time::sleep_until(at).await;
            }
            let Some(permit) = permits.split(1) else {
                return Err(WorkerError::Internal("campaign slots miscounted".into()));
            };
            if self.writer.is_finished() {
                // Nobody would store its tokens: no call (its lease, and
                // those of the rest of the chunk, run out; the page fails
                // with the writer's error).
                return Ok(None);
            }
            let deps = deps.clone();
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(refresh_one(&deps, stored).await);
                drop(permit);
            });
        }
        Ok(Some(held))
    }
}

fn item(
    account_id: i64,
    outcome: ItemOutcome,
    tokens: Option<socialauth_common::store::SealedTokens>,
) -> CampaignItem {
    CampaignItem {
        account_id,
        outcome,
        tokens,
    }
}

/// One leased account refreshed at the provider: its outcome.
async fn refresh_one(deps: &Deps, leased: StoredAccount) -> CampaignItem {
    let account_id = leased.account.id;
    match refresh::grant(deps, &leased).await {
        Ok(Grant::Tokens { sealed, .. }) => item(account_id, ItemOutcome::Refreshed, Some(sealed)),
        Ok(Grant::Replaced) => item(account_id, ItemOutcome::Skipped, None),
        Ok(Grant::Refused) => item(account_id, ItemOutcome::NeedsReauth, None),
        Ok(Grant::Failed(e)) => {
            if !matches!(e, WorkerError::Job(_)) {
                warn!(account_id, error = %e, "a campaign refresh failed");
            }
            item(account_id, ItemOutcome::Failed, None)
        }
        Err(e) => {
            warn!(account_id, error = %e, "a campaign refresh could not be checked");
            item(account_id, ItemOutcome::Failed, None)
        }
    }
}

/// When each of `n` refresh calls may be made: within every budget, the
/// latest of its slots (`None`: at once, no budget).
async fn reserve(
    deps: &Deps,
    budgets: &[Budget],
    n: usize,
) -> Result<Vec<Option<tokio::time::Instant>>, WorkerError> {
    if budgets.is_empty() || n == 0 {
        return Ok(vec![None; n]);
    }
    let mut at = vec![i64::MIN; n];
    for budget in budgets {
        let now_us = now_ms().saturating_mul(1000);
        let span = budget.interval_us.saturating_mul(n as i64);
        let start = stored(|| deps.store.reserve_rate(&budget.key, span, now_us)).await?;
        for (k, slot) in at.iter_mut().enumerate() {
            *slot = (*slot).max(start.saturating_add(budget.interval_us.saturating_mul(k as i64)));
        }
    }
    // From the wall clock (shared by every process) to this process's.
    let now_us = now_ms().saturating_mul(1000);
    let base = tokio::time::Instant::now();
    Ok(at
        .into_iter()
        .map(|slot| {
            let ahead = u64::try_from(slot.saturating_sub(now_us)).unwrap_or(0);
            Some(base + Duration::from_micros(ahead))
        })
        .collect())
}

/// Whether the campaign still runs, looked up at most every
/// [`STATUS_EVERY`]; while it runs, its `updated_at` is moved at least
/// every `every` (a page waiting on a budget keeps its campaign from
/// looking stalled).
struct Watch {
    id: Uuid,
    last: Option<Instant>,
    beat: Instant,
    every: Duration,
}

impl Watch {
    fn new(id: Uuid, every: Duration) -> Self {
        Self {
            id,
            last: None,
            beat: Instant::now(),
            every,
        }
    }

    async fn still_running(&mut self, deps: &Deps) -> Result<bool, WorkerError> {
        if self.last.is_some_and(|t| t.elapsed() < STATUS_EVERY) {
            return Ok(true);
        }
        self.last = Some(Instant::now());
        let Some(c) = running(deps, self.id).await? else {
            return Ok(false);
        };
        if self.beat.elapsed() >= self.every {
            self.beat = Instant::now();
            stored(|| deps.store.touch_campaign(c.id, c.updated_at, now_ms())).await?;
        }
        Ok(true)
    }

    /// Sleeps until `at`, looking at the campaign meanwhile; false: it was
    /// cancelled (or ended).
    async fn sleep_until(
        &mut self,
        deps: &Deps,
        at: tokio::time::Instant,
    ) -> Result<bool, WorkerError> {
        loop {
            let now = tokio::time::Instant::now();
            if now >= at {
                return Ok(true);
            }
            tokio::time::sleep((at - now).min(STATUS_EVERY)).await;
            // A worker shutting down does not wait out a slow budget.
            if deps.is_stopping() || !self.still_running(deps).await? {
                return Ok(false);
            }
        }
    }
}

/// Writes outcomes as they come, together (one transaction per batch):
/// refreshed tokens are stored within milliseconds of the provider's
/// answer. The number of accounts this page handled.
async fn write_outcomes(
    deps: Deps,
    id: Uuid,
    owner: Uuid,
    provider: String,
    mut rx: mpsc::UnboundedReceiver<CampaignItem>,
) -> Result<u64, WorkerError> {
    let mut handled = 0;
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while rx.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        // Tokens in hand are worth a long wait for the database; a batch
        // the database refuses is written item by item, so one bad item
        // costs only its own outcome (left unwritten, its lease runs out).
        let write = |items: &[CampaignItem]| {
            let items = items.to_vec();
            let deps = &deps;
            move || {
                let items = items.clone();
                async move {
                    deps.store
                        .finish_campaign_items(id, owner, &items, now_ms())
                        .await
                }
            }
        };
        let counts = match write(&batch)
            .retry(patient())
            .when(StoreError::is_transient)
            .await
        {
            Ok(counts) => counts,
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => {
                warn!(campaign = %id, error = %e, "a batch of outcomes was refused: writing them one by one");
                let mut counts = socialauth_common::store::CampaignCounts::default();
                for one in batch.chunks(1) {
                    match write(one)
                        .retry(patient())
                        .when(StoreError::is_transient)
                        .await
                    {
                        Ok(c) => {
                            counts.refreshed += c.refreshed;
                            counts.failed += c.failed;
                            counts.needs_reauth += c.needs_reauth;
                            counts.skipped += c.skipped;
                        }
                        Err(e) if e.is_transient() => return Err(e.into()),
                        Err(e) => {
                            warn!(campaign = %id, account_id = one[0].account_id, error = %e, "an outcome was refused");
                        }
                    }
                }
                counts
            }
        };
        for (outcome, n) in [
            (ItemOutcome::Refreshed, counts.refreshed),
            (ItemOutcome::Failed, counts.failed),
            (ItemOutcome::NeedsReauth, counts.needs_reauth),
            (ItemOutcome::Skipped, counts.skipped),
        ] {
            if n > 0 {
                metrics::counter!(
                    "socialauth_campaign_accounts_total",
                    "provider" => provider.clone(),
                    "outcome" => outcome.as_str()
                )
                .increment(n as u64);
            }
        }
        handled += batch.len() as u64;
        batch.clear();
    }
    Ok(handled)
}

/// Running campaigns with nothing written for longer than `stall_ms` (all
/// of them, at 0) are planned again, their unfinished pages published
/// again: one process takes each on ([`Store::touch_campaign`]). Running
/// pages move `updated_at` at least every third of the threshold (30 s at
/// most), waiting ones included; pages waiting in the queue do not.
/// Work already done is not done again (outcomes are written once). The
/// number revived.
///
/// [`Store::touch_campaign`]: socialauth_common::store::Store::touch_campaign
pub async fn revive(deps: &Deps, stall_ms: i64) -> usize {
    let now = now_ms();
    let mut revived = 0;
    for c in &stalled(deps, now.saturating_sub(stall_ms)).await {
        if take_on(deps, c, now).await {
            revived += 1;
        }
    }
    revived
}

/// At the start of a process that runs alone on its database (the
/// embedded default), every running campaign belongs to a process that
/// stopped: each is planned again. One the stopped process still writes
/// to (it is being killed while this one starts) is looked at again every
/// second until it is taken on: until `window` has passed without a write
/// to it, or [`REVIVE_PATIENCE`] in all (then the stall watch takes over).
/// The number revived.
pub async fn revive_at_start(deps: &Deps, window: Duration) -> usize {
    let started = Instant::now();
    let mut until = started + window;
    let mut taken: std::collections::HashSet<Uuid> = std::collections::HashSet::new();
    // Only what was running at the start: a campaign started since is
    // this process's own.
    let mut running: Option<std::collections::HashSet<Uuid>> = None;
    loop {
        let now = now_ms();
        let mut missed = false;
        let found = stalled(deps, now).await;
        let running = running.get_or_insert_with(|| found.iter().map(|c| c.id).collect());
        for c in found {
            if taken.contains(&c.id) || !running.contains(&c.id) {
                continue;
            }
            if take_on(deps, &c, now).await {
                taken.insert(c.id);
            } else {
                missed = true;
            }
        }
        // Written to since it was read: the stopping process is still at
        // it (a slow start may outlast the first window). Wait a window
        // past the last such write, at most `REVIVE_PATIENCE` in all.
        if missed {
            until = until
                .max(Instant::now() + window)
                .min(started + REVIVE_PATIENCE);
        }
        if !missed || Instant::now() >= until {
            return taken.len();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Running campaigns with nothing written since `before` (none when the
/// store cannot say).
async fn stalled(deps: &Deps, before: i64) -> Vec<Campaign> {
    match deps.store.find_stalled_campaigns(before, REVIVE_LOOK).await {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "could not look for stalled campaigns");
            Vec::new()
        }
    }
}

/// Takes on `c` (compare-and-set on its `updated_at`) and plans it again;
/// false when another process wrote to it since it was read, or it could
/// not be published.
async fn take_on(deps: &Deps, c: &Campaign, now: i64) -> bool {
    let Some(publisher) = deps.publisher.as_ref() else {
        return false;
    };
    match deps.store.touch_campaign(c.id, c.updated_at, now).await {
        Ok(true) => {}
        Ok(false) => return false,
        Err(e) => {
            warn!(campaign = %c.id, error = %e, "could not take on a stalled campaign");
            return false;
        }
    }
    let job = Job::CampaignPlan(CampaignPlanJob {
        campaign_id: c.id,
        republish: true,
    });
    match publisher.submit(&JobEnvelope::new(job, None)).await {
        Ok(_) => {
            tracing::info!(campaign = %c.id, "a stalled campaign is planned again");
            metrics::counter!("socialauth_campaigns_revived_total").increment(1);
            true
        }
        Err(e) => {
            warn!(campaign = %c.id, error = %e, "could not revive a campaign");
            false
        }
    }
}

/// [`revive`] every quarter of `stall` (at most every minute, with
/// jitter), until `stop`.
pub async fn watch_stalls(
    deps: Arc<Deps>,
    stall: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let every = (stall / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
    loop {
        let jitter = every.mul_f64(rand::random::<f64>() / 2.0);
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(every + jitter) => {}
        }
        revive(&deps, i64::try_from(stall.as_millis()).unwrap_or(i64::MAX)).await;
    }
}
