//! Login states of the redirect flow, written and taken together on
//! PostgreSQL ([`super::group_commit`]): states that come in together are
//! one statement, [`oauth_states::INSERT_MANY_PG`]; takes that come in
//! together are one, [`oauth_states::TAKE_MANY_PG`]. A batch the server
//! refuses is written again state by state, so one state's failure is
//! never another's.

use super::group_commit::Together;
use super::oauth_states;
use super::sql::{PgStore, SqlRow, map_err};
use super::{NewOAuthState, OAuthState, StoreError};
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

    async fn write(pool: &PgPool, rows: &[&NewOAuthState]) -> Vec<Result<(), StoreError>> {
        if let [row] = rows {
            return vec![PgStore::insert_state_alone(pool, row).await];
        }
        fn col<T>(rows: &[&NewOAuthState], f: impl Fn(&NewOAuthState) -> T) -> Vec<T> {
            rows.iter().map(|r| f(r)).collect()
        }
        let inserted = sqlx::query(oauth_states::INSERT_MANY_PG)
            .bind(col(rows, |r| r.state_hash.clone()))
            .bind(col(rows, |r| r.provider.clone()))
            .bind(col(rows, |r| r.redirect_uri.clone()))
            .bind(col(rows, |r| r.pkce_verifier.clone()))
            .bind(col(rows, |r| r.nonce.clone()))
            .bind(col(rows, |r| r.created_at))
            .bind(col(rows, |r| r.expires_at))
            .execute(pool)
            .await;
        match inserted {
            Ok(_) => rows.iter().map(|_| Ok(())).collect(),
            Err(sqlx::Error::Database(_)) => {
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push(PgStore::insert_state_alone(pool, row).await);
                }
                out
            }
            Err(e) => {
                let e = map_err(e);
                rows.iter().map(|_| Err(e.clone())).collect()
            }
        }
    }
}

/// One take's parameters, owned.
pub(super) struct StateTake {
    state_hash: String,
    now: i64,
}

impl StateTake {
    pub(super) fn new(state_hash: &str, now: i64) -> Self {
        Self {
            state_hash: state_hash.to_owned(),
            now,
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

    async fn write(
        pool: &PgPool,
        rows: &[&StateTake],
    ) -> Vec<Result<Option<OAuthState>, StoreError>> {
        if let [row] = rows {
            return vec![PgStore::take_state_alone(pool, &row.state_hash, row.now).await];
        }
        let taken = sqlx::query(oauth_states::TAKE_MANY_PG)
            .bind(
                rows.iter()
                    .map(|r| r.state_hash.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(rows.iter().map(|r| r.now).collect::<Vec<_>>())
            .fetch_all(pool)
            .await;
        let found = match taken {
            Ok(found) => found,
            Err(sqlx::Error::Database(_)) => {
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push(PgStore::take_state_alone(pool, &row.state_hash, row.now).await);
                }
                return out;
            }
            Err(e) => {
                let e = map_err(e);
                return rows.iter().map(|_| Err(e.clone())).collect();
            }
        };
        let mut by_hash = HashMap::with_capacity(found.len());
        for row in &found {
            let state = row
                .text("state_hash")
                .and_then(|hash| Ok((hash, oauth_states::from_row(row)?)));
            match state {
                Ok((hash, state)) => {
                    by_hash.insert(hash, state);
                }
                Err(e) => return rows.iter().map(|_| Err(e.clone())).collect(),
            }
        }
        rows.iter()
            .map(|r| Ok(by_hash.remove(&r.state_hash)))
            .collect()
    }
}
