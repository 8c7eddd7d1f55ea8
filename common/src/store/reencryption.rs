//! `reencryptions`: moving every link's sealed provider tokens to one key
//! and the current format (`POST /admin/reencrypt`), and the statements
//! over `social_accounts` it pages through and writes with.
//!
//! What is due, and how a token is sealed again, is the worker's
//! (`socialauth_worker::reencrypt`) and the cipher's; these statements
//! store it. A link is due when its key id is not the run's key or one of
//! its sealed columns is not in the current format (v2 ciphertexts start
//! with `v2:`, [`crate::crypto::V2_PREFIX`]).

use super::base::SqlRow;
use super::social_accounts;
use super::{Reencryption, ReencryptionStatus, SealedCount, StoreError};
use uuid::Uuid;

/// A link whose sealed tokens are not all under key `$key` in the current
/// format (`$key`: the placeholder, e.g. `"$2"`).
macro_rules! due {
    ($key:literal) => {
        concat!(
            "token_key_id IS NOT NULL AND (token_key_id <> ",
            $key,
            " OR (access_token_enc IS NOT NULL AND access_token_enc NOT LIKE 'v2:%') \
             OR (refresh_token_enc IS NOT NULL AND refresh_token_enc NOT LIKE 'v2:%') \
             OR (token_secret_enc IS NOT NULL AND token_secret_enc NOT LIKE 'v2:%'))"
        )
    };
}

macro_rules! columns {
    () => {
        "id, key_id, status, total, after_id, moved, changed, failed, remaining, \
         lease_owner, lease_until, created_at, updated_at, finished_at"
    };
}

pub(super) const INSERT: &str = concat!(
    "INSERT INTO reencryptions (id, key_id, status, created_at, updated_at) \
     VALUES ($1, $2, 'running', $3, $3) RETURNING ",
    columns!()
);

pub(super) const FIND: &str = concat!("SELECT ", columns!(), " FROM reencryptions WHERE id = $1");

/// The newest first, at most $1.
pub(super) const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM reencryptions ORDER BY created_at DESC, id LIMIT $1"
);

/// Stops a running one ($1) at $2.
pub(super) const CANCEL: &str = "UPDATE reencryptions \
     SET status = 'cancelled', updated_at = $2, finished_at = $2, \
         lease_owner = NULL, lease_until = NULL \
     WHERE id = $1 AND status = 'running' RETURNING id";

/// Takes the running one moving tokens to key $4 for owner $1 until $3,
/// when nobody holds it at $2 (or $1 does already). The conditions are
/// checked again on the row itself: of two takers, one gets it.
pub(super) const TAKE: &str = concat!(
    "UPDATE reencryptions SET lease_owner = $1, lease_until = $3, updated_at = $2 \
     WHERE id = (SELECT id FROM reencryptions WHERE status = 'running' AND key_id = $4 \
                 ORDER BY created_at LIMIT 1) \
       AND status = 'running' \
       AND (lease_until IS NULL OR lease_until <= $2 OR lease_owner = $1) \
     RETURNING ",
    columns!()
);

/// Sets the total ($3) of one ($1) that owner $2 holds, once.
pub(super) const SET_TOTAL: &str = "UPDATE reencryptions SET total = $3 \
     WHERE id = $1 AND lease_owner = $2 AND status = 'running' AND total IS NULL RETURNING id";

/// Gives back the lease owner $2 holds on $1.
pub(super) const RELEASE: &str = "UPDATE reencryptions SET lease_owner = NULL, lease_until = NULL \
     WHERE id = $1 AND lease_owner = $2";

/// A page written ($1, by owner $2 which holds the lease): from after id
/// $3 to $4, $5 moved, $6 changed, $7 failed, at $8, the lease held until
/// $9. No row: the lease was lost, the run ended, or the page was written
/// already.
pub(super) const ADVANCE: &str = "UPDATE reencryptions \
     SET after_id = $4, moved = moved + $5, changed = changed + $6, failed = failed + $7, \
         updated_at = $8, lease_until = $9 \
     WHERE id = $1 AND status = 'running' AND lease_owner = $2 AND after_id = $3 RETURNING id";

/// Done ($1, by owner $2) at $4 with $3 links still due.
pub(super) const FINISH: &str = "UPDATE reencryptions \
     SET status = 'done', remaining = $3, updated_at = $4, finished_at = $4, \
         lease_owner = NULL, lease_until = NULL \
     WHERE id = $1 AND status = 'running' AND lease_owner = $2 RETURNING id";

