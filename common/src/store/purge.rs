//! Deleting what is no longer kept: expired login states, OAuth 1.0a
//! request tokens, partial logins, remembered codes and app tokens, old job
//! outcomes and redelivery counts. A few thousand rows per statement, so a
//! purge never holds a long lock; the same SQL on both backends.

/// What a purge removes. Which rows are past keeping is decided by the
/// caller (the worker's cleanup: one cut-off per kind); the store only
/// deletes rows older than the cut-off it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purge {
    /// Login states expired before the cut-off.
    OAuthStates,
    /// OAuth 1.0a request tokens expired before the cut-off.
    RequestTokens,
    /// Partial logins expired before the cut-off.
    PartialLogins,
    /// Remembered login codes and client tokens whose memory ended.
    LoginCodes,
    /// App tokens expired before the cut-off.
    AuthTokens,
    /// Job outcomes last written before the cut-off.
    Jobs,
    /// Redelivery counts last written before the cut-off.
    JobDeliveries,
}

impl Purge {
    pub const ALL: [Purge; 7] = [
        Purge::OAuthStates,
        Purge::RequestTokens,
        Purge::PartialLogins,
        Purge::LoginCodes,
        Purge::AuthTokens,
        Purge::Jobs,
        Purge::JobDeliveries,
    ];

    /// The table, as a metrics label.
    pub fn table(self) -> &'static str {
        match self {
            Purge::OAuthStates => "oauth_states",
            Purge::RequestTokens => "oauth1_request_tokens",
            Purge::PartialLogins => "partial_logins",
            Purge::LoginCodes => "login_codes",
            Purge::AuthTokens => "auth_tokens",
            Purge::Jobs => "jobs",
            Purge::JobDeliveries => "job_deliveries",
        }
    }

    /// Deletes at most `$2` rows older than `$1`.
    pub(super) fn statement(self) -> &'static str {
        match self {
            Purge::OAuthStates => {
                "DELETE FROM oauth_states WHERE state_hash IN \
                 (SELECT state_hash FROM oauth_states WHERE expires_at < $1 LIMIT $2)"
            }
            Purge::RequestTokens => {
                "DELETE FROM oauth1_request_tokens WHERE oauth_token IN \
                 (SELECT oauth_token FROM oauth1_request_tokens WHERE expires_at < $1 LIMIT $2)"
            }
            Purge::PartialLogins => {
                "DELETE FROM partial_logins WHERE token_hash IN \
                 (SELECT token_hash FROM partial_logins WHERE expires_at < $1 LIMIT $2)"
            }
            Purge::LoginCodes => {
                "DELETE FROM login_codes WHERE (provider, code_hash) IN \
                 (SELECT provider, code_hash FROM login_codes WHERE expires_at < $1 LIMIT $2)"
            }
            Purge::AuthTokens => {
                "DELETE FROM auth_tokens WHERE token_hash IN \
                 (SELECT token_hash FROM auth_tokens \
                  WHERE expires_at IS NOT NULL AND expires_at < $1 LIMIT $2)"
            }
            Purge::Jobs => {
                "DELETE FROM jobs WHERE id IN \
                 (SELECT id FROM jobs WHERE updated_at < $1 LIMIT $2)"
            }
            Purge::JobDeliveries => {
                "DELETE FROM job_deliveries WHERE job_id IN \
                 (SELECT job_id FROM job_deliveries WHERE updated_at < $1 LIMIT $2)"
            }
        }
    }
}
