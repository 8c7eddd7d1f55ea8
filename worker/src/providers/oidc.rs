//! OpenID Connect: discovery (cached), code exchange, id_token verification
//! with the `openidconnect` crate, then userinfo merged over the claims.
//! The same verification serves token login ([`verify_id_token`]), with
//! the rules of [`IdTokenRules`]: every client id of the app as audience,
//! the provider's nonce convention, a maximum age.

use super::http::{Adapter, Http, HttpError, RetryPolicy, is_transient_status};
use super::shared::{
    client_auth_or, fetch_userinfo, login_from, measured, now_secs, provider_tokens, token_error,
};
use super::{Inner, ProviderError, ProviderLogin};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreClaimName, CoreClaimType, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreSubjectIdentifierType, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AdditionalProviderMetadata, AuthType, AuthorizationCode,
    ClaimsVerificationError, Client, ClientId, ClientSecret, DiscoveryError, EmptyExtraTokenFields,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IdToken, IdTokenClaims, IdTokenFields,
    IdTokenVerifier, IssuerUrl, JsonWebKeySet, OAuth2TokenResponse, PkceCodeVerifier,
    ProviderMetadata, RedirectUrl, StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use socialauth_common::catalogue::ProviderConfig;
use socialauth_common::config::NonceConvention;
use socialauth_common::crypto::hash_token;
use socialauth_common::jobs::DiscoveredEndpoints;
use socialauth_common::secret::Secret;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// Every claim beyond the standard ones, so that `raw` keeps them
/// (Google's `hd`, Microsoft's `tid`, …) and mappings can point at them.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(super) struct OtherClaims {
    #[serde(flatten)]
    claims: Map<String, Value>,
}

impl AdditionalClaims for OtherClaims {}

impl fmt::Debug for OtherClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.claims.keys()).finish()
    }
}

/// What a discovery document says beyond OpenID Connect Discovery's
/// fields: RFC 8414's `introspection_endpoint` (token login's check of an
/// access token) and `revocation_endpoint` (a disconnect's revocation).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct ExtraMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    introspection_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revocation_endpoint: Option<String>,
}

impl AdditionalProviderMetadata for ExtraMetadata {}

/// `CoreProviderMetadata` with [`ExtraMetadata`].
pub(super) type ProviderDocument = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

type OidcIdToken = IdToken<
    OtherClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type OidcIdTokenClaims = IdTokenClaims<OtherClaims, CoreGenderClaim>;
type OidcTokenResponse = StandardTokenResponse<
    IdTokenFields<
        OtherClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;
/// `CoreClient` with [`OtherClaims`], as `from_provider_metadata` builds it.
type OidcClient = Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    OidcTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A provider's keys are fetched again on a signature failure at most once
/// in this long.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// Claims that are ours or protocol plumbing, left out of `raw`.
const PLUMBING_CLAIMS: [&str; 3] = ["nonce", "at_hash", "c_hash"];

/// How far a provider's clock may run ahead of ours: an id_token issued
/// later than this from now is refused.
const CLOCK_SKEW_SECS: i64 = 60;

/// The placeholder a multi-tenant issuer's discovery document puts where
/// the tenant goes (Microsoft: `…/{tenantid}/v2.0`); the id_token's `tid`
/// fills it in.
const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// Discovery documents (with their JWKS) per provider, for `ttl`. One fetch
/// at a time per provider: concurrent logins wait for it instead of each
/// fetching.
pub(super) struct DiscoveryCache {
    ttl: Duration,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

#[derive(Default)]
struct Slot {
    fetching: tokio::sync::Mutex<()>,
    current: RwLock<Option<Cached>>,
    /// When a signature failure last made a fetch.
    refreshed_at: Mutex<Option<Instant>>,
}

#[derive(Clone)]
struct Cached {
    metadata: Arc<ProviderDocument>,
    fetched_at: Instant,
}

impl Slot {
    fn current(&self) -> Option<Cached> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn fresh(&self, ttl: Duration) -> Option<Arc<ProviderDocument>> {
        self.current()
            .filter(|c| c.fetched_at.elapsed() < ttl)
            .map(|c| c.metadata)
    }

