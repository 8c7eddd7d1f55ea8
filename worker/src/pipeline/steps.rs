//! The pipeline's steps, each a small function, and the one decision they
//! make together ([`decide`]). Nothing here touches the database but
//! [`reclaim`]: the facts come in, a decision goes out.

use super::LoginContext;
use crate::deps::{Deps, Policy};
use crate::error::WorkerError;
use socialauth_common::catalogue::ProviderConfig;
use socialauth_common::config::LinkingPolicy;
use socialauth_common::crypto::{self, Binding, Issued, TokenColumn};
use socialauth_common::jobs::{JobError, JobResult, LoginResult};
use socialauth_common::now_ms;
use socialauth_common::store::{
    DecideLogin, FactsQuery, LinkedUser, LoginChange, LoginFacts, LoginWrite, NewAuditEvent,
    NewSocialAccount, NewUser, PlannedLogin, SealedTokens,
};
use socialauth_common::types::{Email, Profile, ProviderTokens, User, UserId};
use std::sync::{Arc, Mutex};

/// Step 4's email and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenEmail {
    pub email: Email,
    /// The form uniqueness is decided on.
    pub normalized: String,
    /// True only when the provider gave it and said it verified it; an
    /// email the client typed never is.
    pub verified: bool,
}

/// Step 4: the provider's email, else the one the request brought
/// (unverified: nobody checked that its sender owns it).
pub fn choose_email(profile: &Profile, typed: Option<&str>) -> Option<ChosenEmail> {
    let chosen = |email: Email, verified: bool| ChosenEmail {
        normalized: email.normalized(),
        email,
        verified,
    };
    match profile.email.as_deref().and_then(Email::parse) {
        Some(email) => Some(chosen(email, profile.email_verified)),
        None => typed.and_then(Email::parse).map(|e| chosen(e, false)),
    }
}

/// Step 2: per-provider allowed email domains. Only an email the provider
/// verified counts: a typed one, or one the provider did not verify, says
/// nothing about who signs in.
pub fn check_allowed(
    provider: &ProviderConfig,
    email: Option<&ChosenEmail>,
) -> Result<(), JobError> {
    if provider.allowed_email_domains.is_empty() {
        return Ok(());
    }
    let allowed = email.is_some_and(|e| {
        let domain = e.email.domain().to_lowercase();
        e.verified && provider.allowed_email_domains.contains(&domain)
    });
    if allowed {
        Ok(())
    } else {
        Err(JobError::EmailNotAllowed)
    }
}

/// What the steps need to know from the store.
pub fn facts_query(ctx: &LoginContext) -> FactsQuery<'_> {
    FactsQuery {
        provider: ctx.provider.as_str(),
        uid: &ctx.login.profile.uid,
        email_normalized: ctx.email.as_ref().map(|e| e.normalized.as_str()),
        referral_code: ctx.referral_code.as_deref(),
    }
}

/// What a login does, decided from the facts.
#[derive(Debug)]
pub enum Decision {
    /// Log in: write this.
    Write(Change),
    /// Step 5: the verified owner of an address takes it from the account
    /// that had only typed it; then the steps run again.
    Reclaim { owner: User, email: ChosenEmail },
}

/// The login a decision writes.
#[derive(Debug)]
pub enum Change {
    /// Step 3: the identity's user (`is_new: false`).
    Existing { user: User, account_id: i64 },
    /// Step 5: link the identity to the verified owner of its verified
    /// email (`is_new: false`).
    Link { user: User },
    /// Step 6: a new user, with the id the store set aside (if it does).
    Create { user: NewUser, id: Option<UserId> },
}

