//! Refresh campaigns: `refresh_campaigns` (the campaign and its counts),
//! `refresh_campaign_pages` and `refresh_campaign_items` (what it covers,
//! each item's outcome written once), and `rate_budgets` (budgets shared
//! by every worker).
//!
//! What is refreshed, and how an answer counts, is the worker's
//! (`socialauth_worker::campaign`); these statements store it.

use super::base::SqlRow;
use super::social_accounts;
use super::{Campaign, CampaignCounts, CampaignStatus, ItemOutcome, PlanState, StoreError};
use uuid::Uuid;

macro_rules! campaign_columns {
    () => {
        "id, provider, providers, expiring_within_secs, expiring_before, rate_per_second, \
         status, plan_provider, plan_cursor, planned, pages, published_pages, total, \
         refreshed, failed, needs_reauth, skipped, created_at, updated_at, finished_at"
    };
}

/// A running campaign is done once it is planned and every item it
/// planned is handled: `done_when!(planned, handled, total)` (SQL
/// expressions, the new values) is that condition.
macro_rules! done_when {
    ($planned:literal, $handled:literal, $total:literal) => {
        concat!(
            "status = 'running' AND ",
            $planned,
            " AND ",
            $handled,
            " >= ",
            $total
        )
    };
}

pub(super) const INSERT: &str = concat!(
    "INSERT INTO refresh_campaigns \
     (id, provider, providers, expiring_within_secs, expiring_before, rate_per_second, \
      status, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, 'running', $7, $7) RETURNING ",
    campaign_columns!()
);

pub(super) const FIND: &str = concat!(
    "SELECT ",
    campaign_columns!(),
    " FROM refresh_campaigns WHERE id = $1"
);

/// Running campaigns last written at $1 or before, the longest stalled
/// first, at most $2.
pub(super) const FIND_STALLED: &str = concat!(
    "SELECT ",
    campaign_columns!(),
    " FROM refresh_campaigns WHERE status = 'running' AND updated_at <= $1 \
     ORDER BY updated_at LIMIT $2"
);

/// The newest first, at most $1.
pub(super) const LIST: &str = concat!(
    "SELECT ",
    campaign_columns!(),
    " FROM refresh_campaigns ORDER BY created_at DESC, id LIMIT $1"
);

/// Stops a running campaign ($1) at $2.
pub(super) const CANCEL: &str = "UPDATE refresh_campaigns \
     SET status = 'cancelled', updated_at = $2, finished_at = $2 \
     WHERE id = $1 AND status = 'running' RETURNING id";

/// Moves a running campaign's ($1) `updated_at` from $2 to $3: one
/// caller only.
pub(super) const TOUCH: &str = "UPDATE refresh_campaigns SET updated_at = $3 \
     WHERE id = $1 AND status = 'running' AND updated_at = $2 RETURNING id";

/// The next accounts a campaign may cover: of provider $1, after id $2, a
/// refresh token, usable, the access token expiring before $3; at most $4,
/// in id order.
pub(super) const PLAN_CANDIDATES: &str = "SELECT id FROM social_accounts \
     WHERE provider = $1 AND id > $2 AND refresh_token_enc IS NOT NULL \
       AND NOT needs_reauth AND expires_at < $3 \
     ORDER BY id LIMIT $4";

/// A planning step's bookkeeping ($1): from the state it was planned from
/// ($2, $3) to the next ($4, $5), $6 planned, $7 pages and $8 items more,
/// at $9. No row: another planner made this step (or the campaign is no
/// longer running). A campaign planned with every item handled is done.
pub(super) const ADVANCE_PLAN: &str = concat!(
    "UPDATE refresh_campaigns \
     SET plan_provider = $4, plan_cursor = $5, planned = $6, pages = pages + $7, \
         total = total + $8, updated_at = $9, \
         status = CASE WHEN ",
    done_when!(
        "$6",
        "refreshed + failed + needs_reauth + skipped",
        "total + $8"
    ),
    " THEN 'done' ELSE status END, \
         finished_at = CASE WHEN ",
    done_when!(
        "$6",
        "refreshed + failed + needs_reauth + skipped",
        "total + $8"
    ),
    " THEN $9 ELSE finished_at END \
     WHERE id = $1 AND status = 'running' AND plan_provider = $2 AND plan_cursor = $3 \
     RETURNING id"
);

