//! The webhook transport against a real HTTP/1.1 server (hyper, on 127.0.0.1): what goes on
//! the wire, what comes back as facts, and what the SSRF guard stops.
#![cfg(feature = "webhook")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use herald::transport::webhook::{WebhookConfig, WebhookConfigBuilder, WebhookSecret, WebhookTransport, verify};
use herald::transport::{AttemptRequest, Transport};
use herald_core::{AttemptReport, ExternalEvent, NetworkError, Observation, ResponseExcerpt, RetryAfter, Timestamp};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::HeaderMap;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const OTHER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOW: Timestamp = Timestamp::from_secs(1_700_000_000);
const TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// The receiver fixture: a hyper server that records every request and answers by script.
// ---------------------------------------------------------------------------------------

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Recorded {
    path: String,
    headers: HeaderMap,
    body: Bytes,
    /// Which accepted TCP connection carried it (1 for the first).
    connection: usize,
}

impl Recorded {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }
}

/// What the receiver answers.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: ReplyBody,
    delay: Duration,
}

enum ReplyBody {
    Bytes(Bytes),
    /// Never ends: proves the client stops reading after the excerpt.
    Endless,
}

impl Reply {
    fn status(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: ReplyBody::Bytes(Bytes::new()),
            delay: Duration::ZERO,
        }
    }
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = ReplyBody::Bytes(body.into());
        self
    }
    fn endless_body(mut self) -> Self {
        self.body = ReplyBody::Endless;
        self
    }
    fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Script = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

struct Receiver {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Receiver {
    /// Starts a receiver on 127.0.0.1 with an ephemeral port; it lives as long as the test's runtime.
    async fn start(script: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script: Script = Arc::new(script);
        let recorded = Arc::clone(&requests);
        tokio::spawn(async move {
            let mut connection = 0;
            while let Ok((stream, _)) = listener.accept().await {
                connection += 1;
                let (requests, script) = (Arc::clone(&recorded), Arc::clone(&script));
                let service = service_fn(move |req: Request<Incoming>| {
                    let (requests, script) = (Arc::clone(&requests), Arc::clone(&script));
                    async move { Ok::<_, Infallible>(answer(req, connection, &requests, &*script).await) }
                });
                tokio::spawn(async move {
                    // A client that hangs up early is part of some tests.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { addr, requests }
    }

    /// Accepts anything with 200 OK.
    async fn ok() -> Self {
        Self::start(|_| Reply::status(200)).await
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    fn only_request(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "{requests:?}");
        requests.into_iter().next().unwrap()
    }
}

async fn answer(
    req: Request<Incoming>,
    connection: usize,
    requests: &Mutex<Vec<Recorded>>,
    script: &(dyn Fn(&Recorded) -> Reply + Send + Sync),
) -> Response<BoxBody<Bytes, Infallible>> {
    let (parts, body) = req.into_parts();
    let recorded = Recorded {
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        body: body.collect().await.map(|b| b.to_bytes()).unwrap_or_default(),
        connection,
    };
    let reply = script(&recorded);
    requests.lock().unwrap().push(recorded);
    tokio::time::sleep(reply.delay).await;
    let body = match reply.body {
        ReplyBody::Bytes(b) => Full::new(b).boxed(),
        ReplyBody::Endless => Endless.boxed(),
    };
    let mut response = Response::builder().status(reply.status);
    for (name, value) in reply.headers {
        response = response.header(name, value);
    }
    response.body(body).unwrap()
}

struct Endless;

static CHUNK: [u8; 16 * 1024] = [b'x'; 16 * 1024];

impl Body for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK)))))
    }
}

/// A receiver that checks signatures the way a Standard Webhooks consumer does: 204 if one
/// of the signatures verifies with `secret`, 401 otherwise.
async fn verifying_receiver(secret: &str) -> Receiver {
    let secret = WebhookSecret::parse(secret).unwrap();
    Receiver::start(move |r| {
        let id = r.header("webhook-id");
        let timestamp: u64 = r.header("webhook-timestamp").parse().unwrap();
        let signature = r.headers.get("webhook-signature").map_or("", |v| v.to_str().unwrap());
        if verify(signature, std::slice::from_ref(&secret), id, timestamp, &r.body) {
            Reply::status(204)
        } else {
            Reply::status(401).body("bad signature")
        }
    })
    .await
}

