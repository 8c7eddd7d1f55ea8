//! OpenID Connect: discovery (cached), code exchange, id_token verification
//! with the `openidconnect` crate, then userinfo merged over the claims.

use super::http::{Adapter, Http, HttpError, RetryPolicy, is_transient_status};
use super::shared::{fetch_userinfo, login_from, measured, now_secs, provider_tokens, token_error};
use super::{Inner, ProviderError, ProviderLogin};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreClientAuthMethod, CoreErrorResponseType, CoreGenderClaim,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthType, AuthorizationCode, ClaimsVerificationError, Client, ClientId,
    ClientSecret, DiscoveryError, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IdToken, IdTokenClaims, IdTokenFields, IssuerUrl, JsonWebKeySet, Nonce,
    OAuth2TokenResponse, PkceCodeVerifier, RedirectUrl, StandardErrorResponse,
    StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use socialauth_common::catalogue::ProviderConfig;
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
}

#[derive(Clone)]
struct Cached {
    metadata: Arc<CoreProviderMetadata>,
    fetched_at: Instant,
}

impl Slot {
    fn current(&self) -> Option<Cached> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn fresh(&self, ttl: Duration) -> Option<Arc<CoreProviderMetadata>> {
        self.current()
            .filter(|c| c.fetched_at.elapsed() < ttl)
            .map(|c| c.metadata)
    }

    fn store(&self, metadata: Arc<CoreProviderMetadata>) {
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
    ) -> Result<Arc<CoreProviderMetadata>, ProviderError> {
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

    /// Fetches again unless another call already replaced `stale`: the keys
    /// may have rotated.
    async fn refresh(
        &self,
        http: &Http,
        p: &ProviderConfig,
        stale: &Arc<CoreProviderMetadata>,
    ) -> Result<Arc<CoreProviderMetadata>, ProviderError> {
        let slot = self.slot(p);
        let _fetching = slot.fetching.lock().await;
        if let Some(current) = slot.current()
            && !Arc::ptr_eq(&current.metadata, stale)
        {
            return Ok(current.metadata);
        }
        fetch_into(&slot, http, p).await
    }
}

async fn fetch_into(
    slot: &Slot,
    http: &Http,
    p: &ProviderConfig,
) -> Result<Arc<CoreProviderMetadata>, ProviderError> {
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
) -> Result<CoreProviderMetadata, ProviderError> {
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
        match CoreProviderMetadata::discover_async(issuer_url, &adapter).await {
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
) -> Result<CoreProviderMetadata, ProviderError> {
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
    let metadata: CoreProviderMetadata = serde_json::from_slice(response.body())
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
    let metadata = inner.discovery.get(&inner.http, p).await?;
    Ok(DiscoveredEndpoints {
        authorization_endpoint: metadata.authorization_endpoint().to_string(),
    })
}

/// `client_secret_basic` unless the provider lists `client_secret_post`
/// without it (absent list: basic, per OpenID Connect Discovery).
fn auth_type(metadata: &CoreProviderMetadata) -> AuthType {
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
    metadata: &CoreProviderMetadata,
    p: &ProviderConfig,
    redirect_uri: &str,
) -> Result<OidcClient, ProviderError> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|_| ProviderError::Misconfigured("unusable redirect_uri".into()))?;
    let secret = Some(p.client_secret.expose())
        .filter(|s| !s.is_empty())
        .map(|s| ClientSecret::new(s.clone()));
    Ok(OidcClient::from_provider_metadata(
        metadata.clone(),
        ClientId::new(p.client_id.clone()),
        secret,
    )
    .set_redirect_uri(redirect)
    .set_auth_type(auth_type(metadata)))
}

/// The provider's accepted id_token algorithms, as the crate names them
/// (the catalogue checked the names).
fn allowed_algs(p: &ProviderConfig) -> Vec<CoreJwsSigningAlgorithm> {
    p.id_token_signing_algs
        .iter()
        .filter_map(|alg| serde_json::from_value(Value::String(alg.clone())).ok())
        .collect()
}

