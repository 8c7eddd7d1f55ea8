//! The api's service functions: plain async fns over `AppState` that the
//! handlers call once each and tests can call directly.

pub mod authorize;
pub mod jobs;
pub mod login;
pub mod social_auth;
pub mod users;
pub mod views;
