//! The test OAuth 1.0a provider, shaped like Twitter's: `tests/oauth1/server.py`
//! (PyPI `oauthlib`), started as a child process on 127.0.0.1 from a virtual
//! environment at `tests/oauth1/.venv` that is created on first use.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use socialauth_tests::oauth1_idp::{Oauth1Config, Oauth1Idp};
//! let idp = Oauth1Idp::start(Oauth1Config::standard()).await?;
//! println!("request tokens at {}", idp.request_token_url());
//! # Ok(()) }
//! ```

use crate::child::{Announced, install_once, json_config_file, run_step, spawn_announced};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::{Child, Command};

/// How long creating the venv and `pip install` may take, including waiting
/// for another process's run.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// Written into the venv after a successful install: the SHA-256 of
/// `requirements.txt` (lowercase hex). `tests/run.sh` writes the same file.
const MARKER: &str = ".socialauth-requirements.sha256";

/// The consumer key of [`Oauth1Config::standard`]'s consumer.
pub const STANDARD_CONSUMER_KEY: &str = "socialauth-consumer";

/// The JSON file `server.py` reads.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Oauth1Config {
    /// 0: any free port.
    pub port: u16,
    pub consumers: Vec<Oauth1Consumer>,
    pub users: Vec<Oauth1User>,
    /// Seconds a request token stays usable (unset: 600, Twitter's 10 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_token_ttl: Option<u64>,
}

/// One registered application (consumer). `key` is 1 to 100 of
/// `A-Z a-z 0-9 - _`.
#[derive(Clone, Serialize, Deserialize)]
pub struct Oauth1Consumer {
    pub key: String,
    pub secret: String,
}

impl std::fmt::Debug for Oauth1Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oauth1Consumer")
            .field("key", &self.key)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// One account at the provider. `id` is decimal digits (the `user_id` of the
/// access token response, `id`/`id_str` at `verify_credentials`); the login
/// form takes the screen name (any case) or the email.
#[derive(Clone, Serialize, Deserialize)]
pub struct Oauth1User {
    pub id: String,
    pub screen_name: String,
    pub password: String,
    pub name: String,
    pub email: Option<String>,
}

impl std::fmt::Debug for Oauth1User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oauth1User")
            .field("id", &self.id)
            .field("screen_name", &self.screen_name)
            .field("password", &"<redacted>")
            .field("name", &self.name)
            .field("email", &self.email)
            .finish()
    }
}

impl Oauth1User {
    fn new(screen_name: &str, name: &str, email: Option<&str>) -> Self {
        Self {
            id: random_user_id(),
            screen_name: screen_name.to_owned(),
            password: format!("{screen_name}-password"),
            name: name.to_owned(),
            email: email.map(str::to_owned),
        }
    }
}

/// A Twitter-sized id (19 digits, below `i64::MAX`), unique per call so two
/// providers never share identities. Past 2^53 on purpose: a client that
/// reads `id` as a float instead of `id_str` gets it wrong.
fn random_user_id() -> String {
    let random = uuid::Uuid::new_v4().as_u128() as u64;
    (1_000_000_000_000_000_000 + random % 8_000_000_000_000_000_000).to_string()
}

fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Oauth1Config {
    /// One consumer, [`STANDARD_CONSUMER_KEY`] with a random secret, and these
    /// users (password `<screen_name>-password`, ids random per call):
    ///
    /// - `tw_alice`: email `tw_alice@example.test`
    /// - `tw_nomail`: no email
    /// - `tw_zoe`: name `Zoë Ñandú 山田`, email `tw_zoe@example.test`
    pub fn standard() -> Self {
        Self {
            port: 0,
            consumers: vec![Oauth1Consumer {
                key: STANDARD_CONSUMER_KEY.to_owned(),
                secret: random_secret(),
            }],
            users: vec![
                Oauth1User::new("tw_alice", "Alice Tweeter", Some("tw_alice@example.test")),
                Oauth1User::new("tw_nomail", "Noah Mailless", None),
                Oauth1User::new("tw_zoe", "Zoë Ñandú 山田", Some("tw_zoe@example.test")),
            ],
            request_token_ttl: None,
        }
    }

    /// The user with this `screen_name`.
    pub fn user(&self, screen_name: &str) -> Option<&Oauth1User> {
        self.users.iter().find(|u| u.screen_name == screen_name)
    }
}

