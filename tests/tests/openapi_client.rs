//! The OpenAPI document as an integrator uses it: `socialauth-api openapi`
//! prints what `/openapi.json` serves; openapi-spec-validator accepts it;
//! openapi-python-client generates a Python client from it without a
//! warning (both pinned in `tests/openapi/requirements.txt`); and that
//! client, driven by `tests/openapi/login.py`, completes a login against
//! the test provider and reads the contract's error bodies as the
//! document's schemas.

use anyhow::Context;
use serde_json::Value;
use socialauth_tests::browser::ScriptedUser;
use socialauth_tests::oauth1_idp::{ensure_venv, venv_python};
use socialauth_tests::stack::{Mode, binary, workspace_root};
use socialauth_tests::world::{REDIRECT_URI, World};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Generating takes a few seconds; a first install of the venv longer.
const STEP_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs one of the venv's programs; its output (stdout and stderr).
async fn run(program: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = tokio::time::timeout(
        STEP_TIMEOUT,
        tokio::process::Command::new(program)
            .args(args)
            // The generator formats what it wrote with the venv's ruff.
            .env("PATH", path_with_venv(program))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .with_context(|| format!("{} took too long", program.display()))??;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    anyhow::ensure!(
        out.status.success(),
        "{} {args:?} failed: {text}",
        program.display()
    );
    Ok(text)
}

/// `PATH` with the directory of `program` first.
fn path_with_venv(program: &Path) -> std::ffi::OsString {
    let mut dirs: Vec<std::path::PathBuf> = program
        .parent()
        .into_iter()
        .map(Path::to_path_buf)
        .collect();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

/// The next line of the script that starts with `tag `, without the tag.
async fn expect_line(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    tag: &str,
) -> anyhow::Result<String> {
    let line = tokio::time::timeout(STEP_TIMEOUT, lines.next_line())
        .await
        .context("login.py said nothing")??
        .context("login.py ended")?;
    line.strip_prefix(&format!("{tag} "))
        .map(str::to_owned)
        .with_context(|| format!("expected {tag}, got: {line}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_generated_from_the_document_completes_a_login() -> anyhow::Result<()> {
    let w = World::start(Mode::Production).await?;
    let dir = workspace_root().join("tests/openapi");
    ensure_venv(&dir).await?;
    let bin = dir.join(".venv/bin");
    let work = tempfile::tempdir()?;

    // The served document is the printed one.
    let served: Value = w
        .http
        .get(w.stack.url("/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    let printed = tokio::process::Command::new(binary("socialauth-api")?)
        .arg("openapi")
        .output()
        .await?;
    anyhow::ensure!(printed.status.success(), "socialauth-api openapi failed");
    assert_eq!(
        serde_json::from_slice::<Value>(&printed.stdout)?,
        served,
        "`socialauth-api openapi` prints what /openapi.json serves"
    );
    let document = work.path().join("openapi.json");
    std::fs::write(&document, serde_json::to_vec_pretty(&served)?)?;
    let document = document.display().to_string();

    let validated = run(&bin.join("openapi-spec-validator"), &[&document]).await?;
    assert!(validated.contains(": OK"), "{validated}");

    let package = work.path().join("socialauth_client").display().to_string();
    let generated = run(
        &bin.join("openapi-python-client"),
        &[
            "generate",
            "--path",
            &document,
            "--output-path",
            &package,
            "--meta",
            "none",
        ],
    )
    .await?;
    assert!(
        !generated.to_lowercase().contains("warning"),
        "the generator warned: {generated}"
    );

    // The generated client logs in; the script asks the scripted user to
    // sign in at the provider with the URL it got.
    let mut script = tokio::process::Command::new(venv_python(&dir))
        .arg(dir.join("login.py"))
        .args([w.stack.base_url.as_str(), "corp", REDIRECT_URI])
        .env("PYTHONPATH", work.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = script.stdin.take().context("stdin")?;
    let mut lines = BufReader::new(script.stdout.take().context("stdout")?).lines();
    let alice = w.idp.config.user("alice").context("alice")?.clone();
    for _ in 0..2 {
        let url = expect_line(&mut lines, "AUTHORIZE").await?;
        let callback = ScriptedUser::new()?
            .authorize(&url, "alice", &alice.password, REDIRECT_URI)
            .await?;
        stdin
            .write_all(format!("CALLBACK {}\n", callback.url).as_bytes())
            .await?;
        stdin.flush().await?;
    }
    let result: Value = serde_json::from_str(&expect_line(&mut lines, "RESULT").await?)?;
    let status = tokio::time::timeout(STEP_TIMEOUT, script.wait()).await??;
    assert!(status.success(), "login.py failed: {result}");

    // What the client read, through the generated models.
    assert_eq!(result["signup"]["status"], 201, "{result}");
    assert_eq!(result["signup"]["is_new"], true);
    assert_eq!(result["signup"]["email"], "alice@example.test");
    assert_eq!(result["me"]["email"], "alice@example.test");
    assert_eq!(result["me"]["social_accounts"][0]["provider"], "corp");
    assert_eq!(result["me"]["social_accounts"][0]["uid"], alice.id.as_str());
    // djoser answers 201 to every completed login; `is_new` tells.
    assert_eq!(result["again"]["status"], 201, "{result}");
    assert_eq!(result["again"]["is_new"], false);
    // Errors parsed as the document's schemas, with the contract's codes.
    assert_eq!(result["bad_state"]["status"], 400, "{result}");
    assert_eq!(
        result["bad_state"]["non_field_errors"],
        serde_json::json!(["invalid_state"])
    );
    assert_eq!(result["unknown_provider"]["status"], 400, "{result}");
    assert_eq!(
        result["unknown_provider"]["provider"],
        serde_json::json!(["Invalid provider"])
    );
    assert_eq!(result["no_token"]["status"], 401, "{result}");
    assert_eq!(
        result["no_token"]["detail"],
        "Authentication credentials were not provided."
    );
    Ok(())
}
