//! Real brokers for transport tests: where they are, whether a test may skip when one is
//! down, and a TCP proxy that stands in for a broker's address so a test can cut it.
//!
//! A test that needs a broker calls [`require`] first: when the broker is unreachable it
//! prints why and returns `None` (the test returns early), unless `HERALD_REQUIRE_BROKERS=1`
//! (set by `.ci/run`), which turns the skip into a failure.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// NATS with JetStream on this machine.
pub const NATS: &str = "127.0.0.1:4222";
/// RabbitMQ on this machine (guest/guest).
pub const RABBITMQ: &str = "127.0.0.1:5672";

/// Whether a missing broker fails the test instead of skipping it.
pub fn brokers_required() -> bool {
    std::env::var("HERALD_REQUIRE_BROKERS").is_ok_and(|v| v == "1")
}

/// The broker's address when it accepts connections. Otherwise prints the reason and
/// returns `None`, or panics when `HERALD_REQUIRE_BROKERS=1`.
pub fn require(name: &str, addr: &str) -> Option<SocketAddr> {
    let parsed: SocketAddr = addr.parse().expect("a socket address");
    match std::net::TcpStream::connect_timeout(&parsed, Duration::from_secs(2)) {
        Ok(_) => Some(parsed),
        Err(e) if brokers_required() => {
            panic!("{name} at {addr} is unreachable ({e}) and HERALD_REQUIRE_BROKERS=1")
        }
        Err(e) => {
            skipping(name, &format!("{name} at {addr} is unreachable ({e})"));
            None
        }
    }
}

/// Says once per process and broker why its tests are skipped. Written to the process's
/// stderr directly: the test harness captures `eprintln!` of passing tests, and a skip
/// must be seen.
fn skipping(name: &str, why: &str) {
    use std::collections::BTreeSet;
    use std::io::Write as _;
    use std::sync::Mutex;
    static SAID: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let first = SAID.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_owned());
    if first {
        let _ = writeln!(
            std::io::stderr(),
            "skipping {name} tests: {why}; set HERALD_REQUIRE_BROKERS=1 to fail instead"
        );
    }
}

/// A unique name for a test's stream, subject, exchange or queue.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Forwards every connection accepted on `listener` to `upstream`, byte for byte, until
/// the future is dropped (which closes the listener and every forwarded connection: the
/// broker looks gone to the client).
pub async fn forward(listener: TcpListener, upstream: SocketAddr) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            continue;
        };
        let _ = client.set_nodelay(true);
        connections.spawn(async move {
            if let Ok(mut server) = TcpStream::connect(upstream).await {
                let _ = server.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

/// A broker's address that a test can take away and give back: a [`forward`] proxy on its
/// own runtime (a [`Receiver`](crate::receiver::Receiver)'s, whose drop closes the listener
/// and every forwarded connection before it returns).
#[derive(Debug)]
pub struct Proxy {
    inner: crate::receiver::Receiver,
}

impl Proxy {
    /// Forwards `127.0.0.1:port` (0: any free port) to `upstream`.
    pub fn start(port: u16, upstream: SocketAddr) -> Proxy {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the proxy's port");
        let script: crate::receiver::Script = std::sync::Arc::new(|_, _| crate::receiver::Answer::Status(204));
        let inner = crate::receiver::Receiver::with_front(listener, script, String::new(), move |listener, _| {
            Box::pin(forward(listener, upstream))
        });
        Proxy { inner }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.inner.port()
    }
}
