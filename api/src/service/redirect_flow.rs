//! The djoser-compatible redirect flow, `/auth/o/{provider}/`: the GET
//! makes a server-side state (single use, expiring), PKCE S256 and an OIDC
//! nonce, and the provider's authorization URL; the POST takes the state
//! and publishes the login job (a double submit of the same code gets the
//! first job's outcome).

use crate::error::{ApiError, Flow};
use crate::service::flows::{
    LoginOutcome, check_iss, finish, finish_job, parse_email, provider, redirect_uri, request_token,
};
use crate::service::jobs::{Submitted, submit};
use crate::service::required::Required;
use crate::state::AppState;
use backon::Retryable;
use serde::Deserialize;
use socialauth_common::catalogue::{Protocol, ProviderConfig};
use socialauth_common::crypto::{hash_token, pkce_challenge};
use socialauth_common::jobs::{
    DiscoverJob, Job, JobEnvelope, JobError, JobResult, LoginCredential, LoginJob,
};
use socialauth_common::now_ms;
use socialauth_common::redemption::{FirstUse, retry_of};
use socialauth_common::secret::Secret;
use socialauth_common::store::{NewOAuthState, OAuthStateTake, StoreError};
use socialauth_common::types::UserId;
use std::borrow::Cow;
use url::Url;
use utoipa::ToSchema;
use uuid::Uuid;

/// The provider's authorization URL with a new state. `for_user`: the
/// signed-in user of an association, whom the state (or OAuth 1.0a
/// request token) is bound to; `None` for a login.
pub async fn authorization_url(
    state: &AppState,
    provider_name: &str,
    raw_redirect_uri: Option<&str>,
    request_id: Option<String>,
    for_user: Option<UserId>,
) -> Result<String, ApiError> {
    let provider = provider(state, provider_name)?;
    crate::service::providers::ensure_available(state, &provider, Flow::Djoser).await?;
    let redirect_uri = redirect_uri(state, &provider, raw_redirect_uri)?;
    if provider.protocol == Protocol::OAuth1 {
        let token = request_token(
            state,
            &provider,
            &redirect_uri,
            request_id,
            Flow::Djoser,
            for_user,
        )
        .await?;
        return Ok(token.authorization_url);
    }
    let endpoint = authorize_endpoint(state, &provider, request_id).await?;

    let state_value = state.secrets.new_state();
    // The verifier and the nonce are made from the state again when it
    // comes back, with the key it names: nothing but the state's hash is
    // stored.
    let verifier = provider
        .pkce
        .then(|| state.secrets.pkce_verifier(&state_value))
        .flatten();
    let nonce = (provider.protocol == Protocol::Oidc)
        .then(|| state.secrets.nonce(&state_value))
        .flatten();
    let now = now_ms();
    state
        .store
        .insert_oauth_state(&NewOAuthState {
            state_hash: hash_token(&state_value),
            provider: provider.name.as_str().to_owned(),
            redirect_uri: redirect_uri.as_str().to_owned(),
            pkce_verifier: None,
            nonce: None,
            created_at: now,
            expires_at: now.saturating_add(state.settings.security.state_ttl_secs * 1000),
            user_id: for_user,
        })
        .await?;

    let mut url = endpoint;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &provider.client_id)
            .append_pair(
                "redirect_uri",
                &redirect_uri_at_provider(&provider, Cow::Borrowed(redirect_uri.as_str())),
            )
            .append_pair("state", &state_value);
        if provider.form_post_url.is_some() {
            q.append_pair("response_mode", "form_post");
        }
        if !provider.scopes.is_empty() {
            q.append_pair("scope", &provider.scopes.join(" "));
        }
        if let Some(v) = &verifier {
            q.append_pair("code_challenge", &pkce_challenge(v.expose()))
                .append_pair("code_challenge_method", "S256");
        }
        if let Some(n) = &nonce {
            q.append_pair("nonce", n.expose());
        }
        for (k, v) in &provider.authorize_params {
            q.append_pair(k, v);
        }
    }
    Ok(url.into())
}

