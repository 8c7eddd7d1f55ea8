//! Login states of the redirect flow, written and taken together on
//! PostgreSQL ([`super::group_commit`]): states that come in together are
//! one statement, [`oauth_states::INSERT_MANY_PG`]; takes that come in
//! together are one, [`oauth_states::TAKE_MANY_PG`].

use super::base::SqlRow;
use super::group_commit::{Together, column, text_bytes, unless_refused};
use super::oauth_states;
use super::{NewOAuthState, OAuthState, OAuthStateTake, StoreError};
use sqlx::postgres::PgPool;
use std::collections::HashMap;

/// New login states, inserted together: distinct hashes per batch.
pub(super) struct StateInserts;

impl Together for StateInserts {
    type Row = NewOAuthState;
    type Out = ();

    fn keys(row: &NewOAuthState) -> Vec<String> {
        vec![row.state_hash.clone()]
    }

    fn size(row: &NewOAuthState) -> usize {
        text_bytes([
            Some(&row.state_hash),
            Some(&row.provider),
            Some(&row.redirect_uri),
            row.pkce_verifier.as_ref(),
            row.nonce.as_ref(),
        ]) + 16
    }

    async fn write_one(pool: &PgPool, row: &NewOAuthState) -> Result<(), StoreError> {
        oauth_states::pg::insert_alone(pool, row).await
    }

    async fn write_many(
        pool: &PgPool,
        rows: &[&NewOAuthState],
    ) -> Result<Option<Vec<Option<()>>>, StoreError> {
        let inserted = sqlx::query(oauth_states::INSERT_MANY_PG)
            .bind(column(rows, |r| r.state_hash.clone()))
            .bind(column(rows, |r| r.provider.clone()))
            .bind(column(rows, |r| r.redirect_uri.clone()))
            .bind(column(rows, |r| r.pkce_verifier.clone()))
            .bind(column(rows, |r| r.nonce.clone()))
            .bind(column(rows, |r| r.created_at))
            .bind(column(rows, |r| r.expires_at))
            .bind(column(rows, |r| r.user_id.map(|u| u.0)))
            .execute(pool)
            .await;
        Ok(unless_refused(inserted)?.map(|_| rows.iter().map(|_| Some(())).collect()))
    }
}

/// One take's parameters, owned.
pub(super) struct StateTake {
    state_hash: String,
    now: i64,
    job_id: uuid::Uuid,
    code_hash: String,
}

impl StateTake {
    pub(super) fn new(take: &OAuthStateTake<'_>) -> Self {
        Self {
            state_hash: take.state_hash.to_owned(),
            now: take.now,
            job_id: take.job_id,
            code_hash: take.code_hash.to_owned(),
        }
    }

    pub(super) fn take(&self) -> OAuthStateTake<'_> {
        OAuthStateTake {
            state_hash: &self.state_hash,
            now: self.now,
            job_id: self.job_id,
            code_hash: &self.code_hash,
        }
    }
}

/// Takes of login states, made together: distinct hashes per batch, so of
/// two takes of one state only the first batch's gets it.
pub(super) struct StateTakes;

impl Together for StateTakes {
    type Row = StateTake;
    type Out = Option<OAuthState>;

    fn keys(row: &StateTake) -> Vec<String> {
        vec![row.state_hash.clone()]
    }

    fn size(row: &StateTake) -> usize {
        text_bytes([Some(&row.state_hash), Some(&row.code_hash)]) + 44
    }

    async fn write_one(pool: &PgPool, row: &StateTake) -> Result<Option<OAuthState>, StoreError> {
        oauth_states::pg::take_alone(pool, &row.take()).await
    }

    async fn write_many(
        pool: &PgPool,
        rows: &[&StateTake],
    ) -> Result<Option<Vec<Option<Option<OAuthState>>>>, StoreError> {
        let taken = sqlx::query(oauth_states::TAKE_MANY_PG)
            .bind(column(rows, |r| r.state_hash.clone()))
            .bind(column(rows, |r| r.now))
            .bind(column(rows, |r| r.job_id.to_string()))
            .bind(column(rows, |r| r.code_hash.clone()))
            .fetch_all(pool)
            .await;
        let Some(found) = unless_refused(taken)? else {
            return Ok(None);
        };
        let mut by_hash = HashMap::with_capacity(found.len());
        for row in &found {
            by_hash.insert(row.text("state_hash")?, oauth_states::from_row(row)?);
        }
        Ok(Some(
            rows.iter()
                .map(|r| Some(by_hash.remove(&r.state_hash)))
                .collect(),
        ))
    }
}