/// A running provider; killed when dropped.
pub struct Oauth1Idp {
    /// `http://127.0.0.1:<port>`, as the provider announced it.
    pub base_url: String,
    pub config: Oauth1Config,
    child: Child,
    stderr: Arc<Mutex<String>>,
    _config_file: tempfile::NamedTempFile,
}

impl std::fmt::Debug for Oauth1Idp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oauth1Idp")
            .field("base_url", &self.base_url)
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

impl Oauth1Idp {
    /// Creates the venv and installs `requirements.txt` if needed, starts
    /// `.venv/bin/python server.py` and waits for its `OAUTH1_READY` line.
    pub async fn start(config: Oauth1Config) -> anyhow::Result<Oauth1Idp> {
        let dir = oauth1_dir();
        ensure_venv(&dir).await?;

        let file = json_config_file("socialauth-oauth1-", &config)?;
        let command = || {
            let mut command = Command::new(venv_python(&dir));
            // -I: ignore PYTHON* variables and the user's site-packages;
            // -B: no __pycache__ in the source tree; -u: unbuffered output.
            command
                .args(["-I", "-B", "-u", "server.py"])
                .arg(file.path())
                .current_dir(&dir);
            command
        };
        let Announced {
            child,
            url: base_url,
            stderr,
        } = spawn_announced(
            "the test OAuth1 provider (server.py)",
            command,
            "OAUTH1_READY ",
        )
        .await?;

        Ok(Oauth1Idp {
            base_url,
            config,
            child,
            stderr,
            _config_file: file,
        })
    }

    /// The first (for [`Oauth1Config::standard`]: the only) consumer.
    pub fn consumer(&self) -> &Oauth1Consumer {
        &self.config.consumers[0]
    }

    /// The user with this `screen_name`; panics when there is none.
    pub fn user(&self, screen_name: &str) -> &Oauth1User {
        self.config
            .user(screen_name)
            .unwrap_or_else(|| panic!("the test OAuth1 provider has no user {screen_name:?}"))
    }

    /// `POST`, signed by the consumer, with `oauth_callback`.
    pub fn request_token_url(&self) -> String {
        format!("{}/oauth/request_token", self.base_url)
    }

    /// Where the user is sent with `?oauth_token=`: `/oauth/authorize`.
    pub fn authorize_url(&self) -> String {
        format!("{}/oauth/authorize", self.base_url)
    }

    /// "Sign in with Twitter"'s `/oauth/authenticate`; the same page as
    /// [`authorize_url`](Self::authorize_url) here.
    pub fn authenticate_url(&self) -> String {
        format!("{}/oauth/authenticate", self.base_url)
    }

    /// `authorize_url()?oauth_token=<request token>`.
    pub fn authorization_url(&self, oauth_token: &str) -> String {
        let mut url = url::Url::parse(&self.authorize_url()).expect("the base URL is a URL");
        url.query_pairs_mut()
            .append_pair("oauth_token", oauth_token);
        url.into()
    }

    /// `POST`, signed with the request token and its secret, with
    /// `oauth_verifier`.
    pub fn access_token_url(&self) -> String {
        format!("{}/oauth/access_token", self.base_url)
    }

    /// `GET`, signed with the access token; without a query (add
    /// `include_email=true` to ask for the email, and sign it too).
    pub fn verify_credentials_url(&self) -> String {
        format!("{}/1.1/account/verify_credentials.json", self.base_url)
    }

    /// What the provider wrote on stderr so far (the last 64 KiB).
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops the provider now (to test a provider that is down).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.child.start_kill().ok();
        self.child
            .wait()
            .await
            .context("waiting for the OAuth1 provider")?;
        Ok(())
    }
}

/// `tests/oauth1` in the source tree.
pub fn oauth1_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oauth1")
}