/// The redirect URI the provider is given, in the authorization request
/// and in the code exchange: the client's own, or for a `form_post`
/// provider this service's callback, which sends the browser on to the
/// client's (the state keeps the client's).
fn redirect_uri_at_provider<'a>(
    provider: &'a ProviderConfig,
    client_redirect_uri: Cow<'a, str>,
) -> Cow<'a, str> {
    match &provider.form_post_url {
        Some(url) => Cow::Borrowed(url.as_str()),
        None => client_redirect_uri,
    }
}

/// A `form_post` provider's answer, POSTed by the user's browser to
/// `/auth/o/{provider}/callback`. Sign in with Apple also sends `user`
/// (the name, on the first sign-in only) and `id_token`; neither is
/// used: the code exchange gives the id_token again, from the provider.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct FormPostAnswer {
    #[schema(value_type = Option<String>)]
    pub code: Option<Secret>,
    #[schema(value_type = Option<String>)]
    pub state: Option<Secret>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// RFC 9207: checked here against the provider's issuer and passed
    /// on, as the client's POST checks it again.
    pub iss: Option<String>,
}

/// Where a `form_post` provider's answer sends the browser: the client's
/// redirect URI that the state names, with `code` and `state` (or the
/// provider's `error`), as a provider redirecting there itself would. The
/// state is read, not taken: the client's POST of the code takes it.
pub async fn relay_form_post(
    state: &AppState,
    provider_name: &str,
    answer: FormPostAnswer,
) -> Result<Url, ApiError> {
    let provider = provider(state, provider_name)?;
    if provider.form_post_url.is_none() {
        return Err(ApiError::NotFound);
    }
    check_iss(&provider, answer.iss.as_deref())?;
    let state_value = answer.state.ok_or_else(|| ApiError::required(&["state"]))?;
    let saved = state
        .store
        .find_open_oauth_state(&hash_token(state_value.expose()))
        .await?
        .filter(|saved| saved.provider == provider.name.as_str())
        .ok_or(ApiError::NonField("invalid_state"))?;
    if saved.expires_at <= now_ms() {
        return Err(ApiError::NonField("state_expired"));
    }
    let mut url =
        Url::parse(&saved.redirect_uri).map_err(|_| ApiError::NonField("invalid_state"))?;
    {
        let mut q = url.query_pairs_mut();
        match (answer.code, answer.error) {
            (_, Some(error)) => {
                q.append_pair("error", &error);
                if let Some(description) = &answer.error_description {
                    q.append_pair("error_description", description);
                }
            }
            (Some(code), None) => {
                q.append_pair("code", code.expose());
            }
            (None, None) => return Err(ApiError::required(&["code"])),
        }
        q.append_pair("state", state_value.expose());
        if let Some(iss) = &answer.iss {
            q.append_pair("iss", iss);
        }
    }
    Ok(url)
}

/// The configured authorization endpoint, or the one a worker found by
/// OIDC discovery (the api makes no provider call itself).
async fn authorize_endpoint(
    state: &AppState,
    provider: &ProviderConfig,
    request_id: Option<String>,
) -> Result<Url, ApiError> {
    if let Some(url) = &provider.authorize_url {
        return Ok(url.clone());
    }
    let name = provider.name.as_str();
    let found = match state.endpoints.get(name) {
        Some(url) => url,
        None => {
            let job = Job::Discover(DiscoverJob {
                provider: provider.name.clone(),
            });
            let url = match submit(state, job, request_id).await? {
                Submitted::Done(_, JobResult::Discovered(d)) => d.authorization_endpoint,
                Submitted::Done(_, JobResult::Failed(JobError::InvalidProvider)) => {
                    return Err(ApiError::InvalidProvider);
                }
                _ => {
                    return Err(ApiError::Job(JobError::ProviderUnavailable, Flow::Djoser));
                }
            };
            state.endpoints.put(name, url.clone());
            url
        }
    };
    Url::parse(&found).map_err(|_| ApiError::Job(JobError::ProviderUnavailable, Flow::Djoser))
}

