//! The provider catalogue: protocols with endpoints and profile mappings.
//! Brands (google, github, …) are presets: data, not code.

use crate::config::{
    AccessTokenCheck, LinkingPolicy, NonceConvention, ProfileSettings, ProviderSettings, Settings,
    TokenEndpointAuthMethod,
};
use crate::secret::Secret;
use crate::types::{Profile, ProviderName};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use url::Url;

mod path;
mod presets;

pub use presets::NAMES as PRESET_NAMES;
use presets::preset;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OpenID Connect: endpoints by discovery from the issuer.
    Oidc,
    /// OAuth 2 with explicit endpoints.
    OAuth2,
    /// OAuth 1.0a with HMAC-SHA1.
    OAuth1,
}

impl Protocol {
    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "oidc" => Some(Self::Oidc),
            "oauth2" => Some(Self::OAuth2),
            "oauth1" => Some(Self::OAuth1),
            _ => None,
        }
    }
}

/// Where the profile's fields are in the provider's answer: path
/// expressions into the JSON (`picture.data.url`,
/// `emails[primary=true].email | email`; see [`path`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileMapping {
    pub uid: String,
    pub email: String,
    pub email_verified: String,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub name: String,
    pub picture: String,
}

impl Default for ProfileMapping {
    /// OpenID Connect claim names.
    fn default() -> Self {
        Self {
            uid: "sub".into(),
            email: "email".into(),
            email_verified: "email_verified".into(),
            username: "preferred_username".into(),
            first_name: "given_name".into(),
            last_name: "family_name".into(),
            name: "name".into(),
            picture: "picture".into(),
        }
    }
}

impl ProfileMapping {
    fn overlay(mut self, s: &ProfileSettings) -> Self {
        let set = |field: &mut String, v: &Option<String>| {
            if let Some(v) = v {
                field.clone_from(v);
            }
        };
        set(&mut self.uid, &s.uid);
        set(&mut self.email, &s.email);
        set(&mut self.email_verified, &s.email_verified);
        set(&mut self.username, &s.username);
        set(&mut self.first_name, &s.first_name);
        set(&mut self.last_name, &s.last_name);
        set(&mut self.name, &s.name);
        set(&mut self.picture, &s.picture);
        self
    }

    fn paths(&self) -> impl Iterator<Item = &str> {
        [
            &self.uid,
            &self.email,
            &self.email_verified,
            &self.username,
            &self.first_name,
            &self.last_name,
            &self.name,
            &self.picture,
        ]
        .into_iter()
        .map(String::as_str)
    }

    /// Reads a profile out of a userinfo / claims document. `None` when it
    /// has no uid.
    pub fn extract(&self, doc: &Value) -> Option<Profile> {
        let uid = scalar(doc, &self.uid).filter(|s| !s.is_empty())?;
        let email = scalar(doc, &self.email).filter(|s| !s.is_empty());
        // `true`, `"true"` or `1` (some providers answer with a number).
        let email_verified =
            path::read(doc, &self.email_verified).is_some_and(|v| v == "true" || v == "1");
        Some(Profile {
            uid,
            email,
            email_verified,
            username: scalar(doc, &self.username).filter(|s| !s.is_empty()),
            first_name: scalar(doc, &self.first_name).filter(|s| !s.is_empty()),
            last_name: scalar(doc, &self.last_name).filter(|s| !s.is_empty()),
            name: scalar(doc, &self.name).filter(|s| !s.is_empty()),
            picture: scalar(doc, &self.picture).filter(|s| !s.is_empty()),
        })
    }
}

fn scalar(doc: &Value, expr: &str) -> Option<String> {
    path::read(doc, expr)
}

/// One configured provider, presets applied.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: ProviderName,
    pub protocol: Protocol,
    pub issuer: Option<Url>,
    pub authorize_url: Option<Url>,
    pub token_url: Option<Url>,
    pub userinfo_url: Option<Url>,
    pub request_token_url: Option<Url>,
    pub access_token_url: Option<Url>,
    /// RFC 7009 revocation endpoint (OIDC: else discovery's).
    pub revocation_url: Option<Url>,
    /// A second profile request (OAuth2) listing the user's addresses; its
    /// answer goes under `emails` in the profile document.
    pub emails_url: Option<Url>,
    /// The provider answers by a form POST to this address of this
    /// service (`response_mode=form_post`), which is also the redirect URI
    /// of its code exchange; `None`: it redirects to the client's.
    pub form_post_url: Option<Url>,
    /// OpenID Connect: whether userinfo is read after the id_token.
    pub read_userinfo: bool,
    /// Sign in with Apple: the client secret is minted, not `client_secret`.
    pub minted_secret: Option<SecretMinting>,
    pub client_id: String,
    pub client_secret: Secret,
    pub scopes: Vec<String>,
    pub pkce: bool,
    /// `/social-auth` refuses a code without its `code_verifier`.
    pub require_pkce: bool,
    /// id_token signature algorithms accepted (JWS `alg` names).
    pub id_token_signing_algs: Vec<String>,
    /// A multi-tenant issuer's tenant (`microsoft`), already put into
    /// `issuer`; `None` for every other provider.
    pub tenant: Option<String>,
    pub profile: ProfileMapping,
    pub allowed_email_domains: Vec<String>,
    pub authorize_params: BTreeMap<String, String>,
    /// The provider's own, else `[security]`'s.
    pub linking: LinkingPolicy,
    /// Token login (`POST /auth/token/{provider}/`).
    pub token_login: TokenLoginConfig,
    /// How the client authenticates at the token endpoint; `None`: the
    /// protocol's way (OpenID Connect: as discovery allows; OAuth2: form).
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    /// Provider-token refresh.
    pub refresh: RefreshRules,
    /// Each worker process's request budget at the provider.
    pub budget: Option<RequestBudget>,
    /// Its own redirect URI allow-list; `None`: the global one.
    pub allowed_redirect_uris: Option<Vec<String>>,
    /// RFC 9207: a callback must carry the provider's `iss`.
    pub require_iss: bool,
}