    fn refreshed_at(&self) -> Option<Instant> {
        *self
            .refreshed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn mark_refreshed(&self) {
        *self
            .refreshed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }

    fn store(&self, metadata: Arc<ProviderDocument>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Cached {
            metadata,
            fetched_at: Instant::now(),
        });
    }
}

impl DiscoveryCache {
    pub(super) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Mutex::default(),
        }
    }

    fn slot(&self, p: &ProviderConfig) -> Arc<Slot> {
        let key = format!(
            "{}|{}",
            p.name,
            p.issuer.as_ref().map(url::Url::as_str).unwrap_or_default()
        );
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default()
            .clone()
    }

    /// The provider's metadata, fetched when absent or older than the TTL.
    async fn get(
        &self,
        http: &Http,
        p: &ProviderConfig,
    ) -> Result<Arc<ProviderDocument>, ProviderError> {
        let slot = self.slot(p);
        if let Some(m) = slot.fresh(self.ttl) {
            return Ok(m);
        }
        let _fetching = slot.fetching.lock().await;
        if let Some(m) = slot.fresh(self.ttl) {
            return Ok(m);
        }
        fetch_into(&slot, http, p).await
    }

    /// Fetches again unless another call already replaced `stale`, or a
    /// signature failure made a fetch within [`MIN_REFRESH_INTERVAL`]: the
    /// keys may have rotated — but an id_token that fails its signature may
    /// also be a forgery posted to token login, and a stream of those must
    /// not make a fetch each.
    async fn refresh(
        &self,
        http: &Http,
        p: &ProviderConfig,
        stale: &Arc<ProviderDocument>,
    ) -> Result<Arc<ProviderDocument>, ProviderError> {
        let slot = self.slot(p);
        let _fetching = slot.fetching.lock().await;
        if let Some(current) = slot.current() {
            let refreshed_lately = slot
                .refreshed_at()
                .is_some_and(|at| at.elapsed() < MIN_REFRESH_INTERVAL);
            if !Arc::ptr_eq(&current.metadata, stale) || refreshed_lately {
                return Ok(current.metadata);
            }
        }
        slot.mark_refreshed();
        fetch_into(&slot, http, p).await
    }
}

async fn fetch_into(
    slot: &Slot,
    http: &Http,
    p: &ProviderConfig,
) -> Result<Arc<ProviderDocument>, ProviderError> {
    let metadata = Arc::new(measured(p.name.as_str(), "discovery", fetch_metadata(http, p)).await?);
    slot.store(metadata.clone());
    Ok(metadata)
}

/// The configured issuer as the provider may spell it: a bare host issuer
/// parses to `https://host/`, while its document says `https://host`
/// (Google) or `https://host/` (Auth0); the comparison is exact.
fn issuer_candidates(issuer: &url::Url) -> Vec<String> {
    let full = issuer.as_str();
    if issuer.path() == "/" && issuer.query().is_none() && issuer.fragment().is_none() {
        vec![full.trim_end_matches('/').to_owned(), full.to_owned()]
    } else {
        vec![full.to_owned()]
    }
}

async fn fetch_metadata(
    http: &Http,
    p: &ProviderConfig,
) -> Result<ProviderDocument, ProviderError> {
    let issuer = p
        .issuer
        .as_ref()
        .ok_or_else(|| ProviderError::Misconfigured("no issuer".into()))?;
    let adapter = Adapter::new(http.clone(), RetryPolicy::Idempotent);
    if let Some(tenant) = &p.tenant {
        return fetch_tenant_metadata(http, &adapter, issuer, tenant).await;
    }
    let mut mismatch = ProviderError::Misconfigured("issuer mismatch".into());
    for candidate in issuer_candidates(issuer) {
        let issuer_url = IssuerUrl::new(candidate)
            .map_err(|_| ProviderError::Misconfigured("unusable issuer URL".into()))?;
        match ProviderDocument::discover_async(issuer_url, &adapter).await {
            Ok(metadata) => return Ok(metadata),
            Err(DiscoveryError::Validation(message)) => {
                mismatch = ProviderError::Misconfigured(format!("discovery document: {message}"));
            }
            Err(e) => return Err(discovery_error(e)),
        }
    }
    Err(mismatch)
}

