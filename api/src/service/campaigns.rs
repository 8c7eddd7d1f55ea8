//! Refresh campaigns (admin key): start, look at, list, cancel. The api
//! records the campaign and publishes its planning job; workers plan it in
//! pages and refresh each page ([`socialauth_worker::campaign`]).

use crate::error::ApiError;
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use socialauth_common::jobs::{CampaignPlanJob, Job, JobEnvelope};
use socialauth_common::now_ms;
use socialauth_common::queue::JobQueue;
use socialauth_common::store::{Campaign, CampaignStatus, NewCampaign};
use std::collections::BTreeMap;
use tracing::warn;
use utoipa::ToSchema;
use uuid::Uuid;

/// At most ten years ahead.
const MAX_WITHIN_SECS: i64 = 10 * 365 * 24 * 3600;
/// Campaigns a list shows.
const LIST_LIMIT: u32 = 50;
/// Refresh calls a second a campaign may ask for: one every 100 s at the
/// least (slower pages would hold their slots for days).
const MIN_RATE: f64 = 0.01;
const MAX_RATE: f64 = 1_000_000.0;

/// A JSON number, or a form's text of one (finite).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|n| n.is_finite())
}

/// A JSON integer, or a form's text of one.
fn whole_number(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}

/// `POST /admin/refresh-campaigns`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct StartCampaign {
    /// Only this provider's accounts (default: every provider whose tokens
    /// are refreshed).
    #[schema(value_type = Option<String>)]
    pub provider: Option<Value>,
    /// Accounts whose access tokens expire within this many seconds from
    /// now (or have expired) are refreshed.
    #[schema(value_type = i64)]
    pub expiring_within_seconds: Option<Value>,
    /// Refresh calls a second, all workers together (default: as fast as
    /// the workers go, within each provider's own budget).
    #[schema(value_type = Option<f64>)]
    pub rate_per_second: Option<Value>,
}

/// A campaign as the operator sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CampaignView {
    #[schema(value_type = String)]
    pub id: Uuid,
    /// `running`, `done` or `cancelled`.
    pub status: String,
    pub provider: Option<String>,
    /// The providers covered.
    pub providers: Vec<String>,
    pub expiring_within_seconds: i64,
    /// Accounts whose tokens expire before this (ms since the epoch).
    pub expiring_before: i64,
    pub rate_per_second: Option<f64>,
    /// Every account covered has been found (`total` is final).
    pub planned: bool,
    /// Accounts covered.
    pub total: i64,
    pub refreshed: i64,
    /// The provider could not be reached or failed.
    pub failed: i64,
    /// The provider refused the refresh token: the link waits for its user.
    pub needs_reauth: i64,
    /// Nothing to do (refreshed meanwhile, removed, no longer refreshable).
    pub skipped: i64,
    pub remaining: i64,
    /// Accounts handled a second, from the start to the end (or now).
    pub rate: f64,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

