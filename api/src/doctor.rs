//! `socialauth-api doctor [--config FILE]`: reads the configuration as the
//! service would, reaches the database, the broker and every provider, and
//! prints what it found as a table. Exit status 1 when something would
//! stop the service or a provider's logins; warnings alone exit 0.
//!
//! It changes nothing: no migration, no key file, no SQLite database is
//! created (a missing one is what the first start creates).

use socialauth_common::catalogue::{Catalogue, ProviderConfig, client_secret_expiry, preset_note};
use socialauth_common::config::Settings;
use socialauth_common::queue::JobQueue;
use socialauth_common::queue::amqp::AmqpQueue;
use socialauth_common::store::{self, StoreOptions};
use socialauth_common::{bootstrap, now_ms};
use socialauth_worker::providers::ProviderClient;
use std::path::Path;
use std::time::Duration;

/// How long one database, broker or provider check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// A client secret that expires within this many days is a warning (as
/// the `SocialauthClientSecretExpiring` alert of deploy/prometheus).
const SECRET_WARN_DAYS: i64 = 14;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    fn word(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Fail => "FAIL",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone)]
struct Row {
    check: String,
    level: Level,
    detail: String,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
}

impl Report {
    fn add(&mut self, check: impl Into<String>, level: Level, detail: impl Into<String>) {
        self.rows.push(Row {
            check: check.into(),
            level,
            detail: detail.into(),
        });
    }

    fn count(&self, level: Level) -> usize {
        self.rows.iter().filter(|r| r.level == level).count()
    }

