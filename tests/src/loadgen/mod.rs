//! The load generator: `--concurrency` virtual users, each a tokio task with
//! its own keep-alive connection, looping over whole logins against a
//! socialauth-compatible service on this machine, for a duration or a count.
//!
//! Phases: the pool signup (returning/mixed modes sign `--users` uids up
//! first), the warm-up (`--warmup`, the real load, not measured), then the
//! measured phase. Each is reported on its own, with the generator's own CPU
//! time so its cost can be subtracted.

pub mod conn;
pub mod ids;
pub mod parse;
pub mod report;

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use conn::{Conn, Target};
use hyper::header::HeaderValue;
use hyper::{StatusCode, Uri};
use ids::{Rng, Uids};
use parse::{check_loopback, http_error_kind, is_loopback, parse_duration, state_param};
use report::{PhaseReport, Report, Tally};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// GET the authorization URL, then POST code + state (`--path-djoser`).
    Djoser,
    /// One POST of provider + code + redirect_uri (`--path-social`).
    SocialAuth,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A new user every login.
    Signup,
    /// Users of a pool signed up first.
    Returning,
    /// `--mixed-new-ratio` new users, the rest from the pool.
    Mixed,
}

/// Command line of `loadgen`.
#[derive(clap::Parser, Debug, Clone)]
#[command(about = "Login load against a socialauth-compatible service on this machine")]
pub struct Args {
    /// The service (loopback only: localhost, 127.0.0.0/8, [::1]).
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub base_url: String,
    /// Provider name in the service's configuration.
    #[arg(long, default_value = "stub")]
    pub provider: String,
    /// redirect_uri sent (must be on the service's allow-list).
    #[arg(long, default_value = "http://127.0.0.1:9/cb")]
    pub redirect_uri: String,
    #[arg(long, value_enum, default_value = "djoser")]
    pub flow: Flow,
    #[arg(long, value_enum, default_value = "signup")]
    pub mode: Mode,
    /// Virtual users = connections.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// How long the measured phase runs (default 60s when no --count).
    #[arg(long, value_parser = parse_duration, conflicts_with = "count")]
    pub duration: Option<Duration>,
    /// Logins in the measured phase, instead of a duration.
    #[arg(long)]
    pub count: Option<u64>,
    /// Unmeasured load before the measured phase.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub warmup: Duration,
    /// Pool of returning users (returning and mixed modes).
    #[arg(long, default_value_t = 10_000)]
    pub users: u64,
    /// Share of new users in the mixed mode.
    #[arg(long, default_value_t = 0.2)]
    pub mixed_new_ratio: f64,
    /// Open loop: start logins at this rate (logins/s), at most
    /// --concurrency at once; latency counts from the scheduled start.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Write the report here as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[arg(long, default_value = "/auth/o/{provider}/")]
    pub path_djoser: String,
    #[arg(long, default_value = "/social-auth")]
    pub path_social: String,
    /// Runtime worker threads (1: a single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Timeout of one HTTP exchange.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub timeout: Duration,
    /// How long a 202-accepted login is polled before it counts as timed out.
    #[arg(long, value_parser = parse_duration, default_value = "120s")]
    pub poll_timeout: Duration,
    #[arg(long, value_parser = parse_duration, default_value = "50ms")]
    pub poll_interval: Duration,
    /// Progress line on stderr this often (0s: none).
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub progress: Duration,
}

/// Pause of a virtual user after a failed connection attempt.
const CONNECT_BACKOFF: Duration = Duration::from_millis(10);

/// Everything the virtual users share, read-only but for counters.
struct Shared {
    target: Arc<Target>,
    flow: Flow,
    provider: String,
    redirect_uri: String,
    /// `GET {path-djoser}?redirect_uri=…`
    djoser_begin: Uri,
    /// `POST {path-djoser}`
    djoser_complete: Uri,
    social: Uri,
    uids: Uids,
    timeout: Duration,
    poll_timeout: Duration,
    poll_interval: Duration,
    aborted: AtomicBool,
    /// Completed logins of the running phase, for the progress line.
    progress: AtomicU64,
}

/// Which users a phase logs in.
#[derive(Clone, Copy)]
enum Pick {
    /// Ticket `i` signs up pool user `i`.
    Pool,
    Fresh,
    Returning,
    Mixed(f64),
}

