//! Delivers hand-off events to the team's helpdesk: at least once, in order,
//! from the persistent outbox the state changes write to.
//!
//! One background thread POSTs each event as JSON, signed like GitHub's and
//! Stripe's webhooks (`X-Rapport-Signature: sha256=<hex HMAC-SHA256 of the
//! body>`), with an `X-Rapport-Delivery` id that stays the same across
//! retries so receivers can de-duplicate. Connection errors, timeouts (5 s),
//! 5xx and 429 are retried with exponential backoff and jitter (honouring
//! `Retry-After`) for up to 24 hours; any other answer, or 24 hours of
//! failures, marks the event dead. Every attempt is recorded. A killed
//! process loses nothing: what was committed is still pending at restart.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};

use crate::analytics::Clock;
use crate::metrics::Metrics;
use crate::store::{Attempt, AttemptOutcome, OutboxItem, Store};

/// Per attempt, connect to last byte.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Events still failing this long after they happened are given up on.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
const BATCH: usize = 16;
/// How long a batch is this worker's: every attempt of it timing out, and
/// some. A replica killed mid-batch holds its events no longer than this.
const LEASE: Duration = Duration::from_secs(BATCH as u64 * ATTEMPT_TIMEOUT.as_secs() + 10);

/// Where and how events are delivered (`[handoff]` in the config).
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub url: String,
    /// Signs every body; without one, no `X-Rapport-Signature` is sent.
    pub secret: Option<String>,
    /// The first retry's delay; each later one doubles it.
    pub retry_initial: Duration,
}

pub const DEFAULT_RETRY_INITIAL: Duration = Duration::from_secs(2);

/// `sha256=<hex>`: HMAC-SHA256 of the raw body with the secret.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + digest.len() * 2);
    hex.push_str("sha256=");
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// The delay before attempt `attempts + 1`: `initial · 2^attempts`, capped,
/// scaled into [½, 1] by a jitter drawn from the delivery id, so events that
/// failed together don't all come back at the same instant.
pub fn backoff(initial: Duration, attempts: u32, delivery_id: &str) -> Duration {
    let full = initial
        .saturating_mul(1u32 << attempts.min(20))
        .min(MAX_BACKOFF);
    let hash = blake3::hash(format!("{delivery_id}/{attempts}").as_bytes());
    let jitter = f64::from(u16::from_le_bytes([hash.as_bytes()[0], hash.as_bytes()[1]]))
        / f64::from(u16::MAX);
    full.mul_f64(0.5 + 0.5 * jitter)
}

/// `Retry-After` as seconds or an HTTP date, relative to `now_ms`.
fn retry_after(value: &str, now_ms: i64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    let at_ms = (at.unix_timestamp_nanos() / 1_000_000) as i64;
    Some(Duration::from_millis(
        at_ms.saturating_sub(now_ms).max(0) as u64
    ))
}

/// The running delivery thread; dropping the handle stops it (after the
/// attempt in flight).
pub struct Outbox {
    wake: SyncSender<()>,
}

