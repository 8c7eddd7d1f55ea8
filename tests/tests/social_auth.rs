//! `POST /social-auth` (DESIGN §2) and the user pipeline, against the real
//! oidc-provider and the oauthlib OAuth 1.0a provider. Every test runs in
//! production mode (api + worker processes, PostgreSQL, RabbitMQ) and in the
//! embedded default.

use reqwest::StatusCode;
use serde_json::{Value, json};
use socialauth_common::types::UserId;
use socialauth_tests::stack::Mode;
use socialauth_tests::world::{REDIRECT_URI, World};

socialauth_tests::in_both_modes!(
    an_oauth2_code_signs_up_with_201_then_logs_in_with_200,
    the_request_shapes_missing_fields_and_unknown_providers,
    a_refused_code_is_invalid_credentials,
    a_missing_email_is_resumed_with_the_partial_token,
    a_taken_email_stops_registration,
    referral_codes_attribute_signups_and_bad_ones_are_resumable,
    the_referrer_can_be_set_later_once_and_never_oneself,
    oauth1_through_social_auth_in_two_steps,
    oauth1_through_the_djoser_flow,
    oauth1_without_email_is_resumable,
    twenty_concurrent_first_logins_make_one_user,
    a_double_submitted_code_gets_the_first_result,
    associate_by_email_links_only_verified_emails,
    link_only_signs_in_existing_users_and_closes_signups_on_every_way_in,
    each_linking_policy_decides_alike_on_social_auth_and_the_djoser_flow,
    inactive_users_and_disallowed_domains_are_refused,
    only_a_provider_verified_email_passes_the_domain_rule,
    the_id_token_nonce_must_be_the_one_sent,
    a_provider_that_requires_pkce_refuses_a_code_without_its_verifier,
    a_typed_email_never_takes_an_account_nor_locks_out_its_verified_owner,
    a_typed_email_never_links_to_an_existing_account,
    no_token_code_or_verifier_is_stored_in_clear,
    an_id_token_the_provider_signed_hs256_is_refused_unless_configured,
);

fn token(body: &Value) -> String {
    body["token"].as_str().unwrap_or_default().to_owned()
}

