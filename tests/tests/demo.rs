//! `/demo` in a real browser: Debian's Chromium, headless, driven by
//! Playwright (`tests/browser/demo.mjs`), clicks the provider's button, signs
//! in on the test provider's own login and consent forms, and comes back to
//! the page, which shows the user and their linked accounts. Screenshots
//! are kept in `target/artifacts/demo/`.

use anyhow::Context;
use reqwest::StatusCode;
use serde_json::Value;
use socialauth_tests::idp::{STANDARD_CLIENT_ID, ensure_node_modules};
use socialauth_tests::stack::{Mode, workspace_root};
use socialauth_tests::world::World;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

/// How long one pass through the page may take.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(120);

/// A world whose api listens on a port chosen first, so the page's address
/// can be allowed and registered at the provider before anything starts.
/// Returns it with the page's address.
async fn world_with_demo() -> anyhow::Result<(World, String)> {
    let mut last = None;
    // A port found free may be taken by the time the api binds it: try
    // again with another.
    for _ in 0..3 {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let demo = format!("http://127.0.0.1:{port}/demo");
        let started = World::start_with_idp(
            Mode::Production,
            |idp| {
                for client in &mut idp.clients {
                    if client.client_id == STANDARD_CLIENT_ID {
                        client.redirect_uris.push(demo.clone());
                        client
                            .redirect_uris
                            .push(format!("http://127.0.0.1:{port}/auth/o/corpfp/callback"));
                    }
                }
            },
            |opts| {
                // `corpfp`: `corp` again, answering by form_post to this
                // service's callback.
                let corp = corp_table(&opts.providers_toml);
                let relay = format!("http://127.0.0.1:{port}/auth/o/corpfp/callback");
                opts.providers_toml.push_str(&format!(
                    "\n{}form_post_url = {relay:?}\n",
                    corp.replace("[providers.corp]", "[providers.corpfp]")
                ));
                opts.bind = format!("127.0.0.1:{port}");
                opts.allowed_redirect_uris.push(demo.clone());
                opts.extra_toml = "[demo]\nenabled = true\n".into();
            },
        )
        .await;
        match started {
            Ok(world) => return Ok((world, demo)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.context("no attempt")?)
}

/// The `[providers.corp]` table of `toml`.
fn corp_table(toml: &str) -> String {
    let start = toml.find("[providers.corp]\n").unwrap_or(0);
    let rest = &toml[start..];
    let end = rest[1..].find("\n[").map_or(rest.len(), |i| i + 2);
    rest[..end].to_owned()
}

/// One pass of Chromium through the page as `username`, signing in with
/// `provider`: what it showed.
async fn browse(
    w: &World,
    demo: &str,
    provider: &str,
    username: &str,
    shots: &str,
) -> anyhow::Result<Value> {
    let dir = workspace_root().join("tests/browser");
    ensure_node_modules(&dir).await?;
    let chromium =
        std::env::var("SOCIALAUTH_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    anyhow::ensure!(
        std::path::Path::new(&chromium).is_file(),
        "{chromium} is missing: `bash tests/run.sh` installs Debian's chromium"
    );
    let password = match w.idp.config.user(username) {
        Some(user) => user.password.clone(),
        None => w
            .oauth1
            .config
            .user(username)
            .context("no such user")?
            .password
            .clone(),
    };
    let out = tokio::time::timeout(
        BROWSER_TIMEOUT,
        tokio::process::Command::new("node")
            .arg("demo.mjs")
            .args([demo, provider, username, &password, shots])
            .env("SOCIALAUTH_CHROMIUM", &chromium)
            .current_dir(&dir)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("the browser took too long")??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let shown: Value = serde_json::from_str(line).with_context(|| {
        format!(
            "demo.mjs printed no result: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    anyhow::ensure!(out.status.success(), "demo.mjs failed: {shown}");
    Ok(shown)
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("artifacts/demo")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_signs_up_and_signs_in_on_the_demo_page() -> anyhow::Result<()> {
    let (w, demo) = world_with_demo().await?;
    let shots = artifacts();
    let alice = w.idp.config.user("alice").context("alice")?.clone();

    let first = browse(&w, &demo, "corp", "alice", &shots.display().to_string()).await?;
    assert_eq!(first["failure"], Value::Null, "{first}");
    let buttons: Vec<&str> = first["buttons"]
        .as_array()
        .context("buttons")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for name in ["corp", "corpfp", "corpoauth", "corphs", "twitter"] {
        assert!(
            buttons.contains(&format!("Sign in with {name}").as_str()),
            "a button for {name}: {buttons:?}"
        );
    }
    // The login happened on the provider's own page, and the browser came
    // back to the demo, which took the code out of its address.
    assert!(
        first["providerLogin"]
            .as_str()
            .is_some_and(|u| u.starts_with(&w.idp.issuer)),
        "{first}"
    );
    assert_eq!(first["finalUrl"], demo.as_str());
    assert_eq!(first["outcome"], "Signed up with corp");
    assert_eq!(first["user"]["email"], "alice@example.test");
    assert_eq!(first["user"]["emailVerified"], "yes");
    assert_eq!(first["user"]["name"], "Alice Doe");
    let accounts = first["accounts"].as_array().context("accounts")?;
    assert_eq!(accounts.len(), 1, "{first}");
    assert_eq!(accounts[0][0], "corp");
    assert_eq!(accounts[0][1], alice.id.as_str());
    assert_eq!(accounts[0][2], "alice@example.test");
    // No script error, no blocked resource, no host but the service's and
    // the provider's.
    // The test provider's pages have no icon; the demo's own has one.
    let favicon = format!("{}/favicon.ico", w.idp.issuer);
    let problems: Vec<&Value> = first["problems"]
        .as_array()
        .context("problems")?
        .iter()
        .filter(|p| p.as_str() != Some(format!("HTTP 404: {favicon}").as_str()))
        .collect();
    assert!(problems.is_empty(), "{first}");
    let idp_host = w.idp.issuer.trim_start_matches("http://");
    let own_host = w.stack.base_url.trim_start_matches("http://");
    for host in first["hosts"].as_array().context("hosts")? {
        let host = host.as_str().unwrap_or_default();
        assert!(host == idp_host || host == own_host, "{host}");
    }
    for shot in ["demo-providers.png", "demo.png"] {
        let len = std::fs::metadata(shots.join(shot))?.len();
        assert!(len > 10_000, "{shot}: {len} bytes");
    }

    // A second browser, the same person: the same user, signed in.
    let again = browse(
        &w,
        &demo,
        "corp",
        "alice",
        &shots.join("again").display().to_string(),
    )
    .await?;
    assert_eq!(again["outcome"], "Signed in with corp", "{again}");
    assert_eq!(again["user"]["id"], first["user"]["id"]);
    assert_eq!(again["accounts"].as_array().map(Vec::len), Some(1));
    // An answer this tab did not ask for (a code and state planted by a
    // link) is not posted: no login CSRF through the page.
    let planted = browse(
        &w,
        &format!("{demo}?code=planted&state=planted"),
        "corp",
        "alice",
        &shots.join("planted").display().to_string(),
    )
    .await?;
    assert!(
        planted["failure"]
            .as_str()
            .is_some_and(|f| f.contains("not for a login this browser tab started")),
        "{planted}"
    );
    assert_eq!(planted["posts"], serde_json::json!([]), "{planted}");
    assert_eq!(planted["finalUrl"], demo.as_str());
    println!("screenshots: {}", shots.display());
    Ok(())
}

/// An OAuth 1.0a provider from the page: the request token goes to the
/// provider, `oauth_token` and `oauth_verifier` come back and are posted.
#[tokio::test(flavor = "multi_thread")]
async fn an_oauth1_provider_signs_in_from_the_demo_page() -> anyhow::Result<()> {
    let (w, demo) = world_with_demo().await?;
    let shots = artifacts().join("oauth1");
    let shown = browse(
        &w,
        &demo,
        "twitter",
        "tw_alice",
        &shots.display().to_string(),
    )
    .await?;
    assert_eq!(shown["failure"], Value::Null, "{shown}");
    assert!(
        shown["providerLogin"]
            .as_str()
            .is_some_and(|u| u.starts_with(&w.oauth1.base_url)),
        "{shown}"
    );
    assert_eq!(shown["outcome"], "Signed up with twitter", "{shown}");
    assert_eq!(shown["user"]["email"], "tw_alice@example.test");
    let accounts = shown["accounts"].as_array().context("accounts")?;
    assert_eq!(accounts.len(), 1, "{shown}");
    assert_eq!(accounts[0][0], "twitter");
    Ok(())
}

/// A provider answering by form_post: its page POSTs the code to this
/// service's callback, which sends the browser on to the demo page.
#[tokio::test(flavor = "multi_thread")]
async fn a_form_post_provider_signs_in_through_the_callback() -> anyhow::Result<()> {
    let (w, demo) = world_with_demo().await?;
    let shots = artifacts().join("form_post");
    let zoe = w.idp.config.user("zoe").context("zoe")?.clone();
    let shown = browse(&w, &demo, "corpfp", "zoe", &shots.display().to_string()).await?;
    assert_eq!(shown["failure"], Value::Null, "{shown}");
    assert_eq!(shown["outcome"], "Signed up with corpfp", "{shown}");
    assert_eq!(shown["user"]["email"], "zoe@example.test");
    assert_eq!(shown["finalUrl"], demo.as_str());
    let accounts = shown["accounts"].as_array().context("accounts")?;
    assert_eq!(accounts.len(), 1, "{shown}");
    assert_eq!(accounts[0][1], zoe.id.as_str());
    // The provider's answer came through the callback, once.
    let metrics = w.metrics().await?;
    let relayed = metrics.lines().any(|l| {
        l.starts_with("socialauth_http_requests_total{")
            && l.contains("route=\"/auth/o/{provider}/callback\"")
            && l.contains("status=\"303\"")
            && l.ends_with(" 1")
    });
    assert!(relayed, "{metrics}");

    // What the callback refuses: a state it never issued, a state without
    // a code or error, a provider that does not answer by form_post.
    let callback = |provider: &str| w.stack.url(&format!("/auth/o/{provider}/callback"));
    let (status, body) = socialauth_tests::world::send(
        w.http
            .post(callback("corpfp"))
            .form(&[("code", "c"), ("state", "never-issued")]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        serde_json::json!({"non_field_errors": ["invalid_state"]})
    );
    let (status, body) =
        socialauth_tests::world::send(w.http.post(callback("corpfp")).form(&[("code", "c")])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        serde_json::json!({"state": ["This field is required."]})
    );
    let (status, body) = socialauth_tests::world::send(w.http.post(callback("corpfp")).form(&[
        ("code", "c"),
        ("state", "s"),
        ("iss", "http://127.0.0.1:9/not-the-issuer"),
    ]))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        serde_json::json!({"non_field_errors": ["invalid_iss"]})
    );
    let (status, _) = socialauth_tests::world::send(
        w.http
            .post(callback("corp"))
            .form(&[("code", "c"), ("state", "s")]),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The provider's error goes on to the client with the state.
    let (status, begun) = w.begin("corpfp", Some(&demo)).await;
    assert_eq!(status, StatusCode::OK, "{begun}");
    let authorization = url::Url::parse(begun["authorization_url"].as_str().unwrap_or_default())?;
    let param = |name: &str| {
        authorization
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("response_mode").as_deref(), Some("form_post"));
    assert_eq!(param("redirect_uri"), Some(callback("corpfp")));
    let issued = param("state").context("state")?;
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?
        .post(callback("corpfp"))
        .form(&[
            ("error", "user_cancelled_authorize"),
            ("state", issued.as_str()),
        ])
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert_eq!(
        location,
        format!("{demo}?error=user_cancelled_authorize&state={issued}")
    );
    Ok(())
}

#[tokio::test]
async fn the_demo_page_is_off_unless_enabled() -> anyhow::Result<()> {
    let w = World::start(Mode::Embedded).await?;
    for path in ["/demo", "/demo/demo.js"] {
        let response = w.http.get(w.stack.url(path)).send().await?;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    Ok(())
}
