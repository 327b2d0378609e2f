//! A complete webhook port: `cargo run -p herald --example webhook -- https://example.com/hook`.
//!
//! Sends one signed event, waits for its terminal state and prints its history. The
//! README shows this file.

use std::time::Duration;

use herald::transport::webhook::WebhookConfig;
use herald::{ExternalEvent, Herald, PortConfig, RetryPolicy};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "https://example.com/hook".into());

    // A webhook port: Standard Webhooks signatures, the default (Svix) retry schedule
    // shortened here to three attempts, 10 s per attempt.
    let webhook = WebhookConfig::builder(&url)
        .secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
        .build()?;
    let orders = PortConfig::webhook("orders", webhook)?
        .policy(
            RetryPolicy::default()
                .max_attempts(3)
                .attempt_timeout(Duration::from_secs(10)),
        )
        .payload_limit(256 * 1024);

    // One Herald per process: a redb file, any number of ports.
    let herald = Herald::builder()
        .store_path("herald-example.redb")
        .port(orders)
        .start_tokio()
        .await?;
    let port = herald.port("orders").expect("configured above");

    // Domain code: build an event and send it. `send` returns once it is durable.
    let event = ExternalEvent::builder("order.created")
        .id("order-42-created")
        .payload(br#"{"order":42,"total":"19.99"}"#.to_vec())
        .occurred_at(herald::now())
        .build()?;
    let accepted = port.send(event.clone()).await?;
    println!("{} accepted: {}", accepted.event_id, accepted.status);

    // Watch it end (delivered, failed or exhausted), then read its history.
    let done = tokio::time::timeout(Duration::from_secs(60), port.wait_for_terminal(event.id())).await??;
    println!(
        "{} is {} after {} attempt(s)",
        done.event_id, done.status, done.attempts_made
    );
    if let Some(history) = port.history(event.id()).await? {
        for a in history.attempts {
            println!(
                "  attempt {}: {} ({} ms)",
                a.attempt, a.outcome.message, a.outcome.duration_ms
            );
        }
    }

    herald.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
