//! Faults of real parts during a signup burst with a refresh campaign
//! running: a worker killed, the broker and the database cut off (every
//! connection reset, new ones refused), an api instance killed. After each,
//! every login answered 2xx or 202 has completed, each identity is one
//! user, the queues are empty and the campaign's counts are exact.
//!
//! Each test prints a `FAULT …` line with its figures (logins in flight,
//! answered, lost, duplicated, time to recover); `docs/RELIABILITY.md`
//! keeps the last run's.

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use socialauth_tests::browser::Callback;
use socialauth_tests::stack::{Mode, amqp_url};
use socialauth_tests::world::{World, send};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const ADMIN_KEY: &str = "fault-admin-key-for-tests";
/// New users logging in during the burst.
const BURST: usize = 300;
/// Users signed in before it, whose tokens the campaign refreshes.
const MEMBERS: usize = 40;
/// Logins in flight at once.
const IN_FLIGHT: usize = 24;

async fn world(more_apis: usize, reply_timeout_ms: u64) -> anyhow::Result<World> {
    let mut w = World::start_with_idp(
        Mode::Production,
        |idp| {
            idp.ttl.insert("AccessToken".into(), 3600);
            idp.ttl.insert("AuthorizationCode".into(), 600);
            for (prefix, count) in [("member", MEMBERS), ("new", BURST)] {
                for i in 0..count {
                    let name = format!("{prefix}{i}");
                    let email = format!("{name}@example.test");
                    idp.users.push(socialauth_tests::idp::IdpUser::new(
                        &name,
                        Some(&email),
                        true,
                        "Fault",
                        &i.to_string(),
                    ));
                }
            }
        },
        |o| {
            o.gated = true;
            // Logins that outlast this are answered 202 and polled.
            o.reply_timeout_ms = reply_timeout_ms;
            o.security_toml = format!(
                "admin_key = \"{ADMIN_KEY}\"\n\n[refresh]\nlease_secs = 10\nschedule_window_secs = 0\ncampaign_stall_secs = 15\n"
            );
            o.providers_toml = o.providers_toml.replacen(
                "[providers.corp]\n",
                "[providers.corp]\nscopes = [\"openid\", \"email\", \"profile\", \"offline_access\"]\n\
                 authorize_params = { prompt = \"consent\" }\n",
                1,
            );
        },
    )
    .await?;
    for _ in 0..more_apis {
        w.stack.start_api().await?;
    }
    // The provider's discovery document, fetched once and kept, before any
    // short reply timeout applies to it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = w
            .begin("corp", Some(socialauth_tests::world::REDIRECT_URI))
            .await;
        if status == StatusCode::OK {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "begin: {status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(w)
}

/// What one login of the burst was answered.
#[derive(Debug, Clone)]
struct Answer {
    user: String,
    /// `None`: no HTTP answer (the connection failed).
    status: Option<StatusCode>,
    body: Value,
    /// The api it was sent to.
    api: String,
    sent_at: Instant,
    took: Duration,
}

impl Answer {
    fn accepted(&self) -> bool {
        matches!(
            self.status,
            Some(StatusCode::OK | StatusCode::CREATED | StatusCode::ACCEPTED)
        )
    }
}

/// Signs the members in and starts a campaign over their links, slow
/// enough to be running through the fault.
async fn members_and_campaign(w: &World) -> anyhow::Result<String> {
    members_and_campaign_at(w, 4).await
}

async fn members_and_campaign_at(w: &World, rate: u32) -> anyhow::Result<String> {
    sign_in_members(w).await?;
    start_campaign(w, rate).await
}

async fn sign_in_members(w: &World) -> anyhow::Result<()> {
    let signed: Vec<anyhow::Result<()>> =
        futures_util::stream::iter((0..MEMBERS).map(|i| async move {
            let (status, body) = w.login("corp", &format!("member{i}")).await?;
            anyhow::ensure!(status.is_success(), "sign in: {status} {body}");
            if status == StatusCode::ACCEPTED {
                let id = body["job_id"].as_str().unwrap_or_default();
                let done = socialauth_tests::stack::poll_json(
                    &w.http,
                    &w.stack.url(&format!("/auth/jobs/{id}")),
                    Duration::from_secs(60),
                    |b| b["status"] != "pending",
                )
                .await?;
                anyhow::ensure!(done["status"] == "succeeded", "sign in: {done}");
            }
            Ok(())
        }))
        .buffer_unordered(8)
        .collect()
        .await;
    signed.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    Ok(())
}

async fn start_campaign(w: &World, rate: u32) -> anyhow::Result<String> {
    let (status, body) = admin(
        w,
        reqwest::Method::POST,
        "/admin/refresh-campaigns",
        Some(json!({"provider": "corp", "expiring_within_seconds": 3600, "rate_per_second": rate})),
    )
    .await;
    anyhow::ensure!(status == StatusCode::ACCEPTED, "campaign: {status} {body}");
    Ok(body["id"].as_str().unwrap_or_default().to_owned())
}

/// Waits until the campaign has handled an account (its page is running).
async fn campaign_under_way(w: &World, id: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, c) = admin(
            w,
            reqwest::Method::GET,
            &format!("/admin/refresh-campaigns/{id}"),
            None,
        )
        .await;
        if c["refreshed"].as_i64().unwrap_or_default() > 0 {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "campaign never started: {c}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each new user's way back from the IdP, gathered before the burst.
async fn callbacks(w: &World) -> anyhow::Result<Vec<(String, Callback)>> {
    let gathered: Vec<anyhow::Result<(String, Callback)>> =
        futures_util::stream::iter((0..BURST).map(|i| async move {
            let user = format!("new{i}");
            let cb = w.callback("corp", &user).await?;
            Ok((user, cb))
        }))
        .buffer_unordered(16)
        .collect()
        .await;
    gathered.into_iter().collect()
}

/// Sends the burst, round robin over `apis`; `answered` counts answers as
/// they come.
async fn burst(
    apis: Vec<String>,
    callbacks: Vec<(String, Callback)>,
    answered: Arc<AtomicUsize>,
) -> Vec<Answer> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap_or_default();
    futures_util::stream::iter(callbacks.into_iter().enumerate().map(|(i, (user, cb))| {
        let api = apis[i % apis.len()].clone();
        let http = http.clone();
        let answered = answered.clone();
        async move {
            let started = Instant::now();
            let request = http.post(format!("{api}/auth/o/corp/")).json(&json!({
                "code": cb.code.unwrap_or_default(),
                "state": cb.state.unwrap_or_default(),
            }));
            let (status, body) = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
                    (Some(status), body)
                }
                Err(e) => (None, Value::String(e.to_string())),
            };
            answered.fetch_add(1, Ordering::Relaxed);
            Answer {
                user,
                status,
                body,
                api,
                sent_at: started,
                took: started.elapsed(),
            }
        }
    }))
    .buffer_unordered(IN_FLIGHT)
    .collect()
    .await
}

