//! `oauth1_request_tokens`, `partial_logins`, `login_codes`: short-lived
//! state of unfinished logins, each consumed at most once.

use super::base::SqlRow;
use super::{OAuth1RequestToken, PartialLogin, StoreError, UserId};

pub(super) const INSERT_REQUEST_TOKEN: &str = "INSERT INTO oauth1_request_tokens \
     (oauth_token, provider, token_secret_enc, token_key_id, redirect_uri, created_at, expires_at, \
      user_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Consumed in one statement; expired rows are consumed and returned too.
pub(super) const TAKE_REQUEST_TOKEN: &str = "UPDATE oauth1_request_tokens SET consumed_at = $2 \
     WHERE oauth_token = $1 AND consumed_at IS NULL \
     RETURNING provider, token_secret_enc, token_key_id, redirect_uri, expires_at, user_id";

pub(super) fn request_token_from_row(row: &impl SqlRow) -> Result<OAuth1RequestToken, StoreError> {
    Ok(OAuth1RequestToken {
        provider: row.text("provider")?,
        token_secret_enc: row.text("token_secret_enc")?,
        token_key_id: row.text("token_key_id")?,
        redirect_uri: row.text("redirect_uri")?,
        expires_at: row.int("expires_at")?,
        user_id: row.opt_int("user_id")?.map(UserId),
    })
}

/// A partial token derives from its job: the same job keeping it again (a
/// retry after a commit that looked lost) finds it kept.
pub(super) const INSERT_PARTIAL: &str = "INSERT INTO partial_logins \
     (token_hash, provider, data_enc, token_key_id, created_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (token_hash) DO NOTHING";

/// Read without consuming: a resume that fails (email taken, code unknown)
/// leaves the partial login usable; a resume that succeeds consumes it in
/// its own transaction.
pub(super) const FIND_PARTIAL: &str = "SELECT provider, data_enc, token_key_id FROM partial_logins \
     WHERE token_hash = $1 AND consumed_at IS NULL AND expires_at > $2";

pub(super) const CONSUME_PARTIAL: &str = "UPDATE partial_logins SET consumed_at = $2 \
     WHERE token_hash = $1 AND consumed_at IS NULL RETURNING token_hash";

pub(super) fn partial_from_row(row: &impl SqlRow) -> Result<PartialLogin, StoreError> {
    Ok(PartialLogin {
        provider: row.text("provider")?,
        data_enc: row.text("data_enc")?,
        token_key_id: row.text("token_key_id")?,
    })
}

/// Claims a code; an expired claim is taken over (the code is long dead by
/// then, so the provider will refuse it anyway).
pub(super) const CLAIM_LOGIN_CODE: &str = "INSERT INTO login_codes \
     (provider, code_hash, job_id, request_hash, created_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (provider, code_hash) DO UPDATE \
     SET job_id = excluded.job_id, request_hash = excluded.request_hash, \
         created_at = excluded.created_at, expires_at = excluded.expires_at \
     WHERE login_codes.expires_at <= excluded.created_at \
     RETURNING job_id";

/// Gives back the claim job $3 holds on a credential ($1 provider, $2
/// hash): nothing was spent with it.
pub(super) const RELEASE_LOGIN_CODE: &str = "DELETE FROM login_codes \
     WHERE provider = $1 AND code_hash = $2 AND job_id = $3 RETURNING job_id";

pub(super) const FIND_LOGIN_CODE: &str = "SELECT job_id, request_hash, created_at \
     FROM login_codes WHERE provider = $1 AND code_hash = $2";

/// [`CLAIM_LOGIN_CODE`] over rows instead of parameters: claims several
/// distinct codes in one statement, in a fixed order (so two writers never
/// wait on each other's rows crosswise), and returns the codes it claimed.
///
/// Its commit does not wait for the WAL flush (`synchronous_commit` off for
/// this statement's own transaction only). A claim matters only until the
/// login it precedes is written, and that write's commit waits for the
/// flush of everything before it in the WAL — the claim included. So a
/// crash can forget only the claims of logins that had not been written;
/// a code posted again after that reaches the provider, which refuses a
/// code it already redeemed. Nothing is issued twice.
pub(super) const CLAIM_LOGIN_CODES_PG: &str = "INSERT INTO login_codes \
     (provider, code_hash, job_id, request_hash, created_at, expires_at) \
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], \
                          $6::bigint[]) AS i(provider, code_hash, job_id, request_hash, \
                                            created_at, expires_at) \
     WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL \
     ORDER BY provider, code_hash \
     ON CONFLICT (provider, code_hash) DO UPDATE \
     SET job_id = excluded.job_id, request_hash = excluded.request_hash, \
         created_at = excluded.created_at, expires_at = excluded.expires_at \
     WHERE login_codes.expires_at <= excluded.created_at \
     RETURNING provider, code_hash";

/// One statement at a time, for each backend (the PostgreSQL store's
/// batches fall back on these for a write made alone).
macro_rules! alone {
    ($db:ty) => {
        use super::*;
        use crate::redemption::FirstUse;
        use crate::store::base::map_err;
        use crate::store::{CodeClaim, CodeClaimed};
        use uuid::Uuid;
        /// Claims one code: [`CLAIM_LOGIN_CODE`](super::CLAIM_LOGIN_CODE), then, when
        /// it was already claimed, who holds it.
        pub(in crate::store) async fn claim_code_alone(
            pool: &sqlx::Pool<$db>,
            c: &CodeClaim<'_>,
        ) -> Result<CodeClaimed, StoreError> {
            let inserted = sqlx::query(CLAIM_LOGIN_CODE)
                .bind(c.provider)
                .bind(c.code_hash)
                .bind(c.job_id.to_string())
                .bind(c.request_hash)
                .bind(c.now)
                .bind(c.expires_at)
                .fetch_optional(pool)
                .await
                .map_err(map_err)?;
            if inserted.is_some() {
                return Ok(CodeClaimed::Claimed);
            }
            let row = sqlx::query(FIND_LOGIN_CODE)
                .bind(c.provider)
                .bind(c.code_hash)
                .fetch_optional(pool)
                .await
                .map_err(map_err)?;
            let Some(row) = row else {
                return Ok(CodeClaimed::Claimed);
            };
            let raw = row.text("job_id")?;
            let holder = Uuid::parse_str(&raw).map_err(|e| StoreError::Decode(e.to_string()))?;
            Ok(if holder == c.job_id {
                CodeClaimed::Claimed
            } else {
                CodeClaimed::Held(FirstUse {
                    job_id: holder,
                    at: row.int("created_at")?,
                    same_request: row.text("request_hash")? == c.request_hash,
                })
            })
        }
    };
}

pub(super) mod pg {
    alone!(sqlx::Postgres);
}

pub(super) mod sqlite {
    alone!(sqlx::Sqlite);
}
