//! `socialauth-api campaign start|status|list|cancel`: refresh campaigns
//! from a terminal, through the running service's admin routes (the same
//! checks and answers as over HTTP), with a progress bar. The admin key is
//! the configuration's `security.admin_key`, or `SOCIALAUTH_ADMIN_KEY` in
//! the environment; never an argument.

use crate::service::campaigns::CampaignView;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use socialauth_common::config::Settings;
use std::io::{IsTerminal, Write};
use std::time::Duration;

#[derive(Args)]
pub struct CampaignArgs {
    /// The service's base URL (default: `server.bind` of the configuration,
    /// on 127.0.0.1 when it binds every address).
    #[arg(long, env = "SOCIALAUTH_URL")]
    url: Option<String>,
    /// How often a followed campaign is looked at (default: 500 ms on a
    /// terminal, else 5 s).
    #[arg(long)]
    interval_ms: Option<u64>,
    #[command(subcommand)]
    command: CampaignCommand,
}

#[derive(Subcommand)]
enum CampaignCommand {
    /// Start a campaign, then follow it (unless --detach).
    Start {
        /// Only this provider's accounts.
        #[arg(long)]
        provider: Option<String>,
        /// Refresh accounts whose access tokens expire within this many
        /// seconds (or have expired).
        #[arg(long)]
        expiring_within: i64,
        /// Refresh calls a second, all workers together.
        #[arg(long)]
        rate: Option<f64>,
        /// Print the campaign's id and return.
        #[arg(long)]
        detach: bool,
    },
    /// Show a campaign's progress; --follow until it ends.
    Status {
        id: String,
        #[arg(long)]
        follow: bool,
    },
    /// The newest campaigns.
    List,
    /// Cancel a running campaign.
    Cancel { id: String },
}

struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
    interval: Option<Duration>,
}

impl Client {
    fn new(settings: &Settings, args: &CampaignArgs) -> anyhow::Result<Self> {
        // Never an argument (it would show in `ps` and shell history).
        let key = match std::env::var("SOCIALAUTH_ADMIN_KEY") {
            Ok(k) if !k.is_empty() => k,
            _ => settings
                .security
                .admin_key
                .as_ref()
                .map(|k| k.expose().clone())
                .context("no admin key: set security.admin_key or SOCIALAUTH_ADMIN_KEY")?,
        };
        let base = match &args.url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let bind = &settings.server.bind;
                let port = bind.rsplit(':').next().unwrap_or("8000");
                let host = bind.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h);
                let host = match host {
                    "0.0.0.0" | "[::]" | "" => "127.0.0.1",
                    h => h,
                };
                format!("http://{host}:{port}")
            }
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            http,
            base,
            key,
            interval: args.interval_ms.map(Duration::from_millis),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("could not reach {}", self.base))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{status}: {body}");
        }
        Ok(body)
    }

    async fn campaign(&self, id: &str) -> anyhow::Result<CampaignView> {
        let body = self
            .call(
                reqwest::Method::GET,
                &format!("/admin/refresh-campaigns/{id}"),
                None,
            )
            .await?;
        Ok(serde_json::from_value(body)?)
    }
}

pub async fn run(settings: &Settings, args: CampaignArgs) -> anyhow::Result<()> {
    let client = Client::new(settings, &args)?;
    match args.command {
        CampaignCommand::Start {
            provider,
            expiring_within,
            rate,
            detach,
        } => {
            if rate.is_some_and(|r| !r.is_finite()) {
                bail!("--rate must be a finite number");
            }
            let body = serde_json::json!({
                "provider": provider,
                "expiring_within_seconds": expiring_within,
                "rate_per_second": rate,
            });
            let started: CampaignView = serde_json::from_value(
                client
                    .call(
                        reqwest::Method::POST,
                        "/admin/refresh-campaigns",
                        Some(body),
                    )
                    .await?,
            )?;
            println!("{}", started.id);
            if !detach {
                follow(&client, &started.id.to_string()).await?;
            }
        }
        CampaignCommand::Status { id, follow: true } => follow(&client, &id).await?,
        CampaignCommand::Status { id, follow: false } => {
            println!("{}", line(&client.campaign(&id).await?));
        }
        CampaignCommand::List => {
            let body = client
                .call(reqwest::Method::GET, "/admin/refresh-campaigns", None)
                .await?;
            let list: Vec<CampaignView> =
                serde_json::from_value(body.get("results").cloned().unwrap_or_default())?;
            for c in &list {
                println!("{}  {}", c.id, line(c));
            }
        }
        CampaignCommand::Cancel { id } => {
            let body = client
                .call(
                    reqwest::Method::DELETE,
                    &format!("/admin/refresh-campaigns/{id}"),
                    None,
                )
                .await?;
            let c: CampaignView = serde_json::from_value(body)?;
            println!("{}", line(&c));
        }
    }
    Ok(())
}

/// Redraws the progress bar until the campaign ends (on a terminal; a line
/// every few seconds otherwise).
async fn follow(client: &Client, id: &str) -> anyhow::Result<()> {
    let tty = std::io::stderr().is_terminal();
    let every = client.interval.unwrap_or(if tty {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(5)
    });
    loop {
        let c = client.campaign(id).await?;
        let ended = c.status != "running";
        let mut err = std::io::stderr();
        if tty {
            let _ = write!(err, "\r\x1b[2K{}", line(&c));
            if ended {
                let _ = writeln!(err);
            }
        } else {
            let _ = writeln!(err, "{}", line(&c));
        }
        let _ = err.flush();
        if ended {
            return Ok(());
        }
        tokio::time::sleep(every).await;
    }
}

/// `[#######.............]  35%  35000/100000  …`
pub fn line(c: &CampaignView) -> String {
    const WIDTH: i64 = 30;
    let handled = c.total - c.remaining;
    let (filled, percent) = if c.total > 0 {
        (handled * WIDTH / c.total, handled * 100 / c.total)
    } else if c.status == "running" {
        (0, 0)
    } else {
        (WIDTH, 100)
    };
    let total = if c.planned {
        c.total.to_string()
    } else {
        format!("{}+", c.total)
    };
    format!(
        "[{}{}] {percent:>3}%  {handled}/{total}  refreshed {}  failed {}  needs_reauth {}  skipped {}  {:.0}/s  {}",
        "#".repeat(filled as usize),
        ".".repeat((WIDTH - filled) as usize),
        c.refreshed,
        c.failed,
        c.needs_reauth,
        c.skipped,
        c.rate,
        c.status,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(total: i64, remaining: i64, status: &str, planned: bool) -> CampaignView {
        CampaignView {
            id: uuid::Uuid::nil(),
            status: status.into(),
            provider: None,
            providers: vec![],
            expiring_within_seconds: 0,
            expiring_before: 0,
            rate_per_second: None,
            planned,
            total,
            refreshed: total - remaining,
            failed: 0,
            needs_reauth: 0,
            skipped: 0,
            remaining,
            rate: 12.0,
            created_at: 0,
            finished_at: None,
        }
    }

    #[test]
    fn the_bar_shows_what_is_handled_of_what_is_known() {
        let half = line(&view(100, 50, "running", true));
        assert!(
            half.starts_with(&format!("[{}{}]", "#".repeat(15), ".".repeat(15))),
            "{half}"
        );
        assert!(half.contains(" 50%  50/100 "), "{half}");
        assert!(line(&view(10, 10, "running", false)).contains("0/10+"));
        let empty = line(&view(0, 0, "done", true));
        assert!(empty.contains("100%"), "{empty}");
    }
}