pub(super) const INSERT_PAGE: &str =
    "INSERT INTO refresh_campaign_pages (campaign_id, page, provider) VALUES ($1, $2, $3)";

pub(super) const INSERT_ITEM: &str =
    "INSERT INTO refresh_campaign_items (campaign_id, account_id, page) VALUES ($1, $2, $3)";

pub(super) const INSERT_ITEMS_PG: &str = "INSERT INTO refresh_campaign_items (campaign_id, account_id, page) \
     SELECT $1, a, p FROM unnest($2::bigint[], $3::bigint[]) AS d(a, p)";

/// Pages $2 ≤ page < $3 of campaign $1, with their providers.
pub(super) const FIND_PAGES: &str = "SELECT page, provider FROM refresh_campaign_pages \
     WHERE campaign_id = $1 AND page >= $2 AND page < $3 ORDER BY page";

/// The pages of campaign $1 with an item not yet handled.
pub(super) const FIND_UNFINISHED_PAGES: &str = "SELECT p.page, p.provider \
     FROM refresh_campaign_pages p WHERE p.campaign_id = $1 AND EXISTS \
       (SELECT 1 FROM refresh_campaign_items i \
        WHERE i.campaign_id = p.campaign_id AND i.page = p.page AND i.outcome IS NULL) \
     ORDER BY p.page";

pub(super) const MARK_PUBLISHED: &str = "UPDATE refresh_campaigns SET published_pages = $2 \
     WHERE id = $1 AND published_pages < $2";

/// The accounts of page $2 of campaign $1 not yet handled.
pub(super) const FIND_PAGE_ITEMS: &str = "SELECT account_id FROM refresh_campaign_items \
     WHERE campaign_id = $1 AND page = $2 AND outcome IS NULL ORDER BY account_id";

/// Takes the refresh leases of the links among $1 that nobody holds at $2
/// — or that owner $4 holds already: the call made again after its answer
/// was lost — for owner $4 until $3. Each run of a page is its own owner.
pub(super) const TAKE_LEASES_PG: &str = concat!(
    "UPDATE social_accounts SET refresh_lease_until = $3, refresh_lease_owner = $4 \
     WHERE id = ANY($1) \
       AND (refresh_lease_until IS NULL OR refresh_lease_until <= $2 OR refresh_lease_owner = $4) \
     RETURNING ",
    social_accounts::account_columns!(),
    ", token_key_id, access_token_enc, refresh_token_enc, token_secret_enc"
);

/// [`TAKE_LEASES_PG`] for one link ($1).
pub(super) const TAKE_LEASE_AGAIN: &str = concat!(
    "UPDATE social_accounts SET refresh_lease_until = $3, refresh_lease_owner = $4 \
     WHERE id = $1 \
       AND (refresh_lease_until IS NULL OR refresh_lease_until <= $2 OR refresh_lease_owner = $4) \
     RETURNING ",
    social_accounts::account_columns!(),
    ", token_key_id, access_token_enc, refresh_token_enc, token_secret_enc"
);

/// Refreshed links' new tokens (every one under its key id) at $7, where
/// owner $6 holds the lease, which it gives back: usable again.
pub(super) const STORE_REFRESHED_PG: &str = "UPDATE social_accounts s \
     SET token_key_id = d.k, access_token_enc = d.a, refresh_token_enc = d.r, \
         expires_at = d.e, token_secret_enc = d.t, needs_reauth = false, updated_at = $7, \
         refresh_lease_until = NULL, refresh_lease_owner = NULL \
     FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $8::text[]) \
          AS d(id, k, a, r, e, t) \
     WHERE s.id = ANY ($1) AND s.id = d.id AND s.refresh_lease_owner = $6 \
     RETURNING s.id";

/// Leases owner $3 gives back without new tokens; where $2: the provider
/// refused the grant.
pub(super) const END_LEASES_PG: &str = "UPDATE social_accounts s \
     SET needs_reauth = (s.needs_reauth OR d.reauth), \
         refresh_lease_until = NULL, refresh_lease_owner = NULL \
     FROM unnest($1::bigint[], $2::bool[]) AS d(id, reauth) \
     WHERE s.id = ANY ($1) AND s.id = d.id AND s.refresh_lease_owner = $3";