struct PhaseSpec {
    name: &'static str,
    pick: Pick,
    duration: Option<Duration>,
    count: Option<u64>,
    rate: Option<f64>,
}

struct PhaseCtl {
    pick: Pick,
    start: Instant,
    end: Option<Instant>,
    count: Option<u64>,
    rate: Option<f64>,
    tickets: AtomicU64,
}

/// Runs the whole benchmark and returns its report (also printed, and
/// written to `--json`).
pub async fn run(args: Args) -> anyhow::Result<Report> {
    validate(&args)?;
    let shared = Arc::new(setup(&args).await?);
    let started_unix_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());

    let abort_on_signal = {
        let shared = shared.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("loadgen: interrupted, finishing the phase");
                shared.aborted.store(true, Relaxed);
            }
        })
    };

    let mut conns: Vec<Conn> = (0..args.concurrency)
        .map(|_| Conn::new(shared.target.clone(), shared.timeout))
        .collect();
    let pick = match args.mode {
        Mode::Signup => Pick::Fresh,
        Mode::Returning => Pick::Returning,
        Mode::Mixed => Pick::Mixed(args.mixed_new_ratio),
    };
    let needs_pool = args.mode != Mode::Signup;

    let pool_signup = if needs_pool {
        let (c, r) = run_phase(
            &shared,
            conns,
            PhaseSpec {
                name: "pool_signup",
                pick: Pick::Pool,
                duration: None,
                count: Some(args.users),
                rate: None,
            },
            args.progress,
        )
        .await;
        conns = c;
        print!("{}", r.summary());
        Some(r)
    } else {
        None
    };

    let warmup = if !args.warmup.is_zero() {
        let (c, r) = run_phase(
            &shared,
            conns,
            PhaseSpec {
                name: "warmup",
                pick,
                duration: Some(args.warmup),
                count: None,
                rate: args.rate,
            },
            args.progress,
        )
        .await;
        conns = c;
        print!("{}", r.summary());
        Some(r)
    } else {
        None
    };

    let (_, measured) = run_phase(
        &shared,
        conns,
        PhaseSpec {
            name: "measured",
            pick,
            duration: match args.count {
                Some(_) => None,
                None => Some(args.duration.unwrap_or(Duration::from_secs(60))),
            },
            count: args.count,
            rate: args.rate,
        },
        args.progress,
    )
    .await;
    print!("{}", measured.summary());
    abort_on_signal.abort();

    let report = Report {
        tool: "socialauth-loadgen",
        base_url: args.base_url.clone(),
        flow: value_name(args.flow),
        mode: value_name(args.mode),
        provider: args.provider.clone(),
        redirect_uri: args.redirect_uri.clone(),
        concurrency: args.concurrency,
        threads: args.threads,
        rate: args.rate,
        users: needs_pool.then_some(args.users),
        mixed_new_ratio: (args.mode == Mode::Mixed).then_some(args.mixed_new_ratio),
        uid_prefix: shared.uids.prefix,
        started_unix_s,
        pool_signup,
        warmup,
        measured,
    };
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("write {}", path.display()))?;
    }
    Ok(report)
}

/// A flag value as written on the command line (`social-auth`).
fn value_name(v: impl clap::ValueEnum) -> String {
    v.to_possible_value()
        .map_or_else(String::new, |p| p.get_name().to_owned())
}

fn validate(args: &Args) -> anyhow::Result<()> {
    ensure!(args.concurrency >= 1, "--concurrency must be at least 1");
    ensure!(args.threads >= 1, "--threads must be at least 1");
    ensure!(
        (0.0..=1.0).contains(&args.mixed_new_ratio),
        "--mixed-new-ratio must be within 0..1"
    );
    if args.mode != Mode::Signup {
        ensure!(args.users >= 1, "--users must be at least 1");
    }
    if let Some(rate) = args.rate {
        ensure!(rate > 0.0 && rate.is_finite(), "--rate must be positive");
    }
    if let Some(d) = args.duration {
        ensure!(!d.is_zero(), "--duration must be positive");
    }
    ensure!(
        !args.poll_interval.is_zero(),
        "--poll-interval must be positive"
    );
    ensure!(!args.timeout.is_zero(), "--timeout must be positive");
    for (name, path) in [
        ("--path-djoser", &args.path_djoser),
        ("--path-social", &args.path_social),
    ] {
        ensure!(path.starts_with('/'), "{name} must start with /");
    }
    Ok(())
}

