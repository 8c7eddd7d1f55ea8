//! The api's service functions: plain async fns over `AppState` that the
//! handlers call once each and tests can call directly.

pub mod accounts;
pub mod admin;
pub mod campaigns;
pub mod flows;
pub mod jobs;
pub mod providers;
pub mod redirect_flow;
pub mod reencrypt;
pub mod required;
pub mod social_auth;
pub mod state_cookie;
pub mod token_login;
pub mod users;
pub mod views;
