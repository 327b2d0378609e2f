//! When to try again: the backoff schedule, jitter, and the limits of a retry cycle.
//!
//! Jitter is a pure function of `(seed, event key, attempt number)` (splitmix64), with no
//! random state, so a restored delivery keeps exactly the schedule it had, and the same
//! seed gives the same schedule on every run and platform.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::id::EventKey;
use crate::time::{Timestamp, duration_millis};

/// How the delay between attempts grows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    /// The n-th entry is the delay after the n-th failed attempt; the last entry repeats.
    Fixed(Vec<Duration>),
    /// `min(cap, base * factor^(n-1))` after the n-th failed attempt.
    Exponential {
        /// Delay after the first failure.
        base: Duration,
        /// Growth per attempt (at least 1).
        factor: f64,
        /// Largest delay.
        cap: Duration,
    },
}

/// How a computed delay `v` is randomised, so that receivers are not hit in waves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    /// Exactly `v`.
    None,
    /// Uniform in `[0, v]`.
    Full,
    /// Uniform in `[v/2, v]`.
    Equal,
    /// `min(cap, uniform in [base, 3 * previous])` (exponential backoff only).
    Decorrelated,
}

/// A port's retry policy. Build with [`RetryPolicy::fixed`] or
/// [`RetryPolicy::exponential`], adjust, then [`RetryPolicy::validate`] (ports do that
/// when they are built, so an invalid policy never runs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    backoff: Backoff,
    jitter: Jitter,
    max_attempts: u32,
    retry_window: Option<Duration>,
    attempt_timeout: Duration,
    retry_after_cap: Duration,
}

/// An invalid retry policy; each variant names the setting at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// `max_attempts` is 0: nothing would ever be sent.
    #[error("max_attempts must be at least 1")]
    ZeroAttempts,
    /// `max_attempts` above the supported limit.
    #[error("max_attempts is {0}; the limit is {max}", max = RetryPolicy::MAX_ATTEMPTS_LIMIT)]
    TooManyAttempts(u32),
    /// A zero `attempt_timeout`: every attempt would time out at once.
    #[error("attempt_timeout must be greater than zero")]
    ZeroTimeout,
    /// A fixed schedule without entries.
    #[error("the fixed backoff schedule is empty")]
    EmptySchedule,
    /// Exponential backoff with a zero base.
    #[error("backoff base must be greater than zero")]
    ZeroBase,
    /// Exponential backoff with a factor below 1 or not finite.
    #[error("backoff factor must be a finite number of at least 1, got {0}")]
    BadFactor(f64),
    /// Exponential backoff whose cap is below its base.
    #[error("backoff cap ({cap:?}) is below its base ({base:?})")]
    CapBelowBase {
        /// The cap.
        cap: Duration,
        /// The base.
        base: Duration,
    },
    /// A zero retry window: no retry could ever fit.
    #[error("retry_window must be greater than zero when set")]
    ZeroWindow,
    /// Decorrelated jitter needs a base and a cap, which only exponential backoff has.
    #[error("decorrelated jitter needs exponential backoff")]
    DecorrelatedNeedsExponential,
}

/// What to do after a retryable failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextStep {
    /// Attempt again at this time.
    RetryAt(Timestamp),
    /// Stop: the policy's limits are used up.
    Exhausted(ExhaustedBy),
}

/// Which limit ended a retry cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExhaustedBy {
    /// `max_attempts` attempts were made.
    MaxAttempts,
    /// The next attempt would fall outside the retry window.
    RetryWindow,
}

impl Default for RetryPolicy {
    /// The Svix schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: eight attempts over
    /// about 27 hours) with equal jitter, a 30 s attempt timeout and `Retry-After` capped
    /// at one hour.
    fn default() -> Self {
        const MIN: u64 = 60;
        const HOUR: u64 = 3600;
        RetryPolicy::fixed(
            [5, 5 * MIN, 30 * MIN, 2 * HOUR, 5 * HOUR, 10 * HOUR, 10 * HOUR]
                .map(Duration::from_secs)
                .to_vec(),
        )
    }
}

impl RetryPolicy {
    /// The largest `max_attempts` accepted.
    pub const MAX_ATTEMPTS_LIMIT: u32 = 1000;