async fn setup(args: &Args) -> anyhow::Result<Shared> {
    let base = url::Url::parse(&args.base_url).context("--base-url")?;
    check_loopback(&base).map_err(anyhow::Error::msg)?;
    let port = base
        .port_or_known_default()
        .context("--base-url has no port")?;
    let host = base.host_str().context("--base-url has no host")?;
    let host_lookup = host.trim_start_matches('[').trim_end_matches(']');
    let addr = tokio::net::lookup_host((host_lookup, port))
        .await
        .with_context(|| format!("resolve {host}"))?
        .find(|a| is_loopback(a.ip()))
        .with_context(|| format!("{host} resolves to no loopback address"))?;
    let authority = match base.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let target = Arc::new(Target {
        addr,
        host: HeaderValue::from_str(&authority).context("--base-url host")?,
        prefix: base.path().trim_end_matches('/').to_owned(),
    });

    let djoser_path = args.path_djoser.replace("{provider}", &args.provider);
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("redirect_uri", &args.redirect_uri)
        .finish();
    let sep = if djoser_path.contains('?') { '&' } else { '?' };
    let to_uri = |p: &str| target.uri(p).map_err(anyhow::Error::msg);
    let djoser_begin = to_uri(&format!("{djoser_path}{sep}{query}"))?;
    let djoser_complete = to_uri(&djoser_path)?;
    let social = to_uri(&args.path_social.replace("{provider}", &args.provider))?;

    let pool = if args.mode == Mode::Signup {
        0
    } else {
        args.users
    };
    Ok(Shared {
        target,
        flow: args.flow,
        provider: args.provider.clone(),
        redirect_uri: args.redirect_uri.clone(),
        djoser_begin,
        djoser_complete,
        social,
        uids: Uids::new(ids::random_run_prefix(), pool),
        timeout: args.timeout,
        poll_timeout: args.poll_timeout,
        poll_interval: args.poll_interval,
        aborted: AtomicBool::new(false),
        progress: AtomicU64::new(0),
    })
}

/// Runs one phase with every virtual user; gives the connections back for
/// the next phase (so the measured phase does not pay for connecting).
async fn run_phase(
    shared: &Arc<Shared>,
    conns: Vec<Conn>,
    spec: PhaseSpec,
    progress_every: Duration,
) -> (Vec<Conn>, PhaseReport) {
    eprintln!(
        "loadgen: {} phase ({})",
        spec.name,
        match (spec.duration, spec.count) {
            (Some(d), _) => format!("{:.1}s", d.as_secs_f64()),
            (None, Some(n)) => format!("{n} logins"),
            (None, None) => "until stopped".into(),
        }
    );
    let cpu_before = crate::procstat::self_cpu();
    let start = Instant::now();
    let ctl = Arc::new(PhaseCtl {
        pick: spec.pick,
        start,
        end: spec.duration.map(|d| start + d),
        count: spec.count,
        rate: spec.rate,
        tickets: AtomicU64::new(0),
    });
    shared.progress.store(0, Relaxed);
    let progress = (!progress_every.is_zero()).then(|| {
        let shared = shared.clone();
        let name = spec.name;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(
                tokio::time::Instant::now() + progress_every,
                progress_every,
            );
            let mut last = 0;
            loop {
                tick.tick().await;
                let now = shared.progress.load(Relaxed);
                eprintln!(
                    "loadgen: {name} {:>6.1}s  {now} logins  {:.0}/s",
                    start.elapsed().as_secs_f64(),
                    (now - last) as f64 / progress_every.as_secs_f64()
                );
                last = now;
            }
        })
    });

    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, conn)| {
            let shared = shared.clone();
            let ctl = ctl.clone();
            let seed = shared.uids.prefix ^ ((i as u64) << 48) ^ start.elapsed().as_nanos() as u64;
            tokio::spawn(virtual_user(shared, ctl, conn, Rng::new(seed)))
        })
        .collect();
    let mut tally = Tally::default();
    let mut conns = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok((conn, t)) => {
                tally.merge(t);
                conns.push(conn);
            }
            Err(e) => {
                tally.error(format!("virtual user panicked: {e}"));
                conns.push(Conn::new(shared.target.clone(), shared.timeout));
            }
        }
    }
    let elapsed = start.elapsed();
    if let Some(p) = progress {
        p.abort();
    }
    let cpu = match (cpu_before, crate::procstat::self_cpu()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let report = PhaseReport::build(spec.name, tally, elapsed, cpu, spec.rate);
    (conns, report)
}

