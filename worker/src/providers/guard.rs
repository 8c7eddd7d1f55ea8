//! Outbound protection per provider: a circuit breaker and a request
//! budget, consulted before every request to the provider and told how
//! each went.
//!
//! The breaker counts failed requests in a row (connect errors, timeouts,
//! 5xx, 429, 408). At [`BreakerSettings::failures`] it opens: the
//! provider's calls fail at once for [`BreakerSettings::open_for`], or for
//! the longest `Retry-After` the provider sent meanwhile when that is
//! longer (at most [`OPEN_CAP`]). Then one trial request goes out; its
//! success closes the breaker, its failure opens it again. A provider that
//! refuses a code (400, 401) answers: that is a success here.
//!
//! The budget is a token bucket (`governor`). A request that starts a flow
//! with a single-use credential (a code exchange, a refresh) waits for a
//! token at most [`BreakerSettings::budget_wait`], else fails at once,
//! before anything was spent; every other request waits for its token (at
//! most [`FOLLOW_UP_WAIT`]): a userinfo call after a code exchange refused
//! for want of a token would lose the login.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use socialauth_common::catalogue::RequestBudget;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest a provider's `Retry-After` keeps its breaker open.
pub(crate) const OPEN_CAP: Duration = Duration::from_secs(600);
/// The longest a request that is not [`Admission::Bounded`] waits for
/// the budget.
pub(crate) const FOLLOW_UP_WAIT: Duration = Duration::from_secs(30);

/// How long a request may wait for the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// At most `budget_wait`, then refused (nothing spent yet).
    Bounded,
    /// Until its token comes (at most [`FOLLOW_UP_WAIT`]).
    Patient,
}

/// When the breaker opens, for how long, and how long a request waits for
/// the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Failed requests in a row that open the breaker; 0: never opens.
    pub failures: u32,
    pub open_for: Duration,
    pub budget_wait: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failures: 5,
            open_for: Duration::from_secs(30),
            budget_wait: Duration::from_secs(1),
        }
    }
}

/// Why a request was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The breaker is open (or its trial request is out).
    Open { retry_after: Duration },
    /// The budget has no token within the wait allowed.
    Budget { retry_after: Duration },
}

impl Refusal {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::Open { .. } => "breaker",
            Self::Budget { .. } => "budget",
        }
    }
}

/// How one request went, as the breaker counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observed {
    Answered,
    /// No answer, or 5xx/429/408 (with the provider's `Retry-After`).
    Failed {
        retry_after: Option<Duration>,
    },
    /// Says nothing of the provider's health (a request we could not
    /// build, an answer too large).
    Neutral,
}

/// The breaker's state, as `GET /providers` and the metrics show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    /// Calls fail at once until `until`.
    Open {
        until: Instant,
    },
    /// One trial request is out.
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open { .. } => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
enum Phase {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// The trial request went out at `since` (another goes out when it
    /// has not reported within `open_for`: it was dropped).
    Trial {
        since: Instant,
    },
}

/// One provider's breaker and budget, in one worker process.
pub(crate) struct Guard {
    provider: String,
    settings: BreakerSettings,
    phase: Mutex<Inner>,
    budget: Option<DefaultDirectRateLimiter>,
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    /// The longest `Retry-After` since the breaker last closed.
    retry_after: Option<Duration>,
    /// Bumped on every change of state (for the writer of the shared view).
    version: u64,
}

impl Guard {
    pub(crate) fn new(
        provider: &str,
        settings: BreakerSettings,
        budget: Option<RequestBudget>,
    ) -> Self {
        let budget = budget.and_then(|b| {
            let rate = NonZeroU32::new(b.per_second)?;
            let burst = NonZeroU32::new(b.burst).unwrap_or(rate);
            Some(RateLimiter::direct(
                Quota::per_second(rate).allow_burst(burst),
            ))
        });
        set_open_gauge(provider, false);
        Self {
            provider: provider.to_owned(),
            settings,
            phase: Mutex::new(Inner {
                phase: Phase::Closed { failures: 0 },
                retry_after: None,
                version: 0,
            }),
            budget,
        }
    }