/// How a provider's client secret is minted: an ES256 JWT signed with the
/// key the provider gave (Sign in with Apple), renewed before it expires.
#[derive(Debug, Clone)]
pub struct SecretMinting {
    /// `iss`: the developer team.
    pub team_id: String,
    /// `kid`: the key's id.
    pub key_id: String,
    /// The P-256 key, PKCS#8 DER.
    pub key: Secret<Vec<u8>>,
    /// `aud`: the provider's issuer.
    pub audience: String,
    /// Lifetime of one minted secret.
    pub ttl_secs: i64,
}

/// Apple's longest client-secret lifetime (six months).
pub const MAX_MINTED_SECRET_TTL_SECS: u64 = 15_777_000;

/// [`SecretMinting`] from a provider's settings, if they ask for it.
fn secret_minting(
    p: &ProviderSettings,
    issuer: Option<&Url>,
) -> Result<Option<SecretMinting>, String> {
    if p.team_id.is_none()
        && p.key_id.is_none()
        && p.private_key.is_none()
        && p.private_key_file.is_none()
    {
        return Ok(None);
    }
    let need = "a minted client secret needs `team_id`, `key_id` and `private_key` or \
                `private_key_file`";
    let team_id = p.team_id.clone().filter(|t| !t.is_empty()).ok_or(need)?;
    let key_id = p.key_id.clone().filter(|k| !k.is_empty()).ok_or(need)?;
    let pem = match (&p.private_key, &p.private_key_file) {
        (Some(pem), None) => pem.expose().clone(),
        (None, Some(path)) => {
            std::fs::read_to_string(path).map_err(|e| format!("private_key_file {path:?}: {e}"))?
        }
        (Some(_), Some(_)) => {
            return Err("give `private_key` or `private_key_file`, not both".into());
        }
        (None, None) => return Err(need.into()),
    };
    if !p.client_secret.expose().is_empty() {
        return Err("give `client_secret` or the key to mint it, not both".into());
    }
    let key = pkcs8_der(&pem).ok_or(
        "private_key: not a PEM private key (`-----BEGIN PRIVATE KEY-----`, the .p8 file)",
    )?;
    let ttl = p.client_secret_ttl_secs.unwrap_or(86_400);
    if !(60..=MAX_MINTED_SECRET_TTL_SECS).contains(&ttl) {
        return Err(format!(
            "client_secret_ttl_secs: 60 to {MAX_MINTED_SECRET_TTL_SECS}"
        ));
    }
    let audience = issuer
        .map(|i| i.as_str().trim_end_matches('/').to_owned())
        .ok_or("a minted client secret needs the provider's `issuer` (its audience)")?;
    Ok(Some(SecretMinting {
        team_id,
        key_id,
        key: Secret::new(key),
        audience,
        ttl_secs: i64::try_from(ttl).unwrap_or(86_400),
    }))
}

/// The DER of a PEM `PRIVATE KEY` block.
fn pkcs8_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    // A PEM put in one environment variable may carry `\n` for its breaks.
    let pem = pem.replace("\\n", "\n");
    let body = pem
        .split("-----BEGIN PRIVATE KEY-----")
        .nth(1)?
        .split("-----END PRIVATE KEY-----")
        .next()?;
    let text: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()
        .filter(|der| !der.is_empty())
}

/// A token bucket: `per_second` requests a second, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestBudget {
    pub per_second: u32,
    pub burst: u32,
}

/// What a provider's token refresh needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRules {
    /// False: its tokens do not expire, or are not refreshed: a refresh is
    /// `refresh_not_supported` without a provider call.
    pub enabled: bool,
    /// A refreshed token's lifetime when the provider names none; `None`:
    /// the `[refresh]` default.
    pub default_expires_in_secs: Option<i64>,
    /// Refresh campaigns' budget at this provider, all workers together:
    /// calls a second (`None`: none of its own).
    pub rate_per_second: Option<u32>,
}

impl Default for RefreshRules {
    fn default() -> Self {
        Self {
            enabled: true,
            default_expires_in_secs: None,
            rate_per_second: None,
        }
    }
}

/// What token login needs of a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenLoginConfig {
    /// This app's other client ids at the provider, accepted besides
    /// `client_id` ([`ProviderConfig::is_our_client`]).
    pub client_ids: Vec<String>,
    /// How the id_token carries the nonce sent.
    pub nonce_convention: NonceConvention,
    /// The oldest id_token accepted, by its `iat`, in seconds.
    pub id_token_max_age_secs: i64,
    /// How an access token is checked to be this app's.
    pub access_token_check: AccessTokenBinding,
}