/// Steps 3–6 on the facts of one reading. `round` counts the lost races
/// before this one (a username taken gets a suffix).
pub fn decide(ctx: &LoginContext, facts: &LoginFacts, round: usize) -> Result<Decision, JobError> {
    if let Some(linked) = existing_account(facts)? {
        return Ok(Decision::Write(Change::Existing {
            user: linked.user.clone(),
            account_id: linked.account_id,
        }));
    }
    let email = ctx.email.as_ref().ok_or(JobError::NoEmailProvided {
        partial_token: None,
        partial_job: None,
    });
    let email_use = email
        .as_ref()
        .map_err(|e| e.clone())
        .and_then(|e| email_policy(ctx.linking, e, facts.email_owner.as_ref()));
    signup_policy(ctx.linking, &email_use)?;
    let email = email?;
    match email_use? {
        EmailUse::Free => {}
        EmailUse::LinkTo(owner) => {
            return Ok(Decision::Write(Change::Link {
                user: owner.clone(),
            }));
        }
        EmailUse::ReclaimFrom(owner) => {
            return Ok(Decision::Reclaim {
                owner: owner.clone(),
                email: email.clone(),
            });
        }
    }
    let referred_by = referrer(ctx, facts)?;
    Ok(Decision::Write(Change::Create {
        user: new_user(&ctx.login.profile, email, referred_by, round, now_ms()),
        id: facts.new_user_id,
    }))
}

/// Step 3: the user already linked to the identity; an inactive one may
/// not log in.
pub fn existing_account(facts: &LoginFacts) -> Result<Option<&LinkedUser>, JobError> {
    match &facts.account {
        Some(linked) if !linked.user.is_active => Err(JobError::InactiveUser),
        other => Ok(other.as_ref()),
    }
}

/// What step 5 makes of the email's owner.
#[derive(Debug, PartialEq, Eq)]
pub enum EmailUse<'a> {
    /// Nobody has the address.
    Free,
    /// Link to its owner.
    LinkTo(&'a User),
    /// Take it from its owner, who only typed it.
    ReclaimFrom(&'a User),
}

/// Step 5, the email policy. A typed email never links and never takes an
/// address. A provider-verified email links to an owner whose address is
/// verified too, when the provider's linking policy links by email (else
/// `email_already_in_use`), and takes the address from an owner who only
/// typed it — so whoever typed someone else's address can neither capture
/// that person's later logins nor lock them out.
pub fn email_policy<'a>(
    linking: LinkingPolicy,
    email: &ChosenEmail,
    owner: Option<&'a User>,
) -> Result<EmailUse<'a>, JobError> {
    let Some(owner) = owner else {
        return Ok(EmailUse::Free);
    };
    match (email.verified, owner.email_verified) {
        (false, _) => Err(JobError::EmailAlreadyInUse),
        (true, false) => Ok(EmailUse::ReclaimFrom(owner)),
        (true, true) if !linking.links_by_email() => Err(JobError::EmailAlreadyInUse),
        (true, true) if !owner.is_active => Err(JobError::InactiveUser),
        (true, true) => Ok(EmailUse::LinkTo(owner)),
    }
}

/// Step 5's other half, who may sign up: under `link_only` a login that
/// step 5 does not link to an existing user (and that would otherwise
/// create one, ask for an email or take an address) is `signup_closed` —
/// never a request for an email that could not help. An inactive owner
/// stays `inactive_user`.
pub fn signup_policy(
    linking: LinkingPolicy,
    email_use: &Result<EmailUse<'_>, JobError>,
) -> Result<(), JobError> {
    match email_use {
        _ if linking.allows_signup() => Ok(()),
        Ok(EmailUse::LinkTo(_)) | Err(JobError::InactiveUser) => Ok(()),
        _ => Err(JobError::SignupClosed),
    }
}

/// What an association does, decided from the facts.
#[derive(Debug, PartialEq, Eq)]
pub enum Association {
    /// Link the identity to the user.
    Link,
    /// The identity is the user's already: nothing to write.
    Already { account_id: i64 },
}