/// Discovery for a multi-tenant issuer (`tenant` set): the document of a
/// tenant such as `common` names the templated issuer
/// (`…/{tenantid}/v2.0`), which the `openidconnect` crate's discovery
/// refuses as a mismatch. It is accepted here when it is the configured
/// issuer with the tenant replaced by the placeholder (or the configured
/// issuer itself); each id_token's issuer is then checked against it with
/// the token's own `tid` ([`check_issuer`]).
async fn fetch_tenant_metadata(
    http: &Http,
    adapter: &Adapter,
    issuer: &url::Url,
    tenant: &str,
) -> Result<ProviderDocument, ProviderError> {
    let base = issuer.as_str().trim_end_matches('/');
    let url = format!("{base}/.well-known/openid-configuration");
    let request = ::oauth2::http::Request::builder()
        .method(::oauth2::http::Method::GET)
        .uri(&url)
        .header(::oauth2::http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|_| ProviderError::Misconfigured("unusable discovery URL".into()))?;
    let response = http.send(request, RetryPolicy::Idempotent).await?;
    let status = response.status();
    if !status.is_success() {
        return Err(discovery_error(DiscoveryError::Response(
            status,
            Vec::new(),
            String::new(),
        )));
    }
    let metadata: ProviderDocument = serde_json::from_slice(response.body())
        .map_err(|_| ProviderError::Unavailable("malformed discovery document".into()))?;
    let templated = base.replace(&format!("/{tenant}/"), &format!("/{TENANT_PLACEHOLDER}/"))
        + if issuer.as_str().ends_with('/') {
            "/"
        } else {
            ""
        };
    let named = metadata.issuer().as_str();
    if named != issuer.as_str() && named != base && named != templated {
        return Err(ProviderError::Misconfigured(format!(
            "discovery document: unexpected issuer `{named}`"
        )));
    }
    let jwks = JsonWebKeySet::fetch_async(metadata.jwks_uri(), adapter)
        .await
        .map_err(discovery_error)?;
    Ok(metadata.set_jwks(jwks))
}

fn discovery_error(e: DiscoveryError<HttpError>) -> ProviderError {
    match e {
        DiscoveryError::Request(e) => ProviderError::from(e),
        DiscoveryError::Response(status, _, _) if is_transient_status(status) => {
            ProviderError::Unavailable(format!("discovery answered HTTP {}", status.as_u16()))
        }
        DiscoveryError::Response(status, _, _) if status.is_success() => {
            ProviderError::Unavailable("discovery answered something that is not JSON".into())
        }
        DiscoveryError::Response(status, _, _) => {
            ProviderError::Misconfigured(format!("discovery answered HTTP {}", status.as_u16()))
        }
        DiscoveryError::Parse(_) => {
            ProviderError::Unavailable("malformed discovery document or JWKS".into())
        }
        DiscoveryError::Validation(message) => {
            ProviderError::Misconfigured(format!("discovery document: {message}"))
        }
        DiscoveryError::UrlParse(_) => {
            ProviderError::Misconfigured("unusable discovery URL".into())
        }
        _ => ProviderError::Unavailable("discovery failed".into()),
    }
}

pub(super) async fn discover(
    inner: &Inner,
    p: &ProviderConfig,
) -> Result<DiscoveredEndpoints, ProviderError> {
    let metadata = inner.discovery.get(&inner.http(p), p).await?;
    Ok(DiscoveredEndpoints {
        authorization_endpoint: metadata.authorization_endpoint().to_string(),
    })
}

/// `doctor`: the discovery document (its issuer checked against the
/// configured one) and its signing keys, described.
pub(super) async fn describe(inner: &Inner, p: &ProviderConfig) -> Result<String, ProviderError> {
    let metadata = inner.discovery.get(&inner.http, p).await?;
    let keys = metadata.jwks().keys().len();
    if keys == 0 {
        return Err(ProviderError::Misconfigured(
            "the provider publishes no signing keys".into(),
        ));
    }
    let mut endpoints = vec!["authorization", "token"];
    if metadata.userinfo_endpoint().is_some() {
        endpoints.push("userinfo");
    }
    Ok(format!(
        "issuer {}, {keys} signing key{}, endpoints: {}",
        metadata.issuer().as_str(),
        if keys == 1 { "" } else { "s" },
        endpoints.join(", ")
    ))
}

/// `client_secret_basic` unless the provider lists `client_secret_post`
/// without it (absent list: basic, per OpenID Connect Discovery).
fn auth_type(metadata: &ProviderDocument) -> AuthType {
    match metadata.token_endpoint_auth_methods_supported() {
        Some(methods)
            if methods.contains(&CoreClientAuthMethod::ClientSecretPost)
                && !methods.contains(&CoreClientAuthMethod::ClientSecretBasic) =>
        {
            AuthType::RequestBody
        }
        _ => AuthType::BasicAuth,
    }
}

fn build_client(
    inner: &Inner,
    metadata: &ProviderDocument,
    p: &ProviderConfig,
    redirect_uri: &str,
) -> Result<OidcClient, ProviderError> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|_| ProviderError::Misconfigured("unusable redirect_uri".into()))?;
    let secret = Some(inner.client_secret(p)?)
        .filter(|s| !s.expose().is_empty())
        .map(|s| ClientSecret::new(s.into_inner()));
    Ok(OidcClient::from_provider_metadata(
        metadata.clone(),
        ClientId::new(p.client_id.clone()),
        secret,
    )
    .set_redirect_uri(redirect)
    .set_auth_type(client_auth_or(p, auth_type(metadata))))
}

