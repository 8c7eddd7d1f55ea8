//! Who logs in: uids the stub provider turns into identities, codes unique
//! per login, and a cheap per-user random stream.

use crate::stubidp::splitmix64;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Hex digits of the run prefix, a 48-bit number.
const PREFIX_DIGITS: usize = 12;
/// Digits of the per-run counter (wider once it passes a billion).
const COUNTER_DIGITS: usize = 9;

/// A random 48-bit number, different for every run.
pub fn random_run_prefix() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0 & ((1 << 48) - 1)
}

/// The uid of the `n`th user of the run `prefix`: the prefix in hex at a
/// fixed width, so that no two runs' uids meet, then the counter in
/// decimal. 21 characters: the stub's username for it, `u<uid>`, stays
/// under the 24 characters socialauth keeps of a username, so no two users
/// of a run clash on it (as no two GitHub logins do).
pub fn uid(prefix: u64, n: u64) -> String {
    format!("{prefix:0PREFIX_DIGITS$x}{n:0COUNTER_DIGITS$}")
}

/// The code of one login of `uid`: the stub reads the uid before the dot;
/// `seq` keeps every code of the run unique (socialauth answers a replayed
/// code with the first attempt's outcome).
pub fn code(uid: &str, seq: u64) -> String {
    format!("{uid}.{seq}")
}

/// The run's users: a pool `0..pool` signed up first for returning logins,
/// and fresh ones numbered after it.
pub struct Uids {
    pub prefix: u64,
    pub pool: u64,
    next_fresh: AtomicU64,
    next_seq: AtomicU64,
}

impl Uids {
    pub fn new(prefix: u64, pool: u64) -> Self {
        Self {
            prefix,
            pool,
            next_fresh: AtomicU64::new(pool),
            next_seq: AtomicU64::new(0),
        }
    }

    /// A user never seen before.
    pub fn fresh(&self) -> String {
        uid(self.prefix, self.next_fresh.fetch_add(1, Relaxed))
    }

    /// The `i`th user of the pool.
    pub fn pooled(&self, i: u64) -> String {
        uid(self.prefix, i)
    }

    /// A code for one login of `uid`, unique in the run.
    pub fn code(&self, uid: &str) -> String {
        code(uid, self.next_seq.fetch_add(1, Relaxed))
    }
}

/// xorshift64*: a per-virtual-user random stream (no locks, no syscalls).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // Never 0, the one state xorshift cannot leave.
        Self(splitmix64(seed) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-high (no modulo bias worth
    /// the name for pools far below 2^64).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stubidp::uid_of_code;

    #[test]
    fn uids_have_a_fixed_width_hex_prefix_and_fit_a_username() {
        assert_eq!(uid(42, 7), "00000000002a000000007");
        let max = uid((1 << 48) - 1, 999_999_999);
        assert_eq!(max, "ffffffffffff999999999");
        assert!(format!("u{max}").len() <= 24);
        assert_ne!(uid(1, 10), uid(1, 11));
    }

    #[test]
    fn fresh_users_never_meet_the_pool_and_codes_never_repeat() {
        let uids = Uids::new(5, 3);
        let pool: Vec<_> = (0..3).map(|i| uids.pooled(i)).collect();
        let fresh = [uids.fresh(), uids.fresh()];
        assert!(fresh.iter().all(|u| !pool.contains(u)));
        assert_ne!(fresh[0], fresh[1]);
        let a = uids.code(&pool[0]);
        let b = uids.code(&pool[0]);
        assert_ne!(a, b);
        assert_eq!(uid_of_code(&a), Some(pool[0].as_str()));
    }

    #[test]
    fn the_random_stream_stays_in_range_and_covers_it() {
        let mut rng = Rng::new(1);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let i = rng.below(10);
            seen[i as usize] += 1;
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }
}
