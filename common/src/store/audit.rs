//! `audit_events`: what happened to accounts (links made or refused,
//! automatic links, disconnects, addresses taken from accounts that only
//! typed them, …).

use super::base::SqlRow;
use super::{AuditEvent, StoreError, UserId};

pub(super) const INSERT: &str = "INSERT INTO audit_events \
     (at, kind, user_id, provider, outcome, detail, request_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Newest first, after the cursor ($3: events older than this id), by
/// user ($1) and provider ($2) when given; at most $4.
pub(super) const FIND: &str = "SELECT id, at, kind, user_id, provider, outcome, detail, request_id \
     FROM audit_events \
     WHERE (CAST($1 AS BIGINT) IS NULL OR user_id = $1) \
       AND (CAST($2 AS TEXT) IS NULL OR provider = $2) \
       AND (CAST($3 AS BIGINT) IS NULL OR id < $3) \
     ORDER BY id DESC LIMIT $4";

pub(super) fn from_row(row: &impl SqlRow) -> Result<AuditEvent, StoreError> {
    Ok(AuditEvent {
        id: row.int("id")?,
        at: row.int("at")?,
        kind: row.text("kind")?,
        user_id: row.opt_int("user_id")?.map(UserId),
        provider: row.opt_text("provider")?,
        outcome: row.text("outcome")?,
        detail: row.text("detail")?,
        request_id: row.opt_text("request_id")?,
    })
}