    /// Whether a request may go out now: an open breaker refuses at once;
    /// then the budget (waiting as `admission` allows); then the breaker
    /// again, which makes this request the trial when its open time is
    /// over (a request the budget refused is never the trial).
    pub(crate) async fn admit(&self, admission: Admission) -> Result<(), Refusal> {
        let result = match self.breaker_open(Instant::now()) {
            Some(r) => Err(r),
            None => match self.take_budget(admission).await {
                Ok(()) => self.breaker_admits(Instant::now()),
                Err(r) => Err(r),
            },
        };
        if let Err(r) = result {
            metrics::counter!(
                "socialauth_provider_refused_requests_total",
                "provider" => self.provider.clone(),
                "reason" => r.reason(),
            )
            .increment(1);
        }
        result
    }

    /// The refusal of an open breaker (or of one whose trial is out), if
    /// it is.
    fn breaker_open(&self, now: Instant) -> Option<Refusal> {
        if self.settings.failures == 0 {
            return None;
        }
        match self.lock().phase {
            Phase::Closed { .. } => None,
            Phase::Open { until } => (now < until).then(|| Refusal::Open {
                retry_after: until - now,
            }),
            Phase::Trial { since } => self.trial_out(since, now).then_some(Refusal::Open {
                retry_after: Duration::from_secs(1),
            }),
        }
    }

    /// Whether the trial sent at `since` may still report.
    fn trial_out(&self, since: Instant, now: Instant) -> bool {
        since
            .checked_add(self.settings.open_for)
            .is_none_or(|end| now < end)
    }

    fn breaker_admits(&self, now: Instant) -> Result<(), Refusal> {
        if self.settings.failures == 0 {
            return Ok(());
        }
        let mut inner = self.lock();
        match inner.phase {
            Phase::Closed { .. } => Ok(()),
            Phase::Open { until } if now < until => Err(Refusal::Open {
                retry_after: until - now,
            }),
            Phase::Trial { since } if self.trial_out(since, now) => Err(Refusal::Open {
                retry_after: Duration::from_secs(1),
            }),
            Phase::Open { .. } | Phase::Trial { .. } => {
                inner.phase = Phase::Trial { since: now };
                inner.version += 1;
                Ok(())
            }
        }
    }