impl Default for TokenLoginConfig {
    fn default() -> Self {
        Self {
            client_ids: Vec::new(),
            nonce_convention: NonceConvention::Raw,
            id_token_max_age_secs: DEFAULT_ID_TOKEN_MAX_AGE_SECS,
            access_token_check: AccessTokenBinding::NotAccepted,
        }
    }
}

/// A token-login id_token older than this (by `iat`) is refused unless the
/// provider sets `id_token_max_age_secs`.
pub const DEFAULT_ID_TOKEN_MAX_AGE_SECS: i64 = 600;

/// How a client-side access token is bound to this app (token login).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessTokenBinding {
    /// RFC 7662 introspection at this endpoint; `None`: the discovery
    /// document's `introspection_endpoint` (OpenID Connect), and when it
    /// names none, no check.
    Introspection(Option<Url>),
    /// Facebook's `debug_token`.
    DebugToken(Url),
    /// Google's `tokeninfo`.
    Tokeninfo(Url),
    /// No check, as the operator chose (`access_token_check = "none"`):
    /// accepted on the userinfo answer alone.
    None,
    /// No check can be had: access tokens are refused (an id_token, or a
    /// check configured, is the way in).
    NotAccepted,
}

impl AccessTokenBinding {
    /// Whether access tokens can be taken at all (an OpenID Connect
    /// provider's discovery document may still name no introspection
    /// endpoint: then they are refused too).
    pub fn accepts_access_tokens(&self) -> bool {
        !matches!(self, Self::NotAccepted)
    }
}

impl ProviderConfig {
    /// Whether `id` is one of this app's client ids at the provider:
    /// `client_id` or one of `client_ids`.
    pub fn is_our_client(&self, id: &str) -> bool {
        !id.is_empty()
            && (id == self.client_id || self.token_login.client_ids.iter().any(|c| c == id))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("provider {provider}: {message}")]
pub struct CatalogueError {
    pub provider: String,
    pub message: String,
}

/// The enabled providers by name.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    providers: HashMap<String, Arc<ProviderConfig>>,
}

impl Catalogue {
    pub fn from_settings(settings: &Settings) -> Result<Self, CatalogueError> {
        let mut providers = HashMap::new();
        for (name, p) in &settings.providers {
            if !p.enabled {
                continue;
            }
            let config = resolve(name, p, settings.security.default_linking())?;
            providers.insert(name.clone(), Arc::new(config));
        }
        Ok(Self { providers })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<ProviderConfig>> {
        self.providers.get(name)
    }

    /// Every provider, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ProviderConfig>> {
        let mut all: Vec<&Arc<ProviderConfig>> = self.providers.values().collect();
        all.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        all.into_iter()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.providers.keys().map(String::as_str)
    }

    /// Whether links of provider `name` are refreshed: it is configured
    /// and its tokens are refreshed (`refresh_tokens`).
    pub fn refreshes(&self, name: &str) -> bool {
        self.get(name).is_some_and(|p| p.refresh.enabled)
    }
}

/// The id_token signature algorithms accepted unless a provider lists its
/// own: the asymmetric ones. `none` is never accepted, and the HMAC ones
/// (keyed with the client secret, which is no proof of the provider) only
/// when a provider lists them.
pub const DEFAULT_ID_TOKEN_ALGS: [&str; 10] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
];

/// Every algorithm a provider may list.
const KNOWN_ID_TOKEN_ALGS: [&str; 13] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
    "HS256", "HS384", "HS512",
];

/// Microsoft's issuer, by tenant: the discovery document of every tenant
/// names `{tenantid}`'s issuer, the id_token's `tid` fills it in.
pub const MICROSOFT_ISSUER: &str = "https://login.microsoftonline.com/{tenant}/v2.0";
const MICROSOFT_DEFAULT_TENANT: &str = "common";

/// The `exp` (Unix seconds) of a client secret that is a JWT (Sign in
/// with Apple's is one), read without checking its signature: only its
/// date matters here.
pub fn client_secret_expiry(secret: &str) -> Option<i64> {
    use base64::Engine;
    let mut parts = secret.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_i64()
}

/// What an operator of preset `name` should know before relying on it
/// (`socialauth-api doctor` shows it): an API its provider keeps only for
/// older clients.
pub fn preset_note(name: &str) -> Option<&'static str> {
    match name {
        "twitter" => Some(
            "preset twitter signs in through X's legacy API v1.1 (OAuth 1.0a); \
             X's current sign-in is OAuth 2 with PKCE: the x preset",
        ),
        _ => None,
    }
}

