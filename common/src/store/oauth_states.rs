//! `oauth_states`: login states of the redirect flow, consumed once.

use super::sql::SqlRow;
use super::{OAuthState, StoreError};

pub(super) const INSERT: &str = "INSERT INTO oauth_states \
     (state_hash, provider, redirect_uri, pkce_verifier, nonce, created_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Consumes in one statement, so of two concurrent takes only one gets the
/// row. Expired rows are consumed and returned too: the caller tells
/// "expired" from "unknown or used".
pub(super) const TAKE: &str = "UPDATE oauth_states SET consumed_at = $2 \
     WHERE state_hash = $1 AND consumed_at IS NULL \
     RETURNING provider, redirect_uri, pkce_verifier, nonce, expires_at";

pub(super) fn from_row(row: &impl SqlRow) -> Result<OAuthState, StoreError> {
    Ok(OAuthState {
        provider: row.text("provider")?,
        redirect_uri: row.text("redirect_uri")?,
        pkce_verifier: row.opt_text("pkce_verifier")?,
        nonce: row.opt_text("nonce")?,
        expires_at: row.int("expires_at")?,
    })
}