/// What a completed login answered.
struct Done {
    status: u16,
    is_new: Option<bool>,
    polled: bool,
}

async fn virtual_user(
    shared: Arc<Shared>,
    ctl: Arc<PhaseCtl>,
    mut conn: Conn,
    mut rng: Rng,
) -> (Conn, Tally) {
    let mut tally = Tally::default();
    let (requests0, connects0) = (conn.requests, conn.connects);
    loop {
        if shared.aborted.load(Relaxed) {
            break;
        }
        let ticket = ctl.tickets.fetch_add(1, Relaxed);
        if ctl.count.is_some_and(|n| ticket >= n) {
            break;
        }
        let scheduled = match ctl.rate {
            Some(rate) => {
                let at = ctl.start + Duration::from_secs_f64(ticket as f64 / rate);
                if ctl.end.is_some_and(|end| at >= end) {
                    break;
                }
                tokio::time::sleep_until(at.into()).await;
                Some(at)
            }
            None => None,
        };
        let now = Instant::now();
        if ctl.end.is_some_and(|end| now >= end) {
            break;
        }
        let t0 = scheduled.unwrap_or(now);
        tally.max_lag_us = tally
            .max_lag_us
            .max(now.saturating_duration_since(t0).as_micros() as u64);

        let (uid, expect_new) = match ctl.pick {
            Pick::Pool => (shared.uids.pooled(ticket), Some(true)),
            Pick::Fresh => (shared.uids.fresh(), Some(true)),
            Pick::Returning => (shared.uids.pooled(rng.below(shared.uids.pool)), Some(false)),
            Pick::Mixed(ratio) => {
                if rng.unit() < ratio {
                    (shared.uids.fresh(), Some(true))
                } else {
                    (shared.uids.pooled(rng.below(shared.uids.pool)), Some(false))
                }
            }
        };
        match login(&shared, &mut conn, &uid).await {
            Ok(done) => {
                let us = t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                tally.latencies_us.push(us);
                *tally.statuses.entry(done.status).or_default() += 1;
                match done.is_new {
                    Some(true) => tally.is_new_true += 1,
                    Some(false) => tally.is_new_false += 1,
                    None => tally.is_new_missing += 1,
                }
                if done.is_new.is_some() && done.is_new != expect_new {
                    tally.is_new_unexpected += 1;
                }
                if done.polled {
                    tally.polled += 1;
                }
                shared.progress.fetch_add(1, Relaxed);
            }
            Err(kind) => {
                tally.error(kind);
                if conn.connect_failed {
                    // Nothing listens: do not spin on a shared machine.
                    tokio::time::sleep(CONNECT_BACKOFF).await;
                }
            }
        }
    }
    tally.requests = conn.requests - requests0;
    tally.connects = conn.connects - connects0;
    (conn, tally)
}

#[derive(Serialize)]
struct DjoserComplete<'a> {
    code: &'a str,
    state: &'a str,
}

#[derive(Serialize)]
struct SocialAuth<'a> {
    provider: &'a str,
    code: &'a str,
    redirect_uri: &'a str,
}

#[derive(Deserialize)]
struct Begin<'a> {
    #[serde(borrow)]
    authorization_url: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct LoginReply<'a> {
    #[serde(borrow, default)]
    token: Option<Cow<'a, str>>,
    #[serde(default)]
    is_new: Option<bool>,
    #[serde(borrow, default)]
    status_url: Option<Cow<'a, str>>,
}

/// One whole login of `uid`; `Err` is the error kind.
async fn login(shared: &Shared, conn: &mut Conn, uid: &str) -> Result<Done, String> {
    let code = shared.uids.code(uid);
    let (status, body) = match shared.flow {
        Flow::Djoser => {
            let (status, body) = conn
                .get(shared.djoser_begin.clone())
                .await
                .map_err(|e| e.kind("begin"))?;
            if status != StatusCode::OK {
                return Err(http_error_kind("begin", status.as_u16(), &body));
            }
            let state = serde_json::from_slice::<Begin>(&body)
                .ok()
                .and_then(|b| b.authorization_url)
                .and_then(|u| state_param(&u))
                .ok_or_else(|| "begin no state in authorization_url".to_owned())?;
            let json = serde_json::to_vec(&DjoserComplete {
                code: &code,
                state: &state,
            })
            .map_err(|e| format!("complete encode {e}"))?;
            conn.post_json(shared.djoser_complete.clone(), json)
                .await
                .map_err(|e| e.kind("complete"))?
        }
        Flow::SocialAuth => {
            let json = serde_json::to_vec(&SocialAuth {
                provider: &shared.provider,
                code: &code,
                redirect_uri: &shared.redirect_uri,
            })
            .map_err(|e| format!("complete encode {e}"))?;
            conn.post_json(shared.social.clone(), json)
                .await
                .map_err(|e| e.kind("complete"))?
        }
    };
    finish(shared, conn, status, body).await
}