/// The provider's accepted id_token algorithms, as the crate names them
/// (the catalogue checked the names).
fn allowed_algs(p: &ProviderConfig) -> Vec<CoreJwsSigningAlgorithm> {
    p.id_token_signing_algs
        .iter()
        .filter_map(|alg| serde_json::from_value(Value::String(alg.clone())).ok())
        .collect()
}

/// What an id_token must show besides a good signature by one of the
/// provider's pinned algorithms, its issuer and an expiry to come.
pub(super) struct IdTokenRules<'a> {
    /// The audiences accepted: `client_id` for a code this app exchanged;
    /// every client id of the app for token login.
    audiences: Vec<&'a str>,
    /// The nonce the client sent, if any.
    nonce: Option<&'a Secret>,
    /// How the id_token carries it.
    convention: NonceConvention,
    /// Refuse an id_token that carries a nonce when none was sent (token
    /// login: the nonce is what binds the token to the client's sign-in).
    nonce_required_if_carried: bool,
    /// The oldest `iat` accepted, in seconds before now.
    max_age_secs: Option<i64>,
}

impl<'a> IdTokenRules<'a> {
    /// A code this app exchanged: audience `client_id`, the nonce as sent
    /// when one was.
    fn code_flow(p: &'a ProviderConfig, nonce: Option<&'a Secret>) -> Self {
        Self {
            audiences: vec![p.client_id.as_str()],
            nonce,
            convention: NonceConvention::Raw,
            nonce_required_if_carried: false,
            max_age_secs: None,
        }
    }

    /// Token login: any client id of the app, the provider's nonce
    /// convention, a nonce required when the id_token carries one, and the
    /// provider's maximum age.
    fn token_login(p: &'a ProviderConfig, nonce: Option<&'a Secret>) -> Self {
        Self {
            audiences: std::iter::once(p.client_id.as_str())
                .chain(p.token_login.client_ids.iter().map(String::as_str))
                .collect(),
            nonce,
            convention: p.token_login.nonce_convention,
            nonce_required_if_carried: true,
            max_age_secs: Some(p.token_login.id_token_max_age_secs),
        }
    }
}

/// Why a nonce check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceProblem {
    /// The id_token carries a nonce and none was sent.
    Missing,
    /// The id_token's nonce is not the one sent by this convention (or it
    /// carries none while one was sent).
    Mismatch(NonceConvention),
}

/// The id_token's `nonce` claim against the nonce sent, by `convention`:
/// `raw`, the claim is the nonce sent; `sha256`, the claim is the
/// lowercase hex SHA-256 of it. Nothing sent: refused only when
/// `required_if_carried` and the token carries one.
pub(super) fn check_nonce(
    claim: Option<&str>,
    sent: Option<&str>,
    convention: NonceConvention,
    required_if_carried: bool,
) -> Result<(), NonceProblem> {
    let Some(sent) = sent else {
        return match claim {
            Some(_) if required_if_carried => Err(NonceProblem::Missing),
            _ => Ok(()),
        };
    };
    let expected = match convention {
        NonceConvention::Raw => sent.to_owned(),
        NonceConvention::Sha256 => hash_token(sent),
    };
    match claim {
        Some(claim)
            if bool::from(subtle::ConstantTimeEq::ct_eq(
                claim.as_bytes(),
                expected.as_bytes(),
            )) =>
        {
            Ok(())
        }
        _ => Err(NonceProblem::Mismatch(convention)),
    }
}

/// The id_token's audiences and `azp` against the accepted client ids:
/// every audience must be one of ours (OpenID Connect Core 3.1.3.7: no
/// audience we do not trust), there must be one, and an `azp`, when
/// present, must be ours too.
pub(super) fn check_audience(
    audiences: &[&str],
    azp: Option<&str>,
    accepted: &[&str],
) -> Result<(), &'static str> {
    if audiences.is_empty() || !audiences.iter().all(|a| accepted.contains(a)) {
        return Err("id_token audience is not our client");
    }
    match azp {
        Some(azp) if !accepted.contains(&azp) => Err("id_token azp is not our client"),
        _ => Ok(()),
    }
}