// ---------------------------------------------------------------------------------------
// The sending side.
// ---------------------------------------------------------------------------------------

fn event() -> ExternalEvent {
    ExternalEvent::builder("order.created")
        .id("evt_01HZX")
        .payload(br#"{"order":42,"total":"19.99"}"#.to_vec())
        .occurred_at(Timestamp::from_millis(1_699_999_999_250))
        .build()
        .unwrap()
}

fn local(url: &str) -> WebhookConfigBuilder {
    WebhookConfig::builder(url).allow_private_network(true)
}

fn transport(config: WebhookConfigBuilder) -> WebhookTransport {
    WebhookTransport::new(config.build().unwrap()).unwrap()
}

async fn attempt(t: &WebhookTransport, event: &ExternalEvent) -> AttemptReport {
    attempt_with(t, event, 1, NOW, TIMEOUT).await
}

async fn attempt_with(
    t: &WebhookTransport,
    event: &ExternalEvent,
    attempt: u32,
    now: Timestamp,
    timeout: Duration,
) -> AttemptReport {
    t.attempt(AttemptRequest {
        event,
        attempt,
        now,
        timeout,
    })
    .await
}

fn http(status: u16) -> Observation {
    Observation::Http {
        status,
        retry_after: None,
    }
}

fn destination_forbidden() -> Observation {
    Observation::Refused {
        retryable: false,
        reason: "destination_forbidden".to_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// What goes on the wire.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn posts_the_exact_payload_bytes_with_standard_webhooks_headers() {
    let rx = Receiver::ok().await;
    let payload: Vec<u8> = (0..=255u8).chain(*b"\r\n\0end").collect();
    let event = ExternalEvent::builder("blob.stored")
        .id("evt_bin")
        .content_type("application/octet-stream")
        .payload(payload.clone())
        .occurred_at(NOW)
        .build()
        .unwrap();
    let t = transport(local(&rx.url("/hooks/in")).header("x-tenant", "acme"));

    let report = attempt(&t, &event).await;

    assert_eq!(report.observation, http(200));
    let r = rx.only_request();
    assert_eq!(r.path, "/hooks/in");
    assert_eq!(&r.body[..], &payload[..]);
    assert_eq!(r.header("webhook-id"), "evt_bin");
    assert_eq!(r.header("webhook-timestamp"), "1700000000");
    assert_eq!(r.header("content-type"), "application/octet-stream");
    assert_eq!(r.header("x-tenant"), "acme");
    assert!(r.header("user-agent").starts_with("herald/"));
    assert!(r.headers.get("webhook-signature").is_none(), "no secret, no signature");
    assert!(r.headers.get("ce-id").is_none(), "CloudEvents is off by default");
}

#[tokio::test]
async fn cloudevents_mode_adds_binary_mode_headers_and_keeps_the_body() {
    let rx = Receiver::ok().await;
    let t = transport(local(&rx.url("/ce")).cloudevents("https://shop.example/orders"));

    attempt(&t, &event()).await;

    let r = rx.only_request();
    assert_eq!(r.header("ce-id"), "evt_01HZX");
    assert_eq!(r.header("ce-source"), "https://shop.example/orders");
    assert_eq!(r.header("ce-type"), "order.created");
    assert_eq!(r.header("ce-specversion"), "1.0");
    assert_eq!(r.header("ce-time"), "2023-11-14T22:13:19.250Z");
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(&r.body[..], event().payload());
}

#[tokio::test]
async fn a_receiver_verifies_our_signature() {
    let rx = verifying_receiver(SECRET).await;
    let t = transport(local(&rx.url("/")).secret(SECRET));

    let report = attempt(&t, &event()).await;

    assert_eq!(report.observation, http(204));
    let r = rx.only_request();
    assert!(r.header("webhook-signature").starts_with("v1,"));
}

#[tokio::test]
async fn a_signature_made_with_another_secret_is_rejected_by_the_receiver() {
    let rx = verifying_receiver(SECRET).await;
    let t = transport(local(&rx.url("/")).secret(OTHER_SECRET));

    let report = attempt(&t, &event()).await;

    assert_eq!(report.observation, http(401));
    assert_eq!(report.response.unwrap().body, b"bad signature");
}

#[tokio::test]
async fn during_rotation_a_receiver_with_either_secret_accepts() {
    for receiver_secret in [SECRET, OTHER_SECRET] {
        let rx = verifying_receiver(receiver_secret).await;
        let t = transport(local(&rx.url("/")).secret(OTHER_SECRET).secret(SECRET));

        let report = attempt(&t, &event()).await;

        assert_eq!(report.observation, http(204));
        assert_eq!(rx.only_request().header("webhook-signature").split(' ').count(), 2);
    }
}

#[tokio::test]
async fn every_attempt_carries_the_same_id_and_bytes_over_one_kept_alive_connection() {
    let rx = verifying_receiver(SECRET).await;
    let t = transport(local(&rx.url("/")).secret(SECRET));
    let event = event();

    attempt_with(&t, &event, 1, NOW, TIMEOUT).await;
    let later = Timestamp::from_secs(NOW.as_secs() + 300);
    let report = attempt_with(&t, &event, 2, later, TIMEOUT).await;

    assert_eq!(report.observation, http(204), "the second signature verifies too");
    let [first, second] = <[Recorded; 2]>::try_from(rx.requests()).unwrap();
    assert_eq!(first.header("webhook-id"), second.header("webhook-id"));
    assert_eq!(first.body, second.body);
    assert_eq!(first.header("webhook-timestamp"), "1700000000");
    assert_eq!(second.header("webhook-timestamp"), "1700000300");
    assert_eq!(first.connection, second.connection, "the connection is reused");
}

// ---------------------------------------------------------------------------------------
// What comes back.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_503_with_retry_after_reports_the_delay() {
    let rx = Receiver::start(|_| Reply::status(503).header("retry-after", "7").body("busy")).await;
    let t = transport(local(&rx.url("/")));

    let report = attempt(&t, &event()).await;

    assert_eq!(
        report.observation,
        Observation::Http {
            status: 503,
            retry_after: Some(RetryAfter::Delay(Duration::from_secs(7)))
        }
    );
    assert_eq!(report.response, Some(ResponseExcerpt::new(503, b"busy")));
    assert_eq!(report.detail, None);
}

#[tokio::test]
async fn an_invalid_retry_after_is_dropped_and_noted() {
    let rx = Receiver::start(|_| Reply::status(429).header("retry-after", "soon")).await;
    let t = transport(local(&rx.url("/")));

    let report = attempt(&t, &event()).await;

    assert_eq!(report.observation, http(429));
    let detail = report.detail.unwrap();
    assert!(detail.contains("invalid Retry-After"), "{detail}");
}

#[tokio::test]
async fn a_redirect_is_reported_and_not_followed() {
    let rx = Receiver::start(|r| {
        if r.path == "/moved" {
            Reply::status(302).header("location", "/target")
        } else {
            Reply::status(200)
        }
    })
    .await;
    let t = transport(local(&rx.url("/moved")));

    let report = attempt(&t, &event()).await;

    assert_eq!(report.observation, http(302));
    assert_eq!(
        rx.only_request().path,
        "/moved",
        "the Location target is never requested"
    );
}

#[tokio::test]
async fn a_large_response_body_is_cut_to_a_4_kib_excerpt() {
    let rx = Receiver::start(|_| Reply::status(500).body(vec![b'e'; 1024 * 1024])).await;
    let t = transport(local(&rx.url("/")));

    let report = attempt(&t, &event()).await;

    assert_eq!(report.observation, http(500));
    let excerpt = report.response.unwrap();
    assert_eq!(excerpt.body.len(), 4096);
    assert!(excerpt.truncated);
    assert_eq!(report.detail, None, "a body we stopped reading is not an error");
}

#[tokio::test]
async fn an_endless_response_body_is_not_read_to_the_end() {
    let rx = Receiver::start(|_| Reply::status(200).endless_body()).await;
    let t = transport(local(&rx.url("/")));

    let report = attempt(&t, &event()).await;

    assert_eq!(report.observation, http(200));
    let excerpt = report.response.unwrap();
    assert_eq!((excerpt.body.len(), excerpt.truncated), (4096, true));
    assert!(report.duration < Duration::from_secs(5), "{:?}", report.duration);
}

#[tokio::test]
async fn a_short_body_is_kept_whole_and_the_duration_is_measured() {
    let rx = Receiver::start(|_| Reply::status(202).body("queued")).await;
    let t = transport(local(&rx.url("/")));

    let report = attempt(&t, &event()).await;

    assert_eq!(report.observation, http(202));
    assert_eq!(report.response, Some(ResponseExcerpt::new(202, b"queued")));
    assert!(report.duration > Duration::ZERO);
}

// ---------------------------------------------------------------------------------------
// No answer.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_slow_server_beyond_the_attempt_timeout_is_a_timeout() {
    let rx = Receiver::start(|_| Reply::status(200).after(Duration::from_secs(5))).await;
    let t = transport(local(&rx.url("/")));

    let report = attempt_with(&t, &event(), 1, NOW, Duration::from_millis(200)).await;

    assert_eq!(report.observation, Observation::TimedOut);
    assert!(report.duration < Duration::from_secs(2), "{:?}", report.duration);
    assert_eq!(rx.requests().len(), 1, "the request did arrive: a timeout is ambiguous");
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let t = transport(local(&format!("http://{addr}/")));

    let report = attempt(&t, &event()).await;

    assert_eq!(report.observation, Observation::Network(NetworkError::Connect));
    assert!(report.detail.is_some());
}

