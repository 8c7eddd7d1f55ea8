//! What every request goes through before its handler: a cap on the
//! requests in flight in this process, a time limit, and — on the login
//! endpoints, which spend the app's provider quota and fill tables — a rate
//! per client address. Refusals are the contract's JSON: 429 with
//! `Retry-After`, or 503.

use crate::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use socialauth_common::config::ServerSettings;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Paths whose requests count towards a client's rate.
const LIMITED: [&str; 4] = [
    "/auth/o/",
    "/auth/associate/",
    "/auth/token/",
    "/social-auth",
];
/// Paths never capped nor timed (probes and metrics answer under load).
const OPS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

pub struct Guard {
    slots: Arc<Semaphore>,
    timeout: Duration,
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    trusted: Vec<Cidr>,
}

impl Guard {
    pub fn from_settings(server: &ServerSettings) -> anyhow::Result<Self> {
        let limiter = NonZeroU32::new(server.rate_limit_per_minute).map(|per_minute| {
            let burst = NonZeroU32::new(server.rate_limit_burst).unwrap_or(NonZeroU32::MIN);
            RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst))
        });
        let trusted = server
            .trusted_proxies
            .iter()
            .map(|raw| {
                Cidr::parse(raw).ok_or_else(|| {
                    anyhow::anyhow!(
                        "server.trusted_proxies: {raw:?} is not an address or CIDR block"
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let timeout = match server.request_timeout_ms {
            0 => Duration::from_millis(server.reply_timeout_ms)
                .saturating_add(Duration::from_secs(10)),
            ms => Duration::from_millis(ms),
        };
        Ok(Self {
            slots: Arc::new(Semaphore::new(server.max_concurrent_requests.max(1))),
            timeout,
            limiter,
            trusted,
        })
    }

    /// Forgets clients not seen for a while (the limiter keeps one entry
    /// per address).
    pub fn forget_idle_clients(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// The client's address: the peer, or — when the peer is a trusted
    /// proxy — the last address of `X-Forwarded-For` that is not one.
    fn client(&self, peer: IpAddr, request: &Request) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded: Vec<&str> = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in forwarded.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(addr) => {
                    client = addr;
                    if !self.trusts(addr) {
                        break;
                    }
                }
                // A value we cannot read is not believed past this point.
                Err(_) => break,
            }
        }
        client
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(addr))
    }
}

pub async fn guard(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if OPS.contains(&path) {
        return next.run(request).await;
    }
    if let Some(limiter) = &guard.limiter
        && LIMITED.iter().any(|p| path.starts_with(p))
    {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        if let Some(peer) = peer {
            let client = guard.client(peer, &request);
            if let Err(not_until) = limiter.check_key(&client) {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                refused("throttled");
                return ApiError::Throttled(wait.as_secs().max(1)).into_response();
            }
        }
    }
    let Ok(_slot) = guard.slots.clone().try_acquire_owned() else {
        refused("overloaded");
        return ApiError::Overloaded.into_response();
    };
    match tokio::time::timeout(guard.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            refused("timeout");
            ApiError::Overloaded.into_response()
        }
    }
}

fn refused(reason: &'static str) {
    metrics::counter!("socialauth_http_refused_total", "reason" => reason).increment(1);
}

