//! Property tests of every request parser, on generated input: the body
//! extractor over each form, the query extractor, the values parsed at
//! the edge (provider names, emails, redirect URIs, Apple's `user`,
//! required fields), and the whole router in-process on a real SQLite
//! store with a stand-in worker that answers at once and records the jobs
//! it was given. Whatever the input: no panic, no 5xx, every refusal the
//! contract's JSON shape; valid input arrives in the job exactly as sent.

use crate::error::ApiError;
use crate::extract::{ApiQuery, FormOrJson, MAX_REQUEST_ID, RequestId};
use crate::routes::redirect_flow::AuthorizeQuery;
use crate::service::admin::AuditParams;
use crate::service::campaigns::StartCampaign;
use crate::service::redirect_flow::CallbackForm;
use crate::service::required::Required;
use crate::service::social_auth::SocialAuthForm;
use crate::service::token_login::{TokenLoginForm, supplied_name};
use crate::service::users::UserUpdate;
use crate::state::{AppState, EndpointCache};
use async_trait::async_trait;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use socialauth_common::catalogue::Catalogue;
use socialauth_common::config::Settings;
use socialauth_common::jobs::{
    DiscoveredEndpoints, Job, JobEnvelope, JobError, JobResult, LoginCredential, RequestTokenResult,
};
use socialauth_common::queue::{JobQueue, QueueError, ReplyWaiter};
use socialauth_common::secret::Secret;
use socialauth_common::types::{Email, ProviderName, RedirectUri};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex};
use tower::ServiceExt;

const REDIRECT_URI: &str = "http://localhost:3000/auth/callback";
const ADMIN_KEY: &str = "proptest-admin-key";
/// `[server] max_body_bytes`' default: the router's body limit.
const BODY_LIMIT: usize = 64 * 1024;

// ---------------------------------------------------------------------------
// Generators.

/// Any text, with the characters that break parsers more often than chance.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        2 => "[ -~]{0,24}",
        1 => Just(String::new()),
        1 => "[&=%+;#?/\\\\.\"'{}\\[\\]\u{0}\u{ffff}\u{1F600}]{1,12}",
        1 => (1usize..5000).prop_map(|n| "x".repeat(n)),
    ]
}

/// A value that a required field takes: absent, empty or something.
fn maybe_text() -> impl Strategy<Value = Option<String>> {
    prop_oneof![Just(None), Just(Some(String::new())), text().prop_map(Some)]
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map(field_name(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The forms' field names, and others.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(vec![
            "provider", "redirect_uri", "code", "state", "code_verifier", "nonce",
            "oauth_token", "oauth_token_secret", "oauth_verifier", "partial_token",
            "email", "referral_code", "access_token", "id_token", "user",
            "expiring_within_seconds", "rate_per_second", "limit", "cursor", "user_id",
        ])
        .prop_map(str::to_owned),
        1 => text(),
    ]
}

/// `[[[…]]]` or `{"a":{"a":…}}`, `depth` deep (unterminated when `open`).
fn nested(depth: usize, objects: bool, open: bool) -> Vec<u8> {
    let (head, tail): (&[u8], &[u8]) = if objects {
        (b"{\"a\":", b"}")
    } else {
        (b"[", b"]")
    };
    let mut out = Vec::with_capacity(depth * (head.len() + tail.len()) + 4);
    for _ in 0..depth {
        out.extend_from_slice(head);
    }
    out.extend_from_slice(b"1");
    if !open {
        for _ in 0..depth {
            out.extend_from_slice(tail);
        }
    }
    out
}

/// A request body: bytes, text, JSON and form shapes, deep nesting.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => Just(Vec::new()),
        2 => proptest::collection::vec(any::<u8>(), 0..300),
        2 => any::<String>().prop_map(String::into_bytes),
        3 => json_value().prop_map(|v| v.to_string().into_bytes()),
        3 => proptest::collection::btree_map(field_name(), json_value(), 0..6)
            .prop_map(|m| Value::Object(m.into_iter().collect()).to_string().into_bytes()),
        3 => proptest::collection::vec((field_name(), text()), 0..6)
            .prop_map(|pairs| serde_urlencoded::to_string(pairs).unwrap_or_default().into_bytes()),
        2 => "[a-z_=&%0-9A-Fa-f+;]{0,64}".prop_map(String::into_bytes),
        1 => (1usize..100_000, any::<bool>(), any::<bool>())
            .prop_map(|(depth, objects, open)| nested(depth, objects, open)),
        1 => (0usize..6).prop_map(|prefix| {
            let mut long = br#"{"code":""#[..prefix].to_vec();
            long.resize(BODY_LIMIT + 1 + prefix * 997, b'a');
            long
        }),
    ]
}

/// A `Content-Type`: absent, the two taken (as written in the wild), or
/// anything.
fn content_type() -> impl Strategy<Value = Option<HeaderValue>> {
    prop_oneof![
        1 => Just(None),
        2 => proptest::sample::select(vec![
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON ; foo=bar",
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=ISO-8859-1",
            "text/plain",
            "multipart/form-data; boundary=x",
            "application/json-patch+json",
            ";",
            "",
        ])
        .prop_map(|v| Some(HeaderValue::from_static(v))),
        1 => proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|b| HeaderValue::from_bytes(&b).ok()),
    ]
}

/// An `Authorization` header: absent, malformed, bogus, or the admin key.
fn authorization() -> impl Strategy<Value = Option<HeaderValue>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(HeaderValue::from_static("Token"))),
        1 => Just(Some(HeaderValue::from_static("Token "))),
        2 => ("(Token|Bearer|token|BEARER|Basic) {0,2}", text())
            .prop_map(|(scheme, key)| HeaderValue::from_str(&format!("{scheme} {key}")).ok()),
        1 => proptest::collection::vec(any::<u8>(), 0..60)
            .prop_map(|b| HeaderValue::from_bytes(&b).ok()),
        1 => Just(HeaderValue::from_str(&format!("Bearer {ADMIN_KEY}")).ok()),
        1 => Just(HeaderValue::from_str(&format!("token   {ADMIN_KEY}  ")).ok()),
    ]
}

