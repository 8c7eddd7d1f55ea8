//! `oauth_states`: login states of the redirect flow, consumed once.

use super::base::SqlRow;
use super::{OAuthState, StoreError, TakenOAuthState, UserId};

pub(super) const INSERT: &str = "INSERT INTO oauth_states \
     (state_hash, provider, redirect_uri, pkce_verifier, nonce, created_at, expires_at, user_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Consumes in one statement, so of two concurrent takes only one gets the
/// row, and records who took it with which code ($3 job id, $4 code hash).
/// Expired rows are consumed and returned too: the caller tells "expired"
/// from "unknown or used". The same job taking it again (its first take's
/// answer was lost with its connection) gets it again, as first taken.
pub(super) const TAKE: &str = "UPDATE oauth_states \
     SET consumed_at = COALESCE(consumed_at, $2), consumed_by = $3, code_hash = $4 \
     WHERE state_hash = $1 AND (consumed_at IS NULL OR consumed_by = $3) \
     RETURNING provider, redirect_uri, pkce_verifier, nonce, expires_at, user_id";

/// Gives a taken state back when its job never reached the queue ($2 the
/// job id that took it): the client may send its code again.
pub(super) const RELEASE: &str = "UPDATE oauth_states \
     SET consumed_at = NULL, consumed_by = NULL, code_hash = NULL \
     WHERE state_hash = $1 AND consumed_by = $2";

/// A state already taken: by whom, when, with which code.
pub(super) const FIND_TAKEN: &str = "SELECT provider, consumed_at, consumed_by, code_hash, user_id \
     FROM oauth_states WHERE state_hash = $1 AND consumed_at IS NOT NULL";

/// A state not yet taken, read without taking it (a `form_post`
/// provider's answer is relayed to the client's redirect URI first).
pub(super) const FIND_OPEN: &str = "SELECT provider, redirect_uri, pkce_verifier, nonce, expires_at, user_id \
     FROM oauth_states WHERE state_hash = $1 AND consumed_at IS NULL";

/// [`INSERT`] over rows instead of parameters: several states in one
/// statement.
pub(super) const INSERT_MANY_PG: &str = "INSERT INTO oauth_states \
     (state_hash, provider, redirect_uri, pkce_verifier, nonce, created_at, expires_at, user_id) \
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                          $6::bigint[], $7::bigint[], $8::bigint[])";

/// [`TAKE`] over rows: takes several distinct states in one statement and
/// names each state it took. `= ANY ($1)` keeps the plan to index probes
/// whatever the table's statistics (see `logins::WRITE_LOGINS_PG`).
pub(super) const TAKE_MANY_PG: &str = "UPDATE oauth_states s \
     SET consumed_at = COALESCE(s.consumed_at, i.now), consumed_by = i.job_id, \
         code_hash = i.code_hash \
     FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) \
          AS i(state_hash, now, job_id, code_hash) \
     WHERE s.state_hash = ANY ($1) AND s.state_hash = i.state_hash \
       AND (s.consumed_at IS NULL OR s.consumed_by = i.job_id) \
     RETURNING s.state_hash, s.provider, s.redirect_uri, s.pkce_verifier, s.nonce, s.expires_at, \
               s.user_id";

pub(super) fn from_row(row: &impl SqlRow) -> Result<OAuthState, StoreError> {
    Ok(OAuthState {
        provider: row.text("provider")?,
        redirect_uri: row.text("redirect_uri")?,
        pkce_verifier: row.opt_text("pkce_verifier")?,
        nonce: row.opt_text("nonce")?,
        expires_at: row.int("expires_at")?,
        user_id: row.opt_int("user_id")?.map(UserId),
    })
}

pub(super) fn taken_from_row(row: &impl SqlRow) -> Result<TakenOAuthState, StoreError> {
    let raw = row.opt_text("consumed_by")?.unwrap_or_default();
    Ok(TakenOAuthState {
        provider: row.text("provider")?,
        taken_at: row.int("consumed_at")?,
        // A state taken before jobs were recorded: nobody to answer from.
        taken_by: uuid::Uuid::parse_str(&raw).ok(),
        code_hash: row.opt_text("code_hash")?,
        user_id: row.opt_int("user_id")?.map(UserId),
    })
}

/// One statement at a time, for each backend (the PostgreSQL store's
/// batches fall back on these for a write made alone).
macro_rules! alone {
    ($db:ty) => {
        use super::*;
        use crate::store::base::map_err;
        use crate::store::{NewOAuthState, OAuthStateTake};
        /// Inserts one login state: [`INSERT`](super::INSERT).
        pub(in crate::store) async fn insert_alone(
            pool: &sqlx::Pool<$db>,
            state: &NewOAuthState,
        ) -> Result<(), StoreError> {
            sqlx::query(INSERT)
                .bind(&state.state_hash)
                .bind(&state.provider)
                .bind(&state.redirect_uri)
                .bind(state.pkce_verifier.as_deref())
                .bind(state.nonce.as_deref())
                .bind(state.created_at)
                .bind(state.expires_at)
                .bind(state.user_id.map(|u| u.0))
                .execute(pool)
                .await
                .map_err(map_err)?;
            Ok(())
        }

        /// Takes one login state: [`TAKE`](super::TAKE).
        pub(in crate::store) async fn take_alone(
            pool: &sqlx::Pool<$db>,
            take: &OAuthStateTake<'_>,
        ) -> Result<Option<OAuthState>, StoreError> {
            let row = sqlx::query(TAKE)
                .bind(take.state_hash)
                .bind(take.now)
                .bind(take.job_id.to_string())
                .bind(take.code_hash)
                .fetch_optional(pool)
                .await
                .map_err(map_err)?;
            row.as_ref().map(from_row).transpose()
        }
    };
}

pub(super) mod pg {
    alone!(sqlx::Postgres);
}

pub(super) mod sqlite {
    alone!(sqlx::Sqlite);
}