/// Items' outcomes, each written once: the ones written now.
pub(super) const RECORD_OUTCOMES_PG: &str = "UPDATE refresh_campaign_items i \
     SET outcome = d.o FROM unnest($2::bigint[], $3::text[]) AS d(id, o) \
     WHERE i.campaign_id = $1 AND i.account_id = ANY ($2) AND i.account_id = d.id \
       AND i.outcome IS NULL \
     RETURNING i.outcome";

pub(super) const RECORD_OUTCOME: &str = "UPDATE refresh_campaign_items SET outcome = $3 \
     WHERE campaign_id = $1 AND account_id = $2 AND outcome IS NULL RETURNING outcome";

/// Counts ($2 refreshed, $3 failed, $4 needs_reauth, $5 skipped) added at
/// $6; a planned campaign with every item handled is done.
pub(super) const ADD_COUNTS: &str = concat!(
    "UPDATE refresh_campaigns \
     SET refreshed = refreshed + $2, failed = failed + $3, needs_reauth = needs_reauth + $4, \
         skipped = skipped + $5, updated_at = $6, \
         status = CASE WHEN ",
    done_when!(
        "planned",
        "refreshed + failed + needs_reauth + skipped + $2 + $3 + $4 + $5",
        "total"
    ),
    " THEN 'done' ELSE status END, \
         finished_at = CASE WHEN ",
    done_when!(
        "planned",
        "refreshed + failed + needs_reauth + skipped + $2 + $3 + $4 + $5",
        "total"
    ),
    " THEN $6 ELSE finished_at END \
     WHERE id = $1"
);

/// Reserves $3 µs of budget $1 from $2 (now, µs) on: the start of the
/// reservation (the budget's next free time, or now when it is idle).
pub(super) const RESERVE_RATE: &str = "INSERT INTO rate_budgets (key, next_at_us) \
     VALUES ($1, $2 + $3) \
     ON CONFLICT (key) DO UPDATE SET next_at_us = \
       (CASE WHEN rate_budgets.next_at_us > $2 THEN rate_budgets.next_at_us ELSE $2 END) + $3 \
     RETURNING next_at_us - $3 AS start_us";

pub(super) fn from_row(row: &impl SqlRow) -> Result<Campaign, StoreError> {
    let bad = |what: &str| StoreError::Database(format!("a campaign with a bad {what}"));
    let id = Uuid::parse_str(&row.text("id")?).map_err(|_| bad("id"))?;
    let providers: Vec<String> =
        serde_json::from_str(&row.text("providers")?).map_err(|_| bad("provider list"))?;
    let status = CampaignStatus::parse(&row.text("status")?).ok_or_else(|| bad("status"))?;
    Ok(Campaign {
        id,
        provider: row.opt_text("provider")?,
        providers,
        expiring_within_secs: row.int("expiring_within_secs")?,
        expiring_before: row.int("expiring_before")?,
        rate_per_second: row.opt_float("rate_per_second")?,
        status,
        plan: PlanState {
            provider_index: row.int("plan_provider")?,
            cursor: row.int("plan_cursor")?,
        },
        planned: row.flag("planned")?,
        pages: row.int("pages")?,
        published_pages: row.int("published_pages")?,
        total: row.int("total")?,
        counts: CampaignCounts {
            refreshed: row.int("refreshed")?,
            failed: row.int("failed")?,
            needs_reauth: row.int("needs_reauth")?,
            skipped: row.int("skipped")?,
        },
        created_at: row.int("created_at")?,
        updated_at: row.int("updated_at")?,
        finished_at: row.opt_int("finished_at")?,
    })
}

/// The counts of outcomes as written.
pub(super) fn count(written: impl IntoIterator<Item = String>) -> CampaignCounts {
    let mut counts = CampaignCounts::default();
    for outcome in written {
        match ItemOutcome::parse(&outcome) {
            Some(ItemOutcome::Refreshed) => counts.refreshed += 1,
            Some(ItemOutcome::Failed) => counts.failed += 1,
            Some(ItemOutcome::NeedsReauth) => counts.needs_reauth += 1,
            Some(ItemOutcome::Skipped) | None => counts.skipped += 1,
        }
    }
    counts
}