/// The association rule, in place of steps 3–6 for a signed-in user who
/// links another identity: one nobody has is linked to them, one that is
/// theirs already stays as it is, one linked to another user is refused
/// (`social_account_already_associated`). The linking policy does not
/// apply: it says whether a *login* may link by email or sign up, and an
/// association links by neither — its user proved, in one signed-in
/// session, control of both accounts. Nor does any email: the user's own
/// stays as it is.
pub fn association(user_id: UserId, facts: &LoginFacts) -> Result<Association, JobError> {
    match &facts.account {
        None => Ok(Association::Link),
        Some(linked) if linked.user.id == user_id => Ok(Association::Already {
            account_id: linked.account_id,
        }),
        Some(_) => Err(JobError::SocialAccountAlreadyAssociated),
    }
}

/// An audit event of this login or association: `detail` is a JSON
/// object and carries no secret.
pub fn audit_event(
    ctx: &LoginContext,
    kind: &'static str,
    user_id: Option<UserId>,
    outcome: &'static str,
    detail: serde_json::Value,
) -> NewAuditEvent {
    NewAuditEvent {
        kind,
        user_id,
        provider: Some(ctx.provider.as_str().to_owned()),
        outcome,
        detail: detail.to_string(),
        request_id: ctx.request_id.clone(),
        at: now_ms(),
    }
}

/// The referrer of a new user: the owner of the code the request named.
fn referrer(ctx: &LoginContext, facts: &LoginFacts) -> Result<Option<UserId>, JobError> {
    match (&ctx.referral_code, facts.referrer) {
        (None, _) => Ok(None),
        (Some(_), Some(referrer)) => Ok(Some(referrer)),
        (Some(_), None) => Err(JobError::InvalidReferralCode {
            partial_token: None,
            partial_job: None,
        }),
    }
}

/// Step 5's reclaim, written: the address leaves the account that only
/// typed it, as an audit event says.
pub async fn reclaim(
    deps: &Deps,
    ctx: &LoginContext,
    owner: &User,
    email: &ChosenEmail,
) -> Result<(), WorkerError> {
    let event = audit_event(
        ctx,
        "email_reclaimed",
        Some(owner.id),
        "done",
        serde_json::json!({
            "email": email.email.as_str(),
            "reason": "verified by the provider of a new sign-in",
            "uid": ctx.login.profile.uid,
        }),
    );
    // False: someone else changed the owner first; the steps run again.
    deps.store
        .reclaim_email(owner.id, &email.normalized, &event)
        .await?;
    Ok(())
}

/// What a login writes whatever the decision, made once per login (not
/// per round): step 7's link, its provider tokens sealed, and step 8's app
/// token.
pub struct Prepared {
    account: NewSocialAccount,
    /// What a login through a known link writes to it: the login's tokens,
    /// or none to keep the stored ones ([`keeps_stored_tokens`]).
    existing: NewSocialAccount,
    issued: Issued,
    partial_hash: Option<String>,
}

/// Steps 7 and 8, ahead of the decision.
pub fn prepare(deps: &Deps, ctx: &LoginContext) -> Prepared {
    let account = new_link(deps, ctx, now_ms());
    let existing = if keeps_stored_tokens(ctx) {
        NewSocialAccount {
            tokens: SealedTokens::default(),
            ..account.clone()
        }
    } else {
        account.clone()
    };
    Prepared {
        account,
        existing,
        issued: app_token(deps, ctx),
        partial_hash: ctx
            .partial_token
            .as_ref()
            .map(|t| crypto::hash_token(t.expose())),
    }
}

impl Prepared {
    /// The reply once written: the user (with the id the store gave a new
    /// one) and the app token.
    pub fn result(&self, mut result: LoginResult, user_id: UserId) -> LoginResult {
        result.user.id = user_id;
        result.token = Some(self.issued.token.clone());
        result
    }
}

/// What the steps decided on the facts the store read.
#[derive(Debug)]
pub enum Decided {
    /// Written as this result (no token yet), if the store's write held.
    Write(LoginResult),
    /// Step 5's reclaim, to make before the steps run again.
    Reclaim { owner: User, email: ChosenEmail },
}