    fn print(&self) {
        let width = self
            .rows
            .iter()
            .map(|r| r.check.chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        println!("{:width$}  {:8}DETAIL", "CHECK", "RESULT");
        for r in &self.rows {
            println!("{:width$}  {:8}{}", r.check, r.level.word(), r.detail);
        }
        println!(
            "\n{} ok, {} warnings, {} failures",
            self.count(Level::Ok),
            self.count(Level::Warn),
            self.count(Level::Fail)
        );
    }
}

/// Runs every check and prints the table; whether nothing failed.
pub async fn run(config: Option<&Path>) -> bool {
    let mut report = Report::default();
    let shown = config.map_or_else(
        || "built-in defaults and SOCIALAUTH__… variables".to_owned(),
        |p| p.display().to_string(),
    );
    match Settings::load(config) {
        Ok(settings) => {
            report.add("config", Level::Ok, shown);
            check_settings(&settings, &mut report).await;
        }
        Err(e) => report.add("config", Level::Fail, format!("{shown}: {e}")),
    }
    report.print();
    report.count(Level::Fail) == 0
}

async fn check_settings(settings: &Settings, report: &mut Report) {
    report.add(
        "mode",
        Level::Ok,
        if settings.is_embedded() {
            "embedded: SQLite and an in-process queue, one process"
        } else {
            "production: api and workers through RabbitMQ"
        },
    );
    check_key(settings, report);
    check_database(settings, report).await;
    if let Some(queue) = &settings.queue {
        let outcome = tokio::time::timeout(CHECK_TIMEOUT, async {
            let q = AmqpQueue::connect(queue).await?;
            q.check().await
        })
        .await;
        match outcome {
            Ok(Ok(())) => report.add("queue", Level::Ok, "RabbitMQ reachable"),
            Ok(Err(e)) => report.add("queue", Level::Fail, e.to_string()),
            Err(_) => report.add("queue", Level::Fail, "no answer within 10 s"),
        }
    }
    if settings.security.allowed_redirect_uris.is_empty() {
        report.add(
            "redirect URIs",
            Level::Warn,
            "security.allowed_redirect_uris is empty: only providers with their own \
             allowed_redirect_uris can be used",
        );
    }
    let catalogue = match Catalogue::from_settings(settings) {
        Ok(c) => c,
        Err(e) => {
            report.add("providers", Level::Fail, e.to_string());
            return;
        }
    };
    if catalogue.iter().next().is_none() {
        report.add(
            "providers",
            Level::Warn,
            "none enabled: add a [providers.NAME] section",
        );
        return;
    }
    let client = match ProviderClient::try_new(CHECK_TIMEOUT, 1) {
        Ok(c) => c,
        Err(e) => {
            report.add("providers", Level::Fail, e.to_string());
            return;
        }
    };
    for p in catalogue.iter() {
        check_provider(settings, &client, p, report).await;
    }
}

fn check_key(settings: &Settings, report: &mut Report) {
    let sec = &settings.security;
    if sec.encryption_key.is_none()
        && settings.database_url().starts_with("sqlite:")
        && !settings.embedded_key_path().exists()
    {
        report.add(
            "encryption key",
            Level::Ok,
            format!(
                "none configured: the first start creates {}",
                shown_path(&settings.embedded_key_path())
            ),
        );
        return;
    }
    match bootstrap::token_cipher(settings) {
        Ok(_) => report.add(
            "encryption key",
            Level::Ok,
            format!(
                "{} (and {} previous)",
                sec.encryption_key_id,
                sec.previous_encryption_keys.len()
            ),
        ),
        Err(e) => report.add("encryption key", Level::Fail, e.to_string()),
    }
}

async fn check_database(settings: &Settings, report: &mut Report) {
    let url = settings.database_url();
    if let Some(file) = settings.sqlite_file()
        && !file.exists()
    {
        report.add(
            "database",
            Level::Ok,
            format!(
                "SQLite {} does not exist yet: the first start creates it",
                shown_path(&file)
            ),
        );
        return;
    }
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, async {
        let store = store::connect_with(&url, StoreOptions::with_pool(1)).await?;
        store.ping().await
    })
    .await;
    let what = if url.starts_with("sqlite:") {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    match outcome {
        Ok(Ok(())) => report.add("database", Level::Ok, format!("{what} reachable")),
        Ok(Err(e)) => report.add("database", Level::Fail, format!("{what}: {e}")),
        Err(_) => report.add(
            "database",
            Level::Fail,
            format!("{what}: no answer within 10 s"),
        ),
    }
}

async fn check_provider(
    settings: &Settings,
    client: &ProviderClient,
    p: &ProviderConfig,
    report: &mut Report,
) {
    let check = format!("provider {}", p.name.as_str());
    for probe in client.probe(p).await {
        match probe.outcome {
            Ok(found) => report.add(&check, Level::Ok, format!("{}: {found}", probe.what)),
            Err(why) => report.add(&check, Level::Fail, format!("{}: {why}", probe.what)),
        }
    }
    if p.client_id.is_empty() {
        report.add(&check, Level::Fail, "no client_id");
    }
    if let Some(m) = &p.minted_secret {
        match client.client_secret(p) {
            Ok(_) => report.add(
                &check,
                Level::Ok,
                format!(
                    "client secret minted (ES256, team {}, key {}), renewed every {} s",
                    m.team_id,
                    m.key_id,
                    m.ttl_secs - m.ttl_secs / 10
                ),
            ),
            Err(e) => report.add(&check, Level::Fail, e.to_string()),
        }
        return check_preset(settings, p, report, &check);
    }
    let secret = p.client_secret.expose();
    if secret.is_empty() {
        report.add(
            &check,
            Level::Warn,
            "no client_secret: only a public client at the provider works so",
        );
    } else if let Some(exp) = client_secret_expiry(secret) {
        let days = (exp.saturating_mul(1000).saturating_sub(now_ms())) / 86_400_000;
        if exp.saturating_mul(1000) <= now_ms() {
            report.add(&check, Level::Fail, "client_secret (a JWT) has expired");
        } else if days < SECRET_WARN_DAYS {
            report.add(
                &check,
                Level::Warn,
                format!("client_secret (a JWT) expires in {days} days"),
            );
        } else {
            report.add(
                &check,
                Level::Ok,
                format!("client_secret (a JWT) valid for {days} more days"),
            );
        }
    }
    check_preset(settings, p, report, &check);
}

/// What the operator of `p`'s preset should know.
fn check_preset(settings: &Settings, p: &ProviderConfig, report: &mut Report, check: &str) {
    let preset = settings
        .providers
        .get(p.name.as_str())
        .and_then(|s| s.preset.as_deref());
    if let Some(note) = preset.and_then(preset_note) {
        report.add(check, Level::Warn, note);
    }
    if preset == Some("apple") && p.form_post_url.is_none() && !p.scopes.is_empty() {
        report.add(
            check,
            Level::Warn,
            format!(
                "Apple answers a web login that asks for scopes by form_post: set form_post_url \
                 to this service's https://…/auth/o/{}/callback (client SDK id_tokens work without)",
                p.name.as_str()
            ),
        );
    }
}

/// `path` made absolute (a relative one is the working directory's: run
/// the doctor where the service runs).
fn shown_path(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}
