//! Hostile input against a running stack: at least 10,000 generated
//! malformed requests on every route the OpenAPI document names (and on
//! paths it does not), sent concurrently over HTTP — wrong methods and
//! media types, broken and deep JSON, bodies past the limit, missing and
//! mistyped fields, overlong and non-UTF-8 values in the path, query,
//! headers and body, dot segments and encoded slashes in provider names,
//! bogus app tokens, admin keys and ids; and, over a raw socket, what no
//! HTTP client sends (non-UTF-8 request lines and headers, broken framing,
//! 2 MB bodies).
//!
//! What must hold: no 5xx, the process lives, every 4xx of ours (it carries
//! `x-request-id`) is a JSON object with `Content-Type: application/json`,
//! a 404 and a 405 too; no request hangs; no panic in the log; a normal
//! login works afterwards. A 4xx without `x-request-id` is hyper's answer
//! to a request it could not parse (the router never saw it): allowed, with
//! an empty body, and counted apart.
//!
//! Reproducible: request `i` is made from `SOCIALAUTH_HOSTILE_SEED` (a
//! default seed) and `i` alone; `SOCIALAUTH_HOSTILE_REQUESTS` sets how
//! many (default 10,000 per mode). The figures are printed as
//! `HOSTILE mode=… requests=… 4xx=… 2xx=… 5xx=0 slowest_ms=…`.

use futures_util::StreamExt;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use socialauth_tests::stack::{Mode, Stack, StackOptions};
use socialauth_tests::stubidp::{self, splitmix64};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const REDIRECT_URI: &str = "http://127.0.0.1:9/auth/callback";
const ADMIN_KEY: &str = "hostile-admin-key-0123456789";
const DEFAULT_SEED: u64 = 0x0005_eed0_f405_711e;
const DEFAULT_REQUESTS: usize = 10_000;
const CONCURRENCY: usize = 24;
/// No request may take longer (the stack answers a login within its reply
/// timeout, 30 s in tests; nothing here should come close).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest URI an HTTP client here sends.
const MAX_URI: usize = 60_000;
/// `[server] max_body_bytes`' default.
const BODY_LIMIT: usize = 64 * 1024;

// ---------------------------------------------------------------------------
// A seeded generator.

struct Rng(u64);

impl Rng {
    fn for_request(seed: u64, index: usize) -> Self {
        Self(splitmix64(
            seed ^ (index as u64).wrapping_mul(0xa076_1d64_78bd_642f),
        ))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        splitmix64(self.0)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// Text of any characters: ASCII, controls, other planes.
    fn text(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| match self.below(6) {
                0 => char::from_u32(self.below(0x20) as u32).unwrap_or('x'),
                1 | 2 => (b' ' + self.below(95) as u8) as char,
                3 => char::from_u32(0x80 + self.below(0x780) as u32).unwrap_or('é'),
                4 => char::from_u32(0x1F600 + self.below(80) as u32).unwrap_or('😀'),
                _ => self.pick(&[
                    '"', '\\', '&', '=', '%', '+', '\u{0}', '\u{FEFF}', '\u{202E}',
                ]),
            })
            .collect()
    }

    fn some_text(&mut self) -> String {
        let n = self.len();
        self.text(n)
    }

    fn some_bytes(&mut self) -> Vec<u8> {
        let n = self.len();
        self.bytes(n)
    }

    /// A length: mostly short, sometimes long, now and then overlong.
    fn len(&mut self) -> usize {
        match self.below(10) {
            0..=5 => self.below(24),
            6..=8 => self.below(400),
            _ => 4_000 + self.below(60_000),
        }
    }
}

fn percent_encode_all(raw: &[u8]) -> String {
    raw.iter().map(|b| format!("%{b:02X}")).collect()
}

fn form_encode(pairs: &[(String, String)]) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
        .into_bytes()
}

// ---------------------------------------------------------------------------
// What is sent.

/// One generated request.
struct Hostile {
    /// What kind of abuse, for the figures and for failure messages.
    label: &'static str,
    method: Method,
    /// Path and query, as sent (ASCII; escapes kept as they are).
    target: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Vec<u8>,
    /// Statuses this request must get, when it must get particular ones.
    expect: Option<&'static [u16]>,
}

/// Raw bytes on a socket of their own.
struct RawHostile {
    label: &'static str,
    bytes: Vec<u8>,
    /// A body sent after `bytes`, while the answer is read (2 MB bodies).
    trailer: Vec<u8>,
    /// The answer may be lost: the server answers before the body is in
    /// and closes, and the kernel resets the connection.
    may_reset: bool,
}

enum Request {
    Http(Hostile),
    Raw(RawHostile),
}

/// A route of the OpenAPI document: its path with `{…}` parameters and
/// the methods it takes.
#[derive(Clone)]
struct Route {
    template: String,
    methods: Vec<Method>,
}

/// What the generator knows of the running stack.
struct Known {
    routes: Vec<Route>,
    /// A real app token, a real link id.
    token: String,
    account_id: i64,
}

