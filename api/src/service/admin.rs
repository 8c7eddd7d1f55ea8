//! The operator's calls (admin key): the audit log.

use crate::error::ApiError;
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use socialauth_common::store::{AuditEvent, AuditQuery};
use socialauth_common::types::UserId;
use utoipa::{IntoParams, ToSchema};

/// At most this many events per page; the default page is smaller.
pub const MAX_PAGE: u32 = 500;
const DEFAULT_PAGE: u32 = 50;

#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct AuditParams {
    /// Only this user's events.
    pub user_id: Option<i64>,
    /// Only this provider's events.
    pub provider: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Events per page (1–500, default 50).
    pub limit: Option<u32>,
}

/// `GET /admin/audit`: a page of events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub results: Vec<AuditEventView>,
    /// Pass as `cursor` for the next (older) page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    pub id: i64,
    /// Milliseconds since the epoch.
    pub at: i64,
    /// `account_linked`, `link_refused`, `automatic_link`, `disconnected`,
    /// `disconnect_refused`, `email_reclaimed`.
    pub kind: String,
    pub user_id: Option<i64>,
    pub provider: Option<String>,
    /// `linked`, `refused`, `done`.
    pub outcome: String,
    /// What the event is about (the identity's uid, the reason, …).
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub request_id: Option<String>,
}

impl From<AuditEvent> for AuditEventView {
    fn from(e: AuditEvent) -> Self {
        Self {
            id: e.id,
            at: e.at,
            kind: e.kind,
            user_id: e.user_id.map(|u| u.0),
            provider: e.provider,
            outcome: e.outcome,
            detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::Null),
            request_id: e.request_id,
        }
    }
}

pub async fn audit(state: &AppState, params: AuditParams) -> Result<AuditPage, ApiError> {
    let limit = match params.limit {
        None => DEFAULT_PAGE,
        Some(n) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::field(
                "limit",
                "Ensure this value is between 1 and 500.",
            ));
        }
    };
    let before = params
        .cursor
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| ApiError::field("cursor", "Invalid cursor."))
        })
        .transpose()?;
    // One more than asked: whether there is a next page.
    let query = AuditQuery {
        user_id: params.user_id.map(UserId),
        provider: params.provider.as_deref().filter(|p| !p.is_empty()),
        before,
        limit: limit + 1,
    };
    let mut events = state.store.find_audit_events(&query).await?;
    let more = events.len() > limit as usize;
    events.truncate(limit as usize);
    let next_cursor = more
        .then(|| events.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(AuditPage {
        results: events.into_iter().map(AuditEventView::from).collect(),
        next_cursor,
    })
}
