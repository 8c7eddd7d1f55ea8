//! Migrations embedded into the binaries, which need no migrations directory
//! at run time. Every file of `migrations/<backend>/` is listed here once; a
//! test checks the lists against the directories as `sqlx migrate` reads
//! them (same versions, descriptions and checksums), so a database migrated
//! by either stays valid for the other.

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// `dir: version "description" "file", …` → a `Migrator` with those files.
macro_rules! embedded {
    ($dir:literal: $($version:literal $description:literal $file:literal),* $(,)?) => {
        Migrator::with_migrations(vec![$(
            Migration::new(
                $version,
                $description.into(),
                MigrationType::Simple,
                include_str!(concat!("../../../migrations/", $dir, "/", $file)).into_sql_str(),
                false,
            ),
        )*])
    };
}

pub(super) fn postgres() -> Migrator {
    embedded!("postgres":
        1 "init" "0001_init.sql",
        2 "retries and token secrets" "0002_retries_and_token_secrets.sql",
        3 "email provenance and audit" "0003_email_provenance_and_audit.sql",
        4 "accepted jobs" "0004_accepted_jobs.sql",
        5 "association" "0005_association.sql",
        6 "refresh leases" "0006_refresh_leases.sql",
        7 "refresh campaigns" "0007_refresh_campaigns.sql",
        8 "campaign indexes" "0008_campaign_indexes.sql",
        9 "job deliveries" "0009_job_deliveries.sql",
        10 "provider health" "0010_provider_health.sql",
        11 "reencryptions" "0011_reencryptions.sql",
    )
}

pub(super) fn sqlite() -> Migrator {
    embedded!("sqlite":
        1 "init" "0001_init.sql",
        2 "retries and token secrets" "0002_retries_and_token_secrets.sql",
        3 "email provenance and audit" "0003_email_provenance_and_audit.sql",
        4 "accepted jobs" "0004_accepted_jobs.sql",
        5 "association" "0005_association.sql",
        6 "refresh leases" "0006_refresh_leases.sql",
        7 "refresh campaigns" "0007_refresh_campaigns.sql",
        8 "campaign indexes" "0008_campaign_indexes.sql",
        9 "job deliveries" "0009_job_deliveries.sql",
        10 "provider health" "0010_provider_health.sql",
        11 "reencryptions" "0011_reencryptions.sql",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn assert_embeds_directory(migrator: &Migrator, dir: &str) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../migrations")
            .join(dir);
        let on_disk = sqlx::migrate::resolve_blocking(&dir).expect("migrations directory resolves");
        let embedded: Vec<_> = migrator
            .iter()
            .map(|m| (m.version, m.description.to_string(), m.checksum.to_vec()))
            .collect();
        let expected: Vec<_> = on_disk
            .iter()
            .map(|(m, _)| (m.version, m.description.to_string(), m.checksum.to_vec()))
            .collect();
        assert_eq!(
            embedded,
            expected,
            "list every file of {} in store/migrations.rs",
            dir.display()
        );
    }

    #[test]
    fn postgres_migrations_embed_every_file_unchanged() {
        assert_embeds_directory(&postgres(), "postgres");
    }

    #[test]
    fn sqlite_migrations_embed_every_file_unchanged() {
        assert_embeds_directory(&sqlite(), "sqlite");
    }

    #[test]
    fn both_backends_have_the_same_migration_versions() {
        let versions = |m: &Migrator| m.iter().map(|m| m.version).collect::<Vec<_>>();
        assert_eq!(versions(&postgres()), versions(&sqlite()));
    }
}