/// `p` with its preset filled in; `linking`: the policy when `p` names
/// none.
fn resolve(
    name: &str,
    p: &ProviderSettings,
    linking: LinkingPolicy,
) -> Result<ProviderConfig, CatalogueError> {
    let err = |message: String| CatalogueError {
        provider: name.to_owned(),
        message,
    };
    let provider_name = ProviderName::parse(name)
        .ok_or_else(|| err("names are lowercase letters, digits, '-' and '_'".into()))?;
    let base = match &p.preset {
        Some(preset_name) => {
            preset(preset_name).ok_or_else(|| err(format!("unknown preset {preset_name:?}")))?
        }
        None => ProviderSettings::default(),
    };
    let pick = |own: &Option<String>, fallback: &Option<String>| own.clone().or(fallback.clone());
    let domain = pick(&p.domain, &base.domain);
    let realm = pick(&p.realm, &base.realm);
    for (key, value, also) in [("domain", &domain, ":"), ("realm", &realm, "")] {
        if let Some(v) = value
            && (v.is_empty()
                || !v.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') || also.contains(c)
                }))
        {
            return Err(err(format!(
                "{key} {v:?}: letters, digits, '-', '.', '_'{}",
                if also.is_empty() { "" } else { ", ':'" }
            )));
        }
    }
    // `{domain}` and `{realm}` in a preset's URLs: the operator's own host
    // and realm at a provider they run or rent.
    let filled = std::cell::Cell::new((false, false));
    let url = |field: &str, v: Option<String>| -> Result<Option<Url>, CatalogueError> {
        let Some(mut raw) = v else { return Ok(None) };
        for (key, value) in [("domain", &domain), ("realm", &realm)] {
            let placeholder = format!("{{{key}}}");
            if raw.contains(&placeholder) {
                let (d, r) = filled.get();
                filled.set((d || key == "domain", r || key == "realm"));
                let value = value.as_deref().ok_or_else(|| {
                    err(format!(
                        "{field} needs `{key}` (the provider's {key} of yours)"
                    ))
                })?;
                raw = raw.replace(&placeholder, value);
            }
        }
        Url::parse(&raw)
            .map(Some)
            .map_err(|e| err(format!("{field}: {e}")))
    };
    let protocol_raw = pick(&p.protocol, &base.protocol)
        .ok_or_else(|| err("needs a `protocol` (oidc, oauth2, oauth1) or a `preset`".into()))?;
    let protocol = Protocol::parse(&protocol_raw)
        .ok_or_else(|| err(format!("unknown protocol {protocol_raw:?}")))?;
    let tenant = pick(&p.tenant, &base.tenant);
    let raw_issuer = pick(&p.issuer, &base.issuer);
    let issuer = match (&tenant, raw_issuer) {
        (Some(tenant), Some(template)) if template.contains("{tenant}") => {
            let ok = !tenant.is_empty()
                && tenant
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
            if !ok {
                return Err(err(format!("tenant {tenant:?}: a tenant id or domain")));
            }
            url("issuer", Some(template.replace("{tenant}", tenant)))?
        }
        (Some(_), _) => {
            return Err(err(
                "`tenant` needs an issuer with `{tenant}` in it (the `microsoft` preset)".into(),
            ));
        }
        (None, raw) => url("issuer", raw)?,
    };
    let id_token_signing_algs = match p
        .id_token_signing_algs
        .clone()
        .or(base.id_token_signing_algs.clone())
    {
        Some(algs) => {
            if let Some(bad) = algs
                .iter()
                .find(|a| !KNOWN_ID_TOKEN_ALGS.contains(&a.as_str()))
            {
                return Err(err(format!(
                    "id_token_signing_algs: {bad:?} is not one of {}",
                    KNOWN_ID_TOKEN_ALGS.join(", ")
                )));
            }
            if algs.is_empty() {
                return Err(err("id_token_signing_algs: list at least one".into()));
            }
            algs
        }
        None => DEFAULT_ID_TOKEN_ALGS
            .iter()
            .map(|a| (*a).to_owned())
            .collect(),
    };
    let authorize_url = url("authorize_url", pick(&p.authorize_url, &base.authorize_url))?;
    let token_url = url("token_url", pick(&p.token_url, &base.token_url))?;
    let userinfo_url = url("userinfo_url", pick(&p.userinfo_url, &base.userinfo_url))?;
    let request_token_url = url(
        "request_token_url",
        pick(&p.request_token_url, &base.request_token_url),
    )?;
    let access_token_url = url(
        "access_token_url",
        pick(&p.access_token_url, &base.access_token_url),
    )?;
    let emails_url = url("emails_url", pick(&p.emails_url, &base.emails_url))?;
    let form_post_url = url("form_post_url", p.form_post_url.clone())?;
    let revocation_url = url(
        "revocation_url",
        pick(&p.revocation_url, &base.revocation_url),
    )?;
    if p.client_id.is_empty() {
        return Err(err("needs a `client_id`".into()));
    }
    match protocol {
        Protocol::Oidc if issuer.is_none() => return Err(err("oidc needs an `issuer`".into())),
        Protocol::OAuth2 if authorize_url.is_none() || token_url.is_none() => {
            return Err(err("oauth2 needs `authorize_url` and `token_url`".into()));
        }
        Protocol::OAuth2 if userinfo_url.is_none() => {
            return Err(err("oauth2 needs a `userinfo_url`".into()));
        }
        Protocol::OAuth1
            if request_token_url.is_none()
                || authorize_url.is_none()
                || access_token_url.is_none() =>
        {
            return Err(err(
                "oauth1 needs `request_token_url`, `authorize_url` and `access_token_url`".into(),
            ));
        }
        _ => {}
    }
    let default_scopes = match protocol {
        Protocol::Oidc => vec!["openid".into(), "email".into(), "profile".into()],
        _ => Vec::new(),
    };
    let mut profile = ProfileMapping::default();
    if let Some(m) = &base.profile {
        profile = profile.overlay(m);
    }
    if let Some(m) = &p.profile {
        profile = profile.overlay(m);
    }
    profile
        .paths()
        .try_for_each(path::check)
        .map_err(|why| err(format!("profile: {why}")))?;
    let mut authorize_params = base.authorize_params.clone();
    authorize_params.extend(p.authorize_params.clone());
    let access_token_check = access_token_binding(
        protocol,
        p.access_token_check.or(base.access_token_check),
        url(
            "introspection_url",
            pick(&p.introspection_url, &base.introspection_url),
        )?,
    )
    .map_err(err)?;
    let id_token_max_age_secs = match p.id_token_max_age_secs {
        Some(0) => return Err(err("id_token_max_age_secs: at least 1".into())),
        Some(secs) => i64::try_from(secs)
            .map_err(|_| err(format!("id_token_max_age_secs: {secs} is too large")))?,
        None => DEFAULT_ID_TOKEN_MAX_AGE_SECS,
    };
    // A `domain` or `realm` no URL takes would be silently ignored (the
    // login would go to the provider's public host).
    let (domain_used, realm_used) = filled.get();
    for (key, given, used) in [
        ("domain", domain.is_some(), domain_used),
        ("realm", realm.is_some(), realm_used),
    ] {
        if given && !used {
            return Err(err(format!(
                "`{key}` is set but no URL of this provider has {{{key}}} in it \
                 (set `issuer` or the endpoints instead)"
            )));
        }
    }
    if emails_url.is_some() && protocol != Protocol::OAuth2 {
        return Err(err("`emails_url` is for `oauth2` providers".into()));
    }
    if let Some(u) = &form_post_url {
        if protocol == Protocol::OAuth1 {
            return Err(err(
                "`form_post_url` is for `oidc` and `oauth2` providers".into()
            ));
        }
        if !matches!(u.scheme(), "https" | "http") || u.query().is_some() {
            return Err(err(
                "form_post_url: an http(s) address without a query".into()
            ));
        }
    }
    let minted_secret = secret_minting(p, issuer.as_ref()).map_err(err)?;
    Ok(ProviderConfig {
        name: provider_name,
        protocol,
        issuer,
        authorize_url,
        token_url,
        userinfo_url,
        request_token_url,
        access_token_url,
        revocation_url,
        emails_url,
        form_post_url,
        read_userinfo: p.read_userinfo.or(base.read_userinfo).unwrap_or(true),
        minted_secret,
        client_id: p.client_id.clone(),
        client_secret: p.client_secret.clone(),
        scopes: p.scopes.clone().or(base.scopes).unwrap_or(default_scopes),
        pkce: p.pkce.or(base.pkce).unwrap_or(protocol != Protocol::OAuth1),
        require_pkce: p.require_pkce.or(base.require_pkce).unwrap_or(false),
        id_token_signing_algs,
        tenant,
        profile,
        allowed_email_domains: p
            .allowed_email_domains
            .iter()
            .map(|d| d.to_lowercase())
            .collect(),
        authorize_params,
        linking: p.linking.unwrap_or(linking),
        token_endpoint_auth_method: p
            .token_endpoint_auth_method
            .or(base.token_endpoint_auth_method),
        refresh: RefreshRules {
            enabled: p
                .refresh_tokens
                .or(base.refresh_tokens)
                .unwrap_or(protocol != Protocol::OAuth1),
            default_expires_in_secs: p
                .default_expires_in_secs
                .or(base.default_expires_in_secs)
                .filter(|s| *s > 0),
            rate_per_second: p.refresh_rate_per_second.filter(|r| *r > 0),
        },
        allowed_redirect_uris: p.allowed_redirect_uris.clone(),
        require_iss: p.require_iss,
        budget: p
            .requests_per_second
            .filter(|r| *r > 0)
            .map(|per_second| RequestBudget {
                per_second,
                burst: p.requests_burst.filter(|b| *b > 0).unwrap_or(per_second),
            }),
        token_login: TokenLoginConfig {
            client_ids: p
                .client_ids
                .iter()
                .filter(|c| !c.is_empty() && **c != p.client_id)
                .cloned()
                .collect(),
            nonce_convention: p
                .nonce_convention
                .or(base.nonce_convention)
                .unwrap_or_default(),
            id_token_max_age_secs,
            access_token_check,
        },
    })
}