const PROVIDER_TRICKS: &[&str] = &[
    "stub",
    "tw",
    "google",
    "STUB",
    "%73tub",
    "..",
    ".",
    "%2e%2e",
    "%2E%2E%2Fadmin%2Faudit",
    "..%2F..%2Fadmin",
    "%2F",
    "a%2Fb",
    "stub%2F..",
    "%00",
    "stub%00",
    "%ff",
    "%ff%fe%fd",
    "%C0%AE%C0%AE",
    "%E2%80%AE",
    "%D1%81tub",
    "%F0%9F%98%80",
    "stub%20",
    "%20stub",
    "stub;x=1",
    "stub%3Bx",
    "%",
    "%zz",
    "%5C..%5C",
    "~",
    "0",
    "-1",
    "9223372036854775807",
    "9223372036854775808",
    "1e3",
    "0x10",
    "%201",
    "00000000-0000-0000-0000-000000000000",
    "%7B00000000-0000-0000-0000-000000000000%7D",
];

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "FOO", "PROPFIND", "get",
];

const FIELDS: &[&str] = &[
    "provider",
    "redirect_uri",
    "code",
    "state",
    "code_verifier",
    "nonce",
    "oauth_token",
    "oauth_token_secret",
    "oauth_verifier",
    "partial_token",
    "email",
    "referral_code",
    "access_token",
    "id_token",
    "user",
    "expiring_within_seconds",
    "rate_per_second",
    "key_id",
];

fn segment(rng: &mut Rng) -> String {
    match rng.below(10) {
        0..=4 => rng.pick(PROVIDER_TRICKS).to_owned(),
        5 => uuid_like(rng),
        6 => percent_encode_all(&{
            let n = 1 + rng.below(40);
            rng.bytes(n)
        }),
        7 => percent_encode_all(
            {
                let n = 1 + rng.below(12);
                rng.text(n)
            }
            .as_bytes(),
        ),
        8 => "a".repeat(1 + rng.below(12_000)),
        _ => (rng.next() as i64).to_string(),
    }
}

fn uuid_like(rng: &mut Rng) -> String {
    let id = uuid::Uuid::from_u64_pair(rng.next(), rng.next());
    match rng.below(3) {
        0 => id.to_string(),
        1 => id.simple().to_string().to_uppercase(),
        _ => format!("{id}x"),
    }
}

fn query(rng: &mut Rng) -> String {
    let allowed = percent_encode_all(REDIRECT_URI.as_bytes());
    match rng.below(12) {
        0 => String::new(),
        1 | 2 => format!("redirect_uri={allowed}"),
        3 => format!("redirect_uri={allowed}&redirect_uri=http://evil.test/"),
        4 => format!("redirect_uri={}", percent_encode_all(&rng.some_bytes())),
        5 => "redirect_uri".to_owned(),
        6 => "&&&==%%%zz=%".to_owned(),
        7 => format!(
            "limit={}&cursor={}&user_id={}",
            rng.pick(&["0", "-1", "501", "abc", "4294967296", "1.5", "", "%ff"]),
            rng.pick(&["0", "-5", "abc", "99999999999999999999", "", "%00"]),
            rng.pick(&["x", "-1", "9223372036854775808", "", "1"]),
        ),
        8 => format!("redirect_uri={}", "x".repeat(20_000 + rng.below(40_000))),
        9 => {
            let n = 1 + rng.below(6);
            let pairs: Vec<(String, String)> = (0..n)
                .map(|_| (rng.pick(FIELDS).to_owned(), rng.some_text()))
                .collect();
            String::from_utf8(form_encode(&pairs)).unwrap_or_default()
        }
        10 => format!("limit={}", 1 + rng.below(500)),
        _ => percent_encode_all(&{
            let n = rng.below(64);
            rng.bytes(n)
        }),
    }
}

/// A JSON value of any type, some deep.
fn json_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 3 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(50)),
        2 => json!(rng.next() as i64),
        3 => json!((rng.next() as f64) / 7.0),
        4 | 5 => Value::String(rng.some_text()),
        6 => Value::Array(
            (0..rng.below(4))
                .map(|_| json_value(rng, depth + 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.below(4))
                .map(|_| (rng.pick(FIELDS).to_owned(), json_value(rng, depth + 1)))
                .collect(),
        ),
    }
}

/// `[[[…1…]]]` or `{"a":{"a":…}}`, `depth` deep, closed or not.
fn nested(depth: usize, objects: bool, closed: bool) -> Vec<u8> {
    let (open, close): (&[u8], &[u8]) = if objects {
        (b"{\"a\":", b"}")
    } else {
        (b"[", b"]")
    };
    let mut out = Vec::with_capacity(depth * 6 + 1);
    for _ in 0..depth {
        out.extend_from_slice(open);
    }
    out.push(b'1');
    if closed {
        for _ in 0..depth {
            out.extend_from_slice(close);
        }
    }
    out
}

