//! Refresh campaigns (`/admin/refresh-campaigns`) against the real
//! oidc-provider issuing refresh tokens, in production mode (a worker is
//! killed mid-campaign and another started) and in the embedded default
//! (the process is killed and started again).

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use socialauth_tests::stack::Mode;
use socialauth_tests::world::{World, send};
use std::time::{Duration, Instant};

socialauth_tests::in_both_modes!(
    a_campaign_counts_every_account_once_through_a_cancel_and_a_kill,
    campaign_requests_are_checked_and_need_the_admin_key,
);

const ADMIN_KEY: &str = "campaign-admin-key-for-tests";
const USERS: usize = 240;

async fn world(mode: Mode) -> anyhow::Result<World> {
    World::start_with_idp(
        mode,
        |idp| {
            idp.ttl.insert("AccessToken".into(), 3600);
            for i in 0..USERS {
                let name = format!("member{i}");
                let email = format!("{name}@example.test");
                idp.users.push(socialauth_tests::idp::IdpUser::new(
                    &name,
                    Some(&email),
                    true,
                    "Member",
                    &i.to_string(),
                ));
            }
        },
        |o| {
            // Short leases: after a kill, what the dead process held is
            // taken again within seconds.
            o.security_toml = format!(
                "admin_key = \"{ADMIN_KEY}\"\n\n[refresh]\nlease_secs = 3\nschedule_window_secs = 0\n"
            );
            o.providers_toml = o.providers_toml.replacen(
                "[providers.corp]\n",
                "[providers.corp]\nscopes = [\"openid\", \"email\", \"profile\", \"offline_access\"]\n\
                 authorize_params = { prompt = \"consent\" }\n",
                1,
            );
        },
    )
    .await
}

/// A signed-in user of `corp`: app token, user id, link id.
struct Member {
    token: String,
    user_id: i64,
    link: i64,
}