/// An address or a block of them (`10.0.0.0/8`, `::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(raw: &str) -> Option<Self> {
        let (addr, prefix) = match raw.trim().split_once('/') {
            Some((addr, prefix)) => (
                addr.parse::<IpAddr>().ok()?,
                Some(prefix.parse::<u8>().ok()?),
            ),
            None => (raw.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { net: addr, prefix })
    }

    fn contains(&self, addr: IpAddr) -> bool {
        match (self.net, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_contain_their_addresses() {
        let block = Cidr::parse("10.1.0.0/16").expect("cidr");
        assert!(block.contains("10.1.200.3".parse().expect("ip")));
        assert!(!block.contains("10.2.0.1".parse().expect("ip")));
        assert!(!block.contains("::1".parse().expect("ip")));
        let one = Cidr::parse("127.0.0.1").expect("ip");
        assert!(one.contains("127.0.0.1".parse().expect("ip")));
        assert!(!one.contains("127.0.0.2".parse().expect("ip")));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .expect("all")
                .contains("8.8.8.8".parse().expect("ip"))
        );
        assert!(
            Cidr::parse("fd00::/8")
                .expect("v6")
                .contains("fd12::1".parse().expect("ip"))
        );
        assert_eq!(Cidr::parse("10.0.0.0/33"), None);
        assert_eq!(Cidr::parse("proxy.internal"), None);
    }

    fn guard_trusting(trusted: &[&str]) -> Guard {
        Guard::from_settings(&ServerSettings {
            trusted_proxies: trusted.iter().map(|s| (*s).to_owned()).collect(),
            ..ServerSettings::default()
        })
        .expect("guard")
    }

    fn request(forwarded: &[&str]) -> Request {
        let mut builder = axum::http::Request::builder().uri("/social-auth");
        for f in forwarded {
            builder = builder.header("x-forwarded-for", *f);
        }
        builder.body(axum::body::Body::empty()).expect("request")
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let untrusting = guard_trusting(&[]);
        assert_eq!(
            untrusting.client(ip("10.0.0.5"), &request(&["1.2.3.4"])),
            ip("10.0.0.5"),
            "a client cannot name itself"
        );
        let g = guard_trusting(&["10.0.0.0/8"]);
        assert_eq!(
            g.client(ip("10.0.0.5"), &request(&["1.2.3.4"])),
            ip("1.2.3.4")
        );
        // A client's own X-Forwarded-For comes first: the last untrusted
        // hop is the one the proxy saw.
        assert_eq!(
            g.client(ip("10.0.0.5"), &request(&["6.6.6.6, 1.2.3.4, 10.0.0.9"])),
            ip("1.2.3.4")
        );
        assert_eq!(
            g.client(ip("10.0.0.5"), &request(&["6.6.6.6", "1.2.3.4"])),
            ip("1.2.3.4")
        );
        assert_eq!(
            g.client(ip("10.0.0.5"), &request(&["nonsense"])),
            ip("10.0.0.5")
        );
        assert_eq!(g.client(ip("10.0.0.5"), &request(&[])), ip("10.0.0.5"));
        assert_eq!(
            g.client(ip("203.0.113.7"), &request(&["1.2.3.4"])),
            ip("203.0.113.7"),
            "an untrusted peer's header is ignored"
        );
    }

    /// A router whose `/slow` answers after `wait`, behind a guard.
    fn slow_app(settings: ServerSettings, wait: Duration) -> axum::Router {
        let limits = Arc::new(Guard::from_settings(&settings).expect("guard"));
        axum::Router::new()
            .route(
                "/slow",
                axum::routing::get(move || async move {
                    tokio::time::sleep(wait).await;
                    "done"
                }),
            )
            .route("/healthz", axum::routing::get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(limits, super::guard))
    }

    async fn call(
        app: &axum::Router,
        path: &str,
    ) -> (axum::http::StatusCode, Option<String>, String) {
        use tower::ServiceExt;
        let response = app
            .clone()
            .oneshot(
                axum::http::Request::builder()
                    .uri(path)
                    .body(axum::body::Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        let status = response.status();
        let retry = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        (status, retry, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn requests_past_the_cap_are_refused_at_once_and_probes_still_answer() {
        let app = slow_app(
            ServerSettings {
                max_concurrent_requests: 1,
                ..ServerSettings::default()
            },
            Duration::from_millis(300),
        );
        let first = tokio::spawn({
            let app = app.clone();
            async move { call(&app, "/slow").await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = std::time::Instant::now();
        let (status, retry, body) = call(&app, "/slow").await;
        assert_eq!(status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry.as_deref(), Some("1"));
        assert!(body.contains("\"detail\""), "{body}");
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "refused at once"
        );
        assert_eq!(call(&app, "/healthz").await.0, axum::http::StatusCode::OK);
        assert_eq!(first.await.expect("first").0, axum::http::StatusCode::OK);
    }

    #[tokio::test]
    async fn a_request_past_its_time_gets_503() {
        let app = slow_app(
            ServerSettings {
                request_timeout_ms: 100,
                ..ServerSettings::default()
            },
            Duration::from_secs(5),
        );
        let started = std::time::Instant::now();
        let (status, _, body) = call(&app, "/slow").await;
        assert_eq!(status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("\"detail\""), "{body}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_bad_trusted_proxy_is_refused_at_start() {
        assert!(
            Guard::from_settings(&ServerSettings {
                trusted_proxies: vec!["my-proxy".into()],
                ..ServerSettings::default()
            })
            .is_err()
        );
    }
}