/// The links due for key $2 after link id $1, with their sealed tokens, in
/// id order, at most $3.
pub(super) const PAGE: &str = concat!(
    "SELECT ",
    social_accounts::account_columns!(),
    ", token_key_id, access_token_enc, refresh_token_enc, token_secret_enc \
     FROM social_accounts WHERE id > $1 AND ",
    due!("$2"),
    " ORDER BY id LIMIT $3"
);

/// Links by key id and format: `v2` when every sealed column is.
pub(super) const COUNT_SEALED: &str = "SELECT token_key_id AS key_id, \
       CASE WHEN (access_token_enc IS NULL OR access_token_enc LIKE 'v2:%') \
             AND (refresh_token_enc IS NULL OR refresh_token_enc LIKE 'v2:%') \
             AND (token_secret_enc IS NULL OR token_secret_enc LIKE 'v2:%') \
            THEN 'v2' ELSE 'v1' END AS format, \
       count(*) AS links \
     FROM social_accounts WHERE token_key_id IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2";

/// One link's ($1) tokens sealed again ($6 key id, $7 access, $8 refresh,
/// $9 secret) only while they are still what was read ($2 key id, $3
/// access, $4 refresh, $5 secret): a refresh or a sign-in that wrote
/// meanwhile keeps what it wrote.
pub(super) const RESEAL: &str = "UPDATE social_accounts \
     SET token_key_id = $6, access_token_enc = $7, refresh_token_enc = $8, token_secret_enc = $9 \
     WHERE id = $1 AND token_key_id = $2 \
       AND access_token_enc IS NOT DISTINCT FROM $3 \
       AND refresh_token_enc IS NOT DISTINCT FROM $4 \
       AND token_secret_enc IS NOT DISTINCT FROM $5 \
     RETURNING id";

/// [`RESEAL`] for many links at once.
pub(super) const RESEAL_MANY_PG: &str = "UPDATE social_accounts s \
     SET token_key_id = d.k, access_token_enc = d.a, refresh_token_enc = d.r, \
         token_secret_enc = d.t \
     FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], \
                 $6::text[], $7::text[], $8::text[], $9::text[]) \
          AS d(id, ok, oa, orf, ot, k, a, r, t) \
     WHERE s.id = ANY ($1) AND s.id = d.id AND s.token_key_id = d.ok \
       AND s.access_token_enc IS NOT DISTINCT FROM d.oa \
       AND s.refresh_token_enc IS NOT DISTINCT FROM d.orf \
       AND s.token_secret_enc IS NOT DISTINCT FROM d.ot \
     RETURNING s.id";

pub(super) fn from_row(row: &impl SqlRow) -> Result<Reencryption, StoreError> {
    let bad = |what: &str| StoreError::Database(format!("a re-encryption with a bad {what}"));
    let id = Uuid::parse_str(&row.text("id")?).map_err(|_| bad("id"))?;
    let status = ReencryptionStatus::parse(&row.text("status")?).ok_or_else(|| bad("status"))?;
    let owner = row
        .opt_text("lease_owner")?
        .map(|o| Uuid::parse_str(&o).map_err(|_| bad("lease owner")))
        .transpose()?;
    Ok(Reencryption {
        id,
        key_id: row.text("key_id")?,
        status,
        total: row.opt_int("total")?,
        after_id: row.int("after_id")?,
        moved: row.int("moved")?,
        changed: row.int("changed")?,
        failed: row.int("failed")?,
        remaining_at_end: row.opt_int("remaining")?,
        lease_owner: owner,
        lease_until: row.opt_int("lease_until")?,
        created_at: row.int("created_at")?,
        updated_at: row.int("updated_at")?,
        finished_at: row.opt_int("finished_at")?,
    })
}

pub(super) fn count_from_row(row: &impl SqlRow) -> Result<SealedCount, StoreError> {
    Ok(SealedCount {
        key_id: row.text("key_id")?,
        format: row.text("format")?,
        links: row.int("links")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statements_know_the_current_formats_prefix() {
        let like = format!("'{}%'", crate::crypto::V2_PREFIX);
        assert!(PAGE.contains(&like), "{PAGE}");
        assert!(COUNT_SEALED.contains(&like), "{COUNT_SEALED}");
        assert_eq!(
            crate::crypto::SealFormat::CURRENT.as_str(),
            "v2",
            "COUNT_SEALED names the current format"
        );
    }
}
