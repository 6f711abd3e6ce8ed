//! One identity's temporary credentials, cached and refreshed before expiry: a caller gets the cached
//! ones until [`TemporaryCredentials::refresh_due`], then exactly one caller fetches new ones while the
//! others wait for them (one refresh per lifetime, however many calls). Nothing past its refresh time
//! is ever handed out, so no request is signed with an expired credential.

use std::future::Future;

use jiff::Timestamp;
use tokio::sync::Mutex;

use super::temporary::TemporaryCredentials;

/// The cache of one identity (one ServiceAccount and trust, or the operator's own chain).
#[derive(Debug, Default)]
pub struct CachedCredentials {
    current: Mutex<Option<TemporaryCredentials>>,
}

impl CachedCredentials {
    pub fn new() -> Self {
        Self::default()
    }

    /// The cached credentials if they are not due for refresh at `now`, else what `fetch` answers (cached
    /// for the next callers). A failed fetch leaves nothing cached and is answered as it is.
    pub async fn get<F, Fut, E>(&self, now: Timestamp, fetch: F) -> Result<TemporaryCredentials, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<TemporaryCredentials, E>>,
    {
        let mut current = self.current.lock().await;
        if let Some(cached) = current.as_ref().filter(|c| !c.refresh_due(now)) {
            return Ok(cached.clone());
        }
        *current = None;
        let fresh = fetch().await?;
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    /// Forgets the cached credentials if their access key is `access_key` (the service refused them:
    /// revoked or expired early), so that the next [`CachedCredentials::get`] fetches. A refusal of
    /// credentials already replaced changes nothing.
    pub async fn invalidate_if(&self, access_key: &str) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|c| c.credentials.access_key() == access_key) {
            *current = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dcs::Credentials;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    /// Credentials received at `received` that live `lifetime` seconds.
    fn issued(received: i64, lifetime: u64) -> TemporaryCredentials {
        TemporaryCredentials {
            credentials: Credentials::new(format!("AK{received}"), "SK").with_security_token("T"),
            expires_at: at(received + lifetime as i64),
            lifetime: Duration::from_secs(lifetime),
        }
    }

    async fn fetch_counted(
        cache: &CachedCredentials,
        fetches: &AtomicU32,
        now: i64,
    ) -> Result<TemporaryCredentials, &'static str> {
        cache
            .get(at(now), || async {
                fetches.fetch_add(1, Ordering::SeqCst);
                Ok(issued(now, 20))
            })
            .await
    }

    #[tokio::test]
    async fn a_twenty_second_credential_is_fetched_once_per_lifetime_and_never_used_expired() {
        let cache = CachedCredentials::new();
        let fetches = AtomicU32::new(0);
        let mut refreshed_at = Vec::new();
        for now in 0..90 {
            let got = fetch_counted(&cache, &fetches, now).await.unwrap();
            assert!(got.expires_at > at(now), "expired credentials handed out at {now}s");
            if refreshed_at.last() != Some(&got.expires_at) {
                refreshed_at.push(got.expires_at);
            }
        }
        // A 20-s credential is refreshed 2 s before expiry: at 0, 18, 36, 54, 72 (4.5 lifetimes, 5 fetches).
        assert_eq!(fetches.load(Ordering::SeqCst), 5);
        assert_eq!(refreshed_at.len(), 5);
    }

    #[tokio::test]
    async fn a_failed_fetch_caches_nothing_and_a_refusal_of_the_current_key_forces_a_fetch() {
        let cache = CachedCredentials::new();
        let refused: Result<TemporaryCredentials, &str> = cache.get(at(0), || async { Err("refused") }).await;
        assert_eq!(refused.unwrap_err(), "refused");
        let fetches = AtomicU32::new(0);
        fetch_counted(&cache, &fetches, 1).await.unwrap();
        fetch_counted(&cache, &fetches, 2).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        cache.invalidate_if("AK0").await;
        fetch_counted(&cache, &fetches, 3).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 1, "a refusal of other credentials changes nothing");
        cache.invalidate_if("AK1").await;
        fetch_counted(&cache, &fetches, 4).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }
}
