//! The test OpenID Connect provider: `tests/idp/server.js` (npm
//! `oidc-provider`), started as a child process on 127.0.0.1.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use socialauth_tests::idp::{Idp, IdpConfig};
//! let idp = Idp::start(IdpConfig::standard("http://127.0.0.1:3000/auth/callback")).await?;
//! println!("issuer {}", idp.issuer);
//! # Ok(()) }
//! ```

use crate::child::{Announced, install_once, json_config_file, run_step, spawn_announced};
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::{Child, Command};

/// How long `npm ci` may take, including waiting for another process's run.
const NPM_CI_TIMEOUT: Duration = Duration::from_secs(600);

/// The client id of [`IdpConfig::standard`]'s client.
pub const STANDARD_CLIENT_ID: &str = "socialauth-test";
/// The standard config's second client: its id_tokens are signed HS256.
pub const HS256_CLIENT_ID: &str = "socialauth-hs256";
/// The standard config's client for the app's iOS build (token login: one
/// of a provider's `client_ids`).
pub const IOS_CLIENT_ID: &str = "corp-ios";
/// The standard config's client of another app (token login: never one of
/// ours).
pub const OTHER_APP_CLIENT_ID: &str = "other-app";

/// The JSON file `server.js` reads.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IdpConfig {
    /// 0: any free port.
    pub port: u16,
    pub clients: Vec<IdpClient>,
    pub users: Vec<IdpUser>,
    /// Seconds of clock skew the IdP tolerates (oidc-provider's default is 15).
    pub clock_tolerance: u64,
    /// Lifetimes in seconds by oidc-provider model name (`AccessToken`,
    /// `AuthorizationCode`, `IdToken`, `RefreshToken`, `Session`, `Grant`,
    /// `Interaction`). Unset: 3600 s access and id tokens, 600 s codes, 14 days
    /// refresh tokens.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub ttl: std::collections::BTreeMap<String, u64>,
    /// `true`: OIDC Core's strict mode, the scopes' claims only at userinfo.
    /// `false` (default): the id_token carries them too, as Google's does.
    #[serde(default)]
    pub conform_id_token_claims: bool,
    /// `true`: every refresh grant rotates the refresh token (the old one
    /// is spent).
    #[serde(default)]
    pub rotate_refresh_tokens: bool,
}

/// One registered client (relying party).
#[derive(Clone, Serialize, Deserialize)]
pub struct IdpClient {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
    /// Default `["authorization_code", "refresh_token"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    /// Default `client_secret_basic`; `client_secret_post` and `none` work too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    /// Default RS256; `HS256` signs id_tokens with the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<String>,
}

impl IdpClient {
    /// A client with a random secret, the code and refresh grants, RS256
    /// id_tokens.
    pub fn confidential(client_id: &str, redirect_uri: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ),
            redirect_uris: vec![redirect_uri.to_owned()],
            grant_types: None,
            token_endpoint_auth_method: None,
            id_token_signed_response_alg: None,
        }
    }
}

impl std::fmt::Debug for IdpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uris", &self.redirect_uris)
            .field("grant_types", &self.grant_types)
            .field(
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
            )
            .field(
                "id_token_signed_response_alg",
                &self.id_token_signed_response_alg,
            )
            .finish()
    }
}

/// One account at the IdP. `id` is the `sub` claim; `username` is what the
/// login form takes (the email works too).
#[derive(Clone, Serialize, Deserialize)]
pub struct IdpUser {
    pub id: String,
    pub username: String,
    pub password: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: String,
    pub given_name: String,
    pub family_name: String,
}

impl std::fmt::Debug for IdpUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpUser")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("email", &self.email)
            .field("email_verified", &self.email_verified)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl IdpUser {
    pub fn new(
        username: &str,
        email: Option<&str>,
        email_verified: bool,
        given_name: &str,
        family_name: &str,
    ) -> Self {
        Self {
            id: format!("{username}-{}", uuid::Uuid::new_v4().simple()),
            username: username.to_owned(),
            password: format!("{username}-password"),
            email: email.map(str::to_owned),
            email_verified,
            name: format!("{given_name} {family_name}"),
            given_name: given_name.to_owned(),
            family_name: family_name.to_owned(),
        }
    }
}

