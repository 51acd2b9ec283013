//! Event fan-out: the outbox dispatcher and the bus that live subscribers read from.
//!
//! The dispatcher claims the `events` outbox (rows written in the same transaction as each
//! change, see `store::events`) in one transaction: it reads unpublished rows in id order,
//! creates the webhook deliveries they cause, stamps them published with the next `seq`s
//! and commits; only then are they broadcast. So every event a subscriber sees is already
//! in the committed outbox, and a subscriber that replays "seq above the last one I saw"
//! from the database and then follows the bus misses nothing. On PostgreSQL an advisory
//! lock keeps one dispatcher at a time across nodes, so seqs are consecutive and in
//! commit order.
//!
//! Broadcasting goes to this node's local channel and, with NATS configured
//! (`--events nats://…`), to the subject `souk.events.<tenant id>` (`platform` for events
//! without a tenant). Every node subscribes to `souk.events.>`. What reaches the local
//! channel passes through one **feeder** per node, which forwards events in seq order
//! without gaps or repeats: a seq already forwarded is dropped, and a jump (NATS lost
//! messages, was unreachable, or another node crashed between its commit and its publish)
//! is filled from the outbox first. The feeder also polls the outbox every
//! [`FEEDER_POLL`], so a node's clients are caught up within about a second after NATS
//! comes back (or without NATS at all). Subscribers (SSE, WebSocket) filter by tenant and
//! permission themselves; `access.*` events are internal (see [`ACCESS_CHANGED`]).

use crate::store::Db;
use crate::store::events::{self, Event};
use futures_util::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, broadcast, mpsc, watch};

/// Capacity of the bus: a subscriber further behind than this is disconnected.
pub const BUS_CAPACITY: usize = 4096;

/// How often the feeder looks for committed events it has not forwarded yet.
pub const FEEDER_POLL: Duration = Duration::from_millis(500);

pub use crate::store::events::{ACCESS_CHANGED, is_internal};

/// Default NATS subject prefix; the tenant id (or `platform`) follows.
pub const SUBJECT_PREFIX: &str = "souk.events";