/// The verifier of the provider's id_tokens: its keys and issuer, its
/// pinned algorithms, the client secret for HMAC ones. The audience and
/// the nonce are [`check_claims`]'s.
fn id_token_verifier<'a>(
    metadata: &ProviderDocument,
    p: &ProviderConfig,
) -> IdTokenVerifier<'a, CoreJsonWebKey> {
    let client_id = ClientId::new(p.client_id.clone());
    let issuer = metadata.issuer().clone();
    let jwks = metadata.jwks().clone();
    let verifier = match Some(p.client_secret.expose()).filter(|s| !s.is_empty()) {
        Some(secret) => IdTokenVerifier::new_confidential_client(
            client_id,
            ClientSecret::new(secret.clone()),
            issuer,
            jwks,
        ),
        None => IdTokenVerifier::new_public_client(client_id, issuer, jwks),
    };
    let templated = metadata.issuer().as_str().contains(TENANT_PLACEHOLDER);
    verifier
        .set_allowed_algs(allowed_algs(p))
        .require_issuer_match(!templated)
        .require_audience_match(false)
}

/// Signature (JWKS) by one of the provider's pinned algorithms, issuer and
/// expiry. A templated issuer (`{tenantid}`), the audience and the nonce
/// are left to [`check_claims`].
fn verify(
    metadata: &ProviderDocument,
    p: &ProviderConfig,
    id_token: &OidcIdToken,
) -> Result<OidcIdTokenClaims, ClaimsVerificationError> {
    let verifier = id_token_verifier(metadata, p);
    id_token
        .claims(&verifier, |_: Option<&openidconnect::Nonce>| Ok(()))
        .cloned()
}

/// [`verify`], with the provider's keys fetched again when the signature
/// does not verify (they may have rotated).
async fn verify_fresh(
    inner: &Inner,
    metadata: &Arc<ProviderDocument>,
    p: &ProviderConfig,
    id_token: &OidcIdToken,
) -> Result<OidcIdTokenClaims, ProviderError> {
    match verify(metadata, p, id_token) {
        Err(ClaimsVerificationError::SignatureVerification(e)) if may_be_rotated_keys(&e) => {
            tracing::info!("id_token signature did not verify: fetching the provider's keys again");
            let fresh = inner.discovery.refresh(&inner.http(p), p, metadata).await?;
            verify(&fresh, p, id_token)
        }
        other => other,
    }
    .map_err(|e| claims_error(&e))
}

/// What the crate leaves to us: `iat` no later than our clock allows and
/// no older than the rules' maximum age, the audiences and `azp` among the
/// accepted client ids, the nonce by the rules' convention, and a
/// templated issuer filled in with the token's `tid`.
fn check_claims(
    claims: &OidcIdTokenClaims,
    metadata: &ProviderDocument,
    rules: &IdTokenRules<'_>,
) -> Result<(), ProviderError> {
    let refused = |reason: &str| Err(ProviderError::Refused(reason.into()));
    let now = now_secs();
    let issued = claims.issue_time().timestamp();
    if issued > now.saturating_add(CLOCK_SKEW_SECS) {
        return refused("id_token issued in the future");
    }
    if let Some(max_age) = rules.max_age_secs
        && issued < now.saturating_sub(max_age)
    {
        return refused("id_token issued too long ago");
    }
    let audiences: Vec<&str> = claims.audiences().iter().map(|a| a.as_str()).collect();
    let azp = claims.authorized_party().map(|a| a.as_str());
    if let Err(reason) = check_audience(&audiences, azp, &rules.audiences) {
        return refused(reason);
    }
    check_issuer(claims, metadata)?;
    check_nonce(
        claims.nonce().map(|n| n.secret().as_str()),
        rules.nonce.map(|n| n.expose().as_str()),
        rules.convention,
        rules.nonce_required_if_carried,
    )
    .map_err(ProviderError::Nonce)
}

/// A templated issuer (`…/{tenantid}/v2.0`) with the token's `tid` put in
/// must be the token's `iss`; a plain issuer was compared by the crate.
fn check_issuer(
    claims: &OidcIdTokenClaims,
    metadata: &ProviderDocument,
) -> Result<(), ProviderError> {
    let template = metadata.issuer().as_str();
    if !template.contains(TENANT_PLACEHOLDER) {
        return Ok(());
    }
    let tid = claims
        .additional_claims()
        .claims
        .get("tid")
        .and_then(Value::as_str)
        .filter(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        })
        .ok_or_else(|| ProviderError::Refused("id_token has no tenant (tid)".into()))?;
    if claims.issuer().as_str() == template.replace(TENANT_PLACEHOLDER, tid) {
        Ok(())
    } else {
        Err(ProviderError::Refused(
            "id_token issuer is not its tenant's".into(),
        ))
    }
}

/// A signature failure that fresh keys may cure (not a refused algorithm).
fn may_be_rotated_keys(e: &openidconnect::SignatureVerificationError) -> bool {
    !matches!(
        e,
        openidconnect::SignatureVerificationError::DisallowedAlg(_)
            | openidconnect::SignatureVerificationError::NoSignature
            | openidconnect::SignatureVerificationError::UnsupportedAlg(_)
    )
}