    /// A fixed schedule; `max_attempts` defaults to one more than its length.
    pub fn fixed(schedule: Vec<Duration>) -> Self {
        let max_attempts = u32::try_from(schedule.len()).unwrap_or(u32::MAX).saturating_add(1);
        Self::with_backoff(Backoff::Fixed(schedule), max_attempts)
    }

    /// Exponential backoff `min(cap, base * factor^(n-1))`, 10 attempts by default.
    pub fn exponential(base: Duration, factor: f64, cap: Duration) -> Self {
        Self::with_backoff(Backoff::Exponential { base, factor, cap }, 10)
    }

    fn with_backoff(backoff: Backoff, max_attempts: u32) -> Self {
        RetryPolicy {
            backoff,
            jitter: Jitter::Equal,
            max_attempts,
            retry_window: None,
            attempt_timeout: Duration::from_secs(30),
            retry_after_cap: Duration::from_secs(3600),
        }
    }

    /// Sets the jitter.
    #[must_use]
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }
    /// Sets the most attempts per cycle, the first included.
    #[must_use]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }
    /// Bounds the time from a cycle's start to its last attempt.
    #[must_use]
    pub fn retry_window(mut self, window: Option<Duration>) -> Self {
        self.retry_window = window;
        self
    }
    /// Sets how long one attempt may take.
    #[must_use]
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }
    /// Sets the longest wait a `Retry-After` can impose.
    #[must_use]
    pub fn retry_after_cap(mut self, cap: Duration) -> Self {
        self.retry_after_cap = cap;
        self
    }

    /// The backoff.
    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }
    /// The most attempts per cycle.
    pub fn get_max_attempts(&self) -> u32 {
        self.max_attempts
    }
    /// How long one attempt may take.
    pub fn get_attempt_timeout(&self) -> Duration {
        self.attempt_timeout
    }
    /// The retry window, if any.
    pub fn get_retry_window(&self) -> Option<Duration> {
        self.retry_window
    }
    /// The jitter.
    pub fn get_jitter(&self) -> Jitter {
        self.jitter
    }

    /// Checks every setting and their combinations.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.max_attempts == 0 {
            return Err(PolicyError::ZeroAttempts);
        }
        if self.max_attempts > Self::MAX_ATTEMPTS_LIMIT {
            return Err(PolicyError::TooManyAttempts(self.max_attempts));
        }
        if self.attempt_timeout.is_zero() {
            return Err(PolicyError::ZeroTimeout);
        }
        if self.retry_window.is_some_and(|w| w.is_zero()) {
            return Err(PolicyError::ZeroWindow);
        }
        match &self.backoff {
            Backoff::Fixed(s) if s.is_empty() => Err(PolicyError::EmptySchedule),
            Backoff::Fixed(_) if self.jitter == Jitter::Decorrelated => Err(PolicyError::DecorrelatedNeedsExponential),
            Backoff::Fixed(_) => Ok(()),
            Backoff::Exponential { base, .. } if base.is_zero() => Err(PolicyError::ZeroBase),
            Backoff::Exponential { factor, .. } if !(factor.is_finite() && *factor >= 1.0) => {
                Err(PolicyError::BadFactor(*factor))
            }
            Backoff::Exponential { base, cap, .. } if cap < base => {
                Err(PolicyError::CapBelowBase { cap: *cap, base: *base })
            }
            Backoff::Exponential { .. } => Ok(()),
        }
    }

    /// The delay before jitter after the `n`-th failed attempt of a cycle (`n >= 1`).
    pub fn base_delay(&self, n: u32) -> Duration {
        let n = n.max(1);
        match &self.backoff {
            Backoff::Fixed(s) => s.get(n as usize - 1).or(s.last()).copied().unwrap_or_default(),
            Backoff::Exponential { base, factor, cap } => {
                // Repeated multiplication: IEEE-754 products are exact-rounded, so this is
                // identical on every platform (powf is not guaranteed to be).
                let cap_ms = duration_millis(*cap) as f64;
                let mut v = duration_millis(*base) as f64;
                for _ in 1..n {
                    if v >= cap_ms {
                        break;
                    }
                    v *= factor;
                }
                Duration::from_millis(v.min(cap_ms) as u64)
            }
        }
    }

    /// The delay after the `n`-th failed attempt of a cycle, with jitter.
    pub fn delay(&self, seed: u64, key: EventKey, n: u32) -> Duration {
        let n = n.max(1);
        let v = duration_millis(self.base_delay(n));
        let ms = match self.jitter {
            Jitter::None => v,
            Jitter::Full => uniform(draw(seed, key, n), 0, v),
            Jitter::Equal => uniform(draw(seed, key, n), v / 2, v),
            Jitter::Decorrelated => {
                let (base, cap) = match &self.backoff {
                    Backoff::Exponential { base, cap, .. } => (duration_millis(*base), duration_millis(*cap)),
                    Backoff::Fixed(_) => (v, v), // rejected by validate(); harmless here
                };
                let mut prev = base;
                for i in 1..=n {
                    prev = uniform(draw(seed, key, i), base, prev.saturating_mul(3).max(base)).min(cap);
                }
                prev
            }
        };
        Duration::from_millis(ms)
    }

    /// Decides what follows a retryable failure of the `attempts`-th attempt of a cycle
    /// that started at `cycle_start`. A `Retry-After` (already resolved to a time) can
    /// only push the next attempt later, never earlier, and is clamped to
    /// `retry_after_cap` from `now`.
    pub fn next_after_failure(
        &self,
        seed: u64,
        key: EventKey,
        attempts: u32,
        cycle_start: Timestamp,
        now: Timestamp,
        retry_after: Option<Timestamp>,
    ) -> NextStep {
        if attempts >= self.max_attempts {
            return NextStep::Exhausted(ExhaustedBy::MaxAttempts);
        }
        let mut at = now.saturating_add(self.delay(seed, key, attempts));
        if let Some(asked) = retry_after {
            at = at.max(asked.min(now.saturating_add(self.retry_after_cap)));
        }
        match self.retry_window {
            Some(w) if at > cycle_start.saturating_add(w) => NextStep::Exhausted(ExhaustedBy::RetryWindow),
            _ => NextStep::RetryAt(at),
        }
    }
}

