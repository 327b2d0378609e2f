//! The default (Svix) schedule — 5 s, 5 min, 30 min between attempts — run against a real
//! receiver in well under a second, on a driver whose injected clock runs 1,000× faster.

use std::time::{Duration, Instant};

use herald::transport::webhook::WebhookConfig;
use herald::{DeliveryStatus, ExternalEvent, Herald, PortConfig, RetryPolicy};
use herald_tests::receiver::{Answer, Receiver};
use herald_tests::warp::Warped;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_schedule_retries_after_seconds_minutes_and_half_an_hour() {
    let receiver = Receiver::with_script(|_, n| {
        if n < 3 {
            Answer::Status(503)
        } else {
            Answer::Status(200)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let webhook = WebhookConfig::builder(&receiver.url())
        .allow_private_network(true)
        .build()
        .unwrap();
    // 5 min per attempt in engine time is 300 ms of real time: room for a loaded machine.
    let policy = RetryPolicy::default().attempt_timeout(Duration::from_secs(300));
    let herald = Herald::builder()
        .store_path(dir.path().join("warp.redb"))
        .port(PortConfig::webhook("p", webhook).unwrap().policy(policy))
        .start_on(Warped::current(1_000))
        .await
        .unwrap();
    let port = herald.port("p").unwrap();
    let event = ExternalEvent::builder("t")
        .id("evt-warp")
        .occurred_at(herald::now())
        .build()
        .unwrap();
    let started = Instant::now();
    port.send(event.clone()).await.unwrap();
    let done = tokio::time::timeout(Duration::from_secs(30), port.wait_for_terminal(event.id()))
        .await
        .expect("settles")
        .unwrap();
    let real = started.elapsed();
    assert_eq!((done.status, done.attempts_made), (DeliveryStatus::Delivered, 4));
    let h = port.history(event.id()).await.unwrap().unwrap();
    let gaps: Vec<Duration> = h
        .attempts
        .windows(2)
        .map(|w| w[1].started_at.saturating_since(w[0].finished_at))
        .collect();
    // Equal jitter: each wait is between half and all of the scheduled delay (plus the
    // driver's own latency, which the 1,000× clock magnifies: 30 ms real is 30 s here).
    assert_eq!(gaps.len(), 3);
    for (gap, scheduled) in gaps.iter().zip([5, 300, 1800].map(Duration::from_secs)) {
        assert!(
            *gap >= scheduled / 2 && *gap <= scheduled + Duration::from_secs(30),
            "{gap:?} vs {scheduled:?}"
        );
    }
    assert!(
        real < Duration::from_secs(10),
        "up to 35 minutes of schedule took {real:?} of real time"
    );
    herald.shutdown(Duration::from_secs(1)).await;
}
