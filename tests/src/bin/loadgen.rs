//! `loadgen`: login load against a socialauth-compatible service on this
//! machine (see `socialauth_tests::loadgen`).
//!
//! ```sh
//! loadgen --base-url http://127.0.0.1:8000 --provider stub \
//!   --redirect-uri http://127.0.0.1:9/cb --flow djoser --mode signup \
//!   --concurrency 32 --duration 60s --json out.json
//! ```

use clap::Parser;

fn main() -> anyhow::Result<()> {
    socialauth_tests::loadgen::main_with(socialauth_tests::loadgen::Args::parse())
}
