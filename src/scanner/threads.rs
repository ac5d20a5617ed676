//! Evaluation threads. regorus is built without atomic reference counts (on a 100k
//! tenant they were a tenth of a scan's CPU: docs/performance.md), so a Rego value, and
//! the engine that makes it, never leaves the thread it was made on. Each thread here
//! owns one `Evaluator` for its whole life and receives work as jobs: texts in,
//! findings out, both plain data. The compiler checks the confinement (`Evaluator` is
//! not `Send`), so nothing here is `unsafe`.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll};

use super::engine::Evaluator;
use super::rules::Catalogue;

type Job = Box<dyn FnOnce(&mut Evaluator) + Send>;

/// Evaluation threads for one catalogue, kept between chunks and scans. At most `max`
/// threads; each builds its evaluator when it starts. They end when the pool is
/// dropped, after the jobs already queued.
pub struct Pool {
    catalogue: Arc<Catalogue>,
    max: usize,
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    threads: usize,
    /// Threads waiting for a job.
    idle: usize,
    closed: bool,
}

/// The evaluation thread running a job panicked (its evaluator is rebuilt).
#[derive(Debug, thiserror::Error)]
#[error("the evaluation thread panicked")]
pub struct Lost;

/// A job's result, when its thread has run it.
pub struct Pending<R>(tokio::sync::oneshot::Receiver<R>);

impl<R> Future for Pending<R> {
    type Output = Result<R, Lost>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| r.map_err(|_| Lost))
    }
}

impl Pool {
    /// A pool of at most `max` threads (at least one) evaluating `catalogue`.
    pub fn new(catalogue: Arc<Catalogue>, max: usize) -> Self {
        Self {
            catalogue,
            max: max.max(1),
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
            }),
        }
    }

    pub fn catalogue(&self) -> &Arc<Catalogue> {
        &self.catalogue
    }

    /// Run `work` on an evaluation thread: an idle one, a new one while there are fewer
    /// than `max`, else the first to finish its job. The caller's span goes with it.
    pub fn run<R: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Evaluator) -> R + Send + 'static,
    ) -> Pending<R> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let span = tracing::Span::current();
        let job: Job = Box::new(move |evaluator| {
            let _entered = span.enter();
            // The receiver may be gone (the scan failed): the result is dropped here.
            let _ = tx.send(work(evaluator));
        });
        let mut state = self.lock();
        state.jobs.push_back(job);
        if state.jobs.len() > state.idle && state.threads < self.max {
            if !self.start(&mut state) && state.threads == 0 {
                // No thread will ever run them: dropped, their callers get `Lost`.
                state.jobs.clear();
            }
        } else {
            self.shared.wake.notify_one();
        }
        Pending(rx)
    }

    /// Start threads (each building its evaluator) until there are `n`, at most `max`:
    /// the first chunks then find an engine ready instead of compiling one.
    pub fn warm(&self, n: usize) {
        let mut state = self.lock();
        while state.threads < n.min(self.max) {
            if !self.start(&mut state) {
                break;
            }
        }
    }

    /// Threads started and not ended.
    pub fn threads(&self) -> usize {
        self.lock().threads
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().expect("evaluation pool")
    }

    /// Start one thread; false (logged) if the system refuses it.
    fn start(&self, state: &mut State) -> bool {
        let shared = self.shared.clone();
        let catalogue = self.catalogue.clone();
        let started = std::thread::Builder::new()
            .name("scanledger-eval".into())
            .spawn(move || serve(&shared, catalogue));
        match started {
            Ok(_) => {
                state.threads += 1;
                true
            }
            Err(e) => {
                tracing::error!(error = %e, threads = state.threads, "could not start an evaluation thread");
                false
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.lock().closed = true;
        self.shared.wake.notify_all();
    }
}

/// An evaluation thread: its evaluator, then jobs until the pool is dropped.
fn serve(shared: &Shared, catalogue: Arc<Catalogue>) {
    // Caught: a thread that died here would stay counted, and the jobs queued for it
    // would wait forever instead of failing.
    let build = || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Evaluator::new(catalogue.clone())
        }))
        .ok()
    };
    let mut evaluator = build();
    loop {
        let job = {
            let mut state = shared.state.lock().expect("evaluation pool");
            loop {
                if let Some(job) = state.jobs.pop_front() {
                    break Some(job);
                }
                if state.closed {
                    break None;
                }
                state.idle += 1;
                state = shared.wake.wait(state).expect("evaluation pool");
                state.idle -= 1;
            }
        };
        let Some(job) = job else {
            break;
        };
        if evaluator.is_none() {
            evaluator = build();
        }
        match evaluator.as_mut() {
            // No engine could be built: the job is dropped unrun, and its caller gets
            // `Lost` (the panic's message is in the log).
            None => drop(job),
            Some(e) => {
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(e)));
                if ran.is_err() {
                    // Its state may be half-way through an evaluation: start afresh.
                    evaluator = None;
                }
            }
        }
    }
    shared.state.lock().expect("evaluation pool").threads -= 1;
    shared.wake.notify_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Arc<Catalogue> {
        Arc::new(Catalogue::embedded().unwrap())
    }

    #[tokio::test]
    async fn jobs_run_on_at_most_max_threads_each_keeping_its_evaluator() {
        let pool = Pool::new(catalogue(), 2);
        let ids: Vec<_> = (0..8)
            .map(|_| {
                pool.run(|evaluator| {
                    (
                        std::thread::current().id(),
                        evaluator as *const Evaluator as usize,
                    )
                })
            })
            .collect();
        let mut seen = std::collections::HashMap::new();
        for id in ids {
            let (thread, evaluator) = id.await.unwrap();
            // One evaluator per thread, the same for every job it runs.
            assert_eq!(*seen.entry(thread).or_insert(evaluator), evaluator);
        }
        assert!((1..=2).contains(&seen.len()), "{} threads", seen.len());
        assert!(pool.threads() <= 2);
    }

    #[tokio::test]
    async fn a_panicking_job_is_reported_lost_and_the_thread_goes_on() {
        let pool = Pool::new(catalogue(), 1);
        let lost = pool.run(|_| -> usize { panic!("a job that panics") }).await;
        assert!(matches!(lost, Err(Lost)));
        let rules = pool
            .run(|evaluator| evaluator.catalogue().rules().len())
            .await
            .unwrap();
        assert_eq!(rules, pool.catalogue().rules().len());
        assert_eq!(pool.threads(), 1);
    }

    #[tokio::test]
    async fn threads_end_when_the_pool_is_dropped() {
        let pool = Pool::new(catalogue(), 3);
        pool.warm(3);
        let shared = pool.shared.clone();
        let done = pool.run(|_| ());
        drop(pool);
        done.await.unwrap();
        // Each thread counts itself out and says so as its last step.
        let state = shared.state.lock().unwrap();
        let (state, _) = shared
            .wake
            .wait_timeout_while(state, std::time::Duration::from_secs(60), |s| s.threads > 0)
            .unwrap();
        assert_eq!(state.threads, 0);
    }
}
