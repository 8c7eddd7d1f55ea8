//! Code claims made together on PostgreSQL ([`super::group_commit`]): a
//! batch of distinct codes is one statement, [`CLAIM_LOGIN_CODES_PG`]. A
//! code it did not claim (another job holds it) is then claimed alone, which
//! says who holds it; so is every code of a batch the server refused.

use super::group_commit::Together;
use super::login_flows::CLAIM_LOGIN_CODES_PG;
use super::sql::{PgStore, SqlRow, map_err};
use super::{CodeClaim, CodeClaimed, StoreError};
use futures_util::future::join_all;
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

    async fn write(pool: &PgPool, rows: &[&ClaimRow]) -> Vec<Result<CodeClaimed, StoreError>> {
        claim_together(pool, rows).await
    }
}

async fn claim_alone(pool: &PgPool, row: &ClaimRow) -> Result<CodeClaimed, StoreError> {
    PgStore::claim_code_alone(pool, &row.claim()).await
}

/// Claims of distinct codes made together. Answers in their order.
pub(super) async fn claim_together(
    pool: &PgPool,
    rows: &[&ClaimRow],
) -> Vec<Result<CodeClaimed, StoreError>> {
    if let [row] = rows {
        return vec![claim_alone(pool, row).await];
    }
    fn col<T>(rows: &[&ClaimRow], f: impl Fn(&ClaimRow) -> T) -> Vec<T> {
        rows.iter().map(|r| f(r)).collect()
    }
    let claimed = sqlx::query(CLAIM_LOGIN_CODES_PG)
        .bind(col(rows, |r| r.provider.clone()))
        .bind(col(rows, |r| r.code_hash.clone()))
        .bind(col(rows, |r| r.job_id.to_string()))
        .bind(col(rows, |r| r.request_hash.clone()))
        .bind(col(rows, |r| r.now))
        .bind(col(rows, |r| r.expires_at))
        .fetch_all(pool)
        .await;
    let claimed: HashSet<(String, String)> = match claimed {
        Ok(found) => {
            let mut claimed = HashSet::with_capacity(found.len());
            for row in &found {
                match (row.text("provider"), row.text("code_hash")) {
                    (Ok(p), Ok(c)) => {
                        claimed.insert((p, c));
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        return rows.iter().map(|_| Err(e.clone())).collect();
                    }
                }
            }
            claimed
        }
        // Refused (nothing written): each code is claimed alone.
        Err(sqlx::Error::Database(_)) => HashSet::new(),
        // The connection was lost (perhaps after the commit) or none could
        // be had: each job tries again, and a claim it made is its own.
        Err(e) => {
            let e = map_err(e);
            return rows.iter().map(|_| Err(e.clone())).collect();
        }
    };
    let taken: Vec<bool> = rows
        .iter()
        .map(|r| claimed.contains(&(r.provider.clone(), r.code_hash.clone())))
        .collect();
    join_all(rows.iter().zip(taken).map(|(row, taken)| async move {
        if taken {
            Ok(CodeClaimed::Claimed)
        } else {
            claim_alone(pool, row).await
        }
    }))
    .await
}