async fn finish(
    shared: &Shared,
    conn: &mut Conn,
    status: StatusCode,
    body: Bytes,
) -> Result<Done, String> {
    match status.as_u16() {
        200 | 201 => {
            let reply = serde_json::from_slice::<LoginReply>(&body)
                .map_err(|_| format!("complete http {} (not a token response)", status.as_u16()))?;
            if reply.token.is_none_or(|t| t.is_empty()) {
                return Err(format!("complete http {} no token", status.as_u16()));
            }
            Ok(Done {
                status: status.as_u16(),
                is_new: reply.is_new,
                polled: false,
            })
        }
        202 => {
            let status_url = serde_json::from_slice::<LoginReply>(&body)
                .ok()
                .and_then(|r| r.status_url.map(Cow::into_owned))
                .ok_or_else(|| "complete http 202 no status_url".to_owned())?;
            poll(shared, conn, &status_url).await
        }
        other => Err(http_error_kind("complete", other, &body)),
    }
}

/// Polls a 202-accepted login's job until it ends.
async fn poll(shared: &Shared, conn: &mut Conn, status_url: &str) -> Result<Done, String> {
    // The job's URL is taken relative to the base URL whatever its host, so
    // every request stays on the target.
    let path = match status_url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => status_url,
    };
    let uri = shared
        .target
        .uri(path)
        .map_err(|_| "poll bad status_url".to_owned())?;
    let deadline = Instant::now() + shared.poll_timeout;
    loop {
        tokio::time::sleep(shared.poll_interval).await;
        if Instant::now() >= deadline {
            return Err("poll timeout".into());
        }
        let (status, body) = conn.get(uri.clone()).await.map_err(|e| e.kind("poll"))?;
        if status != StatusCode::OK {
            return Err(http_error_kind("poll", status.as_u16(), &body));
        }
        let job: serde_json::Value =
            serde_json::from_slice(&body).map_err(|_| "poll not JSON".to_owned())?;
        match job["status"].as_str() {
            Some("succeeded") => {
                let result = &job["result"];
                if result["token"].as_str().is_none_or(str::is_empty) {
                    return Err("poll succeeded without token".into());
                }
                return Ok(Done {
                    status: 202,
                    is_new: result["is_new"].as_bool(),
                    polled: true,
                });
            }
            Some("failed") => {
                return Err(format!(
                    "poll failed {}",
                    parse::first_error_of(&job["error"])
                ));
            }
            _ => {}
        }
    }
}

