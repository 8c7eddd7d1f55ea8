//! Token login's access-token checks against wiremock on 127.0.0.1:
//! Facebook's `debug_token` and Google's `tokeninfo` (the presets pointed
//! at the mock), what they send, how their answers bind a token to the
//! app, and their faults. RFC 7662 introspection against a real provider
//! (oidc-provider) is covered by the integration tests crate.

use serde_json::json;
use socialauth_common::catalogue::{Catalogue, ProviderConfig};
use socialauth_common::config::Settings;
use socialauth_common::secret::Secret;
use socialauth_worker::providers::{ProviderClient, ProviderError};
use std::time::Duration;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const APP_ID: &str = "111";
const APP_SECRET: &str = "app-secret-value";
const TOKEN: &str = "user-access-token-value";

fn client() -> ProviderClient {
    ProviderClient::new(Duration::from_secs(2), 2)
}

/// The `preset` named `name` with its check and userinfo on `server`, and
/// `222` as the app's other client id.
fn preset(server: &MockServer, name: &str, check_path: &str) -> ProviderConfig {
    let base = server.uri();
    let key = name.to_uppercase();
    let var = |k: &str, v: String| (format!("SOCIALAUTH__PROVIDERS__{key}__{k}"), v);
    let settings = Settings::load_with_env(
        None,
        vec![
            var("PRESET", name.into()),
            var("CLIENT_ID", APP_ID.into()),
            var("CLIENT_SECRET", APP_SECRET.into()),
            var("INTROSPECTION_URL", format!("{base}{check_path}")),
            var("USERINFO_URL", format!("{base}/me")),
        ],
    )
    .expect("settings");
    let mut p = Catalogue::from_settings(&settings)
        .expect("catalogue")
        .get(name)
        .expect("provider")
        .as_ref()
        .clone();
    p.token_login.client_ids = vec!["222".into()];
    p
}

fn secret(v: &str) -> Secret {
    Secret::new(v.to_owned())
}

#[tokio::test]
async fn debug_token_binds_the_token_to_one_of_the_apps_then_userinfo_makes_the_profile() {
    let server = MockServer::start().await;
    let p = preset(&server, "facebook", "/debug_token");
    Mock::given(method("GET"))
        .and(path("/debug_token"))
        .and(query_param("input_token", TOKEN))
        .and(query_param(
            "access_token",
            format!("{APP_ID}|{APP_SECRET}"),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": {"app_id": "222", "is_valid": true, "user_id": "10",
                            "expires_at": 4_000_000_000_i64}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"id": "10", "name": "Ann Lee", "first_name": "Ann", "last_name": "Lee",
                   "email": "ann@example.test"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let c = client();
    let facts = c
        .check_access_token(&p, &secret(TOKEN))
        .await
        .expect("checked")
        .expect("a check");
    assert_eq!(facts.expires_at, Some(4_000_000_000_000));
    let login = c
        .access_token_login(&p, &secret(TOKEN), &facts)
        .await
        .expect("login");
    assert_eq!(login.profile.uid, "10");
    assert_eq!(login.profile.first_name.as_deref(), Some("Ann"));
    assert_eq!(login.tokens.access_token.expose(), TOKEN);
    assert_eq!(login.tokens.expires_at, Some(4_000_000_000_000));
}

#[tokio::test]
async fn debug_token_refuses_another_apps_or_an_invalid_token_and_reports_outages() {
    for (answer, refused) in [
        (
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"app_id": "999", "is_valid": true}})),
            true,
        ),
        (
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"app_id": APP_ID, "is_valid": false}})),
            true,
        ),
        (
            ResponseTemplate::new(400).set_body_json(json!({"error": {"code": 190}})),
            true,
        ),
        (ResponseTemplate::new(503), false),
    ] {
        let server = MockServer::start().await;
        let p = preset(&server, "facebook", "/debug_token");
        Mock::given(path("/debug_token"))
            .respond_with(answer)
            .mount(&server)
            .await;
        let err = client()
            .check_access_token(&p, &secret(TOKEN))
            .await
            .expect_err("not ours");
        if refused {
            assert!(matches!(err, ProviderError::Refused(_)), "{err:?}");
        } else {
            assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
        }
        assert!(!format!("{err} {err:?}").contains(TOKEN));
        assert!(!format!("{err} {err:?}").contains(APP_SECRET));
    }
}

#[tokio::test]
async fn tokeninfo_binds_by_audience_or_authorized_party() {
    for (answer, accepted) in [
        (
            json!({"aud": APP_ID, "sub": "7", "exp": "4000000000"}),
            true,
        ),
        (json!({"aud": "web", "azp": "222", "sub": "7"}), true),
        (json!({"aud": "other", "azp": "other", "sub": "7"}), false),
    ] {
        let server = MockServer::start().await;
        let p = preset(&server, "google", "/tokeninfo");
        Mock::given(method("GET"))
            .and(path("/tokeninfo"))
            .and(query_param("access_token", TOKEN))
            .respond_with(ResponseTemplate::new(200).set_body_json(answer.clone()))
            .mount(&server)
            .await;
        let result = client().check_access_token(&p, &secret(TOKEN)).await;
        if accepted {
            assert!(result.is_ok(), "{answer}: {result:?}");
        } else {
            assert!(
                matches!(result, Err(ProviderError::Refused(_))),
                "{answer}: {result:?}"
            );
        }
    }
    // An invalid token is a 400 at tokeninfo.
    let server = MockServer::start().await;
    let p = preset(&server, "google", "/tokeninfo");
    Mock::given(path("/tokeninfo"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(json!({"error_description": "Invalid Value"})),
        )
        .mount(&server)
        .await;
    assert!(matches!(
        client().check_access_token(&p, &secret(TOKEN)).await,
        Err(ProviderError::Refused(_))
    ));
}
