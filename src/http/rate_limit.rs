//! Per-tenant rate limiting: a token bucket per tenant (`HPTS_RATE_LIMIT_RPS` tokens a second,
//! bursts up to `HPTS_RATE_LIMIT_BURST`), checked right after authentication. Off by default.
//! An empty bucket answers 429 `rate_limited` with `Retry-After`.

use std::collections::HashMap;
use std::time::Instant;

use crate::ledger::ids::TenantId;

/// Rate limit settings; `None` in the settings tree means off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second per tenant.
    pub per_second: f64,
    /// Largest burst per tenant.
    pub burst: f64,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The buckets of every tenant seen.
pub struct RateLimiter {
    limit: RateLimit,
    buckets: parking_lot::Mutex<HashMap<TenantId, Bucket>>,
}

impl RateLimiter {
    /// A limiter with full buckets.
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            buckets: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `tenant`; `Err(seconds)` to wait when the bucket is empty.
    pub fn check(&self, tenant: TenantId, now: Instant) -> Result<(), u32> {
        let mut buckets = self.buckets.lock();
        let bucket = buckets.entry(tenant).or_insert(Bucket {
            tokens: self.limit.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.limit.per_second).min(self.limit.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.limit.per_second;
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a small positive wait in seconds"
            )]
            Err(wait.ceil().max(1.0) as u32)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_tenant_gets_its_burst_then_waits_while_others_are_unaffected() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 2.0,
            burst: 3.0,
        });
        let (a, b) = (
            TenantId::from_uuid(uuid::Uuid::from_u128(1)),
            TenantId::from_uuid(uuid::Uuid::from_u128(2)),
        );
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(a, t0).is_ok());
        }
        assert_eq!(limiter.check(a, t0), Err(1));
        assert!(limiter.check(b, t0).is_ok());
        assert!(limiter.check(a, t0 + Duration::from_millis(600)).is_ok());
    }
}
