//! What an operator meets in the first hour: `doctor` on a configuration,
//! several workers on one host, each serving its metrics, and the alert
//! rules and Grafana dashboard of `deploy/` on the metrics the service
//! exports.

use reqwest::StatusCode;
use serde_json::{Value, json};
use socialauth_tests::stack::{Mode, binary, workspace_root};
use socialauth_tests::world::World;
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Two consecutive free ports on loopback.
fn two_free_ports() -> anyhow::Result<u16> {
    for _ in 0..50 {
        let first = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if first < u16::MAX
            && TcpListener::bind(("127.0.0.1", first)).is_ok()
            && TcpListener::bind(("127.0.0.1", first + 1)).is_ok()
        {
            return Ok(first);
        }
    }
    anyhow::bail!("no two consecutive free ports")
}

/// The stack's configuration with `[worker] metrics_bind = bind`.
fn config_with_metrics_bind(w: &World, name: &str, bind: &str) -> anyhow::Result<PathBuf> {
    let config = std::fs::read_to_string(&w.stack.config_path)?;
    let line = "metrics_bind = \"127.0.0.1:0\"";
    anyhow::ensure!(config.contains(line), "the stack's worker binds port 0");
    let path = w.stack.config_path.with_file_name(name);
    std::fs::write(
        &path,
        config.replace(line, &format!("metrics_bind = {bind:?}")),
    )?;
    Ok(path)
}

async fn serves_metrics(http: &reqwest::Client, port: u16) -> bool {
    match http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
    {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
}

/// With a range of ports (the default's form), a second worker on the host
/// takes the next one; a single port already taken stops a worker with a
/// message naming the key.
#[tokio::test]
async fn workers_on_one_host_each_take_a_metrics_port() -> anyhow::Result<()> {
    let mut w = World::start_with(Mode::Production, |o| o.start_worker = false).await?;
    let first = two_free_ports()?;
    let range = config_with_metrics_bind(
        &w,
        "range.toml",
        &format!("127.0.0.1:{first}-{}", first + 1),
    )?;
    w.stack.start_worker_with(&range)?;
    w.stack.start_worker_with(&range)?;
    let started = Instant::now();
    while !(serves_metrics(&w.http, first).await && serves_metrics(&w.http, first + 1).await) {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "two workers did not each serve metrics; their logs:\n{}\n{}",
            w.stack.workers[0].output(),
            w.stack.workers[1].output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for worker in &w.stack.workers {
        anyhow::ensure!(
            worker.output().contains("serving Prometheus /metrics"),
            "{}",
            worker.output()
        );
    }

    let single = config_with_metrics_bind(&w, "single.toml", &format!("127.0.0.1:{first}"))?;
    w.stack.start_worker_with(&single)?;
    let mut third = w.stack.workers.pop().expect("the third worker");
    let status = third.wait_exit(Duration::from_secs(30)).await;
    anyhow::ensure!(
        status.is_some_and(|s| !s.success()),
        "a worker whose metrics port is taken stops: {status:?}"
    );
    let log = third.output();
    anyhow::ensure!(
        log.contains("worker.metrics_bind") && log.contains(&format!("127.0.0.1:{first}")),
        "the message names the key and the address: {log}"
    );
    Ok(())
}

/// `socialauth-api doctor --config PATH`: its exit status and table.
async fn doctor(config: &std::path::Path) -> anyhow::Result<(bool, String)> {
    let output = tokio::process::Command::new(binary("socialauth-api")?)
        .args(["doctor", "--config"])
        .arg(config)
        .env_remove("SOCIALAUTH_CONFIG")
        // Where the service runs: a relative SQLite path is its.
        .current_dir(config.parent().unwrap_or(std::path::Path::new(".")))
        .output()
        .await?;
    let table = String::from_utf8_lossy(&output.stdout).into_owned();
    Ok((output.status.success(), table))
}

/// The table's lines for `check` (its first column).
fn lines<'a>(table: &'a str, check: &str) -> Vec<&'a str> {
    table
        .lines()
        .filter(|l| {
            l.strip_prefix(check)
                .is_some_and(|rest| rest.starts_with("  "))
        })
        .collect()
}

