use clap::{Parser, Subcommand};
use socialauth_common::bootstrap;
use socialauth_common::config::Settings;
use std::io::Write;
use std::path::PathBuf;

/// socialauth's HTTP api. Without [database] and [queue] it runs embedded:
/// SQLite, an in-process queue and the worker inside this process.
#[derive(Parser)]
#[command(name = "socialauth-api", version)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "SOCIALAUTH_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply database migrations and exit.
    Migrate,
    /// Refresh campaigns: start, status, list, cancel (through the running
    /// service's admin routes).
    Campaign(socialauth_api::cli::CampaignArgs),
    /// Check the configuration, the database, the broker and every
    /// provider, and print what was found (exit status 1 on a failure).
    Doctor,
    /// Print the OpenAPI document (JSON) and exit; reads no configuration
    /// and connects to nothing.
    Openapi,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The doctor reads the configuration itself: an unreadable one is a
    // line of its report.
    let load = || -> anyhow::Result<Settings> {
        let settings = Settings::load(cli.config.as_deref())?;
        bootstrap::init_tracing(&settings.telemetry);
        Ok(settings)
    };
    match cli.command {
        Some(Command::Doctor) => {
            let healthy = socialauth_api::doctor::run(cli.config.as_deref()).await;
            std::process::exit(if healthy { 0 } else { 1 });
        }
        Some(Command::Openapi) => {
            let (_, doc) = socialauth_api::routes::openapi_router();
            writeln!(std::io::stdout().lock(), "{}", doc.to_pretty_json()?)?;
            Ok(())
        }
        Some(Command::Migrate) => socialauth_api::startup::migrate(&load()?).await,
        Some(Command::Campaign(args)) => socialauth_api::cli::run(&load()?, args).await,
        None => {
            let settings = load()?;
            let app = socialauth_api::Application::build(settings).await?;
            app.run_until(socialauth_worker::app::shutdown_signal())
                .await
        }
    }
}
