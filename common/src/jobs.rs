//! Job payloads on the wire: versioned serde types. Never change what a
//! published field means; add fields with defaults or add a variant.

use crate::config::NonceConvention;
use crate::secret::Secret;
use crate::types::{ProviderName, SocialAccount, User, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Version written into every envelope.
pub const JOB_VERSION: u16 = 1;

/// Exchange and queue names (before the configured prefix).
pub mod names {
    pub const EXCHANGE: &str = "socialauth";
    pub const LOGIN_QUEUE: &str = "login";
    pub const REFRESH_QUEUE: &str = "refresh";
    pub const CAMPAIGN_QUEUE: &str = "campaign";
    pub const DEAD_QUEUE: &str = "dead";
}

/// Which queue a job travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Login,
    Refresh,
    /// Refresh campaigns' planning and pages: long jobs, on their own queue
    /// with their own slots, so a campaign never holds up a login or an
    /// app's token request.
    Campaign,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => names::LOGIN_QUEUE,
            Self::Refresh => names::REFRESH_QUEUE,
            Self::Campaign => names::CAMPAIGN_QUEUE,
        }
    }

    /// Parses the name stored in the `jobs` table.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            names::LOGIN_QUEUE => Some(Self::Login),
            names::REFRESH_QUEUE => Some(Self::Refresh),
            names::CAMPAIGN_QUEUE => Some(Self::Campaign),
            _ => None,
        }
    }
}

/// What travels in one message. `id` is the AMQP message id and the
/// correlation id of the reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobEnvelope {
    pub v: u16,
    pub id: Uuid,
    #[serde(default)]
    pub request_id: Option<String>,
    pub created_at: i64,
    pub job: Job,
}

impl JobEnvelope {
    pub fn new(job: Job, request_id: Option<String>) -> Self {
        Self::with_id(Uuid::new_v4(), job, request_id)
    }

    /// An envelope whose id the caller chose (and recorded elsewhere).
    pub fn with_id(id: Uuid, job: Job, request_id: Option<String>) -> Self {
        Self {
            v: JOB_VERSION,
            id,
            request_id,
            created_at: crate::now_ms(),
            job,
        }
    }

    pub fn kind(&self) -> JobKind {
        self.job.kind()
    }

    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings, numbers and enums always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// What a dead letter keeps of a job: what it was and for whom — never
    /// its credentials (codes, verifiers, tokens, sealed tokens).
    pub fn dead_letter_summary(&self) -> serde_json::Value {
        serde_json::json!({
            "v": self.v,
            "id": self.id,
            "type": self.job.type_name(),
            "provider": self.job.provider(),
            "request_id": self.request_id,
            "created_at": self.created_at,
        })
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let env: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if env.v == 0 || env.v > JOB_VERSION {
            return Err(format!("unsupported job version {}", env.v));
        }
        Ok(env)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Job {
    /// Finish a login: exchange the provider's answer for a profile, run the
    /// user pipeline, issue an app token.
    Login(LoginJob),
    /// Fetch a provider's OpenID Connect discovery document (the api needs
    /// its authorization endpoint and makes no provider call itself).
    Discover(DiscoverJob),
    /// OAuth 1.0a step 1: obtain a request token; its secret is kept
    /// server-side, keyed by `oauth_token`.
    RequestToken(RequestTokenJob),
    /// Link the provider's identity to a signed-in user (association):
    /// the provider step of a login, then the association's decision.
    Associate(AssociateJob),
    /// Revoke a removed link's provider tokens at the provider (RFC 7009),
    /// best effort.
    Revoke(RevokeJob),
    /// A link's provider access token, refreshed first when it must be
    /// (one refresh per link at a time, across every process).
    Refresh(RefreshJob),
    /// Plan a refresh campaign: record the accounts it covers in pages and
    /// publish a page job for each (from where planning stopped).
    CampaignPlan(CampaignPlanJob),
    /// Refresh one page of a campaign's accounts.
    CampaignPage(CampaignPageJob),
}

impl Job {
    /// The variant's name on the wire (`login`, `refresh`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Login(_) => "login",
            Self::Discover(_) => "discover",
            Self::RequestToken(_) => "request_token",
            Self::Associate(_) => "associate",
            Self::Revoke(_) => "revoke",
            Self::Refresh(_) => "refresh",
            Self::CampaignPlan(_) => "campaign_plan",
            Self::CampaignPage(_) => "campaign_page",
        }
    }

