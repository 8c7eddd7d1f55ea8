//! A client SDK's access token is claimed before its profile is read; when
//! the provider fails to answer that read, nothing was spent with the
//! token, so the claim is given back and the same token works once the
//! provider is back (an SDK hands out the same token for its whole life).
//! The provider is a stub (a userinfo outage on demand); the store is
//! SQLite in memory.

use serde_json::json;
use socialauth_common::catalogue::Catalogue;
use socialauth_common::config::Settings;
use socialauth_common::crypto::{TokenCipher, generate_key};
use socialauth_common::jobs::{JobError, LoginCredential};
use socialauth_common::secret::Secret;
use socialauth_common::store;
use socialauth_worker::pipeline::{Obtained, fetch_profile};
use socialauth_worker::{Deps, WorkerError};
use std::sync::Arc;
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn deps(server: &MockServer) -> Deps {
    let base = server.uri();
    let env = [
        ("SOCIALAUTH__DATABASE__URL", "sqlite::memory:".to_owned()),
        ("SOCIALAUTH__PROVIDERS__ACME__PROTOCOL", "oauth2".into()),
        (
            "SOCIALAUTH__PROVIDERS__ACME__AUTHORIZE_URL",
            format!("{base}/authorize"),
        ),
        (
            "SOCIALAUTH__PROVIDERS__ACME__TOKEN_URL",
            format!("{base}/token"),
        ),
        (
            "SOCIALAUTH__PROVIDERS__ACME__USERINFO_URL",
            format!("{base}/me"),
        ),
        (
            "SOCIALAUTH__PROVIDERS__ACME__CLIENT_ID",
            "acme-client".into(),
        ),
        (
            "SOCIALAUTH__PROVIDERS__ACME__CLIENT_SECRET",
            "acme-secret".into(),
        ),
        // The operator's choice: no check binds the token to the app.
        (
            "SOCIALAUTH__PROVIDERS__ACME__ACCESS_TOKEN_CHECK",
            "none".into(),
        ),
        ("SOCIALAUTH__WORKER__MAX_ATTEMPTS", "1".into()),
    ];
    let settings = Settings::load_with_env(None, env.into_iter().map(|(k, v)| (k.to_owned(), v)))
        .expect("settings");
    let store = store::connect(&settings.database_url(), 1)
        .await
        .expect("store");
    store.migrate().await.expect("migrate");
    let key = generate_key();
    let cipher = Arc::new(TokenCipher::new("k1", vec![("k1", key.as_str())]).expect("cipher"));
    let catalogue = Arc::new(Catalogue::from_settings(&settings).expect("catalogue"));
    Deps::new(&settings, store, catalogue, cipher)
}

async fn sign_in(deps: &Deps, token: &str) -> Result<Obtained, WorkerError> {
    let provider = deps.catalogue.get("acme").expect("acme").clone();
    let credential = LoginCredential::AccessToken {
        access_token: Secret::new(token.to_owned()),
    };
    fetch_profile(deps, &provider, Uuid::new_v4(), &credential, None).await
}

#[tokio::test]
async fn a_token_whose_profile_read_failed_at_the_provider_can_be_sent_again() {
    let server = MockServer::start().await;
    let deps = deps(&server).await;
    let outage = Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(503))
        .mount_as_scoped(&server)
        .await;
    let failed = sign_in(&deps, "sdk-token-1").await;
    assert!(
        matches!(failed, Err(WorkerError::Job(JobError::ProviderUnavailable))),
        "{:?}",
        failed.err()
    );
    drop(outage);
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"sub": "42"})))
        .mount(&server)
        .await;
    let again = sign_in(&deps, "sdk-token-1").await.expect("signed in");
    let Obtained::Fresh(fetched) = again else {
        panic!("a replay, not a sign-in")
    };
    assert_eq!(fetched.login.profile.uid, "42");
}

#[tokio::test]
async fn a_token_the_provider_refused_stays_spent() {
    let server = MockServer::start().await;
    let deps = deps(&server).await;
    let refused = Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(401))
        .mount_as_scoped(&server)
        .await;
    assert!(matches!(
        sign_in(&deps, "sdk-token-2").await,
        Err(WorkerError::Job(JobError::InvalidCredentials))
    ));
    drop(refused);
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"sub": "42"})))
        .mount(&server)
        .await;
    // The claim stays: the same token is the first job's retry (within
    // the retry window it gets that job's outcome, later it is refused),
    // never a fresh sign-in.
    assert!(matches!(
        sign_in(&deps, "sdk-token-2").await,
        Ok(Obtained::Replay(_))
    ));
}
