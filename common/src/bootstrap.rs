//! Start-up pieces both binaries share: logging and the token cipher.

use crate::config::{Settings, TelemetrySettings};
use crate::crypto::{self, TokenCipher};
use tracing_subscriber::EnvFilter;

/// Installs the tracing subscriber (text or JSON). `RUST_LOG` wins over
/// `telemetry.log_level`. Safe to call more than once.
pub fn init_tracing(t: &TelemetrySettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&t.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if t.log_format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("security.encryption_key is required with PostgreSQL")]
    MissingKey,
    #[error("{0}")]
    Crypto(#[from] crypto::CryptoError),
    #[error("key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
}

/// The cipher for provider tokens at rest. Without a configured key the
/// embedded mode creates one in a file beside its SQLite database and keeps
/// using it; a configured database requires a configured key.
pub fn token_cipher(settings: &Settings) -> Result<TokenCipher, BootstrapError> {
    let sec = &settings.security;
    let current = match &sec.encryption_key {
        Some(key) => key.expose().clone(),
        None if settings.database_url().starts_with("sqlite:") => embedded_key(settings)?,
        None => return Err(BootstrapError::MissingKey),
    };
    let mut keys = vec![(sec.encryption_key_id.as_str(), current.as_str())];
    for (id, key) in &sec.previous_encryption_keys {
        keys.push((id.as_str(), key.expose().as_str()));
    }
    Ok(TokenCipher::new(&sec.encryption_key_id, keys)?)
}

fn embedded_key(settings: &Settings) -> Result<String, BootstrapError> {
    let path = settings.embedded_key_path();
    let io_err = |source| BootstrapError::KeyFile {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(key) => Ok(key.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = crypto::generate_key();
            write_private(&path, &key).map_err(io_err)?;
            Ok(key)
        }
        Err(e) => Err(io_err(e)),
    }
}

fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_settings(dir: &std::path::Path) -> Settings {
        let cfg = dir.join("c.toml");
        let db = dir.join("x.db");
        std::fs::write(
            &cfg,
            format!("[database]\nurl = \"sqlite://{}\"\n", db.display()),
        )
        .expect("write");
        Settings::load_with_env(Some(&cfg), vec![]).expect("settings")
    }

    #[test]
    fn sqlite_without_a_key_creates_then_reuses_a_key_file() {
        let dir = tempfile::tempdir().expect("dir");
        let s = sqlite_settings(dir.path());
        let place = crypto::Binding::RequestToken {
            provider: "twitter",
            oauth_token: "t",
        };
        let sealed = token_cipher(&s).expect("cipher").seal("x", place);
        assert!(dir.path().join("x.db.key").exists());
        let again = token_cipher(&s).expect("cipher again");
        assert_eq!(again.open(&sealed, place).expect("same key"), "x");
    }

    #[test]
    fn a_database_without_a_key_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let cfg = dir.path().join("c.toml");
        std::fs::write(&cfg, "[database]\nurl = \"postgres://127.0.0.1/x\"\n").expect("write");
        let s = Settings::load_with_env(Some(&cfg), vec![]).expect("settings");
        assert!(matches!(token_cipher(&s), Err(BootstrapError::MissingKey)));
    }
}
