//! A path to the real test database that a test can cut: a Unix socket of its own that
//! forwards every connection to the cluster's socket. `cut` closes every forwarded
//! connection and closes new ones at once, until `restore`: to the worker behind it, the
//! database is gone (a network partition), while the cluster keeps serving everyone else.

use std::path::PathBuf;

use scanledger::pg::Database;
use scanledger::testing::TestCluster;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

pub struct DbProxy {
    dir: PathBuf,
    cut: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl DbProxy {
    /// A proxy in front of the shared test cluster.
    pub fn start() -> Self {
        let cluster = TestCluster::shared(&super::test_root(), false).cluster();
        let port = cluster.port();
        let target = cluster.socket_dir().join(format!(".s.PGSQL.{port}"));
        let dir = super::test_root().join(format!("proxy-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let listener = UnixListener::bind(dir.join(format!(".s.PGSQL.{port}"))).unwrap();
        let (cut, cut_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if *cut_rx.borrow() {
                    drop(client);
                    continue;
                }
                let (target, mut cut_rx) = (target.clone(), cut_rx.clone());
                tokio::spawn(async move {
                    let Ok(mut server) = UnixStream::connect(&target).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = async { let _ = cut_rx.wait_for(|cut| *cut).await; } => {}
                    }
                });
            }
        });
        Self { dir, cut, task }
    }

    /// `db` (same login, database and settings), reached through this proxy.
    pub fn database(&self, db: &Database) -> Database {
        Database::from_options(db.options().clone().socket(&self.dir))
    }

    /// Drop every connection through the proxy and refuse new ones.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