/// The interpreter that creates the venv (`SOCIALAUTH_TEST_PYTHON`, else
/// `python3`).
fn base_python() -> String {
    std::env::var("SOCIALAUTH_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn venv_dir(dir: &Path) -> PathBuf {
    dir.join(".venv")
}

pub fn venv_python(dir: &Path) -> PathBuf {
    venv_dir(dir).join("bin").join("python")
}

/// SHA-256 of `requirements.txt`, lowercase hex.
fn requirements_hash(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("requirements.txt");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The venv's interpreter runs (`is_file` follows the symlink to the base
/// interpreter) and the marker names the current requirements.
fn is_installed(dir: &Path, hash: &str) -> bool {
    venv_python(dir).is_file()
        && std::fs::read_to_string(venv_dir(dir).join(MARKER))
            .is_ok_and(|marker| marker.trim() == hash)
}

/// Creates `dir/.venv` (`tests/oauth1`, `tests/openapi`) and installs
/// `dir/requirements.txt` into it unless the marker says it is done. Test
/// threads and concurrent test binaries serialise on a lock directory
/// (`mkdir` is atomic).
pub async fn ensure_venv(dir: &Path) -> anyhow::Result<()> {
    let hash = requirements_hash(dir)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    install_once(
        &format!("{name}-venv"),
        dir,
        INSTALL_TIMEOUT,
        || is_installed(dir, &hash),
        || async {
            let venv = venv_dir(dir);
            let python = base_python();
            run_step(
            Command::new(&python)
                .args(["-m", "venv", "--clear"])
                .arg(&venv)
                .current_dir(dir),
            &format!(
                "{python} -m venv {} (on Debian: apt-get install python3-venv; tests/run.sh does)",
                venv.display()
            ),
            INSTALL_TIMEOUT,
        )
        .await?;
            run_step(
                Command::new(venv_python(dir))
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--disable-pip-version-check",
                        "--no-input",
                        "-r",
                        "requirements.txt",
                    ])
                    .current_dir(dir),
                &format!("pip install -r requirements.txt in {}", dir.display()),
                INSTALL_TIMEOUT,
            )
            .await?;
            // Write the marker atomically: a reader sees the old state or the new.
            let marker = venv.join(MARKER);
            let partial = venv.join(format!("{MARKER}.partial"));
            std::fs::write(&partial, format!("{hash}\n"))
                .with_context(|| format!("writing {}", partial.display()))?;
            std::fs::rename(&partial, &marker)
                .with_context(|| format!("writing {}", marker.display()))?;

            Ok(())
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_users_have_twitter_shaped_ids_and_the_documented_emails() {
        let config = Oauth1Config::standard();
        for user in &config.users {
            assert_eq!(user.id.len(), 19, "{}", user.id);
            let id: u64 = user.id.parse().expect("digits");
            assert!(id > 1 << 53 && id < i64::MAX as u64);
            assert_eq!(user.password, format!("{}-password", user.screen_name));
        }
        assert_eq!(
            config.user("tw_alice").and_then(|u| u.email.as_deref()),
            Some("tw_alice@example.test")
        );
        assert_eq!(
            config.user("tw_nomail").map(|u| u.email.is_none()),
            Some(true)
        );
        assert_eq!(
            config.user("tw_zoe").map(|u| u.name.as_str()),
            Some("Zoë Ñandú 山田")
        );
        assert_ne!(
            Oauth1Config::standard().users[0].id,
            config.users[0].id,
            "ids are random per call"
        );
    }

    #[test]
    fn debug_output_redacts_secrets_and_passwords() {
        let config = Oauth1Config::standard();
        let text = format!("{config:?}");
        assert!(!text.contains(&config.consumers[0].secret));
        for user in &config.users {
            assert!(!text.contains(&user.password), "{text}");
        }
        assert!(text.contains(STANDARD_CONSUMER_KEY));
    }

    #[test]
    fn config_json_has_the_server_shape() {
        let value = serde_json::to_value(Oauth1Config::standard()).expect("json");
        assert_eq!(value["port"], 0);
        assert_eq!(value["consumers"][0]["key"], STANDARD_CONSUMER_KEY);
        assert!(value["users"][1]["email"].is_null());
        assert!(value.get("request_token_ttl").is_none());
    }
}
