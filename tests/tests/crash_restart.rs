//! The process is killed with SIGKILL while attempts are in flight; a new instance on the
//! same store delivers every acknowledged event, and the interrupted attempts appear in
//! the history (DESIGN.md §2 crash semantics, invariant 1).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use herald::transport::webhook::WebhookConfig;
use herald::{DeliveryStatus, EventId, Herald, PortConfig, RetryPolicy};
use herald_tests::receiver::{Answer, Receiver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_loses_nothing_and_its_attempts_show_as_interrupted() {
    let receiver = Receiver::with_script(|_, _| Answer::Hang).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("crash.redb");
    let n = 25;
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald-crash-child"))
        .args([store.to_str().unwrap(), &receiver.url(), &n.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let mut accepted = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == "ready" {
            break;
        }
        accepted.push(line.strip_prefix("accepted ").expect("accepted line").to_owned());
    }
    assert_eq!(accepted.len(), n, "every send was acknowledged");
    // Wait until attempts are in flight at the (hanging) receiver, then kill.
    for _ in 0..200 {
        if receiver.received().len() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!receiver.received().is_empty(), "attempts were in flight");
    child.kill().expect("SIGKILL");
    child.wait().unwrap();

    receiver.set_script(|_, _| Answer::Status(200));
    let config = WebhookConfig::builder(&receiver.url())
        .allow_private_network(true)
        .build()
        .unwrap();
    let policy = RetryPolicy::fixed(vec![Duration::from_millis(50)]).max_attempts(10);
    let herald = Herald::builder()
        .store_path(&store)
        .port(PortConfig::webhook("p", config).unwrap().policy(policy))
        .start_tokio()
        .await
        .expect("restart");
    let port = herald.port("p").unwrap();
    let mut interrupted = 0;
    for id in &accepted {
        let id = EventId::new(id.as_str()).unwrap();
        let done = tokio::time::timeout(Duration::from_secs(20), port.wait_for_terminal(&id))
            .await
            .expect("settles")
            .unwrap();
        assert_eq!(done.status, DeliveryStatus::Delivered, "{id} delivered after the crash");
        let h = port.history(&id).await.unwrap().unwrap();
        interrupted += h.attempts.iter().filter(|a| a.outcome.code == "interrupted").count();
    }
    assert!(
        interrupted >= 1,
        "the attempts cut by the kill are recorded as interrupted"
    );
    herald.shutdown(Duration::from_secs(1)).await;
}
