//! hal-net's [`Storage`] in memory, with crash semantics: a batch becomes durable only
//! when its simulated sync completes, so a server crashed mid-sync loses that batch
//! (never anything it acknowledged). The disk outlives the server's process, so a
//! restarted server loads what it had synced.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hal_core::server::{Durable, Persist};
use hal_net::storage::{Storage, StorageError};

/// One server's disk.
#[derive(Debug, Clone, Default)]
pub struct SimDisk {
    durable: Arc<Mutex<Durable>>,
}

impl SimDisk {
    /// What is on the disk now.
    pub fn durable(&self) -> Durable {
        self.durable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The storage a server process uses: its disk and how long a sync takes.
#[derive(Debug, Clone)]
pub struct SimStorage {
    pub disk: SimDisk,
    pub sync_time: Duration,
    /// A planted bug: a sync reports success and makes nothing durable.
    pub lose_syncs: bool,
}

impl Storage for SimStorage {
    async fn load(&mut self) -> Result<Durable, StorageError> {
        Ok(self.disk.durable())
    }

    async fn persist(&mut self, batch: Vec<Persist>) -> Result<(), StorageError> {
        // The crash point: a process dropped here has written nothing durable.
        tokio::time::sleep(self.sync_time).await;
        if self.lose_syncs {
            return Ok(());
        }
        let mut durable = self.disk.durable.lock().unwrap_or_else(|e| e.into_inner());
        for write in &batch {
            durable.apply(write);
        }
        Ok(())
    }
}