/// Sends again, once the part is back, each login refused with 503
/// during the fault (the same code and state, as a client retrying does);
/// returns the answers with those replaced by the new ones.
async fn resend_refused(
    api: &str,
    answers: Vec<Answer>,
    callbacks: &[(String, Callback)],
) -> (Vec<Answer>, usize) {
    let (again, kept): (Vec<Answer>, Vec<Answer>) = answers
        .into_iter()
        .partition(|a| a.status == Some(StatusCode::SERVICE_UNAVAILABLE));
    let resent = again.len();
    let chosen: Vec<(String, Callback)> = callbacks
        .iter()
        .filter(|(user, _)| again.iter().any(|a| &a.user == user))
        .cloned()
        .collect();
    let mut answers = kept;
    answers.extend(burst(vec![api.to_owned()], chosen, Arc::new(AtomicUsize::new(0))).await);
    (answers, resent)
}

/// Waits until `n` logins of the burst were answered.
async fn after_answers(answered: &AtomicUsize, n: usize) {
    while answered.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn admin(
    w: &World,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = w
        .http
        .request(method, w.stack.url(path))
        .header("Authorization", format!("Bearer {ADMIN_KEY}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    send(request).await
}

/// What the checks after a fault found, for the `FAULT` line.
struct Figures {
    sent: usize,
    accepted: usize,
    polled: usize,
    refused: usize,
    /// Answered 202, then failed.
    lost: usize,
    recovered_in: Option<Duration>,
}

/// The checks every fault ends with: every accepted login completed (a
/// 202 polled to its end through `poll_api`), one user per identity, no
/// duplicate, the queues drained, the campaign's counts exact.
async fn settle(
    w: &World,
    answers: &[Answer],
    poll_api: &str,
    campaign: &str,
    may_lose: bool,
) -> anyhow::Result<Figures> {
    let mut users = std::collections::BTreeMap::new();
    let mut polled = 0;
    let mut lost = 0;
    for a in answers.iter().filter(|a| a.accepted()) {
        let body = if a.status == Some(StatusCode::ACCEPTED) {
            polled += 1;
            let id = a.body["job_id"].as_str().unwrap_or_default();
            let body = socialauth_tests::stack::poll_json(
                &w.http,
                &format!("{poll_api}/auth/jobs/{id}"),
                Duration::from_secs(90),
                |b| b["status"] != "pending",
            )
            .await
            .map_err(|e| {
                anyhow::anyhow!("{} (sent to {}): {e}\n{}", a.user, a.api, w.stack.logs())
            })?;
            if may_lose
                && body["status"] == "failed"
                && body["error"] == json!({"non_field_errors": ["invalid_credentials"]})
            {
                lost += 1;
                let _ = std::fs::write(
                    std::env::temp_dir().join(format!("fault-lost-{id}.log")),
                    w.stack.logs(),
                );
                continue;
            }
            if body["status"] != "succeeded" {
                let _ = std::fs::write(
                    std::env::temp_dir().join(format!("fault-{id}.log")),
                    w.stack.logs(),
                );
            }
            anyhow::ensure!(
                body["status"] == "succeeded",
                "{} was accepted (202, job {id}) but ended {body}; its log lines:\n{}",
                a.user,
                w.stack
                    .logs()
                    .lines()
                    .filter(|l| l.contains(id) || l.contains("---"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            body["result"].clone()
        } else {
            a.body.clone()
        };
        let id = body["user"]["id"].as_i64();
        anyhow::ensure!(
            id.is_some() && body["token"].is_string(),
            "{} was accepted ({:?}) but did not complete: {body}\n{}",
            a.user,
            a.status,
            w.stack.logs()
        );
        anyhow::ensure!(
            users.insert(a.user.clone(), id).is_none(),
            "{} answered twice",
            a.user
        );
    }
    let accepted = users.len();
    let distinct: std::collections::BTreeSet<_> = users.values().collect();
    anyhow::ensure!(
        distinct.len() == accepted,
        "two logins got one user: {users:?}"
    );

    // Refused logins get a clear error, never a 500, and are whole again
    // after the fault: sent again (the same code and state), they complete.
    let mut refused = 0;
    for a in answers.iter().filter(|a| !a.accepted()) {
        refused += 1;
        if let Some(status) = a.status {
            anyhow::ensure!(
                status != StatusCode::INTERNAL_SERVER_ERROR && a.body.is_object(),
                "{}: {status} {}",
                a.user,
                a.body
            );
        }
    }

    // One user per identity, nothing twice, nothing left half made.
    let db = w
        .stack
        .database
        .as_ref()
        .map(|d| d.url.clone())
        .unwrap_or_default();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db).await?;
    let (user_rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM users")
        .fetch_one(&mut conn)
        .await?;
    let (identity_rows, distinct_identities): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT (provider, uid)) FROM social_accounts")
            .fetch_one(&mut conn)
            .await?;
    anyhow::ensure!(
        user_rows == identity_rows && identity_rows == distinct_identities,
        "users {user_rows}, identities {identity_rows}, distinct {distinct_identities}"
    );
    anyhow::ensure!(
        user_rows as usize >= MEMBERS + accepted,
        "users {user_rows} < members {MEMBERS} + accepted {accepted}"
    );

    // The campaign ends with every account counted once.
    let deadline = Instant::now() + Duration::from_secs(90);
    let c = loop {
        let (_, c) = admin(
            w,
            reqwest::Method::GET,
            &format!("/admin/refresh-campaigns/{campaign}"),
            None,
        )
        .await;
        if c["status"] != "running" {
            break c;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "campaign never finished: {c}\n{}",
            w.stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    anyhow::ensure!(c["status"] == "done", "{c}");
    anyhow::ensure!(c["total"] == MEMBERS, "{c}");
    anyhow::ensure!(c["refreshed"] == MEMBERS, "{c}\n{}", w.stack.logs());
    anyhow::ensure!(c["remaining"] == 0, "{c}");

    // The queues drain; nothing went to the dead letters.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let depths = queue_depths(&w.stack.queue_prefix).await?;
        let busy: Vec<_> = depths.iter().filter(|(_, n)| *n > 0).collect();
        if busy.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let mut letters = Vec::new();
            while let Some(letter) = take_dead_letter(&w.stack.queue_prefix).await? {
                letters.push(letter);
            }
            let _ = std::fs::write(
                std::env::temp_dir().join("fault-undrained.log"),
                w.stack.logs(),
            );
            anyhow::bail!("queues not drained: {busy:?}; dead letters {letters:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(Figures {
        sent: answers.len(),
        accepted,
        polled,
        refused,
        lost,
        recovered_in: None,
    })
}

/// Messages waiting in each of the stack's queues.
async fn queue_depths(prefix: &str) -> anyhow::Result<Vec<(String, u32)>> {
    let connection =
        lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default()).await?;
    let mut depths = Vec::new();
    for name in ["login", "refresh", "campaign", "dead"] {
        let channel = connection.create_channel().await?;
        let queue = channel
            .queue_declare(
                format!("{prefix}{name}").into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await?;
        depths.push((name.to_owned(), queue.message_count()));
    }
    let _ = connection.close(200, "done".into()).await;
    Ok(depths)
}

/// The answers that were not 2xx/202, one line each.
fn refused(answers: &[Answer]) -> String {
    answers
        .iter()
        .filter(|a| !a.accepted())
        .map(|a| format!("{} → {:?} {} after {:?}", a.user, a.status, a.body, a.took))
        .collect::<Vec<_>>()
        .join("\n")
}

fn report(fault: &str, f: &Figures) {
    println!(
        "FAULT {fault}: sent {}, in flight {IN_FLIGHT}, accepted {} ({} polled), refused {}, lost {}, duplicated 0, recovered in {}",
        f.sent,
        f.accepted,
        f.polled,
        f.refused,
        f.lost,
        f.recovered_in
            .map_or("-".to_owned(), |d| format!("{} ms", d.as_millis()))
    );
}

#[tokio::test]
async fn a_worker_killed_mid_burst_ends_every_login() -> anyhow::Result<()> {
    let mut w = world(0, 3_000).await?;
    w.stack.start_worker()?;
    let campaign = members_and_campaign(&w).await?;
    let callbacks = callbacks(&w).await?;
    let answered = Arc::new(AtomicUsize::new(0));
    let apis = vec![w.stack.base_url.clone()];
    let stack = &mut w.stack;
    let fault = async {
        after_answers(&answered, BURST / 3).await;
        if let Some(worker) = stack.workers.pop() {
            worker.kill().await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        stack.start_worker()
    };
    let (answers, restarted) = tokio::join!(burst(apis, callbacks, answered.clone()), fault);
    restarted?;
    let figures = settle(&w, &answers, &w.stack.base_url, &campaign, true).await?;
    // A login whose code the killed worker had already exchanged cannot be
    // made again (a code is single-use at the provider, and what it gave
    // died with the process): it ends with the contract's 400, answered or
    // polled, never left hanging. At most the jobs the killed worker held
    // (its prefetch, 32).
    for a in answers.iter().filter(|a| !a.accepted()) {
        anyhow::ensure!(
            a.status == Some(StatusCode::BAD_REQUEST)
                && a.body == json!({"non_field_errors": ["invalid_credentials"]}),
            "{}",
            refused(&answers)
        );
    }
    anyhow::ensure!(
        figures.refused + figures.lost <= 32,
        "{}",
        refused(&answers)
    );
    report("worker SIGKILL", &figures);
    Ok(())
}

/// `/readyz` of `api`: (status, body).
async fn readyz(http: &reqwest::Client, api: &str) -> (Option<StatusCode>, Value) {
    match http
        .get(format!("{api}/readyz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(r) => {
            let status = r.status();
            (Some(status), r.json().await.unwrap_or_default())
        }
        Err(e) => (None, Value::String(e.to_string())),
    }
}

/// Waits until `/readyz` answers 200 again; how long that took.
async fn ready_again(http: &reqwest::Client, api: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        if readyz(http, api).await.0 == Some(StatusCode::OK) {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "never ready again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How long a part stays cut off.
const OUTAGE: Duration = Duration::from_secs(5);

/// What `/readyz` said of an outage.
struct Outage {
    /// How long after the cut it said so.
    noticed: Duration,
    /// How long it took to answer then.
    asked: Duration,
    /// What it answered.
    body: Value,
    /// How long after the part came back it was ready again.
    recovered: Duration,
}

/// Once a third of the burst was answered, closes `gate` for [`OUTAGE`]
/// while asking `/readyz`, then opens it and waits until ready again.
async fn cut_off(
    w: &World,
    gate: &socialauth_tests::gate::Gate,
    answered: &AtomicUsize,
) -> anyhow::Result<Outage> {
    after_answers(answered, BURST / 3).await;
    gate.close();
    let cut = Instant::now();
    let mut seen = None;
    while cut.elapsed() < OUTAGE {
        let asked = Instant::now();
        let (status, body) = readyz(&w.http, &w.stack.base_url).await;
        if status == Some(StatusCode::SERVICE_UNAVAILABLE) && seen.is_none() {
            seen = Some((cut.elapsed(), asked.elapsed(), body));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gate.open();
    let recovered = ready_again(&w.http, &w.stack.base_url).await?;
    let (noticed, asked, body) =
        seen.ok_or_else(|| anyhow::anyhow!("/readyz never said the part was down"))?;
    Ok(Outage {
        noticed,
        asked,
        body,
        recovered,
    })
}

#[tokio::test]
async fn the_broker_cut_off_mid_burst_loses_nothing() -> anyhow::Result<()> {
    let w = world(0, 3_000).await?;
    let campaign = members_and_campaign(&w).await?;
    let callbacks = callbacks(&w).await?;
    let answered = Arc::new(AtomicUsize::new(0));
    let apis = vec![w.stack.base_url.clone()];
    let gate = w.stack.queue_gate.as_ref().expect("gated");
    let (answers, outage) = tokio::join!(
        burst(apis, callbacks.clone(), answered.clone()),
        cut_off(&w, gate, &answered)
    );
    let Outage {
        noticed,
        asked,
        body,
        recovered,
    } = outage?;
    anyhow::ensure!(body["queue"] == "unavailable", "{body}");
    anyhow::ensure!(asked < Duration::from_secs(3), "/readyz took {asked:?}");
    // Refused while the broker was away: 503 with the contract's body,
    // quickly.
    let mut slowest = Duration::ZERO;
    for a in answers.iter().filter(|a| !a.accepted()) {
        anyhow::ensure!(
            a.status == Some(StatusCode::SERVICE_UNAVAILABLE) && a.body["detail"].is_string(),
            "{}",
            refused(&answers)
        );
        slowest = slowest.max(a.took);
    }
    anyhow::ensure!(slowest < Duration::from_secs(12), "{}", refused(&answers));
    // Sent again now (the same code and state), each completes: a job that
    // never reached the broker gave its state back. Only one whose publish
    // the broker's going away left unconfirmed — perhaps queued, perhaps
    // not — keeps its state; sent again, it waits for that first job and
    // ends with the contract's 400 if it never ran.
    let (answers, resent) = resend_refused(&w.stack.base_url, answers, &callbacks).await;
    let mut figures = settle(&w, &answers, &w.stack.base_url, &campaign, true).await?;
    for a in answers.iter().filter(|a| !a.accepted()) {
        anyhow::ensure!(
            a.status == Some(StatusCode::BAD_REQUEST)
                && a.body == json!({"non_field_errors": ["invalid_credentials"]}),
            "{}",
            refused(&answers)
        );
    }
    let unconfirmed = figures.refused + figures.lost;
    anyhow::ensure!(unconfirmed <= IN_FLIGHT, "{}", refused(&answers));
    anyhow::ensure!(
        resent > unconfirmed,
        "no refused login completed when sent again ({resent} sent again)"
    );
    figures.lost = unconfirmed;
    figures.refused = resent;
    figures.recovered_in = Some(recovered);
    println!(
        "FAULT broker cut off: {resent} refused logins sent again after; {} completed, {unconfirmed} whose publish was left unconfirmed at the cut did not",
        resent - unconfirmed
    );
    println!(
        "FAULT broker cut off: the slowest 503 took {} ms",
        slowest.as_millis()
    );
    report("broker cut off", &figures);
    println!(
        "FAULT broker cut off: /readyz said so {} ms after the cut",
        noticed.as_millis()
    );
    Ok(())
}

#[tokio::test]
async fn the_database_cut_off_mid_burst_loses_nothing() -> anyhow::Result<()> {
    let w = world(0, 3_000).await?;
    let campaign = members_and_campaign(&w).await?;
    let callbacks = callbacks(&w).await?;
    let answered = Arc::new(AtomicUsize::new(0));
    let apis = vec![w.stack.base_url.clone()];
    let gate = w.stack.database_gate.as_ref().expect("gated");
    let (answers, outage) = tokio::join!(
        burst(apis, callbacks.clone(), answered.clone()),
        cut_off(&w, gate, &answered)
    );
    let Outage {
        noticed,
        asked,
        body,
        recovered,
    } = outage?;
    anyhow::ensure!(body["store"] == "unavailable", "{body}");
    anyhow::ensure!(asked < Duration::from_secs(3), "/readyz took {asked:?}");
    for a in answers.iter().filter(|a| !a.accepted()) {
        if !(a.status == Some(StatusCode::SERVICE_UNAVAILABLE) && a.body["detail"].is_string()) {
            let tail: Vec<String> = w
                .idp
                .stderr()
                .lines()
                .rev()
                .take(40)
                .map(str::to_owned)
                .collect();
            let _ = std::fs::write(
                std::env::temp_dir().join("fault-db-refused.log"),
                w.stack.logs(),
            );
            anyhow::bail!(
                "{}\nthe IdP's last lines:\n{}",
                refused(&answers),
                tail.join("\n")
            );
        }
    }
    // Sent again, each completes — but one whose state was taken by a
    // write whose answer the cut lost (done or not, the api cannot tell):
    // sent again, it waits for a job that never ran and ends with the
    // contract's 400.
    let (answers, resent) = resend_refused(&w.stack.base_url, answers, &callbacks).await;
    let mut figures = settle(&w, &answers, &w.stack.base_url, &campaign, true).await?;
    for a in answers.iter().filter(|a| !a.accepted()) {
        anyhow::ensure!(
            a.status == Some(StatusCode::BAD_REQUEST)
                && a.body == json!({"non_field_errors": ["invalid_credentials"]}),
            "{}",
            refused(&answers)
        );
    }
    let unknown = figures.refused + figures.lost;
    anyhow::ensure!(unknown <= IN_FLIGHT, "{}", refused(&answers));
    // (Logins that came while it was away mostly waited for it: the api
    // waits up to 10 s to take a state.)
    anyhow::ensure!(
        resent == 0 || resent > unknown,
        "no refused login completed when sent again ({resent} sent again)"
    );
    let slowest = answers.iter().map(|a| a.took).max().unwrap_or_default();
    println!(
        "FAULT database cut off: the slowest login took {} ms",
        slowest.as_millis()
    );
    figures.lost = unknown;
    figures.refused = resent;
    figures.recovered_in = Some(recovered);
    report("database cut off", &figures);
    println!(
        "FAULT database cut off: {resent} refused logins sent again after; {} completed, {unknown} whose state was taken by a write the cut left unanswered did not",
        resent - unknown
    );
    println!(
        "FAULT database cut off: /readyz said so {} ms after the cut",
        noticed.as_millis()
    );
    Ok(())
}

#[tokio::test]
async fn an_api_killed_mid_burst_leaves_its_jobs_to_the_other() -> anyhow::Result<()> {
    // Two apis, three workers; answers after 150 ms are 202s to poll.
    let mut w = world(1, 150).await?;
    w.stack.start_worker()?;
    w.stack.start_worker()?;
    let campaign = members_and_campaign(&w).await?;
    let callbacks = callbacks(&w).await?;
    let answered = Arc::new(AtomicUsize::new(0));
    let (victim, victim_url) = w.stack.more_apis.pop().expect("a second api");
    let apis = vec![w.stack.base_url.clone(), victim_url.clone()];
    let fault = async {
        after_answers(&answered, BURST / 3).await;
        victim.kill().await;
    };
    let (answers, ()) = tokio::join!(burst(apis, callbacks, answered.clone()), fault);
    let figures = settle(&w, &answers, &w.stack.base_url, &campaign, false).await?;
    let from_victim = answers
        .iter()
        .filter(|a| a.api == victim_url && a.status == Some(StatusCode::ACCEPTED))
        .count();
    anyhow::ensure!(from_victim > 0, "the killed api answered no 202");
    // What the killed api never answered got no answer at all.
    for a in answers.iter().filter(|a| !a.accepted()) {
        anyhow::ensure!(
            a.api == victim_url && a.status.is_none(),
            "{}",
            refused(&answers)
        );
    }
    report("api SIGKILL", &figures);
    println!(
        "FAULT api SIGKILL: {from_victim} jobs accepted by the killed api, polled through the other"
    );
    Ok(())
}

/// A job that takes down every worker it reaches (here: a worker killed
/// each time it holds the job, which waits on a provider that never
/// answers) is dead-lettered, with the reason, once it came back more
/// than `[queue] delivery_limit` times — it does not go round forever.
#[tokio::test]
async fn a_job_that_keeps_killing_workers_is_dead_lettered() -> anyhow::Result<()> {
    // A token endpoint that takes connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let silent_port = silent.local_addr()?.port();
    let held = Arc::new(AtomicUsize::new(0));
    let holder = tokio::spawn({
        let held = held.clone();
        async move {
            let mut kept = Vec::new();
            while let Ok((conn, _)) = silent.accept().await {
                held.fetch_add(1, Ordering::Relaxed);
                kept.push(conn);
            }
        }
    });
    let mut w = World::start_with(Mode::Production, |o| {
        o.start_worker = false;
        o.providers_toml.push_str(&format!(
            "\n[providers.silent]\nprotocol = \"oauth2\"\n\
             authorize_url = \"http://127.0.0.1:{silent_port}/authorize\"\n\
             token_url = \"http://127.0.0.1:{silent_port}/token\"\n\
             userinfo_url = \"http://127.0.0.1:{silent_port}/me\"\n\
             client_id = \"app\"\nclient_secret = \"app-secret\"\n"
        ));
        o.queue_toml = "delivery_limit = 3\n".into();
    })
    .await?;
    let job = socialauth_common::jobs::JobEnvelope::new(
        socialauth_common::jobs::Job::Login(socialauth_common::jobs::LoginJob {
            provider: socialauth_common::types::ProviderName::parse("silent")
                .expect("a provider name"),
            credential: socialauth_common::jobs::LoginCredential::AuthorizationCode {
                code: socialauth_common::secret::Secret::new("poison-code".into()),
                redirect_uri: socialauth_tests::world::REDIRECT_URI.into(),
                pkce_verifier: None,
                nonce: None,
                state_consumed: true,
            },
            email: None,
            referral_code: None,
        }),
        None,
    );
    publish(&w.stack.queue_prefix, "login", &job.to_json()).await?;
    // The first delivery and three redeliveries each kill their worker.
    for round in 1..=4 {
        w.stack.start_worker()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while held.load(Ordering::Relaxed) < round {
            anyhow::ensure!(
                Instant::now() < deadline,
                "round {round}: no worker took the job\n{}",
                w.stack.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        w.stack.stop_workers().await;
    }
    // The fifth worker does not run it: it goes to the dead letters.
    w.stack.start_worker()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let letter = loop {
        if let Some(letter) = take_dead_letter(&w.stack.queue_prefix).await? {
            break letter;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "never dead-lettered\n{}",
            w.stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    anyhow::ensure!(letter["reason"] == "delivery_limit", "{letter}");
    anyhow::ensure!(letter["id"] == job.id.to_string(), "{letter}");
    anyhow::ensure!(!letter.to_string().contains("poison-code"), "{letter}");
    anyhow::ensure!(
        held.load(Ordering::Relaxed) == 4,
        "the provider was called again"
    );
    // A poll finds it failed; nothing is left in the queues.
    let store = w.stack.store().await?;
    let record = store.find_job(job.id).await?.expect("its outcome is kept");
    anyhow::ensure!(
        record.status == socialauth_common::store::JobStatus::Failed,
        "{:?}",
        record.status
    );
    let depths = queue_depths(&w.stack.queue_prefix).await?;
    anyhow::ensure!(depths.iter().all(|(_, n)| *n == 0), "{depths:?}");
    holder.abort();
    Ok(())
}

/// Publishes `body` to the stack's queue `name` as the api does.
async fn publish(prefix: &str, name: &str, body: &[u8]) -> anyhow::Result<()> {
    let connection =
        lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(lapin::options::ConfirmSelectOptions::default())
        .await?;
    channel
        .basic_publish(
            format!("{prefix}socialauth").into(),
            format!("{prefix}{name}").into(),
            lapin::options::BasicPublishOptions::default(),
            body,
            lapin::BasicProperties::default().with_delivery_mode(2),
        )
        .await?
        .await?;
    let _ = connection.close(200, "done".into()).await;
    Ok(())
}

/// Takes one message off the stack's `dead` queue, if there is one.
async fn take_dead_letter(prefix: &str) -> anyhow::Result<Option<Value>> {
    let connection =
        lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let got = channel
        .basic_get(
            format!("{prefix}dead").into(),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await?;
    let _ = connection.close(200, "done".into()).await;
    Ok(match got {
        Some(message) => Some(serde_json::from_slice(&message.delivery.data)?),
        None => None,
    })
}

#[tokio::test]
async fn a_worker_stopped_with_sigterm_mid_burst_finishes_its_jobs() -> anyhow::Result<()> {
    let mut w = world(0, 3_000).await?;
    // The campaign's page is taken by the first worker, the one stopped: a
    // second one starts once the page is under way (40 accounts at 2/s).
    sign_in_members(&w).await?;
    let callbacks = callbacks(&w).await?;
    let campaign = start_campaign(&w, 2).await?;
    campaign_under_way(&w, &campaign).await?;
    w.stack.start_worker()?;
    let answered = Arc::new(AtomicUsize::new(0));
    let apis = vec![w.stack.base_url.clone()];
    let mut victim = w.stack.workers.remove(0);
    let w_ref = &w;
    let campaign_ref = &campaign;
    let fault = async {
        after_answers(&answered, BURST / 3).await;
        let (_, c) = admin(
            w_ref,
            reqwest::Method::GET,
            &format!("/admin/refresh-campaigns/{campaign_ref}"),
            None,
        )
        .await;
        anyhow::ensure!(
            c["remaining"].as_i64().unwrap_or_default() > 0,
            "the campaign ended before the stop: {c}"
        );
        victim.terminate()?;
        let asked = Instant::now();
        let status = victim.wait_exit(Duration::from_secs(40)).await;
        anyhow::Ok((status, asked.elapsed()))
    };
    let (answers, stopped) = tokio::join!(burst(apis, callbacks, answered.clone()), fault);
    let (status, took) = stopped?;
    let log = victim.output();
    anyhow::ensure!(
        status.is_some_and(|s| s.success()),
        "the worker did not exit cleanly ({status:?}):\n{log}"
    );
    anyhow::ensure!(log.contains("worker exits"), "{log}");
    anyhow::ensure!(
        log.contains("campaign page left to another worker"),
        "the campaign's page was not handed back:\n{log}"
    );
    // Nothing lost: every job it held was finished (a campaign page goes
    // back to the queue and another worker finishes it).
    let figures = settle(&w, &answers, &w.stack.base_url, &campaign, false).await?;
    anyhow::ensure!(figures.refused == 0, "{}", refused(&answers));
    report("worker SIGTERM", &figures);
    println!("FAULT worker SIGTERM: exited in {} ms", took.as_millis());
    Ok(())
}

#[tokio::test]
async fn an_api_stopped_with_sigterm_mid_burst_answers_what_it_took() -> anyhow::Result<()> {
    let mut w = world(1, 3_000).await?;
    let campaign = members_and_campaign(&w).await?;
    let callbacks = callbacks(&w).await?;
    let answered = Arc::new(AtomicUsize::new(0));
    let (mut victim, victim_url) = w.stack.more_apis.pop().expect("a second api");
    let apis = vec![w.stack.base_url.clone(), victim_url.clone()];
    let fault = async {
        after_answers(&answered, BURST / 3).await;
        victim.terminate()?;
        let asked = Instant::now();
        let status = victim.wait_exit(Duration::from_secs(20)).await;
        anyhow::Ok((status, asked, asked.elapsed()))
    };
    let (answers, stopped) = tokio::join!(burst(apis, callbacks, answered.clone()), fault);
    let (status, terminated_at, took) = stopped?;
    // Every request it had taken was answered: sent well before the
    // signal, never without an answer; some were still in flight then.
    let to_victim: Vec<&Answer> = answers.iter().filter(|a| a.api == victim_url).collect();
    let taken_before = |a: &&&Answer| a.sent_at + Duration::from_millis(50) < terminated_at;
    for a in to_victim.iter().filter(taken_before) {
        anyhow::ensure!(
            a.status.is_some(),
            "{} was sent {:?} before the signal and got no answer: {}",
            a.user,
            terminated_at - a.sent_at,
            a.body
        );
    }
    let in_flight = to_victim
        .iter()
        .filter(|a| a.status.is_some())
        .filter(|a| a.sent_at < terminated_at && a.sent_at + a.took > terminated_at)
        .count();
    anyhow::ensure!(in_flight > 0, "no request was in flight at the signal");
    anyhow::ensure!(
        status.is_some_and(|s| s.success()),
        "the api did not exit cleanly ({status:?}):\n{}",
        victim.output()
    );
    let figures = settle(&w, &answers, &w.stack.base_url, &campaign, false).await?;
    // What it took it answered; after, its port is closed: no answer at
    // all, never a 5xx.
    for a in answers.iter().filter(|a| !a.accepted()) {
        anyhow::ensure!(
            a.api == victim_url && a.status.is_none(),
            "{}",
            refused(&answers)
        );
    }
    report("api SIGTERM", &figures);
    println!(
        "FAULT api SIGTERM: exited in {} ms; {in_flight} requests in flight at the signal, each answered",
        took.as_millis()
    );
    Ok(())
}
