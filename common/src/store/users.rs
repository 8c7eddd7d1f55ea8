//! `users`: SQL text and row decoding, shared by both backends.

use super::StoreError;
use super::sql::SqlRow;
use crate::types::{User, UserId};

/// The columns [`from_row`] reads, optionally qualified with a table alias.
macro_rules! user_columns {
    () => {
        "id, username, email, first_name, last_name, is_active, referral_code, referred_by, created_at"
    };
    ($t:literal) => {
        concat!(
            $t, ".id, ", $t, ".username, ", $t, ".email, ", $t, ".first_name, ",
            $t, ".last_name, ", $t, ".is_active, ", $t, ".referral_code, ",
            $t, ".referred_by, ", $t, ".created_at"
        )
    };
}

pub(super) const INSERT: &str = concat!(
    "INSERT INTO users (username, email, email_normalized, first_name, last_name, \
     referral_code, referred_by, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
    user_columns!()
);

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

pub(super) fn from_row(row: &impl SqlRow) -> Result<User, StoreError> {
    Ok(User {
        id: UserId(row.int("id")?),
        username: row.text("username")?,
        email: row.opt_text("email")?,
        first_name: row.text("first_name")?,
        last_name: row.text("last_name")?,
        is_active: row.flag("is_active")?,
        referral_code: row.text("referral_code")?,
        referred_by: row.opt_int("referred_by")?.map(UserId),
        created_at: row.int("created_at")?,
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

pub(super) const UPDATE_ACTIVE: &str = "UPDATE users SET is_active = $2 WHERE id = $1 RETURNING id";
