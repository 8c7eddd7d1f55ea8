//! Inbound protection of a running api: per-client rates on the login
//! endpoints (429 JSON with `Retry-After`; a trusted proxy's
//! `X-Forwarded-For` names the client) and the header-read timeout.

use reqwest::StatusCode;
use socialauth_tests::stack::Mode;
use socialauth_tests::world::{REDIRECT_URI, World};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn world(server_toml: &str) -> anyhow::Result<World> {
    let server_toml = server_toml.to_owned();
    World::start_with(Mode::Embedded, move |o| o.server_toml = server_toml).await
}

async fn begin(
    w: &World,
    forwarded_for: Option<&str>,
) -> (StatusCode, Option<String>, serde_json::Value) {
    let mut request = w
        .http
        .get(w.stack.url("/auth/o/corp/"))
        .query(&[("redirect_uri", REDIRECT_URI)]);
    if let Some(ip) = forwarded_for {
        request = request.header("X-Forwarded-For", ip);
    }
    let response = request.send().await.expect("the api answers");
    let status = response.status();
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, retry, response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn a_client_past_its_rate_is_throttled_and_others_are_not() -> anyhow::Result<()> {
    let w = world("rate_limit_per_minute = 60\nrate_limit_burst = 5\n").await?;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(begin(&w, None).await);
    }
    let passed = statuses
        .iter()
        .filter(|(s, _, _)| *s == StatusCode::OK)
        .count();
    anyhow::ensure!(passed == 5, "the burst is 5: {statuses:?}");
    let (status, retry, body) = &statuses[7];
    anyhow::ensure!(*status == StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    let secs: u64 = retry.as_deref().unwrap_or_default().parse()?;
    anyhow::ensure!((1..=2).contains(&secs), "Retry-After {secs}");
    anyhow::ensure!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("Request was throttled. Expected available in")),
        "{body}"
    );
    // Not a login endpoint: not counted.
    let health = w.http.get(w.stack.url("/healthz")).send().await?;
    anyhow::ensure!(health.status() == StatusCode::OK);
    let me = w.http.get(w.stack.url("/users/me")).send().await?;
    anyhow::ensure!(me.status() == StatusCode::UNAUTHORIZED, "{}", me.status());
    // An X-Forwarded-For from an untrusted peer changes nothing.
    let (status, _, _) = begin(&w, Some("198.51.100.7")).await;
    anyhow::ensure!(status == StatusCode::TOO_MANY_REQUESTS);
    Ok(())
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_rate() -> anyhow::Result<()> {
    let w = world(
        "rate_limit_per_minute = 60\nrate_limit_burst = 2\ntrusted_proxies = [\"127.0.0.1\"]\n",
    )
    .await?;
    for client in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        for _ in 0..2 {
            let (status, _, body) = begin(&w, Some(client)).await;
            anyhow::ensure!(status == StatusCode::OK, "{client}: {status} {body}");
        }
        let (status, _, _) = begin(&w, Some(client)).await;
        anyhow::ensure!(status == StatusCode::TOO_MANY_REQUESTS, "{client}");
    }
    Ok(())
}

#[tokio::test]
async fn a_connection_that_does_not_send_its_headers_is_closed() -> anyhow::Result<()> {
    let w = world("header_read_timeout_ms = 500\n").await?;
    let address = w.stack.base_url.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&address).await?;
    // Half a request, then nothing.
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await?;
    let started = Instant::now();
    let mut buf = [0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf)).await;
    let closed = match read {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        // hyper may answer 408 before closing.
        Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).contains("408"),
        Err(_) => false,
    };
    anyhow::ensure!(closed, "the connection stayed open");
    anyhow::ensure!(started.elapsed() < Duration::from_secs(3));
    // The api goes on answering others.
    let health = w.http.get(w.stack.url("/healthz")).send().await?;
    anyhow::ensure!(health.status() == StatusCode::OK);
    Ok(())
}
