//! Caps on event streams: each holds a task, a LISTEN fan-out slot and a waiter row for
//! as long as its client stays, so a process serves at most [`PER_PROCESS`] of them and
//! one token at most [`PER_TOKEN`]; beyond, `429` with `Retry-After`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Streams one API process serves at once.
pub const PER_PROCESS: usize = 256;
/// Streams one token (principal) holds at once.
pub const PER_TOKEN: usize = 8;
/// What a refused client is told to wait, in seconds.
pub const RETRY_AFTER_SECS: u64 = 5;

#[derive(Debug, Default)]
pub struct StreamLimits {
    open: Mutex<HashMap<String, usize>>,
}

/// One open stream; dropping it (when the stream's task ends) frees its place.
#[derive(Debug)]
pub struct StreamPermit {
    limits: Arc<StreamLimits>,
    principal: String,
}

impl StreamLimits {
    /// A place for `principal`'s new stream, unless a cap is reached.
    pub fn acquire(self: &Arc<Self>, principal: &str) -> Option<StreamPermit> {
        let mut open = self.open.lock().expect("stream limits lock");
        let total: usize = open.values().sum();
        let mine = open.get(principal).copied().unwrap_or(0);
        if total >= PER_PROCESS || mine >= PER_TOKEN {
            return None;
        }
        *open.entry(principal.to_string()).or_default() += 1;
        Some(StreamPermit {
            limits: self.clone(),
            principal: principal.to_string(),
        })
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.open.lock().expect("stream limits lock").values().sum()
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().expect("stream limits lock");
        if let Some(n) = open.get_mut(&self.principal) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.principal);
            }
        }
    }
}
