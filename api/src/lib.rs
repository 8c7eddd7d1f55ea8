//! The thin HTTP front: validates, builds authorization URLs, publishes jobs
//! and returns the worker's result or a job to poll. No provider HTTP.

pub mod cli;
pub mod doctor;
pub mod error;
pub mod extract;
pub mod guard;
pub mod http_metrics;
#[cfg(test)]
mod proptests;
pub mod routes;
mod serve;
pub mod service;
pub mod startup;
pub mod state;

pub use startup::Application;
