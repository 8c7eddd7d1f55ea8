//! Helper processes of the tests (the identity providers): a JSON config
//! file, a child that announces its URL on stdout, its stderr kept for
//! failure messages, and one-time installs serialised across test threads
//! and test binaries.

use anyhow::{Context, anyhow, bail};
use serde::Serialize;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a child may take to announce itself.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Starts tried before giving up: a start can lose to a busy machine.
const START_ATTEMPTS: usize = 3;
/// A lock older than this was left by a killed run.
const STALE_LOCK: Duration = Duration::from_secs(900);
/// How much of a child's stderr is kept.
const STDERR_KEEP: usize = 64 * 1024;

/// `config` as JSON in a temporary file (removed when dropped).
pub fn json_config_file(
    prefix: &str,
    config: &impl Serialize,
) -> anyhow::Result<tempfile::NamedTempFile> {
    let mut file = tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".json")
        .tempfile()
        .context("creating a config file")?;
    serde_json::to_writer(&mut file, config).context("writing a config file")?;
    file.flush().context("writing a config file")?;
    Ok(file)
}

/// A running child and the URL it announced.
pub struct Announced {
    pub child: Child,
    pub url: String,
    /// Its stderr so far (the last 64 KiB).
    pub stderr: Arc<Mutex<String>>,
}

/// Spawns the command that `make_command` builds (pipes, killed on drop,
/// told to exit when its stdin closes) and waits for the stdout line
/// `<ready_prefix> <url>`; the URL must be on 127.0.0.1. A start that fails
/// is reported on stderr and tried again, up to three times. `what` names
/// the child in errors, which carry its stderr.
pub async fn spawn_announced(
    what: &str,
    make_command: impl Fn() -> Command,
    ready_prefix: &str,
) -> anyhow::Result<Announced> {
    let mut failures = Vec::new();
    for attempt in 1..=START_ATTEMPTS {
        match spawn_once(what, make_command(), ready_prefix).await {
            Ok(announced) => return Ok(announced),
            Err(e) => {
                eprintln!("start {attempt} of {START_ATTEMPTS} of {what} failed: {e:#}");
                failures.push(format!("{e:#}"));
            }
        }
    }
    bail!(
        "{what} did not start in {START_ATTEMPTS} attempts:\n{}",
        failures.join("\n---\n")
    )
}

async fn spawn_once(
    what: &str,
    mut command: Command,
    ready_prefix: &str,
) -> anyhow::Result<Announced> {
    let mut child = command
        .env("IDP_EXIT_ON_STDIN_CLOSE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawning {what}"))?;

    let stderr = Arc::new(Mutex::new(String::new()));
    let stderr_task = {
        let mut pipe = child.stderr.take().context("child stderr")?;
        let buffer = Arc::clone(&stderr);
        tokio::spawn(async move {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                let mut kept = buffer.lock().unwrap_or_else(|e| e.into_inner());
                kept.push_str(&String::from_utf8_lossy(&chunk[..n]));
                if kept.len() > STDERR_KEEP {
                    let mut cut = kept.len() - STDERR_KEEP;
                    while !kept.is_char_boundary(cut) {
                        cut += 1;
                    }
                    kept.drain(..cut);
                }
            }
        })
    };

    let stdout = child.stdout.take().context("child stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(READY_TIMEOUT, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(url) = line.trim().strip_prefix(ready_prefix) {
                return Ok::<_, std::io::Error>(Some(url.trim().to_owned()));
            }
        }
        Ok(None)
    })
    .await;
    let outcome = match ready {
        Ok(Ok(Some(url))) => Ok(url),
        Err(_) => Err(format!("no {ready_prefix:?} line within {READY_TIMEOUT:?}")),
        Ok(Err(e)) => Err(format!("reading its stdout failed: {e}")),
        Ok(Ok(None)) => {
            let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
                .await
                .ok()
                .and_then(Result::ok);
            Err(format!("it exited ({status:?}) before announcing itself"))
        }
    };
    let url = match outcome {
        Ok(url) => url,
        Err(why) => {
            // What the process was doing, read before it is killed.
            let state = child.id().map(process_state).unwrap_or_default();
            let why = format!("{why}{state}");
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(2), stderr_task).await;
            let log = stderr.lock().unwrap_or_else(|e| e.into_inner()).clone();
            bail!("{what} did not start: {why}; its stderr:\n{log}");
        }
    };
    if !url.starts_with("http://127.0.0.1:") {
        bail!("{what} announced {url:?}, not an http://127.0.0.1 URL");
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Announced { child, url, stderr })
}

/// A process's threads as Linux shows them (state, where each waits, the
/// CPU time it used), for the message of a start that did not announce
/// itself: blocked, busy, or never scheduled.
fn process_state(pid: u32) -> String {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return String::new();
    };
    let mut out = format!("; pid {pid}, its threads (stat | wchan):");
    for task in tasks.flatten() {
        let dir = task.path();
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f))
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        out.push_str(&format!("\n  {} | {}", read("stat"), read("wchan")));
    }
    out
}

/// Runs `install` unless `is_installed()`, once across test threads and
/// concurrent test binaries: they serialise on a lock directory (`mkdir` is
/// atomic) in the temporary directory, named after `name` and `dir`.
pub async fn install_once<F, Fut>(
    name: &str,
    dir: &Path,
    timeout: Duration,
    is_installed: impl Fn() -> bool,
    install: F,
) -> anyhow::Result<()>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    if is_installed() {
        return Ok(());
    }
    let lock = lock_path(name, dir);
    let deadline = tokio::time::Instant::now() + timeout;
    let _guard = loop {
        match std::fs::create_dir(&lock) {
            Ok(()) => break LockDir(lock.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if is_installed() {
                    return Ok(());
                }
                let stale = std::fs::metadata(&lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .is_some_and(|age| age > STALE_LOCK);
                if stale {
                    let _ = std::fs::remove_dir(&lock);
                    continue;
                }
                if tokio::time::Instant::now() > deadline {
                    bail!(
                        "timed out waiting for {} ({name} elsewhere)",
                        lock.display()
                    );
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(anyhow!(e).context(format!("creating {}", lock.display()))),
        }
    };
    if is_installed() {
        return Ok(());
    }
    install().await
}

/// Runs one install step with `timeout`; its output goes into the error
/// when it fails.
pub async fn run_step(command: &mut Command, what: &str, timeout: Duration) -> anyhow::Result<()> {
    let output = tokio::time::timeout(
        timeout,
        command.stdin(Stdio::null()).kill_on_drop(true).output(),
    )
    .await
    .with_context(|| format!("{what} timed out"))?
    .with_context(|| format!("running {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Keyed by the directory, so two checkouts do not wait for each other.
fn lock_path(name: &str, dir: &Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut hasher);
    std::env::temp_dir().join(format!("socialauth-{name}-{:016x}.lock", hasher.finish()))
}

struct LockDir(PathBuf);

impl Drop for LockDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::process_state;

    #[test]
    fn a_process_state_names_each_thread() {
        let state = process_state(std::process::id());
        assert!(
            state.starts_with(&format!("; pid {}", std::process::id())),
            "{state}"
        );
        assert!(state.lines().count() >= 2, "{state}");
        assert_eq!(process_state(u32::MAX), "", "no such process");
    }
}