/// Every byte percent-encoded: what a path segment or query value decodes
/// to is exactly `raw`.
fn percent_encode_all(raw: &[u8]) -> String {
    raw.iter().map(|b| format!("%{b:02X}")).collect()
}

/// A path segment as sent: plain, fully percent-encoded, or one of the
/// tricks (dot segments, encoded slashes, NUL, overlong, unicode).
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => proptest::sample::select(vec![
            "stub", "tw", "STUB", "stub%20", "%73tub", "..", "%2e%2e", "%2E%2E%2F", "a%2Fb",
            ".", "%00", "%ff%fe", "%", "%zz", "stub%2F..", "%C0%AE%C0%AE", "\u{0441}tub",
            "1", "-1", "0", "9223372036854775808", "00000000-0000-0000-0000-000000000000",
        ])
        .prop_map(str::to_owned),
        2 => "[a-z0-9_.~%-]{1,20}",
        2 => proptest::collection::vec(any::<u8>(), 1..40).prop_map(|b| percent_encode_all(&b)),
        1 => (1usize..3000).prop_map(|n| "p".repeat(n)),
    ]
}

/// A query string: empty, well-formed pairs, broken escapes, raw bytes
/// percent-encoded.
fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just(String::new()),
        3 => proptest::collection::vec((field_name(), text()), 0..5)
            .prop_map(|pairs| serde_urlencoded::to_string(pairs).unwrap_or_default()),
        2 => "[!-~&&[^#]]{0,60}",
        1 => proptest::collection::vec(any::<u8>(), 0..60)
            .prop_map(|b| format!("redirect_uri={}", percent_encode_all(&b))),
        1 => Just(format!("redirect_uri={}", percent_encode_all(REDIRECT_URI.as_bytes()))),
    ]
}

// ---------------------------------------------------------------------------
// Checks.

/// Runs `future` on this thread's runtime.
fn block_on<F: Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
    }
    RUNTIME.with(|rt| rt.block_on(future))
}

/// A refusal as the contract shows it: a 4xx and a JSON object whose
/// values are strings or lists of strings (`detail`, `non_field_errors`,
/// field names; a resumable error's `partial_token`).
fn check_refusal(status: StatusCode, body: &Value) -> Result<(), TestCaseError> {
    prop_assert!(status.is_client_error(), "{status} {body}");
    let map = body
        .as_object()
        .ok_or_else(|| TestCaseError::fail(format!("not a JSON object: {body}")))?;
    prop_assert!(!map.is_empty(), "an empty error body");
    for (key, value) in map {
        let ok = value.is_string()
            || value
                .as_array()
                .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string));
        prop_assert!(ok, "{key}: {value}");
    }
    Ok(())
}

fn check_api_error(e: &ApiError) -> Result<(), TestCaseError> {
    let (status, body) = e.parts();
    check_refusal(status, &body)
}

/// A body through [`FormOrJson`], as a handler gets it.
fn extract<T: DeserializeOwned>(
    content_type: Option<HeaderValue>,
    body: Vec<u8>,
) -> Result<T, ApiError> {
    let mut request = Request::new(Body::from(body));
    *request.method_mut() = Method::POST;
    if let Some(ct) = content_type {
        request.headers_mut().insert(CONTENT_TYPE, ct);
    }
    block_on(FormOrJson::<T>::from_request(request, &())).map(|FormOrJson(v)| v)
}

/// A query string through [`ApiQuery`]; `None` when it is no URI at all
/// (hyper refuses those before the router).
fn extract_query<T: DeserializeOwned + Send>(raw: &str) -> Option<Result<T, ApiError>> {
    let request = Request::builder().uri(format!("/x?{raw}")).body(()).ok()?;
    let (mut parts, ()) = request.into_parts();
    Some(block_on(ApiQuery::<T>::from_request_parts(&mut parts, &())).map(|ApiQuery(v)| v))
}

fn json_body(fields: &[(&str, &Option<String>)]) -> Vec<u8> {
    let map: Map<String, Value> = fields
        .iter()
        .filter_map(|(k, v)| {
            v.as_ref()
                .map(|v| ((*k).to_owned(), Value::String(v.clone())))
        })
        .collect();
    Value::Object(map).to_string().into_bytes()
}

fn form_body(fields: &[(&str, &Option<String>)]) -> Vec<u8> {
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v)))
        .collect();
    serde_urlencoded::to_string(pairs)
        .expect("pairs of strings encode")
        .into_bytes()
}

fn encoded(json: bool, fields: &[(&str, &Option<String>)]) -> (Option<HeaderValue>, Vec<u8>) {
    if json {
        (
            Some(HeaderValue::from_static("application/json")),
            json_body(fields),
        )
    } else {
        (
            Some(HeaderValue::from_static(
                "application/x-www-form-urlencoded",
            )),
            form_body(fields),
        )
    }
}

fn exposed(secret: &Option<Secret>) -> Option<String> {
    secret.as_ref().map(|s| s.expose().clone())
}

// ---------------------------------------------------------------------------
// The body extractor over each form.