/// Signature (JWKS) by one of the provider's pinned algorithms, issuer,
/// audience = client_id, expiry, and the nonce when one was sent. A
/// templated issuer (`{tenantid}`) is left to [`check_issuer`].
fn verify(
    client: &OidcClient,
    metadata: &CoreProviderMetadata,
    p: &ProviderConfig,
    id_token: &OidcIdToken,
    nonce: Option<&Secret>,
) -> Result<OidcIdTokenClaims, ClaimsVerificationError> {
    let templated = metadata.issuer().as_str().contains(TENANT_PLACEHOLDER);
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(allowed_algs(p))
        .require_issuer_match(!templated);
    match nonce {
        Some(n) => {
            let expected = Nonce::new(n.expose().clone());
            id_token.claims(&verifier, &expected).cloned()
        }
        None => id_token
            .claims(&verifier, |_: Option<&Nonce>| Ok(()))
            .cloned(),
    }
}

/// What the crate leaves to us: `iat` no later than our clock allows,
/// `azp` (when present) our client id, and a templated issuer filled in
/// with the token's `tid`.
fn check_claims(
    claims: &OidcIdTokenClaims,
    metadata: &CoreProviderMetadata,
    p: &ProviderConfig,
) -> Result<(), ProviderError> {
    let refused = |reason: &str| Err(ProviderError::Refused(reason.into()));
    let now = now_secs();
    if claims.issue_time().timestamp() > now.saturating_add(CLOCK_SKEW_SECS) {
        return refused("id_token issued in the future");
    }
    if let Some(azp) = claims.authorized_party()
        && azp.as_str() != p.client_id
    {
        return refused("id_token azp is not our client");
    }
    check_issuer(claims, metadata)
}

/// A templated issuer (`…/{tenantid}/v2.0`) with the token's `tid` put in
/// must be the token's `iss`; a plain issuer was compared by the crate.
fn check_issuer(
    claims: &OidcIdTokenClaims,
    metadata: &CoreProviderMetadata,
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
    let metadata = inner.discovery.get(&inner.http, p).await?;
    let client = build_client(&metadata, p, redirect_uri)?;
    let mut request = client
        .exchange_code(AuthorizationCode::new(code.expose().clone()))
        .map_err(|_| {
            ProviderError::Misconfigured("discovery document has no token_endpoint".into())
        })?;
    if let Some(verifier) = pkce_verifier {
        request = request.set_pkce_verifier(PkceCodeVerifier::new(verifier.expose().clone()));
    }
    let adapter = Adapter::new(inner.http.clone(), RetryPolicy::ConnectOnly);
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
    let claims = match verify(&client, &metadata, p, id_token, nonce) {
        Err(ClaimsVerificationError::SignatureVerification(e)) if may_be_rotated_keys(&e) => {
            tracing::info!("id_token signature did not verify: fetching the provider's keys again");
            let fresh = inner.discovery.refresh(&inner.http, p, &metadata).await?;
            let client = build_client(&fresh, p, redirect_uri)?;
            verify(&client, &fresh, p, id_token, nonce)
        }
        other => other,
    }
    .map_err(|e| claims_error(&e))?;
    check_claims(&claims, &metadata, p)?;

    let mut raw = serde_json::to_value(&claims)
        .map_err(|_| ProviderError::Unavailable("id_token claims could not be read".into()))?;
    if let Some(doc) = raw.as_object_mut() {
        for key in PLUMBING_CLAIMS {
            doc.remove(key);
        }
    }

    let access_token = token.access_token().secret();
    match metadata.userinfo_endpoint() {
        Some(endpoint) => {
            let userinfo = measured(
                provider,
                "userinfo",
                fetch_userinfo(&inner.http, endpoint.url(), access_token),
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
                    "no userinfo endpoint and no `{}` in the id_token",
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

/// `over`'s keys replace `base`'s.
fn merge(base: &mut Value, over: Value) {
    match (base.as_object_mut(), over) {
        (Some(doc), Value::Object(over)) => doc.extend(over),
        (None, over) => *base = over,
        (Some(_), _) => {}
    }
}

/// How the client authenticates at the provider's endpoints (its
/// discovery document's `token_endpoint_auth_methods_supported`).
pub(super) async fn client_auth(
    inner: &Inner,
    p: &ProviderConfig,
) -> Result<AuthType, ProviderError> {
    let metadata = inner.discovery.get(&inner.http, p).await?;
    Ok(auth_type(&metadata))
}

/// The discovery document's `revocation_endpoint`.
pub(super) async fn revocation_endpoint(
    _inner: &Inner,
    _p: &ProviderConfig,
) -> Result<Option<url::Url>, ProviderError> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