/// A body and the media type it is sent as.
fn body(rng: &mut Rng) -> (&'static str, Option<&'static str>, Vec<u8>) {
    const JSON: Option<&str> = Some("application/json");
    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
    match rng.below(16) {
        0 => ("empty", rng.pick(&[None, JSON, FORM]), Vec::new()),
        1 | 2 => {
            let n = 1 + rng.below(8);
            let map: serde_json::Map<String, Value> = (0..n)
                .map(|_| (rng.pick(FIELDS).to_owned(), json_value(rng, 0)))
                .collect();
            (
                "json fields mistyped",
                JSON,
                Value::Object(map).to_string().into_bytes(),
            )
        }
        3 => {
            let n = rng.below(6);
            let map: serde_json::Map<String, Value> = (0..n)
                .map(|_| (rng.pick(FIELDS).to_owned(), Value::String(rng.some_text())))
                .collect();
            (
                "json fields",
                JSON,
                Value::Object(map).to_string().into_bytes(),
            )
        }
        4 => {
            let valid =
                json!({"provider": "stub", "code": rng.text(8), "redirect_uri": REDIRECT_URI,
                "state": rng.text(8), "oauth_token": rng.text(4), "oauth_verifier": rng.text(4)})
                .to_string();
            let cut = rng.below(valid.len());
            ("json truncated", JSON, valid.as_bytes()[..cut].to_vec())
        }
        5 => ("json garbage", JSON, rng.some_bytes()),
        6 => (
            "json nested 100000",
            JSON,
            nested(100_000, rng.chance(50), rng.chance(50)),
        ),
        7 => {
            // Under the body limit: the parser itself meets the depth.
            let mut body = br#"{"user":"#.to_vec();
            body.extend(nested(8_000 + rng.below(22_000), false, rng.chance(50)));
            body.push(b'}');
            ("json nested in a field", JSON, body)
        }
        8 | 9 => {
            let n = 1 + rng.below(6);
            let pairs: Vec<(String, String)> = (0..n)
                .map(|_| (rng.pick(FIELDS).to_owned(), rng.some_text()))
                .collect();
            ("form fields", FORM, form_encode(&pairs))
        }
        10 => {
            let raw = format!(
                "code=%ff%fe&state=%c3%28&email={}&code=twice&=&&a=b=c&%zz=%",
                percent_encode_all(&rng.bytes(16))
            );
            ("form non-utf-8 and duplicates", FORM, raw.into_bytes())
        }
        11 => {
            let value = "v".repeat(BODY_LIMIT - 64 + rng.below(128));
            (
                "form near the limit",
                FORM,
                format!("code={value}&state=s").into_bytes(),
            )
        }
        12 => (
            "json as a form",
            FORM,
            json!({"code": "x", "state": "y"}).to_string().into_bytes(),
        ),
        13 => ("form as json", JSON, b"code=x&state=y".to_vec()),
        14 => ("bytes", None, rng.some_bytes()),
        _ => (
            "text of any characters",
            rng.pick(&[JSON, FORM, Some("text/plain")]),
            rng.some_text().into_bytes(),
        ),
    }
}

fn content_type(rng: &mut Rng, natural: Option<&'static str>) -> Option<HeaderValue> {
    match rng.below(10) {
        0..=5 => natural.map(HeaderValue::from_static),
        6 => Some(HeaderValue::from_static(rng.pick(&[
            "application/json; charset=utf-16",
            "APPLICATION/JSON",
            "application/x-www-form-urlencoded;charset=latin1",
            "text/plain",
            "multipart/form-data; boundary=----x",
            "application/xml",
            ";",
            "",
        ]))),
        7 => HeaderValue::from_bytes(&[0xff, 0xfe, b'/', 0x80]).ok(),
        8 => HeaderValue::from_str(&"application/json;".repeat(200 + rng.below(2000))).ok(),
        _ => None,
    }
}

fn authorization(rng: &mut Rng, known: &Known) -> Option<HeaderValue> {
    let value = match rng.below(14) {
        0..=3 => return None,
        4 => format!("Token {}", known.token),
        5 => format!("bearer   {}  ", known.token),
        6 => format!("Bearer {ADMIN_KEY}"),
        7 => format!("Token {}", rng.some_text()),
        8 => format!("Bearer {}x", ADMIN_KEY),
        9 => rng
            .pick(&[
                "Token",
                "Token ",
                "Bearer",
                "Basic Zm9vOmJhcg==",
                " ",
                "Token\t",
            ])
            .to_owned(),
        10 => {
            return HeaderValue::from_bytes(b"Token \xff\xfe\x80").ok();
        }
        11 => format!("Token {}", "k".repeat(40_000 + rng.below(20_000))),
        12 => format!("Bearer {}", uuid_like(rng)),
        _ => format!("Token {}{}", known.token, rng.text(3)),
    };
    HeaderValue::from_str(&value).ok().or_else(|| {
        let printable: Vec<u8> = value
            .bytes()
            .map(|b| if b < 0x20 || b == 0x7f { b'?' } else { b })
            .collect();
        HeaderValue::from_bytes(&printable).ok()
    })
}

fn other_headers(rng: &mut Rng) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    if rng.chance(15) {
        let id = match rng.below(3) {
            // Past RabbitMQ's frame size too: the id travels with the job.
            0 => HeaderValue::from_str(&"r".repeat(1 + rng.below(200_000))).ok(),
            1 => {
                HeaderValue::from_bytes(&rng.bytes(32).iter().map(|b| b | 0x80).collect::<Vec<_>>())
                    .ok()
            }
            _ => HeaderValue::from_str(&rng.text(20).replace(|c: char| c.is_control(), "?")).ok(),
        };
        out.extend(id.map(|v| (HeaderName::from_static("x-request-id"), v)));
    }
    if rng.chance(10) {
        out.push((
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_static("not-an-address, 999.1.1.1, ::ffff:zz"),
        ));
    }
    if rng.chance(5) {
        out.push((
            HeaderName::from_static("accept"),
            HeaderValue::from_static("text/html"),
        ));
    }
    if rng.chance(5) {
        out.push((
            HeaderName::from_static("cookie"),
            HeaderValue::from_bytes(&rng.bytes(64).iter().map(|b| b | 0x80).collect::<Vec<_>>())
                .unwrap_or(HeaderValue::from_static("x")),
        ));
    }
    out
}