/// The provider's answer in the djoser flow.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CallbackForm {
    #[schema(value_type = Option<String>)]
    pub code: Option<Secret>,
    #[schema(value_type = Option<String>)]
    pub state: Option<Secret>,
    pub email: Option<String>,
    pub referral_code: Option<String>,
    /// OAuth 1.0a providers answer with these instead of `code` + `state`.
    pub oauth_token: Option<String>,
    #[schema(value_type = Option<String>)]
    pub oauth_verifier: Option<Secret>,
    /// RFC 9207: the `iss` of the provider's answer, when it sent one;
    /// checked against the provider's issuer.
    pub iss: Option<String>,
}

pub async fn complete(
    state: &AppState,
    provider_name: &str,
    form: CallbackForm,
    request_id: Option<String>,
) -> Result<LoginOutcome, ApiError> {
    let provider = provider(state, provider_name)?;
    crate::service::providers::ensure_available(state, &provider, Flow::Djoser).await?;
    if provider.protocol == Protocol::OAuth1 {
        return complete_oauth1(state, &provider, form, request_id).await;
    }
    let email = parse_email(form.email.as_deref())?;
    check_iss(&provider, form.iss.as_deref())?;
    let job_id = Uuid::new_v4();
    let state_hash = form.state.as_ref().map(|s| hash_token(s.expose()));
    let credential = take_state(state, &provider, form.code, form.state, job_id, None).await?;
    let took = took_state(&credential);
    let job = Job::Login(LoginJob {
        provider: provider.name.clone(),
        credential,
        email: email.map(|e| e.as_str().to_owned()),
        referral_code: form.referral_code.filter(|r| !r.is_empty()),
    });
    let outcome = finish_job(
        state,
        JobEnvelope::with_id(job_id, job, request_id),
        Flow::Djoser,
    )
    .await;
    if took && let Err(error) = &outcome {
        give_back_unsent(state, state_hash.as_deref(), job_id, error).await;
    }
    outcome
}

/// Whether `credential` comes from a state this request took.
pub fn took_state(credential: &LoginCredential) -> bool {
    matches!(
        credential,
        LoginCredential::AuthorizationCode {
            state_consumed: true,
            ..
        }
    )
}

/// A state taken for a job that certainly never reached the queue (the
/// broker was away: the client was answered 503) is given back, so that
/// sending the same code again works once the broker is back. A job that
/// may be in the queue keeps its state: a second job would exchange the
/// same code, and providers revoke what a reused code gave.
pub async fn give_back_unsent(
    state: &AppState,
    state_hash: Option<&str>,
    job_id: Uuid,
    error: &ApiError,
) {
    let ApiError::Queue(queue_error) = error else {
        return;
    };
    let Some(state_hash) = state_hash else {
        return;
    };
    if !queue_error.certainly_not_sent() {
        return;
    }
    if let Err(e) = state.store.release_oauth_state(state_hash, job_id).await {
        tracing::warn!(error = %e, "a state whose job was not sent could not be given back");
    }
}

