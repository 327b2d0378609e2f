//! The local receiver every HTTP measurement delivers to: hyper on 127.0.0.1 with
//! keep-alive, answering 204 at once. It counts first successes, notes when each id first
//! arrived (for acceptance-to-delivery latency), and can answer 503 to the first attempt
//! of a fixed share of ids (by a hash of the id, so every system fails the same ids).

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// What the receiver shares with its connections.
#[derive(Default)]
struct State {
    delivered: AtomicUsize,
    fail_permille: AtomicU64,
    arrivals: Mutex<Vec<(String, Instant)>>,
    failed_once: Mutex<HashSet<String>>,
}

/// A running receiver (it lives as long as the runtime it was started on).
pub(crate) struct Sink {
    addr: SocketAddr,
    state: Arc<State>,
}

impl Sink {
    /// Starts the receiver on the current tokio runtime.
    pub(crate) async fn start() -> Sink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let addr = listener.local_addr().expect("sink address");
        let state = Arc::new(State::default());
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let state = shared.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(answer(&state, req).await) }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        Sink { addr, state }
    }

    /// The URL to POST to.
    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Forgets everything received; from now on the first attempt of `fail_permille`
    /// thousandths of the ids is answered 503.
    pub(crate) fn reset(&self, fail_permille: u64) {
        self.state.delivered.store(0, Ordering::Relaxed);
        self.state.fail_permille.store(fail_permille, Ordering::Relaxed);
        self.state.arrivals.lock().expect("arrivals").clear();
        self.state.failed_once.lock().expect("failed ids").clear();
    }

    /// Successful deliveries since the last reset.
    pub(crate) fn delivered(&self) -> usize {
        self.state.delivered.load(Ordering::Relaxed)
    }

    /// Waits until `n` deliveries succeeded; an error if that takes longer than `limit`
    /// (a run that does not finish has no figure).
    pub(crate) async fn wait_for(&self, n: usize, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        while self.delivered() < n {
            if start.elapsed() > limit {
                return Err(format!(
                    "only {} of {n} deliveries arrived within {limit:?}",
                    self.delivered()
                ));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }

    /// When each id first arrived successfully.
    pub(crate) fn arrivals(&self) -> Vec<(String, Instant)> {
        self.state.arrivals.lock().expect("arrivals").clone()
    }
}

async fn answer(state: &State, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let id = req
        .headers()
        .get("webhook-id")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let _ = req.into_body().collect().await;
    let share = state.fail_permille.load(Ordering::Relaxed);
    let fail = share > 0 && fnv(&id) % 1000 < share && state.failed_once.lock().expect("failed ids").insert(id.clone());
    let mut r = Response::new(Full::new(Bytes::new()));
    if fail {
        *r.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
    } else {
        *r.status_mut() = hyper::StatusCode::NO_CONTENT;
        state.delivered.fetch_add(1, Ordering::Relaxed);
        state.arrivals.lock().expect("arrivals").push((id, Instant::now()));
    }
    r
}

/// FNV-1a: a fixed hash, so that every system fails the same ids.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
