//! The optional state cookie (`[security] state_cookie`): a login is bound
//! to the browser that started it. The answer with the authorization URL
//! sets `socialauth_state_<provider>` to a digest of the new state; the
//! callback's state must come with that cookie, or it is `invalid_state`.
//!
//! Without it, login CSRF is the client's to prevent, as in djoser: the
//! page that receives the provider's redirect must only post a `state` it
//! asked for itself (keep it in session storage when redirecting, compare
//! on return). The cookie does this for clients that call the api from the
//! browser, on the app's own site (it is `SameSite=Lax`).

use crate::error::ApiError;
use crate::state::AppState;
use axum::http::{HeaderMap, HeaderValue, header};
use socialauth_common::crypto::hash_token;
use socialauth_common::secret::Secret;

fn name(provider: &str) -> String {
    format!("socialauth_state_{provider}")
}

/// What the cookie holds for `state_value`: a digest, never the state.
fn digest(state_value: &str) -> String {
    hash_token(&format!("state-cookie:{state_value}"))
}

/// The `Set-Cookie` for the state in `authorization_url`, when the cookie
/// is on (and the URL carries a state: OAuth 1.0a's do not).
pub fn set_cookie(
    state: &AppState,
    provider: &str,
    authorization_url: &str,
) -> Option<HeaderValue> {
    let security = &state.settings.security;
    if !security.state_cookie {
        return None;
    }
    let url = url::Url::parse(authorization_url).ok()?;
    let state_value = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())?;
    let secure = if security.state_cookie_secure {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{}={}; Path=/auth/o/{provider}/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        name(provider),
        digest(&state_value),
        security.state_ttl_secs.max(0),
    ))
    .ok()
}

/// Refuses a callback whose state did not come with its cookie, when the
/// cookie is on.
pub fn check(
    state: &AppState,
    provider: &str,
    headers: &HeaderMap,
    state_value: Option<&Secret>,
) -> Result<(), ApiError> {
    if !state.settings.security.state_cookie {
        return Ok(());
    }
    let Some(state_value) = state_value else {
        // A missing state is reported as such by the flow.
        return Ok(());
    };
    let wanted = name(provider);
    let expected = digest(state_value.expose());
    let sent = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(k, v)| k == wanted && bool::from(subtle_eq(v.as_bytes(), expected.as_bytes())));
    if sent {
        Ok(())
    } else {
        Err(ApiError::NonField("invalid_state"))
    }
}

fn subtle_eq(a: &[u8], b: &[u8]) -> subtle::Choice {
    use subtle::ConstantTimeEq;
    a.ct_eq(b)
}
