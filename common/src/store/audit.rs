//! `audit_events`: what happened to accounts (automatic links, addresses
//! taken from accounts that only typed them, …).

pub(super) const INSERT: &str = "INSERT INTO audit_events \
     (at, kind, user_id, provider, outcome, detail, request_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
