//! `seedlinks`: the campaign benchmark's accounts. Adds COUNT users, each
//! with a link to PROVIDER holding sealed tokens the stub provider takes
//! (`at.<uid>.…`, `rt.<uid>.…`, sealed with the configuration's key), their
//! access tokens expired; straight into the configuration's PostgreSQL
//! database, in batches (no login needed).
//!
//! ```sh
//! seedlinks --config socialauth.toml --provider stub --count 100000
//! ```

use anyhow::Context;
use clap::Parser;
use socialauth_common::bootstrap;
use socialauth_common::config::Settings;
use socialauth_common::crypto::{Binding, TokenColumn};
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Seeds users with refreshable links for the campaign benchmark")]
struct Args {
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    provider: String,
    #[arg(long, default_value_t = 100_000)]
    count: u32,
    /// Rows per statement.
    #[arg(long, default_value_t = 5_000)]
    batch: u32,
}

const INSERT_USERS: &str = "INSERT INTO users (username, referral_code, created_at) \
     SELECT u, 'seed-' || u, $2 FROM unnest($1::text[]) AS u RETURNING id, username";

const INSERT_LINKS: &str = "INSERT INTO social_accounts \
     (user_id, provider, uid, extra_data, token_key_id, access_token_enc, refresh_token_enc, \
      expires_at, created_at, updated_at, last_login_at) \
     SELECT d.u, $1, d.uid, '{}', $2, d.a, d.r, $3, $4, $4, $4 \
     FROM unnest($5::bigint[], $6::text[], $7::text[], $8::text[]) AS d(u, uid, a, r)";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = Settings::load(Some(&args.config))?;
    let cipher = bootstrap::token_cipher(&settings)?;
    let url = settings.database_url();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .context("database")?;
    let now = socialauth_common::now_ms();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut made = 0u32;
    while made < args.count {
        let n = args.batch.min(args.count - made);
        let names: Vec<String> = (made..made + n)
            .map(|i| format!("seed{}x{i}", &run[..8]))
            .collect();
        let users: Vec<(i64, String)> = sqlx::query_as(INSERT_USERS)
            .bind(&names)
            .bind(now)
            .fetch_all(&pool)
            .await
            .context("users")?;
        let mut ids = Vec::with_capacity(users.len());
        let mut uids = Vec::with_capacity(users.len());
        let mut access = Vec::with_capacity(users.len());
        let mut refresh = Vec::with_capacity(users.len());
        let mut key_id = String::new();
        for (id, username) in users {
            // Each link's uid is its username.
            let place = |column| Binding::Account {
                provider: &args.provider,
                uid: &username,
                column,
            };
            let sealed_access = cipher.seal(
                &format!("at.{username}.seed"),
                place(TokenColumn::AccessToken),
            );
            key_id = sealed_access.key_id.clone();
            ids.push(id);
            access.push(sealed_access.data);
            refresh.push(
                cipher
                    .seal(
                        &format!("rt.{username}.seed"),
                        place(TokenColumn::RefreshToken),
                    )
                    .data,
            );
            uids.push(username);
        }
        sqlx::query(INSERT_LINKS)
            .bind(&args.provider)
            .bind(&key_id)
            .bind(now - 60_000)
            .bind(now)
            .bind(&ids)
            .bind(&uids)
            .bind(&access)
            .bind(&refresh)
            .execute(&pool)
            .await
            .context("links")?;
        made += n;
    }
    println!("seeded {made} links of {}", args.provider);
    Ok(())
}