/// The steps, as the store asks them between its read and its write
/// ([`socialauth_common::store::Store::log_in`]): [`decide`] on the facts,
/// then [`plan`]. What they decided is kept for the pipeline.
pub struct Deciding {
    ctx: Arc<LoginContext>,
    policy: Policy,
    prepared: Arc<Prepared>,
    round: usize,
    outcome: Mutex<Option<Result<Decided, JobError>>>,
}

impl Deciding {
    pub fn new(
        deps: &Deps,
        ctx: &Arc<LoginContext>,
        prepared: &Arc<Prepared>,
        round: usize,
    ) -> Self {
        Self {
            ctx: Arc::clone(ctx),
            policy: deps.policy.clone(),
            prepared: Arc::clone(prepared),
            round,
            outcome: Mutex::new(None),
        }
    }

    /// The last decision (an error when none was made).
    pub fn outcome(&self) -> Result<Decided, JobError> {
        self.outcome
            .lock()
            .map_err(|_| JobError::Internal)?
            .take()
            .unwrap_or(Err(JobError::Internal))
    }
}

impl DecideLogin for Deciding {
    fn decide(&self, facts: &LoginFacts) -> Option<Box<dyn PlannedLogin>> {
        let (outcome, planned) = match decide(&self.ctx, facts, self.round) {
            Ok(Decision::Write(change)) => {
                let planned = plan(&self.policy, &self.ctx, &self.prepared, change);
                let result = planned.result();
                (Ok(Decided::Write(result)), Some(planned))
            }
            Ok(Decision::Reclaim { owner, email }) => (Ok(Decided::Reclaim { owner, email }), None),
            Err(e) => (Err(e), None),
        };
        if let Ok(mut slot) = self.outcome.lock() {
            *slot = Some(outcome);
        }
        planned.map(|p| Box::new(p) as Box<dyn PlannedLogin>)
    }

    fn size_hint(&self) -> usize {
        let a = &self.prepared.account;
        let t = &a.tokens;
        // The link's text, its sealed tokens, and about 1 KiB for the user,
        // the result and the rest.
        a.extra_data.len()
            + a.uid.len()
            + [&t.access_token, &t.refresh_token, &t.token_secret]
                .iter()
                .map(|s| s.as_ref().map_or(0, String::len))
                .sum::<usize>()
            + 1024
    }
}

/// A change made ready to write: the prepared link and app token, the
/// job's result, the audit event.
pub struct Planned {
    prepared: Arc<Prepared>,
    change: Change,
    job_id: uuid::Uuid,
    token_expires_at: Option<i64>,
    stored: JobResult,
    audit: Option<NewAuditEvent>,
    now: i64,
}

/// `change` made ready to write, with what [`prepare`] made (steps 7 and
/// 8): the job's result and, for an automatic link, its audit event.
pub fn plan(
    policy: &Policy,
    ctx: &LoginContext,
    prepared: &Arc<Prepared>,
    change: Change,
) -> Planned {
    let now = now_ms();
    let (user, is_new) = match &change {
        Change::Existing { user, .. } | Change::Link { user } => (user.clone(), false),
        Change::Create { user, id } => (user.created(id.unwrap_or(UserId(0))), true),
    };
    let audit = matches!(change, Change::Link { .. }).then(|| NewAuditEvent {
        at: now,
        ..audit_event(
            ctx,
            "automatic_link",
            Some(user.id),
            "linked",
            serde_json::json!({
                "uid": ctx.login.profile.uid,
                "reason": "the provider verified the email of this verified account",
            }),
        )
    });
    Planned {
        prepared: Arc::clone(prepared),
        job_id: ctx.job_id,
        token_expires_at: policy.token_ttl_ms.map(|ttl| now.saturating_add(ttl)),
        stored: JobResult::Login(LoginResult {
            token: None,
            is_new,
            user,
            token_job: None,
        }),
        audit,
        change,
        now,
    }
}

impl Planned {
    /// The result it stores (no token).
    fn result(&self) -> LoginResult {
        match &self.stored {
            JobResult::Login(result) => result.clone(),
            _ => unreachable!("a planned login stores a login result"),
        }
    }
}

