//! Code claims made together on PostgreSQL ([`super::group_commit`]): a
//! batch of distinct codes is one statement, [`CLAIM_LOGIN_CODES_PG`],
//! committed without waiting for the WAL flush (why that is safe: its
//! documentation). A code it did not claim (another job holds it) is then
//! claimed alone, which says who holds it; so is every code of a batch the
//! server refused.

use super::base::SqlRow;
use super::group_commit::{Together, column, text_bytes, unless_refused};
use super::login_flows::{self, CLAIM_LOGIN_CODES_PG};
use super::{CodeClaim, CodeClaimed, StoreError};
use sqlx::postgres::PgPool;
use std::collections::HashSet;
use uuid::Uuid;

/// One claim's parameters, owned.
pub(super) struct ClaimRow {
    provider: String,
    code_hash: String,
    request_hash: String,
    job_id: Uuid,
    now: i64,
    expires_at: i64,
}

impl ClaimRow {
    pub(super) fn new(c: &CodeClaim<'_>) -> Self {
        Self {
            provider: c.provider.to_owned(),
            code_hash: c.code_hash.to_owned(),
            request_hash: c.request_hash.to_owned(),
            job_id: c.job_id,
            now: c.now,
            expires_at: c.expires_at,
        }
    }

    fn claim(&self) -> CodeClaim<'_> {
        CodeClaim {
            provider: &self.provider,
            code_hash: &self.code_hash,
            request_hash: &self.request_hash,
            job_id: self.job_id,
            now: self.now,
            expires_at: self.expires_at,
        }
    }
}

/// Code claims, made together: distinct codes per batch.
pub(super) struct CodeClaims;

impl Together for CodeClaims {
    type Row = ClaimRow;
    type Out = CodeClaimed;

    fn keys(row: &ClaimRow) -> Vec<String> {
        vec![format!("{}\0{}", row.provider, row.code_hash)]
    }

    fn size(row: &ClaimRow) -> usize {
        text_bytes([
            Some(&row.provider),
            Some(&row.code_hash),
            Some(&row.request_hash),
        ]) + 64
    }

    /// As a batch of one (its commit, like a batch's, does not wait for the
    /// flush); a code it did not claim, alone, which says who holds it.
    async fn write_one(pool: &PgPool, row: &ClaimRow) -> Result<CodeClaimed, StoreError> {
        match Self::write_many(pool, &[row]).await? {
            Some(claimed) if matches!(claimed.as_slice(), [Some(_)]) => Ok(CodeClaimed::Claimed),
            _ => login_flows::pg::claim_code_alone(pool, &row.claim()).await,
        }
    }

    /// A code the statement did not claim is held by another job: claimed
    /// alone, which says whose.
    async fn write_many(
        pool: &PgPool,
        rows: &[&ClaimRow],
    ) -> Result<Option<Vec<Option<CodeClaimed>>>, StoreError> {
        let claimed = sqlx::query(CLAIM_LOGIN_CODES_PG)
            .bind(column(rows, |r| r.provider.clone()))
            .bind(column(rows, |r| r.code_hash.clone()))
            .bind(column(rows, |r| r.job_id.to_string()))
            .bind(column(rows, |r| r.request_hash.clone()))
            .bind(column(rows, |r| r.now))
            .bind(column(rows, |r| r.expires_at))
            .fetch_all(pool)
            .await;
        let Some(found) = unless_refused(claimed)? else {
            return Ok(None);
        };
        let mut claimed = HashSet::with_capacity(found.len());
        for row in &found {
            claimed.insert((row.text("provider")?, row.text("code_hash")?));
        }
        Ok(Some(
            rows.iter()
                .map(|r| {
                    claimed
                        .contains(&(r.provider.clone(), r.code_hash.clone()))
                        .then_some(CodeClaimed::Claimed)
                })
                .collect(),
        ))
    }
}
