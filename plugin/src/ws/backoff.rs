//! Reconnect delays: exponential backoff with full jitter.
//!
//! Pure and clock-free so it can be tested without sleeping: the caller says
//! when an attempt failed ([`Backoff::next_delay`]) and how long the last
//! connection stayed up ([`Backoff::connection_ended`]); randomness comes in
//! through a `rand::Rng` so tests can pin it.
//!
//! "Full jitter" (each delay uniform in `0..=ceiling`) spreads the reconnects
//! of many plugins that lost the same bridge at the same moment, instead of
//! having them all knock again in lock-step.

use std::time::Duration;

use rand::Rng;

/// Tunables; [`BackoffPolicy::default`] is what production uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Ceiling of the first delay; doubles with each consecutive failure.
    pub initial: Duration,
    /// No delay is ever longer than this.
    pub max: Duration,
    /// A connection that stayed up at least this long resets the ceiling to
    /// `initial`: the bridge is healthy again, a new outage starts fresh.
    pub reset_after: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(10),
        }
    }
}

/// Consecutive-failure counter that turns into delays.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    /// Failures since the last reset; the next ceiling is `initial * 2^attempt`.
    attempt: u32,
}

impl Backoff {
    pub fn new(policy: BackoffPolicy) -> Self {
        Backoff { policy, attempt: 0 }
    }

    pub fn policy(&self) -> BackoffPolicy {
        self.policy
    }

    /// How many delays were handed out since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Upper bound of the next delay: `min(max, initial * 2^attempt)`.
    pub fn ceiling(&self) -> Duration {
        // 2^20 * 250 ms is already ~73 hours: past that, only the cap matters
        // (and the shift cannot overflow).
        let factor = 1u32 << self.attempt.min(20);
        self.policy
            .initial
            .checked_mul(factor)
            .unwrap_or(self.policy.max)
            .min(self.policy.max)
    }

    /// The delay to wait before the next connection attempt (uniform in
    /// `0..=ceiling`), and count one more failure.
    pub fn next_delay<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rng.random_range(0..=ceiling_ms))
    }

    /// A connection that had been established ended after `uptime`. Long
    /// enough and the ceiling starts over from `initial`.
    pub fn connection_ended(&mut self, uptime: Duration) {
        if uptime >= self.policy.reset_after {
            self.reset();
        }
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn policy() -> BackoffPolicy {
        BackoffPolicy::default()
    }

    #[test]
    fn ceilings_double_from_initial_then_cap() {
        let mut b = Backoff::new(policy());
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut ceilings = Vec::new();
        for _ in 0..12 {
            ceilings.push(b.ceiling().as_millis());
            b.next_delay(&mut rng);
        }
        assert_eq!(
            ceilings,
            [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000, 30000]
        );
    }

    #[test]
    fn delays_stay_within_the_ceiling_and_never_exceed_the_cap() {
        let mut b = Backoff::new(policy());
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        for _ in 0..1000 {
            let ceiling = b.ceiling();
            let d = b.next_delay(&mut rng);
            assert!(d <= ceiling, "{d:?} > {ceiling:?}");
            assert!(d <= Duration::from_secs(30));
        }
        // A thousand failures in, and the ceiling is still the cap (no overflow).
        assert_eq!(b.ceiling(), Duration::from_secs(30));
    }

    #[test]
    fn jitter_is_full_not_a_fixed_fraction() {
        // With the ceiling at the cap, delays must cover the low and the high
        // part of 0..=30 s: that is what spreads a herd of reconnecting plugins.
        let mut b = Backoff::new(policy());
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..10 {
            b.next_delay(&mut rng);
        }
        let delays: Vec<Duration> = (0..200).map(|_| b.next_delay(&mut rng)).collect();
        assert!(delays.iter().any(|d| *d < Duration::from_secs(5)));
        assert!(delays.iter().any(|d| *d > Duration::from_secs(25)));
    }

    #[test]
    fn typical_delay_grows_with_failures_until_the_cap() {
        // Average 400 draws at each failure count: the mean delay (half the
        // ceiling) must rise level after level and flatten at the cap.
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let mut b = Backoff::new(policy());
        let mut means = Vec::new();
        for _ in 0..10 {
            let total: u128 = (0..400)
                .map(|_| b.clone().next_delay(&mut rng).as_millis())
                .sum();
            means.push(total / 400);
            b.next_delay(&mut rng);
        }
        for pair in means[..7].windows(2) {
            assert!(pair[1] > pair[0], "mean delays must grow: {means:?}");
        }
        for m in &means[7..] {
            assert!(
                (12_000..=18_000).contains(m),
                "capped mean ~15 s: {means:?}"
            );
        }
    }

    #[test]
    fn long_connection_resets_short_one_does_not() {
        let mut b = Backoff::new(policy());
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..5 {
            b.next_delay(&mut rng);
        }
        assert_eq!(b.ceiling(), Duration::from_secs(8));
        // Flapping: up for 2 s only, the outage goes on, the ceiling keeps climbing.
        b.connection_ended(Duration::from_secs(2));
        assert_eq!(b.ceiling(), Duration::from_secs(8));
        // Up for 10 s: healthy again, start over.
        b.connection_ended(Duration::from_secs(10));
        assert_eq!(b.attempt(), 0);
        assert_eq!(b.ceiling(), Duration::from_millis(250));
    }
}