impl Outbox {
    pub fn start(
        store: Arc<dyn Store>,
        webhook: Webhook,
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Outbox> {
        let (wake, woken) = sync_channel(1);
        let worker = Worker {
            agent: http_agent(),
            store,
            webhook,
            clock,
            metrics,
        };
        std::thread::Builder::new()
            .name("rapport-webhooks".into())
            .spawn(move || worker.run(woken))?;
        Ok(Outbox { wake })
    }

    /// Something was written to the outbox: deliver it now.
    pub fn wake(&self) {
        let _ = self.wake.try_send(());
    }
}

fn http_agent() -> ureq::Agent {
    crate::outbound::agent(|config| {
        config
            .timeout_global(Some(ATTEMPT_TIMEOUT))
            // Status codes are outcomes here, not errors.
            .http_status_as_error(false)
            // A redirected webhook is a misconfiguration to see, not to follow.
            .max_redirects(0)
    })
}

struct Worker {
    agent: ureq::Agent,
    store: Arc<dyn Store>,
    webhook: Webhook,
    clock: Clock,
    metrics: Arc<Metrics>,
}

impl Worker {
    fn run(self, woken: Receiver<()>) {
        loop {
            let now = self.clock.now_ms();
            let lease = now + LEASE.as_millis() as i64;
            let items = match self.store.due_deliveries(now, lease, BATCH) {
                Ok(items) => items,
                Err(error) => {
                    // An outage is logged once, where the store sees it go
                    // down; this loop asks every second meanwhile.
                    if error.is_unavailable() {
                        tracing::debug!(%error, "webhooks: the outbox waits for the database");
                    } else {
                        tracing::error!(%error, "webhooks: cannot read the outbox");
                    }
                    Vec::new()
                }
            };
            for item in &items {
                let attempt = self.attempt(item);
                match attempt.outcome {
                    AttemptOutcome::Delivered => {
                        let waited = (attempt.at_ms - item.created_ms).max(0) as f64 / 1000.0;
                        self.metrics.webhook_delivery_seconds.observe(waited);
                    }
                    AttemptOutcome::Retry => tracing::warn!(
                        delivery = %item.delivery_id, status = ?attempt.status_code,
                        error = attempt.error.as_deref().unwrap_or(""), "webhook delivery failed; will retry"
                    ),
                    AttemptOutcome::Dead => tracing::error!(
                        delivery = %item.delivery_id, status = ?attempt.status_code,
                        error = attempt.error.as_deref().unwrap_or(""), "webhook delivery given up"
                    ),
                }
                // Not recorded → still pending → sent again: at least once.
                if let Err(error) = self.store.record_attempt(item, &attempt) {
                    tracing::error!(%error, "webhooks: cannot record a delivery attempt");
                }
            }
            if items.len() == BATCH {
                continue;
            }
            let now = self.clock.now_ms();
            let wait = match self.store.next_due() {
                Ok(Some(due)) => (due - now).clamp(0, 1000) as u64,
                _ => 1000,
            };
            match woken.recv_timeout(Duration::from_millis(wait)) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn attempt(&self, item: &OutboxItem) -> Attempt {
        let started = Instant::now();
        let mut request = self
            .agent
            .post(&self.webhook.url)
            .header("content-type", "application/json")
            .header("x-rapport-event", &item.event)
            .header("x-rapport-delivery", &item.delivery_id);
        if let Some(secret) = &self.webhook.secret {
            request = request.header(
                "x-rapport-signature",
                signature(secret, item.body.as_bytes()),
            );
        }
        let result = request.send(item.body.as_bytes());
        let at_ms = self.clock.now_ms();
        let duration_ms = started.elapsed().as_millis() as i64;
        let (status_code, error, wait) = match result {
            Ok(response) => {
                let status = response.status().as_u16();
                let hint = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| retry_after(v, at_ms));
                match status {
                    200..=299 => {
                        return Attempt {
                            at_ms,
                            status_code: Some(status),
                            error: None,
                            duration_ms,
                            outcome: AttemptOutcome::Delivered,
                            next_attempt_ms: None,
                        };
                    }
                    429 | 500..=599 => (Some(status), None, hint),
                    _ => {
                        // The receiver refused it; sending it again won't change that.
                        return Attempt {
                            at_ms,
                            status_code: Some(status),
                            error: Some(format!("refused with {status}")),
                            duration_ms,
                            outcome: AttemptOutcome::Dead,
                            next_attempt_ms: None,
                        };
                    }
                }
            }
            Err(error) => (None, Some(error.to_string()), None),
        };
        let delay = backoff(self.webhook.retry_initial, item.attempts, &item.delivery_id)
            .max(wait.unwrap_or_default());
        let next = at_ms.saturating_add(delay.as_millis() as i64);
        let outcome = if next - item.created_ms > GIVE_UP_AFTER.as_millis() as i64 {
            AttemptOutcome::Dead
        } else {
            AttemptOutcome::Retry
        };
        Attempt {
            at_ms,
            status_code,
            error,
            duration_ms,
            outcome,
            next_attempt_ms: (outcome == AttemptOutcome::Retry).then_some(next),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_hmac_sha256_test_vector() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let initial = Duration::from_secs(2);
        for attempts in 0..6 {
            let delay = backoff(initial, attempts, "d1");
            let full = initial * (1 << attempts);
            assert!(delay >= full / 2 && delay <= full, "{attempts}: {delay:?}");
        }
        assert!(backoff(initial, 40, "d1") <= MAX_BACKOFF);
        let spread: std::collections::HashSet<Duration> = (0..20)
            .map(|i| backoff(initial, 3, &format!("delivery-{i}")))
            .collect();
        assert!(spread.len() > 10, "jitter spreads retries: {spread:?}");
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(retry_after("120", 0), Some(Duration::from_secs(120)));
        let now = 784_111_777_000; // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(retry_after("soon", now), None);
    }
}