/// Signs `user` up through `/social-auth` with a fresh code.
async fn code_login(w: &World, user: &str, extra: Value) -> anyhow::Result<(StatusCode, Value)> {
    let (code, verifier) = w.client_side_code(user).await?;
    let mut body = json!({
        "provider": "corp", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    Ok(w.social_auth(&body).await)
}

async fn an_oauth2_code_signs_up_with_201_then_logs_in_with_200(mode: Mode) -> anyhow::Result<()> {
    let w = World::start(mode).await?;
    let (status, first) = code_login(&w, "zoe", json!({})).await?;
    assert_eq!(status, StatusCode::CREATED, "{first}\n{}", w.stack.logs());
    assert_eq!(first["is_new"], true);
    assert_eq!(first["user"]["first_name"], "Zoë");
    assert_eq!(first["user"]["last_name"], "Ñandú 山田");
    assert!(
        first["user"]["referral_code"]
            .as_str()
            .is_some_and(|c| c.len() == 10)
    );

    // A form body works the same; a returning user gets 200.
    let (code, verifier) = w.client_side_code("zoe").await?;
    let (status, again) = w
        .social_auth_form(&[
            ("provider", "corp"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["is_new"], false);
    assert_eq!(again["user"]["id"], first["user"]["id"]);
    let (status, me) = w.get_auth("/users/me", "Token", &token(&again)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    Ok(())
}

async fn the_request_shapes_missing_fields_and_unknown_providers(mode: Mode) -> anyhow::Result<()> {
    let w = World::start(mode).await?;
    let cases = [
        (json!({}), json!({"provider": ["This field is required."]})),
        (
            json!({"provider": "nosuch", "code": "c", "redirect_uri": REDIRECT_URI}),
            json!({"provider": ["Invalid provider"]}),
        ),
        (
            json!({"provider": "corp"}),
            json!({"code": ["This field is required."], "redirect_uri": ["This field is required."]}),
        ),
        (
            json!({"provider": "corp", "code": "c"}),
            json!({"redirect_uri": ["This field is required."]}),
        ),
        (
            json!({"provider": "twitter", "oauth_token": "t"}),
            json!({"oauth_token_secret": ["This field is required."], "oauth_verifier": ["This field is required."]}),
        ),
        (
            json!({"provider": "twitter"}),
            json!({"non_field_errors": ["redirect_uri_required"]}),
        ),
        (
            json!({"provider": "corp", "code": "c", "redirect_uri": "http://127.0.0.1:9/evil"}),
            json!({"non_field_errors": ["redirect_uri_not_allowed"]}),
        ),
        (
            json!({"provider": "corp", "partial_token": "nope", "email": "a@b.test"}),
            json!({"non_field_errors": "invalid_partial_token"}),
        ),
    ];
    for (request, expected) in cases {
        let (status, body) = w.social_auth(&request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{request} → {body}");
        assert_eq!(body, expected, "{request}");
    }
    Ok(())
}

async fn a_refused_code_is_invalid_credentials(mode: Mode) -> anyhow::Result<()> {
    let w = World::start(mode).await?;
    let (status, body) = w
        .social_auth(&json!({"provider": "corp", "code": "forged", "redirect_uri": REDIRECT_URI}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"non_field_errors": "invalid_credentials"}));
    // The right code with a wrong PKCE verifier is refused too.
    let (code, _) = w.client_side_code("alice").await?;
    let (status, body) = w
        .social_auth(
            &json!({"provider": "corp", "code": code, "redirect_uri": REDIRECT_URI,
                             "code_verifier": "x".repeat(43)}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"non_field_errors": "invalid_credentials"}));
    Ok(())
}

async fn a_missing_email_is_resumed_with_the_partial_token(mode: Mode) -> anyhow::Result<()> {
    let w = World::start(mode).await?;
    let (status, body) = code_login(&w, "nomail", json!({})).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["email"], "no_email_provided");
    assert_eq!(body.as_object().map(|o| o.len()), Some(2), "{body}");
    let partial = body["partial_token"]
        .as_str()
        .expect("partial_token")
        .to_owned();

    // Resuming without an email asks again, with the same partial token.
    let (status, again) = w
        .social_auth(&json!({"provider": "corp", "partial_token": partial}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        again,
        json!({"email": "no_email_provided", "partial_token": partial})
    );

    // The code is spent: the resume must not go back to the provider.
    let (status, done) = w
        .social_auth(
            &json!({"provider": "corp", "partial_token": partial, "email": "noah@example.test"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{done}\n{}", w.stack.logs());
    assert_eq!(done["is_new"], true);
    assert_eq!(done["user"]["email"], "noah@example.test");
    assert_eq!(done["user"]["first_name"], "Noah");

    // Single use.
    let (status, used) = w
        .social_auth(
            &json!({"provider": "corp", "partial_token": partial, "email": "x@example.test"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(used, json!({"non_field_errors": "invalid_partial_token"}));
    // And bound to its provider.
    let (_, other) = code_login(&w, "zoe", json!({"referral_code": "NOSUCHCODE"})).await?;
    let partial = other["partial_token"].as_str().unwrap_or_default();
    let (_, wrong) = w
        .social_auth(
            &json!({"provider": "corpoauth", "partial_token": partial, "email": "y@example.test"}),
        )
        .await;
    assert_eq!(wrong, json!({"non_field_errors": "invalid_partial_token"}));
    Ok(())
}

async fn a_taken_email_stops_registration(mode: Mode) -> anyhow::Result<()> {
    let w = World::start(mode).await?;
    let (status, _) = code_login(&w, "alice", json!({})).await?;
    assert_eq!(status, StatusCode::CREATED);
    // alice's email through a provider she never linked.
    let (code, verifier) = w.client_side_code("alice").await?;
    let (status, body) = w
        .social_auth(
            &json!({"provider": "corpoauth", "code": code, "redirect_uri": REDIRECT_URI,
                             "code_verifier": verifier}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"email": "email_already_in_use"}));
    // An email sent for a user without one is checked the same way.
    let (_, partial) = code_login(&w, "nomail", json!({})).await?;
    let (status, body) = w
        .social_auth(
            &json!({"provider": "corp", "partial_token": partial["partial_token"],
                             "email": "ALICE@example.test"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"email": "email_already_in_use"}));
    Ok(())
}

async fn referral_codes_attribute_signups_and_bad_ones_are_resumable(
    mode: Mode,
) -> anyhow::Result<()> {
    let w = World::start(mode).await?;
    let (_, alice) = code_login(&w, "alice", json!({})).await?;
    let code = alice["user"]["referral_code"]
        .as_str()
        .expect("code")
        .to_owned();

    let (status, bob) = code_login(&w, "bob", json!({"referral_code": code})).await?;
    assert_eq!(status, StatusCode::CREATED, "{bob}");
    assert_eq!(bob["user"]["referred_by"], alice["user"]["id"]);
    assert_ne!(bob["user"]["referral_code"], alice["user"]["referral_code"]);

    let (status, body) = code_login(&w, "zoe", json!({"referral_code": "NOSUCHCODE"})).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["referral_code"], "invalid_referral_code");
    let partial = body["partial_token"].as_str().expect("partial_token");
    let (status, zoe) = w
        .social_auth(&json!({"provider": "corp", "partial_token": partial, "referral_code": code}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{zoe}");
    assert_eq!(zoe["user"]["referred_by"], alice["user"]["id"]);
    Ok(())
}

async fn the_referrer_can_be_set_later_once_and_never_oneself(mode: Mode) -> anyhow::Result<()> {
    let w = World::start(mode).await?;
    let (_, alice) = code_login(&w, "alice", json!({})).await?;
    let (_, bob) = code_login(&w, "bob", json!({})).await?;
    let (_, zoe) = code_login(&w, "zoe", json!({})).await?;
    let bob_token = token(&bob);
    let code_of = |u: &Value| {
        u["user"]["referral_code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    let (status, body) = w
        .patch_auth(
            "/users/me",
            &bob_token,
            &json!({"referral_code": code_of(&bob)}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"referral_code": "cannot_refer_yourself"}));
    let (status, body) = w
        .patch_auth(
            "/users/me",
            &bob_token,
            &json!({"referral_code": "NOSUCHCODE"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"referral_code": "invalid_referral_code"}));
    let (status, body) = w.patch_auth("/users/me", &bob_token, &json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"referral_code": ["This field is required."]}));

    let (status, body) = w
        .patch_auth(
            "/users/me",
            &bob_token,
            &json!({"referral_code": code_of(&alice)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["referred_by"], alice["user"]["id"]);
    let (status, body) = w
        .patch_auth(
            "/users/me",
            &bob_token,
            &json!({"referral_code": code_of(&zoe)}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"referral_code": "referral_code_already_set"}));
    let (_, me) = w.get_auth("/users/me", "Token", &bob_token).await;
    assert_eq!(me["referred_by"], alice["user"]["id"]);
    Ok(())
}

async fn oauth1_through_social_auth_in_two_steps(mode: Mode) -> anyhow::Result<()> {
    let w = World::start(mode).await?;
    let (status, step1) = w
        .social_auth(&json!({"provider": "twitter", "redirect_uri": REDIRECT_URI}))
        .await;
    assert_eq!(status, StatusCode::OK, "{step1}\n{}", w.stack.logs());
    assert_eq!(step1["oauth_callback_confirmed"], "true");
    let oauth_token = step1["oauth_token"]
        .as_str()
        .expect("oauth_token")
        .to_owned();
    let secret = step1["oauth_token_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let url = step1["authorization_url"].as_str().expect("url");
    assert!(url.contains(&oauth_token), "{url}");

    let (cb_token, verifier) = w.authorize_oauth1(url, "tw_zoe").await?;
    assert_eq!(cb_token, oauth_token);

    // A forged secret is refused, and consumes the request token.
    let (status, body) = w
        .social_auth(&json!({"provider": "twitter", "oauth_token": oauth_token,
                             "oauth_token_secret": "forged", "oauth_verifier": verifier}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"non_field_errors": "invalid_credentials"}));

    // A fresh round trip with the right secret signs up.
    let (_, step1) = w
        .social_auth(&json!({"provider": "twitter", "redirect_uri": REDIRECT_URI}))
        .await;
    let url = step1["authorization_url"].as_str().expect("url");
    let (oauth_token, verifier) = w.authorize_oauth1(url, "tw_zoe").await?;
    let (status, done) = w
        .social_auth_form(&[
            ("provider", "twitter"),
            ("oauth_token", &oauth_token),
            (
                "oauth_token_secret",
                step1["oauth_token_secret"].as_str().unwrap_or(""),
            ),
            ("oauth_verifier", &verifier),
        ])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{done}\n{}", w.stack.logs());
    assert_eq!(done["is_new"], true);
    assert_eq!(done["user"]["username"], "tw_zoe");
    assert_eq!(done["user"]["email"], "tw_zoe@example.test");
    assert_eq!(done["user"]["first_name"], "Zoë");
    let (_, me) = w.get_auth("/users/me", "Token", &token(&done)).await;
    assert_eq!(me["social_accounts"][0]["provider"], "twitter");
    assert_eq!(me["social_accounts"][0]["uid"], w.oauth1.user("tw_zoe").id);

    // Replaying step 2 is refused: the request token was single use.
    let (status, body) = w
        .social_auth(&json!({"provider": "twitter", "oauth_token": oauth_token,
                             "oauth_token_secret": step1["oauth_token_secret"], "oauth_verifier": verifier}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"non_field_errors": "invalid_credentials"}));
    let _ = secret;
    Ok(())
}

async fn oauth1_through_the_djoser_flow(mode: Mode) -> anyhow::Result<()> {
    let w = World::start(mode).await?;
    let (status, body) = w.begin("twitter", Some(REDIRECT_URI)).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", w.stack.logs());
    let url = body["authorization_url"].as_str().expect("url");
    let (oauth_token, verifier) = w.authorize_oauth1(url, "tw_alice").await?;
    let (status, done) = w
        .post_json(
            "twitter",
            &json!({"oauth_token": oauth_token, "oauth_verifier": verifier}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{done}");
    assert_eq!(done["is_new"], true);
    assert_eq!(done["user"]["email"], "tw_alice@example.test");
    let (status, body) = w.post_json("twitter", &json!({"oauth_token": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"oauth_verifier": ["This field is required."]}));
    let (status, body) = w
        .post_json(
            "twitter",
            &json!({"oauth_token": "unknown", "oauth_verifier": "v"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"non_field_errors": ["invalid_credentials"]}));
    Ok(())
}

async fn oauth1_without_email_is_resumable(mode: Mode) -> anyhow::Result<()> {
    let w = World::start(mode).await?;
    let (_, step1) = w
        .social_auth(&json!({"provider": "twitter", "redirect_uri": REDIRECT_URI}))
        .await;
    let url = step1["authorization_url"].as_str().expect("url");
    let (oauth_token, verifier) = w.authorize_oauth1(url, "tw_nomail").await?;
    let (status, body) = w
        .social_auth(&json!({"provider": "twitter", "oauth_token": oauth_token,
                             "oauth_token_secret": step1["oauth_token_secret"], "oauth_verifier": verifier}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["email"], "no_email_provided");
    let (status, done) = w
        .social_auth(
            &json!({"provider": "twitter", "partial_token": body["partial_token"],
                             "email": "nomail@example.test"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{done}");
    assert_eq!(done["user"]["email"], "nomail@example.test");
    Ok(())
}

async fn twenty_concurrent_first_logins_make_one_user(mode: Mode) -> anyhow::Result<()> {
    let w = World::start(mode).await?;
    let mut codes = Vec::new();
    for _ in 0..20 {
        codes.push(w.client_side_code("alice").await?);
    }
    let bodies: Vec<Value> = codes
        .iter()
        .map(|(code, verifier)| {
            json!({"provider": "corp", "code": code, "redirect_uri": REDIRECT_URI,
                   "code_verifier": verifier})
        })
        .collect();
    let posts = bodies.iter().map(|body| w.social_auth(body));
    let answers = futures_util::future::join_all(posts).await;
    let mut ids = std::collections::BTreeSet::new();
    let mut new = 0;
    for (status, body) in &answers {
        assert!(status.is_success(), "{status} {body}\n{}", w.stack.logs());
        ids.insert(body["user"]["id"].to_string());
        if body["is_new"] == true {
            new += 1;
            assert_eq!(*status, StatusCode::CREATED);
        } else {
            assert_eq!(*status, StatusCode::OK);
        }
    }
    assert_eq!(ids.len(), 1, "{answers:?}");
    assert_eq!(new, 1, "{answers:?}");
    Ok(())
}

async fn a_double_submitted_code_gets_the_first_result(mode: Mode) -> anyhow::Result<()> {
    let w = World::start_with(mode, |o| o.security_toml = "retry_window_secs = 3".into()).await?;
    let (code, verifier) = w.client_side_code("alice").await?;
    let body = json!({"provider": "corp", "code": code, "redirect_uri": REDIRECT_URI,
                      "code_verifier": verifier});
    // A double click: both at once.
    let (a, b) = tokio::join!(w.social_auth(&body), w.social_auth(&body));
    for (status, answer) in [&a, &b] {
        assert_eq!(*status, StatusCode::CREATED, "{answer}\n{}", w.stack.logs());
        assert_eq!(answer["is_new"], true);
    }
    assert_eq!(a.1["user"]["id"], b.1["user"]["id"]);
    assert_eq!(token(&a.1), token(&b.1), "one token, never a second");
    // A retry within the window: the same outcome and the same token.
    let (status, c) = w.social_auth(&body).await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    assert_eq!(c["user"]["id"], a.1["user"]["id"]);
    assert_eq!(token(&c), token(&a.1));
    let (status, _) = w.get_auth("/users/me", "Token", &token(&c)).await;
    assert_eq!(status, StatusCode::OK);
    // The code alone gets nothing: another verifier, or none, is refused.
    for other in [json!("y".repeat(43)), Value::Null] {
        let (status, stolen) = w
            .social_auth(&json!({"provider": "corp", "code": code,
                                 "redirect_uri": REDIRECT_URI, "code_verifier": other}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(stolen, json!({"non_field_errors": "invalid_credentials"}));
    }
    // After the window, not even the same request gets anything.
    tokio::time::sleep(std::time::Duration::from_millis(3_500)).await;
    let (status, late) = w.social_auth(&body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{late}");
    assert_eq!(late, json!({"non_field_errors": "invalid_credentials"}));
    Ok(())
}

async fn associate_by_email_links_only_verified_emails(mode: Mode) -> anyhow::Result<()> {
    let w = World::start_with(mode, |o| {
        o.security_toml = "associate_by_email = true".into()
    })
    .await?;
    let (_, alice) = code_login(&w, "alice", json!({})).await?;
    let (_, bob) = code_login(&w, "bob", json!({})).await?;
    assert_eq!(bob["is_new"], true);
    // alice's email is verified by the provider: the new identity is linked.
    let (status, linked) = corpoauth_login(&w, "alice").await?;
    assert_eq!(status, StatusCode::OK, "{linked}");
    assert_eq!(linked["is_new"], false);
    assert_eq!(linked["user"]["id"], alice["user"]["id"]);
    let (_, me) = w.get_auth("/users/me", "Token", &token(&linked)).await;
    assert_eq!(
        me["social_accounts"].as_array().map(Vec::len),
        Some(2),
        "{me}"
    );
    // bob's email is not verified: no link.
    let (status, refused) = corpoauth_login(&w, "bob").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused, json!({"email": "email_already_in_use"}));
    Ok(())
}

/// `corpoauth` under `link_only`, every other provider under the global
/// `deny`: only an identity linked already, or one whose verified email is
/// a verified account's, signs in through `corpoauth`; every other login
/// is `signup_closed` at once, on `/social-auth` and in the djoser flow.
async fn link_only_signs_in_existing_users_and_closes_signups_on_every_way_in(
    mode: Mode,
) -> anyhow::Result<()> {
    let w = World::start_with(mode, |o| {
        o.security_toml = "linking = \"deny\"".into();
        o.providers_toml = o.providers_toml.replace(
            "[providers.corpoauth]\n",
            "[providers.corpoauth]\nlinking = \"link_only\"\n",
        );
    })
    .await?;
    let closed = json!({"non_field_errors": ["signup_closed"]});
    // Signups stay open where the policy is the global `deny`.
    let (status, alice) = code_login(&w, "alice", json!({})).await?;
    assert_eq!(status, StatusCode::CREATED, "{alice}");
    let (status, _) = code_login(&w, "bob", json!({})).await?;
    assert_eq!(status, StatusCode::CREATED);

    // A new person, one without an email, one whose email is only
    // unverified: closed, without a `no_email_provided` round.
    for user in ["zoe", "nomail", "bob"] {
        let (status, body) = corpoauth_login(&w, user).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{user}: {body}");
        assert_eq!(body, closed, "{user}");
    }
    let (status, body) = w.login("corpoauth", "zoe").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, closed);

    // alice's verified email is her verified account's: linked, then
    // signed in again through the link.
    for _ in 0..2 {
        let (status, linked) = corpoauth_login(&w, "alice").await?;
        assert_eq!(status, StatusCode::OK, "{linked}");
        assert_eq!(linked["is_new"], false);
        assert_eq!(linked["user"]["id"], alice["user"]["id"]);
    }
    // The djoser flow answers 201 to every login, as djoser does.
    let (status, body) = w.login("corpoauth", "alice").await?;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["id"], alice["user"]["id"], "{body}");

    // Nobody was created by a closed signup: alice and bob only.
    let (_, me) = w.get_auth("/users/me", "Token", &token(&alice)).await;
    assert_eq!(
        me["social_accounts"].as_array().map(Vec::len),
        Some(2),
        "{me}"
    );
    let store = w.stack.store().await?;
    let mut tx = store.begin().await?;
    let zoe = tx.find_user_by_email("zoe@example.test").await?;
    tx.commit().await?;
    anyhow::ensure!(zoe.is_none(), "a closed signup created zoe");
    Ok(())
}

async fn inactive_users_and_disallowed_domains_are_refused(mode: Mode) -> anyhow::Result<()> {
    // `corponly`: `corp` again, for emails of corp.test only.
    let w = World::start_with(mode, |o| {
        let corp = o.providers_toml.split("\n\n").next().unwrap_or_default();
        let only = corp.replace("[providers.corp]", "[providers.corponly]");
        o.providers_toml.push_str(&format!(
            "\n{only}\nallowed_email_domains = [\"corp.test\"]\n"
        ));
    })
    .await?;
    let (_, alice) = code_login(&w, "alice", json!({})).await?;
    let id = alice["user"]["id"].as_i64().expect("id");
    deactivate(&w, id).await?;
    let (status, body) = code_login(&w, "alice", json!({})).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"non_field_errors": ["inactive_user"]}));
    let (status, _) = w.get_auth("/users/me", "Token", &token(&alice)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (code, verifier) = w.client_side_code("zoe").await?;
    let (status, body) = w
        .social_auth(
            &json!({"provider": "corponly", "code": code, "redirect_uri": REDIRECT_URI,
                             "code_verifier": verifier}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, json!({"email": "email_not_allowed"}));
    Ok(())
}

async fn only_a_provider_verified_email_passes_the_domain_rule(mode: Mode) -> anyhow::Result<()> {
    // `corpex`: `corp` again, for emails of example.test only.
    let w = World::start_with(mode, |o| {
        let corp = o.providers_toml.split("\n\n").next().unwrap_or_default();
        let only = corp.replace("[providers.corp]", "[providers.corpex]");
        o.providers_toml.push_str(&format!(
            "\n{only}\nallowed_email_domains = [\"example.test\"]\n"
        ));
    })
    .await?;
    let corpex = |extra: Value| {
        let mut body = json!({"provider": "corpex"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        body
    };
    // alice: verified at the provider, in the domain.
    let (status, body) = code_login(&w, "alice", corpex(json!({}))).await?;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // bob: in the domain, but the provider did not verify it.
    let (status, body) = code_login(&w, "bob", corpex(json!({}))).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, json!({"email": "email_not_allowed"}));
    // nomail types an address in the domain: nobody verified it.
    let typed = corpex(json!({"email": "nomail@example.test"}));
    let (status, body) = code_login(&w, "nomail", typed).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, json!({"email": "email_not_allowed"}));
    Ok(())
}

async fn corpoauth_login(w: &World, user: &str) -> anyhow::Result<(StatusCode, Value)> {
    let (code, verifier) = w.client_side_code(user).await?;
    Ok(w.social_auth(
        &json!({"provider": "corpoauth", "code": code, "redirect_uri": REDIRECT_URI,
                             "code_verifier": verifier}),
    )
    .await)
}

/// The same first logins under each policy of `corpoauth` (every other
/// provider under `deny`), through `/social-auth` (alice) and the djoser
/// flow (zoe): a provider-verified email of a verified account is refused
/// under `deny` and linked under the others; a login without an email
/// asks for one, except under `link_only`, which closes signups.
async fn each_linking_policy_decides_alike_on_social_auth_and_the_djoser_flow(
    mode: Mode,
) -> anyhow::Result<()> {
    for linking in ["deny", "link_verified", "link_only"] {
        let w = World::start_with(mode, |o| {
            o.security_toml = "linking = \"deny\"".into();
            o.providers_toml = o.providers_toml.replace(
                "[providers.corpoauth]\n",
                &format!("[providers.corpoauth]\nlinking = \"{linking}\"\n"),
            );
        })
        .await?;
        let (_, alice) = code_login(&w, "alice", json!({})).await?;
        let (_, zoe) = code_login(&w, "zoe", json!({})).await?;

        let (status, by_social) = corpoauth_login(&w, "alice").await?;
        let (djoser_status, by_djoser) = w.login("corpoauth", "zoe").await?;
        if linking == "deny" {
            let in_use = json!({"email": "email_already_in_use"});
            assert_eq!(
                (status, &by_social),
                (StatusCode::BAD_REQUEST, &in_use),
                "{linking}"
            );
            assert_eq!(
                (djoser_status, &by_djoser),
                (StatusCode::BAD_REQUEST, &in_use),
                "{linking}"
            );
        } else {
            assert_eq!(status, StatusCode::OK, "{linking}: {by_social}");
            assert_eq!(by_social["user"]["id"], alice["user"]["id"], "{linking}");
            assert_eq!(djoser_status, StatusCode::CREATED, "{linking}: {by_djoser}");
            assert_eq!(by_djoser["user"]["id"], zoe["user"]["id"], "{linking}");
        }

        let (status, by_social) = corpoauth_login(&w, "nomail").await?;
        let (djoser_status, by_djoser) = w.login("corpoauth", "nomail").await?;
        if linking == "link_only" {
            let closed = json!({"non_field_errors": ["signup_closed"]});
            assert_eq!(
                (status, &by_social),
                (StatusCode::BAD_REQUEST, &closed),
                "{linking}"
            );
            assert_eq!(
                (djoser_status, &by_djoser),
                (StatusCode::BAD_REQUEST, &closed),
                "{linking}"
            );
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{linking}");
            assert_eq!(
                by_social["email"], "no_email_provided",
                "{linking}: {by_social}"
            );
            assert_eq!(djoser_status, StatusCode::BAD_REQUEST, "{linking}");
            assert_eq!(
                by_djoser["email"], "no_email_provided",
                "{linking}: {by_djoser}"
            );
        }
    }
    Ok(())
}

/// An admin's action the API does not offer yet, done through the store.
async fn deactivate(w: &World, user_id: i64) -> anyhow::Result<()> {
    let store = w.stack.store().await?;
    anyhow::ensure!(store.update_user_active(UserId(user_id), false).await?);
    Ok(())
}

async fn the_id_token_nonce_must_be_the_one_sent(mode: Mode) -> anyhow::Result<()> {
    let w = World::start(mode).await?;
    let (code, verifier) = w
        .client_side_code_with_nonce("alice", Some("nonce-one"))
        .await?;
    let (status, body) = w
        .social_auth(
            &json!({"provider": "corp", "code": code, "redirect_uri": REDIRECT_URI,
                             "code_verifier": verifier, "nonce": "nonce-two"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, json!({"non_field_errors": "invalid_credentials"}));

    let (code, verifier) = w
        .client_side_code_with_nonce("alice", Some("nonce-three"))
        .await?;
    let (status, body) = w
        .social_auth(
            &json!({"provider": "corp", "code": code, "redirect_uri": REDIRECT_URI,
                             "code_verifier": verifier, "nonce": "nonce-three"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}\n{}", w.stack.logs());
    Ok(())
}

async fn a_provider_that_requires_pkce_refuses_a_code_without_its_verifier(
    mode: Mode,
) -> anyhow::Result<()> {
    // `corpstrict`: `corp` again, with `require_pkce`.
    let w = World::start_with(mode, |o| {
        let corp = o.providers_toml.split("\n\n").next().unwrap_or_default();
        let strict = corp.replace("[providers.corp]", "[providers.corpstrict]");
        o.providers_toml
            .push_str(&format!("\n{strict}\nrequire_pkce = true\n"));
    })
    .await?;
    let (code, verifier) = w.client_side_code("alice").await?;
    let (status, body) = w
        .social_auth(&json!({"provider": "corpstrict", "code": code,
                             "redirect_uri": REDIRECT_URI}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"code_verifier": ["This field is required."]}));
    let (status, body) = w
        .social_auth(&json!({"provider": "corpstrict", "code": code,
                             "redirect_uri": REDIRECT_URI, "code_verifier": verifier}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Ok(())
}

/// `nomail` (no email from the provider) types `alice`'s address.
async fn typed_alice_email(w: &World) -> anyhow::Result<(StatusCode, Value)> {
    let (status, stopped) = code_login(w, "nomail", json!({})).await?;
    anyhow::ensure!(status == StatusCode::BAD_REQUEST, "{stopped}");
    let partial = stopped["partial_token"].as_str().unwrap_or_default();
    Ok(
        w.social_auth(&json!({"provider": "corp", "partial_token": partial,
                             "email": "alice@example.test"}))
            .await,
    )
}

/// Someone types alice's address before alice ever signs in. With
/// `associate_by_email` on, alice's later sign-in (her provider verified the
/// address) must not land in that account; with it on or off, she is not
/// locked out: she gets an account of her own with her address, and the
/// typed account loses it.
async fn a_typed_email_never_takes_an_account_nor_locks_out_its_verified_owner(
    mode: Mode,
) -> anyhow::Result<()> {
    for associate in [true, false] {
        let w = World::start_with(mode, |o| {
            o.security_toml = format!("associate_by_email = {associate}")
        })
        .await?;
        let (status, typed) = typed_alice_email(&w).await?;
        assert_eq!(status, StatusCode::CREATED, "{typed}\n{}", w.stack.logs());
        assert_eq!(typed["user"]["email"], "alice@example.test");
        assert_eq!(typed["user"]["email_verified"], false);

        let (status, alice) = code_login(&w, "alice", json!({})).await?;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "associate={associate}: {alice}"
        );
        assert_eq!(alice["is_new"], true);
        assert_ne!(alice["user"]["id"], typed["user"]["id"]);
        assert_eq!(alice["user"]["email"], "alice@example.test");
        assert_eq!(alice["user"]["email_verified"], true);
        let (_, me) = w.get_auth("/users/me", "Token", &token(&alice)).await;
        assert_eq!(me["social_accounts"].as_array().map(Vec::len), Some(1));
        // The typer keeps their account, without the address.
        let (status, typer) = w.get_auth("/users/me", "Token", &token(&typed)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(typer["email"], Value::Null, "{typer}");
        // alice again: her own account.
        let (status, again) = code_login(&w, "alice", json!({})).await?;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(again["user"]["id"], alice["user"]["id"]);
    }
    Ok(())
}

/// Once alice (verified) has her account, typing her address gets nobody
/// into it, whatever the linking policy.
async fn a_typed_email_never_links_to_an_existing_account(mode: Mode) -> anyhow::Result<()> {
    for associate in [true, false] {
        let w = World::start_with(mode, |o| {
            o.security_toml = format!("associate_by_email = {associate}")
        })
        .await?;
        let (status, _) = code_login(&w, "alice", json!({})).await?;
        assert_eq!(status, StatusCode::CREATED);
        let (status, typed) = typed_alice_email(&w).await?;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "associate={associate}: {typed}"
        );
        assert_eq!(typed, json!({"email": "email_already_in_use"}));
    }
    Ok(())
}

/// After logins of every kind, no app token, partial token, code, PKCE
/// verifier or state is found in clear in any table.
async fn no_token_code_or_verifier_is_stored_in_clear(mode: Mode) -> anyhow::Result<()> {
    let w = World::start(mode).await?;
    let mut secrets = Vec::new();
    let (code, verifier) = w.client_side_code("alice").await?;
    let (status, alice) = w
        .social_auth(
            &json!({"provider": "corp", "code": code, "redirect_uri": REDIRECT_URI,
                             "code_verifier": verifier}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{alice}");
    secrets.extend([code, verifier, token(&alice)]);

    let (status, stopped) = code_login(&w, "nomail", json!({})).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let partial = stopped["partial_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (status, resumed) = w
        .social_auth(&json!({"provider": "corp", "partial_token": partial,
                             "email": "nomail@example.test"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{resumed}");
    secrets.extend([partial, token(&resumed)]);

    let cb = w.callback("corp", "zoe").await?;
    let (code, state) = (cb.code.unwrap_or_default(), cb.state.unwrap_or_default());
    let (status, zoe) = w
        .post_json("corp", &json!({"code": code, "state": state}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{zoe}");
    secrets.extend([code, state, token(&zoe)]);

    let dump = w.stack.dump_tables().await?;
    assert!(
        dump.contains("alice@example.test"),
        "the dump reads the tables"
    );
    for secret in &secrets {
        assert!(secret.len() >= 16, "a real secret: {secret:?}");
        assert!(
            !dump.contains(secret.as_str()),
            "{secret} stored in clear:\n{dump}"
        );
    }
    Ok(())
}

/// The real provider signs this client's id_tokens HS256 (and its
/// discovery document lists HS256): refused, since only the pinned
/// asymmetric algorithms count, unless the provider is configured to take
/// HS256.
async fn an_id_token_the_provider_signed_hs256_is_refused_unless_configured(
    mode: Mode,
) -> anyhow::Result<()> {
    let w = World::start_with(mode, |o| {
        let hs = o
            .providers_toml
            .split("\n\n")
            .find(|t| t.starts_with("[providers.corphs]"))
            .unwrap_or_default()
            .to_owned();
        let allowed = hs.replace("[providers.corphs]", "[providers.corphsok]");
        o.providers_toml.push_str(&format!(
            "\n{allowed}\nid_token_signing_algs = [\"HS256\"]\n"
        ));
    })
    .await?;
    let client = socialauth_tests::idp::HS256_CLIENT_ID;
    for (provider, accepted) in [("corphs", false), ("corphsok", true)] {
        let (code, verifier) = w.client_side_code_for(client, "alice", None).await?;
        let (status, body) = w
            .social_auth(&json!({"provider": provider, "code": code,
                                 "redirect_uri": REDIRECT_URI, "code_verifier": verifier}))
            .await;
        if accepted {
            assert!(
                status.is_success(),
                "{provider}: {body}\n{}",
                w.stack.logs()
            );
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{provider}: {body}");
            assert_eq!(body, json!({"non_field_errors": "invalid_credentials"}));
        }
    }
    Ok(())
}