/// On a running stack (both modes) every part is found: exit 0, each line
/// `ok`. A provider whose host does not answer, or a configuration that
/// cannot be read, is a `FAIL` line and exit 1.
async fn doctor_finds_every_part_and_names_what_fails(mode: Mode) -> anyhow::Result<()> {
    let w = World::start(mode).await?;
    let (healthy, table) = doctor(&w.stack.config_path).await?;
    anyhow::ensure!(healthy, "{table}");
    let database = if mode == Mode::Production {
        "PostgreSQL reachable"
    } else {
        "SQLite reachable"
    };
    let mut expected = vec![
        ("config", "ok"),
        ("encryption key", "ok"),
        ("database", database),
        (
            "provider corp",
            "discovery and keys: issuer http://127.0.0.1:",
        ),
        ("provider corpoauth", "token_url: answers (HTTP"),
        ("provider twitter", "request_token_url: answers (HTTP"),
        ("provider twitter", "legacy API v1.1"),
    ];
    if mode == Mode::Production {
        expected.push(("queue", "RabbitMQ reachable"));
    }
    for (check, seen) in expected {
        anyhow::ensure!(
            lines(&table, check).iter().any(|l| l.contains(seen)),
            "{check}: {seen:?} not in\n{table}"
        );
    }
    anyhow::ensure!(!table.contains("FAIL"), "{table}");

    let closed = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let config = std::fs::read_to_string(&w.stack.config_path)?;
    let dead = w.stack.config_path.with_file_name("dead-provider.toml");
    std::fs::write(
        &dead,
        format!(
            "{config}\n[providers.gone]\nprotocol = \"oidc\"\nissuer = \"http://127.0.0.1:{closed}\"\n\
             client_id = \"id\"\nclient_secret = \"secret\"\n"
        ),
    )?;
    let (healthy, table) = doctor(&dead).await?;
    anyhow::ensure!(!healthy, "{table}");
    anyhow::ensure!(
        lines(&table, "provider gone")
            .iter()
            .any(|l| l.contains("FAIL") && l.contains("discovery and keys")),
        "{table}"
    );
    anyhow::ensure!(
        lines(&table, "provider corp")
            .iter()
            .all(|l| !l.contains("FAIL")),
        "{table}"
    );

    let broken = w.stack.config_path.with_file_name("broken.toml");
    std::fs::write(
        &broken,
        format!("{config}\n[providers.odd]\npreset = \"nope\"\n"),
    )?;
    let (healthy, table) = doctor(&broken).await?;
    anyhow::ensure!(!healthy, "{table}");
    anyhow::ensure!(
        lines(&table, "providers")
            .iter()
            .any(|l| l.contains("FAIL") && l.contains("unknown preset")),
        "{table}"
    );
    Ok(())
}

#[tokio::test]
async fn doctor_finds_every_part_and_names_what_fails_production() -> anyhow::Result<()> {
    doctor_finds_every_part_and_names_what_fails(Mode::Production).await
}

#[tokio::test]
async fn doctor_finds_every_part_and_names_what_fails_embedded() -> anyhow::Result<()> {
    doctor_finds_every_part_and_names_what_fails(Mode::Embedded).await
}

/// promtool from `$SOCIALAUTH_PROMTOOL` (tests/run.sh sets it, unpacking
/// Debian's when missing), else `promtool` on PATH.
fn promtool() -> std::process::Command {
    let path = std::env::var_os("SOCIALAUTH_PROMTOOL").unwrap_or_else(|| "promtool".into());
    std::process::Command::new(path)
}

fn run_promtool(args: &[&str]) -> anyhow::Result<String> {
    let out = promtool()
        .args(args)
        .current_dir(workspace_root().join("deploy/prometheus"))
        .output()
        .map_err(|e| {
            anyhow::anyhow!("promtool: {e} (bash tests/run.sh --services-only provides it)")
        })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    anyhow::ensure!(out.status.success(), "promtool {args:?}:\n{text}");
    Ok(text)
}

/// The alert rules load (with the Prometheus configuration that names
/// them) and their unit tests pass: each alert fires on the series the
/// service exports, and stays quiet otherwise.
#[test]
fn the_alert_rules_pass_promtool() -> anyhow::Result<()> {
    let checked = run_promtool(&["check", "config", "prometheus.yml"])?;
    anyhow::ensure!(checked.contains("rules found"), "{checked}");
    run_promtool(&["test", "rules", "alerts.test.yml"])?;
    Ok(())
}

/// Every `socialauth_*` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("socialauth_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// The series names of a Prometheus text exposition.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Every expression of the dashboard's panels.
fn expressions(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => expressions(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| expressions(v, out)),
        _ => {}
    }
}

const ADMIN_KEY: &str = "first-hour-admin-key";

