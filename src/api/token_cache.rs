//! Verified tokens, cached per API process so that a poll costs one database round trip
//! (the status read), not two. Bounded, and never trusted blindly: the database
//! announces every change to a token row (`scanledger_tokens`, migration 0005) and any
//! announcement empties the cache; while the listener is not connected (start-up, a
//! lost connection) the cache is bypassed, so a revocation is never missed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;

use super::auth::Principal;

/// Channel the database notifies on any change to `api_tokens`.
pub const TOKENS_CHANNEL: &str = "scanledger_tokens";
/// Most tokens held; a full cache is emptied (distinct live tokens are few).
const CAPACITY: usize = 10_000;

type TokenHash = [u8; 32];

#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<TokenHash, (Principal, u64)>>,
    /// Bumped on every announcement and reconnection: entries of older generations, and
    /// lookups that started before, are not trusted.
    generation: AtomicU64,
    /// The listener is connected: only then may entries be served.
    listening: AtomicBool,
    hits: AtomicU64,
}

impl TokenCache {
    /// A cache whose listener runs on `pool` until the pool closes.
    pub fn start(pool: PgPool) -> Arc<Self> {
        let cache = Arc::new(Self::default());
        let this = cache.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = this.listen(&pool).await {
                    if pool.is_closed() {
                        break;
                    }
                    tracing::warn!(error = %e, "token listener lost its connection; tokens are checked in the database until it is back");
                }
                this.invalidate(false);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        cache
    }

    async fn listen(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(TOKENS_CHANNEL).await?;
        // Anything revoked before LISTEN took effect was announced to no one.
        self.invalidate(true);
        loop {
            // `None`: the connection dropped (and reconnects): announcements may be lost.
            let live = listener.try_recv().await?.is_some();
            self.invalidate(live);
        }
    }

    /// Drop every entry (a token was revoked through this process).
    pub fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.lock().expect("token cache lock").clear();
    }

    fn invalidate(&self, listening: bool) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.listening.store(listening, Ordering::SeqCst);
        self.entries.lock().expect("token cache lock").clear();
    }

    /// The generation to pass to [`Self::insert`]: read it before the database lookup.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub fn get(&self, hash: &TokenHash) -> Option<Principal> {
        if !self.listening.load(Ordering::SeqCst) {
            return None;
        }
        let generation = self.generation();
        let entries = self.entries.lock().expect("token cache lock");
        let (principal, at) = entries.get(hash)?;
        if *at != generation {
            return None;
        }
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(principal.clone())
    }

    /// Remember a token found live by a lookup that started at `generation`; dropped if
    /// anything was announced since (the lookup may predate a revocation).
    pub fn insert(&self, hash: TokenHash, principal: Principal, generation: u64) {
        if !self.listening.load(Ordering::SeqCst) {
            return;
        }
        let mut entries = self.entries.lock().expect("token cache lock");
        // Checked under the lock: `invalidate` bumps first and clears under it.
        if self.generation() != generation {
            return;
        }
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(hash, (principal, generation));
    }

    /// Requests answered from the cache.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Role;

    fn principal() -> Principal {
        Principal {
            name: "ci".into(),
            role: Role::Reader,
        }
    }

    #[test]
    fn nothing_is_served_until_the_listener_is_connected() {
        let cache = TokenCache::default();
        let g = cache.generation();
        cache.insert([1; 32], principal(), g);
        assert!(cache.get(&[1; 32]).is_none());
    }

    #[test]
    fn a_lookup_older_than_an_announcement_is_not_cached() {
        let cache = TokenCache::default();
        cache.invalidate(true);
        let before = cache.generation();
        cache.invalidate(true); // a revocation announced while the lookup ran
        cache.insert([1; 32], principal(), before);
        assert!(cache.get(&[1; 32]).is_none());
        let now = cache.generation();
        cache.insert([1; 32], principal(), now);
        assert_eq!(cache.get(&[1; 32]).map(|p| p.name), Some("ci".into()));
        cache.invalidate(true);
        assert!(cache.get(&[1; 32]).is_none(), "an announcement empties it");
    }
}