fn claims_error(e: &ClaimsVerificationError) -> ProviderError {
    let reason = match e {
        ClaimsVerificationError::Expired(_) => "id_token expired",
        ClaimsVerificationError::SignatureVerification(
            openidconnect::SignatureVerificationError::DisallowedAlg(_)
            | openidconnect::SignatureVerificationError::NoSignature
            | openidconnect::SignatureVerificationError::UnsupportedAlg(_),
        ) => "id_token signed with an algorithm not allowed",
        ClaimsVerificationError::InvalidAudience(_) => "id_token audience is not our client",
        ClaimsVerificationError::InvalidIssuer(_) => "id_token issuer mismatch",
        ClaimsVerificationError::InvalidNonce(_) => "id_token nonce mismatch",
        ClaimsVerificationError::SignatureVerification(_) => "id_token signature invalid",
        _ => "id_token rejected",
    };
    ProviderError::Refused(reason.into())
}

pub(super) async fn exchange_code(
    inner: &Inner,
    p: &ProviderConfig,
    code: &Secret,
    redirect_uri: &str,
    pkce_verifier: Option<&Secret>,
    nonce: Option<&Secret>,
) -> Result<ProviderLogin, ProviderError> {
    let provider = p.name.as_str();
    let metadata = inner.discovery.get(&inner.http(p), p).await?;
    let client = build_client(inner, &metadata, p, redirect_uri)?;
    let mut request = client
        .exchange_code(AuthorizationCode::new(code.expose().clone()))
        .map_err(|_| {
            ProviderError::Misconfigured("discovery document has no token_endpoint".into())
        })?;
    if let Some(verifier) = pkce_verifier {
        request = request.set_pkce_verifier(PkceCodeVerifier::new(verifier.expose().clone()));
    }
    let adapter = Adapter::token_endpoint(inner.http(p), RetryPolicy::ConnectOnly);
    let token: OidcTokenResponse = measured(provider, "token", async {
        request
            .request_async(&adapter)
            .await
            .map_err(|e| token_error(e, adapter.last_status()))
    })
    .await?;

    let id_token = token.id_token().ok_or_else(|| {
        ProviderError::Misconfigured(
            "the token response has no id_token (is `openid` among the scopes?)".into(),
        )
    })?;
    let claims = verify_fresh(inner, &metadata, p, id_token).await?;
    // A nonce problem of a code this app exchanged is a refusal like any
    // other (token login names it).
    check_claims(&claims, &metadata, &IdTokenRules::code_flow(p, nonce)).map_err(|e| match e {
        ProviderError::Nonce(_) => ProviderError::Refused("id_token nonce mismatch".into()),
        other => other,
    })?;

    let mut raw = claims_document(&claims)?;
    let access_token = token.access_token().secret();
    match metadata.userinfo_endpoint().filter(|_| p.read_userinfo) {
        Some(endpoint) => {
            let userinfo = measured(
                provider,
                "userinfo",
                fetch_userinfo(&inner.http(p), endpoint.url(), access_token),
            )
            .await?;
            // OpenID Connect Core 5.3.2: use userinfo only when its subject is
            // the id_token's.
            if userinfo.get("sub").and_then(Value::as_str) != Some(claims.subject().as_str()) {
                return Err(ProviderError::Refused(
                    "userinfo subject differs from the id_token's".into(),
                ));
            }
            merge(&mut raw, userinfo);
        }
        None => {
            if p.profile.extract(&raw).is_none() {
                return Err(ProviderError::Misconfigured(format!(
                    "no userinfo read and no `{}` in the id_token",
                    p.profile.uid
                )));
            }
        }
    }
    login_from(
        p,
        raw,
        provider_tokens(
            access_token,
            token.refresh_token().map(|t| t.secret().as_str()),
            token.expires_in(),
        ),
    )
}

/// The id_token's claims as a document, without [`PLUMBING_CLAIMS`].
fn claims_document(claims: &OidcIdTokenClaims) -> Result<Value, ProviderError> {
    let mut raw = serde_json::to_value(claims)
        .map_err(|_| ProviderError::Unavailable("id_token claims could not be read".into()))?;
    if let Some(doc) = raw.as_object_mut() {
        for key in PLUMBING_CLAIMS {
            doc.remove(key);
        }
    }
    Ok(raw)
}

