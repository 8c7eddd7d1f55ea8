//! The benchmark's stub identity provider: OAuth 2 endpoints that accept any
//! code, so the load generator controls identities and socialauth is measured
//! rather than a real IdP. Not a test IdP: it checks nothing but the shape of
//! codes and tokens.
//!
//! - a code is `<uid>` or `<uid>.<anything>`; `uid` is 1–64 of `[A-Za-z0-9_-]`;
//!   a code starting with `bad` is refused (`invalid_grant`);
//! - access tokens are `at.<uid>.<random>`, refresh tokens `rt.<uid>.<random>`;
//! - `GET /userinfo` answers the OIDC claims of `<uid>` for a bearer access
//!   token;
//! - `GET /stats` counts requests per endpoint and the process's CPU time.
//!
//! The bin `stubidp` serves [`router`].

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// The longest uid a code may carry.
pub const MAX_UID_LEN: usize = 64;

/// Requests served, by endpoint.
#[derive(Default)]
pub struct Counters {
    pub discovery: AtomicU64,
    pub jwks: AtomicU64,
    pub authorize: AtomicU64,
    pub token_code: AtomicU64,
    pub token_refresh: AtomicU64,
    pub token_refused: AtomicU64,
    pub userinfo: AtomicU64,
    pub userinfo_refused: AtomicU64,
}

struct Stub {
    counters: Counters,
    discovery: Bytes,
    started: Instant,
    /// Random per process, so tokens differ across restarts.
    seed: u64,
    next: AtomicU64,
}

impl Stub {
    /// 16 hex digits, different for every call.
    fn random_hex(&self) -> String {
        let n = self.next.fetch_add(1, Relaxed);
        format!("{:016x}", splitmix64(self.seed ^ n))
    }
}

/// The stub's routes; `base_url` (`http://127.0.0.1:<port>`) is its issuer.
pub fn router(base_url: &str) -> Router {
    let discovery = discovery_document(base_url);
    let state = Arc::new(Stub {
        counters: Counters::default(),
        discovery: Bytes::from(discovery),
        started: Instant::now(),
        seed: uuid::Uuid::new_v4().as_u64_pair().0,
        next: AtomicU64::new(0),
    });
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery_doc))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/userinfo", get(userinfo))
        .route("/stats", get(stats))
        .with_state(state)
}

/// The OIDC-shaped discovery document of a stub at `base_url`.
pub fn discovery_document(base_url: &str) -> Vec<u8> {
    let base = base_url.trim_end_matches('/');
    let doc = serde_json::json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "scopes_supported": ["openid", "email", "profile"],
    });
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// The uid a code carries: `<uid>` or `<uid>.<anything>`. `None` for a
/// refused code (`bad…`, empty, or a uid that is not 1–64 of
/// `[A-Za-z0-9_-]`).
pub fn uid_of_code(code: &str) -> Option<&str> {
    if code.starts_with("bad") {
        return None;
    }
    let uid = code.split_once('.').map_or(code, |(uid, _)| uid);
    is_uid(uid).then_some(uid)
}

/// The uid of a token `<prefix>.<uid>.<random>` (`prefix` is `at` or `rt`).
pub fn uid_of_token<'a>(token: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = token.strip_prefix(prefix)?.strip_prefix('.')?;
    let (uid, random) = rest.split_once('.')?;
    (is_uid(uid) && !random.is_empty()).then_some(uid)
}

fn is_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= MAX_UID_LEN
        && uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// SplitMix64: a cheap, well-mixed 64-bit hash of a counter.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn to_json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    json(status, serde_json::to_vec(value).unwrap_or_default())
}

async fn discovery_doc(State(stub): State<Arc<Stub>>) -> Response {
    stub.counters.discovery.fetch_add(1, Relaxed);
    (
        [(header::CONTENT_TYPE, "application/json")],
        stub.discovery.clone(),
    )
        .into_response()
}

async fn jwks(State(stub): State<Arc<Stub>>) -> Response {
    stub.counters.jwks.fetch_add(1, Relaxed);
    json(StatusCode::OK, br#"{"keys":[]}"#.to_vec())
}

async fn authorize(State(stub): State<Arc<Stub>>) -> &'static str {
    stub.counters.authorize.fetch_add(1, Relaxed);
    "stub"
}

