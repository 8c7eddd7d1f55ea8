//! `stubidp`: the benchmark's stub OAuth 2 provider (see
//! `socialauth_tests::stubidp`). Prints `STUBIDP_READY <base url>` once it
//! listens; stops on Ctrl-C or SIGTERM.
//!
//! ```sh
//! stubidp --bind 127.0.0.1:0 --workers 1
//! ```

use anyhow::Context;
use axum::serve::ListenerExt;
use clap::Parser;
use std::io::Write;

#[derive(Parser)]
#[command(about = "Stub OAuth 2 provider for socialauth benchmarks (not a test IdP)")]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: String,
    /// Tokio worker threads (1: a single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    workers: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = if args.workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.workers)
            .enable_all()
            .build()?
    };
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .with_context(|| format!("bind {}", args.bind))?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let app = socialauth_tests::stubidp::router(&base_url);
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "STUBIDP_READY {base_url}")?;
        out.flush()?;
    }
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

async fn shutdown() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