impl PlannedLogin for Planned {
    fn write(&self) -> LoginWrite<'_> {
        let prepared = &self.prepared;
        let (change, user_id, account) = match &self.change {
            Change::Existing { user, account_id } => (
                LoginChange::Existing {
                    account_id: *account_id,
                },
                Some(user.id),
                &prepared.existing,
            ),
            Change::Link { user } => (LoginChange::Link, Some(user.id), &prepared.account),
            Change::Create { user, id } => (LoginChange::Create { user }, *id, &prepared.account),
        };
        LoginWrite {
            change,
            user_id,
            account,
            token_hash: &self.prepared.issued.hash,
            token_expires_at: self.token_expires_at,
            job_id: self.job_id,
            result: &self.stored,
            partial_hash: self.prepared.partial_hash.as_deref(),
            audit: self.audit.as_ref(),
            now: self.now,
        }
    }
}

/// Step 7's rule for a known link: a token login (a client SDK's access
/// token or id_token) keeps the provider tokens stored with the link —
/// those a code flow obtained, which this service can refresh and revoke —
/// instead of replacing them with the app's token, or with none (an
/// id_token brings none). A new link stores what the login brought.
pub fn keeps_stored_tokens(ctx: &LoginContext) -> bool {
    ctx.from_client_sdk
}

/// Step 7: the link of the identity, its provider tokens sealed.
pub fn new_link(deps: &Deps, ctx: &LoginContext, now: i64) -> NewSocialAccount {
    NewSocialAccount {
        user_id: UserId(0),
        provider: ctx.provider.as_str().to_owned(),
        uid: ctx.login.profile.uid.clone(),
        email: ctx.login.profile.email.clone(),
        extra_data: serde_json::to_string(&ctx.login.profile).unwrap_or_else(|_| "{}".into()),
        tokens: seal(deps, ctx, &ctx.login.tokens),
        created_at: now,
    }
}

/// Step 8: the app token, derived from the job (so a retry of the same
/// request gets this very token, and a poll can show it once).
pub fn app_token(deps: &Deps, ctx: &LoginContext) -> Issued {
    deps.secrets.app_token(ctx.job_id)
}

/// The provider's tokens, each sealed on its own for its column of the
/// identity's link (bound to the identity: a new link's row id is not
/// known yet), all under the current key.
fn seal(deps: &Deps, ctx: &LoginContext, tokens: &ProviderTokens) -> SealedTokens {
    let sealed = |value: Option<&str>, column| {
        value.map(|v| {
            let binding = Binding::Account {
                provider: ctx.provider.as_str(),
                uid: &ctx.login.profile.uid,
                column,
            };
            deps.cipher.seal(v, binding).data
        })
    };
    let access = Some(tokens.access_token.expose().as_str()).filter(|t| !t.is_empty());
    let access_token = sealed(access, TokenColumn::AccessToken);
    let refresh_token = sealed(
        tokens.refresh_token.as_ref().map(|t| t.expose().as_str()),
        TokenColumn::RefreshToken,
    );
    let token_secret = sealed(
        tokens.token_secret.as_ref().map(|t| t.expose().as_str()),
        TokenColumn::TokenSecret,
    );
    // A key id names the key of whatever is sealed; none: no tokens at
    // all (a known link keeps its stored ones).
    let any = access_token.is_some() || refresh_token.is_some() || token_secret.is_some();
    SealedTokens {
        key_id: any.then(|| deps.cipher.current_key_id().to_owned()),
        access_token,
        refresh_token,
        token_secret,
        expires_at: tokens.expires_at,
    }
}

