//! Protocol defences against the real oidc-provider: RFC 9207 `iss` on
//! the callback, per-provider redirect URI allow-lists, and the optional
//! state cookie that binds a login to the browser that started it.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::json;
use socialauth_tests::browser::{Callback, ScriptedUser};
use socialauth_tests::stack::Mode;
use socialauth_tests::world::{REDIRECT_URI, World, send};

socialauth_tests::in_both_modes!(
    a_callback_from_another_issuer_is_refused_before_its_code_is_used,
    a_provider_can_have_its_own_redirect_uris_and_require_iss,
    the_state_cookie_binds_a_login_to_the_browser_that_started_it,
);

const OWN_REDIRECT: &str = "http://127.0.0.1:9/own/callback";

fn iss_of(cb: &Callback) -> Option<String> {
    cb.query
        .iter()
        .find(|(k, _)| k == "iss")
        .map(|(_, v)| v.clone())
}

async fn a_callback_from_another_issuer_is_refused_before_its_code_is_used(
    mode: Mode,
) -> anyhow::Result<()> {
    let w = World::start(mode).await?;
    let cb = w.callback("corp", "alice").await?;
    let iss = iss_of(&cb).expect("oidc-provider sends RFC 9207 iss");
    assert_eq!(iss, w.idp.issuer);

    // A response of another provider (a mix-up attack): refused, and the
    // state stays unused.
    let (status, body) = w
        .post_json(
            "corp",
            &json!({"code": cb.code, "state": cb.state, "iss": "http://127.0.0.1:1/evil"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, json!({"non_field_errors": ["invalid_iss"]}));

    let (status, body) = w
        .post_json(
            "corp",
            &json!({"code": cb.code, "state": cb.state, "iss": iss}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}\n{}", w.stack.logs());

    // /social-auth checks it alike.
    let (status, body) = w
        .social_auth(
            &json!({"provider": "corp", "code": "c", "redirect_uri": REDIRECT_URI,
                             "code_verifier": "v", "iss": "https://accounts.example/"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, json!({"non_field_errors": ["invalid_iss"]}));
    Ok(())
}

async fn a_provider_can_have_its_own_redirect_uris_and_require_iss(
    mode: Mode,
) -> anyhow::Result<()> {
    let w = World::start_with(mode, |o| {
        o.providers_toml = o
            .providers_toml
            .replace(
                "[providers.corpoauth]\n",
                &format!("[providers.corpoauth]\nallowed_redirect_uris = [{OWN_REDIRECT:?}]\n"),
            )
            .replace(
                "[providers.corp]\n",
                "[providers.corp]\nrequire_iss = true\n",
            );
    })
    .await?;
    let (status, body) = w.begin("corpoauth", Some(REDIRECT_URI)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body,
        json!({"non_field_errors": ["redirect_uri_not_allowed"]})
    );
    let (status, body) = w.begin("corpoauth", Some(OWN_REDIRECT)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = w.begin("corp", Some(OWN_REDIRECT)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the global list: {body}");
    let (status, _) = w.begin("corp", Some(REDIRECT_URI)).await;
    assert_eq!(status, StatusCode::OK);

    // corp requires iss: a callback without it is refused, its state
    // unused; the same callback with it signs in.
    let cb = w.callback("corp", "alice").await?;
    let (status, body) = w
        .post_json("corp", &json!({"code": cb.code, "state": cb.state}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, json!({"non_field_errors": ["invalid_iss"]}));
    let (status, body) = w
        .post_json(
            "corp",
            &json!({"code": cb.code, "state": cb.state, "iss": iss_of(&cb)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}\n{}", w.stack.logs());
    Ok(())
}

/// `GET /auth/o/corp/` as a browser client: the authorization URL and
/// the state cookie set with it.
async fn begin_with_cookie(w: &World) -> anyhow::Result<(String, String)> {
    let response = w
        .http
        .get(w.stack.url("/auth/o/corp/"))
        .query(&[("redirect_uri", REDIRECT_URI)])
        .send()
        .await?;
    anyhow::ensure!(response.status() == StatusCode::OK);
    let cookie = response
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_default();
    let body: serde_json::Value = response.json().await?;
    Ok((
        body["authorization_url"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        cookie,
    ))
}

async fn the_state_cookie_binds_a_login_to_the_browser_that_started_it(
    mode: Mode,
) -> anyhow::Result<()> {
    let w = World::start_with(mode, |o| {
        o.security_toml
            .push_str("state_cookie = true\nstate_cookie_secure = false\n");
    })
    .await?;
    let (url, set_cookie) = begin_with_cookie(&w).await?;
    assert!(
        set_cookie.starts_with("socialauth_state_corp="),
        "{set_cookie}"
    );
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/auth/o/corp/",
        "Max-Age=600",
    ] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap_or_default().to_owned();
    let password = &w.idp.user("alice").password;
    let cb = ScriptedUser::new()?
        .authorize(&url, "alice", password, REDIRECT_URI)
        .await?;
    let login = json!({"code": cb.code, "state": cb.state});
    let post = |cookie: Option<String>| {
        let mut request = w.http.post(w.stack.url("/auth/o/corp/")).json(&login);
        if let Some(c) = cookie {
            request = request.header(COOKIE, c);
        }
        send(request)
    };

    // Posted by a page in another browser (login CSRF): no cookie, or the
    // cookie of another login.
    let (status, body) = post(None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, json!({"non_field_errors": ["invalid_state"]}));
    let (_, other) = begin_with_cookie(&w).await?;
    let other = other.split(';').next().unwrap_or_default().to_owned();
    let (status, body) = post(Some(other)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // The browser that started it, among other cookies.
    let (status, body) = post(Some(format!("theme=dark; {cookie}"))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}\n{}", w.stack.logs());
    Ok(())
}