/// `loadgen`'s main after parsing: a runtime of `--threads` workers.
pub fn main_with(args: Args) -> anyhow::Result<()> {
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    let report = runtime.block_on(run(args))?;
    if report.measured.completed == 0 {
        bail!("no login completed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Json;
    use axum::extract::{Path, Query, State};
    use axum::routing::get;
    use clap::Parser;
    use serde_json::{Value, json};
    use std::collections::HashMap;

    /// A fake service: every third login answers 202 and its job succeeds
    /// on the first poll; a uid seen before is not new.
    #[derive(Default)]
    struct Fake {
        seen: std::sync::Mutex<std::collections::HashSet<String>>,
        n: AtomicU64,
    }

    fn reply(fake: &Fake, code: &str) -> (axum::http::StatusCode, Json<Value>) {
        let uid = code.split_once('.').map_or(code, |(u, _)| u).to_owned();
        let is_new = fake.seen.lock().map(|mut s| s.insert(uid)).unwrap_or(false);
        let n = fake.n.fetch_add(1, Relaxed);
        if n % 3 == 2 {
            let id = if is_new { "new" } else { "old" };
            let body = json!({"job_id": id, "status_url": format!("/auth/jobs/{id}")});
            return (axum::http::StatusCode::ACCEPTED, Json(body));
        }
        let status = if is_new { 201 } else { 200 };
        let status = axum::http::StatusCode::from_u16(status).unwrap_or_default();
        (
            status,
            Json(json!({"token": "t", "is_new": is_new, "user": {"id": 1}})),
        )
    }

    async fn fake_service() -> anyhow::Result<String> {
        let app = axum::Router::new()
            .route(
                "/auth/o/{provider}/",
                get(
                    |Path(p): Path<String>, Query(q): Query<HashMap<String, String>>| async move {
                        if p != "stub" {
                            let body = json!({"provider": ["Invalid provider"]});
                            return (axum::http::StatusCode::BAD_REQUEST, Json(body));
                        }
                        let r = q.get("redirect_uri").cloned().unwrap_or_default();
                        let url = format!("http://idp/{p}?redirect_uri={r}&state=st%2F{p}");
                        (
                            axum::http::StatusCode::OK,
                            Json(json!({ "authorization_url": url })),
                        )
                    },
                )
                .post(
                    |State(f): State<Arc<Fake>>, Json(b): Json<Value>| async move {
                        assert_eq!(b["state"], "st/stub");
                        reply(&f, b["code"].as_str().unwrap_or_default())
                    },
                ),
            )
            .route(
                "/social-auth",
                axum::routing::post(
                    |State(f): State<Arc<Fake>>, Json(b): Json<Value>| async move {
                        assert_eq!(b["provider"], "stub");
                        assert_eq!(b["redirect_uri"], "http://127.0.0.1:9/cb");
                        reply(&f, b["code"].as_str().unwrap_or_default())
                    },
                ),
            )
            .route(
                "/auth/jobs/{id}",
                get(|Path(id): Path<String>| async move {
                    Json(json!({"status": "succeeded",
                        "result": {"token": "t", "is_new": id == "new"}}))
                }),
            )
            .with_state(Arc::new(Fake::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(base)
    }

    fn args(base: &str, extra: &[&str]) -> Args {
        let mut argv = vec!["loadgen", "--base-url", base, "--progress", "0s"];
        argv.extend_from_slice(extra);
        Args::parse_from(argv)
    }

    #[tokio::test]
    async fn both_flows_count_logins_polls_and_new_users() -> anyhow::Result<()> {
        let base = fake_service().await?;
        for flow in ["djoser", "social-auth"] {
            let flags = ["--flow", flow, "--mode", "mixed", "--users", "10"];
            let more = ["--count", "60", "--warmup", "0s", "--concurrency", "4"];
            let r = run(args(&base, &[&flags[..], &more[..]].concat())).await?;
            let pool = r.pool_signup.expect("pool signup");
            assert_eq!((pool.completed, pool.errors_total), (10, 0), "{flow}");
            assert_eq!(pool.is_new.yes, 10);
            let m = r.measured;
            assert_eq!(
                (m.completed, m.errors_total),
                (60, 0),
                "{flow}: {:?}",
                m.errors
            );
            assert_eq!(m.is_new.unexpected, 0, "{flow}");
            assert_eq!(m.is_new.yes + m.is_new.no, 60);
            assert_eq!(m.accepted_then_polled, 20, "{flow}");
            assert_eq!(m.statuses.get("202"), Some(&20));
            let per_login = if flow == "djoser" { 2 } else { 1 };
            assert_eq!(m.http_requests, 60 * per_login + 20);
            assert_eq!(r.uid_prefix >> 48, 0);
            assert_eq!(r.flow, flow);
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_duration_run_stops_by_itself_and_errors_are_kinds() -> anyhow::Result<()> {
        let base = fake_service().await?;
        let r = run(args(
            &base,
            &[
                "--provider",
                "nosuch",
                "--duration",
                "300ms",
                "--warmup",
                "0s",
            ],
        ))
        .await?;
        assert_eq!(r.measured.completed, 0);
        assert!(r.measured.errors_total > 0);
        let kinds: Vec<_> = r.measured.errors.keys().collect();
        assert_eq!(kinds, ["begin http 400 provider=Invalid provider"]);
        assert!(r.measured.duration_s < 2.0);
        Ok(())
    }

    #[tokio::test]
    async fn a_remote_base_url_is_refused() {
        let r = run(args("http://192.0.2.1:8000", &["--count", "1"])).await;
        assert!(r.is_err());
    }
}
