//! `POST /auth/token/{provider}/`: login with a token a client-side SDK
//! obtained (Facebook JS SDK, Google or Apple native sign-in). The worker
//! checks the token with the provider and runs the same pipeline as every
//! other way in; the answers are `/social-auth`'s.

use crate::error::{ACCESS_TOKENS_NOT_TAKEN, ApiError, Flow};
use crate::service::flows::{LoginOutcome, finish, parse_email, provider};
use crate::service::required::present;
use crate::state::AppState;
use serde::Deserialize;
use serde_json::Value;
use socialauth_common::catalogue::Protocol;
use socialauth_common::jobs::{Job, LoginCredential, LoginJob, SuppliedName};
use socialauth_common::secret::Secret;
use utoipa::ToSchema;

/// Exactly one of `access_token` and `id_token`.
pub const ONE_TOKEN: &str = "Send exactly one of access_token and id_token.";

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TokenLoginForm {
    /// An access token the provider gave this app's client (Facebook,
    /// Google): checked to be this app's, then used for userinfo.
    #[schema(value_type = Option<String>)]
    pub access_token: Option<Secret>,
    /// An id_token the provider gave this app's client (Google, Apple):
    /// its audience must be one of the provider's client ids.
    #[schema(value_type = Option<String>)]
    pub id_token: Option<Secret>,
    /// The nonce the client sent the provider, as the client has it (the
    /// provider's `nonce_convention` says whether the id_token carries it
    /// or its SHA-256). Required when the id_token carries a nonce.
    #[schema(value_type = Option<String>)]
    pub nonce: Option<Secret>,
    /// Used when the provider gives no email (stored as unverified).
    pub email: Option<String>,
    pub referral_code: Option<String>,
    /// Apple's first sign-in `user` (`{"name": {"firstName",
    /// "lastName"}, "email"}`), as an object or a JSON string: its name is
    /// used when the id_token has none; its email is ignored.
    #[schema(value_type = Option<Object>)]
    pub user: Option<Value>,
}

pub async fn handle(
    state: &AppState,
    provider_name: &str,
    form: TokenLoginForm,
    request_id: Option<String>,
) -> Result<LoginOutcome, ApiError> {
    let provider = provider(state, provider_name)?;
    crate::service::providers::ensure_available(state, &provider, Flow::SocialAuth).await?;
    let credential = match (present(form.access_token), present(form.id_token)) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(ApiError::fields(&["access_token", "id_token"], ONE_TOKEN));
        }
        (Some(access_token), None) => {
            if provider.protocol == Protocol::OAuth1
                || !provider
                    .token_login
                    .access_token_check
                    .accepts_access_tokens()
            {
                return Err(ApiError::field("access_token", ACCESS_TOKENS_NOT_TAKEN));
            }
            LoginCredential::AccessToken { access_token }
        }
        (None, Some(id_token)) => {
            if provider.protocol != Protocol::Oidc {
                return Err(ApiError::field(
                    "id_token",
                    "This provider issues no id_token; send an access_token.",
                ));
            }
            LoginCredential::IdToken {
                id_token,
                nonce: present(form.nonce),
                name: supplied_name(form.user)?,
            }
        }
    };
    let email = parse_email(form.email.as_deref())?;
    let job = Job::Login(LoginJob {
        provider: provider.name.clone(),
        credential,
        email: email.map(|e| e.as_str().to_owned()),
        referral_code: form.referral_code.filter(|r| !r.is_empty()),
    });
    finish(state, job, request_id, Flow::SocialAuth).await
}

/// The name in Apple's `user` (an object, or the JSON text of one, as a
/// form carries it). Its `email` is never used: only the id_token's counts.
pub fn supplied_name(user: Option<Value>) -> Result<Option<SuppliedName>, ApiError> {
    let invalid = || ApiError::field("user", "Enter a JSON object.");
    let user = match user {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => return Ok(None),
        Some(Value::String(text)) => serde_json::from_str(&text).map_err(|_| invalid())?,
        Some(other) => other,
    };
    if !user.is_object() {
        return Err(invalid());
    }
    let part = |key: &str| {
        user.get("name")
            .and_then(|n| n.get(key))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let name = SuppliedName {
        first_name: part("firstName"),
        last_name: part("lastName"),
    };
    Ok((name.first_name.is_some() || name.last_name.is_some()).then_some(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn debug_of_the_form_hides_its_tokens() {
        let form = TokenLoginForm {
            access_token: Some(Secret::new("at-secret-1".into())),
            id_token: Some(Secret::new("id-secret-2".into())),
            nonce: Some(Secret::new("nonce-secret-3".into())),
            ..TokenLoginForm::default()
        };
        let shown = format!("{form:?}");
        for secret in ["at-secret-1", "id-secret-2", "nonce-secret-3"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn apples_user_is_read_as_an_object_or_its_json_text() {
        let object = json!({"name": {"firstName": "Ann", "lastName": "Lee"}, "email": "x@y.z"});
        let name = supplied_name(Some(object.clone()))
            .expect("ok")
            .expect("a name");
        assert_eq!(name.first_name.as_deref(), Some("Ann"));
        assert_eq!(name.last_name.as_deref(), Some("Lee"));
        let text = supplied_name(Some(Value::String(object.to_string()))).expect("ok");
        assert_eq!(text, Some(name));
        assert_eq!(
            supplied_name(Some(json!({"email": "x@y.z"}))).expect("ok"),
            None
        );
        assert_eq!(supplied_name(None).expect("ok"), None);
        for bad in [json!("not json"), json!("[1]"), json!(3)] {
            let err = supplied_name(Some(bad)).expect_err("refused");
            assert_eq!(err.parts().1, json!({"user": ["Enter a JSON object."]}));
        }
    }
}
