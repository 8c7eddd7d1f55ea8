//! The one `Settings` tree: a TOML file, then `SOCIALAUTH__SECTION__KEY`
//! environment variables. Unknown keys are an error.

use crate::secret::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(String),
    #[error("configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub server: ServerSettings,
    /// Absent: an SQLite file (the embedded default).
    pub database: Option<DatabaseSettings>,
    /// Absent: the in-process queue, the worker runs inside the api.
    pub queue: Option<QueueSettings>,
    #[serde(default)]
    pub worker: WorkerSettings,
    #[serde(default)]
    pub security: SecuritySettings,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderSettings>,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    #[serde(default)]
    pub refresh: RefreshSettings,
    #[serde(default)]
    pub cleanup: CleanupSettings,
    #[serde(default)]
    pub reencrypt: ReencryptSettings,
    #[serde(default)]
    pub demo: DemoSettings,
}

/// `/demo`: a page with a button per configured provider that completes
/// the djoser flow in the browser and shows the user and their linked
/// accounts. Off unless enabled; its own address (`<origin>/demo`) must be
/// in `[security] allowed_redirect_uris` and registered at the providers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoSettings {
    pub enabled: bool,
}

/// Re-encryption of provider tokens (`POST /admin/reencrypt`): every
/// worker, and the embedded default, looks for a running one whose key is
/// its current key and works through it page by page; one at a time holds
/// it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReencryptSettings {
    /// How often an idle process looks for a re-encryption to work on;
    /// 0: this process never does.
    pub poll_interval_ms: u64,
    /// Links sealed again per page (one transaction each).
    pub page_size: u32,
    /// A pause between two pages (to spare a busy database); 0: none.
    pub pause_ms: u64,
    /// How long a process holds a re-encryption without writing a page
    /// before another may take it over (a process that died).
    pub lease_secs: u64,
}

impl Default for ReencryptSettings {
    fn default() -> Self {
        Self {
            poll_interval_ms: 5_000,
            page_size: 500,
            pause_ms: 0,
            lease_secs: 60,
        }
    }
}

/// Deleting what is no longer kept (every worker, and the embedded
/// default, takes part; deleting twice does nothing).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CleanupSettings {
    /// How often expired login states, request tokens, partial logins,
    /// remembered codes, expired app tokens and old job rows are deleted;
    /// 0: never.
    pub every_secs: u64,
    /// How long a job's outcome (and its redelivery count) is kept after
    /// its last write; at least an hour (a 202 is polled within ten
    /// minutes; a redelivered job looks for its first run's outcome).
    pub job_retention_secs: u64,
}

impl Default for CleanupSettings {
    fn default() -> Self {
        Self {
            every_secs: 60,
            job_retention_secs: 24 * 3600,
        }
    }
}

/// Provider-token refresh.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RefreshSettings {
    /// `GET /auth/social-accounts/{id}/token` hands out an access token
    /// valid for at least this long, refreshing it first if needed.
    pub min_validity_secs: i64,
    /// How long a refresher holds a link's lease (longer than a provider
    /// call can take); another refresher waits for it at most this long.
    pub lease_secs: i64,
    /// A refreshed token's lifetime when the provider names none.
    pub default_expires_in_secs: i64,
    /// Scheduled refresh: every worker refreshes, on its own, the links
    /// whose access tokens expire within this many seconds (0: off).
    pub schedule_window_secs: i64,
    /// How often a worker looks for such links (with up to half again as
    /// much jitter, so workers spread out).
    pub schedule_interval_ms: u64,
    /// At most this many links per look.
    pub schedule_batch: u32,
    /// Accounts per page of a refresh campaign (one message each).
    pub campaign_page_size: u32,
    /// Pages one worker handles at once.
    pub campaign_pages_per_worker: u16,
    /// Refresh calls one worker has in flight for campaigns at once.
    pub campaign_concurrency: u32,
    /// A running campaign with nothing written for this long (its page
    /// messages lost: dead-lettered, or a queue without them after a
    /// restart) is planned again by a worker, its unfinished pages
    /// published again (0: never).
    pub campaign_stall_secs: i64,
}