    async fn take_budget(&self, admission: Admission) -> Result<(), Refusal> {
        let Some(limiter) = &self.budget else {
            return Ok(());
        };
        let clock = DefaultClock::default();
        let wait = match admission {
            Admission::Bounded => self.settings.budget_wait,
            Admission::Patient => FOLLOW_UP_WAIT,
        };
        let deadline = Instant::now()
            .checked_add(wait)
            .unwrap_or_else(|| Instant::now() + FOLLOW_UP_WAIT);
        loop {
            let Err(not_until) = limiter.check() else {
                return Ok(());
            };
            let wait = not_until.wait_time_from(clock.now());
            if Instant::now() + wait > deadline {
                return Err(Refusal::Budget { retry_after: wait });
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Counts how a request that was admitted went.
    pub(crate) fn record(&self, observed: Observed) {
        if self.settings.failures == 0 {
            return;
        }
        let now = Instant::now();
        let mut inner = self.lock();
        match observed {
            // A trial that says nothing (not sent, too large) lets the
            // next request be the trial.
            Observed::Neutral => {
                if matches!(inner.phase, Phase::Trial { .. }) {
                    inner.phase = Phase::Open { until: now };
                }
            }
            Observed::Answered => {
                let was_open = !matches!(inner.phase, Phase::Closed { .. });
                inner.phase = Phase::Closed { failures: 0 };
                // A `Retry-After` counts for the run of failures it came in.
                inner.retry_after = None;
                if was_open {
                    inner.version += 1;
                    drop(inner);
                    tracing::info!(provider = %self.provider, "provider breaker closed");
                    set_open_gauge(&self.provider, false);
                }
            }
            Observed::Failed { retry_after } => {
                if let Some(ra) = retry_after {
                    inner.retry_after = Some(inner.retry_after.map_or(ra, |old| old.max(ra)));
                }
                let opens = match inner.phase {
                    Phase::Closed { failures } => {
                        let failures = failures + 1;
                        inner.phase = Phase::Closed { failures };
                        failures >= self.settings.failures
                    }
                    // A request admitted before the breaker opened, failing
                    // late, changes nothing.
                    Phase::Open { .. } => false,
                    Phase::Trial { .. } => true,
                };
                if opens {
                    let open_for = inner
                        .retry_after
                        .map_or(self.settings.open_for, |ra| ra.max(self.settings.open_for))
                        .min(OPEN_CAP);
                    inner.phase = Phase::Open {
                        until: now + open_for,
                    };
                    inner.version += 1;
                    drop(inner);
                    tracing::warn!(
                        provider = %self.provider,
                        open_for_secs = open_for.as_secs(),
                        "provider breaker opened: its calls fail at once"
                    );
                    metrics::counter!(
                        "socialauth_provider_breaker_opened_total",
                        "provider" => self.provider.clone(),
                    )
                    .increment(1);
                    set_open_gauge(&self.provider, true);
                }
            }
        }
    }

    /// The breaker's state now, and the version of it.
    pub(crate) fn state(&self) -> (BreakerState, u64) {
        let now = Instant::now();
        let inner = self.lock();
        let state = match inner.phase {
            Phase::Closed { .. } => BreakerState::Closed,
            Phase::Open { until } if now < until => BreakerState::Open { until },
            Phase::Open { .. } | Phase::Trial { .. } => BreakerState::HalfOpen,
        };
        (state, inner.version)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing panics while holding it; a poisoned lock still holds a
        // consistent state.
        self.phase
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn set_open_gauge(provider: &str, open: bool) {
    metrics::gauge!(
        "socialauth_provider_breaker_open",
        "provider" => provider.to_owned(),
    )
    .set(if open { 1.0 } else { 0.0 });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(failures: u32, open_for: Duration) -> Guard {
        Guard::new(
            "p",
            BreakerSettings {
                failures,
                open_for,
                budget_wait: Duration::ZERO,
            },
            None,
        )
    }

    const FAILED: Observed = Observed::Failed { retry_after: None };

    #[test]
    fn it_opens_after_failures_in_a_row_and_an_answer_resets_the_count() {
        let g = guard(3, Duration::from_secs(30));
        let now = Instant::now();
        g.record(FAILED);
        g.record(FAILED);
        g.record(Observed::Answered);
        g.record(FAILED);
        g.record(FAILED);
        assert!(g.breaker_admits(now).is_ok());
        assert_eq!(g.state().0, BreakerState::Closed);
        g.record(FAILED);
        assert!(matches!(g.state().0, BreakerState::Open { .. }));
        match g.breaker_admits(Instant::now()) {
            Err(Refusal::Open { retry_after }) => {
                assert!(retry_after > Duration::from_secs(29), "{retry_after:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn after_the_open_time_one_trial_goes_out_and_its_outcome_decides() {
        let g = guard(1, Duration::from_millis(20));
        g.record(FAILED);
        let later = Instant::now() + Duration::from_millis(30);
        assert!(g.breaker_admits(later).is_ok(), "the trial");
        assert!(g.breaker_admits(later).is_err(), "only one trial at a time");
        assert_eq!(g.state().0, BreakerState::HalfOpen);
        g.record(FAILED);
        assert!(matches!(g.state().0, BreakerState::Open { .. }));
        let later = Instant::now() + Duration::from_millis(30);
        assert!(g.breaker_admits(later).is_ok());
        g.record(Observed::Answered);
        assert_eq!(g.state().0, BreakerState::Closed);
        assert!(g.breaker_admits(later).is_ok());
    }

    #[test]
    fn a_trial_that_never_reports_is_followed_by_another() {
        let g = guard(1, Duration::from_millis(20));
        g.record(FAILED);
        let t1 = Instant::now() + Duration::from_millis(30);
        assert!(g.breaker_admits(t1).is_ok());
        assert!(g.breaker_admits(t1 + Duration::from_millis(30)).is_ok());
    }

    #[test]
    fn a_trial_that_says_nothing_lets_the_next_request_be_the_trial() {
        let g = guard(1, Duration::from_millis(20));
        g.record(FAILED);
        let later = Instant::now() + Duration::from_millis(30);
        assert!(g.breaker_admits(later).is_ok());
        g.record(Observed::Neutral);
        assert!(
            g.breaker_admits(Instant::now()).is_ok(),
            "a new trial at once"
        );
    }

    #[test]
    fn a_retry_after_is_forgotten_once_the_provider_answers() {
        let g = guard(2, Duration::from_secs(1));
        g.record(Observed::Failed {
            retry_after: Some(Duration::from_secs(500)),
        });
        g.record(Observed::Answered);
        g.record(FAILED);
        g.record(FAILED);
        match g.state().0 {
            BreakerState::Open { until } => {
                assert!(until - Instant::now() <= Duration::from_secs(1));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_providers_retry_after_keeps_it_open_longer_but_capped() {
        let g = guard(2, Duration::from_secs(1));
        g.record(Observed::Failed {
            retry_after: Some(Duration::from_secs(120)),
        });
        g.record(FAILED);
        match g.state().0 {
            BreakerState::Open { until } => {
                let left = until - Instant::now();
                assert!(left > Duration::from_secs(110), "{left:?}");
            }
            other => panic!("{other:?}"),
        }
        let g = guard(1, Duration::from_secs(1));
        g.record(Observed::Failed {
            retry_after: Some(Duration::from_secs(86_400)),
        });
        match g.state().0 {
            BreakerState::Open { until } => assert!(until - Instant::now() <= OPEN_CAP),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn neutral_outcomes_and_a_disabled_breaker_change_nothing() {
        let g = guard(1, Duration::from_secs(30));
        g.record(Observed::Neutral);
        assert_eq!(g.state(), (BreakerState::Closed, 0));
        let off = guard(0, Duration::from_secs(30));
        for _ in 0..10 {
            off.record(FAILED);
        }
        assert!(off.breaker_admits(Instant::now()).is_ok());
    }

    fn budgeted(wait_ms: u64) -> Guard {
        Guard::new(
            "p",
            BreakerSettings {
                failures: 5,
                open_for: Duration::from_secs(30),
                budget_wait: Duration::from_millis(wait_ms),
            },
            Some(RequestBudget {
                per_second: 10,
                burst: 2,
            }),
        )
    }

    #[tokio::test]
    async fn the_budget_lets_a_burst_through_then_waits_a_little_then_refuses() {
        let g = budgeted(150);
        assert!(g.admit(Admission::Bounded).await.is_ok());
        assert!(g.admit(Admission::Bounded).await.is_ok());
        let started = Instant::now();
        assert!(
            g.admit(Admission::Bounded).await.is_ok(),
            "waits ~100 ms for a token"
        );
        assert!(started.elapsed() >= Duration::from_millis(50));

        let g = budgeted(20);
        assert!(g.admit(Admission::Bounded).await.is_ok());
        assert!(g.admit(Admission::Bounded).await.is_ok());
        let started = Instant::now();
        match g.admit(Admission::Bounded).await {
            Err(Refusal::Budget { retry_after }) => {
                assert!(retry_after > Duration::from_millis(20), "{retry_after:?}");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_millis(20),
            "refused at once"
        );

        // A request that follows a single-use one waits for its token.
        let started = Instant::now();
        assert!(g.admit(Admission::Patient).await.is_ok());
        assert!(started.elapsed() >= Duration::from_millis(20));
    }

    #[tokio::test]
    async fn a_request_the_budget_refuses_is_never_the_trial() {
        let g = Guard::new(
            "p",
            BreakerSettings {
                failures: 1,
                open_for: Duration::from_millis(20),
                budget_wait: Duration::ZERO,
            },
            Some(RequestBudget {
                per_second: 1,
                burst: 1,
            }),
        );
        assert!(g.admit(Admission::Bounded).await.is_ok());
        g.record(FAILED);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(matches!(
            g.admit(Admission::Bounded).await,
            Err(Refusal::Budget { .. })
        ));
        assert_eq!(g.state().0, BreakerState::HalfOpen, "no trial taken");
        assert!(g.breaker_admits(Instant::now()).is_ok(), "the next one is");
    }
}