    /// The provider a job is for, when it names one.
    pub fn provider(&self) -> Option<&str> {
        match self {
            Self::Login(j) => Some(j.provider.as_str()),
            Self::Discover(j) => Some(j.provider.as_str()),
            Self::RequestToken(j) => Some(j.provider.as_str()),
            Self::Associate(j) => Some(j.provider.as_str()),
            Self::Revoke(j) => Some(j.provider.as_str()),
            Self::CampaignPage(j) => Some(j.provider.as_str()),
            Self::Refresh(_) | Self::CampaignPlan(_) => None,
        }
    }

    pub fn kind(&self) -> JobKind {
        match self {
            Self::Login(_) | Self::Discover(_) | Self::RequestToken(_) | Self::Associate(_) => {
                JobKind::Login
            }
            Self::Revoke(_) | Self::Refresh(_) => JobKind::Refresh,
            Self::CampaignPlan(_) | Self::CampaignPage(_) => JobKind::Campaign,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginJob {
    pub provider: ProviderName,
    pub credential: LoginCredential,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub referral_code: Option<String>,
}

/// The provider's answer the client brought back.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LoginCredential {
    /// OAuth2/OIDC authorization code.
    AuthorizationCode {
        code: Secret,
        redirect_uri: String,
        #[serde(default)]
        pkce_verifier: Option<Secret>,
        #[serde(default)]
        nonce: Option<Secret>,
        /// The api consumed a single-use state for this code (the djoser
        /// flow), so it cannot come twice: no claim is needed.
        #[serde(default)]
        state_consumed: bool,
    },
    /// OAuth 1.0a step 2. `oauth_token_secret` is the client's echo of the
    /// secret (the `/social-auth` API); it must match the stored one.
    #[serde(rename = "oauth1")]
    OAuth1 {
        oauth_token: String,
        #[serde(default)]
        oauth_token_secret: Option<Secret>,
        oauth_verifier: Secret,
    },
    /// Resume a login stopped for a missing email or a bad referral code:
    /// no second provider round trip.
    Partial { partial_token: Secret },
    /// The djoser flow's second POST of a code whose state the first one
    /// took (a double submit, within the retry window: the api checked it
    /// with `redemption::retry_of`): the first job's outcome is the
    /// answer, and nothing is exchanged.
    Retry { first_job: Uuid },
    /// Token login: an access token a client-side SDK obtained (Facebook
    /// JS SDK, Google). Checked to be this app's, then used once.
    AccessToken { access_token: Secret },
    /// Token login: an id_token a client-side SDK obtained (Google or
    /// Apple native sign-in), with the nonce the client sent the provider.
    IdToken {
        id_token: Secret,
        #[serde(default)]
        nonce: Option<Secret>,
        /// The name the client sent along (Apple gives it to the app at
        /// the first sign-in only, never in the id_token): cosmetic, used
        /// where the id_token has no name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<SuppliedName>,
    },
}

/// A name a client sent with its credential (Apple's first-sign-in `user`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppliedName {
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssociateJob {
    pub provider: ProviderName,
    /// The signed-in user the api bound the state (or request token) to.
    pub user_id: UserId,
    /// An authorization code whose state the api took and checked, or an
    /// OAuth 1.0a verifier whose request token must name `user_id`.
    pub credential: LoginCredential,
}

/// What a refresh job is asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshJob {
    pub account_id: i64,
    /// The link must be this user's (`None`: the operator's call).
    #[serde(default)]
    pub user_id: Option<UserId>,
    /// Refresh even when the access token is still valid (`POST
    /// …/refresh`).
    #[serde(default)]
    pub force: bool,
    /// Otherwise, refresh when the access token is valid for less than
    /// this many seconds.
    #[serde(default)]
    pub min_validity_secs: i64,
    /// While another refresher holds the link, do nothing rather than wait
    /// for it (a scheduled refresh).
    #[serde(default)]
    pub skip_if_busy: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignPlanJob {
    pub campaign_id: Uuid,
    /// Publish every page with an account not yet handled, not only those
    /// planned after the last publication (the embedded queue, whose jobs
    /// do not outlive the process, after a restart).
    #[serde(default)]
    pub republish: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignPageJob {
    pub campaign_id: Uuid,
    pub page: i64,
    /// Every account of a page is of this provider.
    pub provider: ProviderName,
}

/// A removed link's tokens, sealed as stored (the worker opens them).
/// `Debug` names which tokens it carries, not even their ciphertext.
#[derive(Clone, Serialize, Deserialize)]
pub struct RevokeJob {
    pub provider: ProviderName,
    pub user_id: UserId,
    pub account_id: i64,
    /// The link's uid: with the provider, what its tokens are bound to
    /// (absent in jobs of releases whose tokens were bound to nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    pub key_id: Option<String>,
    #[serde(default)]
    pub access_token_enc: Option<String>,
    #[serde(default)]
    pub refresh_token_enc: Option<String>,
}

impl std::fmt::Debug for RevokeJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokeJob")
            .field("provider", &self.provider)
            .field("user_id", &self.user_id)
            .field("account_id", &self.account_id)
            .field("access_token", &self.access_token_enc.is_some())
            .field("refresh_token", &self.refresh_token_enc.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiscoverJob {
    pub provider: ProviderName,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestTokenJob {
    pub provider: ProviderName,
    /// The `oauth_callback`: an allowed redirect URI.
    pub callback: String,
    /// The signed-in user an association's request token is for.
    #[serde(default)]
    pub user_id: Option<UserId>,
}

/// A job's result: sent as the reply and stored in `jobs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum JobResult {
    Login(LoginResult),
    Discovered(DiscoveredEndpoints),
    RequestToken(RequestTokenResult),
    Associated(AssociationResult),
    /// A revocation's outcome (nobody waits for it).
    Revoked(RevocationResult),
    /// A link's access token, fresh enough.
    Refreshed(RefreshResult),
    /// A campaign's planning or page did its part (nobody waits for it).
    CampaignWork(CampaignWork),
    Failed(JobError),
}

impl JobResult {
    /// The form kept in the database: app tokens and partial tokens are
    /// only ever stored as hashes, so they are left out (the job ids they
    /// derive from stay: [`crate::crypto::JobSecrets`]).
    pub fn without_secrets(&self) -> Self {
        match self {
            Self::Login(r) => Self::Login(LoginResult {
                token: None,
                ..r.clone()
            }),
            Self::Failed(e) => Self::Failed(e.without_secrets()),
            Self::Refreshed(r) => Self::Refreshed(RefreshResult {
                access_token: None,
                ..r.clone()
            }),
            other => other.clone(),
        }
    }

    pub fn is_success(&self) -> bool {
        !matches!(self, Self::Failed(_))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginResult {
    /// Present in the reply; absent in the stored copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    pub is_new: bool,
    pub user: User,
    /// The job whose app token this login's is, when not its own (a
    /// retry answered with the first job's token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_job: Option<Uuid>,
}

/// An association's outcome: the link, and whether this job made it (201)
/// or the user already had it (200).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssociationResult {
    pub account: SocialAccount,
    pub created: bool,
}

/// A link's provider access token and when it expires (ms since the
/// epoch; `None`: the provider did not say). The token is in the reply
/// only, never in the stored copy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<Secret>,
    pub expires_at: Option<i64>,
    /// Whether this job refreshed it at the provider.
    pub refreshed: bool,
}

/// What a campaign job did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CampaignWork {
    /// Pages published (planning) or accounts handled (a page).
    pub handled: u64,
    /// The page stopped part-way because its worker is shutting down: it
    /// is left unacknowledged, so the broker hands it to another worker,
    /// which goes on from where this one stopped.
    #[serde(default)]
    pub interrupted: bool,
}

/// What a revocation did with each token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevocationResult {
    /// `revoked`, `failed`, `not_supported` (no revocation endpoint) or
    /// `no_token`.
    pub outcome: String,
}

/// OAuth 1.0a step 1's answer (never stored in `jobs`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestTokenResult {
    pub oauth_token: String,
    pub oauth_token_secret: Secret,
    pub oauth_callback_confirmed: bool,
    pub authorization_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveredEndpoints {
    pub authorization_endpoint: String,
}

/// Why a job did not succeed. The api renders each in the contract's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum JobError {
    #[error("unknown or disabled provider")]
    InvalidProvider,
    #[error("the provider refused the credentials")]
    InvalidCredentials,
    /// Resumable with the partial token and an email.
    #[error("the provider gave no email and none was sent")]
    NoEmailProvided {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        partial_token: Option<Secret>,
        /// The job that stopped the login: its partial token derives from
        /// it (what a poll shows); `None` when the client sent the token.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        partial_job: Option<Uuid>,
    },
    /// Resumable with the partial token and another code (or none).
    #[error("unknown referral code")]
    InvalidReferralCode {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        partial_token: Option<Secret>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        partial_job: Option<Uuid>,
    },
    #[error("unknown, used or expired partial token")]
    InvalidPartialToken,
    #[error("the email belongs to another account")]
    EmailAlreadyInUse,
    /// Token login: the provider has no check that binds an access token
    /// to this app, so it takes none (an id_token is the way in).
    #[error("the provider takes no client-side access tokens")]
    AccessTokenNotAccepted,
    /// No such link (or not the caller's).
    #[error("no such social account")]
    SocialAccountNotFound,
    /// The link has no refresh token (and a refresh was asked, or its
    /// access token expired).
    #[error("the provider gave no refresh token")]
    RefreshNotSupported,
    /// The provider refused the link's refresh token: its user must sign
    /// in with the provider again.
    #[error("the link needs its user to sign in again")]
    NeedsReauth,
    /// Association: the identity is linked to another user.
    #[error("the social account belongs to another user")]
    SocialAccountAlreadyAssociated,
    /// The provider's linking policy is `link_only` and the login would
    /// have created a user.
    #[error("signups are closed")]
    SignupClosed,
    #[error("the email's domain is not allowed")]
    EmailNotAllowed,
    #[error("the user is inactive")]
    InactiveUser,
    #[error("the provider is unavailable")]
    ProviderUnavailable,
    /// Token login: the id_token carries a nonce and none was sent.
    #[error("the id_token carries a nonce and none was sent")]
    NonceRequired,
    /// Token login: the id_token's nonce is not the one sent, by the
    /// provider's convention (`expected`).
    #[error("the id_token's nonce does not match the one sent")]
    NonceMismatch { expected: NonceConvention },
    #[error("the job could not be handled")]
    Internal,
}

impl JobError {
    /// The stored form: no partial token (its job id stays).
    pub fn without_secrets(&self) -> Self {
        match self {
            Self::NoEmailProvided { partial_job, .. } => Self::NoEmailProvided {
                partial_token: None,
                partial_job: *partial_job,
            },
            Self::InvalidReferralCode { partial_job, .. } => Self::InvalidReferralCode {
                partial_token: None,
                partial_job: *partial_job,
            },
            other => other.clone(),
        }
    }

