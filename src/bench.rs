//! `souk bench provision`: provisions N merchants end to end and prints latency
//! percentiles (activation call → merchant active) and throughput.

use crate::app::{Config, Core};
use crate::domain::{Currency, Email, Subdomain};
use crate::store::platform::{self, NewMerchant};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs the benchmark on a temporary data folder (unless `--database-url` is set) with
/// `concurrency` merchants in flight at a time. Prints figures; asserts nothing.
pub async fn provision(mut cfg: Config, merchants: usize, workers: usize) -> Result<(), String> {
    let tmp = std::env::temp_dir().join(format!("souk-bench-{}", uuid::Uuid::now_v7()));
    cfg.data_dir = tmp.clone();
    cfg.workers = workers;
    let backend = if cfg.database_url.is_some() {
        "configured database"
    } else {
        "SQLite (temporary)"
    };
    let core = Arc::new(
        Core::open(cfg, "http://localhost:8080".into())
            .await
            .map_err(|e| e.to_string())?,
    );
    let (tx, rx) = tokio::sync::watch::channel(false);
    let handles = core.spawn_workers(workers, rx);
    let concurrency = workers.max(1);
    println!(
        "provisioning {merchants} merchants on {backend}, {workers} workers, {concurrency} in flight"
    );
    let bar = indicatif::ProgressBar::new(merchants as u64);
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let prefix = format!("b{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let mut tasks = vec![];
    for _ in 0..concurrency {
        let core = core.clone();
        let next = next.clone();
        let bar = bar.clone();
        let prefix = prefix.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = vec![];
            let mut rx = core.provisioner.events.subscribe();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= merchants {
                    return Ok::<_, String>(lat);
                }
                let handle = format!("{prefix}-{i}");
                let t0 = Instant::now();
                let m = platform::create_merchant(
                    &core.db,
                    &crate::store::audit::Actor::system("bench"),
                    &NewMerchant {
                        name: format!("Bench Shop {i}"),
                        owner_name: Some("Bench Owner".into()),
                        owner_email: Email::parse(&format!("owner{i}@{prefix}.example"))
                            .map_err(|e| e.message)?,
                        owner_phone: None,
                        business_address: None,
                        business_city: None,
                        business_postal_code: None,
                        business_country: None,
                        currency: Currency::EUR,
                        handle: Some(Subdomain::parse(&handle).map_err(|e| e.message)?),
                        initial_password_hash: None,
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
                let t_activate = Instant::now();
                crate::control::activate(
                    &core.db,
                    &crate::store::audit::Actor::system("bench"),
                    &core.themes,
                    m.id,
                    "classic",
                    "starter",
                    None,
                )
                .await
                .map_err(|e| e.to_string())?;
                core.provisioner.wake();
                loop {
                    match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                        Ok(Ok((id, status))) if id == m.id => {
                            if status != "completed" {
                                return Err(format!("merchant {i} provisioning {status}"));
                            }
                            break;
                        }
                        Ok(Ok(_)) => continue,
                        Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                        Ok(Err(e)) => return Err(e.to_string()),
                        Err(_) => return Err(format!("merchant {i} did not finish within 30 s")),
                    }
                }
                lat.push((t_activate.elapsed(), t0.elapsed()));
                bar.inc(1);
            }
        }));
    }
    let mut all = vec![];
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())??);
    }
    let wall = started.elapsed();
    bar.finish_and_clear();
    let _ = tx.send(true);
    for h in handles {
        let _ = h.await;
    }
    let mut act: Vec<f64> = all.iter().map(|(a, _)| a.as_secs_f64() * 1000.0).collect();
    let mut e2e: Vec<f64> = all.iter().map(|(_, b)| b.as_secs_f64() * 1000.0).collect();
    act.sort_by(f64::total_cmp);
    e2e.sort_by(f64::total_cmp);
    let pct = |v: &[f64], p: f64| {
        v.get(((v.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    println!("merchants provisioned: {}", all.len());
    println!("wall time:             {:.2} s", wall.as_secs_f64());
    println!(
        "throughput:            {:.1} merchants/s",
        all.len() as f64 / wall.as_secs_f64()
    );
    println!(
        "activation → active:   p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        pct(&act, 0.5),
        pct(&act, 0.95),
        pct(&act, 0.99),
        pct(&act, 1.0)
    );
    println!(
        "create + provision:    p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        pct(&e2e, 0.5),
        pct(&e2e, 0.95),
        pct(&e2e, 0.99),
        pct(&e2e, 1.0)
    );
    core.db.close().await;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