/// Step 6: a new user with a unique-enough username, its own referral code
/// and its referrer; the email as chosen, verified or not.
pub fn new_user(
    profile: &Profile,
    email: &ChosenEmail,
    referred_by: Option<UserId>,
    round: usize,
    now: i64,
) -> NewUser {
    let (first_name, last_name) = names(profile);
    NewUser {
        username: username(profile, &email.email, round),
        email: Some(email.email.as_str().to_owned()),
        email_normalized: Some(email.normalized.clone()),
        email_verified: email.verified,
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

    fn owner(verified: bool, active: bool) -> User {
        User {
            id: UserId(7),
            username: "owner".into(),
            email: Some("o@x.io".into()),
            email_verified: verified,
            first_name: String::new(),
            last_name: String::new(),
            is_active: active,
            referral_code: "R".into(),
            referred_by: None,
            created_at: 0,
        }
    }

    /// Steps 5's two rules over every policy: what a login may do with
    /// the email's owner, then whether it may sign up.
    #[test]
    fn each_linking_policy_links_and_signs_up_as_documented() {
        use LinkingPolicy::{Deny, LinkOnly, LinkVerified};
        let chosen = |verified| ChosenEmail {
            email: email("o@x.io"),
            normalized: "o@x.io".into(),
            verified,
        };
        let (typed_owner, verified_owner, inactive) =
            (owner(false, true), owner(true, true), owner(true, false));
        let outcome = |linking, verified, owner: Option<&User>| {
            let used = email_policy(linking, &chosen(verified), owner);
            signup_policy(linking, &used).and(used).map(|u| match u {
                EmailUse::Free => "create",
                EmailUse::LinkTo(_) => "link",
                EmailUse::ReclaimFrom(_) => "reclaim",
            })
        };
        let closed = Err(JobError::SignupClosed);
        let in_use = Err(JobError::EmailAlreadyInUse);
        for linking in [Deny, LinkVerified] {
            assert_eq!(outcome(linking, true, None), Ok("create"));
            assert_eq!(outcome(linking, false, None), Ok("create"));
            assert_eq!(outcome(linking, false, Some(&verified_owner)), in_use);
            assert_eq!(outcome(linking, true, Some(&typed_owner)), Ok("reclaim"));
        }
        assert_eq!(outcome(Deny, true, Some(&verified_owner)), in_use);
        assert_eq!(
            outcome(LinkVerified, true, Some(&verified_owner)),
            Ok("link")
        );
        assert_eq!(outcome(LinkOnly, true, Some(&verified_owner)), Ok("link"));
        assert_eq!(outcome(LinkOnly, true, None), closed);
        assert_eq!(outcome(LinkOnly, false, None), closed);
        assert_eq!(outcome(LinkOnly, false, Some(&verified_owner)), closed);
        assert_eq!(outcome(LinkOnly, true, Some(&typed_owner)), closed);
        assert_eq!(
            outcome(LinkOnly, true, Some(&inactive)),
            Err(JobError::InactiveUser)
        );
        let no_email = Err(JobError::NoEmailProvided {
            partial_token: None,
            partial_job: None,
        });
        assert_eq!(
            signup_policy(LinkOnly, &no_email),
            Err(JobError::SignupClosed)
        );
        assert_eq!(signup_policy(Deny, &no_email), Ok(()));
    }

    /// An association links a free identity, keeps the user's own and
    /// refuses another user's, whatever the email facts.
    #[test]
    fn an_association_links_only_free_or_own_identities() {
        use socialauth_common::store::LinkedUser;
        let linked_to = |id| LoginFacts {
            account: Some(LinkedUser {
                account_id: 3,
                user: User {
                    id: UserId(id),
                    ..owner(true, true)
                },
            }),
            ..LoginFacts::default()
        };
        let free = LoginFacts {
            email_owner: Some(owner(true, true)),
            ..LoginFacts::default()
        };
        assert_eq!(association(UserId(7), &free), Ok(Association::Link));
        assert_eq!(
            association(UserId(7), &linked_to(7)),
            Ok(Association::Already { account_id: 3 })
        );
        assert_eq!(
            association(UserId(7), &linked_to(8)),
            Err(JobError::SocialAccountAlreadyAssociated)
        );
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