    /// A resumable error with `token` as its partial token.
    pub fn with_partial_token(self, token: Secret) -> Self {
        match self {
            Self::NoEmailProvided { partial_job, .. } => Self::NoEmailProvided {
                partial_token: Some(token),
                partial_job,
            },
            Self::InvalidReferralCode { partial_job, .. } => Self::InvalidReferralCode {
                partial_token: Some(token),
                partial_job,
            },
            other => other,
        }
    }

    /// The job a resumable error's partial token derives from.
    pub fn partial_job(&self) -> Option<Uuid> {
        match self {
            Self::NoEmailProvided { partial_job, .. }
            | Self::InvalidReferralCode { partial_job, .. } => *partial_job,
            _ => None,
        }
    }

    /// The job whose partial token this resumable error should carry and
    /// does not (its stored copy).
    pub fn missing_partial_token(&self) -> Option<Uuid> {
        match self {
            Self::NoEmailProvided {
                partial_token: None,
                partial_job,
            }
            | Self::InvalidReferralCode {
                partial_token: None,
                partial_job,
            } => *partial_job,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-1 payload as published by the first release. It must keep
    /// decoding as long as such messages may sit in a queue.
    const GOLDEN_LOGIN_V1: &str = r#"{"v":1,"id":"0b9a5c1e-2a49-4b3c-8f0e-0c7b8a0d7e11","request_id":"r-1","created_at":1700000000000,"job":{"type":"login","provider":"corp","credential":{"kind":"authorization_code","code":"abc","redirect_uri":"http://localhost:3000/cb","pkce_verifier":"v","nonce":"n"},"email":null,"referral_code":null}}"#;

    #[test]
    fn golden_login_v1_decodes() {
        let env = JobEnvelope::from_json(GOLDEN_LOGIN_V1.as_bytes()).expect("decode");
        assert_eq!(env.kind(), JobKind::Login);
        let Job::Login(job) = env.job else {
            panic!("not a login job")
        };
        assert_eq!(job.provider.as_str(), "corp");
        let LoginCredential::AuthorizationCode {
            code, redirect_uri, ..
        } = job.credential
        else {
            panic!("not an authorization code")
        };
        assert_eq!(code.expose(), "abc");
        assert_eq!(redirect_uri, "http://localhost:3000/cb");
    }

    #[test]
    fn a_dead_letter_summary_keeps_no_credential() {
        let env = JobEnvelope::from_json(GOLDEN_LOGIN_V1.as_bytes()).expect("decode");
        let summary = env.dead_letter_summary().to_string();
        // The code, verifier and nonce of the golden job as JSON values.
        for secret in ["\"abc\"", ":\"v\"", ":\"n\"", "code", "verifier", "nonce"] {
            assert!(!summary.contains(secret), "{secret} in {summary}");
        }
        assert!(summary.contains("\"type\":\"login\""), "{summary}");
        assert!(summary.contains("\"provider\":\"corp\""), "{summary}");
        assert!(summary.contains("r-1"), "{summary}");
    }

    /// Token-login payloads: their tags are part of the wire format.
    #[test]
    fn token_login_credentials_have_stable_tags() {
        let raw = r#"{"v":1,"id":"0b9a5c1e-2a49-4b3c-8f0e-0c7b8a0d7e12","created_at":1,"job":{"type":"login","provider":"apple","credential":{"kind":"id_token","id_token":"eyJ","nonce":"n","name":{"first_name":"Ann","last_name":null}}}}"#;
        let env = JobEnvelope::from_json(raw.as_bytes()).expect("decode");
        let Job::Login(job) = env.job else {
            panic!("not a login job")
        };
        let LoginCredential::IdToken {
            id_token,
            nonce,
            name,
        } = &job.credential
        else {
            panic!("not an id_token")
        };
        assert_eq!(id_token.expose(), "eyJ");
        assert_eq!(nonce.as_ref().map(|n| n.expose().as_str()), Some("n"));
        assert_eq!(
            name.as_ref().and_then(|n| n.first_name.as_deref()),
            Some("Ann")
        );
        let at = LoginCredential::AccessToken {
            access_token: Secret::new("at-secret".into()),
        };
        let json = serde_json::to_string(&at).expect("encode");
        assert_eq!(
            json,
            r#"{"kind":"access_token","access_token":"at-secret"}"#
        );
        assert!(!format!("{at:?}").contains("at-secret"));
        let failed = JobResult::Failed(JobError::NonceMismatch {
            expected: NonceConvention::Sha256,
        });
        assert_eq!(
            serde_json::to_string(&failed).expect("encode"),
            r#"{"status":"failed","error":"nonce_mismatch","expected":"sha256"}"#
        );
    }

    #[test]
    fn envelopes_round_trip() {
        let env = JobEnvelope::new(
            Job::Discover(DiscoverJob {
                provider: ProviderName::parse("corp").expect("name"),
            }),
            None,
        );
        let back = JobEnvelope::from_json(&env.to_json()).expect("decode");
        assert_eq!(back.id, env.id);
    }

    #[test]
    fn future_versions_are_refused() {
        let raw = GOLDEN_LOGIN_V1.replace("\"v\":1", "\"v\":9");
        assert!(JobEnvelope::from_json(raw.as_bytes()).is_err());
    }

    #[test]
    fn stored_failures_carry_no_partial_token_but_its_job() {
        let job = Uuid::new_v4();
        let r = JobResult::Failed(JobError::NoEmailProvided {
            partial_token: Some(Secret::new("partial-secret".into())),
            partial_job: Some(job),
        });
        let json = serde_json::to_string(&r.without_secrets()).expect("encode");
        assert!(!json.contains("partial-secret"), "{json}");
        assert!(json.contains(&job.to_string()), "{json}");
    }

    #[test]
    fn stored_results_carry_no_token() {
        let r = JobResult::Login(LoginResult {
            token: Some(Secret::new("tok".into())),
            is_new: true,
            user: User {
                id: crate::types::UserId(1),
                username: "a".into(),
                email: None,
                email_verified: false,
                first_name: String::new(),
                last_name: String::new(),
                is_active: true,
                referral_code: "R".into(),
                referred_by: None,
                created_at: 0,
            },
            token_job: None,
        });
        let json = serde_json::to_string(&r.without_secrets()).expect("encode");
        assert!(!json.contains("tok"), "{json}");
        let debug = format!("{r:?}");
        assert!(!debug.contains("\"tok\""), "{debug}");
    }

    #[test]
    fn errors_have_stable_tags() {
        let json =
            serde_json::to_string(&JobResult::Failed(JobError::EmailAlreadyInUse)).expect("encode");
        assert_eq!(
            json,
            r#"{"status":"failed","error":"email_already_in_use"}"#
        );
    }
}