/// splitmix64 (Steele, Lea, Flood 2014): a tiny, well-mixed bijection on u64.
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn draw(seed: u64, key: EventKey, n: u32) -> u64 {
    let hi = u64::from_le_bytes(key.0[8..].try_into().expect("16 bytes"));
    splitmix64(splitmix64(seed ^ key.low_u64()) ^ splitmix64(hi ^ u64::from(n)))
}

/// Maps a uniform u64 to `[lo, hi]` without modulo bias worth noticing.
fn uniform(r: u64, lo: u64, hi: u64) -> u64 {
    if hi <= lo {
        return lo;
    }
    let span = u128::from(hi - lo) + 1;
    lo + ((u128::from(r) * span) >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: EventKey = EventKey([7; 16]);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn default_schedules_are_pinned() {
        let describe = |p: &RetryPolicy| -> String {
            (1..p.get_max_attempts())
                .map(|n| {
                    format!(
                        "after attempt {n}: base {:?}, jittered {:?}",
                        p.base_delay(n),
                        p.delay(42, KEY, n)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let svix = RetryPolicy::default();
        let expo = RetryPolicy::exponential(secs(1), 2.0, secs(600)).jitter(Jitter::Full);
        let deco = RetryPolicy::exponential(secs(1), 2.0, secs(600)).jitter(Jitter::Decorrelated);
        insta::assert_snapshot!(format!(
            "svix default:\n{}\n\nexponential 1s x2 cap 10min, full jitter:\n{}\n\ndecorrelated:\n{}",
            describe(&svix),
            describe(&expo),
            describe(&deco)
        ));
    }

    #[test]
    fn identical_seeds_give_identical_schedules_and_different_seeds_differ() {
        let p = RetryPolicy::exponential(secs(1), 2.0, secs(3600)).jitter(Jitter::Full);
        let schedule = |seed| (1..=10).map(|n| p.delay(seed, KEY, n)).collect::<Vec<_>>();
        assert_eq!(schedule(1), schedule(1));
        assert_ne!(schedule(1), schedule(2));
    }

    #[test]
    fn jitter_stays_within_its_bounds() {
        for n in 1..=8 {
            for seed in 0..200 {
                let full = RetryPolicy::default().jitter(Jitter::Full);
                let v = full.base_delay(n);
                assert!(full.delay(seed, KEY, n) <= v);
                let equal = RetryPolicy::default();
                let d = equal.delay(seed, KEY, n);
                assert!(d >= v / 2 && d <= v, "{d:?} vs {v:?}");
                let deco = RetryPolicy::exponential(secs(2), 2.0, secs(60)).jitter(Jitter::Decorrelated);
                let d = deco.delay(seed, KEY, n);
                assert!(d >= secs(2) && d <= secs(60), "{d:?}");
            }
        }
    }

    #[test]
    fn exponential_grows_and_stops_at_the_cap() {
        let p = RetryPolicy::exponential(secs(1), 3.0, secs(50)).jitter(Jitter::None);
        let got: Vec<u64> = (1..=6).map(|n| p.delay(0, KEY, n).as_secs()).collect();
        assert_eq!(got, [1, 3, 9, 27, 50, 50]);
    }

    #[test]
    fn fixed_schedule_repeats_its_last_entry() {
        let p = RetryPolicy::fixed(vec![secs(1), secs(7)]).jitter(Jitter::None);
        assert_eq!(p.get_max_attempts(), 3);
        assert_eq!(p.delay(0, KEY, 5), secs(7));
    }

    #[test]
    fn every_invalid_policy_is_named() {
        let ok = RetryPolicy::default();
        assert_eq!(ok.validate(), Ok(()));
        let cases = [
            (ok.clone().max_attempts(0), PolicyError::ZeroAttempts),
            (ok.clone().max_attempts(1001), PolicyError::TooManyAttempts(1001)),
            (ok.clone().attempt_timeout(Duration::ZERO), PolicyError::ZeroTimeout),
            (ok.clone().retry_window(Some(Duration::ZERO)), PolicyError::ZeroWindow),
            (RetryPolicy::fixed(vec![]), PolicyError::EmptySchedule),
            (
                ok.clone().jitter(Jitter::Decorrelated),
                PolicyError::DecorrelatedNeedsExponential,
            ),
            (
                RetryPolicy::exponential(Duration::ZERO, 2.0, secs(1)),
                PolicyError::ZeroBase,
            ),
            (
                RetryPolicy::exponential(secs(1), 0.5, secs(9)),
                PolicyError::BadFactor(0.5),
            ),
            (
                RetryPolicy::exponential(secs(10), 2.0, secs(1)),
                PolicyError::CapBelowBase {
                    cap: secs(1),
                    base: secs(10),
                },
            ),
        ];
        for (policy, want) in cases {
            assert_eq!(policy.validate(), Err(want));
        }
        assert!(matches!(
            RetryPolicy::exponential(secs(1), f64::NAN, secs(9)).validate(),
            Err(PolicyError::BadFactor(f)) if f.is_nan()
        ));
    }

    #[test]
    fn exhausts_after_max_attempts_and_outside_the_window() {
        let p = RetryPolicy::fixed(vec![secs(10)]).jitter(Jitter::None).max_attempts(3);
        let t0 = Timestamp::from_secs(100);
        assert_eq!(
            p.next_after_failure(0, KEY, 2, t0, t0, None),
            NextStep::RetryAt(Timestamp::from_secs(110))
        );
        assert_eq!(
            p.next_after_failure(0, KEY, 3, t0, t0, None),
            NextStep::Exhausted(ExhaustedBy::MaxAttempts)
        );
        let w = p.clone().retry_window(Some(secs(15)));
        let later = Timestamp::from_secs(106);
        assert_eq!(
            w.next_after_failure(0, KEY, 1, t0, later, None),
            NextStep::Exhausted(ExhaustedBy::RetryWindow)
        );
    }

    #[test]
    fn retry_after_only_delays_and_is_capped() {
        let p = RetryPolicy::fixed(vec![secs(10)])
            .jitter(Jitter::None)
            .retry_after_cap(secs(60));
        let now = Timestamp::from_secs(1000);
        let early = Some(Timestamp::from_secs(1001));
        assert_eq!(
            p.next_after_failure(0, KEY, 1, now, now, early),
            NextStep::RetryAt(Timestamp::from_secs(1010))
        );
        let later = Some(Timestamp::from_secs(1030));
        assert_eq!(
            p.next_after_failure(0, KEY, 1, now, now, later),
            NextStep::RetryAt(Timestamp::from_secs(1030))
        );
        let huge = Some(Timestamp::from_secs(99_999));
        assert_eq!(
            p.next_after_failure(0, KEY, 1, now, now, huge),
            NextStep::RetryAt(Timestamp::from_secs(1060))
        );
    }
}