impl Default for RefreshSettings {
    fn default() -> Self {
        Self {
            min_validity_secs: 300,
            lease_secs: 30,
            default_expires_in_secs: 3600,
            schedule_window_secs: 600,
            schedule_interval_ms: 60_000,
            schedule_batch: 100,
            campaign_page_size: 500,
            campaign_pages_per_worker: 4,
            campaign_concurrency: 128,
            campaign_stall_secs: 300,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub bind: String,
    /// How long the api waits for a worker's reply before answering 202.
    pub reply_timeout_ms: u64,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Requests a minute one client (IP address) may make to the login
    /// endpoints, sustained; 0: no limit. Past it: 429 with `Retry-After`.
    pub rate_limit_per_minute: u32,
    /// Requests a client may make at once above that rate.
    pub rate_limit_burst: u32,
    /// Proxies (addresses or CIDR blocks) whose `X-Forwarded-For` is
    /// believed: the client is then the last address in it that is not one
    /// of them. Empty: the connection's peer is the client.
    pub trusted_proxies: Vec<String>,
    /// A connection that has not sent a request's headers within this long
    /// is closed.
    pub header_read_timeout_ms: u64,
    /// A request not answered within this long gets 503; 0: the reply
    /// timeout plus 10 s.
    pub request_timeout_ms: u64,
    /// Requests in flight in this process at most; past it: 503 with
    /// `Retry-After` at once.
    pub max_concurrent_requests: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8000".into(),
            reply_timeout_ms: 10_000,
            max_body_bytes: 64 * 1024,
            rate_limit_per_minute: 600,
            rate_limit_burst: 100,
            trusted_proxies: Vec::new(),
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 0,
            max_concurrent_requests: 10_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://…` or `sqlite://…`.
    pub url: Secret,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// PostgreSQL: how long a process's writer of logins (and of code
    /// claims, and of login states), once busy, waits for more of them to
    /// write together with the one at hand (one statement and one commit
    /// for all). 0: never wait. An idle writer never waits.
    #[serde(default = "default_login_batch_wait_ms")]
    pub login_batch_wait_ms: u64,
}

fn default_max_connections() -> u32 {
    16
}

fn default_login_batch_wait_ms() -> u64 {
    3
}

impl DatabaseSettings {
    /// The store's options from these settings.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            max_connections: self.max_connections,
            login_batch_wait: std::time::Duration::from_millis(self.login_batch_wait_ms),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    pub amqp_url: Secret,
    /// Prefixed to the exchange and queue names (isolates test runs).
    #[serde(default)]
    pub name_prefix: String,
    /// Channels in the api's publishing pool.
    #[serde(default = "default_channels")]
    pub publish_channels: usize,
    /// Unacknowledged deliveries per worker (bounds its concurrency).
    #[serde(default = "default_prefetch")]
    pub prefetch: u16,
    /// How long a dead letter stays in the `dead` queue (default 7 days).
    #[serde(default = "default_dead_letter_ttl")]
    pub dead_letter_ttl_secs: u64,
    /// How many times a job may be handed out again (its worker died or
    /// lost the broker before acknowledging it) before it goes to the dead
    /// letters instead; 0: no limit.
    #[serde(default = "default_delivery_limit")]
    pub delivery_limit: u32,
}

fn default_delivery_limit() -> u32 {
    5
}

fn default_dead_letter_ttl() -> u64 {
    7 * 24 * 3600
}

fn default_channels() -> usize {
    4
}

fn default_prefetch() -> u16 {
    64
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// Jobs handled at once by the in-process worker (embedded mode).
    pub concurrency: usize,
    /// Timeout of one provider HTTP call.
    pub http_timeout_ms: u64,
    /// Attempts of a transient provider failure before the job fails.
    pub max_attempts: u32,
    /// How long a job waits out a database that does not answer
    /// (restarting, failing over) — retrying with backoff — before it
    /// gives up. A login whose code was exchanged keeps the provider's
    /// answer in memory meanwhile: it is written once the database is back.
    pub store_outage_secs: u64,
    /// On SIGTERM a worker stops taking jobs and finishes the ones it
    /// holds for at most this long, then exits; a job still running then
    /// goes back to the queue (campaign pages stop at once between two
    /// chunks and go back too).
    pub shutdown_grace_secs: u64,
    /// Where `socialauth-worker` serves Prometheus `/metrics`: an address,
    /// or a range of ports of which each worker takes the first free one
    /// (`127.0.0.1:9100-9119`, the default: twenty workers on one host).
    pub metrics_bind: String,
    /// Failed requests in a row (connect errors, timeouts, 5xx, 429) that
    /// open a provider's circuit breaker: its calls then fail at once
    /// (`provider_unavailable`) until one trial request succeeds. 0: no
    /// breaker.
    pub breaker_failures: u32,
    /// How long an open breaker refuses calls before a trial request (or
    /// the provider's `Retry-After`, when longer; at most 10 minutes).
    pub breaker_open_secs: u64,
    /// The longest a provider call waits for its provider's request budget
    /// (`requests_per_second`) before it fails as `provider_unavailable`.
    pub budget_wait_ms: u64,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            concurrency: 64,
            http_timeout_ms: 10_000,
            max_attempts: 4,
            store_outage_secs: 30,
            shutdown_grace_secs: 25,
            metrics_bind: "127.0.0.1:9100-9119".into(),
            breaker_failures: 5,
            breaker_open_secs: 30,
            budget_wait_ms: 1_000,
        }
    }
}

