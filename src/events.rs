//! Event fan-out: the outbox dispatcher and the in-process bus subscribers read from.
//!
//! The dispatcher polls the `events` outbox (written in the same transaction as each
//! change, see `store::events`), publishes rows in id order to the bus, then stamps them
//! published. A crash between publishing and stamping republishes them on restart (at
//! least once; subscribers dedupe by event id). Subscribers (SSE) filter by tenant and
//! permission themselves.

use crate::store::Db;
use crate::store::events::{self, Event};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, broadcast, watch};

/// Capacity of the bus: a subscriber further behind than this is disconnected.
pub const BUS_CAPACITY: usize = 4096;

/// The in-process event bus.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    /// Wakes the dispatcher early (after a commit that wrote events).
    pub notify: Arc<Notify>,
    /// Flipped at shutdown: open streams send a `close` event and end.
    closing: Arc<watch::Sender<bool>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BUS_CAPACITY).0,
            notify: Arc::new(Notify::new()),
            closing: Arc::new(watch::channel(false).0),
        }
    }
}

impl EventBus {
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Tells every open stream to close (graceful shutdown).
    pub fn close(&self) {
        let _ = self.closing.send(true);
    }

    /// Resolves once [`Self::close`] has been called.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Publishes every unpublished outbox row, oldest first. Returns how many.
    pub async fn dispatch_once(&self, db: &Db) -> Result<usize, crate::store::StoreError> {
        let batch = events::unpublished(db, 500).await?;
        let ids: Vec<_> = batch.iter().map(|e| e.id).collect();
        for e in batch {
            metrics::counter!("souk_events_published_total").increment(1);
            // No subscriber is fine: the event stays in the outbox for replay.
            let _ = self.tx.send(Arc::new(e));
        }
        events::mark_published(db, &ids).await?;
        Ok(ids.len())
    }

    /// Runs the dispatcher until `shutdown` flips: polls every 20 ms when idle, at once
    /// when woken.
    pub async fn run_dispatcher(self, db: Db, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.dispatch_once(&db).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "event dispatch failed"),
            }
            tokio::select! {
                _ = self.notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