/// Subject segment of cache invalidations, after the prefix: `<prefix>.cache.<tenant>`
/// (never a tenant id, so it cannot collide with event subjects).
pub const CACHE_SUBJECT: &str = "cache";

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
    /// Events received from NATS, until the feeder takes the receiver.
    inbox: Arc<Mutex<Option<mpsc::Receiver<Event>>>>,
    /// The highest seq the feeder forwarded to the local channel (`None` before the first).
    forwarded: Arc<tokio::sync::Mutex<Option<i64>>>,
    /// Tenants whose cached responses another node cleared (see [`Self::invalidations`]).
    invalidations: broadcast::Sender<uuid::Uuid>,
    /// This node's id, carried by its invalidation messages so it skips its own.
    node: uuid::Uuid,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BUS_CAPACITY).0,
            notify: Arc::new(Notify::new()),
            webhooks: Arc::new(Notify::new()),
            closing: Arc::new(watch::channel(false).0),
            nats: None,
            inbox: Arc::new(Mutex::new(None)),
            forwarded: Arc::new(tokio::sync::Mutex::new(None)),
            invalidations: broadcast::channel(1024).0,
            node: uuid::Uuid::now_v7(),
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
        let (inbox_tx, inbox_rx) = mpsc::channel(BUS_CAPACITY);
        let bus = Self {
            nats: Some((client, prefix.to_string())),
            inbox: Arc::new(Mutex::new(Some(inbox_rx))),
            ..Self::default()
        };
        let cache_subject = format!("{prefix}.{CACHE_SUBJECT}.");
        let (invalidations, node) = (bus.invalidations.clone(), bus.node);
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                if let Some(tenant) = msg.subject.as_str().strip_prefix(&cache_subject) {
                    let own = msg.payload.as_ref() == node.as_bytes();
                    if let (false, Ok(t)) = (own, uuid::Uuid::parse_str(tenant)) {
                        metrics::counter!("souk_cache_invalidations_received_total").increment(1);
                        let _ = invalidations.send(t);
                    }
                    continue;
                }
                match serde_json::from_slice::<Event>(&msg.payload) {
                    // A full inbox drops the message: the feeder fills the gap from the outbox.
                    Ok(e) => {
                        let _ = inbox_tx.try_send(e);
                    }
                    Err(e) => {
                        tracing::warn!(subject = %msg.subject, error = %e, "bad event on NATS")
                    }
                }
            }
        });
        Ok(bus)
    }

    /// A receiver of this node's live events: published (committed) events of every
    /// tenant, in seq order, each once.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Tenants whose cached responses another node cleared: each node's application
    /// clears its own caches of that tenant on receipt (see `web::cache`).
    pub fn invalidations(&self) -> broadcast::Receiver<uuid::Uuid> {
        self.invalidations.subscribe()
    }

    /// Tells the other nodes (through NATS, subject `<prefix>.cache.<tenant>`) that
    /// `tenant`'s cached responses are stale. Fire and forget: core NATS, no retry; a
    /// lost message leaves the cache TTL as the bound. Without NATS (one node) or outside
    /// a Tokio runtime, nothing to do.
    pub fn publish_invalidation(&self, tenant: uuid::Uuid) {
        let Some((client, prefix)) = &self.nats else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (client, subject) = (client.clone(), format!("{prefix}.{CACHE_SUBJECT}.{tenant}"));
        let payload: Vec<u8> = self.node.as_bytes().to_vec();
        rt.spawn(async move {
            match client.publish(subject, payload.into()).await {
                Ok(()) => {
                    let _ = client.flush().await;
                    metrics::counter!("souk_cache_invalidations_sent_total").increment(1);
                }
                Err(e) => tracing::warn!(error = %e, "cache invalidation not published"),
            }
        });
    }

    /// Tells every open stream to close (graceful shutdown).
    pub fn close(&self) {
        let _ = self.closing.send(true);
    }

    /// Resolves once [`Self::close`] has been called.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Hands a committed batch to the other nodes through NATS (flushed before
    /// returning); without NATS, nothing to do.
    async fn publish(&self, batch: &[Event]) -> Result<(), String> {
        let Some((client, prefix)) = &self.nats else {
            return Ok(());
        };
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
        Ok(())
    }

    /// Forwards published events to the local channel in seq order: seqs already
    /// forwarded are dropped, a jump is first filled from the outbox (when it cannot be,
    /// the rest of the batch waits for the feeder's next poll). Events without a seq are
    /// ignored. Returns how many were forwarded.
    pub async fn deliver(&self, db: &Db, mut batch: Vec<Event>) -> usize {
        batch.retain(|e| e.seq.is_some());
        batch.sort_by_key(|e| e.seq);
        let mut last = self.forwarded.lock().await;
        let mut sent = 0;
        for e in batch {
            let Some(seq) = e.seq else { continue };
            let top = *last.get_or_insert(seq - 1);
            if seq <= top {
                continue;
            }
            if seq > top + 1 {
                sent += self.fill_gap(db, &mut last, seq).await;
                if last.is_some_and(|t| t + 1 < seq) {
                    // The gap could not be read now: forwarding past it would skip it for
                    // every client of this node. The feeder's poll reads on from the
                    // outbox, in order.
                    break;
                }
            }
            // No subscriber is fine: the event stays in the outbox for replay.
            let _ = self.tx.send(Arc::new(e));
            *last = Some(seq);
            sent += 1;
        }
        sent
    }

    /// Forwards the committed events between the last forwarded seq and `until`.
    async fn fill_gap(&self, db: &Db, last: &mut Option<i64>, until: i64) -> usize {
        let mut sent = 0;
        while let Some(top) = *last {
            if top + 1 >= until {
                break;
            }
            let page = match events::after_seq(db, None, top, Some(until), 500).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot fill an event gap from the outbox");
                    break;
                }
            };
            if page.is_empty() {
                break;
            }
            for e in page {
                *last = e.seq;
                let _ = self.tx.send(Arc::new(e));
                sent += 1;
            }
        }
        if sent > 0 {
            metrics::counter!("souk_events_gap_filled_total").increment(sent as u64);
        }
        sent
    }

    /// Runs this node's feeder until `shutdown` flips: forwards what NATS brings and,
    /// every [`FEEDER_POLL`], what the outbox holds beyond the last forwarded seq.
    pub async fn run_feeder(self, db: Db, mut shutdown: watch::Receiver<bool>) {
        {
            let mut last = self.forwarded.lock().await;
            if last.is_none() {
                match events::top_seq(&db).await {
                    Ok(top) => *last = Some(top),
                    Err(e) => tracing::warn!(error = %e, "cannot read the newest event seq"),
                }
            }
        }
        let mut inbox = self.inbox.lock().ok().and_then(|mut i| i.take());
        let mut poll = tokio::time::interval(FEEDER_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    if *shutdown.borrow() { return; }
                }
                Some(e) = async { match inbox.as_mut() { Some(i) => i.recv().await, None => None } }, if inbox.is_some() => {
                    let mut batch = vec![e];
                    if let Some(i) = inbox.as_mut() {
                        while batch.len() < 500 && let Ok(e) = i.try_recv() {
                            batch.push(e);
                        }
                    }
                    self.deliver(&db, batch).await;
                }
                _ = poll.tick() => {
                    let after = *self.forwarded.lock().await;
                    let Some(after) = after else { continue };
                    match events::after_seq(&db, None, after, None, 500).await {
                        Ok(page) if !page.is_empty() => {
                            let n = self.deliver(&db, page).await;
                            if n > 0 {
                                metrics::counter!("souk_events_caught_up_total").increment(n as u64);
                            }
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "feeder poll failed"),
                    }
                }
            }
        }
    }

    /// Publishes up to 500 unpublished outbox rows, oldest first: creates their webhook
    /// deliveries and stamps their seqs in one transaction, then, committed, broadcasts
    /// them (NATS and this node's channel). Returns how many events.
    pub async fn dispatch_once(&self, db: &Db) -> Result<usize, String> {
        if !events::any_unpublished(db)
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(0);
        }
        let Some(mut tx) = events::begin_dispatch(db)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(0); // another node is dispatching
        };
        let mut batch = events::unpublished_tx(&mut tx, 500)
            .await
            .map_err(|e| e.to_string())?;
        if batch.is_empty() {
            // Ended explicitly: a dropped transaction leaves its rollback for later.
            tx.commit().await.map_err(|e| e.to_string())?;
            return Ok(0);
        }
        let deliveries = crate::store::webhooks::fan_out_tx(&mut tx, &batch)
            .await
            .map_err(|e| e.to_string())?;
        events::mark_published_tx(&mut tx, &mut batch)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        let n = batch.len();
        metrics::counter!("souk_events_published_total").increment(n as u64);
        if deliveries > 0 {
            self.webhooks.notify_one();
        }
        // Committed: other nodes catch up from the outbox if NATS loses this.
        if let Err(e) = self.publish(&batch).await {
            metrics::counter!("souk_events_publish_failed_total").increment(1);
            tracing::warn!(error = %e, "NATS publish failed; other nodes catch up from the outbox");
        }
        self.deliver(db, batch).await;
        Ok(n)
    }

    /// Runs the dispatcher until `shutdown` flips: polls every 20 ms when idle, at once
    /// when woken after this process wrote an outbox row. A wake-up (every successful
    /// write request sends one) with no row written since the last look does not read the
    /// database; a row whose transaction commits after that look waits for the next poll.
    pub async fn run_dispatcher(self, db: Db, mut shutdown: watch::Receiver<bool>) {
        let mut look = true;
        let mut seen = events::emitted_count();
        loop {
            if *shutdown.borrow() {
                return;
            }
            if look {
                seen = events::emitted_count();
                match self.dispatch_once(&db).await {
                    Ok(n) if n > 0 => continue,
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "event dispatch failed"),
                }
            }
            look = tokio::select! {
                _ = self.notify.notified() => events::emitted_count() != seen,
                _ = tokio::time::sleep(Duration::from_millis(20)) => true,
                _ = shutdown.changed() => true,
            };
        }
    }
}