/// What a login whose identity is linked to nobody may do with an
/// existing account and whether it may create one. One policy decides on
/// every way in (the pipeline's step 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LinkingPolicy {
    /// Never link by email: an address that belongs to an account is
    /// `email_already_in_use`. Signups open.
    #[default]
    Deny,
    /// Link to the account that owns the email when the provider verified
    /// the login's email and the account's email is verified too. Signups
    /// open.
    LinkVerified,
    /// Only existing users sign in: an identity already linked, or linked
    /// now as `link_verified` would. Everything else is `signup_closed`.
    LinkOnly,
}

impl LinkingPolicy {
    /// Whether a verified email links to its verified owner.
    pub fn links_by_email(self) -> bool {
        matches!(self, Self::LinkVerified | Self::LinkOnly)
    }

    /// Whether a login may create a user.
    pub fn allows_signup(self) -> bool {
        !matches!(self, Self::LinkOnly)
    }
}

impl SecuritySettings {
    /// The policy of a provider that names none.
    pub fn default_linking(&self) -> LinkingPolicy {
        self.linking.unwrap_or(if self.associate_by_email {
            LinkingPolicy::LinkVerified
        } else {
            LinkingPolicy::Deny
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecuritySettings {
    pub allowed_redirect_uris: Vec<String>,
    /// Base64 of 32 bytes. Absent in embedded mode: a key file beside the
    /// SQLite database is created and reused.
    pub encryption_key: Option<Secret>,
    pub encryption_key_id: String,
    /// Older keys still accepted for decryption, by key id.
    pub previous_encryption_keys: BTreeMap<String, Secret>,
    pub admin_key: Option<Secret>,
    /// The linking policy of every provider that names none; unset, it
    /// follows `associate_by_email` (`link_verified` when on, else `deny`).
    pub linking: Option<LinkingPolicy>,
    /// The older switch: `true` is `linking = "link_verified"`.
    pub associate_by_email: bool,
    pub state_ttl_secs: i64,
    /// Lifetime of an app token; 0 means it lives until logout.
    pub token_ttl_secs: i64,
    /// How long a retry of a used code (the same request) gets the first
    /// outcome and token: 0 to 60 seconds.
    pub retry_window_secs: i64,
    /// Binds each login to the browser that started it: the authorization
    /// URL's answer sets a cookie (`socialauth_state_<provider>`, HttpOnly,
    /// SameSite=Lax) and `POST /auth/o/{provider}/` refuses a state that
    /// does not come with it (`invalid_state`). For browser clients that
    /// call the api directly, on the app's own site; off by default.
    pub state_cookie: bool,
    /// The state cookie is sent over HTTPS only (`Secure`): turn off only
    /// for a plain-HTTP development setup.
    pub state_cookie_secure: bool,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        Self {
            allowed_redirect_uris: Vec::new(),
            encryption_key: None,
            encryption_key_id: "k1".into(),
            previous_encryption_keys: BTreeMap::new(),
            admin_key: None,
            linking: None,
            associate_by_email: false,
            state_ttl_secs: 600,
            token_ttl_secs: 0,
            retry_window_secs: crate::redemption::MAX_RETRY_WINDOW_MS / 1000,
            state_cookie: false,
            state_cookie_secure: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// `text` or `json`.
    pub log_format: String,
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub log_level: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_format: "text".into(),
            log_level: "info".into(),
        }
    }
}

/// One `[providers.NAME]` table. A `preset` fills in what is not given.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    pub preset: Option<String>,
    pub protocol: Option<String>,
    #[serde(default = "default_true")]
    pub enabled: bool,
    pub issuer: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub request_token_url: Option<String>,
    pub access_token_url: Option<String>,
    /// RFC 7009 token revocation: a disconnect revokes the link's tokens
    /// here (OIDC: else the discovery document's `revocation_endpoint`).
    pub revocation_url: Option<String>,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Secret,
    pub scopes: Option<Vec<String>>,
    /// PKCE S256; on by default for OAuth2 and OIDC.
    pub pkce: Option<bool>,
    /// `/social-auth` refuses a code posted without its `code_verifier`.
    pub require_pkce: Option<bool>,
    /// id_token signature algorithms accepted (OIDC). Default: the
    /// asymmetric ones (RS/PS/ES 256–512, EdDSA); never `none`.
    pub id_token_signing_algs: Option<Vec<String>>,
    /// The directory tenant of a multi-tenant issuer (`microsoft`): its id
    /// or domain, or `common`, `organizations`, `consumers`.
    pub tenant: Option<String>,
    /// Your own host at a provider you run or rent (`okta`, `auth0`,
    /// `keycloak`, `zitadel`): fills `{domain}` in the preset's URLs, e.g.
    /// `dev-123456.okta.com`. Refused where no URL has `{domain}`.
    pub domain: Option<String>,
    /// A Keycloak realm: fills `{realm}` in the preset's URLs.
    pub realm: Option<String>,
    /// Sign in with Apple: the client secret is a JWT (ES256) that
    /// socialauth mints from the key Apple gave (`.p8`) and renews before
    /// it expires, instead of a fixed `client_secret`. Needs `team_id`,
    /// `key_id` and the key: `private_key` (its PEM text) or
    /// `private_key_file`.
    pub team_id: Option<String>,
    /// The key's id (Apple's "Key ID").
    pub key_id: Option<String>,
    /// The `.p8` key's PEM text (`-----BEGIN PRIVATE KEY-----…`).
    pub private_key: Option<Secret>,
    /// A file holding the `.p8` key.
    pub private_key_file: Option<String>,
    /// A minted client secret's lifetime (default 86400; Apple allows at
    /// most 15777000, six months). It is renewed once less than a tenth of
    /// it is left.
    pub client_secret_ttl_secs: Option<u64>,
    /// OpenID Connect: read the userinfo endpoint after the id_token
    /// (default true); false: the id_token's claims alone are the profile
    /// (the `dropbox` preset: its userinfo endpoint takes only POST).
    pub read_userinfo: Option<bool>,
    /// OAuth2: a second profile request, made with the user's access
    /// token, for providers that list a user's addresses apart (`github`:
    /// `/user/emails`); its answer is put under `emails` in the profile
    /// document, for the mapping to read
    /// (`emails[primary=true].email`).
    pub emails_url: Option<String>,
    /// OpenID Connect / OAuth2: the provider answers with an HTML form
    /// that POSTs to this service (`response_mode=form_post`; Sign in with
    /// Apple does when it is asked for any scope). This service's public
    /// address of `POST /auth/o/{name}/callback`, e.g.
    /// `https://auth.example.com/auth/o/apple/callback`: sent to the
    /// provider as the redirect URI; the callback sends the browser on to
    /// the client's own redirect URI with `code` and `state`.
    pub form_post_url: Option<String>,
    /// This provider's linking policy; unset: `[security]`'s.
    pub linking: Option<LinkingPolicy>,
    pub profile: Option<ProfileSettings>,
    #[serde(default)]
    pub allowed_email_domains: Vec<String>,
    /// Extra query parameters of the authorization URL.
    #[serde(default)]
    pub authorize_params: BTreeMap<String, String>,
    /// Token login (`POST /auth/token/{provider}/`): the other client ids
    /// of this app at the provider (its iOS, Android, web clients), accepted
    /// as an id_token's audience and an access token's client besides
    /// `client_id`.
    #[serde(default)]
    pub client_ids: Vec<String>,
    /// Token login: how the provider's id_token carries the nonce the
    /// client sent. Default: the preset's, else `raw`.
    pub nonce_convention: Option<NonceConvention>,
    /// Token login: an id_token issued longer ago than this is refused
    /// (default 600).
    pub id_token_max_age_secs: Option<u64>,
    /// Token login: how an access token is checked to be this app's.
    /// Default: the preset's (`facebook`: `debug_token`, `google`:
    /// `tokeninfo`), else `introspection` for OpenID Connect providers and
    /// for OAuth2 providers with an `introspection_url`, else `none`.
    pub access_token_check: Option<AccessTokenCheck>,
    /// The endpoint of the access-token check: RFC 7662 introspection
    /// (OpenID Connect default: the discovery document's
    /// `introspection_endpoint`), Facebook's `debug_token` or Google's
    /// `tokeninfo` (the presets fill these in).
    pub introspection_url: Option<String>,
    /// How the client authenticates at the token endpoint (and at the
    /// introspection and revocation endpoints). Default: OpenID Connect,
    /// as the discovery document allows (`client_secret_basic` first);
    /// OAuth2, `client_secret_post`.
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    /// Whether the provider's tokens are refreshed (default true; the
    /// `github` preset's do not expire: false).
    pub refresh_tokens: Option<bool>,
    /// A refreshed access token's lifetime when the provider names none;
    /// unset: `[refresh] default_expires_in_secs`.
    pub default_expires_in_secs: Option<i64>,
    /// Refresh campaigns make at most this many refresh calls a second to
    /// the provider, all workers together (unset: no budget of its own).
    pub refresh_rate_per_second: Option<u32>,
    /// This worker process's request budget at the provider, every call
    /// together (a token bucket; unset: none). Divide the provider's quota
    /// by the number of workers.
    pub requests_per_second: Option<u32>,
    /// Requests above the rate allowed in a burst (default: one second's).
    pub requests_burst: Option<u32>,
    /// This provider's own redirect URI allow-list (exact matches); unset:
    /// `[security] allowed_redirect_uris`.
    pub allowed_redirect_uris: Option<Vec<String>>,
    /// RFC 9207: refuse a callback without the provider's `iss` (one with
    /// an `iss` that is not the provider's issuer is always refused).
    #[serde(default)]
    pub require_iss: bool,
}

/// RFC 7591's names for how a client authenticates at a token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    /// HTTP Basic with the form-encoded id and secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the request body.
    ClientSecretPost,
}

/// How an id_token carries the nonce the client sent with its sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NonceConvention {
    /// The id_token's `nonce` is the one sent (Google, most providers).
    #[default]
    Raw,
    /// The id_token's `nonce` is the lowercase hex SHA-256 of the one sent
    /// (Sign in with Apple and Firebase: the app hashes the nonce it gives
    /// the provider and keeps the original for us).
    Sha256,
}

