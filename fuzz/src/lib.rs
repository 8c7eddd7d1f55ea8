//! What the fuzz targets share: the api's extractors run on fuzzed input
//! without a runtime (on a body already in memory they finish in one
//! poll), and the checks every outcome must pass: a value, or a refusal
//! in the contract's shape; never a panic.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Method, Request};
use serde::de::DeserializeOwned;
use serde_json::Value;
use socialauth_api::error::ApiError;
use socialauth_api::extract::{ApiQuery, FormOrJson};
use socialauth_api::service::campaigns::StartCampaign;
use socialauth_api::service::flows::parse_email;
use socialauth_api::service::redirect_flow::CallbackForm;
use socialauth_api::service::required::Required;
use socialauth_api::service::social_auth::SocialAuthForm;
use socialauth_api::service::token_login::{TokenLoginForm, supplied_name};
use socialauth_api::service::users::UserUpdate;
use socialauth_common::secret::Secret;
use socialauth_common::types::{ProviderName, RedirectUri};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

pub const JSON: &str = "application/json";
pub const FORM: &str = "application/x-www-form-urlencoded";
/// The allow-list the targets check redirect URIs against.
pub const REDIRECT_URI: &str = "http://localhost:3000/auth/callback";

/// Runs `future` to its end: the extractors never wait on anything here.
pub fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..64 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("an extractor waited on a body already in memory");
}

/// `body` posted as `content_type`, through [`FormOrJson`].
pub fn body<T: DeserializeOwned>(content_type: &str, body: &[u8]) -> Result<T, ApiError> {
    let mut request = Request::new(Body::from(body.to_vec()));
    *request.method_mut() = Method::POST;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        request.headers_mut().insert(CONTENT_TYPE, value);
    }
    now(FormOrJson::<T>::from_request(request, &())).map(|FormOrJson(v)| v)
}

/// `raw` as a request's query string, through [`ApiQuery`]; `None` when
/// it makes no URI (hyper refuses such a request before the router).
pub fn query<T: DeserializeOwned + Send>(raw: &[u8]) -> Option<Result<T, ApiError>> {
    let raw = std::str::from_utf8(raw).ok()?;
    let request = Request::builder()
        .uri(format!("/auth/o/x/?{raw}"))
        .body(())
        .ok()?;
    let (mut parts, ()) = request.into_parts();
    Some(now(ApiQuery::<T>::from_request_parts(&mut parts, &())).map(|ApiQuery(v)| v))
}

/// The query string a request for `/…?{raw}` carries, as the server sees
/// it (a fragment is not part of it); `None` when it makes no URI.
pub fn uri_query(raw: &[u8]) -> Option<String> {
    let raw = std::str::from_utf8(raw).ok()?;
    let uri: axum::http::Uri = format!("/auth/o/x/?{raw}").parse().ok()?;
    Some(uri.query().unwrap_or_default().to_owned())
}

/// A refusal as the contract shows it: a 4xx and a JSON object whose
/// values are strings or lists of strings.
pub fn check_refusal(e: &ApiError) {
    let (status, body) = e.parts();
    assert!(status.is_client_error(), "{status}: {body}");
    let map = body.as_object().expect("an error body is a JSON object");
    assert!(!map.is_empty(), "an empty error body");
    for (key, value) in map {
        let ok = value.is_string()
            || value
                .as_array()
                .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string));
        assert!(ok, "{key}: {value}");
    }
}

/// A body extractor's outcome: a value, or 400 / 413 / 415 in the shape.
pub fn checked<T>(outcome: Result<T, ApiError>) -> Option<T> {
    match outcome {
        Ok(value) => Some(value),
        Err(e) => {
            check_refusal(&e);
            let status = e.parts().0.as_u16();
            assert!([400, 413, 415].contains(&status), "{status}");
            None
        }
    }
}

pub fn exposed(secret: &Option<Secret>) -> Option<&str> {
    secret.as_ref().map(|s| s.expose().as_str())
}

/// An optional email as the services read it.
fn email(raw: Option<&str>) {
    if let Err(e) = parse_email(raw) {
        check_refusal(&e);
    }
}

/// A provider name as the routes read it: taken only as a lowercase slug.
pub fn provider(raw: &str) {
    if let Some(name) = ProviderName::parse(raw) {
        assert_eq!(name.as_str(), raw);
        assert!(
            raw.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        );
    }
}

/// A redirect URI: taken only when it is on the list exactly.
pub fn redirect_uri(raw: &str) {
    let allowed = [REDIRECT_URI.to_owned()];
    match RedirectUri::parse_allowed(raw, &allowed) {
        Some(uri) => assert_eq!(uri.as_str(), REDIRECT_URI),
        None => assert_ne!(raw, REDIRECT_URI),
    }
}

/// The fields a form needs: the missing ones named, in the shape.
fn required(fields: &[(&'static str, Option<&str>)]) {
    let mut need = Required::default();
    for (name, value) in fields {
        need.field(name, value.map(str::to_owned));
    }
    if let Err(e) = need.check(|| Some(())) {
        check_refusal(&e);
    }
}

/// `data`'s first byte picks a form, the rest is its body as
/// `content_type`; what parses goes through the checks the services make
/// before any job.
pub fn forms(content_type: &str, data: &[u8]) {
    let Some((&which, data)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => {
            if let Some(f) = checked(body::<CallbackForm>(content_type, data)) {
                email(f.email.as_deref());
                required(&[("code", exposed(&f.code)), ("state", exposed(&f.state))]);
                required(&[
                    ("oauth_token", f.oauth_token.as_deref()),
                    ("oauth_verifier", exposed(&f.oauth_verifier)),
                ]);
            }
        }
        1 => {
            if let Some(f) = checked(body::<SocialAuthForm>(content_type, data)) {
                provider(f.provider.as_deref().unwrap_or_default());
                email(f.email.as_deref());
                redirect_uri(f.redirect_uri.as_deref().unwrap_or_default());
                required(&[
                    ("provider", f.provider.as_deref()),
                    ("code", exposed(&f.code)),
                    ("redirect_uri", f.redirect_uri.as_deref()),
                    ("oauth_token", f.oauth_token.as_deref()),
                    ("oauth_token_secret", exposed(&f.oauth_token_secret)),
                    ("oauth_verifier", exposed(&f.oauth_verifier)),
                ]);
            }
        }
        2 => {
            if let Some(f) = checked(body::<TokenLoginForm>(content_type, data)) {
                email(f.email.as_deref());
                if let Err(e) = supplied_name(f.user) {
                    check_refusal(&e);
                }
            }
        }
        3 => {
            if let Some(f) = checked(body::<UserUpdate>(content_type, data)) {
                required(&[("referral_code", f.referral_code.as_deref())]);
            }
        }
        _ => {
            checked(body::<StartCampaign>(content_type, data));
        }
    }
}
