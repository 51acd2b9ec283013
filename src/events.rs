//! Event fan-out: the outbox dispatcher and the bus that live subscribers read from.
//!
//! The dispatcher claims the `events` outbox (rows written in the same transaction as each
//! change, see `store::events`) in one transaction: it reads unpublished rows in id order,
//! publishes them, creates the webhook deliveries they cause, stamps them published and
//! commits. A crash before the commit republishes them on restart (at least once;
//! subscribers can dedupe by event id); nothing is stamped that was not published. On
//! PostgreSQL an advisory lock keeps one dispatcher at a time across nodes, so events
//! leave in order without duplicates.
//!
//! Publishing goes to the local broadcast channel, or, with NATS configured
//! (`--events nats://…`), to the subject `souk.events.<tenant id>` (`platform` for events
//! without a tenant). Every node subscribes to `souk.events.>` and feeds its local
//! channel, so a WebSocket client on node B receives what node A committed. Subscribers
//! (SSE, WebSocket) filter by tenant and permission themselves.

use crate::store::Db;
use crate::store::events::{self, Event};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, broadcast, watch};

/// Capacity of the bus: a subscriber further behind than this is disconnected.
pub const BUS_CAPACITY: usize = 4096;

/// Default NATS subject prefix; the tenant id (or `platform`) follows.
pub const SUBJECT_PREFIX: &str = "souk.events";

/// The event bus of one node.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    /// Wakes the dispatcher early (after a commit that wrote events).
    pub notify: Arc<Notify>,
    /// Woken when the dispatcher created webhook deliveries.
    pub webhooks: Arc<Notify>,
    /// Flipped at shutdown: open streams send a close message and end.
    closing: Arc<watch::Sender<bool>>,
    nats: Option<(async_nats::Client, String)>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BUS_CAPACITY).0,
            notify: Arc::new(Notify::new()),
            webhooks: Arc::new(Notify::new()),
            closing: Arc::new(watch::channel(false).0),
            nats: None,
        }
    }
}

/// Errors connecting the bus to NATS.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("events URL must be nats://host:port, got {0}")]
    BadUrl(String),
    #[error("cannot connect to NATS at {url}: {message}")]
    Connect { url: String, message: String },
}

impl EventBus {
    /// A bus fanned out through NATS at `url` (`nats://host:port`): subscribes to every
    /// tenant's subject and forwards to local subscribers.
    pub async fn with_nats(url: &str, prefix: &str) -> Result<Self, BusError> {
        if !url.starts_with("nats://") {
            return Err(BusError::BadUrl(url.to_string()));
        }
        let client = async_nats::ConnectOptions::new()
            .name("souk")
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| BusError::Connect {
                url: url.to_string(),
                message: e.to_string(),
            })?;
        let mut sub =
            client
                .subscribe(format!("{prefix}.>"))
                .await
                .map_err(|e| BusError::Connect {
                    url: url.to_string(),
                    message: e.to_string(),
                })?;
        let bus = Self {
            nats: Some((client, prefix.to_string())),
            ..Self::default()
        };
        let local = bus.tx.clone();
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                match serde_json::from_slice::<Event>(&msg.payload) {
                    Ok(e) => {
                        let _ = local.send(Arc::new(e));
                    }
                    Err(e) => {
                        tracing::warn!(subject = %msg.subject, error = %e, "bad event on NATS")
                    }
                }
            }
        });
        Ok(bus)
    }

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

    /// Hands a batch to every node's subscribers: through NATS (flushed before returning)
    /// or straight to the local channel.
    async fn publish(&self, batch: &[Event]) -> Result<(), String> {
        match &self.nats {
            Some((client, prefix)) => {
                for e in batch {
                    let subject = format!(
                        "{prefix}.{}",
                        e.tenant_id
                            .map(|t| t.to_string())
                            .unwrap_or_else(|| "platform".into())
                    );
                    let body = serde_json::to_vec(e).map_err(|e| e.to_string())?;
                    client
                        .publish(subject, body.into())
                        .await
                        .map_err(|e| format!("NATS publish: {e}"))?;
                }
                client
                    .flush()
                    .await
                    .map_err(|e| format!("NATS flush: {e}"))?;
            }
            None => {
                for e in batch {
                    // No subscriber is fine: the event stays in the outbox for replay.
                    let _ = self.tx.send(Arc::new(e.clone()));
                }
            }
        }
        Ok(())
    }

    /// Publishes up to 500 unpublished outbox rows, oldest first, and creates their
    /// webhook deliveries. Returns how many events.
    pub async fn dispatch_once(&self, db: &Db) -> Result<usize, String> {
        let Some(mut tx) = events::begin_dispatch(db)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(0); // another node is dispatching
        };
        let batch = events::unpublished_tx(&mut tx, 500)
            .await
            .map_err(|e| e.to_string())?;
        if batch.is_empty() {
            return Ok(0);
        }
        self.publish(&batch).await?;
        let deliveries = crate::store::webhooks::fan_out_tx(&mut tx, &batch)
            .await
            .map_err(|e| e.to_string())?;
        let ids: Vec<_> = batch.iter().map(|e| e.id).collect();
        events::mark_published_tx(&mut tx, &ids)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        metrics::counter!("souk_events_published_total").increment(ids.len() as u64);
        if deliveries > 0 {
            self.webhooks.notify_one();
        }
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
