//! `social_accounts`: links between users and provider identities.

use super::StoreError;
use super::base::SqlRow;
use crate::types::{SocialAccount, UserId};

/// Both timestamps start at `created_at` ($10).
pub(super) const INSERT: &str = "INSERT INTO social_accounts \
     (user_id, provider, uid, email, extra_data, token_key_id, access_token_enc, \
      refresh_token_enc, expires_at, created_at, updated_at, token_secret_enc) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11) \
     RETURNING id, user_id, provider, uid, email, expires_at, needs_reauth, created_at";

/// Fresh tokens make a link usable again, so `needs_reauth` is cleared;
/// only while the link ($1) is still the user's ($7) and the user active.
pub(super) const UPDATE_TOKENS: &str = "UPDATE social_accounts \
     SET token_key_id = $2, access_token_enc = $3, refresh_token_enc = $4, expires_at = $5, \
         needs_reauth = false, updated_at = $6, token_secret_enc = $8 \
     WHERE id = $1 AND user_id = $7 \
       AND EXISTS (SELECT 1 FROM users u WHERE u.id = $7 AND u.is_active) RETURNING id";

pub(super) const FIND_BY_USER: &str = "SELECT id, user_id, provider, uid, email, expires_at, \
     needs_reauth, created_at FROM social_accounts WHERE user_id = $1 ORDER BY id";

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
    })
}