/// How a client-side access token is checked to be this app's before its
/// userinfo answer is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessTokenCheck {
    /// RFC 7662 token introspection, authenticated as this client.
    Introspection,
    /// Facebook's Graph API `debug_token`, with the app access token.
    DebugToken,
    /// Google's `tokeninfo`.
    Tokeninfo,
    /// No check: the token is accepted on its userinfo answer alone.
    None,
}

fn default_true() -> bool {
    true
}

/// Where the profile's fields are in the provider's answer (dotted paths).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProfileSettings {
    pub uid: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<String>,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub name: Option<String>,
    pub picture: Option<String>,
}

impl SecuritySettings {
    /// [`SecuritySettings::retry_window_secs`] in milliseconds.
    pub fn retry_window_ms(&self) -> i64 {
        self.retry_window_secs.saturating_mul(1000)
    }
}

/// A configuration error without the values it quotes: a value may be a
/// secret (a client secret with a bad escape, a key given where a table was
/// expected). The key, the line and the column stay.
fn without_values(message: &str) -> String {
    let mut out = String::new();
    for line in message.lines() {
        // The TOML parser's excerpt of the offending line (`3 | key = …`)
        // and its caret line.
        let excerpt = line
            .trim_start()
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start()
            .starts_with('|');
        if excerpt {
            continue;
        }
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                // A quoted value (`string "…"`, escapes included), unless it
                // names a field (`missing configuration field "queue.amqp_url"`).
                '"' => {
                    let mut quoted = String::new();
                    while let Some(q) = chars.next() {
                        match q {
                            '\\' => {
                                if let Some(escaped) = chars.next() {
                                    quoted.push(escaped);
                                }
                            }
                            '"' => break,
                            q => quoted.push(q),
                        }
                    }
                    let names_a_field = out.ends_with("field ")
                        && quoted.chars().all(|q| {
                            q.is_ascii_lowercase() || q.is_ascii_digit() || "._-".contains(q)
                        });
                    out.push('"');
                    out.push_str(if names_a_field { &quoted } else { "…" });
                    out.push('"');
                }
                // A number given where something else was expected
                // (``integer `123456` ``); keys in backticks stay.
                '`' => {
                    let mut ticked = String::new();
                    for t in chars.by_ref() {
                        if t == '`' {
                            break;
                        }
                        ticked.push(t);
                    }
                    let number = !ticked.is_empty()
                        && ticked
                            .chars()
                            .all(|t| t.is_ascii_digit() || "+-.eE".contains(t));
                    out.push('`');
                    out.push_str(if number { "…" } else { &ticked });
                    out.push('`');
                }
                c => out.push(c),
            }
        }
        out.push('\n');
    }
    out.trim_end().to_owned()
}

