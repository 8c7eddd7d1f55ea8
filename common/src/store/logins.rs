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

/// Many logins as one PostgreSQL statement: [`LOG_IN_PG`] over rows
/// instead of parameters, so logins that arrive together share one round
/// trip and one commit (one WAL flush). Parameters are arrays, one element
/// per login, in `LOG_IN_PG`'s order: $1 provider … $20 job id. Each
/// returned row carries `ord`, the 1-based position of its login; a login
/// without a row is one `LOG_IN_PG` would have answered with no row.
///
/// Each login's lookups (its identity, its referrer) are `LATERAL`
/// subqueries, so they are index probes per login, never a join that
/// reads a whole table.
///
/// A unique violation fails the whole batch, as it fails the one login.
/// The caller keeps identities and job ids distinct within a batch (two
/// new users of one identity would clash on the link).
pub(super) const LOG_IN_BATCH_PG: &str = concat!(
    "WITH inp AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], \
       $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[], \
       $11::boolean[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], \
       $17::bigint[], $18::text[], $19::bigint[], $20::text[]) WITH ORDINALITY \
       AS i(provider, uid, username, email, email_normalized, first_name, last_name, \
            referral_code, referrer, now, may_create, link_email, extra_data, key_id, \
            access_token, refresh_token, expires_at, token_hash, token_expires_at, \
            job_id, ord)), \
     old AS (SELECT inp.ord, o.* FROM inp CROSS JOIN LATERAL (SELECT s.id AS account_id, ",
    user_columns!("users"),
    " FROM social_accounts s JOIN users ON users.id = s.user_id \
       WHERE s.provider = inp.provider AND s.uid = inp.uid OFFSET 0) o), \
     new AS (\
       INSERT INTO users (username, email, email_normalized, first_name, last_name, \
                          referral_code, referred_by, created_at) \
       SELECT inp.username, inp.email, inp.email_normalized, inp.first_name, inp.last_name, \
              inp.referral_code, referrer.id, inp.now \
       FROM inp LEFT JOIN LATERAL (SELECT r.id FROM users r \
                                   WHERE r.referral_code = inp.referrer OFFSET 0) referrer ON true \
       WHERE inp.may_create AND NOT EXISTS (SELECT 1 FROM old WHERE old.ord = inp.ord) \
         AND (inp.referrer IS NULL OR referrer.id IS NOT NULL) \
       RETURNING id, username, email, first_name, last_name, is_active, referral_code, \
                 referred_by, created_at), \
     newi AS (SELECT inp.ord, new.id, new.username, new.email, new.first_name, \
                     new.last_name, new.is_active, new.referral_code, new.referred_by, \
                     new.created_at \
              FROM new JOIN inp ON inp.username = new.username), \
     link AS (\
       INSERT INTO social_accounts (user_id, provider, uid, email, extra_data, token_key_id, \
                                    access_token_enc, refresh_token_enc, expires_at, \
                                    created_at, updated_at) \
       SELECT newi.id, inp.provider, inp.uid, inp.link_email, inp.extra_data, inp.key_id, \
              inp.access_token, inp.refresh_token, inp.expires_at, inp.now, inp.now \
       FROM newi JOIN inp ON inp.ord = newi.ord), \
     refreshed AS (\
       UPDATE social_accounts s SET token_key_id = inp.key_id, \
              access_token_enc = inp.access_token, refresh_token_enc = inp.refresh_token, \
              expires_at = inp.expires_at, needs_reauth = false, updated_at = inp.now \
       FROM inp JOIN old ON old.ord = inp.ord \
       WHERE old.is_active AND s.id = old.account_id), \
     u AS (SELECT old.ord, old.id, old.username, old.email, old.first_name, old.last_name, \
                  old.is_active, old.referral_code, old.referred_by, old.created_at, \
                  false AS is_new FROM old \
           UNION ALL SELECT newi.*, true FROM newi), \
     t AS (\
       INSERT INTO auth_tokens (token_hash, user_id, created_at, expires_at) \
       SELECT inp.token_hash, u.id, inp.now, inp.token_expires_at \
       FROM u JOIN inp ON inp.ord = u.ord WHERE u.is_active), \
     j AS (\
       INSERT INTO jobs (id, kind, status, result, attempts, created_at, updated_at) \
       SELECT inp.job_id, 'login', 'succeeded', \
              json_build_object('status', 'login', 'is_new', u.is_new, 'user', \
                json_build_object('id', u.id, 'username', u.username, 'email', u.email, \
                  'first_name', u.first_name, 'last_name', u.last_name, \
                  'is_active', u.is_active, 'referral_code', u.referral_code, \
                  'referred_by', u.referred_by, 'created_at', u.created_at))::text, \
              1, inp.now, inp.now FROM u JOIN inp ON inp.ord = u.ord WHERE u.is_active \
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, result = excluded.result, \
           attempts = excluded.attempts, updated_at = excluded.updated_at) \
     SELECT ord, id, username, email, first_name, last_name, is_active, referral_code, \
            referred_by, created_at, is_new FROM u"
);
