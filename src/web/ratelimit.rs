//! Failed-sign-in throttling, per account and per client IP.
//!
//! Only failures count. After `free` failures inside the window a key is locked; each
//! further failure doubles the lock (30 s, 60 s, 120 s, … up to 15 min). While locked,
//! every attempt gets 429 with `Retry-After`, even with the right password, so guessing
//! cannot continue. Unknown e-mails are counted exactly like known ones, so the limiter
//! reveals nothing about which accounts exist. A successful sign-in clears the account's
//! counter (not the IP's).
//!
//! State is per process: with several nodes, each enforces its own limits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    first: Instant,
    locked_until: Option<Instant>,
}

/// Limits for one kind of key.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Failures allowed before the first lock.
    pub free: u32,
    /// Failures older than this are forgotten.
    pub window: Duration,
    pub base_lock: Duration,
    pub max_lock: Duration,
}

/// Per-account and per-IP failure counters.
pub struct LoginLimiter {
    map: Mutex<HashMap<String, Entry>>,
    pub account: Policy,
    pub ip: Policy,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            account: Policy {
                free: 5,
                window: Duration::from_secs(15 * 60),
                base_lock: Duration::from_secs(30),
                max_lock: Duration::from_secs(15 * 60),
            },
            ip: Policy {
                free: 30,
                window: Duration::from_secs(15 * 60),
                base_lock: Duration::from_secs(30),
                max_lock: Duration::from_secs(15 * 60),
            },
        }
    }
}

impl LoginLimiter {
    /// `Some(wait)` when any of the keys is locked now.
    pub fn check(&self, keys: &[&str]) -> Option<Duration> {
        let map = self.map.lock().ok()?;
        let now = Instant::now();
        keys.iter()
            .filter_map(|k| map.get(*k)?.locked_until)
            .filter(|t| *t > now)
            .map(|t| t - now)
            .max()
    }

    /// Records a failure for `key` under `policy`.
    pub fn fail(&self, key: &str, policy: Policy) {
        let Ok(mut map) = self.map.lock() else { return };
        let now = Instant::now();
        if map.len() > 200_000 {
            map.retain(|_, e| {
                e.first.elapsed() < policy.window || e.locked_until.is_some_and(|t| t > now)
            });
        }
        let e = map.entry(key.to_string()).or_insert(Entry {
            failures: 0,
            first: now,
            locked_until: None,
        });
        if now.duration_since(e.first) > policy.window && e.locked_until.is_none_or(|t| t <= now) {
            *e = Entry {
                failures: 0,
                first: now,
                locked_until: None,
            };
        }
        e.failures += 1;
        if e.failures >= policy.free {
            let doublings = (e.failures - policy.free).min(16);
            let lock = policy
                .base_lock
                .saturating_mul(1 << doublings)
                .min(policy.max_lock);
            e.locked_until = Some(now + lock);
        }
    }

    /// Forgets `key` (after a successful sign-in).
    pub fn clear(&self, key: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_free_failures_and_doubles() {
        let l = LoginLimiter::default();
        for _ in 0..4 {
            l.fail("a", l.account);
        }
        assert!(l.check(&["a"]).is_none());
        l.fail("a", l.account);
        let first = l.check(&["a", "b"]).expect("locked");
        assert!(first <= Duration::from_secs(30) && first > Duration::from_secs(25));
        l.fail("a", l.account);
        assert!(l.check(&["a"]).expect("locked") > Duration::from_secs(50));
        l.clear("a");
        assert!(l.check(&["a"]).is_none());
    }
}
