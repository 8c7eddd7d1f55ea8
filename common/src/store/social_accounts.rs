//! `social_accounts`: links between users and provider identities.

use super::base::SqlRow;
use super::{SealedTokens, StoreError, StoredAccount};
use crate::types::{SocialAccount, UserId};

/// The columns of a [`SocialAccount`]. A link made before `last_login_at`
/// was kept reads as last used when it was last updated.
macro_rules! account_columns {
    () => {
        "id, user_id, provider, uid, email, expires_at, needs_reauth, created_at, \
         COALESCE(last_login_at, updated_at) AS last_login_at"
    };
}
pub(super) use account_columns;

/// Every timestamp starts at `created_at` ($10): a link is made by a sign-in
/// or an association.
pub(super) const INSERT: &str = concat!(
    "INSERT INTO social_accounts \
     (user_id, provider, uid, email, extra_data, token_key_id, access_token_enc, \
      refresh_token_enc, expires_at, created_at, updated_at, last_login_at, token_secret_enc) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $10, $11) RETURNING ",
    account_columns!()
);

/// A sign-in through a known link: its tokens ($2 key id … $8), which make
/// it usable again (`needs_reauth` cleared) — or, without a key id (no
/// tokens at all), the stored ones kept as they are; only while the link
/// ($1) is still the user's ($7) and the user active.
pub(super) const UPDATE_TOKENS: &str = "UPDATE social_accounts \
     SET token_key_id = COALESCE($2, token_key_id), \
         access_token_enc = CASE WHEN $2 IS NULL THEN access_token_enc ELSE $3 END, \
         refresh_token_enc = CASE WHEN $2 IS NULL THEN refresh_token_enc ELSE $4 END, \
         expires_at = CASE WHEN $2 IS NULL THEN expires_at ELSE $5 END, \
         token_secret_enc = CASE WHEN $2 IS NULL THEN token_secret_enc ELSE $8 END, \
         needs_reauth = ($2 IS NULL AND needs_reauth), \
         updated_at = $6, last_login_at = $6 \
     WHERE id = $1 AND user_id = $7 \
       AND EXISTS (SELECT 1 FROM users u WHERE u.id = $7 AND u.is_active) RETURNING id";

pub(super) const FIND_BY_USER: &str = concat!(
    "SELECT ",
    account_columns!(),
    " FROM social_accounts WHERE user_id = $1 ORDER BY id"
);

/// A user's links with their sealed tokens (a disconnect revokes them).
pub(super) const FIND_WITH_TOKENS_BY_USER: &str = concat!(
    "SELECT ",
    account_columns!(),
    ", token_key_id, access_token_enc, refresh_token_enc, token_secret_enc \
     FROM social_accounts WHERE user_id = $1 ORDER BY id"
);

/// One link with its sealed tokens, by id.
pub(super) const FIND_WITH_TOKENS: &str = concat!(
    "SELECT ",
    account_columns!(),
    ", token_key_id, access_token_enc, refresh_token_enc, token_secret_enc \
     FROM social_accounts WHERE id = $1"
);

/// Takes the link's refresh lease ($1) for job $4 until $3, when nobody
/// holds it at $2; the link with its tokens as they are under the lease.
pub(super) const TAKE_REFRESH_LEASE: &str = concat!(
    "UPDATE social_accounts SET refresh_lease_until = $3, refresh_lease_owner = $4 \
     WHERE id = $1 AND (refresh_lease_until IS NULL OR refresh_lease_until <= $2) \
     RETURNING ",
    account_columns!(),
    ", token_key_id, access_token_enc, refresh_token_enc, token_secret_enc"
);

/// A refresh's new tokens ($3 key id, $4 access, $5 refresh, $6 expiry,
/// $8 token secret: every one under the one key id) at $7, while job $2
/// holds the link's ($1) lease, which it gives back: usable again.
pub(super) const FINISH_REFRESH: &str = "UPDATE social_accounts \
     SET token_key_id = $3, access_token_enc = $4, refresh_token_enc = $5, expires_at = $6, \
         token_secret_enc = $8, needs_reauth = false, updated_at = $7, \
         refresh_lease_until = NULL, refresh_lease_owner = NULL \
     WHERE id = $1 AND refresh_lease_owner = $2 RETURNING id";

/// Job $2 gives the link's ($1) lease back without new tokens; $3: the
/// provider refused the grant, so the link needs its user to sign in again.
pub(super) const END_REFRESH: &str = "UPDATE social_accounts \
     SET needs_reauth = (needs_reauth OR $3), \
         refresh_lease_until = NULL, refresh_lease_owner = NULL \
     WHERE id = $1 AND refresh_lease_owner = $2 RETURNING id";

/// Links due for a scheduled refresh: a refresh token, an access token
/// expiring between $1 and $2, usable, nobody refreshing it at $3; the
/// soonest first, at most $4.
pub(super) const FIND_REFRESH_DUE: &str = "SELECT id FROM social_accounts \
     WHERE refresh_token_enc IS NOT NULL AND expires_at >= $1 AND expires_at < $2 \
       AND NOT needs_reauth AND (refresh_lease_until IS NULL OR refresh_lease_until <= $3) \
     ORDER BY expires_at LIMIT $4";

/// Removes one link of the user ($2).
pub(super) const DELETE: &str = "DELETE FROM social_accounts WHERE id = $1 AND user_id = $2 \
     RETURNING id";

pub(super) fn stored_from_row(row: &impl SqlRow) -> Result<StoredAccount, StoreError> {
    Ok(StoredAccount {
        account: from_row(row)?,
        tokens: SealedTokens {
            key_id: row.opt_text("token_key_id")?,
            access_token: row.opt_text("access_token_enc")?,
            refresh_token: row.opt_text("refresh_token_enc")?,
            token_secret: row.opt_text("token_secret_enc")?,
            expires_at: row.opt_int("expires_at")?,
        },
    })
}

pub(super) fn from_row(row: &impl SqlRow) -> Result<SocialAccount, StoreError> {
    Ok(SocialAccount {
        id: row.int("id")?,
        user_id: UserId(row.int("user_id")?),
        provider: row.text("provider")?,
        uid: row.text("uid")?,
        email: row.opt_text("email")?,
        expires_at: row.opt_int("expires_at")?,
        needs_reauth: row.flag("needs_reauth")?,
        created_at: row.int("created_at")?,
        last_login_at: row.int("last_login_at")?,
    })
}