/// Request `index` of the run.
fn generate(seed: u64, index: usize, known: &Known) -> Request {
    let mut rng = Rng::for_request(seed, index);
    if rng.chance(4) {
        return Request::Raw(raw(&mut rng, known));
    }
    let route = match rng.below(20) {
        0 => Route {
            template: rng
                .pick(&[
                    "/{}",
                    "/auth/{}",
                    "/auth/o/{}",
                    "/auth/o/{}/{}/",
                    "/admin/{}",
                    "/auth/o",
                ])
                .to_owned(),
            methods: Vec::new(),
        },
        _ => rng.pick(&known.routes),
    };
    let mut path = route.template.clone();
    while let Some(at) = path.find('{') {
        let end = path[at..].find('}').map_or(path.len(), |e| at + e + 1);
        let value = match &path[at..end] {
            "{id}" if rng.chance(30) => known.account_id.to_string(),
            _ => segment(&mut rng),
        };
        path.replace_range(at..end, &value);
    }
    let documented = !route.methods.is_empty();
    let method = if documented && rng.chance(60) {
        rng.pick(&route.methods)
    } else {
        Method::from_bytes(rng.pick(METHODS).as_bytes()).unwrap_or(Method::GET)
    };
    let (mut label, natural_type, body) = if method == Method::GET && rng.chance(70) {
        ("no body", None, Vec::new())
    } else {
        body(&mut rng)
    };
    let mut q = query(&mut rng);
    // An HTTP client sends no URI past 64 KiB (`http::Uri`'s limit);
    // longer request lines go over a raw socket.
    let room = MAX_URI.saturating_sub(path.len() + 1);
    if q.len() > room {
        let mut end = room;
        while !q.is_char_boundary(end) {
            end -= 1;
        }
        q.truncate(end);
    }
    let target = if q.is_empty() {
        path.clone()
    } else {
        format!("{path}?{q}")
    };
    let mut headers = Vec::new();
    if let Some(ct) = content_type(&mut rng, natural_type) {
        headers.push((reqwest::header::CONTENT_TYPE, ct));
    }
    if let Some(auth) = authorization(&mut rng, known) {
        // Logging out would spend the token the other requests use.
        let spends = route.template == "/auth/logout"
            && auth
                .as_bytes()
                .windows(known.token.len())
                .any(|w| w == known.token.as_bytes());
        if !spends {
            headers.push((reqwest::header::AUTHORIZATION, auth));
        }
    }
    headers.extend(other_headers(&mut rng));
    // What the answer must be, where it is certain whatever else was sent.
    let allows = |m: &Method| {
        route.methods.contains(m) || (*m == Method::HEAD && route.methods.contains(&Method::GET))
    };
    let expect: Option<&'static [u16]> = if !documented && !route.template.contains('{') {
        label = "unknown path";
        Some(&[404])
    } else if documented && !allows(&method) && path_is_plain(&path) {
        label = "wrong method";
        Some(&[405])
    } else {
        None
    };
    Request::Http(Hostile {
        label,
        method,
        target,
        headers,
        body,
        expect,
    })
}

/// Whether `path` reaches the router as written: a client resolves dot
/// segments (and `%2e` ones) first, and an empty segment matches no
/// route.
fn path_is_plain(path: &str) -> bool {
    path.split('/').skip(1).all(|s| {
        let lower = s.to_ascii_lowercase();
        !s.is_empty()
            && lower != "."
            && lower != ".."
            && lower != "%2e"
            && lower != "%2e%2e"
            && lower != ".%2e"
            && lower != "%2e."
    })
}