/// Token login with an id_token a client-side SDK obtained: verified as a
/// code flow's is ([`verify`], [`check_claims`]) under
/// [`IdTokenRules::token_login`]; the profile is its claims through the
/// provider's mapping (no userinfo call: there is no access token).
pub(super) async fn verify_id_token(
    inner: &Inner,
    p: &ProviderConfig,
    id_token: &Secret,
    nonce: Option<&Secret>,
) -> Result<ProviderLogin, ProviderError> {
    let parsed: OidcIdToken = id_token
        .expose()
        .parse()
        .map_err(|_| ProviderError::Refused("malformed id_token".into()))?;
    let metadata = inner.discovery.get(&inner.http(p), p).await?;
    let claims = verify_fresh(inner, &metadata, p, &parsed).await?;
    check_claims(&claims, &metadata, &IdTokenRules::token_login(p, nonce))?;
    login_from(
        p,
        claims_document(&claims)?,
        provider_tokens("", None, None),
    )
}

/// The provider's userinfo endpoint, by discovery.
pub(super) async fn userinfo_endpoint(
    inner: &Inner,
    p: &ProviderConfig,
) -> Result<url::Url, ProviderError> {
    let metadata = inner.discovery.get(&inner.http(p), p).await?;
    metadata
        .userinfo_endpoint()
        .map(|e| e.url().clone())
        .ok_or_else(|| ProviderError::Misconfigured("no userinfo endpoint".into()))
}

/// The discovery document's RFC 8414 `introspection_endpoint`, if any.
pub(super) async fn introspection_endpoint(
    inner: &Inner,
    p: &ProviderConfig,
) -> Result<Option<url::Url>, ProviderError> {
    extra_endpoint(inner, p, "introspection_endpoint", |m| {
        m.introspection_endpoint.as_deref()
    })
    .await
}

/// The discovery document's RFC 8414 `revocation_endpoint`, if any.
pub(super) async fn revocation_endpoint(
    inner: &Inner,
    p: &ProviderConfig,
) -> Result<Option<url::Url>, ProviderError> {
    extra_endpoint(inner, p, "revocation_endpoint", |m| {
        m.revocation_endpoint.as_deref()
    })
    .await
}

async fn extra_endpoint(
    inner: &Inner,
    p: &ProviderConfig,
    name: &str,
    pick: impl FnOnce(&ExtraMetadata) -> Option<&str>,
) -> Result<Option<url::Url>, ProviderError> {
    let metadata = inner.discovery.get(&inner.http(p), p).await?;
    pick(metadata.additional_metadata())
        .map(|raw| {
            url::Url::parse(raw)
                .map_err(|_| ProviderError::Misconfigured(format!("unusable {name}")))
        })
        .transpose()
}

/// `over`'s keys replace `base`'s. An `email` that `over` (userinfo)
/// changes without saying whether the new one is verified is not: the
/// id_token's `email_verified` was about the id_token's address.
fn merge(base: &mut Value, over: Value) {
    match (base.as_object_mut(), over) {
        (Some(doc), Value::Object(over)) => {
            if over
                .get("email")
                .is_some_and(|e| Some(e) != doc.get("email"))
                && !over.contains_key("email_verified")
            {
                doc.remove("email_verified");
            }
            doc.extend(over);
        }
        (None, over) => *base = over,
        (Some(_), _) => {}
    }
}

/// The discovery document's token endpoint (a refresh grant's).
pub(super) async fn token_endpoint(
    inner: &Inner,
    p: &ProviderConfig,
) -> Result<url::Url, ProviderError> {
    let metadata = inner.discovery.get(&inner.http(p), p).await?;
    metadata
        .token_endpoint()
        .map(|u| u.url().clone())
        .ok_or_else(|| ProviderError::Misconfigured("no token_endpoint".into()))
}

