//! A whole login as one PostgreSQL statement. Data-modifying CTEs find the
//! identity or create the user and its link, refresh the provider tokens,
//! write the app token and the job's stored result — one round trip, one
//! commit. SQLite has no data-modifying CTEs: it runs the
//! same writes as a transaction (`Store::log_in`'s default).
//!
//! The job's result is built by PostgreSQL as the JSON of
//! `JobResult::Login` without the token, so `jobs::from_row` reads it like
//! any other (a conformance test checks it).

/// The columns of a user row, as `users::from_row` reads them.
macro_rules! user_columns {
    ($t:literal) => {
        concat!(
            $t,
            ".id, ",
            $t,
            ".username, ",
            $t,
            ".email, ",
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
}

/// Parameters: $1 provider, $2 uid; the new user $3 username, $4 email,
/// $5 email_normalized, $6 first_name, $7 last_name, $8 referral_code,
/// $9 the referrer's referral code, $10 now, $11 "may create"; the link
/// $12 email, $13 extra_data, $14 key id, $15 access, $16 refresh,
/// $17 expires_at; the app token $18 hash, $19 expires_at; $20 job id.
///
/// No row: unknown identity and no user created (not allowed, or the
/// referral code names nobody). Unique violations name their constraint.
pub(super) const LOG_IN_PG: &str = concat!(
    "WITH old AS (SELECT ",
    user_columns!("users"),
    " FROM social_accounts s JOIN users ON users.id = s.user_id \
       WHERE s.provider = $1 AND s.uid = $2), \
     new AS (\
       INSERT INTO users (username, email, email_normalized, first_name, last_name, \
                          referral_code, referred_by, created_at) \
       SELECT $3, $4, $5, $6, $7, $8, (SELECT r.id FROM users r WHERE r.referral_code = $9), $10 \
       WHERE $11 AND NOT EXISTS (SELECT 1 FROM old) \
         AND ($9::text IS NULL OR EXISTS (SELECT 1 FROM users r WHERE r.referral_code = $9)) \
       RETURNING id, username, email, first_name, last_name, is_active, referral_code, \
                 referred_by, created_at), \
     link AS (\
       INSERT INTO social_accounts (user_id, provider, uid, email, extra_data, token_key_id, \
                                    access_token_enc, refresh_token_enc, expires_at, \
                                    created_at, updated_at) \
       SELECT new.id, $1, $2, $12, $13, $14, $15, $16, $17, $10, $10 FROM new), \
     refreshed AS (\
       UPDATE social_accounts SET token_key_id = $14, access_token_enc = $15, \
              refresh_token_enc = $16, expires_at = $17, needs_reauth = false, updated_at = $10 \
       WHERE provider = $1 AND uid = $2 AND EXISTS (SELECT 1 FROM old WHERE old.is_active)), \
     u AS (SELECT old.*, false AS is_new FROM old UNION ALL SELECT new.*, true FROM new), \
     t AS (\
       INSERT INTO auth_tokens (token_hash, user_id, created_at, expires_at) \
       SELECT $18, u.id, $10, $19 FROM u WHERE u.is_active), \
     j AS (\
       INSERT INTO jobs (id, kind, status, result, attempts, created_at, updated_at) \
       SELECT $20, 'login', 'succeeded', \
              json_build_object('status', 'login', 'is_new', u.is_new, 'user', \
                json_build_object('id', u.id, 'username', u.username, 'email', u.email, \
                  'first_name', u.first_name, 'last_name', u.last_name, \
                  'is_active', u.is_active, 'referral_code', u.referral_code, \
                  'referred_by', u.referred_by, 'created_at', u.created_at))::text, \
              1, $10, $10 FROM u WHERE u.is_active \
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, result = excluded.result, \
           attempts = excluded.attempts, updated_at = excluded.updated_at) \
     SELECT id, username, email, first_name, last_name, is_active, referral_code, \
            referred_by, created_at, is_new FROM u"
);