/// A request no HTTP client would send.
fn raw(rng: &mut Rng, known: &Known) -> RawHostile {
    let host = "Host: 127.0.0.1\r\n";
    let pick = rng.below(16);
    let (label, bytes, trailer, may_reset): (&'static str, Vec<u8>, Vec<u8>, bool) = match pick {
        0 => {
            let mut b = b"GET /auth/o/".to_vec();
            b.extend(rng.bytes(8).iter().map(|b| b | 0x80));
            b.extend(b"/?redirect_uri=x HTTP/1.1\r\n");
            b.extend(host.as_bytes());
            b.extend(b"\r\n");
            ("raw non-utf-8 path", b, Vec::new(), false)
        }
        1 => {
            let mut b = format!("GET /users/me HTTP/1.1\r\n{host}Authorization: Token ").into_bytes();
            b.extend(rng.bytes(12).iter().map(|b| b | 0x80));
            b.extend(b"\r\nX-Request-Id: \xff\xfe\r\n\r\n");
            ("raw non-utf-8 headers", b, Vec::new(), false)
        }
        2 => (
            "raw dot segments",
            format!(
                "GET {} HTTP/1.1\r\n{host}Authorization: Bearer {ADMIN_KEY}\r\n\r\n",
                rng.pick(&[
                    "/auth/o/../admin/audit",
                    "/auth/o/./stub/?redirect_uri=x",
                    "/auth/o/stub/../../admin/audit",
                    "/../../etc/passwd",
                    "//auth//o//stub//",
                    "/auth/o/%2e%2e/admin/audit",
                    "/auth/o/..%2f..%2fadmin%2faudit/",
                    "/admin/audit/..",
                    "/auth\\o\\stub\\",
                ])
            )
            .into_bytes(),
            Vec::new(),
            false,
        ),
        3 => (
            "raw garbage",
            rng.pick(&[
                b"GARBAGE\r\n\r\n".to_vec(),
                b"GET\r\n\r\n".to_vec(),
                b"GET / HTTP/9.9\r\nHost: x\r\n\r\n".to_vec(),
                b"GET / FTP/1.1\r\n\r\n".to_vec(),
                b"GET /healthz\r\n\r\n".to_vec(),
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
            ]),
            Vec::new(),
            false,
        ),
        4 => (
            "raw bad header",
            format!(
                "GET /healthz HTTP/1.1\r\n{host}{}\r\n\r\n",
                rng.pick(&["Bad Header: x", ": empty", "NoColon", "X-A: a\x00b", "X-\x7f: y"])
            )
            .into_bytes(),
            Vec::new(),
            false,
        ),
        5 => (
            "raw bad content-length",
            format!(
                "POST /social-auth HTTP/1.1\r\n{host}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{{}}",
                rng.pick(&["abc", "-1", "2, 3", "18446744073709551616", " 2", "0x2"])
            )
            .into_bytes(),
            Vec::new(),
            false,
        ),
        6 => (
            "raw length and chunked",
            format!("POST /social-auth HTTP/1.1\r\n{host}Content-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n").into_bytes(),
            Vec::new(),
            false,
        ),
        7 => (
            "raw bad chunks",
            format!(
                "POST /social-auth HTTP/1.1\r\n{host}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{}",
                rng.pick(&["zz\r\n{}\r\n0\r\n\r\n", "2\r\n{}0\r\n\r\n", "ffffffffffffffffff\r\n{}", "-2\r\n{}\r\n0\r\n\r\n"])
            )
            .into_bytes(),
            Vec::new(),
            false,
        ),
        8 => {
            let line = format!("GET /auth/o/stub/?redirect_uri={} HTTP/1.1\r\n{host}\r\n", "u".repeat(100_000 + rng.below(400_000)));
            ("raw overlong request line", line.into_bytes(), Vec::new(), true)
        }
        9 => {
            let mut b = format!("GET /healthz HTTP/1.1\r\n{host}").into_bytes();
            for i in 0..(120 + rng.below(100)) {
                b.extend(format!("X-H{i}: v\r\n").as_bytes());
            }
            b.extend(b"\r\n");
            ("raw too many headers", b, Vec::new(), false)
        }
        10..=12 => {
            let size = 2 * 1024 * 1024;
            let path = rng.pick(&["/social-auth", "/auth/o/stub/", "/auth/token/stub/", "/users/me", "/healthz", "/admin/refresh-campaigns"]);
            let auth = if path == "/users/me" {
                format!("Authorization: Token {}\r\n", known.token)
            } else if path.starts_with("/admin") {
                format!("Authorization: Bearer {ADMIN_KEY}\r\n")
            } else {
                String::new()
            };
            let method = if path == "/users/me" { "PATCH" } else if path == "/healthz" { "GET" } else { "POST" };
            let ct = rng.pick(&["application/json", "application/x-www-form-urlencoded"]);
            let mut body = br#"{"code":""#.to_vec();
            body.resize(size, b'a');
            let head = format!("{method} {path} HTTP/1.1\r\n{host}{auth}Content-Type: {ct}\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n");
            ("raw 2 MB body", head.into_bytes(), body, true)
        }
        13 => {
            let size = 2 * 1024 * 1024;
            let head = format!("POST /social-auth HTTP/1.1\r\n{host}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
            let mut body = Vec::with_capacity(size + 64);
            let chunk = vec![b'['; 64 * 1024];
            for _ in 0..(size / chunk.len()) {
                body.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
                body.extend(&chunk);
                body.extend(b"\r\n");
            }
            body.extend(b"0\r\n\r\n");
            ("raw 2 MB chunked nesting", head.into_bytes(), body, true)
        }
        14 => (
            "raw connect",
            format!("CONNECT 127.0.0.1:5432 HTTP/1.1\r\n{host}\r\n").into_bytes(),
            Vec::new(),
            false,
        ),
        _ => (
            "raw http/1.0 no host",
            b"POST /auth/o/stub/ HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\ncode=%ff&".to_vec(),
            Vec::new(),
            false,
        ),
    };
    RawHostile {
        label,
        bytes,
        trailer,
        may_reset,
    }
}

// ---------------------------------------------------------------------------
// Sending and judging.

/// How one request went.
struct Outcome {
    index: usize,
    label: &'static str,
    /// `None`: no answer (reset, or hyper closed without one).
    status: Option<u16>,
    /// An answer of hyper's, not of the router (no `x-request-id`).
    protocol: bool,
    elapsed: Duration,
    problem: Option<String>,
}

/// Whether an error body is the contract's: a non-empty JSON object.
fn json_refusal_problem(content_type: Option<&str>, body: &[u8]) -> Option<String> {
    let ct = content_type.unwrap_or_default();
    if !ct.starts_with("application/json") {
        return Some(format!(
            "content-type {ct:?}, body {:?}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) if !map.is_empty() => None,
        Ok(other) => Some(format!("not a JSON object: {other}")),
        Err(e) => Some(format!("not JSON ({e})")),
    }
}

/// The clients: `pooled` for requests with no large body, `unpooled`
/// (a connection each) for the others. A handler that takes no body, or
/// refuses a request before reading it (401, 405, 413), is answered while
/// a large body is still coming; hyper then closes the connection rather
/// than read the rest, and the client may see the reset instead of the
/// answer, or reuse the closing connection for its next request.
struct Clients {
    pooled: reqwest::Client,
    unpooled: reqwest::Client,
}

/// Bodies from this size on may still be on their way when the answer is
/// sent (hyper drains what is already in its buffer, not more).
const LARGE_BODY: usize = 16 * 1024;

async fn send_http(clients: &Clients, base: &str, index: usize, h: Hostile) -> Outcome {
    let large = h.body.len() >= LARGE_BODY;
    let http = if large {
        &clients.unpooled
    } else {
        &clients.pooled
    };
    let started = Instant::now();
    let url = match reqwest::Url::parse(&format!("{base}{}", h.target)) {
        Ok(url) => url,
        Err(e) => {
            return Outcome {
                index,
                label: h.label,
                status: None,
                protocol: false,
                elapsed: started.elapsed(),
                problem: Some(format!("the test made no URL of {:?}: {e}", h.target)),
            };
        }
    };
    let is_head = h.method == Method::HEAD;
    let what = format!("#{index} {} {} {}", h.label, h.method, truncate(&h.target));
    let mut request = http.request(h.method, url).body(h.body);
    for (name, value) in h.headers {
        request = request.header(name, value);
    }
    let sent = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        Ok::<_, reqwest::Error>((status, headers, body))
    })
    .await;
    let elapsed = started.elapsed();
    let (status, headers, body) = match sent {
        Err(_) => {
            return Outcome {
                index,
                label: h.label,
                status: None,
                protocol: false,
                elapsed,
                problem: Some(format!("{what}: no answer within {REQUEST_TIMEOUT:?}")),
            };
        }
        // The answer lost to the reset of a large body's connection.
        Ok(Err(e)) if large && !e.is_timeout() => {
            return Outcome {
                index,
                label: h.label,
                status: None,
                protocol: true,
                elapsed,
                problem: None,
            };
        }
        Ok(Err(e)) => {
            return Outcome {
                index,
                label: h.label,
                status: None,
                protocol: false,
                elapsed,
                problem: Some(format!("{what}: {}", error_chain(&e))),
            };
        }
        Ok(Ok(answer)) => answer,
    };
    let ours = headers.contains_key("x-request-id");
    let content_type = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if status == StatusCode::METHOD_NOT_ALLOWED && ours && !headers.contains_key("allow") {
        return Outcome {
            index,
            label: h.label,
            status: Some(405),
            protocol: false,
            elapsed,
            problem: Some(format!("{what}: 405 without Allow")),
        };
    }
    let problem = judge(
        status.as_u16(),
        ours,
        is_head,
        content_type,
        &body,
        h.expect,
    )
    .map(|p| format!("{what}: {p}"));
    Outcome {
        index,
        label: h.label,
        status: Some(status.as_u16()),
        protocol: !ours,
        elapsed,
        problem,
    }
}

/// What is wrong with an answer, if anything.
fn judge(
    status: u16,
    ours: bool,
    is_head: bool,
    content_type: Option<&str>,
    body: &[u8],
    expect: Option<&[u16]>,
) -> Option<String> {
    if !ours {
        // hyper's own answer to what it could not parse (the router never
        // saw it): a status line and no body. 505 is its answer to an HTTP
        // version it does not speak.
        let known = [400, 413, 414, 417, 431, 501, 505];
        if !known.contains(&status) || !body.is_empty() {
            return Some(format!("{status} without x-request-id, body {body:?}"));
        }
        return None;
    }
    if status >= 500 {
        return Some(format!(
            "{status} {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ));
    }
    if let Some(expect) = expect
        && !expect.contains(&status)
    {
        return Some(format!("{status}, expected one of {expect:?}"));
    }
    if (400..500).contains(&status) && !is_head {
        return json_refusal_problem(content_type, body);
    }
    None
}

/// An error with its causes, the URL cut short.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = truncate(&e.to_string());
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    out
}

fn truncate(s: &str) -> String {
    if s.len() <= 120 {
        s.to_owned()
    } else {
        let mut end = 120;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…({} bytes)", &s[..end], s.len())
    }
}

/// Sends raw bytes (and a trailer while reading) and reads the answer to
/// the end; `None` when the connection ended without a status line.
async fn send_raw(address: &str, index: usize, r: RawHostile) -> Outcome {
    let RawHostile {
        label,
        bytes,
        trailer,
        may_reset,
    } = r;
    let started = Instant::now();
    let what = format!("#{index} {label}");
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(address).await?;
        let (mut read, mut write) = stream.into_split();
        let writer = tokio::spawn(async move {
            let _ = write.write_all(&bytes).await;
            let _ = write.write_all(&trailer).await;
            // Keep the write side open until the answer is read: a
            // shutdown would end the request for hyper.
            write
        });
        let mut answer = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match read.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if complete(&answer) {
                        break;
                    }
                }
                Err(e) if answer.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        writer.abort();
        Ok::<_, std::io::Error>(answer)
    };
    let result = tokio::time::timeout(REQUEST_TIMEOUT, exchange).await;
    let elapsed = started.elapsed();
    let outcome = |status: Option<u16>, protocol: bool, problem: Option<String>| Outcome {
        index,
        label,
        status,
        protocol,
        elapsed,
        problem,
    };
    let answer = match result {
        Err(_) => {
            return outcome(
                None,
                true,
                Some(format!("{what}: no answer within {REQUEST_TIMEOUT:?}")),
            );
        }
        // The answer lost to a reset after a 2 MB body or an overlong
        // head, which hyper answers before reading it all.
        Ok(Err(_)) if may_reset => return outcome(None, true, None),
        Ok(Err(e)) => return outcome(None, true, Some(format!("{what}: {e}"))),
        Ok(Ok(answer)) => answer,
    };
    let Some((status, headers, body)) = parse_answer(&answer) else {
        // Closed without a word: hyper's way with some broken requests
        // (and an answer lost to a reset after a 2 MB body).
        return outcome(None, true, None);
    };
    let ours = headers.contains_key("x-request-id");
    let problem = judge(
        status,
        ours,
        false,
        headers.get("content-type").map(String::as_str),
        &body,
        None,
    )
    .map(|p| format!("{what}: {p}"));
    outcome(Some(status), !ours, problem)
}