/// The access-token check: the one named (the provider's, else its
/// preset's) with its endpoint, else introspection where it can be had,
/// else none — and then access tokens are refused: a token no check binds
/// to this app could be any app's. Only an operator's explicit
/// `access_token_check = "none"` takes them unchecked.
fn access_token_binding(
    protocol: Protocol,
    named: Option<AccessTokenCheck>,
    endpoint: Option<Url>,
) -> Result<AccessTokenBinding, String> {
    let needs =
        |check: &str| format!("access_token_check = \"{check}\" needs an `introspection_url`");
    Ok(match named {
        Some(AccessTokenCheck::None) => AccessTokenBinding::None,
        Some(AccessTokenCheck::DebugToken) => {
            AccessTokenBinding::DebugToken(endpoint.ok_or_else(|| needs("debug_token"))?)
        }
        Some(AccessTokenCheck::Tokeninfo) => {
            AccessTokenBinding::Tokeninfo(endpoint.ok_or_else(|| needs("tokeninfo"))?)
        }
        Some(AccessTokenCheck::Introspection) if protocol == Protocol::Oidc => {
            AccessTokenBinding::Introspection(endpoint)
        }
        Some(AccessTokenCheck::Introspection) => {
            AccessTokenBinding::Introspection(Some(endpoint.ok_or_else(|| needs("introspection"))?))
        }
        None if protocol == Protocol::Oidc || endpoint.is_some() => {
            AccessTokenBinding::Introspection(endpoint)
        }
        None => AccessTokenBinding::NotAccepted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(toml_text: &str) -> Settings {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml_text).expect("write");
        Settings::load_with_env(Some(&path), vec![]).expect("load")
    }

    /// The example configuration the README points to loads, and every
    /// provider in it resolves.
    #[test]
    fn the_example_configuration_loads() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/example.toml");
        let example = Settings::load_with_env(Some(&path), vec![]).expect("example.toml loads");
        let c = Catalogue::from_settings(&example).expect("its providers resolve");
        let corp = c.get("corp").expect("corp");
        assert_eq!(
            corp.token_endpoint_auth_method,
            Some(TokenEndpointAuthMethod::ClientSecretBasic)
        );
        assert!(corp.refresh.enabled);
        // GitHub's tokens do not expire: not refreshed unless said.
        let github = |extra: &str| {
            let s = settings(&format!(
                "[providers.github]\npreset = \"github\"\nclient_id = \"x\"\n{extra}"
            ));
            Catalogue::from_settings(&s)
                .expect("github")
                .get("github")
                .expect("github")
                .refresh
                .enabled
        };
        assert!(!github(""));
        assert!(github("refresh_tokens = true\n"));
    }

    /// A provider's own policy wins; else `[security] linking`; else the
    /// older `associate_by_email`.
    #[test]
    fn linking_policies_resolve_per_provider_then_globally() {
        let two = "[providers.github]\npreset = \"github\"\nclient_id = \"id\"\n\
                   [providers.gitlab]\npreset = \"gitlab\"\nclient_id = \"id\"\n\
                   linking = \"link_only\"\n";
        let policy = |security: &str, name: &str| {
            let s = settings(&format!("[security]\n{security}\n{two}"));
            Catalogue::from_settings(&s)
                .expect("catalogue")
                .get(name)
                .expect(name)
                .linking
        };
        assert_eq!(policy("", "github"), LinkingPolicy::Deny);
        assert_eq!(policy("", "gitlab"), LinkingPolicy::LinkOnly);
        assert_eq!(
            policy("associate_by_email = true", "github"),
            LinkingPolicy::LinkVerified
        );
        assert_eq!(
            policy("associate_by_email = true\nlinking = \"deny\"", "github"),
            LinkingPolicy::Deny
        );
        assert_eq!(
            policy("linking = \"link_only\"", "github"),
            LinkingPolicy::LinkOnly
        );
        assert_eq!(
            policy("linking = \"link_verified\"", "gitlab"),
            LinkingPolicy::LinkOnly
        );
        let bad = tempfile::tempdir().expect("dir");
        let path = bad.path().join("c.toml");
        std::fs::write(&path, "[security]\nlinking = \"sometimes\"\n").expect("write");
        assert!(Settings::load_with_env(Some(&path), vec![]).is_err());
    }

    /// Token login's keys: other client ids, the nonce convention and the
    /// access-token check, with the presets' defaults.
    #[test]
    fn token_login_keys_resolve_with_the_presets_defaults() {
        let s = settings(
            "[providers.google]\npreset = \"google\"\nclient_id = \"web\"\n\
             client_ids = [\"ios\", \"android\", \"web\"]\n\
             [providers.apple]\npreset = \"apple\"\nclient_id = \"com.example.web\"\n\
             [providers.facebook]\npreset = \"facebook\"\nclient_id = \"123\"\n\
             [providers.corp]\nprotocol = \"oidc\"\nissuer = \"http://127.0.0.1:1\"\n\
             client_id = \"c\"\nnonce_convention = \"sha256\"\nid_token_max_age_secs = 60\n\
             [providers.acme]\nprotocol = \"oauth2\"\nauthorize_url = \"http://127.0.0.1:1/a\"\n\
             token_url = \"http://127.0.0.1:1/t\"\nuserinfo_url = \"http://127.0.0.1:1/u\"\n\
             client_id = \"a\"\n\
             [providers.acmei]\nprotocol = \"oauth2\"\nauthorize_url = \"http://127.0.0.1:1/a\"\n\
             token_url = \"http://127.0.0.1:1/t\"\nuserinfo_url = \"http://127.0.0.1:1/u\"\n\
             client_id = \"a\"\nintrospection_url = \"http://127.0.0.1:1/i\"\n\
             [providers.quiet]\npreset = \"google\"\nclient_id = \"q\"\naccess_token_check = \"none\"\n",
        );
        let c = Catalogue::from_settings(&s).expect("catalogue");
        let google = c.get("google").expect("google");
        assert_eq!(google.token_login.client_ids, ["ios", "android"]);
        assert!(google.is_our_client("web") && google.is_our_client("android"));
        assert!(!google.is_our_client("other") && !google.is_our_client(""));
        assert_eq!(google.token_login.nonce_convention, NonceConvention::Raw);
        assert_eq!(
            google.token_login.id_token_max_age_secs,
            DEFAULT_ID_TOKEN_MAX_AGE_SECS
        );
        assert!(matches!(
            &google.token_login.access_token_check,
            AccessTokenBinding::Tokeninfo(u) if u.as_str() == "https://oauth2.googleapis.com/tokeninfo"
        ));
        let apple = c.get("apple").expect("apple");
        assert_eq!(apple.token_login.nonce_convention, NonceConvention::Sha256);
        assert!(matches!(
            c.get("facebook")
                .expect("facebook")
                .token_login
                .access_token_check,
            AccessTokenBinding::DebugToken(_)
        ));
        let corp = c.get("corp").expect("corp");
        assert_eq!(corp.token_login.nonce_convention, NonceConvention::Sha256);
        assert_eq!(corp.token_login.id_token_max_age_secs, 60);
        assert_eq!(
            corp.token_login.access_token_check,
            AccessTokenBinding::Introspection(None)
        );
        assert_eq!(
            c.get("acme").expect("acme").token_login.access_token_check,
            AccessTokenBinding::NotAccepted
        );
        assert!(matches!(
            &c.get("acmei").expect("acmei").token_login.access_token_check,
            AccessTokenBinding::Introspection(Some(u)) if u.path() == "/i"
        ));
        assert_eq!(
            c.get("quiet")
                .expect("quiet")
                .token_login
                .access_token_check,
            AccessTokenBinding::None
        );
        for bad in [
            "[providers.a]\nprotocol = \"oauth2\"\nauthorize_url = \"http://h/a\"\ntoken_url = \"http://h/t\"\n\
             userinfo_url = \"http://h/u\"\nclient_id = \"a\"\naccess_token_check = \"introspection\"\n",
            "[providers.a]\npreset = \"github\"\nclient_id = \"a\"\naccess_token_check = \"tokeninfo\"\n",
            "[providers.a]\npreset = \"google\"\nclient_id = \"a\"\nid_token_max_age_secs = 0\n",
        ] {
            assert!(Catalogue::from_settings(&settings(bad)).is_err(), "{bad}");
        }
        for unknown in [
            "[providers.a]\npreset = \"google\"\nclient_id = \"a\"\nclient_idz = [\"b\"]\n",
            "[providers.a]\npreset = \"google\"\nclient_id = \"a\"\nnonce_convention = \"md5\"\n",
            "[providers.a]\npreset = \"google\"\nclient_id = \"a\"\naccess_token_check = \"maybe\"\n",
        ] {
            let dir = tempfile::tempdir().expect("dir");
            let path = dir.path().join("c.toml");
            std::fs::write(&path, unknown).expect("write");
            assert!(
                Settings::load_with_env(Some(&path), vec![]).is_err(),
                "{unknown}"
            );
        }
    }

    #[test]
    fn presets_fill_endpoints_and_can_be_overridden() {
        let s = settings(
            "[providers.github]\npreset = \"github\"\nclient_id = \"id\"\ntoken_url = \"http://127.0.0.1:9/token\"\n",
        );
        let c = Catalogue::from_settings(&s).expect("catalogue");
        let gh = c.get("github").expect("github");
        assert_eq!(gh.protocol, Protocol::OAuth2);
        assert_eq!(
            gh.authorize_url.as_ref().map(Url::as_str),
            Some("https://github.com/login/oauth/authorize")
        );
        assert_eq!(
            gh.token_url.as_ref().map(Url::as_str),
            Some("http://127.0.0.1:9/token")
        );
        assert_eq!(gh.profile.uid, "id");
        assert!(gh.pkce);
    }

    #[test]
    fn keys_a_provider_would_ignore_are_refused() {
        let refused = |toml: &str| {
            let dir = tempfile::tempdir().expect("dir");
            let path = dir.path().join("c.toml");
            std::fs::write(&path, toml).expect("write");
            let s = Settings::load_with_env(Some(&path), vec![]).expect("load");
            Catalogue::from_settings(&s).expect_err(toml).to_string()
        };
        let e = refused(
            "[providers.gitlab]\npreset = \"gitlab\"\nclient_id = \"id\"\ndomain = \"gitlab.corp.example\"\n",
        );
        assert!(e.contains("`domain` is set but no URL"), "{e}");
        let e = refused(
            "[providers.okta]\npreset = \"okta\"\nclient_id = \"id\"\ndomain = \"o.example\"\nrealm = \"r\"\n",
        );
        assert!(e.contains("`realm` is set but no URL"), "{e}");
        let e = refused(
            "[providers.corp]\nprotocol = \"oidc\"\nissuer = \"https://id.example\"\nclient_id = \"id\"\nemails_url = \"https://id.example/emails\"\n",
        );
        assert!(e.contains("`emails_url` is for `oauth2`"), "{e}");
        let e = refused(
            "[providers.twitter]\npreset = \"twitter\"\nclient_id = \"id\"\nform_post_url = \"https://a.example/auth/o/twitter/callback\"\n",
        );
        assert!(
            e.contains("`form_post_url` is for `oidc` and `oauth2`"),
            "{e}"
        );
        let e = refused(
            "[providers.apple]\npreset = \"apple\"\nclient_id = \"id\"\nform_post_url = \"https://a.example/cb?x=1\"\n",
        );
        assert!(e.contains("without a query"), "{e}");
        let e =
            refused("[providers.apple]\npreset = \"apple\"\nclient_id = \"id\"\nteam_id = \"T\"\n");
        assert!(e.contains("needs `team_id`, `key_id`"), "{e}");
        let e = refused(
            "[providers.apple]\npreset = \"apple\"\nclient_id = \"id\"\nteam_id = \"T\"\nkey_id = \"K\"\nprivate_key = \"nope\"\n",
        );
        assert!(e.contains("not a PEM private key"), "{e}");
        assert!(!e.contains("nope"), "{e}");
    }

    #[test]
    fn a_jwt_client_secret_tells_its_expiry_and_others_do_not() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let jwt = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"ES256"}"#),
            b64(r#"{"exp":1790000000}"#)
        );
        assert_eq!(client_secret_expiry(&jwt), Some(1_790_000_000));
        assert_eq!(client_secret_expiry("plain-secret"), None);
        assert_eq!(client_secret_expiry("a.b.c"), None);
        assert_eq!(client_secret_expiry("a.b.c.d"), None);
    }

    #[test]
    fn microsoft_takes_its_tenant_into_the_issuer() {
        let s = settings(
            "[providers.microsoft]\npreset = \"microsoft\"\nclient_id = \"id\"\n\n\
             [providers.contoso]\npreset = \"microsoft\"\nclient_id = \"id\"\n\
             tenant = \"9188040d-6c67-4c5b-b112-36a304b66dad\"\n",
        );
        let c = Catalogue::from_settings(&s).expect("catalogue");
        let common = c.get("microsoft").expect("microsoft");
        assert_eq!(
            common.issuer.as_ref().map(Url::as_str),
            Some("https://login.microsoftonline.com/common/v2.0")
        );
        assert_eq!(common.tenant.as_deref(), Some("common"));
        let contoso = c.get("contoso").expect("contoso");
        assert_eq!(
            contoso.issuer.as_ref().map(Url::as_str),
            Some("https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0")
        );
        let bad = settings(
            "[providers.m]\npreset = \"microsoft\"\nclient_id = \"id\"\ntenant = \"a/b\"\n",
        );
        assert!(Catalogue::from_settings(&bad).is_err());
        let google =
            settings("[providers.g]\npreset = \"google\"\nclient_id = \"id\"\ntenant = \"x\"\n");
        assert!(Catalogue::from_settings(&google).is_err());
    }

    #[test]
    fn id_token_algorithms_default_to_the_asymmetric_ones_and_are_checked() {
        let s = settings(
            "[providers.g]\npreset = \"google\"\nclient_id = \"id\"\n\n\
             [providers.h]\npreset = \"google\"\nclient_id = \"id\"\n\
             id_token_signing_algs = [\"HS256\"]\nrequire_pkce = true\n",
        );
        let c = Catalogue::from_settings(&s).expect("catalogue");
        let g = c.get("g").expect("g");
        assert!(g.id_token_signing_algs.iter().any(|a| a == "RS256"));
        assert!(!g.id_token_signing_algs.iter().any(|a| a.starts_with("HS")));
        assert!(!g.require_pkce);
        let h = c.get("h").expect("h");
        assert_eq!(h.id_token_signing_algs, ["HS256"]);
        assert!(h.require_pkce);
        for bad in ["[\"none\"]", "[]"] {
            let s = settings(&format!(
                "[providers.g]\npreset = \"google\"\nclient_id = \"id\"\nid_token_signing_algs = {bad}\n"
            ));
            assert!(Catalogue::from_settings(&s).is_err(), "{bad}");
        }
    }

    #[test]
    fn disabled_providers_are_left_out() {
        let s = settings(
            "[providers.corp]\nprotocol = \"oidc\"\nissuer = \"http://127.0.0.1:1\"\nclient_id = \"x\"\nenabled = false\n",
        );
        assert!(
            Catalogue::from_settings(&s)
                .expect("ok")
                .get("corp")
                .is_none()
        );
    }

    #[test]
    fn incomplete_providers_are_refused_with_their_name() {
        let s = settings("[providers.acme]\nprotocol = \"oauth2\"\nclient_id = \"x\"\n");
        let e = Catalogue::from_settings(&s).expect_err("incomplete");
        assert!(e.to_string().contains("acme"), "{e}");
    }

    #[test]
    fn profiles_follow_dotted_paths_and_stringify_ids() {
        let m = ProfileMapping::default().overlay(&ProfileSettings {
            uid: Some("id".into()),
            picture: Some("picture.data.url".into()),
            email_verified: Some("verified".into()),
            ..ProfileSettings::default()
        });
        let p = m
            .extract(&json!({"id": 42, "email": "a@b.io", "verified": true,
                             "picture": {"data": {"url": "http://x/p.png"}}, "name": "Zoë"}))
            .expect("profile");
        assert_eq!(p.uid, "42");
        assert!(p.email_verified);
        assert_eq!(p.picture.as_deref(), Some("http://x/p.png"));
        assert_eq!(p.name.as_deref(), Some("Zoë"));
        assert!(m.extract(&json!({"email": "a@b.io"})).is_none());
    }
}
