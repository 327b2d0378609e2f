//! The demo's receiver: a local HTTP server that verifies Standard Webhooks signatures and
//! fails on purpose, by a fixed script keyed on the event number, so every run shows
//! retries, `Retry-After`, timeouts and permanent failures.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use herald::transport::webhook::{WebhookSecret, verify};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// What the receiver does with the first attempts of event number `n`.
fn script(n: u64, attempt_seen: usize) -> Reply {
    match (n % 100, attempt_seen) {
        (0..=9, 0) => Reply::Status(503),          // 10 %: unavailable once
        (10..=14, 0) => Reply::RetryAfter(429, 1), // 5 %: rate limited, retry in 1 s
        (15..=17, 0 | 1) => Reply::Status(500),    // 3 %: two server errors
        (18..=19, 0) => Reply::Hang,               // 2 %: no answer: the attempt times out
        (20, _) => Reply::Status(400),             // 1 %: a permanent rejection
        _ => Reply::Status(204),
    }
}

enum Reply {
    Status(u16),
    RetryAfter(u16, u64),
    Hang,
}

/// Counts requests per event id, so the script knows which attempt it sees.
#[derive(Default)]
struct Seen {
    by_id: HashMap<String, usize>,
    bad_signatures: u64,
}

/// A running demo receiver.
pub(crate) struct DemoReceiver {
    pub(crate) addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl DemoReceiver {
    /// Listens on 127.0.0.1 (a free port) and verifies signatures with `secret`.
    pub(crate) async fn start(secret: WebhookSecret) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let state = seen.clone();
        let secret = Arc::new(secret);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (state, secret) = (state.clone(), secret.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| answer(req, state.clone(), secret.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(DemoReceiver { addr, seen })
    }

    /// Requests that carried a wrong signature (always 0 unless something is broken).
    pub(crate) fn bad_signatures(&self) -> u64 {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).bad_signatures
    }
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    seen: Arc<Mutex<Seen>>,
    secret: Arc<WebhookSecret>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, ts, sig) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let ts_secs: u64 = ts.parse().unwrap_or(0);
    let reply = {
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        if !verify(&sig, std::slice::from_ref(&*secret), &id, ts_secs, &body) {
            seen.bad_signatures += 1;
            Reply::Status(401)
        } else {
            let count = seen.by_id.entry(id.clone()).or_default();
            let attempt_seen = *count;
            *count += 1;
            let n = id.rsplit('-').next().and_then(|n| n.parse().ok()).unwrap_or(0);
            script(n, attempt_seen)
        }
    };
    let mut response = Response::new(Full::new(Bytes::new()));
    let status = match reply {
        Reply::Status(s) => s,
        Reply::RetryAfter(s, secs) => {
            response.headers_mut().insert("retry-after", secs.into());
            s
        }
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            204
        }
    };
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Ok(response)
}
