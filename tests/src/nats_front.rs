//! A scripted JetStream for conformance: Herald's NATS client talks to the real NATS server
//! through a cuttable proxy on the receiver's port, and a responder subscribed to the
//! receiver's subjects answers each publish the way JetStream does — a publish ack
//! (`{"stream":…,"seq":…}`), an API error (`{"error":{"code":…}}`), or nothing — as the
//! receiver's script says. No stream captures these subjects, so the responder's answer is
//! the only one.
//!
//! Real JetStream (streams, de-duplication, "no stream", a full stream) is exercised by
//! `tests/tests/nats_broker.rs`; this front exists so that the same scripted scenarios run
//! for every transport.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_lite::StreamExt as _;
use tokio::net::TcpListener;

use crate::brokers::{self, forward};
use crate::receiver::{Answer, Peer, Received, Receiver, Script, Verdict};

/// Starts a scripted JetStream receiver on `port` (0: any). Its
/// [`destination`](Receiver::destination) is the subject prefix the port must publish
/// under (`<prefix>.{type}`): derived from the port, so a receiver that comes back on the
/// same port after an outage answers the same subjects.
pub fn start(port: u16, script: Script) -> Receiver {
    let upstream = brokers::NATS.parse().expect("NATS address");
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the receiver's port");
    let bound = listener.local_addr().expect("local addr").port();
    let prefix = format!("herald-conformance.{}.{bound}", std::process::id());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let subjects = format!("{prefix}.>");
    let receiver = Receiver::with_front(listener, script, prefix, move |listener: TcpListener, peer: Peer| {
        Box::pin(async move {
            let client = async_nats::connect(brokers::NATS).await.expect("connect to NATS");
            let mut subscription = client.subscribe(subjects).await.expect("subscribe");
            client.flush().await.expect("flush the subscription");
            let _ = ready_tx.send(());
            let sequence = Arc::new(AtomicU64::new(0));
            let respond = async {
                while let Some(message) = subscription.next().await {
                    let (client, peer, sequence) = (client.clone(), peer.clone(), sequence.clone());
                    tokio::spawn(async move { answer(&client, &peer, &sequence, message).await });
                }
            };
            futures_lite::future::zip(forward(listener, upstream), respond).await;
        })
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the scripted JetStream subscribed within 10 s");
    receiver
}

/// Records one publish and answers it as scripted.
async fn answer(client: &async_nats::Client, peer: &Peer, sequence: &AtomicU64, message: async_nats::Message) {
    let headers: Vec<(String, String)> = message
        .headers
        .iter()
        .flat_map(|h| h.iter())
        .flat_map(|(name, values)| {
            values
                .iter()
                .map(move |v| (name.to_string().to_ascii_lowercase(), v.as_str().to_owned()))
        })
        .collect();
    let mut received = Received {
        id: String::new(),
        method: "PUBLISH".to_owned(),
        path: message.subject.to_string(),
        timestamp: String::new(),
        content_type: String::new(),
        headers,
        body: message.payload.to_vec(),
        signature_ok: None,
        answer: Answer::Status(0),
    };
    received.id = received.header("nats-msg-id").unwrap_or_default().to_owned();
    received.content_type = received.header("content-type").unwrap_or_default().to_owned();
    let (delay, verdict) = peer.answer(received).verdict();
    tokio::time::sleep(delay).await;
    let body = match verdict {
        Verdict::Accept => {
            let seq = sequence.fetch_add(1, Ordering::Relaxed) + 1;
            format!(r#"{{"stream":"SCRIPTED","seq":{seq}}}"#)
        }
        Verdict::Retryable(code) | Verdict::Permanent(code) => {
            format!(r#"{{"error":{{"code":{code},"err_code":10999,"description":"scripted answer {code}"}}}}"#)
        }
        Verdict::Never => return,
    };
    if let Some(reply) = message.reply {
        let _ = client.publish(reply, body.into()).await;
    }
}