impl IdpConfig {
    /// One confidential client, [`STANDARD_CLIENT_ID`] with a random secret,
    /// allowed `redirect_uri`, authorization code and refresh token grants; and
    /// these users (password `<username>-password`, `sub` unique per call so
    /// two IdPs never share identities):
    ///
    /// - `alice`: verified email `alice@example.test`
    /// - `bob`: unverified email `bob@example.test`
    /// - `nomail`: no email at all
    /// - `zoe`: verified email, display name `Zoë Ñandú 山田`
    pub fn standard(redirect_uri: &str) -> Self {
        Self {
            port: 0,
            clients: vec![
                IdpClient {
                    client_id: STANDARD_CLIENT_ID.to_owned(),
                    client_secret: format!(
                        "{}{}",
                        uuid::Uuid::new_v4().simple(),
                        uuid::Uuid::new_v4().simple()
                    ),
                    redirect_uris: vec![redirect_uri.to_owned()],
                    grant_types: Some(vec![
                        "authorization_code".to_owned(),
                        "refresh_token".to_owned(),
                    ]),
                    token_endpoint_auth_method: None,
                    id_token_signed_response_alg: None,
                },
                IdpClient {
                    client_id: HS256_CLIENT_ID.to_owned(),
                    client_secret: format!(
                        "{}{}",
                        uuid::Uuid::new_v4().simple(),
                        uuid::Uuid::new_v4().simple()
                    ),
                    redirect_uris: vec![redirect_uri.to_owned()],
                    grant_types: None,
                    token_endpoint_auth_method: None,
                    id_token_signed_response_alg: Some("HS256".to_owned()),
                },
                IdpClient::confidential(IOS_CLIENT_ID, redirect_uri),
                IdpClient::confidential(OTHER_APP_CLIENT_ID, redirect_uri),
            ],
            users: vec![
                IdpUser::new("alice", Some("alice@example.test"), true, "Alice", "Doe"),
                IdpUser::new("bob", Some("bob@example.test"), false, "Bob", "Roe"),
                IdpUser::new("nomail", None, false, "Noah", "Mailless"),
                IdpUser::new("zoe", Some("zoe@example.test"), true, "Zoë", "Ñandú 山田"),
            ],
            clock_tolerance: 0,
            ttl: Default::default(),
            conform_id_token_claims: false,
            rotate_refresh_tokens: false,
        }
    }

    /// The user with this `username`.
    pub fn user(&self, username: &str) -> Option<&IdpUser> {
        self.users.iter().find(|u| u.username == username)
    }
}

/// A running IdP; killed when dropped.
pub struct Idp {
    /// `http://127.0.0.1:<port>`, exactly as in its discovery document.
    pub issuer: String,
    pub config: IdpConfig,
    child: Child,
    stderr: Arc<Mutex<String>>,
    _config_file: tempfile::NamedTempFile,
}

impl std::fmt::Debug for Idp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idp")
            .field("issuer", &self.issuer)
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

impl Idp {
    /// Installs the npm packages if needed, starts `node server.js` and waits
    /// for its `IDP_READY` line.
    pub async fn start(config: IdpConfig) -> anyhow::Result<Idp> {
        let dir = idp_dir();
        ensure_node_modules(&dir).await?;

        let file = json_config_file("socialauth-idp-", &config)?;
        let command = || {
            let mut command = Command::new(node_command());
            command
                .arg("server.js")
                .arg(file.path())
                .current_dir(&dir)
                .env_remove("IDP_CONFIG");
            command
        };
        let Announced {
            child,
            url: issuer,
            stderr,
        } = spawn_announced("the test IdP (node server.js)", command, "IDP_READY ").await?;

        Ok(Idp {
            issuer,
            config,
            child,
            stderr,
            _config_file: file,
        })
    }

    /// The first client (for [`IdpConfig::standard`]: the RS256 one).
    pub fn client(&self) -> &IdpClient {
        &self.config.clients[0]
    }

    /// The user with this `username`; panics when there is none.
    pub fn user(&self, username: &str) -> &IdpUser {
        self.config
            .user(username)
            .unwrap_or_else(|| panic!("the test IdP has no user {username:?}"))
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    pub fn authorization_endpoint(&self) -> String {
        format!("{}/auth", self.issuer)
    }

    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer)
    }

    pub fn userinfo_endpoint(&self) -> String {
        format!("{}/me", self.issuer)
    }

    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    pub fn introspection_endpoint(&self) -> String {
        format!("{}/token/introspection", self.issuer)
    }

    /// What the IdP wrote on stderr so far (the last 64 KiB).
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops the IdP now (to test a provider that is down).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.child.start_kill().ok();
        self.child.wait().await.context("waiting for the IdP")?;
        Ok(())
    }
}

/// `tests/idp` in the source tree.
pub fn idp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("idp")
}

fn node_command() -> String {
    std::env::var("SOCIALAUTH_TEST_NODE").unwrap_or_else(|_| "node".to_owned())
}

/// npm writes `node_modules/.package-lock.json` at the end of an install.
/// `npm ci` has run in `dir` for its current lock file: every package
/// `package-lock.json` names is in node_modules at the version it names
/// (npm's record of what it installed, `node_modules/.package-lock.json`).
fn is_installed(dir: &Path) -> bool {
    let read = |path: std::path::PathBuf| {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
    };
    let (Some(wanted), Some(installed)) = (
        read(dir.join("package-lock.json")),
        read(dir.join("node_modules/.package-lock.json")),
    ) else {
        return false;
    };
    let Some(packages) = wanted["packages"].as_object() else {
        return false;
    };
    packages
        .iter()
        // The root, and optional packages for other platforms.
        .filter(|(path, package)| !path.is_empty() && package["optional"] != true)
        .all(|(path, package)| {
            installed["packages"][path]["version"] == package["version"]
                && dir.join(path).join("package.json").is_file()
        })
}

/// Runs `npm ci` in `dir` unless `node_modules` is complete, once across
/// test threads and test binaries.
pub async fn ensure_node_modules(dir: &Path) -> anyhow::Result<()> {
    install_once(
        "npm-ci",
        dir,
        NPM_CI_TIMEOUT,
        || is_installed(dir),
        || async {
            run_step(
                Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund"])
                    .current_dir(dir),
                &format!("npm ci in {} (is npm installed?)", dir.display()),
                NPM_CI_TIMEOUT,
            )
            .await?;
            if !is_installed(dir) {
                bail!("npm ci in {} left node_modules incomplete", dir.display());
            }
            Ok(())
        },
    )
    .await
}
