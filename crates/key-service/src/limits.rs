//! Rate limits on password checks: a token bucket per patient and one per doctor, in
//! memory (a restart forgets them; the lock-out, which is what bounds guessing, is
//! persisted).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);
/// Buckets kept before full ones (which say nothing) are dropped.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets of `per_minute` tokens, refilled evenly over a minute, one per key.
struct Buckets<K> {
    per_minute: u32,
    buckets: HashMap<K, Bucket>,
}

impl<K: Eq + Hash + Clone> Buckets<K> {
    fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: HashMap::new(),
        }
    }

    fn capacity(&self) -> f64 {
        f64::from(self.per_minute)
    }

    /// The bucket of `key` refilled up to `now`.
    fn current(&self, key: &K, now: Instant) -> Bucket {
        let capacity = self.capacity();
        match self.buckets.get(key) {
            Some(bucket) => {
                let refill =
                    now.duration_since(bucket.at).as_secs_f64() / MINUTE.as_secs_f64() * capacity;
                Bucket {
                    tokens: (bucket.tokens + refill).min(capacity),
                    at: now,
                }
            }
            None => Bucket {
                tokens: capacity,
                at: now,
            },
        }
    }

    /// How long until `bucket` holds a whole token.
    fn wait(&self, bucket: &Bucket) -> Duration {
        let missing = (1.0 - bucket.tokens).max(0.0);
        MINUTE.mul_f64(missing / self.capacity())
    }

    fn store(&mut self, key: K, bucket: Bucket) {
        if self.buckets.len() > PRUNE_ABOVE {
            let capacity = self.capacity();
            let now = bucket.at;
            let per_minute = self.per_minute;
            self.buckets.retain(|_, b| {
                let elapsed = now.duration_since(b.at).as_secs_f64() / MINUTE.as_secs_f64();
                b.tokens + elapsed * f64::from(per_minute) < capacity
            });
        }
        self.buckets.insert(key, bucket);
    }
}

/// The password-check limits: per patient and per doctor (by certificate id).
pub(crate) struct RateLimits {
    inner: Mutex<(Buckets<String>, Buckets<[u8; 32]>)>,
}

impl RateLimits {
    pub(crate) fn new(per_patient: u32, per_doctor: u32) -> Self {
        Self {
            inner: Mutex::new((Buckets::new(per_patient), Buckets::new(per_doctor))),
        }
    }

    /// Takes one attempt from the patient's and the doctor's buckets, or from neither and
    /// answers how long to wait.
    pub(crate) fn take(
        &self,
        patient: &str,
        doctor: [u8; 32],
        now: Instant,
    ) -> Result<(), Duration> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (patients, doctors) = &mut *guard;
        let patient_key = patient.to_owned();
        let mut p = patients.current(&patient_key, now);
        let mut d = doctors.current(&doctor, now);
        if p.tokens < 1.0 || d.tokens < 1.0 {
            return Err(patients.wait(&p).max(doctors.wait(&d)));
        }
        p.tokens -= 1.0;
        d.tokens -= 1.0;
        patients.store(patient_key, p);
        doctors.store(doctor, d);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patient_gets_its_attempts_per_minute_then_waits() {
        let limits = RateLimits::new(3, 100);
        let start = Instant::now();
        for _ in 0..3 {
            limits.take("T-1", [1; 32], start).unwrap();
        }
        let wait = limits.take("T-1", [1; 32], start).unwrap_err();
        assert_eq!(wait, Duration::from_secs(20));
        // Another patient is not held back, and the first one refills.
        limits.take("T-2", [1; 32], start).unwrap();
        limits
            .take("T-1", [1; 32], start + Duration::from_secs(20))
            .unwrap();
    }

    #[test]
    fn a_doctor_is_limited_across_patients_without_spending_patients_attempts() {
        let limits = RateLimits::new(3, 2);
        let start = Instant::now();
        limits.take("T-1", [7; 32], start).unwrap();
        limits.take("T-2", [7; 32], start).unwrap();
        assert!(limits.take("T-3", [7; 32], start).is_err());
        // The refused attempt took nothing from T-3: other doctors get all three.
        limits.take("T-3", [8; 32], start).unwrap();
        limits.take("T-3", [8; 32], start).unwrap();
        limits.take("T-3", [9; 32], start).unwrap();
        assert!(limits.take("T-3", [9; 32], start).is_err());
    }
}