/// Whether `answer` holds a whole response: its head and its body (by
/// `Content-Length` or chunks; none for 1xx, 204, 304).
fn complete(answer: &[u8]) -> bool {
    let Some((status, headers, body)) = parse_answer(answer) else {
        return false;
    };
    if status < 200 || status == 204 || status == 304 {
        return true;
    }
    if let Some(n) = headers
        .get("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        return body.len() >= n;
    }
    headers
        .get("transfer-encoding")
        .is_some_and(|te| te.contains("chunked"))
        && body.ends_with(b"0\r\n\r\n")
}

/// Status, lowercase headers and body of an HTTP/1.1 answer.
fn parse_answer(answer: &[u8]) -> Option<(u16, BTreeMap<String, String>, Vec<u8>)> {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&answer[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some((status, headers, answer[end + 4..].to_vec()))
}

// ---------------------------------------------------------------------------
// The stack.

/// The stub provider, served in this process: `stub` (OAuth 2) signs in
/// whoever its code names; `tw` (OAuth 1.0a) points at it too, so its
/// calls are refused (404) rather than unanswered.
async fn stub_provider() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = stubidp::router(&base);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(base)
}

fn providers_toml(base: &str) -> String {
    format!(
        r#"[providers.stub]
protocol = "oauth2"
authorize_url = "{base}/authorize"
token_url = "{base}/token"
userinfo_url = "{base}/userinfo"
client_id = "hostile"
client_secret = "hostile-secret"

[providers.tw]
preset = "twitter"
request_token_url = "{base}/oauth/request_token"
authorize_url = "{base}/oauth/authenticate"
access_token_url = "{base}/oauth/access_token"
userinfo_url = "{base}/1.1/account/verify_credentials.json"
client_id = "tw"
client_secret = "tw-secret"
"#
    )
}