#[tokio::test]
async fn a_server_that_hangs_up_without_answering_is_a_reset() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            // Read the start of the request, then hang up without a response.
            let _ = stream.readable().await;
            let _ = stream.try_read(&mut buf);
            drop(stream);
        }
    });
    let t = transport(local(&format!("http://{addr}/")));

    let report = attempt(&t, &event()).await;

    assert_eq!(report.observation, Observation::Network(NetworkError::Reset));
}

#[tokio::test]
async fn https_to_a_plain_http_server_is_a_tls_error() {
    let rx = Receiver::ok().await;
    let t = transport(local(&format!("https://{}/", rx.addr)));

    let report = attempt(&t, &event()).await;

    assert_eq!(
        report.observation,
        Observation::Network(NetworkError::Tls),
        "{:?}",
        report.detail
    );
}

#[tokio::test]
async fn an_unresolvable_name_is_a_dns_error() {
    let t = transport(WebhookConfig::builder("http://no-such-host.invalid/hook"));

    let report = attempt(&t, &event()).await;

    assert_eq!(report.observation, Observation::Network(NetworkError::Dns));
}

#[tokio::test]
async fn error_details_never_contain_the_url_path_or_query() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let t = transport(local(&format!("http://{addr}/hook/pathtoken?key=querytoken")));

    let report = attempt(&t, &event()).await;

    let detail = report.detail.unwrap();
    assert!(
        !detail.contains("pathtoken") && !detail.contains("querytoken"),
        "{detail}"
    );
}

// ---------------------------------------------------------------------------------------
// The SSRF guard.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_loopback_ip_literal_is_refused_when_the_port_is_built() {
    let rx = Receiver::ok().await;

    let err = WebhookConfig::builder(&rx.url("/")).build().unwrap_err();

    assert_eq!(err.field(), Some("webhook.url"));
    assert!(err.to_string().contains("loopback"), "{err}");
    assert!(rx.requests().is_empty());
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_and_nothing_is_sent() {
    let rx = Receiver::ok().await;
    let t = transport(WebhookConfig::builder(&format!("http://localhost:{}/", rx.addr.port())));

    let report = attempt(&t, &event()).await;

    assert_eq!(report.observation, destination_forbidden());
    let detail = report.detail.unwrap();
    assert!(detail.contains("localhost") && detail.contains("loopback"), "{detail}");
    assert!(rx.requests().is_empty(), "the receiver saw no request");
}

#[tokio::test]
async fn allowing_private_networks_lets_a_local_name_through() {
    let rx = Receiver::ok().await;
    let t = transport(local(&format!("http://localhost:{}/", rx.addr.port())));

    let report = attempt(&t, &event()).await;

    assert_eq!(report.observation, http(200));
    assert_eq!(rx.requests().len(), 1);
}
