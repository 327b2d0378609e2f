//! A Herald process to be killed: used by the SIGKILL restart test.
//!
//! `herald-crash-child STORE URL N` starts Herald (tokio, one webhook port named `p`,
//! private network allowed) on STORE, sends N events `evt-crash-0..N`, prints
//! `accepted ID` for each acknowledged send, then `ready`, and waits to be killed.

use std::time::Duration;

use herald::transport::webhook::WebhookConfig;
use herald::{ExternalEvent, Herald, PortConfig, RetryPolicy};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, store, url, n] = args.as_slice() else {
        eprintln!("usage: herald-crash-child STORE URL N");
        std::process::exit(2);
    };
    let n: usize = n.parse().expect("N is a number");
    let config = WebhookConfig::builder(url)
        .allow_private_network(true)
        .build()
        .expect("webhook config");
    let policy = RetryPolicy::fixed(vec![Duration::from_millis(100)])
        .max_attempts(10)
        .attempt_timeout(Duration::from_secs(60));
    let port = PortConfig::webhook("p", config).expect("port").policy(policy);
    let herald = Herald::builder()
        .store_path(store)
        .port(port)
        .start_tokio()
        .await
        .expect("start");
    let p = herald.port("p").expect("port p");
    for i in 0..n {
        let event = ExternalEvent::builder("crash.test")
            .id(format!("evt-crash-{i}"))
            .payload(format!("{{\"i\":{i}}}").into_bytes())
            .occurred_at(herald::now())
            .build()
            .expect("event");
        let r = p.send(event).await.expect("accepted");
        println!("accepted {}", r.event_id);
    }
    println!("ready");
    std::future::pending::<()>().await;
}