/// How the client authenticates at the provider's endpoints other than
/// the token endpoint (introspection, revocation): as at that one
/// ([`auth_type`]).
pub(super) async fn client_auth(
    inner: &Inner,
    p: &ProviderConfig,
) -> Result<AuthType, ProviderError> {
    if p.token_endpoint_auth_method.is_some() {
        return Ok(client_auth_or(p, AuthType::BasicAuth));
    }
    let metadata = inner.discovery.get(&inner.http(p), p).await?;
    Ok(auth_type(&metadata))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_userinfo_address_is_verified_only_when_userinfo_says_so() {
        let claims = json!({"sub": "1", "email": "a@example.test", "email_verified": true});
        // Another address, no word on it: not verified.
        let mut doc = claims.clone();
        merge(&mut doc, json!({"sub": "1", "email": "b@example.test"}));
        assert_eq!(doc["email"], "b@example.test");
        assert_eq!(doc.get("email_verified"), None);
        // Another address, said to be verified.
        let mut doc = claims.clone();
        merge(
            &mut doc,
            json!({"sub": "1", "email": "b@example.test", "email_verified": true}),
        );
        assert_eq!(doc["email_verified"], true);
        // The same address: the id_token's word stands.
        let mut doc = claims.clone();
        merge(
            &mut doc,
            json!({"sub": "1", "email": "a@example.test", "name": "A"}),
        );
        assert_eq!(doc["email_verified"], true);
        assert_eq!(doc["name"], "A");
        // No address in userinfo.
        let mut doc = claims;
        merge(&mut doc, json!({"sub": "1", "name": "A"}));
        assert_eq!(doc["email_verified"], true);
    }

    #[test]
    fn bare_host_issuers_are_tried_without_and_with_the_slash() {
        let bare = url::Url::parse("https://accounts.google.com").expect("url");
        assert_eq!(
            issuer_candidates(&bare),
            [
                "https://accounts.google.com",
                "https://accounts.google.com/"
            ]
        );
        let path = url::Url::parse("https://login.microsoftonline.com/common/v2.0").expect("url");
        assert_eq!(
            issuer_candidates(&path),
            ["https://login.microsoftonline.com/common/v2.0"]
        );
    }

    #[test]
    fn a_raw_nonce_is_the_one_sent() {
        let raw = NonceConvention::Raw;
        assert_eq!(check_nonce(Some("n-1"), Some("n-1"), raw, true), Ok(()));
        assert_eq!(
            check_nonce(Some("n-1"), Some("n-2"), raw, true),
            Err(NonceProblem::Mismatch(raw))
        );
        // The hash of the nonce is not the nonce.
        assert_eq!(
            check_nonce(Some(&hash_token("n-1")), Some("n-1"), raw, true),
            Err(NonceProblem::Mismatch(raw))
        );
        // Sent, and the id_token carries none.
        assert_eq!(
            check_nonce(None, Some("n-1"), raw, false),
            Err(NonceProblem::Mismatch(raw))
        );
    }

    #[test]
    fn a_sha256_nonce_is_the_lowercase_hex_digest_of_the_one_sent() {
        let sha = NonceConvention::Sha256;
        // SHA-256 of "abc", as Apple's SDK samples compute it.
        let digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(check_nonce(Some(digest), Some("abc"), sha, true), Ok(()));
        assert_eq!(
            check_nonce(Some(&digest.to_uppercase()), Some("abc"), sha, true),
            Err(NonceProblem::Mismatch(sha))
        );
        // The client sent the hash itself: not what this convention takes.
        assert_eq!(
            check_nonce(Some(digest), Some(digest), sha, true),
            Err(NonceProblem::Mismatch(sha))
        );
    }

    #[test]
    fn a_carried_nonce_needs_one_sent_only_when_required() {
        for convention in [NonceConvention::Raw, NonceConvention::Sha256] {
            assert_eq!(
                check_nonce(Some("n"), None, convention, true),
                Err(NonceProblem::Missing)
            );
            assert_eq!(check_nonce(Some("n"), None, convention, false), Ok(()));
            assert_eq!(check_nonce(None, None, convention, true), Ok(()));
        }
    }

    #[test]
    fn every_audience_and_the_azp_must_be_one_of_our_client_ids() {
        let ours = ["web", "ios", "android"];
        assert_eq!(check_audience(&["ios"], None, &ours), Ok(()));
        assert_eq!(
            check_audience(&["web", "android"], Some("android"), &ours),
            Ok(())
        );
        assert!(check_audience(&["other-app"], None, &ours).is_err());
        assert!(
            check_audience(&["web", "other-app"], None, &ours).is_err(),
            "an untrusted extra audience"
        );
        assert!(check_audience(&[], None, &ours).is_err());
        assert!(check_audience(&["web"], Some("other-app"), &ours).is_err());
        // The code flow accepts its client_id alone.
        assert!(check_audience(&["ios"], None, &["web"]).is_err());
    }

    #[test]
    fn userinfo_claims_replace_id_token_claims() {
        let mut raw = json!({"sub": "1", "email": "old@x.io", "iss": "i"});
        merge(
            &mut raw,
            json!({"sub": "1", "email": "new@x.io", "hd": "x.io"}),
        );
        assert_eq!(
            raw,
            json!({"sub": "1", "email": "new@x.io", "iss": "i", "hd": "x.io"})
        );
    }

    #[test]
    fn other_claims_show_only_their_names_in_debug() {
        let claims: OtherClaims =
            serde_json::from_value(json!({"hd": "secret-domain"})).expect("claims");
        let shown = format!("{claims:?}");
        assert!(
            shown.contains("hd") && !shown.contains("secret-domain"),
            "{shown}"
        );
    }
}
