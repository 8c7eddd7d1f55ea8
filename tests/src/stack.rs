//! Starts socialauth as its users run it: `socialauth-api` and
//! `socialauth-worker` as separate processes on a fresh PostgreSQL database
//! and uniquely named RabbitMQ queues (production mode), or one
//! `socialauth-api` process with nothing configured (embedded mode).

use crate::gate::{self, Gate};
use anyhow::{Context, bail};
use serde_json::Value;
use socialauth_common::store::{self, SharedStore};
use sqlx::Connection;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// Where the tests find PostgreSQL (an admin connection).
pub fn admin_database_url() -> String {
    std::env::var("SOCIALAUTH_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into())
}

pub fn amqp_url() -> String {
    std::env::var("SOCIALAUTH_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A built binary of the workspace (`cargo build --bins` once if missing).
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let path = target.join("debug").join(name);
    if !path.exists() {
        BUILT
            .get_or_init(|| {
                let status = std::process::Command::new(env!("CARGO"))
                    .args([
                        "build",
                        "-p",
                        "socialauth-api",
                        "-p",
                        "socialauth-worker",
                        "--bins",
                    ])
                    .current_dir(workspace_root())
                    .status()
                    .map_err(|e| e.to_string())?;
                status
                    .success()
                    .then_some(())
                    .ok_or_else(|| "cargo build failed".to_owned())
            })
            .clone()
            .map_err(anyhow::Error::msg)?;
    }
    Ok(path)
}

/// A database of its own, dropped (best effort) with this value.
pub struct TestDatabase {
    pub url: String,
    name: String,
}

impl TestDatabase {
    pub async fn create() -> anyhow::Result<Self> {
        let admin = admin_database_url();
        let name = format!("socialauth_t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .context("connect to PostgreSQL (is it running on 127.0.0.1:5432?)")?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await?;
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b.to_owned())
            .unwrap_or(admin.clone());
        Ok(Self {
            url: format!("{base}/{name}"),
            name,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin = admin_database_url();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

/// A child process whose output goes to a log file; killed when dropped.
pub struct Process {
    child: Child,
    pub log: PathBuf,
}

impl Process {
    fn spawn(bin: &Path, args: &[&str], cwd: &Path, log: PathBuf) -> anyhow::Result<Self> {
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let child = Command::new(bin)
            .args(args)
            .current_dir(cwd)
            .env("RUST_LOG", "info")
            .env_remove("SOCIALAUTH_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        Ok(Self { child, log })
    }

    /// Stops the process (SIGKILL) and waits for it.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// Asks the process to stop (SIGTERM), as an orchestrator does.
    pub fn terminate(&self) -> anyhow::Result<()> {
        let pid = self.child.id().context("the process has exited")?;
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM {pid} failed");
        Ok(())
    }

    /// Waits at most `timeout` for the process to exit; its status.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// How to run the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// PostgreSQL + RabbitMQ, api and worker as separate processes.
    Production,
    /// Nothing configured but the providers: SQLite, in-process queue.
    Embedded,
}

pub struct StackOptions {
    pub mode: Mode,
    /// `[providers.*]` tables, as TOML.
    pub providers_toml: String,
    pub allowed_redirect_uris: Vec<String>,
    pub reply_timeout_ms: u64,
    /// Start a worker with the api (production mode).
    pub start_worker: bool,
    /// Extra lines for `[security]`.
    pub security_toml: String,
    /// Extra lines for `[server]`; by default no per-client rate (every
    /// test client is 127.0.0.1).
    pub server_toml: String,
    /// Extra lines for `[queue]` (production mode).
    pub queue_toml: String,
    /// Extra lines for `[worker]`.
    pub worker_toml: String,
    /// Production mode: PostgreSQL and RabbitMQ through a [`Gate`] each,
    /// which a fault test closes and opens.
    pub gated: bool,
    /// `[server] bind`; by default port 0, the port the api announces.
    pub bind: String,
    /// More tables (`[demo]` …), placed before the providers.
    pub extra_toml: String,
}

impl StackOptions {
    pub fn new(mode: Mode, providers_toml: String, redirect_uri: &str) -> Self {
        Self {
            mode,
            providers_toml,
            allowed_redirect_uris: vec![redirect_uri.to_owned()],
            reply_timeout_ms: 30_000,
            start_worker: true,
            security_toml: String::new(),
            server_toml: "rate_limit_per_minute = 0\n".into(),
            queue_toml: String::new(),
            worker_toml: String::new(),
            gated: false,
            bind: "127.0.0.1:0".into(),
            extra_toml: String::new(),
        }
    }
}

pub struct Stack {
    pub base_url: String,
    pub mode: Mode,
    pub api: Process,
    pub workers: Vec<Process>,
    pub config_path: PathBuf,
    pub database: Option<TestDatabase>,
    pub queue_prefix: String,
    /// The gate in front of PostgreSQL ([`StackOptions::gated`]).
    pub database_gate: Option<Gate>,
    /// The gate in front of RabbitMQ ([`StackOptions::gated`]).
    pub queue_gate: Option<Gate>,
    /// More api processes on the same configuration ([`Stack::start_api`]),
    /// with their base URLs.
    pub more_apis: Vec<(Process, String)>,
    dir: tempfile::TempDir,
    worker_count: usize,
    api_restarts: usize,
    /// Configurations written by [`Stack::set_keys`].
    key_configs: usize,
}

/// The port the api says it listens on ("listening … port=N" in its
/// log). It binds port 0: a port probed free and bound later could be
/// taken in between by another test's process.
async fn announced_port(api: &mut Process) -> anyhow::Result<u16> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(port) = listening_port(&api.output()) {
            return Ok(port);
        }
        if let Ok(Some(status)) = api.child.try_wait() {
            bail!(
                "api exited ({status}) before listening; its log:\n{}",
                api.output()
            );
        }
        if Instant::now() > deadline {
            bail!("api did not listen in time; its log:\n{}", api.output());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `port=N` of the log's "listening" line (colours or not).
fn listening_port(log: &str) -> Option<u16> {
    log.lines()
        .filter(|l| l.contains("listening"))
        .find_map(|line| {
            let plain = without_colours(line);
            let digits: String = plain
                .split("port=")
                .nth(1)?
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
}

/// `line` without its ANSI colour sequences (ESC [ … letter).
fn without_colours(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

impl Stack {
    pub async fn start(opts: StackOptions) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let prefix = format!("t_{}.", uuid::Uuid::new_v4().simple());
        let mut config = format!(
            "[server]\nbind = {:?}\nreply_timeout_ms = {}\n{}\n",
            opts.bind, opts.reply_timeout_ms, opts.server_toml
        );
        let mut database_gate = None;
        let mut queue_gate = None;
        let database = match opts.mode {
            Mode::Production => {
                let db = TestDatabase::create().await?;
                let (mut database_url, mut queue_url) = (db.url.clone(), amqp_url());
                if opts.gated {
                    let gate = Gate::start(gate::address_of(&database_url)?).await?;
                    database_url = gate.url_through(&database_url)?;
                    database_gate = Some(gate);
                    let gate = Gate::start(gate::address_of(&queue_url)?).await?;
                    queue_url = gate.url_through(&queue_url)?;
                    queue_gate = Some(gate);
                }
                config.push_str(&format!(
                    "[database]\nurl = {database_url:?}\nmax_connections = 8\n\n[queue]\namqp_url = {queue_url:?}\nname_prefix = {prefix:?}\nprefetch = 32\n{}\n[worker]\nmetrics_bind = \"127.0.0.1:0\"\n{}\n\n",
                    opts.queue_toml, opts.worker_toml
                ));
                Some(db)
            }
            Mode::Embedded => {
                if !opts.worker_toml.is_empty() {
                    config.push_str(&format!("[worker]\n{}\n\n", opts.worker_toml));
                }
                None
            }
        };
        let key = socialauth_common::crypto::generate_key();
        let key_line = match opts.mode {
            Mode::Production => format!("encryption_key = {key:?}\n"),
            // The embedded default makes and keeps its own key.
            Mode::Embedded => String::new(),
        };
        config.push_str(&format!(
            "[security]\nallowed_redirect_uris = {}\n{key_line}{}\n\n{}\n{}\n",
            toml_list(&opts.allowed_redirect_uris),
            opts.security_toml,
            opts.extra_toml,
            opts.providers_toml
        ));
        let config_path = dir.path().join("socialauth.toml");
        std::fs::write(&config_path, &config)?;
        let config_arg = config_path.display().to_string();

        let api_bin = binary("socialauth-api")?;
        if opts.mode == Mode::Production {
            let status = Command::new(&api_bin)
                .args(["--config", &config_arg, "migrate"])
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .status()
                .await?;
            if !status.success() {
                bail!("socialauth-api migrate failed");
            }
        }
        let mut api = Process::spawn(
            &api_bin,
            &["--config", &config_arg],
            dir.path(),
            dir.path().join("api.log"),
        )?;
        let port = announced_port(&mut api).await?;
        let mut stack = Self {
            base_url: format!("http://127.0.0.1:{port}"),
            mode: opts.mode,
            api,
            workers: Vec::new(),
            config_path,
            database,
            queue_prefix: prefix,
            database_gate,
            queue_gate,
            more_apis: Vec::new(),
            dir,
            worker_count: 0,
            api_restarts: 0,
            key_configs: 0,
        };
        if opts.mode == Mode::Production && opts.start_worker {
            stack.start_worker()?;
        }
        stack.wait_ready().await?;
        Ok(stack)
    }

    /// Starts one more `socialauth-worker` process.
    pub fn start_worker(&mut self) -> anyhow::Result<()> {
        let path = self.config_path.clone();
        self.start_worker_with(&path)
    }

    /// Rotates the encryption key, as an operator does: a new current key
    /// (`k2`), the old one kept as a previous key; the api restarts with
    /// it. Workers already running keep the old configuration (a rolling
    /// deploy half done); [`Stack::start_worker`] starts new ones with the
    /// new one. Returns the old configuration's path
    /// ([`Stack::start_worker_with`]).
    pub async fn rotate_key(&mut self) -> anyhow::Result<PathBuf> {
        let old_path = self.config_path.clone();
        let old = std::fs::read_to_string(&old_path)?;
        let line = old
            .lines()
            .find(|l| l.starts_with("encryption_key = "))
            .context("a production configuration names its key")?
            .to_owned();
        let old_key = line.trim_start_matches("encryption_key = ").to_owned();
        let new_key = socialauth_common::crypto::generate_key();
        let rotated = old.replace(
            &line,
            &format!(
                "encryption_key = {new_key:?}\nencryption_key_id = \"k2\"\n\
                 previous_encryption_keys = {{ k1 = {old_key} }}"
            ),
        );
        let new_path = self.dir.path().join("socialauth-rotated.toml");
        std::fs::write(&new_path, rotated)?;
        self.config_path = new_path;
        self.restart_api().await?;
        Ok(old_path)
    }

    /// The current key of the configuration (id, base64), the embedded
    /// default's from its key file beside its database.
    pub fn current_key(&self) -> anyhow::Result<(String, String)> {
        let settings = socialauth_common::config::Settings::load(Some(&self.config_path))?;
        let id = settings.security.encryption_key_id.clone();
        let key = match &settings.security.encryption_key {
            Some(key) => key.expose().clone(),
            None => std::fs::read_to_string(self.dir.path().join("socialauth.db.key"))?
                .trim()
                .to_owned(),
        };
        Ok((id, key))
    }

    /// Configures the keys, as an operator does: `current` (id, base64)
    /// and `previous` ones; the api restarts with them, and (production
    /// mode) the workers are replaced by as many on the new configuration.
    pub async fn set_keys(
        &mut self,
        current: (&str, &str),
        previous: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let old = std::fs::read_to_string(&self.config_path)?;
        let kept: Vec<&str> = old
            .lines()
            .filter(|l| {
                ![
                    "encryption_key ",
                    "encryption_key_id ",
                    "previous_encryption_keys ",
                ]
                .iter()
                .any(|k| l.starts_with(k))
            })
            .collect();
        let previous = previous
            .iter()
            .map(|(id, key)| format!("{id} = {key:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let keys = format!(
            "[security]\nencryption_key = {:?}\nencryption_key_id = {:?}\n\
             previous_encryption_keys = {{ {previous} }}",
            current.1, current.0
        );
        let config = kept.join("\n").replacen("[security]", &keys, 1);
        self.key_configs += 1;
        let path = self
            .dir
            .path()
            .join(format!("socialauth-keys-{}.toml", self.key_configs));
        std::fs::write(&path, config)?;
        self.config_path = path;
        self.restart_api().await?;
        if self.mode == Mode::Production {
            let workers = self.workers.len();
            self.stop_workers().await;
            for _ in 0..workers {
                self.start_worker()?;
            }
        }
        Ok(())
    }

    /// Restarts the api with the current configuration file (it listens on
    /// a new port: [`Stack::url`] follows).
    pub async fn restart_api(&mut self) -> anyhow::Result<()> {
        let config_arg = self.config_path.display().to_string();
        let restarts = self.api_restarts + 1;
        let mut api = Process::spawn(
            &binary("socialauth-api")?,
            &["--config", &config_arg],
            self.dir.path(),
            self.dir.path().join(format!("api-{restarts}.log")),
        )?;
        let port = announced_port(&mut api).await?;
        let old = std::mem::replace(&mut self.api, api);
        old.kill().await;
        self.api_restarts = restarts;
        self.base_url = format!("http://127.0.0.1:{port}");
        self.wait_ready().await
    }

    /// Starts one more api process on the current configuration and
    /// returns its base URL (it is also in [`Stack::more_apis`]).
    pub async fn start_api(&mut self) -> anyhow::Result<String> {
        let config_arg = self.config_path.display().to_string();
        let n = self.more_apis.len() + 1;
        let mut api = Process::spawn(
            &binary("socialauth-api")?,
            &["--config", &config_arg],
            self.dir.path(),
            self.dir.path().join(format!("api-more-{n}.log")),
        )?;
        let port = announced_port(&mut api).await?;
        let base = format!("http://127.0.0.1:{port}");
        wait_ready_at(&base, &api).await?;
        self.more_apis.push((api, base.clone()));
        Ok(base)
    }

    /// Starts one more `socialauth-worker` process with the configuration
    /// at `path` (an older one: [`Stack::rotate_key`]).
    pub fn start_worker_with(&mut self, path: &Path) -> anyhow::Result<()> {
        self.worker_count += 1;
        let log = self
            .dir
            .path()
            .join(format!("worker-{}.log", self.worker_count));
        let config_arg = path.display().to_string();
        let worker = Process::spawn(
            &binary("socialauth-worker")?,
            &["--config", &config_arg],
            self.dir.path(),
            log,
        )?;
        self.workers.push(worker);
        Ok(())
    }

    /// Kills every worker process.
    pub async fn stop_workers(&mut self) {
        for w in self.workers.drain(..) {
            w.kill().await;
        }
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        wait_ready_at(&self.base_url, &self.api).await
    }

    /// The embedded default's SQLite database.
    pub fn sqlite_url(&self) -> String {
        format!(
            "sqlite://{}",
            self.dir.path().join("socialauth.db").display()
        )
    }

    /// The store the running stack uses (to arrange or inspect data).
    pub async fn store(&self) -> anyhow::Result<SharedStore> {
        let url = match &self.database {
            Some(db) => db.url.clone(),
            None => self.sqlite_url(),
        };
        Ok(store::connect(&url, 2).await?)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Every row of every table of the stack's database as text, one line
    /// a row (to look for what must never be stored in clear).
    pub async fn dump_tables(&self) -> anyhow::Result<String> {
        use sqlx::Row;
        let mut out = String::new();
        match &self.database {
            Some(db) => {
                let mut conn = sqlx::PgConnection::connect(&db.url).await?;
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
                )
                .fetch_all(&mut conn)
                .await?;
                for table in tables {
                    let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                        "SELECT t::text FROM \"{table}\" t"
                    )))
                    .fetch_all(&mut conn)
                    .await?;
                    for row in rows {
                        out.push_str(&format!("{table}: {row}\n"));
                    }
                }
            }
            None => {
                let mut conn = sqlx::SqliteConnection::connect(&self.sqlite_url()).await?;
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT name FROM sqlite_master WHERE type = 'table' \
                     AND name NOT LIKE 'sqlite_%'",
                )
                .fetch_all(&mut conn)
                .await?;
                for table in tables {
                    let columns: Vec<String> =
                        sqlx::query_scalar("SELECT name FROM pragma_table_info(?1)")
                            .bind(&table)
                            .fetch_all(&mut conn)
                            .await?;
                    let text = columns
                        .iter()
                        .map(|c| format!("COALESCE(CAST(\"{c}\" AS TEXT), '')"))
                        .collect::<Vec<_>>()
                        .join(" || '|' || ");
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT CAST({text} AS BLOB) AS row_text FROM \"{table}\""
                    )))
                    .fetch_all(&mut conn)
                    .await?;
                    for row in rows {
                        let raw: Vec<u8> = row.try_get("row_text")?;
                        let text = String::from_utf8_lossy(&raw);
                        out.push_str(&format!("{table}: {text}\n"));
                    }
                }
            }
        }
        Ok(out)
    }

    /// All process logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = format!("--- api ---\n{}", self.api.output());
        for (i, w) in self.workers.iter().enumerate() {
            out.push_str(&format!("\n--- worker {i} ---\n{}", w.output()));
        }
        for (i, (a, _)) in self.more_apis.iter().enumerate() {
            out.push_str(&format!("\n--- api {} ---\n{}", i + 2, a.output()));
        }
        out
    }
}

async fn wait_ready_at(base_url: &str, api: &Process) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{base_url}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("api not ready in time; its log:\n{}", api.output());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `GET url` until `done(json)` holds or the deadline passes.
pub async fn poll_json(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let body: Value = client.get(url).send().await?.json().await?;
        if done(&body) {
            return Ok(body);
        }
        if Instant::now() > deadline {
            bail!("gave up polling {url}; last answer {body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::listening_port;

    #[test]
    fn the_announced_port_is_read_with_or_without_colours() {
        let plain = "2026-12-05T01:00:00Z  INFO socialauth_api::startup: listening port=41234\n";
        assert_eq!(listening_port(plain), Some(41234));
        let coloured = "\u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m \u{1b}[2msocialauth_api::startup\u{1b}[0m\u{1b}[2m:\u{1b}[0m listening \u{1b}[3mport\u{1b}[0m\u{1b}[2m=\u{1b}[0m5001\n";
        assert_eq!(listening_port(coloured), Some(5001));
        assert_eq!(listening_port("INFO migrations applied\n"), None);
    }
}
