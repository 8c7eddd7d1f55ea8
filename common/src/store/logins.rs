//! A login's storage on PostgreSQL, batched ([`super::login_batch`]): one
//! statement reads the facts of many logins, one writes what the pipeline
//! decided for many. Neither decides anything: the reads are lookups, the
//! writes are what they are told, each with the condition it relies on
//! (the link still the user's, the partial login still unconsumed), and
//! say which of them held.

use super::users::user_columns;

/// The facts of many logins: parameters are arrays, one element per login
/// — $1 provider, $2 uid, $3 normalized email (or NULL), $4 referral code
/// (or NULL). One row per login, `ord` its 1-based position: the linked
/// account (`account_id`, the user as `acc_*`); for an identity not linked
/// yet, the owner of the email (`own_*`), the referrer's id and a user id
/// taken from the users' sequence for the user the pipeline may create (so
/// the result it stores can name it; `users_id_seq` is the sequence of the
/// identity column `users.id`). A linked identity's login needs none of
/// these, so they are not looked up.
///
/// Each lookup is a `LATERAL` index probe per login, never a join that
/// reads a whole table.
pub(super) const FIND_FACTS_PG: &str = concat!(
    "SELECT inp.ord, acc.account_id, ",
    user_columns!("acc" as "acc_"),
    ", ",
    user_columns!("own" as "own_"),
    ", ref.id AS referrer_id, \
       CASE WHEN acc.account_id IS NULL \
            THEN nextval('users_id_seq') END AS new_user_id \
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY \
          AS inp(provider, uid, email_normalized, referral_code, ord) \
     LEFT JOIN LATERAL (SELECT s.id AS account_id, u.* FROM social_accounts s \
                        JOIN users u ON u.id = s.user_id \
                        WHERE s.provider = inp.provider AND s.uid = inp.uid OFFSET 0) acc ON true \
     LEFT JOIN LATERAL (SELECT u.* FROM users u WHERE acc.account_id IS NULL \
                        AND u.email_normalized = inp.email_normalized OFFSET 0) own ON true \
     LEFT JOIN LATERAL (SELECT r.id FROM users r WHERE acc.account_id IS NULL \
                        AND r.referral_code = inp.referral_code OFFSET 0) ref ON true"
);

/// The pieces of [`WRITE_LOGINS_PG`] and [`WRITE_PLAIN_LOGINS_PG`].
macro_rules! login_writes {
    // The batch's rows.
    (inputs) => {
        "WITH inp AS (SELECT * FROM unnest(\
       $1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], \
       $7::boolean[], $8::text[], $9::text[], $10::text[], $11::bigint[], $12::bigint[], \
       $13::text[], $14::text[], $15::text[], $16::text[], $17::bigint[], $18::text[], \
       $19::text[], $20::text[], $21::text[], $22::bigint[], $23::text[], $24::bigint[], \
       $25::text[], $26::text[], $27::text[], $28::bigint[], $29::text[], $30::text[], \
       $31::text[], $32::text[], $33::text[], $34::bigint[]) WITH ORDINALITY \
       AS i(kind, account_id, user_id, username, email, email_normalized, email_verified, \
            first_name, last_name, referral_code, referred_by, user_created_at, provider, uid, \
            link_email, extra_data, link_created_at, key_id, access_token, refresh_token, \
            token_secret, expires_at, token_hash, token_expires_at, job_id, result, \
            partial_hash, now, audit_kind, audit_provider, audit_outcome, audit_detail, \
            audit_request_id, audit_at, ord)), \
     "
    };
    // The rows whose user may still log in, named `$name`.
    (eligible $name:literal) => {
        concat!(
            $name,
            " AS (SELECT inp.* FROM inp \
       WHERE (inp.kind = 'create' OR EXISTS (SELECT 1 FROM users u \
                                             WHERE u.id = inp.user_id AND u.is_active)) \
         AND (inp.kind <> 'existing' OR inp.partial_hash IS NULL \
              OR EXISTS (SELECT 1 FROM social_accounts s \
                         WHERE s.id = inp.account_id AND s.user_id = inp.user_id))), \
     "
        )
    };
    // The user, the link or its refreshed tokens, the app token and the
    // job's result of each row of `ready`; `done`, the rows written.
    (rows) => {
        "new_users AS (INSERT INTO users (id, username, email, email_normalized, email_verified, \
                                      first_name, last_name, referral_code, referred_by, \
                                      created_at) \
       SELECT user_id, username, email, email_normalized, email_verified, first_name, \
              last_name, referral_code, referred_by, user_created_at \
       FROM ready WHERE kind = 'create' ORDER BY ord RETURNING id), \
     links AS (INSERT INTO social_accounts (user_id, provider, uid, email, extra_data, \
                                            token_key_id, access_token_enc, refresh_token_enc, \
                                            token_secret_enc, expires_at, created_at, \
                                            updated_at, last_login_at) \
       SELECT user_id, provider, uid, link_email, extra_data, key_id, access_token, \
              refresh_token, token_secret, expires_at, link_created_at, link_created_at, \
              link_created_at \
       FROM ready WHERE kind IN ('create', 'link') ORDER BY ord RETURNING id), \
     refreshed AS (UPDATE social_accounts s SET \
              token_key_id = COALESCE(ready.key_id, s.token_key_id), \
              access_token_enc = CASE WHEN ready.key_id IS NULL THEN s.access_token_enc \
                                      ELSE ready.access_token END, \
              refresh_token_enc = CASE WHEN ready.key_id IS NULL THEN s.refresh_token_enc \
                                       ELSE ready.refresh_token END, \
              token_secret_enc = CASE WHEN ready.key_id IS NULL THEN s.token_secret_enc \
                                      ELSE ready.token_secret END, \
              expires_at = CASE WHEN ready.key_id IS NULL THEN s.expires_at \
                                ELSE ready.expires_at END, \
              needs_reauth = ready.key_id IS NULL AND s.needs_reauth, \
              updated_at = ready.now, last_login_at = ready.now \
       FROM ready WHERE ready.kind = 'existing' \
         AND s.id = ANY (ARRAY(SELECT account_id FROM ready WHERE kind = 'existing')) \
         AND s.user_id = ANY (ARRAY(SELECT user_id FROM ready WHERE kind = 'existing')) \
         AND s.id = ready.account_id AND s.user_id = ready.user_id RETURNING ready.ord), \
     done AS (SELECT ord FROM ready WHERE kind <> 'existing' \
              UNION ALL SELECT ord FROM refreshed), \
     t AS (INSERT INTO auth_tokens (token_hash, user_id, created_at, expires_at) \
       SELECT ready.token_hash, ready.user_id, ready.now, ready.token_expires_at \
       FROM ready JOIN done ON done.ord = ready.ord), \
     j AS (INSERT INTO jobs (id, kind, status, result, attempts, created_at, updated_at) \
       SELECT ready.job_id, 'login', 'succeeded', ready.result, 1, ready.now, ready.now \
       FROM ready JOIN done ON done.ord = ready.ord \
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, result = excluded.result, \
           attempts = excluded.attempts, updated_at = excluded.updated_at) "
    };
}

