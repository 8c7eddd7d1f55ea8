//! What every statement of the store shares: reading a column of a row of
//! either backend ([`SqlRow`]) and the one place a database error becomes
//! a [`StoreError`] ([`map_err`]). The table modules import this; the
//! backends ([`super::sql`]) import the table modules.

use super::{Constraint, StoreError};
use sqlx::Row;
use sqlx::error::DatabaseError;
use sqlx::migrate::MigrateError;
use sqlx::postgres::{PgDatabaseError, PgRow};
use sqlx::sqlite::{SqliteError, SqliteRow};

/// Reads a column of a row of either backend.
pub(super) trait SqlRow {
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn int32(&self, column: &str) -> Result<i32, StoreError>;
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn flag(&self, column: &str) -> Result<bool, StoreError>;
    fn opt_float(&self, column: &str) -> Result<Option<f64>, StoreError>;
}

macro_rules! impl_sql_row {
    ($($row:ty),*) => {$(
        impl SqlRow for $row {
            fn int(&self, column: &str) -> Result<i64, StoreError> {
                self.try_get(column).map_err(map_err)
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
                self.try_get(column).map_err(map_err)
            }
            fn int32(&self, column: &str) -> Result<i32, StoreError> {
                self.try_get(column).map_err(map_err)
            }
            fn text(&self, column: &str) -> Result<String, StoreError> {
                self.try_get(column).map_err(map_err)
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
                self.try_get(column).map_err(map_err)
            }
            fn flag(&self, column: &str) -> Result<bool, StoreError> {
                self.try_get(column).map_err(map_err)
            }
            fn opt_float(&self, column: &str) -> Result<Option<f64>, StoreError> {
                self.try_get(column).map_err(map_err)
            }
        }
    )*};
}

impl_sql_row!(PgRow, SqliteRow);

/// The one place a database error becomes a [`StoreError`].
pub(super) fn map_err(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::Database(db) => from_database_error(db.as_ref()),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err.to_string()),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. } => StoreError::Decode(err.to_string()),
        other => StoreError::Database(other.to_string()),
    }
}

fn from_database_error(db: &dyn DatabaseError) -> StoreError {
    if db.is_unique_violation() {
        // PostgreSQL names the constraint; SQLite names the columns.
        let name = db
            .constraint()
            .or_else(|| db.message().strip_prefix("UNIQUE constraint failed: "))
            .unwrap_or_default();
        return StoreError::Conflict(constraint_named(name));
    }
    if is_transient(db) {
        StoreError::Unavailable(db.to_string())
    } else {
        StoreError::Database(db.to_string())
    }
}

/// The unique constraints callers act on, by PostgreSQL constraint name
/// (see migrations/postgres) or SQLite column list.
fn constraint_named(name: &str) -> Constraint {
    match name {
        "users_username_key" | "users.username" => Constraint::UserUsername,
        "users_email_key" | "users.email_normalized" => Constraint::UserEmail,
        "users_referral_code_key" | "users.referral_code" => Constraint::UserReferralCode,
        "social_accounts_provider_uid_key" | "social_accounts.provider, social_accounts.uid" => {
            Constraint::SocialAccountIdentity
        }
        "reencryptions_one_running_idx" | "reencryptions.status" => Constraint::RunningReencryption,
        _ => Constraint::Other,
    }
}

/// Errors that go away when the same work is tried again later.
fn is_transient(db: &dyn DatabaseError) -> bool {
    if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
        let code = pg.code();
        // Connection exceptions; serialization failure, deadlock; too many
        // connections; server shutting down or starting up.
        code.starts_with("08")
            || matches!(
                code,
                "40001" | "40P01" | "53300" | "57P01" | "57P02" | "57P03"
            )
    } else if db.try_downcast_ref::<SqliteError>().is_some() {
        // SQLITE_BUSY and SQLITE_LOCKED, with their extended codes.
        db.code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| matches!(code & 0xff, 5 | 6))
    } else {
        false
    }
}

pub(super) fn map_migrate_err(err: MigrateError) -> StoreError {
    match err {
        MigrateError::Execute(e) => map_err(e),
        MigrateError::ExecuteMigration(e, version) => match map_err(e) {
            StoreError::Database(msg) => {
                StoreError::Database(format!("migration {version}: {msg}"))
            }
            other => other,
        },
        other => StoreError::Database(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_and_sqlite_constraint_names_map_alike() {
        let pairs = [
            ("users_username_key", "users.username"),
            ("users_email_key", "users.email_normalized"),
            ("users_referral_code_key", "users.referral_code"),
            (
                "social_accounts_provider_uid_key",
                "social_accounts.provider, social_accounts.uid",
            ),
            ("reencryptions_one_running_idx", "reencryptions.status"),
        ];
        for (pg, sqlite) in pairs {
            assert_ne!(constraint_named(pg), Constraint::Other, "{pg}");
            assert_eq!(constraint_named(pg), constraint_named(sqlite), "{pg}");
        }
        assert_eq!(constraint_named("auth_tokens_pkey"), Constraint::Other);
    }

    #[test]
    fn pool_failures_are_unavailable() {
        assert!(map_err(sqlx::Error::PoolTimedOut).is_transient());
        assert!(map_err(sqlx::Error::PoolClosed).is_transient());
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(map_err(sqlx::Error::Io(io)).is_transient());
        assert!(!map_err(sqlx::Error::RowNotFound).is_transient());
    }
}
