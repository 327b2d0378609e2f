//! A real HTTP receiver for end-to-end tests: hyper on 127.0.0.1, answering by script,
//! recording every request, and verifying Standard Webhooks signatures with its own
//! implementation of the algorithm (independent of Herald's). It serves REST API ports too:
//! without `webhook-id`, a request's id is its `idempotency-key`, and expected headers
//! (e.g. `authorization`) can be required of every request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use herald::core::BoxFuture;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use tokio::net::TcpListener;

/// What the receiver answers to one request.
#[derive(Clone, Debug)]
pub enum Answer {
    /// This status, empty body.
    Status(u16),
    /// This status with a `Retry-After` header.
    RetryAfter(u16, String),
    /// Wait, then answer with the status (slow receivers, timeouts).
    Slow(Duration, u16),
    /// Close the connection without answering.
    Hang,
}

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    /// `webhook-id`, or `idempotency-key` when there is no `webhook-id` (API ports).
    pub id: String,
    /// The method, e.g. `POST`.
    pub method: String,
    /// The path and query as sent (still percent-encoded), e.g. `/hook` or `/api/a%2Fb?x=1`.
    pub path: String,
    /// `webhook-timestamp`.
    pub timestamp: String,
    /// `content-type`.
    pub content_type: String,
    /// Every header, lowercase names.
    pub headers: Vec<(String, String)>,
    /// The exact body.
    pub body: Vec<u8>,
    /// Whether the signature verified against the receiver's secret (None: no secret set).
    pub signature_ok: Option<bool>,
    /// The answer given.
    pub answer: Answer,
}

impl Received {
    /// The value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Decides the answer from the request and how many requests with the same id came
/// before it (0 for the first).
pub type Script = Arc<dyn Fn(&Received, usize) -> Answer + Send + Sync>;

struct State {
    script: Script,
    secret: Option<Vec<u8>>,
    required_headers: Vec<(String, String)>,
    received: Vec<Received>,
}

/// A scripted webhook receiver on 127.0.0.1, on a tokio runtime of its own so that it
/// serves tests of any driver. Stops when dropped.
pub struct Receiver {
    addr: SocketAddr,
    destination: String,
    state: Arc<Mutex<State>>,
    runtime: Option<tokio::runtime::Runtime>,
    /// Tells the accept loop to stop, and hears when its listener is closed.
    stop: Option<(async_channel::Sender<()>, std::sync::mpsc::Receiver<()>)>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for Receiver {
    /// Closes the listening socket before returning, so that a connection attempted right
    /// after the drop is refused (a simulated outage), not accepted by a listener that a
    /// background shutdown has not closed yet and then reset.
    fn drop(&mut self) {
        if let Some((stop, closed)) = self.stop.take() {
            stop.close();
            let _ = closed.recv_timeout(Duration::from_secs(5));
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Receiver {
    /// Starts a receiver that answers every request with `204`.
    pub async fn start() -> Self {
        Self::with_script(|_, _| Answer::Status(204)).await
    }

    /// Starts a receiver answering by `script`.
    pub async fn with_script(script: impl Fn(&Received, usize) -> Answer + Send + Sync + 'static) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        Self::on_listener(listener, Arc::new(script))
    }

    /// Starts a receiver on a given port (to come back after a simulated outage).
    pub async fn on_port(port: u16, script: impl Fn(&Received, usize) -> Answer + Send + Sync + 'static) -> Self {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("rebind the receiver's port");
        Self::on_listener(listener, Arc::new(script))
    }

    /// Starts an HTTP receiver answering by `script` on `port` (0: any free port).
    pub fn on_port_with(port: u16, script: Script) -> Self {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the receiver's port");
        Self::on_listener(listener, script)
    }

    fn on_listener(listener: std::net::TcpListener, script: Script) -> Self {
        Self::with_front(listener, script, String::new(), |listener, peer| {
            Box::pin(serve_http(listener, peer))
        })
    }

    /// Starts a receiver whose requests arrive through `front` instead of HTTP: a front
    /// owns `listener` (the receiver's address, e.g. a proxy to a broker) and hands every
    /// message it sees to [`Peer::answer`], which records it and returns the scripted
    /// answer. `destination` is what the front's transport must be configured with (a
    /// subject, an exchange), see [`Receiver::destination`]. The front runs on the
    /// receiver's own runtime; dropping the receiver stops it and every task it spawned.
    pub fn with_front(
        listener: std::net::TcpListener,
        script: Script,
        destination: String,
        front: impl FnOnce(TcpListener, Peer) -> BoxFuture<'static, ()> + Send + 'static,
    ) -> Self {
        let addr = listener.local_addr().expect("local addr");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("receiver runtime");
        let state = Arc::new(Mutex::new(State {
            script,
            secret: None,
            required_headers: Vec::new(),
            received: Vec::new(),
        }));
        let peer = Peer { state: state.clone() };
        let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
        let (closed_tx, closed_rx) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).expect("tokio listener");
            // The listener lives in the front, dropped at the end of this statement.
            futures_lite::future::or(front(listener, peer), async {
                let _ = stop_rx.recv().await;
            })
            .await;
            let _ = closed_tx.send(());
        });
        Receiver {
            addr,
            destination,
            state,
            runtime: Some(runtime),
            stop: Some((stop_tx, closed_rx)),
        }
    }

    /// Verifies signatures with this `whsec_…` secret; bad or missing ones get 401.
    pub fn verify_with(&self, secret: &str) {
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret.trim_start_matches("whsec_"))
            .expect("test secret is base64");
        self.lock().secret = Some(key);
    }

