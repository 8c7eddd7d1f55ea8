//! What the worker's stub-provider tests share: a worker's dependencies
//! with provider `acme` (OAuth2) on a stub server, SQLite in memory and a
//! fresh key.

use socialauth_common::catalogue::Catalogue;
use socialauth_common::config::Settings;
use socialauth_common::crypto::{TokenCipher, generate_key};
use socialauth_common::store::{self, SharedStore};
use socialauth_worker::Deps;
use std::sync::Arc;

/// The dependencies, the store and the cipher; `provider`: keys added to
/// `[providers.acme]` (lowercase names, as in the TOML file).
#[allow(dead_code)] // not every test crate of this directory uses both
pub async fn stub_deps(
    base: &str,
    provider: &[(&str, &str)],
) -> (Deps, SharedStore, Arc<TokenCipher>) {
    stub_deps_with(base, provider, &[]).await
}

/// [`stub_deps`] with more settings (`("REFRESH__LEASE_SECS", "3")`: the
/// name after `SOCIALAUTH__`).
pub async fn stub_deps_with(
    base: &str,
    provider: &[(&str, &str)],
    settings: &[(&str, &str)],
) -> (Deps, SharedStore, Arc<TokenCipher>) {
    let acme = |key: &str| format!("SOCIALAUTH__PROVIDERS__ACME__{}", key.to_uppercase());
    let mut env = vec![
        (
            "SOCIALAUTH__DATABASE__URL".to_owned(),
            "sqlite::memory:".to_owned(),
        ),
        (
            "SOCIALAUTH__WORKER__MAX_ATTEMPTS".to_owned(),
            "1".to_owned(),
        ),
        (acme("protocol"), "oauth2".to_owned()),
        (acme("authorize_url"), format!("{base}/authorize")),
        (acme("token_url"), format!("{base}/token")),
        (acme("userinfo_url"), format!("{base}/me")),
        (acme("client_id"), "acme-client".to_owned()),
        (acme("client_secret"), "acme-secret".to_owned()),
    ];
    env.extend(provider.iter().map(|(k, v)| (acme(k), (*v).to_owned())));
    env.extend(
        settings
            .iter()
            .map(|(k, v)| (format!("SOCIALAUTH__{k}"), (*v).to_owned())),
    );
    let settings = Settings::load_with_env(None, env).expect("settings");
    let store = store::connect(&settings.database_url(), 1)
        .await
        .expect("store");
    store.migrate().await.expect("migrate");
    let key = generate_key();
    let cipher = Arc::new(TokenCipher::new("k1", vec![("k1", key.as_str())]).expect("cipher"));
    let catalogue = Arc::new(Catalogue::from_settings(&settings).expect("catalogue"));
    let deps = Deps::new(&settings, store.clone(), catalogue, cipher.clone());
    (deps, store, cipher)
}
