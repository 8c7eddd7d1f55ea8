//! Re-encryption of provider tokens (admin key): start, look at, list,
//! cancel. The api records it with its own current key as the key every
//! token moves to; workers whose current key that is work through it
//! ([`socialauth_worker::reencrypt`]).

use crate::error::ApiError;
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use socialauth_common::now_ms;
use socialauth_common::store::{Constraint, Reencryption, ReencryptionStatus, StoreError};
use utoipa::ToSchema;
use uuid::Uuid;

/// Re-encryptions a list shows, and the newest whose progress `/metrics`
/// exports.
const LIST_LIMIT: u32 = 20;

/// A re-encryption as the operator sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReencryptionView {
    #[schema(value_type = String)]
    pub id: Uuid,
    /// `running`, `done` or `cancelled`.
    pub status: String,
    /// The key every token moves to.
    pub key_id: String,
    /// Links due when a worker took it up (`null` until one has).
    pub total: Option<i64>,
    /// Links handled: `moved` + `changed` + `failed`.
    pub done: i64,
    /// Links whose tokens were sealed again.
    pub moved: i64,
    /// Links rewritten meanwhile by a refresh or a sign-in (under the
    /// current key already).
    pub changed: i64,
    /// Links whose tokens could not be opened with any configured key.
    pub failed: i64,
    /// Links still due: while running, `total` less `done`; once done, as
    /// counted at its end (0: every token is under `key_id` in the current
    /// format, and older keys may be dropped from the configuration).
    pub remaining: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

impl ReencryptionView {
    pub fn new(r: &Reencryption) -> Self {
        Self {
            id: r.id,
            status: r.status.as_str().to_owned(),
            key_id: r.key_id.clone(),
            total: r.total,
            done: r.done(),
            moved: r.moved,
            changed: r.changed,
            failed: r.failed,
            remaining: r.remaining(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReencryptionList {
    /// The newest first.
    pub results: Vec<ReencryptionView>,
}

/// `POST /admin/reencrypt`: records a re-encryption to this process's
/// current key; one running already is a 409.
pub async fn start(state: &AppState) -> Result<ReencryptionView, ApiError> {
    let key_id = &state.settings.security.encryption_key_id;
    let started = state
        .store
        .insert_reencryption(Uuid::new_v4(), key_id, now_ms())
        .await;
    match started {
        Ok(r) => {
            metrics::counter!("socialauth_reencryptions_started_total").increment(1);
            Ok(ReencryptionView::new(&r))
        }
        Err(StoreError::Conflict(Constraint::RunningReencryption)) => {
            Err(ApiError::Conflict("reencryption_running"))
        }
        Err(e) => Err(e.into()),
    }
}

fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound)
}

/// `GET /admin/reencrypt/{id}`.
pub async fn status(state: &AppState, raw_id: &str) -> Result<ReencryptionView, ApiError> {
    let found = state
        .store
        .find_reencryption(parse_id(raw_id)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(ReencryptionView::new(&found))
}

/// `GET /admin/reencrypt`.
pub async fn list(state: &AppState) -> Result<ReencryptionList, ApiError> {
    let listed = state.store.list_reencryptions(LIST_LIMIT).await?;
    Ok(ReencryptionList {
        results: listed.iter().map(ReencryptionView::new).collect(),
    })
}

/// `DELETE /admin/reencrypt/{id}`: stops a running re-encryption (its
/// worker stops at its next page; what was moved stays moved); one that
/// has ended is a 409.
pub async fn cancel(state: &AppState, raw_id: &str) -> Result<ReencryptionView, ApiError> {
    let id = parse_id(raw_id)?;
    let cancelled = state.store.cancel_reencryption(id, now_ms()).await?;
    let found = state
        .store
        .find_reencryption(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if !cancelled && found.status != ReencryptionStatus::Cancelled {
        return Err(ApiError::Conflict("reencryption_not_running"));
    }
    Ok(ReencryptionView::new(&found))
}

/// Re-encryption progress as gauges, read from the database at each
/// scrape (shared by every process): `socialauth_reencrypt_links{id,
/// state}` (total, moved, changed, failed, remaining) of the newest, and
/// `socialauth_reencryptions_running`.
pub async fn export_progress(state: &AppState) {
    // A slow database never holds a scrape for long.
    let listed = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        state.store.list_reencryptions(LIST_LIMIT),
    )
    .await;
    let Ok(Ok(listed)) = listed else {
        return;
    };
    let running = listed
        .iter()
        .filter(|r| r.status == ReencryptionStatus::Running)
        .count();
    metrics::gauge!("socialauth_reencryptions_running").set(running as f64);
    for r in &listed {
        let id = r.id.to_string();
        for (what, n) in [
            ("total", r.total),
            ("moved", Some(r.moved)),
            ("changed", Some(r.changed)),
            ("failed", Some(r.failed)),
            ("remaining", r.remaining()),
        ] {
            if let Some(n) = n {
                metrics::gauge!("socialauth_reencrypt_links", "id" => id.clone(), "state" => what)
                    .set(n as f64);
            }
        }
    }
}