fn extract_any(which: u8, content_type: Option<HeaderValue>, body: Vec<u8>) -> Option<ApiError> {
    match which % 6 {
        0 => extract::<CallbackForm>(content_type, body).err(),
        1 => extract::<SocialAuthForm>(content_type, body).err(),
        2 => extract::<TokenLoginForm>(content_type, body).err(),
        3 => extract::<UserUpdate>(content_type, body).err(),
        4 => extract::<StartCampaign>(content_type, body).err(),
        _ => extract::<serde_json::Map<String, Value>>(content_type, body).err(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes under any media type: parsed, or refused with a 4xx in
    /// the contract's shape (400 malformed, 413, 415).
    #[test]
    fn any_body_is_parsed_or_refused_with_a_4xx(
        which in any::<u8>(),
        content_type in content_type(),
        body in body(),
    ) {
        if let Some(e) = extract_any(which, content_type, body) {
            check_api_error(&e)?;
            let status = e.parts().0.as_u16();
            prop_assert!([400, 413, 415].contains(&status), "{status}");
        }
    }

    /// The djoser callback (`code`, `state`, OAuth 1.0a's `oauth_token`,
    /// `oauth_verifier`, `email`, `referral_code`) arrives as sent, as
    /// JSON and as a form.
    #[test]
    fn a_callback_form_round_trips(
        json in any::<bool>(),
        code in maybe_text(), state in maybe_text(), email in maybe_text(),
        referral_code in maybe_text(), oauth_token in maybe_text(), oauth_verifier in maybe_text(),
    ) {
        let fields = [
            ("code", &code), ("state", &state), ("email", &email),
            ("referral_code", &referral_code), ("oauth_token", &oauth_token),
            ("oauth_verifier", &oauth_verifier),
        ];
        let (ct, body) = encoded(json, &fields);
        let form: CallbackForm = extract(ct, body).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(exposed(&form.code), code);
        prop_assert_eq!(exposed(&form.state), state);
        prop_assert_eq!(form.email, email);
        prop_assert_eq!(form.referral_code, referral_code);
        prop_assert_eq!(form.oauth_token, oauth_token);
        prop_assert_eq!(exposed(&form.oauth_verifier), oauth_verifier);
    }

    /// `/social-auth`'s every field arrives as sent.
    #[test]
    fn a_social_auth_form_round_trips(
        json in any::<bool>(),
        values in proptest::collection::vec(maybe_text(), 11),
    ) {
        let names = [
            "provider", "redirect_uri", "code", "code_verifier", "nonce", "oauth_token",
            "oauth_token_secret", "oauth_verifier", "partial_token", "email", "referral_code",
        ];
        let fields: Vec<(&str, &Option<String>)> = names.iter().copied().zip(values.iter()).collect();
        let (ct, body) = encoded(json, &fields);
        let f: SocialAuthForm = extract(ct, body).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let got = [
            f.provider, f.redirect_uri, exposed(&f.code), exposed(&f.code_verifier),
            exposed(&f.nonce), f.oauth_token, exposed(&f.oauth_token_secret),
            exposed(&f.oauth_verifier), exposed(&f.partial_token), f.email, f.referral_code,
        ];
        prop_assert_eq!(&got[..], &values[..]);
    }

    /// Token login's fields arrive as sent; Apple's `user` as an object in
    /// JSON, as its text in a form.
    #[test]
    fn a_token_login_form_round_trips(
        json in any::<bool>(),
        access_token in maybe_text(), id_token in maybe_text(), nonce in maybe_text(),
        email in maybe_text(), user in maybe_text(),
    ) {
        let fields = [
            ("access_token", &access_token), ("id_token", &id_token), ("nonce", &nonce),
            ("email", &email), ("user", &user),
        ];
        let (ct, body) = encoded(json, &fields);
        let f: TokenLoginForm = extract(ct, body).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(exposed(&f.access_token), access_token);
        prop_assert_eq!(exposed(&f.id_token), id_token);
        prop_assert_eq!(exposed(&f.nonce), nonce);
        prop_assert_eq!(f.email, email);
        prop_assert_eq!(f.user, user.map(Value::String));
    }

    /// A field of the wrong JSON type is a 400 in the contract's shape,
    /// never a default.
    #[test]
    fn a_mistyped_json_field_is_refused(
        which in 0u8..4,
        name in proptest::sample::select(vec!["code", "state", "provider", "email", "oauth_token",
            "referral_code", "access_token", "redirect_uri", "partial_token"]),
        value in json_value().prop_filter("not a string or null", |v| !v.is_string() && !v.is_null()),
    ) {
        let body = json!({ name: value }).to_string().into_bytes();
        let ct = Some(HeaderValue::from_static("application/json"));
        let refused = match which {
            0 => extract::<CallbackForm>(ct, body).err(),
            1 => extract::<SocialAuthForm>(ct, body).err(),
            2 => extract::<TokenLoginForm>(ct, body).err(),
            _ => extract::<UserUpdate>(ct, body).err(),
        };
        // A field the form does not have is ignored, as DRF does.
        let has_field = match which {
            0 => ["code", "state", "email", "oauth_token", "referral_code"].contains(&name),
            1 => name != "access_token" && name != "state",
            2 => ["email", "referral_code", "access_token"].contains(&name),
            _ => name == "referral_code",
        };
        if has_field {
            let e = refused.ok_or_else(|| TestCaseError::fail("a mistyped field was taken"))?;
            prop_assert!(matches!(e, ApiError::MalformedBody(_)), "{e:?}");
            check_api_error(&e)?;
        } else {
            prop_assert!(refused.is_none());
        }
    }
}

proptest! {
    // Bodies up to 500 kB each: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// JSON nested up to 100,000 deep, closed or not, bare or inside a
    /// field: no stack overflow. A field's value that deep is refused
    /// (serde_json's recursion limit); under an unknown key it is skipped
    /// without recursion, as any unknown field is.
    #[test]
    fn deep_json_is_refused_or_skipped_without_overflowing(
        depth in prop_oneof![129usize..2000, 2000usize..100_000],
        objects in any::<bool>(),
        open in any::<bool>(),
        in_field in any::<bool>(),
    ) {
        let mut body = nested(depth, objects, open);
        if in_field {
            let mut wrapped = br#"{"user":"#.to_vec();
            wrapped.append(&mut body);
            wrapped.push(b'}');
            body = wrapped;
        }
        let ct = Some(HeaderValue::from_static("application/json"));
        match extract::<TokenLoginForm>(ct, body) {
            Ok(_) => prop_assert!(objects && !open && !in_field, "deep JSON was taken"),
            Err(e) => prop_assert!(matches!(e, ApiError::MalformedBody(_)), "{e:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// The query extractor.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any query string: parsed or refused with a 400 in the contract's
    /// shape, for both queries the API reads.
    #[test]
    fn any_query_is_parsed_or_refused_with_a_400(raw in query()) {
        for refused in [
            extract_query::<AuthorizeQuery>(&raw).and_then(Result::err),
            extract_query::<AuditParams>(&raw).and_then(Result::err),
        ].into_iter().flatten() {
            prop_assert!(matches!(refused, ApiError::MalformedBody(_)), "{refused:?}");
            check_api_error(&refused)?;
        }
    }

    /// `redirect_uri` arrives as sent, whatever its characters.
    #[test]
    fn a_redirect_uri_round_trips_through_the_query(value in text()) {
        let raw = serde_urlencoded::to_string([("redirect_uri", value.as_str())]).expect("encode");
        let q: AuthorizeQuery = extract_query(&raw)
            .ok_or_else(|| TestCaseError::fail("an encoded query is a URI"))?
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(q.redirect_uri, Some(value));
    }

    /// The audit log's paging: numbers arrive as sent; a value that is not
    /// one is a 400.
    #[test]
    fn audit_params_round_trip_or_are_refused(
        user_id in any::<i64>(), limit in any::<u32>(), provider in text(), cursor in text(),
        bad_limit in "[-+a-z.]{1,6}|[1-9][0-9]{10,19}",
    ) {
        let raw = serde_urlencoded::to_string([
            ("user_id", user_id.to_string()), ("limit", limit.to_string()),
            ("provider", provider.clone()), ("cursor", cursor.clone()),
        ]).expect("encode");
        let p: AuditParams = extract_query(&raw)
            .ok_or_else(|| TestCaseError::fail("an encoded query is a URI"))?
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(p.user_id, Some(user_id));
        prop_assert_eq!(p.limit, Some(limit));
        prop_assert_eq!(p.provider, Some(provider));
        prop_assert_eq!(p.cursor, Some(cursor));
        let raw = serde_urlencoded::to_string([("limit", bad_limit)]).expect("encode");
        let refused = extract_query::<AuditParams>(&raw)
            .ok_or_else(|| TestCaseError::fail("an encoded query is a URI"))?
            .err()
            .ok_or_else(|| TestCaseError::fail("a limit that is no u32 was taken"))?;
        check_api_error(&refused)?;
    }
}

// ---------------------------------------------------------------------------
// Values parsed at the edge.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A client's `X-Request-Id` travels with the job only when it is
    /// short visible ASCII: it rides in the job's AMQP header, which must
    /// fit in one frame.
    #[test]
    fn a_request_id_is_taken_only_when_short_and_plain(
        raw in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            "[!-~]{0,140}".prop_map(String::into_bytes),
            (100usize..200_000).prop_map(|n| vec![b'r'; n]),
        ],
    ) {
        let Ok(value) = HeaderValue::from_bytes(&raw) else {
            return Ok(());
        };
        let mut request = Request::new(());
        request.headers_mut().insert("x-request-id", value);
        let (mut parts, ()) = request.into_parts();
        let RequestId(id) = block_on(RequestId::from_request_parts(&mut parts, &()))
            .unwrap_or_else(|never| match never {});
        let plain = raw.len() <= MAX_REQUEST_ID && raw.iter().all(u8::is_ascii_graphic);
        match id {
            Some(id) => {
                prop_assert!(plain);
                prop_assert_eq!(id.as_bytes(), &raw[..]);
            }
            None => prop_assert!(!plain),
        }
    }

    /// A provider name is `[a-z0-9_-]{1,64}`: no dot segment, slash,
    /// escape or look-alike letter gets through.
    #[test]
    fn provider_names_are_exactly_lowercase_slugs(raw in prop_oneof![text(), "[a-z0-9_-]{1,70}"]) {
        let slug = !raw.is_empty()
            && raw.len() <= 64
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        match ProviderName::parse(&raw) {
            Some(name) => {
                prop_assert!(slug, "{raw:?} taken");
                prop_assert_eq!(name.as_str(), raw.as_str());
            }
            None => prop_assert!(!slug, "{raw:?} refused"),
        }
    }

    /// An email is taken trimmed and whole, or refused; never panics.
    #[test]
    fn emails_are_taken_trimmed_or_refused(
        raw in prop_oneof![
            text(),
            ("[ \t]{0,2}", "[^@\\s]{1,20}", "[a-z0-9-]{1,10}", "[a-z]{2,6}", "[ \t]{0,2}")
                .prop_map(|(a, l, d, t, b)| format!("{a}{l}@{d}.{t}{b}")),
        ],
    ) {
        if let Some(email) = Email::parse(&raw) {
            prop_assert_eq!(email.as_str(), raw.trim());
            prop_assert!(email.as_str().len() <= 254);
            prop_assert!(email.domain().contains('.'));
            prop_assert!(!email.as_str().chars().any(char::is_whitespace));
        }
        match crate::service::flows::parse_email(Some(&raw)) {
            Ok(Some(e)) => prop_assert_eq!(e.as_str(), raw.trim()),
            Ok(None) => prop_assert!(raw.is_empty()),
            Err(e) => {
                prop_assert_eq!(e.parts().1, json!({"email": ["Enter a valid email address."]}));
            }
        }
    }

    /// A redirect URI is taken only when the allow-list has it exactly.
    #[test]
    fn redirect_uris_must_be_on_the_list_exactly(
        raw in prop_oneof![text(), Just(REDIRECT_URI.to_owned()),
            text().prop_map(|t| format!("{REDIRECT_URI}{t}"))],
        others in proptest::collection::vec(text(), 0..3),
    ) {
        let mut allowed = others;
        allowed.push(REDIRECT_URI.to_owned());
        match RedirectUri::parse_allowed(&raw, &allowed) {
            Some(uri) => {
                prop_assert!(allowed.contains(&raw));
                prop_assert_eq!(uri.as_str(), raw.as_str());
            }
            None => prop_assert!(!allowed.contains(&raw)),
        }
    }

    /// Apple's `user`: any JSON (or JSON text) is a name, nothing, or a
    /// 400 `{"user": [...]}`.
    #[test]
    fn apples_user_is_a_name_nothing_or_a_400(
        value in prop_oneof![
            json_value(),
            json_value().prop_map(|v| Value::String(v.to_string())),
            (text(), text()).prop_map(|(f, l)| json!({"name": {"firstName": f, "lastName": l}})),
        ],
    ) {
        match supplied_name(Some(value.clone())) {
            Ok(Some(name)) => {
                let names = [name.first_name, name.last_name];
                prop_assert!(names.iter().flatten().all(|n| !n.is_empty() && n.trim() == n));
            }
            Ok(None) => {}
            Err(e) => prop_assert_eq!(e.parts().1, json!({"user": ["Enter a JSON object."]})),
        }
    }

    /// Every missing (absent or empty) field is named, and only those.
    #[test]
    fn exactly_the_missing_fields_are_named(values in proptest::collection::vec(maybe_text(), 1..6)) {
        const NAMES: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
        let mut need = Required::default();
        let got: Vec<Option<String>> = values
            .iter()
            .zip(NAMES)
            .map(|(v, name)| need.field(name, v.clone()))
            .collect();
        let missing: Vec<&str> = values
            .iter()
            .zip(NAMES)
            .filter(|(v, _)| v.as_deref().is_none_or(str::is_empty))
            .map(|(_, n)| n)
            .collect();
        match need.check(|| Some(())) {
            Ok(()) => prop_assert!(missing.is_empty()),
            Err(e) => {
                let body = e.parts().1;
                let named: Vec<&str> = body
                    .as_object()
                    .map(|m| m.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                prop_assert_eq!(named, missing);
                check_api_error(&e)?;
            }
        }
        for (v, g) in values.iter().zip(got) {
            prop_assert_eq!(v.clone().filter(|s| !s.is_empty()), g);
        }
    }
}

// ---------------------------------------------------------------------------
// The whole router, in-process.

/// The queue of the in-process router: records each job under its
/// request id and answers at once as a worker would when the provider
/// refuses, so that every flow ends without a provider.
#[derive(Default)]
struct StandInWorker {
    jobs: Mutex<HashMap<String, Job>>,
}

impl StandInWorker {
    fn job(&self, request_id: &str) -> Option<Job> {
        self.jobs.lock().ok()?.get(request_id).cloned()
    }

    fn answer(job: &Job) -> Option<JobResult> {
        Some(match job {
            Job::Login(_) | Job::Associate(_) => JobResult::Failed(JobError::InvalidCredentials),
            Job::RequestToken(_) => JobResult::RequestToken(RequestTokenResult {
                oauth_token: "stand-in-token".into(),
                oauth_token_secret: Secret::new("stand-in-secret".into()),
                oauth_callback_confirmed: true,
                authorization_url: "https://idp.test/oauth/authenticate?oauth_token=stand-in-token"
                    .into(),
            }),
            Job::Discover(_) => JobResult::Discovered(DiscoveredEndpoints {
                authorization_endpoint: "https://idp.test/authorize".into(),
            }),
            Job::Refresh(_) => JobResult::Failed(JobError::SocialAccountNotFound),
            // Nobody waits for these.
            _ => return None,
        })
    }
}

#[async_trait]
impl JobQueue for StandInWorker {
    async fn submit(&self, envelope: &JobEnvelope) -> Result<ReplyWaiter, QueueError> {
        if let Some(id) = envelope
            .request_id
            .as_deref()
            .filter(|id| id.starts_with("pt-"))
            && let Ok(mut jobs) = self.jobs.lock()
        {
            jobs.insert(id.to_owned(), envelope.job.clone());
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Some(reply) = Self::answer(&envelope.job) {
            let _ = tx.send(reply);
        }
        Ok(ReplyWaiter::new(rx, None))
    }

    async fn check(&self) -> Result<(), QueueError> {
        Ok(())
    }
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    router: Router,
    worker: Arc<StandInWorker>,
    _dir: tempfile::TempDir,
}

static HARNESS: LazyLock<Harness> = LazyLock::new(|| Harness::start().expect("the harness starts"));

impl Harness {
    /// The api's router on an SQLite store in a temporary directory, with
    /// an OAuth2 provider `stub` and an OAuth 1.0a provider `tw`.
    fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let config = format!(
            r#"[server]
bind = "127.0.0.1:0"
rate_limit_per_minute = 0

[database]
url = "sqlite://{db}"

[security]
allowed_redirect_uris = ["{REDIRECT_URI}"]
admin_key = "{ADMIN_KEY}"

[providers.stub]
protocol = "oauth2"
authorize_url = "https://idp.test/authorize"
token_url = "https://idp.test/token"
userinfo_url = "https://idp.test/me"
client_id = "stub-client"
client_secret = "stub-secret"

[providers.tw]
preset = "twitter"
client_id = "tw-key"
client_secret = "tw-secret"
"#,
            db = dir.path().join("proptest.db").display()
        );
        let path = dir.path().join("socialauth.toml");
        std::fs::write(&path, config)?;
        let settings = Arc::new(Settings::load_with_env(Some(&path), std::iter::empty())?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let worker = Arc::new(StandInWorker::default());
        let router = runtime.block_on(async {
            let store = socialauth_common::store::connect(&settings.database_url(), 4).await?;
            store.migrate().await?;
            let cipher = socialauth_common::bootstrap::token_cipher(&settings)?;
            let state = AppState {
                store,
                queue: worker.clone(),
                catalogue: Arc::new(Catalogue::from_settings(&settings)?),
                settings: settings.clone(),
                endpoints: EndpointCache::default(),
                secrets: cipher.job_secrets().clone(),
                metrics: metrics_exporter_prometheus::PrometheusBuilder::new()
                    .build_recorder()
                    .handle(),
                guard: Arc::new(crate::guard::Guard::from_settings(&settings.server)?),
                health: Default::default(),
            };
            anyhow::Ok(crate::routes::router(state))
        })?;
        Ok(Self {
            runtime,
            router,
            worker,
            _dir: dir,
        })
    }

    /// The answer to `request`: status, headers, body.
    fn send(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Bytes) {
        self.runtime.block_on(async {
            let response = self
                .router
                .clone()
                .oneshot(request)
                .await
                .expect("the router is infallible");
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            (parts.status, parts.headers, bytes)
        })
    }

    /// `send`, then: never a 5xx; a 4xx is JSON in the contract's shape
    /// (but a HEAD's, which has no body). The status and the JSON body.
    fn send_checked(&self, request: Request<Body>) -> Result<(StatusCode, Value), TestCaseError> {
        let head = request.method() == Method::HEAD;
        let what = format!("{} {}", request.method(), request.uri());
        let (status, headers, body) = self.send(request);
        prop_assert!(!status.is_server_error(), "{what}: {status} {body:?}");
        let json = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
        if status.is_client_error() && !head {
            let ct = headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            prop_assert!(
                ct.starts_with("application/json"),
                "{what}: {status} content-type {ct:?} {body:?}"
            );
            check_refusal(status, &json)
                .map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
        }
        Ok((status, json))
    }
}

/// A request; `uri` as written (the router sees it as hyper would give it).
fn request(
    method: Method,
    uri: &str,
    headers: &[(&str, HeaderValue)],
    body: Vec<u8>,
) -> Option<Request<Body>> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, value.clone());
    }
    builder.body(Body::from(body)).ok()
}

/// Every route of the OpenAPI document (with `{}` where a path parameter
/// goes) and the methods it takes, the document itself, and paths of no
/// route.
static ROUTES: LazyLock<Vec<(String, Vec<Method>)>> = LazyLock::new(|| {
    let (_, doc) = crate::routes::openapi_router();
    let doc = serde_json::to_value(&doc).unwrap_or_default();
    let mut routes: Vec<(String, Vec<Method>)> = doc["paths"]
        .as_object()
        .map(|paths| {
            paths
                .iter()
                .map(|(path, ops)| {
                    let template = path
                        .split('/')
                        .map(|s| if s.starts_with('{') { "{}" } else { s })
                        .collect::<Vec<_>>()
                        .join("/");
                    let methods = ops
                        .as_object()
                        .map(|o| {
                            o.keys()
                                .filter_map(|m| {
                                    Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok()
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    (template, methods)
                })
                .collect()
        })
        .unwrap_or_default();
    routes.push(("/openapi.json".into(), vec![Method::GET]));
    routes.push(("/{}".into(), Vec::new()));
    routes.push(("/auth/o/{}/{}/".into(), Vec::new()));
    routes
});

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        3 => proptest::sample::select(vec![Method::GET, Method::POST]),
        2 => proptest::sample::select(vec![
            Method::PUT, Method::PATCH, Method::DELETE, Method::HEAD, Method::OPTIONS,
            Method::TRACE, Method::CONNECT,
        ]),
        1 => "[A-Z]{1,12}".prop_filter_map("a method", |m| Method::from_bytes(m.as_bytes()).ok()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    /// Any method on any route with any parameters, headers and body:
    /// never a 5xx, and every 4xx (404 and 405 included) is the
    /// contract's JSON.
    #[test]
    fn any_request_on_any_route_gets_no_5xx_and_json_refusals(
        route in (0..ROUTES.len()).prop_map(|i| ROUTES[i].clone()),
        documented_method in any::<proptest::sample::Index>(),
        other_method in method(),
        segments in (segment(), segment()),
        query in query(),
        content_type in content_type(),
        authorization in authorization(),
        body in body(),
        trailing in proptest::sample::select(vec!["", "", "", "/", "//", "/..", "?", "#x"]),
    ) {
        let (template, methods) = route;
        // Half the requests with a method the route takes, so that its
        // handler meets the rest of the request.
        let method = if methods.is_empty() || other_method.as_str().len() % 2 == 0 {
            other_method
        } else {
            documented_method.get(&methods).clone()
        };
        let path = template.replacen("{}", &segments.0, 1).replacen("{}", &segments.1, 1);
        let uri = if query.is_empty() {
            format!("{path}{trailing}")
        } else {
            format!("{path}{trailing}?{query}")
        };
        let mut headers = Vec::new();
        if let Some(ct) = content_type {
            headers.push(("content-type", ct));
        }
        if let Some(auth) = authorization {
            headers.push(("authorization", auth));
        }
        // A request hyper would not pass on (no URI at all) is not ours.
        if let Some(request) = request(method, &uri, &headers, body) {
            HARNESS.send_checked(request)?;
        }
    }

    /// A provider in the path is taken when it names a configured
    /// provider once percent-decoded, and is otherwise `Invalid provider`
    /// (or a 404 when it is not UTF-8): no dot segment or escape reaches
    /// anything else.
    #[test]
    fn a_provider_in_the_path_is_a_configured_name_or_refused(segment in segment()) {
        let uri = format!("/auth/o/{segment}/?redirect_uri={}", percent_encode_all(REDIRECT_URI.as_bytes()));
        let Some(request) = request(Method::GET, &uri, &[], Vec::new()) else {
            return Ok(());
        };
        let (status, body) = HARNESS.send_checked(request)?;
        let decoded: Vec<u8> = percent_encoding_decode(&segment);
        match std::str::from_utf8(&decoded) {
            Ok("stub" | "tw") => {
                prop_assert_eq!(status, StatusCode::OK, "{}", body);
                let url = body["authorization_url"].as_str().unwrap_or_default();
                prop_assert!(url.starts_with("https://idp.test/"), "{url}");
            }
            Ok(_) => {
                prop_assert_eq!(status, StatusCode::BAD_REQUEST);
                prop_assert_eq!(body, json!({"provider": ["Invalid provider"]}));
            }
            Err(_) => {
                prop_assert_eq!(status, StatusCode::NOT_FOUND);
                prop_assert_eq!(body, json!({"detail": "Not found."}));
            }
        }
    }
}

/// RFC 3986 percent-decoding as the router does it (an invalid escape
/// stays as it is).
fn percent_encoding_decode(raw: &str) -> Vec<u8> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The djoser flow end to end: the state of an authorization URL
    /// comes back with any code, as JSON or a form, and the job carries
    /// that code and the redirect URI; the state is then spent.
    #[test]
    fn a_djoser_state_round_trips_into_the_job_once(
        code in text().prop_filter("present", |c| !c.is_empty()),
        other_code in text().prop_filter("present", |c| !c.is_empty()),
        json in any::<bool>(),
        n in any::<u64>(),
    ) {
        let uri = format!("/auth/o/stub/?redirect_uri={}", percent_encode_all(REDIRECT_URI.as_bytes()));
        let begin = request(Method::GET, &uri, &[], Vec::new()).expect("a request");
        let (status, body) = HARNESS.send_checked(begin)?;
        prop_assert_eq!(status, StatusCode::OK, "{}", body);
        let url = url::Url::parse(body["authorization_url"].as_str().unwrap_or_default())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let params: HashMap<String, String> = url.query_pairs().into_owned().collect();
        prop_assert_eq!(params.get("redirect_uri").map(String::as_str), Some(REDIRECT_URI));
        let state = params.get("state").cloned().unwrap_or_default();
        prop_assert!(!state.is_empty());

        let request_id = format!("pt-djoser-{n}-{}", uuid::Uuid::new_v4());
        let (ct, bytes) = encoded(json, &[("code", &Some(code.clone())), ("state", &Some(state.clone()))]);
        let mut headers = vec![("x-request-id", HeaderValue::from_str(&request_id).expect("ascii"))];
        headers.extend(ct.map(|ct| ("content-type", ct)));
        let post = request(Method::POST, "/auth/o/stub/", &headers, bytes).expect("a request");
        let (status, body) = HARNESS.send_checked(post)?;
        prop_assert_eq!(status, StatusCode::BAD_REQUEST);
        prop_assert_eq!(body, json!({"non_field_errors": ["invalid_credentials"]}));
        match HARNESS.worker.job(&request_id) {
            Some(Job::Login(job)) => match job.credential {
                LoginCredential::AuthorizationCode { code: sent, redirect_uri, state_consumed, .. } => {
                    prop_assert_eq!(sent.expose(), &code);
                    prop_assert_eq!(redirect_uri, REDIRECT_URI);
                    prop_assert!(state_consumed);
                }
                other => prop_assert!(false, "{other:?}"),
            },
            other => prop_assert!(false, "{other:?}"),
        }
        // Spent: another code on it is refused.
        let (ct, bytes) = encoded(
            json,
            &[("code", &Some(format!("{other_code}-2"))), ("state", &Some(state))],
        );
        let headers: Vec<_> = ct.map(|ct| ("content-type", ct)).into_iter().collect();
        let post = request(Method::POST, "/auth/o/stub/", &headers, bytes).expect("a request");
        let (status, body) = HARNESS.send_checked(post)?;
        prop_assert_eq!(status, StatusCode::BAD_REQUEST);
        prop_assert_eq!(body, json!({"non_field_errors": ["invalid_state"]}));
    }

    /// The OAuth 1.0a callback (`oauth_token`, `oauth_verifier`): with
    /// both, the job carries them as sent; otherwise exactly the missing
    /// ones are named.
    #[test]
    fn the_oauth1_callback_reaches_the_job_or_names_what_is_missing(
        oauth_token in maybe_text(),
        oauth_verifier in maybe_text(),
        json in any::<bool>(),
    ) {
        let request_id = format!("pt-oauth1-{}", uuid::Uuid::new_v4());
        let (ct, bytes) = encoded(
            json,
            &[("oauth_token", &oauth_token), ("oauth_verifier", &oauth_verifier)],
        );
        let mut headers = vec![("x-request-id", HeaderValue::from_str(&request_id).expect("ascii"))];
        headers.extend(ct.map(|ct| ("content-type", ct)));
        let post = request(Method::POST, "/auth/o/tw/", &headers, bytes).expect("a request");
        let (status, body) = HARNESS.send_checked(post)?;
        prop_assert_eq!(status, StatusCode::BAD_REQUEST);
        let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
        if present(&oauth_token) && present(&oauth_verifier) {
            prop_assert_eq!(body, json!({"non_field_errors": ["invalid_credentials"]}));
            match HARNESS.worker.job(&request_id) {
                Some(Job::Login(job)) => match job.credential {
                    LoginCredential::OAuth1 { oauth_token: t, oauth_verifier: v, oauth_token_secret } => {
                        prop_assert_eq!(Some(t), oauth_token);
                        prop_assert_eq!(Some(v.expose().clone()), oauth_verifier);
                        prop_assert!(oauth_token_secret.is_none());
                    }
                    other => prop_assert!(false, "{other:?}"),
                },
                other => prop_assert!(false, "{other:?}"),
            }
        } else {
            let mut expected = Map::new();
            for (name, v) in [("oauth_token", &oauth_token), ("oauth_verifier", &oauth_verifier)] {
                if !present(v) {
                    expected.insert(name.into(), json!(["This field is required."]));
                }
            }
            prop_assert_eq!(body, Value::Object(expected));
            prop_assert!(HARNESS.worker.job(&request_id).is_none());
        }
    }

    /// `/social-auth` for an OAuth2 provider: `code` and an allowed
    /// `redirect_uri` reach the job as sent (with `code_verifier`,
    /// `nonce`, `email`, `referral_code`); a missing one is named; a
    /// redirect URI off the list is `redirect_uri_not_allowed`.
    #[test]
    fn social_auth_reaches_the_job_or_says_why_not(
        code in maybe_text(),
        redirect_uri in prop_oneof![Just(Some(REDIRECT_URI.to_owned())), maybe_text()],
        code_verifier in maybe_text(),
        nonce in maybe_text(),
        referral_code in maybe_text(),
        email in prop_oneof![Just(None), Just(Some("ann@example.com".to_owned()))],
        json in any::<bool>(),
    ) {
        let request_id = format!("pt-social-{}", uuid::Uuid::new_v4());
        let provider = Some("stub".to_owned());
        let (ct, bytes) = encoded(json, &[
            ("provider", &provider), ("code", &code), ("redirect_uri", &redirect_uri),
            ("code_verifier", &code_verifier), ("nonce", &nonce),
            ("referral_code", &referral_code), ("email", &email),
        ]);
        let mut headers = vec![("x-request-id", HeaderValue::from_str(&request_id).expect("ascii"))];
        headers.extend(ct.map(|ct| ("content-type", ct)));
        let post = request(Method::POST, "/social-auth", &headers, bytes).expect("a request");
        let (status, body) = HARNESS.send_checked(post)?;
        prop_assert_eq!(status, StatusCode::BAD_REQUEST);
        let present = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let job = HARNESS.worker.job(&request_id);
        match (present(&code), present(&redirect_uri)) {
            (Some(code), Some(uri)) if uri == REDIRECT_URI => {
                prop_assert_eq!(body, json!({"non_field_errors": "invalid_credentials"}));
                let Some(Job::Login(job)) = job else {
                    return Err(TestCaseError::fail(format!("{job:?}")));
                };
                prop_assert_eq!(job.email, email);
                prop_assert_eq!(job.referral_code, present(&referral_code));
                let LoginCredential::AuthorizationCode {
                    code: c,
                    redirect_uri: r,
                    pkce_verifier,
                    nonce: n,
                    state_consumed,
                } = job.credential
                else {
                    return Err(TestCaseError::fail("not a code"));
                };
                prop_assert_eq!(c.expose(), &code);
                prop_assert_eq!(r, REDIRECT_URI);
                prop_assert_eq!(exposed(&pkce_verifier), present(&code_verifier));
                prop_assert_eq!(exposed(&n), present(&nonce));
                prop_assert!(!state_consumed);
            }
            (Some(_), Some(_)) => {
                prop_assert_eq!(body, json!({"non_field_errors": ["redirect_uri_not_allowed"]}));
                prop_assert!(job.is_none());
            }
            (c, r) => {
                let mut expected = Map::new();
                if c.is_none() {
                    expected.insert("code".into(), json!(["This field is required."]));
                }
                if r.is_none() {
                    expected.insert("redirect_uri".into(), json!(["This field is required."]));
                }
                prop_assert_eq!(body, Value::Object(expected));
                prop_assert!(job.is_none());
            }
        }
    }

    /// The audit log's `limit` is 1 to 500: taken, or a 400 naming it.
    #[test]
    fn the_audit_limit_is_taken_or_named(
        limit in prop_oneof![0u64..600, any::<u64>()],
        as_text in prop_oneof![Just(None), "[-+ a-z.0-9]{0,6}".prop_map(Some)],
    ) {
        let value = as_text.unwrap_or_else(|| limit.to_string());
        let uri = format!("/admin/audit?limit={}", percent_encode_all(value.as_bytes()));
        let auth = HeaderValue::from_str(&format!("Bearer {ADMIN_KEY}")).expect("ascii");
        let get = request(Method::GET, &uri, &[("authorization", auth)], Vec::new()).expect("a request");
        let (status, body) = HARNESS.send_checked(get)?;
        match value.parse::<u32>() {
            Ok(n) if (1..=500).contains(&n) => {
                prop_assert_eq!(status, StatusCode::OK, "{}", body);
                prop_assert!(body["results"].is_array());
            }
            Ok(_) => prop_assert_eq!(body, json!({"limit": ["Ensure this value is between 1 and 500."]})),
            Err(_) => prop_assert!(body["non_field_errors"].is_array(), "{body}"),
        }
    }

    /// A campaign's `expiring_within_seconds` is a whole number of
    /// seconds from 0 to ten years, as a JSON number or text: taken (202),
    /// or a 400 naming it.
    #[test]
    fn a_campaign_window_is_taken_or_named(
        within in prop_oneof![
            json_value(),
            (-10i64..400_000_000).prop_map(Value::from),
            (-10i64..400_000_000).prop_map(|n| Value::String(format!(" {n} "))),
        ],
        json in any::<bool>(),
    ) {
        const MAX_WITHIN_SECS: i64 = 10 * 365 * 24 * 3600;
        let (ct, bytes) = if json {
            (
                HeaderValue::from_static("application/json"),
                json!({"expiring_within_seconds": within}).to_string().into_bytes(),
            )
        } else {
            let text = match &within { Value::String(s) => s.clone(), other => other.to_string() };
            (HeaderValue::from_static("application/x-www-form-urlencoded"),
             serde_urlencoded::to_string([("expiring_within_seconds", &text)]).expect("encode").into_bytes())
        };
        let auth = HeaderValue::from_str(&format!("Bearer {ADMIN_KEY}")).expect("ascii");
        let post = request(Method::POST, "/admin/refresh-campaigns",
            &[("authorization", auth), ("content-type", ct)], bytes).expect("a request");
        let (status, body) = HARNESS.send_checked(post)?;
        let whole = match &within {
            Value::Number(n) if json => n.as_i64(),
            Value::Null if json => None,
            Value::String(s) => s.trim().parse::<i64>().ok(),
            other if !json => other.to_string().trim().parse::<i64>().ok(),
            _ => None,
        };
        match whole {
            Some(s) if (0..=MAX_WITHIN_SECS).contains(&s) => {
                prop_assert_eq!(status, StatusCode::ACCEPTED, "{}", body);
                prop_assert_eq!(&body["expiring_within_seconds"], &json!(s));
            }
            _ => {
                prop_assert_eq!(status, StatusCode::BAD_REQUEST, "{}", body);
                prop_assert!(body["expiring_within_seconds"].is_array(), "{body}");
            }
        }
    }
}

/// Every documented route asked with a method it does not take: 405, the
/// contract's JSON and an `Allow` header naming the methods it takes.
#[test]
fn every_route_answers_another_method_with_a_json_405() {
    for (template, methods) in ROUTES.iter().filter(|(_, m)| !m.is_empty()) {
        let path = template.replace("{}", "stub");
        for method in [Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS]
            .into_iter()
            .filter(|m| !methods.contains(m))
        {
            let request = request(method.clone(), &path, &[], Vec::new()).expect("a request");
            let (status, headers, body) = HARNESS.send(request);
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            let body: Value = serde_json::from_slice(&body).expect("JSON");
            assert_eq!(
                body,
                json!({"detail": format!("Method \"{method}\" not allowed.")})
            );
            let allow = headers
                .get("allow")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            for taken in methods {
                assert!(allow.contains(taken.as_str()), "{path}: Allow {allow:?}");
            }
        }
    }
}