/// The provider's `code` and our `state` → the credential of job
/// `job_id`: the state taken (single use), checked for the provider and
/// for the user it was issued to (`for_user`: an association's signed-in
/// user; `None`: a login, which an association's state cannot finish),
/// the PKCE verifier and nonce made again from it. A login's state taken
/// already answers a double submit of its code with the first outcome.
pub async fn take_state(
    state: &AppState,
    provider: &ProviderConfig,
    code: Option<Secret>,
    state_value: Option<Secret>,
    job_id: Uuid,
    for_user: Option<UserId>,
) -> Result<LoginCredential, ApiError> {
    let mut need = Required::default();
    let code = need.field("code", code);
    let state_value = need.field("state", state_value);
    let (code, state_value) = need.check(|| Some((code?, state_value?)))?;
    let now = now_ms();
    let state_hash = hash_token(state_value.expose());
    let code_hash = hash_token(code.expose());
    let take = OAuthStateTake {
        state_hash: &state_hash,
        now,
        job_id,
        code_hash: &code_hash,
    };
    // A take whose answer was lost (the database went away meanwhile) is
    // made again by the same job, which gets the state again: never taken
    // without the request knowing.
    let taken = crate::service::jobs::patiently(
        (|| state.store.take_oauth_state(&take))
            .retry(crate::service::jobs::patience())
            .when(StoreError::is_transient),
    )
    .await;
    let taken = match taken {
        Ok(taken) => taken,
        Err(e) => {
            // Perhaps taken by an attempt whose answer was lost: given
            // back (by this job id only, which never reached the queue),
            // so the client may send the code again.
            let _ = state.store.release_oauth_state(&state_hash, job_id).await;
            return Err(e.into());
        }
    };
    Ok(match taken {
        Some(saved) if saved.provider == provider.name.as_str() && saved.user_id == for_user => {
            if saved.expires_at <= now {
                return Err(ApiError::NonField("state_expired"));
            }
            LoginCredential::AuthorizationCode {
                code,
                redirect_uri: redirect_uri_at_provider(provider, Cow::Owned(saved.redirect_uri))
                    .into_owned(),
                // A state made before verifiers were derived names its own;
                // one naming a key this process does not know is refused.
                pkce_verifier: match saved.pkce_verifier {
                    Some(stored) => Some(Secret::new(stored)),
                    None if provider.pkce => Some(
                        state
                            .secrets
                            .pkce_verifier(state_value.expose())
                            .ok_or(ApiError::NonField("invalid_state"))?,
                    ),
                    None => None,
                },
                nonce: match saved.nonce {
                    Some(stored) => Some(Secret::new(stored)),
                    None if provider.protocol == Protocol::Oidc => Some(
                        state
                            .secrets
                            .nonce(state_value.expose())
                            .ok_or(ApiError::NonField("invalid_state"))?,
                    ),
                    None => None,
                },
                state_consumed: true,
            }
        }
        Some(_) => return Err(ApiError::NonField("invalid_state")),
        // Taken already: a double submit of the same code gets the first
        // outcome (a login's; an association is not answered twice).
        None if for_user.is_none() => LoginCredential::Retry {
            first_job: retry_of_taken_state(state, provider, &state_hash, &code_hash, now)
                .await?
                .ok_or(ApiError::NonField("invalid_state"))?,
        },
        None => return Err(ApiError::NonField("invalid_state")),
    })
}

/// The job whose outcome answers a second POST of a taken state
/// ([`retry_of`]): the same code, on the same provider, within the window.
async fn retry_of_taken_state(
    state: &AppState,
    provider: &ProviderConfig,
    state_hash: &str,
    code_hash: &str,
    now: i64,
) -> Result<Option<Uuid>, ApiError> {
    let Some(taken) = state.store.find_taken_oauth_state(state_hash).await? else {
        return Ok(None);
    };
    let Some(first) = taken.taken_by else {
        return Ok(None);
    };
    // An association's state is never a login's to answer.
    let same_request = taken.provider == provider.name.as_str()
        && taken.user_id.is_none()
        && taken.code_hash.as_deref() == Some(code_hash);
    Ok(retry_of(
        FirstUse {
            job_id: first,
            at: taken.taken_at,
            same_request,
        },
        now,
        state.settings.security.retry_window_ms(),
    ))
}

/// The djoser flow's second step for OAuth 1.0a: the request token stands
/// in for `state` (server-side, single use).
async fn complete_oauth1(
    state: &AppState,
    provider: &ProviderConfig,
    form: CallbackForm,
    request_id: Option<String>,
) -> Result<LoginOutcome, ApiError> {
    let email = parse_email(form.email.as_deref())?;
    let mut need = Required::default();
    let token = need.field("oauth_token", form.oauth_token);
    let verifier = need.field("oauth_verifier", form.oauth_verifier);
    let (oauth_token, oauth_verifier) = need.check(|| Some((token?, verifier?)))?;
    let job = Job::Login(LoginJob {
        provider: provider.name.clone(),
        credential: LoginCredential::OAuth1 {
            oauth_token,
            oauth_token_secret: None,
            oauth_verifier,
        },
        email: email.map(|e| e.as_str().to_owned()),
        referral_code: form.referral_code.filter(|r| !r.is_empty()),
    });
    finish(state, job, request_id, Flow::Djoser).await
}
