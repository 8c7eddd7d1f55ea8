//! The pipeline's steps, each a small function.

use super::LoginContext;
use crate::deps::Deps;
use crate::error::WorkerError;
use socialauth_common::catalogue::ProviderConfig;
use socialauth_common::crypto;
use socialauth_common::jobs::{JobError, JobKind, JobResult, LoginResult};
use socialauth_common::now_ms;
use socialauth_common::store::{
    Constraint, JobStatus, LoggedIn, LoginWrite, NewSocialAccount, NewUser, SealedTokens,
    StoreError, StoreTx,
};
use socialauth_common::types::{Email, Profile, ProviderTokens, User, UserId};

/// Step 2: per-provider allowed email domains.
pub fn check_allowed(provider: &ProviderConfig, email: Option<&Email>) -> Result<(), JobError> {
    if provider.allowed_email_domains.is_empty() {
        return Ok(());
    }
    let allowed = email.is_some_and(|e| {
        let domain = e.domain().to_lowercase();
        provider.allowed_email_domains.contains(&domain)
    });
    if allowed {
        Ok(())
    } else {
        Err(JobError::EmailNotAllowed)
    }
}

/// One pass over steps 3–8. `Ok(None)`: a concurrent write won a race; the
/// caller tries again.
///
/// A login writes as one unit, `Store::log_in` — a single statement on
/// PostgreSQL: the known identity's user, or a new user with its link (only
/// when there is an email), the app token and the job's result.
/// A resumed partial login also consumes its partial token, so it runs the
/// steps in an explicit transaction instead.
pub async fn attempt(
    deps: &Deps,
    ctx: &LoginContext<'_>,
    round: usize,
) -> Result<Option<LoginResult>, WorkerError> {
    if ctx.partial_token.is_some() {
        return attempt_in_transaction(deps, ctx, round).await;
    }
    let now = now_ms();
    let sealed = seal(deps, &ctx.login.tokens);
    let issued = deps.secrets.app_token(ctx.job_id);
    let account = new_account(ctx, UserId(0), &sealed, now);
    // 4 (for a new identity): without an email no user is created.
    let user = ctx
        .email
        .as_ref()
        .map(|email| new_user(&ctx.login.profile, email, None, round, now));
    let write = LoginWrite {
        account: &account,
        user: user.as_ref(),
        referral_code: ctx.referral_code,
        token_hash: &issued.hash,
        token_expires_at: deps.policy.token_ttl_ms.map(|ttl| now.saturating_add(ttl)),
        job_id: ctx.job_id,
        now,
    };
    match deps.store.log_in(&write).await {
        // 3, or 6–8.
        Ok(Some(LoggedIn { user, is_new })) => {
            ensure_active(&user)?;
            Ok(Some(LoginResult {
                token: Some(issued.token),
                is_new,
                user,
                token_job: None,
            }))
        }
        Ok(None) if user.is_none() => Err(JobError::NoEmailProvided {
            partial_token: None,
            partial_job: None,
        }
        .into()),
        Ok(None) => Err(JobError::InvalidReferralCode {
            partial_token: None,
            partial_job: None,
        }
        .into()),
        // 5. email policy
        Err(StoreError::Conflict(Constraint::UserEmail)) => match &ctx.email {
            Some(email) => associate_by_email(deps, ctx, email, &sealed).await,
            None => Ok(None),
        },
        Err(StoreError::Conflict(
            Constraint::UserUsername
            | Constraint::UserReferralCode
            | Constraint::SocialAccountIdentity,
        )) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Steps 3–8 in an explicit transaction that also consumes the partial
/// login being resumed.
async fn attempt_in_transaction(
    deps: &Deps,
    ctx: &LoginContext<'_>,
    round: usize,
) -> Result<Option<LoginResult>, WorkerError> {
    let now = now_ms();
    let provider = ctx.provider.name.as_str();
    let profile = &ctx.login.profile;
    let sealed = seal(deps, &ctx.login.tokens);
    let mut tx = deps.store.begin().await?;

    // 3. existing social account
    if let Some((user, account_id)) = tx.find_user_by_social(provider, &profile.uid).await? {
        ensure_active(&user)?;
        tx.update_social_account_tokens(account_id, &sealed, now)
            .await?;
        return finish(deps, tx, ctx, user, false).await.map(Some);
    }

    // 4. email
    let email = ctx.email.as_ref().ok_or(JobError::NoEmailProvided {
        partial_token: None,
        partial_job: None,
    })?;
    let referred_by = match ctx.referral_code {
        Some(code) => Some(
            tx.find_user_by_referral_code(code)
                .await?
                .ok_or(JobError::InvalidReferralCode {
                    partial_token: None,
                    partial_job: None,
                })?
                .id,
        ),
        None => None,
    };

    // 6. create the user
    let new_user = new_user(profile, email, referred_by, round, now);
    let user = match tx.insert_user(&new_user).await {
        Ok(user) => user,
        Err(StoreError::Conflict(Constraint::UserEmail)) => {
            drop(tx);
            // 5. email policy
            return associate_by_email(deps, ctx, email, &sealed).await;
        }
        Err(StoreError::Conflict(Constraint::UserUsername | Constraint::UserReferralCode)) => {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };

    // 7. link
    match tx
        .insert_social_account(&new_account(ctx, user.id, &sealed, now))
        .await
    {
        Ok(_) => {}
        Err(StoreError::Conflict(Constraint::SocialAccountIdentity)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }

    // 8. app token
    finish(deps, tx, ctx, user, true).await.map(Some)
}

/// Step 5 when the email is taken: link to its owner only when the policy
/// allows it and the provider verified the email; otherwise refuse.
async fn associate_by_email(
    deps: &Deps,
    ctx: &LoginContext<'_>,
    email: &Email,
    sealed: &SealedTokens,
) -> Result<Option<LoginResult>, WorkerError> {
    if !(deps.policy.associate_by_email && ctx.email_verified_by_provider) {
        return Err(JobError::EmailAlreadyInUse.into());
    }
    let now = now_ms();
    let mut tx = deps.store.begin().await?;
    let Some(user) = tx.find_user_by_email(&email.normalized()).await? else {
        return Ok(None);
    };
    ensure_active(&user)?;
    match tx
        .insert_social_account(&new_account(ctx, user.id, sealed, now))
        .await
    {
        Ok(_) => finish(deps, tx, ctx, user, false).await.map(Some),
        Err(StoreError::Conflict(Constraint::SocialAccountIdentity)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn ensure_active(user: &User) -> Result<(), JobError> {
    if user.is_active {
        Ok(())
    } else {
        Err(JobError::InactiveUser)
    }
}

/// Step 8 and the job's stored result, then commit.
async fn finish(
    deps: &Deps,
    mut tx: Box<dyn StoreTx>,
    ctx: &LoginContext<'_>,
    user: User,
    is_new: bool,
) -> Result<LoginResult, WorkerError> {
    let now = now_ms();
    if let Some(partial) = ctx.partial_token
        && !tx
            .consume_partial_login(&crypto::hash_token(partial.expose()), now)
            .await?
    {
        // Another resume of the same partial login completed first.
        return Err(JobError::InvalidPartialToken.into());
    }
    let issued = deps.secrets.app_token(ctx.job_id);
    let expires_at = deps.policy.token_ttl_ms.map(|ttl| now.saturating_add(ttl));
    tx.insert_auth_token(&issued.hash, user.id, now, expires_at)
        .await?;
    let stored = LoginResult {
        token: None,
        is_new,
        user,
        token_job: None,
    };
    tx.upsert_job_result(
        ctx.job_id,
        JobKind::Login,
        JobStatus::Succeeded,
        &JobResult::Login(stored.clone()),
        1,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(LoginResult {
        token: Some(issued.token),
        ..stored
    })
}

fn seal(deps: &Deps, tokens: &ProviderTokens) -> SealedTokens {
    let access = (!tokens.access_token.expose().is_empty())
        .then(|| deps.cipher.encrypt(tokens.access_token.expose()));
    let refresh = tokens
        .refresh_token
        .as_ref()
        .map(|t| deps.cipher.encrypt(t.expose()));
    SealedTokens {
        key_id: access.as_ref().map(|s| s.key_id.clone()),
        access_token: access.map(|s| s.data),
        refresh_token: refresh.map(|s| s.data),
        expires_at: tokens.expires_at,
    }
}

fn new_account(
    ctx: &LoginContext<'_>,
    user_id: socialauth_common::types::UserId,
    sealed: &SealedTokens,
    now: i64,
) -> NewSocialAccount {
    NewSocialAccount {
        user_id,
        provider: ctx.provider.name.as_str().to_owned(),
        uid: ctx.login.profile.uid.clone(),
        email: ctx.login.profile.email.clone(),
        extra_data: serde_json::to_string(&ctx.login.profile).unwrap_or_else(|_| "{}".into()),
        tokens: sealed.clone(),
        created_at: now,
    }
}

fn new_user(
    profile: &Profile,
    email: &Email,
    referred_by: Option<socialauth_common::types::UserId>,
    round: usize,
    now: i64,
) -> NewUser {
    let (first_name, last_name) = names(profile);
    NewUser {
        username: username(profile, email, round),
        email: Some(email.as_str().to_owned()),
        email_normalized: Some(email.normalized()),
        first_name,
        last_name,
        referral_code: crypto::referral_code(),
        referred_by,
        created_at: now,
    }
}

fn names(profile: &Profile) -> (String, String) {
    match (&profile.first_name, &profile.last_name, &profile.name) {
        (None, None, Some(full)) => match full.trim().split_once(' ') {
            Some((first, last)) => (first.to_owned(), last.trim().to_owned()),
            None => (full.trim().to_owned(), String::new()),
        },
        (first, last, _) => (
            first.clone().unwrap_or_default(),
            last.clone().unwrap_or_default(),
        ),
    }
}

/// A readable, unique-enough username: the provider's handle or the email's
/// local part, ASCII only; after a collision a random suffix is added.
pub fn username(profile: &Profile, email: &Email, round: usize) -> String {
    let raw = profile
        .username
        .as_deref()
        .unwrap_or_else(|| email.as_str().split('@').next().unwrap_or(""));
    let mut base: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .take(24)
        .collect::<String>()
        .to_lowercase();
    if base.is_empty() {
        base.push_str("user");
    }
    if round == 0 {
        base
    } else {
        let suffix: u32 = rand::random::<u32>() % 1_000_000;
        format!("{base}{suffix:06}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(s: &str) -> Email {
        Email::parse(s).expect("valid email")
    }

    #[test]
    fn usernames_are_ascii_and_get_a_suffix_after_a_collision() {
        let p = Profile {
            username: Some("Zoë Ñandú".into()),
            ..Profile::default()
        };
        assert_eq!(username(&p, &email("z@x.io"), 0), "zoand");
        let again = username(&p, &email("z@x.io"), 1);
        assert!(again.starts_with("zoand") && again.len() == 11, "{again}");
        let none = Profile::default();
        assert_eq!(username(&none, &email("Ann.Lee@x.io"), 0), "ann.lee");
        let han = Profile {
            username: Some("山田".into()),
            ..Profile::default()
        };
        assert_eq!(username(&han, &email("山田@x.io"), 0), "user");
    }

    #[test]
    fn full_names_are_split_when_parts_are_missing() {
        let p = Profile {
            name: Some("Zoë Ñandú 山田".into()),
            ..Profile::default()
        };
        assert_eq!(names(&p), ("Zoë".to_owned(), "Ñandú 山田".to_owned()));
    }
}