    /// Requires `name: value` (name in lowercase) on every request; a request without it
    /// gets 401, like a bad signature.
    pub fn require_header(&self, name: &str, value: &str) {
        self.lock().required_headers.push((name.to_owned(), value.to_owned()));
    }

    /// Replaces the script.
    pub fn set_script(&self, script: impl Fn(&Received, usize) -> Answer + Send + Sync + 'static) {
        self.lock().script = Arc::new(script);
    }

    /// `http://127.0.0.1:PORT/hook`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// What a transport is configured with to reach this receiver besides its address
    /// (a subject, an exchange); empty for HTTP.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// The requests carrying `webhook-id: id` (or, without `webhook-id`, `idempotency-key: id`).
    pub fn received_for(&self, id: &str) -> Vec<Received> {
        self.lock().received.iter().filter(|r| r.id == id).cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The HTTP front: hyper/1 on every accepted connection.
async fn serve_http(listener: TcpListener, peer: Peer) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let st = peer.state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(st.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The recording and scripting half of a [`Receiver`], for fronts that are not HTTP.
#[derive(Clone)]
pub struct Peer {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer").finish_non_exhaustive()
    }
}

impl Peer {
    /// Records `received` and returns the scripted answer for it (required headers are
    /// checked as for HTTP: a missing one is answered `401`).
    pub fn answer(&self, mut received: Received) -> Answer {
        let mut st = self.lock();
        let before = st.received.iter().filter(|r| r.id == received.id).count();
        let missing_header = st
            .required_headers
            .iter()
            .any(|(name, value)| received.header(name) != Some(value.as_str()));
        let answer = match received.signature_ok {
            Some(false) => Answer::Status(401),
            _ if missing_header => Answer::Status(401),
            _ => (st.script)(&received, before),
        };
        received.answer = answer.clone();
        st.received.push(received);
        answer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a broker front does with a scripted [`Answer`]: the HTTP-shaped script read as a
/// broker's verdict, so that one script serves every transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Confirm the message (a 2xx; 3xx too, brokers have no redirects).
    Accept,
    /// A failure the broker says may pass (a 429 or 5xx), with the scripted status.
    Retryable(u16),
    /// A failure that will not pass (any other 4xx), with the scripted status.
    Permanent(u16),
    /// No answer at all.
    Never,
}

impl Answer {
    /// How long to wait before answering, and what to answer.
    pub fn verdict(&self) -> (Duration, Verdict) {
        let of = |s: u16| match s {
            429 | 500.. => Verdict::Retryable(s),
            400..=499 => Verdict::Permanent(s),
            _ => Verdict::Accept,
        };
        match *self {
            Answer::Status(s) | Answer::RetryAfter(s, _) => (Duration::ZERO, of(s)),
            Answer::Slow(d, s) => (d, of(s)),
            Answer::Hang => (Duration::ZERO, Verdict::Never),
        }
    }
}

async fn handle(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().as_str().to_owned();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let id = match get("webhook-id") {
        id if id.is_empty() => get("idempotency-key"),
        id => id,
    };
    let mut received = Received {
        id,
        method,
        path,
        timestamp: get("webhook-timestamp"),
        content_type: get("content-type"),
        signature_ok: None,
        headers: headers.clone(),
        body,
        answer: Answer::Status(0),
    };
    let peer = Peer { state };
    received.signature_ok = peer.lock().secret.as_ref().map(|key| {
        verify_signature(
            key,
            &received.id,
            &received.timestamp,
            &received.body,
            &get("webhook-signature"),
        )
    });
    let answer = peer.answer(received);
    let status = match answer {
        Answer::Status(s) => s,
        Answer::RetryAfter(s, ref v) => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = hyper::StatusCode::from_u16(s).expect("valid status");
            r.headers_mut().insert("retry-after", v.parse().expect("header value"));
            return Ok(r);
        }
        Answer::Slow(d, s) => {
            tokio::time::sleep(d).await;
            s
        }
        Answer::Hang => {
            // Never answer; the client's timeout ends the attempt.
            std::future::pending::<()>().await;
            unreachable!()
        }
    };
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = hyper::StatusCode::from_u16(status).expect("valid status");
    Ok(r)
}

/// Standard Webhooks verification: `v1,` + base64(HMAC-SHA256(key, "{id}.{ts}.{body}")),
/// any of several space-separated signatures may match.
pub fn verify_signature(key: &[u8], id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    header
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|sig| sig == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receiver_accepts_the_standard_webhooks_test_vector() {
        let key = base64::engine::general_purpose::STANDARD
            .decode("C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
            .unwrap();
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        let good = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
        assert!(verify_signature(
            &key,
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            "1649367553",
            body,
            good
        ));
        assert!(!verify_signature(
            &key,
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            "1649367554",
            body,
            good
        ));
        assert!(verify_signature(
            &key,
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            "1649367553",
            body,
            &format!("v1,bad {good}")
        ));
    }
}