impl CampaignView {
    pub fn new(c: &Campaign, now: i64) -> Self {
        let end = c.finished_at.unwrap_or(now);
        let seconds = (end.saturating_sub(c.created_at)) as f64 / 1000.0;
        let handled = c.counts.handled();
        let rate = if seconds > 0.0 {
            (handled as f64 / seconds * 10.0).round() / 10.0
        } else {
            0.0
        };
        Self {
            id: c.id,
            status: c.status.as_str().to_owned(),
            provider: c.provider.clone(),
            providers: c.providers.clone(),
            expiring_within_seconds: c.expiring_within_secs,
            expiring_before: c.expiring_before,
            rate_per_second: c.rate_per_second,
            planned: c.planned,
            total: c.total,
            refreshed: c.counts.refreshed,
            failed: c.counts.failed,
            needs_reauth: c.counts.needs_reauth,
            skipped: c.counts.skipped,
            remaining: c.remaining(),
            rate,
            created_at: c.created_at,
            finished_at: c.finished_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignList {
    /// The newest first.
    pub results: Vec<CampaignView>,
}

/// The request, checked: every field's problems at once.
struct Checked {
    provider: Option<String>,
    providers: Vec<String>,
    within_secs: i64,
    rate: Option<f64>,
}

fn check(state: &AppState, body: &StartCampaign) -> Result<Checked, ApiError> {
    let mut errors: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let refreshable = |name: &str| state.catalogue.refreshes(name);
    let provider = match &body.provider {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) if refreshable(name) => Some(name.clone()),
        Some(Value::String(_)) => {
            errors.insert(
                "provider",
                vec!["Not a configured provider whose tokens are refreshed.".into()],
            );
            None
        }
        Some(_) => {
            errors.insert("provider", vec!["Not a valid string.".into()]);
            None
        }
    };
    let within_secs = match &body.expiring_within_seconds {
        None | Some(Value::Null) => {
            errors.insert(
                "expiring_within_seconds",
                vec![crate::error::REQUIRED.into()],
            );
            0
        }
        Some(v) => match whole_number(v) {
            Some(s) if (0..=MAX_WITHIN_SECS).contains(&s) => s,
            _ => {
                errors.insert(
                    "expiring_within_seconds",
                    vec![format!(
                        "A whole number of seconds from 0 to {MAX_WITHIN_SECS}."
                    )],
                );
                0
            }
        },
    };
    let rate = match &body.rate_per_second {
        None | Some(Value::Null) => None,
        Some(v) => match number(v) {
            Some(r) if (MIN_RATE..=MAX_RATE).contains(&r) => Some(r),
            _ => {
                errors.insert(
                    "rate_per_second",
                    vec![format!("A number from {MIN_RATE} to {MAX_RATE}.")],
                );
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::Fields(errors));
    }
    let providers = match &provider {
        Some(p) => vec![p.clone()],
        None => state
            .catalogue
            .names()
            .filter(|n| refreshable(n))
            .map(str::to_owned)
            .collect(),
    };
    Ok(Checked {
        provider,
        providers,
        within_secs,
        rate,
    })
}

/// `POST /admin/refresh-campaigns`: records the campaign and publishes its
/// planning; a queue that does not take it leaves the campaign cancelled.
pub async fn start(state: &AppState, body: StartCampaign) -> Result<CampaignView, ApiError> {
    let checked = check(state, &body)?;
    let now = now_ms();
    let campaign = state
        .store
        .insert_campaign(&NewCampaign {
            id: Uuid::new_v4(),
            provider: checked.provider,
            providers: checked.providers,
            expiring_within_secs: checked.within_secs,
            expiring_before: now.saturating_add(checked.within_secs.saturating_mul(1000)),
            rate_per_second: checked.rate,
            created_at: now,
        })
        .await?;
    if let Err(e) = publish_plan(state.queue.as_ref(), campaign.id, false).await {
        if let Err(e) = state.store.cancel_campaign(campaign.id, now_ms()).await {
            warn!(error = %e, "could not cancel a campaign that was never planned");
        }
        return Err(e.into());
    }
    metrics::counter!("socialauth_campaigns_started_total").increment(1);
    Ok(CampaignView::new(&campaign, now_ms()))
}

async fn publish_plan(
    queue: &dyn JobQueue,
    campaign_id: Uuid,
    republish: bool,
) -> Result<(), socialauth_common::queue::QueueError> {
    let job = Job::CampaignPlan(CampaignPlanJob {
        campaign_id,
        republish,
    });
    // Nobody waits for the planning's reply.
    queue.submit(&JobEnvelope::new(job, None)).await.map(drop)
}

fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound)
}

/// `GET /admin/refresh-campaigns/{id}`.
pub async fn status(state: &AppState, raw_id: &str) -> Result<CampaignView, ApiError> {
    let campaign = state
        .store
        .find_campaign(parse_id(raw_id)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(CampaignView::new(&campaign, now_ms()))
}

/// `GET /admin/refresh-campaigns`.
pub async fn list(state: &AppState) -> Result<CampaignList, ApiError> {
    let now = now_ms();
    let campaigns = state.store.list_campaigns(LIST_LIMIT).await?;
    Ok(CampaignList {
        results: campaigns
            .iter()
            .map(|c| CampaignView::new(c, now))
            .collect(),
    })
}

/// `DELETE /admin/refresh-campaigns/{id}`: stops a running campaign (pages
/// stop within a fraction of a second; what was done stays counted); one
/// that has ended is a 409.
pub async fn cancel(state: &AppState, raw_id: &str) -> Result<CampaignView, ApiError> {
    let id = parse_id(raw_id)?;
    let cancelled = state.store.cancel_campaign(id, now_ms()).await?;
    let campaign = state
        .store
        .find_campaign(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if !cancelled && campaign.status != CampaignStatus::Cancelled {
        return Err(ApiError::Conflict("campaign_not_running"));
    }
    Ok(CampaignView::new(&campaign, now_ms()))
}

/// Campaign progress as gauges, read from the database at each scrape (it
/// is shared by every process): `socialauth_campaign_accounts{campaign,
/// state}` for the newest campaigns, and how many are running.
pub async fn export_progress(state: &AppState) {
    // A slow database never holds a scrape for long.
    let listed = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        state.store.list_campaigns(LIST_LIMIT),
    )
    .await;
    let Ok(Ok(campaigns)) = listed else {
        return;
    };
    let running = campaigns
        .iter()
        .filter(|c| c.status == CampaignStatus::Running)
        .count();
    metrics::gauge!("socialauth_campaigns_running").set(running as f64);
    for c in &campaigns {
        let id = c.id.to_string();
        for (what, n) in [
            ("total", c.total),
            ("refreshed", c.counts.refreshed),
            ("failed", c.counts.failed),
            ("needs_reauth", c.counts.needs_reauth),
            ("skipped", c.counts.skipped),
            ("remaining", c.remaining()),
        ] {
            metrics::gauge!("socialauth_campaign_accounts", "campaign" => id.clone(), "state" => what)
                .set(n as f64);
        }
    }
}