async fn sign_in(w: &World, user: String) -> anyhow::Result<Member> {
    let (status, body) = w.login("corp", &user).await?;
    anyhow::ensure!(status.is_success(), "sign in: {status} {body}");
    let token = body["token"].as_str().unwrap_or_default().to_owned();
    let user_id = body["user"]["id"].as_i64().unwrap_or_default();
    let (_, links) = w.get_auth("/auth/social-accounts/", "Token", &token).await;
    let link = links[0]["id"].as_i64().unwrap_or_default();
    Ok(Member {
        token,
        user_id,
        link,
    })
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

async fn campaign(w: &World, id: &str) -> Value {
    let (status, body) = admin(
        w,
        reqwest::Method::GET,
        &format!("/admin/refresh-campaigns/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn handled(c: &Value) -> i64 {
    ["refreshed", "failed", "needs_reauth", "skipped"]
        .iter()
        .map(|k| c[*k].as_i64().unwrap_or_default())
        .sum()
}

/// Polls the campaign until `done` holds of it (at most a minute).
async fn wait_for(w: &World, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = campaign(w, id).await;
        if done(&c) {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "campaign never {what}: {c}\n{}",
            w.stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_campaign_counts_every_account_once_through_a_cancel_and_a_kill(
    mode: Mode,
) -> anyhow::Result<()> {
    let mut w = world(mode).await?;
    let members: Vec<anyhow::Result<Member>> =
        futures_util::stream::iter((0..USERS).map(|i| sign_in(&w, format!("member{i}"))))
            .buffer_unordered(8)
            .collect()
            .await;
    let mut members = members.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    members.sort_by_key(|m| m.link);
    // Campaigns go through accounts in id order: ten revoked grants come
    // first, ten in the middle.
    let revoked: Vec<&Member> = members[..10].iter().chain(&members[120..130]).collect();
    for m in &revoked {
        let (_, refresh_token) = w.stored_tokens(m.user_id, m.link).await?;
        w.revoke_at_idp(&refresh_token.unwrap_or_default()).await?;
    }
    let (before, _) = w
        .stored_tokens(members[200].user_id, members[200].link)
        .await?;

    // A slow campaign, cancelled once it has done some.
    let (status, first) = admin(
        &w,
        reqwest::Method::POST,
        "/admin/refresh-campaigns",
        Some(json!({"expiring_within_seconds": 3600, "rate_per_second": 30})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}\n{}", w.stack.logs());
    assert_eq!(first["status"], "running");
    let id = first["id"].as_str().unwrap_or_default().to_owned();
    wait_for(&w, &id, "handled 30 accounts", |c| handled(c) >= 30).await;
    let (status, cancelled) = admin(
        &w,
        reqwest::Method::DELETE,
        &format!("/admin/refresh-campaigns/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    // Refreshes in flight at the cancel finish; then nothing moves.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let one = campaign(&w, &id).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let c1 = campaign(&w, &id).await;
    assert_eq!(one, c1, "a cancelled campaign went on");
    assert_eq!(c1["total"], USERS, "{c1}");
    assert_eq!(c1["planned"], true);
    assert_eq!(c1["failed"], 0, "{c1}");
    assert_eq!(c1["skipped"], 0, "{c1}");
    let done1 = handled(&c1);
    assert!((30..USERS as i64).contains(&done1), "{c1}");
    assert_eq!(c1["remaining"].as_i64(), Some(USERS as i64 - done1));
    assert_eq!(c1["needs_reauth"], 10, "the first ten were revoked: {c1}");
    // Cancelling again answers the same.
    let (status, again) = admin(
        &w,
        reqwest::Method::DELETE,
        &format!("/admin/refresh-campaigns/{id}"),
        None,
    )
    .await;
    assert_eq!(
        (status, &again["status"]),
        (StatusCode::OK, &json!("cancelled"))
    );

    // A second campaign; once planned, ten accounts near its end are
    // refreshed by their users (so the campaign has nothing to do for
    // them), and mid-way the process doing the work is killed.
    let (status, second) = admin(
        &w,
        reqwest::Method::POST,
        "/admin/refresh-campaigns",
        Some(json!({"provider": "corp", "expiring_within_seconds": 3600, "rate_per_second": 40})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{second}");
    let id2 = second["id"].as_str().unwrap_or_default().to_owned();
    wait_for(&w, &id2, "planned", |c| c["planned"] == true).await;
    for m in &members[USERS - 10..] {
        let (status, body) = send(
            w.http
                .post(
                    w.stack
                        .url(&format!("/auth/social-accounts/{}/refresh", m.link)),
                )
                .header("Authorization", format!("Token {}", m.token)),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    wait_for(&w, &id2, "handled 60 accounts", |c| handled(c) >= 60).await;
    match mode {
        Mode::Production => {
            if let Some(worker) = w.stack.workers.pop() {
                worker.kill().await;
            }
            let stalled = campaign(&w, &id2).await;
            assert_eq!(stalled["status"], "running");
            w.stack.start_worker()?;
        }
        Mode::Embedded => w.stack.restart_api().await?,
    }
    let c2 = wait_for(&w, &id2, "finished", |c| c["status"] != "running").await;
    let total = USERS as i64 - 10;
    assert_eq!(c2["status"], "done", "{c2}");
    assert_eq!(
        c2["total"], total,
        "the accounts the first campaign found revoked are left out: {c2}"
    );
    assert_eq!(c2["needs_reauth"], 10, "{c2}\n{}", w.stack.logs());
    assert_eq!(c2["skipped"], 10, "{c2}");
    assert_eq!(c2["failed"], 0, "{c2}\n{}", w.stack.logs());
    assert_eq!(c2["refreshed"], total - 20, "{c2}");
    assert_eq!(c2["remaining"], 0);
    assert!(c2["rate"].as_f64().unwrap_or_default() > 0.0);

    // The refreshed tokens are the provider's live ones; every revoked
    // grant's link waits for its user.
    let (after, _) = w
        .stored_tokens(members[200].user_id, members[200].link)
        .await?;
    assert_ne!(after, before);
    assert!(w.active_at_idp(&after).await?);
    for m in &revoked {
        let (_, links) = w
            .get_auth("/auth/social-accounts/", "Token", &m.token)
            .await;
        assert_eq!(links[0]["needs_reauth"], true, "{links}");
    }
    for m in &members[10..20] {
        let (_, links) = w
            .get_auth("/auth/social-accounts/", "Token", &m.token)
            .await;
        assert_eq!(links[0]["needs_reauth"], false, "{links}");
    }

    // The list, newest first; a finished campaign cannot be cancelled.
    let (status, list) = admin(&w, reqwest::Method::GET, "/admin/refresh-campaigns", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["results"][0]["id"], id2.as_str());
    assert_eq!(list["results"][1]["id"], id.as_str());
    let (status, body) = admin(
        &w,
        reqwest::Method::DELETE,
        &format!("/admin/refresh-campaigns/{id2}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::CONFLICT,
            json!({"non_field_errors": ["campaign_not_running"]})
        )
    );

    // The operator's command shows the same.
    let out = tokio::process::Command::new(socialauth_tests::stack::binary("socialauth-api")?)
        .args(["campaign", "--url", &w.stack.base_url, "status", &id2])
        .env_remove("SOCIALAUTH_CONFIG")
        .env("SOCIALAUTH_ADMIN_KEY", ADMIN_KEY)
        .output()
        .await?;
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shown.contains(&format!("100%  {total}/{total}")), "{shown}");
    assert!(shown.contains("done"), "{shown}");

    // Progress is in /metrics.
    let metrics = w.metrics().await?;
    let line = format!(
        "socialauth_campaign_accounts{{campaign=\"{id2}\",state=\"refreshed\"}} {}",
        total - 20
    );
    assert!(metrics.contains(&line), "no {line} in\n{metrics}");
    Ok(())
}

async fn campaign_requests_are_checked_and_need_the_admin_key(mode: Mode) -> anyhow::Result<()> {
    let w = world(mode).await?;
    let post = |body: Value| {
        admin(
            &w,
            reqwest::Method::POST,
            "/admin/refresh-campaigns",
            Some(body),
        )
    };
    let (status, body) = post(json!({})).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"expiring_within_seconds": ["This field is required."]})
        )
    );
    let (status, body) = post(json!({
        "provider": "nope",
        "expiring_within_seconds": -1,
        "rate_per_second": 0,
    }))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for field in ["provider", "expiring_within_seconds", "rate_per_second"] {
        assert!(body[field].is_array(), "{field}: {body}");
    }
    let (status, body) = post(json!({"provider": 7, "expiring_within_seconds": "soon"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["provider"].is_array() && body["expiring_within_seconds"].is_array(),
        "{body}"
    );
    // Rates too small to keep (a call a day) or not numbers.
    for rate in [json!(0.001), json!("NaN"), json!("inf"), json!([1])] {
        let (status, body) =
            post(json!({"expiring_within_seconds": 60, "rate_per_second": rate})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{rate}: {body}");
        assert_eq!(
            body,
            json!({"rate_per_second": ["A number from 0.01 to 1000000."]})
        );
    }
    // A form works as JSON does.
    let (status, body) = send(
        w.http
            .post(w.stack.url("/admin/refresh-campaigns"))
            .header("Authorization", format!("Bearer {ADMIN_KEY}"))
            .form(&[("expiring_within_seconds", "0"), ("rate_per_second", "2.5")]),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["rate_per_second"], 2.5);
    let (status, body) = send(
        w.http
            .post(w.stack.url("/admin/refresh-campaigns"))
            .header("Authorization", format!("Bearer {ADMIN_KEY}"))
            .form(&[("expiring_within_seconds", "soon")]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["expiring_within_seconds"].is_array(), "{body}");
    // github's tokens are not refreshed: no campaign for it.
    let (status, body) = post(json!({"provider": "github", "expiring_within_seconds": 60})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    for (method, path) in [
        (reqwest::Method::GET, "/admin/refresh-campaigns".to_owned()),
        (reqwest::Method::POST, "/admin/refresh-campaigns".to_owned()),
        (
            reqwest::Method::GET,
            format!("/admin/refresh-campaigns/{}", uuid::Uuid::new_v4()),
        ),
        (
            reqwest::Method::DELETE,
            format!("/admin/refresh-campaigns/{}", uuid::Uuid::new_v4()),
        ),
    ] {
        let (status, body) = send(
            w.http
                .request(method.clone(), w.stack.url(&path))
                .header("Authorization", "Bearer wrong")
                .json(&json!({"expiring_within_seconds": 1})),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
    }
    for path in [
        format!("/admin/refresh-campaigns/{}", uuid::Uuid::new_v4()),
        "/admin/refresh-campaigns/not-an-id".to_owned(),
    ] {
        for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
            let (status, body) = admin(&w, method.clone(), &path, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
            assert_eq!(body, json!({"detail": "Not found."}));
        }
    }
    // A campaign with nothing to refresh is done at once.
    let (status, body) = post(json!({"expiring_within_seconds": 0})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["id"].as_str().unwrap_or_default().to_owned();
    let done = wait_for(&w, &id, "finished", |c| c["status"] != "running").await;
    assert_eq!(
        (&done["status"], &done["total"], &done["remaining"]),
        (&json!("done"), &json!(0), &json!(0))
    );
    Ok(())
}
