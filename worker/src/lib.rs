//! The worker: consumes jobs, makes every provider HTTP call, runs the user
//! pipeline, writes the store and replies.

pub mod app;
pub mod campaign;
pub mod cleanup;
pub mod deps;
pub mod dispatch;
pub mod error;
pub mod gauges;
pub mod health;
mod metrics_listener;
mod oauth1;
pub mod pipeline;
pub mod providers;
pub mod reencrypt;
pub mod refresh;
mod replay;
mod revocation;
pub mod runner;

pub use deps::{Deps, Policy};
pub use error::WorkerError;