impl Settings {
    /// Loads `path` (if any) then the `SOCIALAUTH__…` environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = path {
            if !path.exists() {
                return Err(ConfigError::Load(format!(
                    "file {} does not exist",
                    path.display()
                )));
            }
            builder = builder.add_source(
                config::File::from(path.to_path_buf()).format(config::FileFormat::Toml),
            );
        }
        let vars: std::collections::HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("SOCIALAUTH__"))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("SOCIALAUTH")
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("security.allowed_redirect_uris")
                .try_parsing(true)
                .source(Some(vars)),
        );
        let settings: Settings = builder
            .build()
            .map_err(|e| ConfigError::Load(without_values(&e.to_string())))?
            .try_deserialize()
            .map_err(|e| ConfigError::Invalid(without_values(&e.to_string())))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.server.reply_timeout_ms == 0 {
            return Err(ConfigError::Invalid(
                "server.reply_timeout_ms must be positive".into(),
            ));
        }
        for uri in &self.security.allowed_redirect_uris {
            url::Url::parse(uri).map_err(|e| {
                ConfigError::Invalid(format!(
                    "security.allowed_redirect_uris: {uri:?} is not a URL ({e})"
                ))
            })?;
        }
        let window = self.security.retry_window_secs;
        if !(0..=crate::redemption::MAX_RETRY_WINDOW_MS / 1000).contains(&window) {
            return Err(ConfigError::Invalid(format!(
                "security.retry_window_secs must be 0 to 60, not {window}"
            )));
        }
        if let Some(db) = &self.database {
            let url = db.url.expose();
            if !(url.starts_with("postgres://")
                || url.starts_with("postgresql://")
                || url.starts_with("sqlite:"))
            {
                return Err(ConfigError::Invalid(
                    "database.url must start with postgres:// or sqlite:".into(),
                ));
            }
        }
        Ok(())
    }

    /// True when the worker runs inside the api process.
    pub fn is_embedded(&self) -> bool {
        self.queue.is_none()
    }

    /// The database URL, defaulting to an SQLite file in the working directory.
    pub fn database_url(&self) -> String {
        match &self.database {
            Some(db) => db.url.expose().clone(),
            None => "sqlite://socialauth.db".into(),
        }
    }

    /// Where the embedded mode keeps its generated encryption key.
    pub fn embedded_key_path(&self) -> PathBuf {
        let file = self
            .sqlite_file()
            .unwrap_or_else(|| PathBuf::from("socialauth.db"));
        PathBuf::from(format!("{}.key", file.display()))
    }

    /// The SQLite database's file, when the database is one (not an
    /// in-memory one).
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        let url = self.database_url();
        let file = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))?;
        let file = file.split('?').next().unwrap_or(file);
        (!file.is_empty() && !file.starts_with(':')).then(|| PathBuf::from(file))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn configuration_errors_name_keys_and_lines_but_never_values() {
        let dir = tempfile::tempdir().expect("dir");
        let bad_escape = dir.path().join("a.toml");
        std::fs::write(
            &bad_escape,
            "[providers.x]\nprotocol = \"oauth2\"\nclient_secret = \"ab\\qcd-SECRET\"\n",
        )
        .expect("write");
        let e = super::Settings::load_with_env(Some(&bad_escape), vec![])
            .expect_err("bad escape")
            .to_string();
        assert!(!e.contains("SECRET"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        let e = super::Settings::load_with_env(
            None,
            vec![(
                "SOCIALAUTH__SECURITY__PREVIOUS_ENCRYPTION_KEYS".to_owned(),
                "ENVSECRET".to_owned(),
            )],
        )
        .expect_err("not a table")
        .to_string();
        assert!(!e.contains("ENVSECRET"), "{e}");
        assert!(e.contains("security.previous_encryption_keys"), "{e}");
        for value in ["ab\"QUOTEDSECRET", "123456789"] {
            let e = super::Settings::load_with_env(
                None,
                vec![(
                    "SOCIALAUTH__SECURITY__PREVIOUS_ENCRYPTION_KEYS".to_owned(),
                    value.to_owned(),
                )],
            )
            .expect_err("not a table")
            .to_string();
            assert!(!e.contains("SECRET") && !e.contains("123456789"), "{e}");
            assert!(e.contains("security.previous_encryption_keys"), "{e}");
        }
        let queue = dir.path().join("q.toml");
        std::fs::write(&queue, "[queue]\nname_prefix = \"x\"\n").expect("write");
        let e = super::Settings::load_with_env(Some(&queue), vec![])
            .expect_err("no amqp_url")
            .to_string();
        assert!(e.contains("amqp_url"), "the missing key is named: {e}");
    }

    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new()
            .suffix(".toml")
            .tempfile()
            .expect("tempfile");
        f.write_all(text.as_bytes()).expect("write");
        f
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let f = file("[server]\nbindd = \"x\"\n");
        let err = Settings::load_with_env(Some(f.path()), vec![]).expect_err("must fail");
        assert!(err.to_string().contains("bindd"), "{err}");
    }

    #[test]
    fn unknown_sections_are_rejected() {
        let f = file("[serverr]\nbind = \"x\"\n");
        let err = Settings::load_with_env(Some(f.path()), vec![]).expect_err("must fail");
        assert!(err.to_string().contains("serverr"), "{err}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let f = file(
            "[server]\nbind = \"127.0.0.1:1\"\n[providers.corp]\nprotocol = \"oidc\"\nclient_id = \"a\"\n",
        );
        let env = vec![
            (
                "SOCIALAUTH__SERVER__BIND".to_owned(),
                "127.0.0.1:2".to_owned(),
            ),
            (
                "SOCIALAUTH__PROVIDERS__CORP__CLIENT_SECRET".to_owned(),
                "s3cret".to_owned(),
            ),
            (
                "SOCIALAUTH__SECURITY__ALLOWED_REDIRECT_URIS".to_owned(),
                "http://a.test/cb,http://b.test/cb".to_owned(),
            ),
        ];
        let s = Settings::load_with_env(Some(f.path()), env).expect("load");
        assert_eq!(s.server.bind, "127.0.0.1:2");
        assert_eq!(s.providers["corp"].client_secret.expose(), "s3cret");
        assert_eq!(s.security.allowed_redirect_uris.len(), 2);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let f = file(
            "[database]\nurl = \"postgres://u:pw@127.0.0.1/db\"\n[providers.corp]\nprotocol = \"oidc\"\nclient_id = \"a\"\nclient_secret = \"topsecret\"\n[security]\nadmin_key = \"adminsecret\"\n",
        );
        let s = Settings::load_with_env(Some(f.path()), vec![]).expect("load");
        let debug = format!("{s:?}");
        assert!(!debug.contains("topsecret"));
        assert!(!debug.contains("adminsecret"));
        assert!(!debug.contains("pw@"));
    }

    #[test]
    fn no_file_means_embedded_defaults() {
        let s = Settings::load_with_env(None, vec![]).expect("load");
        assert!(s.is_embedded());
        assert_eq!(s.database_url(), "sqlite://socialauth.db");
        assert_eq!(s.embedded_key_path(), PathBuf::from("socialauth.db.key"));
    }
}
