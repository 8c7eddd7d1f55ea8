//! `users`: SQL text and row decoding, shared by both backends.

use super::StoreError;
use super::base::SqlRow;
use crate::types::{User, UserId};

/// The columns [`from_row`] reads, optionally qualified with a table alias,
/// optionally renamed with a prefix (`a.id AS acc_id, …`).
macro_rules! user_columns {
    () => {
        "id, username, email, email_verified, first_name, last_name, is_active, referral_code, \
         referred_by, created_at"
    };
    ($t:literal) => {
        concat!(
            $t,
            ".id, ",
            $t,
            ".username, ",
            $t,
            ".email, ",
            $t,
            ".email_verified, ",
            $t,
            ".first_name, ",
            $t,
            ".last_name, ",
            $t,
            ".is_active, ",
            $t,
            ".referral_code, ",
            $t,
            ".referred_by, ",
            $t,
            ".created_at"
        )
    };
    ($t:literal as $p:literal) => {
        concat!(
            $t,
            ".id AS ",
            $p,
            "id, ",
            $t,
            ".username AS ",
            $p,
            "username, ",
            $t,
            ".email AS ",
            $p,
            "email, ",
            $t,
            ".email_verified AS ",
            $p,
            "email_verified, ",
            $t,
            ".first_name AS ",
            $p,
            "first_name, ",
            $t,
            ".last_name AS ",
            $p,
            "last_name, ",
            $t,
            ".is_active AS ",
            $p,
            "is_active, ",
            $t,
            ".referral_code AS ",
            $p,
            "referral_code, ",
            $t,
            ".referred_by AS ",
            $p,
            "referred_by, ",
            $t,
            ".created_at AS ",
            $p,
            "created_at"
        )
    };
}
pub(super) use user_columns;

pub(super) const INSERT: &str = concat!(
    "INSERT INTO users (username, email, email_normalized, email_verified, first_name, \
     last_name, referral_code, referred_by, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ",
    user_columns!()
);

/// Takes an address from the account that only typed it: its verified
/// owner signs in (the pipeline's step 5).
pub(super) const TAKE_UNVERIFIED_EMAIL: &str = "UPDATE users \
     SET email = NULL, email_normalized = NULL \
     WHERE id = $1 AND email_normalized = $2 AND NOT email_verified RETURNING id";

pub(super) const FIND_BY_ID: &str =
    concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");

pub(super) const FIND_BY_EMAIL: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE email_normalized = $1"
);

pub(super) const FIND_BY_REFERRAL_CODE: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE referral_code = $1"
);

/// The user and, as `link_id`, the id of the social account.
pub(super) const FIND_BY_SOCIAL: &str = concat!(
    "SELECT ",
    user_columns!("u"),
    ", s.id AS link_id FROM social_accounts s JOIN users u ON u.id = s.user_id \
     WHERE s.provider = $1 AND s.uid = $2"
);

/// A token without an expiry never expires; the others are dead from
/// `expires_at` on.
pub(super) const FIND_BY_TOKEN: &str = concat!(
    "SELECT ",
    user_columns!("u"),
    " FROM auth_tokens t JOIN users u ON u.id = t.user_id \
     WHERE t.token_hash = $1 AND (t.expires_at IS NULL OR t.expires_at > $2)"
);

/// The names a user's columns go by in a row.
pub(super) struct UserColumns([&'static str; 10]);

macro_rules! named {
    ($p:literal) => {
        UserColumns([
            concat!($p, "id"),
            concat!($p, "username"),
            concat!($p, "email"),
            concat!($p, "email_verified"),
            concat!($p, "first_name"),
            concat!($p, "last_name"),
            concat!($p, "is_active"),
            concat!($p, "referral_code"),
            concat!($p, "referred_by"),
            concat!($p, "created_at"),
        ])
    };
}

/// As [`user_columns!`] names them: plain, `acc_…`, `own_…`.
const PLAIN: UserColumns = named!("");
pub(super) const ACC: UserColumns = named!("acc_");
pub(super) const OWN: UserColumns = named!("own_");

pub(super) fn from_row(row: &impl SqlRow) -> Result<User, StoreError> {
    from_named_row(row, &PLAIN)
}

/// A user read from the columns `names`; `None` when its id is NULL (an
/// outer join found no user).
pub(super) fn from_named_row_opt(
    row: &impl SqlRow,
    names: &UserColumns,
) -> Result<Option<User>, StoreError> {
    if row.opt_int(names.0[0])?.is_none() {
        return Ok(None);
    }
    from_named_row(row, names).map(Some)
}

fn from_named_row(row: &impl SqlRow, names: &UserColumns) -> Result<User, StoreError> {
    let [
        id,
        username,
        email,
        email_verified,
        first,
        last,
        active,
        code,
        by,
        created,
    ] = names.0;
    Ok(User {
        id: UserId(row.int(id)?),
        username: row.text(username)?,
        email: row.opt_text(email)?,
        email_verified: row.flag(email_verified)?,
        first_name: row.text(first)?,
        last_name: row.text(last)?,
        is_active: row.flag(active)?,
        referral_code: row.text(code)?,
        referred_by: row.opt_int(by)?.map(UserId),
        created_at: row.int(created)?,
    })
}

/// A row of [`FIND_BY_SOCIAL`].
pub(super) fn with_link_from_row(row: &impl SqlRow) -> Result<(User, i64), StoreError> {
    Ok((from_row(row)?, row.int("link_id")?))
}

/// Only when no referrer is set yet, and never oneself.
pub(super) const SET_REFERRED_BY: &str = concat!(
    "UPDATE users SET referred_by = $2 WHERE id = $1 AND referred_by IS NULL AND id <> $2 RETURNING ",
    user_columns!()
);

pub(super) const FIND_ACTIVE: &str = "SELECT id FROM users WHERE id = $1 AND is_active";

/// [`FIND_ACTIVE`], holding the user until the transaction ends: changes
/// to one user's links made under it (a disconnect) are made one at a
/// time. `FOR NO KEY UPDATE` does not hold up a new link's foreign-key
/// check. SQLite's transactions are one at a time already.
pub(super) const LOCK_ACTIVE_PG: &str =
    "SELECT id FROM users WHERE id = $1 AND is_active FOR NO KEY UPDATE";

pub(super) const UPDATE_ACTIVE: &str = "UPDATE users SET is_active = $2 WHERE id = $1 RETURNING id";