/// The token request's fields the stub reads; client authentication (basic
/// or in the body), `redirect_uri` and `code_verifier` are accepted unseen.
#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    refresh_token: Option<String>,
}

#[derive(Serialize)]
struct TokenReply {
    access_token: String,
    token_type: &'static str,
    expires_in: u32,
    refresh_token: String,
    scope: &'static str,
}

fn oauth_error(error: &str) -> Response {
    to_json(
        StatusCode::BAD_REQUEST,
        &serde_json::json!({ "error": error }),
    )
}

async fn token(State(stub): State<Arc<Stub>>, Form(form): Form<TokenForm>) -> Response {
    let uid = match form.grant_type.as_deref() {
        Some("authorization_code") => form.code.as_deref().and_then(uid_of_code),
        Some("refresh_token") => form
            .refresh_token
            .as_deref()
            .and_then(|t| uid_of_token(t, "rt")),
        Some(_) => {
            stub.counters.token_refused.fetch_add(1, Relaxed);
            return oauth_error("unsupported_grant_type");
        }
        None => {
            stub.counters.token_refused.fetch_add(1, Relaxed);
            return oauth_error("invalid_request");
        }
    };
    let Some(uid) = uid else {
        stub.counters.token_refused.fetch_add(1, Relaxed);
        return oauth_error("invalid_grant");
    };
    if form.grant_type.as_deref() == Some("refresh_token") {
        stub.counters.token_refresh.fetch_add(1, Relaxed);
    } else {
        stub.counters.token_code.fetch_add(1, Relaxed);
    }
    to_json(
        StatusCode::OK,
        &TokenReply {
            access_token: format!("at.{uid}.{}", stub.random_hex()),
            token_type: "Bearer",
            expires_in: 3600,
            refresh_token: format!("rt.{uid}.{}", stub.random_hex()),
            scope: "openid email profile",
        },
    )
}

#[derive(Serialize)]
struct UserInfo<'a> {
    sub: &'a str,
    email: String,
    email_verified: bool,
    name: String,
    given_name: &'static str,
    family_name: String,
    preferred_username: String,
}

/// The uid of `Authorization: Bearer at.<uid>.<random>`.
fn bearer_uid(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    uid_of_token(token.trim(), "at")
}

async fn userinfo(State(stub): State<Arc<Stub>>, headers: HeaderMap) -> Response {
    let Some(uid) = bearer_uid(&headers) else {
        stub.counters.userinfo_refused.fetch_add(1, Relaxed);
        return (
            StatusCode::UNAUTHORIZED,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#),
            ],
            r#"{"error":"invalid_token"}"#,
        )
            .into_response();
    };
    stub.counters.userinfo.fetch_add(1, Relaxed);
    to_json(
        StatusCode::OK,
        &UserInfo {
            sub: uid,
            email: format!("u{uid}@bench.test"),
            email_verified: true,
            name: format!("Bench User {uid}"),
            given_name: "Bench",
            family_name: format!("User {uid}"),
            preferred_username: format!("u{uid}"),
        },
    )
}