/// A whole djoser login of `uid` at the stub: the app token. As a browser
/// does it, cookies kept (the state cookie, when it is on).
async fn login(stack: &Stack, uid: &str) -> anyhow::Result<String> {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    let begin: Value = http
        .get(stack.url("/auth/o/stub/"))
        .query(&[("redirect_uri", REDIRECT_URI)])
        .send()
        .await?
        .json()
        .await?;
    let url = reqwest::Url::parse(begin["authorization_url"].as_str().unwrap_or_default())?;
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| anyhow::anyhow!("no state in {url}"))?;
    let response = http
        .post(stack.url("/auth/o/stub/"))
        .json(&json!({"code": uid, "state": state}))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    anyhow::ensure!(status == StatusCode::CREATED, "login: {status} {body}");
    let token = body["token"].as_str().unwrap_or_default().to_owned();
    let me = http
        .get(stack.url("/users/me"))
        .header("Authorization", format!("Token {token}"))
        .send()
        .await?;
    anyhow::ensure!(me.status() == StatusCode::OK, "/users/me: {}", me.status());
    Ok(token)
}

/// The routes of the stack's OpenAPI document, with their methods.
async fn routes(http: &reqwest::Client, stack: &Stack) -> anyhow::Result<Vec<Route>> {
    let doc: Value = http
        .get(stack.url("/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    let mut routes: Vec<Route> = doc["paths"]
        .as_object()
        .ok_or_else(|| anyhow::anyhow!("no paths in the OpenAPI document"))?
        .iter()
        .map(|(path, ops)| Route {
            template: path.clone(),
            methods: ops
                .as_object()
                .map(|o| {
                    o.keys()
                        .filter_map(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    routes.push(Route {
        template: "/openapi.json".into(),
        methods: vec![Method::GET],
    });
    anyhow::ensure!(routes.len() >= 20, "only {} routes", routes.len());
    Ok(routes)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn hostile_requests_get_json_refusals_and_no_5xx(mode: Mode) -> anyhow::Result<()> {
    let seed: u64 = env_or("SOCIALAUTH_HOSTILE_SEED", DEFAULT_SEED);
    let count: usize = env_or("SOCIALAUTH_HOSTILE_REQUESTS", DEFAULT_REQUESTS);
    let base = stub_provider().await?;
    let mut opts = StackOptions::new(mode, providers_toml(&base), REDIRECT_URI);
    opts.security_toml = format!("admin_key = \"{ADMIN_KEY}\"\n");
    let mut stack = Stack::start(opts).await?;
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(CONCURRENCY)
        .build()?;
    let clients = Arc::new(Clients {
        pooled: http.clone(),
        unpooled: reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(0)
            .build()?,
    });

    let token = login(&stack, "hostile-1").await?;
    let accounts: Value = http
        .get(stack.url("/auth/social-accounts/"))
        .header("Authorization", format!("Token {token}"))
        .send()
        .await?
        .json()
        .await?;
    let known = Arc::new(Known {
        routes: routes(&http, &stack).await?,
        token,
        account_id: accounts[0]["id"].as_i64().unwrap_or(1),
    });

    // A request id past RabbitMQ's frame size (it travels with the job)
    // and one that is not text: the login goes through.
    for (n, request_id) in [
        HeaderValue::from_str(&"r".repeat(200_000))?,
        HeaderValue::from_bytes(b"\xff\xfe id")?,
    ]
    .into_iter()
    .enumerate()
    {
        let response = http
            .post(stack.url("/social-auth"))
            .header("x-request-id", request_id)
            .json(&json!({"provider": "stub", "code": format!("hostile-id-{n}"), "redirect_uri": REDIRECT_URI}))
            .send()
            .await?;
        let status = response.status();
        anyhow::ensure!(
            status == StatusCode::CREATED,
            "a login with an odd request id: {status} {}\n{}",
            response.text().await.unwrap_or_default(),
            stack
                .logs()
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    let address = stack.base_url.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    let outcomes: Vec<Outcome> = futures_util::stream::iter(0..count)
        .map(|index| {
            let (clients, known, base, address) = (
                clients.clone(),
                known.clone(),
                stack.base_url.clone(),
                address.clone(),
            );
            async move {
                match generate(seed, index, &known) {
                    Request::Http(h) => send_http(&clients, &base, index, h).await,
                    Request::Raw(r) => send_raw(&address, index, r).await,
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let took = started.elapsed();

    let mut by_class: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_label: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut slowest = (Duration::ZERO, 0, "");
    for o in &outcomes {
        let class = match (o.status, o.protocol) {
            (None, _) => "reset",
            (Some(_), true) => "proto",
            (Some(s), _) => match s / 100 {
                2 => "2xx",
                3 => "3xx",
                4 => "4xx",
                _ => "5xx",
            },
        };
        *by_class.entry(class).or_default() += 1;
        // `hyper 400`: answered by hyper, not the router; `reset`: no answer.
        let key = match (o.status, o.protocol) {
            (None, _) => "reset".to_owned(),
            (Some(s), true) => format!("hyper {s}"),
            (Some(s), false) => s.to_string(),
        };
        *by_label.entry(o.label).or_default().entry(key).or_default() += 1;
        if o.elapsed > slowest.0 {
            slowest = (o.elapsed, o.index, o.label);
        }
        if let Some(p) = &o.problem {
            problems.push(p.clone());
        }
    }
    let count_of = |c: &str| by_class.get(c).copied().unwrap_or(0);
    println!(
        "HOSTILE mode={mode:?} requests={} 4xx={} 2xx={} 3xx={} hyper={} reset={} 5xx={} slowest_ms={} (#{} {}) seconds={:.1} seed={seed:#x}",
        outcomes.len(),
        count_of("4xx"),
        count_of("2xx"),
        count_of("3xx"),
        count_of("proto"),
        count_of("reset"),
        count_of("5xx"),
        slowest.0.as_millis(),
        slowest.1,
        slowest.2,
        took.as_secs_f64(),
    );
    for (label, statuses) in &by_label {
        println!("  {label}: {statuses:?}");
    }

    // The process lives, answers, logged no panic, and a login works.
    anyhow::ensure!(
        stack
            .api
            .wait_exit(Duration::from_millis(10))
            .await
            .is_none(),
        "the api exited\n{}",
        stack.logs()
    );
    for worker in &mut stack.workers {
        anyhow::ensure!(
            worker.wait_exit(Duration::from_millis(10)).await.is_none(),
            "a worker exited"
        );
    }
    let health = http.get(stack.url("/healthz")).send().await?;
    anyhow::ensure!(health.status() == StatusCode::OK);
    let ready = http.get(stack.url("/readyz")).send().await?;
    anyhow::ensure!(
        ready.status() == StatusCode::OK,
        "readyz: {}",
        ready.status()
    );
    login(&stack, "hostile-after").await?;
    let logs = stack.logs();
    anyhow::ensure!(
        !logs.contains("panicked"),
        "a panic in the logs:\n{}",
        logs.lines()
            .filter(|l| l.contains("panicked"))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );

    anyhow::ensure!(
        outcomes.len() >= count && count_of("4xx") > count / 2,
        "too few refusals: {by_class:?}"
    );
    anyhow::ensure!(
        problems.is_empty(),
        "{} of {} requests went wrong (seed {seed:#x}); the first:\n{}",
        problems.len(),
        outcomes.len(),
        problems
            .iter()
            .take(25)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    Ok(())
}

socialauth_tests::in_both_modes!(hostile_requests_get_json_refusals_and_no_5xx);