/// Many logins' writes as one statement. Parameters are arrays, one
/// element per login, in this order: $1 kind (`existing`, `create`,
/// `link`), $2 the link's id (existing), $3 the user's id (the new one's
/// for `create`); the new user: $4 username, $5 email, $6 normalized
/// email, $7 email verified, $8 first name, $9 last name, $10 referral
/// code, $11 referrer, $12 created at; the link: $13 provider, $14 uid,
/// $15 email, $16 extra data, $17 created at; its sealed tokens: $18 key
/// id, $19 access, $20 refresh, $21 token secret, $22 expiry; $23 app
/// token hash, $24 its expiry, $25 job id, $26 the job's stored result,
/// $27 the partial login's hash (or NULL), $28 now; the audit event (or
/// NULLs): $29 kind, $30 provider, $31 outcome, $32 detail, $33 request
/// id, $34 time.
///
/// The rows it updates are found by `= ANY` over the batch's keys, so the
/// plan (a generic plan, kept for the session) reads them through an
/// index whatever the tables' statistics were when it was made; a join
/// alone would let a plan made on a near-empty table read the whole table
/// on every batch.
///
/// Per login, in one transaction: only while its user is still active
/// (`existing`, `link`) and its link still the user's (`existing`), consume
/// the partial login it resumes (when it names one);
/// then create the user and its link, or link the user, or refresh the
/// tokens of its link; then the app token, the job's result and the audit
/// event. One row per login: `partial_ok` (false: the partial login it
/// named was not there to consume) and `written`. A unique violation
/// fails the whole statement, naming its constraint.
pub(super) const WRITE_LOGINS_PG: &str = concat!(
    login_writes!(inputs),
    login_writes!(eligible "eligible"),
    "partial AS (UPDATE partial_logins p SET consumed_at = eligible.now FROM eligible \
       WHERE p.token_hash = ANY (ARRAY(SELECT partial_hash FROM eligible \
                                       WHERE partial_hash IS NOT NULL)) \
         AND p.token_hash = eligible.partial_hash AND p.consumed_at IS NULL \
       RETURNING eligible.ord), \
     ready AS (SELECT eligible.* FROM eligible WHERE eligible.partial_hash IS NULL \
       OR EXISTS (SELECT 1 FROM partial WHERE partial.ord = eligible.ord)), \
     ",
    login_writes!(rows),
    ", a AS (INSERT INTO audit_events (at, kind, user_id, provider, outcome, detail, request_id) \
       SELECT ready.audit_at, ready.audit_kind, ready.user_id, ready.audit_provider, \
              ready.audit_outcome, ready.audit_detail, ready.audit_request_id \
       FROM ready JOIN done ON done.ord = ready.ord WHERE ready.audit_kind IS NOT NULL) \
     ",
    "SELECT inp.ord, \
            (NOT EXISTS (SELECT 1 FROM eligible WHERE eligible.ord = inp.ord) \
             OR EXISTS (SELECT 1 FROM ready WHERE ready.ord = inp.ord)) AS partial_ok, \
            EXISTS (SELECT 1 FROM done WHERE done.ord = inp.ord) AS written \
     FROM inp"
);

/// [`WRITE_LOGINS_PG`] for a batch that resumes no partial login and
/// records no audit event — nearly every batch: the same writes, without
/// the statements that would have nothing to do (each would still open its
/// table and that table's indexes on every batch).
pub(super) const WRITE_PLAIN_LOGINS_PG: &str = concat!(
    login_writes!(inputs),
    login_writes!(eligible "ready"),
    login_writes!(rows),
    "SELECT inp.ord, true AS partial_ok, \
            EXISTS (SELECT 1 FROM done WHERE done.ord = inp.ord) AS written \
     FROM inp"
);