/// A client secret that is a JWT (as Sign in with Apple's is), expiring in
/// 90 days: its expiry is exported.
fn jwt_secret() -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 90 * 86_400;
    format!(
        "{}.{}.signature",
        b64(r#"{"alg":"ES256","kid":"K"}"#),
        b64(&format!(r#"{{"iss":"TEAM","exp":{exp}}}"#))
    )
}

/// The dashboard and the alert rules read only metrics the service
/// exports: after a login, a refresh campaign and a re-encryption on the
/// production stack, every `socialauth_*` series they name is in the api's
/// or a worker's `/metrics`.
#[tokio::test]
async fn the_dashboard_and_alerts_read_only_exported_metrics() -> anyhow::Result<()> {
    let root = workspace_root();
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(
        root.join("deploy/grafana/dashboards/socialauth.json"),
    )?)?;
    let mut exprs = Vec::new();
    expressions(&dashboard["panels"], &mut exprs);
    anyhow::ensure!(
        exprs.len() >= 15,
        "the dashboard has {} queries",
        exprs.len()
    );
    let mut used = metric_names(&exprs.join("\n"));
    let dashboard_names = used.clone();
    used.extend(metric_names(&std::fs::read_to_string(
        root.join("deploy/prometheus/alerts.yml"),
    )?));

    let mut w = World::start_with(Mode::Production, |o| {
        o.start_worker = false;
        o.security_toml = format!("admin_key = \"{ADMIN_KEY}\"\n");
        o.providers_toml = o.providers_toml.replacen(
            "[providers.corp]\n",
            "[providers.corp]\nscopes = [\"openid\", \"email\", \"profile\", \"offline_access\"]\n\
             authorize_params = { prompt = \"consent\" }\n",
            1,
        ) + &format!(
            "\n[providers.signedsecret]\nprotocol = \"oauth2\"\n\
             authorize_url = \"http://127.0.0.1:9/authorize\"\ntoken_url = \"http://127.0.0.1:9/token\"\n\
             userinfo_url = \"http://127.0.0.1:9/me\"\nclient_id = \"id\"\nclient_secret = \"{}\"\n",
            jwt_secret()
        );
    })
    .await?;
    let port = two_free_ports()?;
    let config = config_with_metrics_bind(&w, "metrics.toml", &format!("127.0.0.1:{port}"))?;
    w.stack.start_worker_with(&config)?;

    let (status, body) = w.login("corp", "alice").await?;
    anyhow::ensure!(status.is_success(), "{status} {body}");
    // A provider nothing called yet has its calls' series at zero, errors
    // included: the first error after a start counts in a `rate()`.
    let worker_metrics = w
        .http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    for (endpoint, outcome) in [("token", "error"), ("userinfo", "error"), ("token", "ok")] {
        anyhow::ensure!(
            worker_metrics.lines().any(|l| {
                l.starts_with("socialauth_provider_calls_total{")
                    && l.contains(r#"provider="signedsecret""#)
                    && l.contains(&format!("endpoint=\"{endpoint}\""))
                    && l.contains(&format!("outcome=\"{outcome}\""))
                    && l.ends_with(" 0")
            }),
            "no {endpoint} {outcome} series at zero: {worker_metrics}"
        );
    }
    let admin = |method: reqwest::Method, path: &str| {
        w.http
            .request(method, w.stack.url(path))
            .header("Authorization", format!("Bearer {ADMIN_KEY}"))
    };
    let (status, campaign) = socialauth_tests::world::send(
        admin(reqwest::Method::POST, "/admin/refresh-campaigns")
            .json(&json!({"expiring_within_seconds": 7200})),
    )
    .await;
    anyhow::ensure!(status == StatusCode::ACCEPTED, "{status} {campaign}");
    let id = campaign["id"].as_str().unwrap_or_default().to_owned();
    let (status, reencrypt) =
        socialauth_tests::world::send(admin(reqwest::Method::POST, "/admin/reencrypt")).await;
    anyhow::ensure!(status.is_success(), "{status} {reencrypt}");

    // Campaign done, then the series settle (queue depths every 5 s).
    let started = Instant::now();
    let missing = loop {
        let (_, c) = socialauth_tests::world::send(admin(
            reqwest::Method::GET,
            &format!("/admin/refresh-campaigns/{id}"),
        ))
        .await;
        let mut seen = exported(&w.metrics().await?);
        seen.extend(exported(
            &w.http
                .get(format!("http://127.0.0.1:{port}/metrics"))
                .send()
                .await?
                .text()
                .await?,
        ));
        let missing: Vec<&String> = used.iter().filter(|n| !seen.contains(*n)).collect();
        if (missing.is_empty() && c["status"] == "done")
            || started.elapsed() > Duration::from_secs(60)
        {
            break missing.into_iter().cloned().collect::<Vec<_>>();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    anyhow::ensure!(
        missing.is_empty(),
        "named by the dashboard or the alerts, exported by no process: {missing:?}"
    );
    let (_, c) = socialauth_tests::world::send(admin(
        reqwest::Method::GET,
        &format!("/admin/refresh-campaigns/{id}"),
    ))
    .await;
    anyhow::ensure!(c["status"] == "done", "the campaign: {c}");
    anyhow::ensure!(
        dashboard_names.len() >= 14,
        "the dashboard reads {} metrics: {dashboard_names:?}",
        dashboard_names.len()
    );
    Ok(())
}
