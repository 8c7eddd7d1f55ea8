//! A client SDK's access token is claimed before its profile is read; when
//! the provider fails to answer that read, nothing was spent with the
//! token, so the claim is given back and the same token works once the
//! provider is back (an SDK hands out the same token for its whole life).
//! The provider is a stub (a userinfo outage on demand); the store is
//! SQLite in memory.

mod support;

use serde_json::json;
use socialauth_common::jobs::{JobError, LoginCredential};
use socialauth_common::secret::Secret;
use socialauth_worker::pipeline::{Obtained, fetch_profile};
use socialauth_worker::{Deps, WorkerError};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn deps(server: &MockServer) -> Deps {
    // The operator's choice: no check binds the token to the app.
    support::stub_deps(&server.uri(), &[("access_token_check", "none")])
        .await
        .0
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