async fn stats(State(stub): State<Arc<Stub>>) -> Response {
    let c = &stub.counters;
    let counts = [
        ("discovery", c.discovery.load(Relaxed)),
        ("jwks", c.jwks.load(Relaxed)),
        ("authorize", c.authorize.load(Relaxed)),
        ("token_code", c.token_code.load(Relaxed)),
        ("token_refresh", c.token_refresh.load(Relaxed)),
        ("token_refused", c.token_refused.load(Relaxed)),
        ("userinfo", c.userinfo.load(Relaxed)),
        ("userinfo_refused", c.userinfo_refused.load(Relaxed)),
    ];
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let mut requests = serde_json::Map::new();
    for (name, n) in counts {
        requests.insert(name.into(), n.into());
    }
    let cpu_ms = crate::procstat::self_cpu().map(|d| d.as_millis() as u64);
    to_json(
        StatusCode::OK,
        &serde_json::json!({
            "requests": requests,
            "total": total,
            "cpu_ms": cpu_ms,
            "uptime_ms": stub.started.elapsed().as_millis() as u64,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_carries_its_uid_before_the_first_dot() {
        assert_eq!(uid_of_code("123"), Some("123"));
        assert_eq!(uid_of_code("123.7"), Some("123"));
        assert_eq!(uid_of_code("123.7.x"), Some("123"));
        assert_eq!(uid_of_code("bad123"), None);
        assert_eq!(uid_of_code(""), None);
        assert_eq!(uid_of_code(".7"), None);
        assert_eq!(uid_of_code("a b.1"), None);
        assert_eq!(uid_of_code(&"9".repeat(MAX_UID_LEN + 1)), None);
    }

    #[test]
    fn tokens_carry_their_uid_between_prefix_and_random() {
        assert_eq!(uid_of_token("at.42.00ff", "at"), Some("42"));
        assert_eq!(uid_of_token("rt.42.00ff", "at"), None);
        assert_eq!(uid_of_token("at.42", "at"), None);
        assert_eq!(uid_of_token("at.42.", "at"), None);
        assert_eq!(uid_of_token("at..00ff", "at"), None);
        assert_eq!(uid_of_token("at42.00ff", "at"), None);
    }

    #[test]
    fn only_a_bearer_access_token_names_a_user() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_uid(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer at.7.ab".parse().expect("hv"));
        assert_eq!(bearer_uid(&h), Some("7"));
        h.insert(header::AUTHORIZATION, "bearer at.7.ab".parse().expect("hv"));
        assert_eq!(bearer_uid(&h), Some("7"));
        h.insert(header::AUTHORIZATION, "Basic at.7.ab".parse().expect("hv"));
        assert_eq!(bearer_uid(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer rt.7.ab".parse().expect("hv"));
        assert_eq!(bearer_uid(&h), None);
    }

    #[test]
    fn the_discovery_document_names_the_stub_endpoints() {
        let doc: serde_json::Value =
            serde_json::from_slice(&discovery_document("http://127.0.0.1:5/")).expect("json");
        assert_eq!(doc["issuer"], "http://127.0.0.1:5");
        assert_eq!(doc["token_endpoint"], "http://127.0.0.1:5/token");
        assert_eq!(doc["jwks_uri"], "http://127.0.0.1:5/jwks");
    }

    #[tokio::test]
    async fn a_code_exchange_and_a_userinfo_call_name_the_same_user() -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let app = router(&base);
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let http = reqwest::Client::new();

        let tokens: serde_json::Value = http
            .post(format!("{base}/token"))
            .basic_auth("bench", Some("secret"))
            .form(&[("grant_type", "authorization_code"), ("code", "77.3")])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let at = tokens["access_token"].as_str().unwrap_or_default();
        assert!(at.starts_with("at.77."), "{tokens}");
        assert_eq!(tokens["token_type"], "Bearer");
        let rt = tokens["refresh_token"].as_str().unwrap_or_default();

        let me: serde_json::Value = http
            .get(format!("{base}/userinfo"))
            .bearer_auth(at)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        assert_eq!(me["sub"], "77");
        assert_eq!(me["email"], "u77@bench.test");
        assert_eq!(me["family_name"], "User 77");

        let refreshed: serde_json::Value = http
            .post(format!("{base}/token"))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
            .send()
            .await?
            .json()
            .await?;
        assert!(
            refreshed["access_token"]
                .as_str()
                .is_some_and(|t| t.starts_with("at.77.") && t != at)
        );

        let refused = http
            .post(format!("{base}/token"))
            .form(&[("grant_type", "authorization_code"), ("code", "bad.1")])
            .send()
            .await?;
        assert_eq!(refused.status(), reqwest::StatusCode::BAD_REQUEST);
        assert_eq!(
            refused.json::<serde_json::Value>().await?,
            serde_json::json!({"error": "invalid_grant"})
        );
        let unauthorized = http
            .get(format!("{base}/userinfo"))
            .bearer_auth("nope")
            .send()
            .await?;
        assert_eq!(unauthorized.status(), reqwest::StatusCode::UNAUTHORIZED);

        let stats: serde_json::Value = http
            .get(format!("{base}/stats"))
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(stats["requests"]["token_code"], 1);
        assert_eq!(stats["requests"]["token_refresh"], 1);
        assert_eq!(stats["requests"]["userinfo"], 1);
        server.abort();
        Ok(())
    }
}
