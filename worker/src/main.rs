use clap::Parser;
use socialauth_common::bootstrap;
use socialauth_common::config::Settings;
use std::path::PathBuf;

/// Consumes login and refresh jobs from RabbitMQ.
#[derive(Parser)]
#[command(name = "socialauth-worker", version)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "SOCIALAUTH_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref())?;
    bootstrap::init_tracing(&settings.telemetry);
    socialauth_worker::app::run(settings).await
}
