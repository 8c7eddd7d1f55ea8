//! `auth_tokens`: app tokens, stored as the SHA-256 of the key. The user
//! behind a token is found with `users::FIND_BY_TOKEN`.

pub(super) const INSERT: &str = "INSERT INTO auth_tokens (token_hash, user_id, created_at, expires_at) \
     VALUES ($1, $2, $3, $4)";

pub(super) const DELETE: &str = "DELETE FROM auth_tokens WHERE token_hash = $1";
