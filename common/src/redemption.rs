//! When a login credential that was already used is answered again: the
//! rule every way in calls (the `/social-auth` code claim in the worker,
//! the djoser flow's taken state in the api).
//!
//! A code is single-use at the provider, so a second exchange never
//! happens. A retry of the same request — a double click, a mobile retry —
//! within the retry window (`[security] retry_window_secs`, at most
//! [`MAX_RETRY_WINDOW_MS`]) gets the first attempt's outcome and its very
//! token, never a second one; anything else, or later, gets nothing.

use uuid::Uuid;

/// The longest retry window: how long after the first use a retry of the
/// same request may be answered with the first outcome.
pub const MAX_RETRY_WINDOW_MS: i64 = 60 * 1000;

/// How long a used code is remembered, so that a reuse after the retry
/// window is refused without a provider call (codes live minutes at most).
pub const CODE_MEMORY_MS: i64 = 10 * 60 * 1000;

/// The first use of a credential, as the store recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstUse {
    /// The job that used it.
    pub job_id: Uuid,
    /// When, in milliseconds since the Unix epoch.
    pub at: i64,
    /// Whether this request is the same as the first: the same code with
    /// the same PKCE verifier and redirect URI (`/social-auth`), or the
    /// same code on the same state (the djoser flow).
    pub same_request: bool,
}

/// The job whose outcome answers this retry, or `None`: refuse it.
/// `window_ms` is the configured retry window (capped at
/// [`MAX_RETRY_WINDOW_MS`]).
pub fn retry_of(first: FirstUse, now: i64, window_ms: i64) -> Option<Uuid> {
    let window = window_ms.min(MAX_RETRY_WINDOW_MS);
    // A retry that read the clock just before the first use was recorded
    // (two at once) is within the window too.
    let in_window = now.saturating_sub(first.at) <= window;
    (first.same_request && in_window).then_some(first.job_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_request_within_the_window_is_answered() {
        let job_id = Uuid::new_v4();
        let first = FirstUse {
            job_id,
            at: 1_000,
            same_request: true,
        };
        let w = MAX_RETRY_WINDOW_MS;
        assert_eq!(retry_of(first, 1_000, w), Some(job_id));
        assert_eq!(retry_of(first, 1_000 + w, w), Some(job_id));
        assert_eq!(retry_of(first, 1_001 + w, w), None);
        assert_eq!(
            retry_of(first, 999, w),
            Some(job_id),
            "read the clock first"
        );
        assert_eq!(retry_of(first, 1_001 + w, 10 * w), None, "capped");
        assert_eq!(retry_of(first, 1_002, 1), None);
        let other = FirstUse {
            same_request: false,
            ..first
        };
        assert_eq!(retry_of(other, 1_000, w), None);
    }
}
