//! The REST API transport against a real HTTP/1.1 receiver (`herald_tests::receiver`, hyper
//! on 127.0.0.1): what goes on the wire (method, templated path, body modes, credentials,
//! idempotency header), what comes back as facts, how success codes and `Retry-After` shape
//! a running port's outcomes, which configurations are refused, and the `herald` command
//! with `kind = "api"`.
#![cfg(feature = "api")]

use std::time::Duration;

use base64::Engine as _;
use herald::core::{AttemptReport, NetworkError, Observation, RetryAfter};
use herald::transport::api::{ApiConfig, ApiConfigBuilder, ApiTransport, Body, Method};
use herald::transport::{AttemptRequest, Transport};
use herald::{DeliveryStatus, ExternalEvent, Herald, IntegrationPort, PortConfig, Timestamp};
use herald_tests::conformance::fast_policy;
use herald_tests::receiver::{Answer, Received, Receiver};

const NOW: Timestamp = Timestamp::from_secs(1_700_000_000);
const TIMEOUT: Duration = Duration::from_secs(10);

fn event(id: &str) -> ExternalEvent {
    ExternalEvent::builder("order.created")
        .id(id)
        .payload(br#"{"order":42,"total":"19.99"}"#.to_vec())
        .occurred_at(Timestamp::from_millis(1_699_999_999_250))
        .metadata("tenant", "acme")
        .build()
        .unwrap()
}

/// A configuration for `path_template` on the receiver (private network allowed).
fn local(receiver: &Receiver, path_template: &str) -> ApiConfigBuilder {
    ApiConfig::builder(&format!("http://127.0.0.1:{}{path_template}", receiver.port())).allow_private_network(true)
}

fn transport(config: ApiConfigBuilder) -> ApiTransport {
    ApiTransport::new(config.build().unwrap()).unwrap()
}

async fn attempt(t: &ApiTransport, event: &ExternalEvent) -> AttemptReport {
    t.attempt(AttemptRequest {
        event,
        attempt: 1,
        now: NOW,
        timeout: TIMEOUT,
    })
    .await
}

fn http(status: u16) -> Observation {
    Observation::Http {
        status,
        retry_after: None,
    }
}

fn only(receiver: &Receiver) -> Received {
    let all = receiver.received();
    assert_eq!(all.len(), 1, "{all:?}");
    all.into_iter().next().unwrap()
}

/// Starts Herald on the current tokio runtime with one API port `p`.
async fn start(config: ApiConfig, dir: &tempfile::TempDir) -> (Herald, herald::Port) {
    let port = PortConfig::api("p", config).unwrap().policy(fast_policy());
    let herald = Herald::builder()
        .store_path(dir.path().join("herald.redb"))
        .port(port)
        .start_tokio()
        .await
        .unwrap();
    let p = herald.port("p").unwrap();
    (herald, p)
}

async fn settle(port: &herald::Port, e: &ExternalEvent) -> herald::IntegrationResult {
    tokio::time::timeout(Duration::from_secs(20), port.wait_for_terminal(e.id()))
        .await
        .expect("terminal within 20 s")
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// What goes on the wire.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn method_and_templated_path_carry_percent_encoded_id_and_type() {
    let rx = Receiver::start().await;
    let t = transport(local(&rx, "/v1/{type}/events/{id}?id={id}&src=herald").method(Method::Patch));
    // Ids are visible ASCII without '.': '/', '?', '#', '%' and '&' can all occur.
    let e = ExternalEvent::builder("order created/v2")
        .id("a/b?c#d%e&f")
        .payload(b"{}".to_vec())
        .occurred_at(NOW)
        .build()
        .unwrap();

    let report = attempt(&t, &e).await;

    assert_eq!(report.observation, http(204));
    let r = only(&rx);
    assert_eq!(r.method, "PATCH");
    assert_eq!(
        r.path,
        "/v1/order%20created%2Fv2/events/a%2Fb%3Fc%23d%25e%26f?id=a%2Fb%3Fc%23d%25e%26f&src=herald"
    );
    assert_eq!(r.id, "a/b?c#d%e&f", "the idempotency header carries the id unencoded");
}

#[tokio::test]
async fn every_method_is_sent_as_configured() {
    let rx = Receiver::start().await;
    for (method, name) in [
        (Method::Post, "POST"),
        (Method::Put, "PUT"),
        (Method::Patch, "PATCH"),
        (Method::Delete, "DELETE"),
        (Method::Get, "GET"),
    ] {
        let t = transport(local(&rx, "/m").method(method));
        assert_eq!(attempt(&t, &event(&format!("evt-{name}"))).await.observation, http(204));
        let r = rx.received_for(&format!("evt-{name}"));
        assert_eq!(r[0].method, name);
    }
    let get = rx.received_for("evt-GET").remove(0);
    assert!(get.body.is_empty(), "GET sends no body");
    assert_eq!(get.header("content-type"), None);
}

#[tokio::test]
async fn a_dot_segment_type_is_refused_without_a_request() {
    let rx = Receiver::start().await;
    let t = transport(local(&rx, "/v1/{type}/x"));
    let e = ExternalEvent::builder("..")
        .id("evt-dots")
        .occurred_at(NOW)
        .build()
        .unwrap();

    let report = attempt(&t, &e).await;

    assert_eq!(
        report.observation,
        Observation::Refused {
            retryable: false,
            reason: "invalid_request".to_owned()
        }
    );
    assert!(report.detail.unwrap().contains("path segment"));
    assert!(rx.received().is_empty(), "nothing sent to another path");
}

#[tokio::test]
async fn raw_mode_sends_the_exact_payload_with_the_event_content_type() {
    let rx = Receiver::start().await;
    let payload: Vec<u8> = (0..=255u8).chain(*b"\r\n\0end").collect();
    let e = ExternalEvent::builder("blob.stored")
        .id("evt-bin")
        .content_type("application/octet-stream")
        .payload(payload.clone())
        .occurred_at(NOW)
        .build()
        .unwrap();
    let t = transport(local(&rx, "/raw").body(Body::Raw).header("x-tenant", "acme"));

    assert_eq!(attempt(&t, &e).await.observation, http(204));

    let r = only(&rx);
    assert_eq!(r.method, "POST", "POST is the default");
    assert_eq!(r.body, payload);
    assert_eq!(r.content_type, "application/octet-stream");
    assert_eq!(r.header("x-tenant"), Some("acme"));
    assert!(r.header("user-agent").unwrap().starts_with("herald/"));
    assert_eq!(r.header("webhook-id"), None, "no webhook headers");
}

#[tokio::test]
async fn json_mode_wraps_the_event_in_an_envelope() {
    let rx = Receiver::start().await;
    let t = transport(local(&rx, "/json").body(Body::Json));

    attempt(&t, &event("evt-json")).await;
    let binary = ExternalEvent::builder("blob.stored")
        .id("evt-json-bin")
        .content_type("image/png")
        .payload(vec![0x89, b'P', b'N', b'G'])
        .occurred_at(NOW)
        .build()
        .unwrap();
    attempt(&t, &binary).await;

    let r = rx.received_for("evt-json").remove(0);
    assert_eq!(r.content_type, "application/json");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "id": "evt-json",
            "type": "order.created",
            "occurred_at": "2023-11-14T22:13:19.250Z",
            "content_type": "application/json",
            "metadata": {"tenant": "acme"},
            "data": {"order": 42, "total": "19.99"},
        })
    );
    let r = rx.received_for("evt-json-bin").remove(0);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["data_base64"], "iVBORw==");
    assert_eq!(v["content_type"], "image/png");
    assert!(v.get("data").is_none());
}

#[tokio::test]
async fn bearer_and_basic_credentials_are_sent_as_authorization() {
    let rx = Receiver::start().await;
    attempt(
        &transport(local(&rx, "/b").bearer_token("tok_live_123")),
        &event("evt-bearer"),
    )
    .await;
    attempt(
        &transport(local(&rx, "/b").basic_auth("acme", "pä55:word")),
        &event("evt-basic"),
    )
    .await;

    let bearer = rx.received_for("evt-bearer").remove(0);
    assert_eq!(bearer.header("authorization"), Some("Bearer tok_live_123"));
    let basic = rx.received_for("evt-basic").remove(0);
    let encoded = basic.header("authorization").unwrap().strip_prefix("Basic ").unwrap();
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    assert_eq!(String::from_utf8(decoded).unwrap(), "acme:pä55:word", "RFC 7617, UTF-8");
}

#[tokio::test]
async fn credentials_from_the_environment_are_sent() {
    // The crate forbids unsafe code, so tests cannot set variables (`set_var` is unsafe in
    // edition 2024); cargo sets these for every test process.
    let name = std::env::var("CARGO_PKG_NAME").expect("run by cargo test");
    let version = std::env::var("CARGO_PKG_VERSION").expect("run by cargo test");
    let rx = Receiver::start().await;
    attempt(
        &transport(local(&rx, "/e").bearer_token_env("CARGO_PKG_NAME")),
        &event("evt-env-bearer"),
    )
    .await;
    attempt(
        &transport(local(&rx, "/e").basic_auth_env("CARGO_PKG_NAME", "CARGO_PKG_VERSION")),
        &event("evt-env-basic"),
    )
    .await;
    attempt(
        &transport(local(&rx, "/e").basic_auth_password_env("u", "CARGO_PKG_VERSION")),
        &event("evt-env-password"),
    )
    .await;

    let basic = |user: &str, password: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    };
    let header = |id: &str| rx.received_for(id)[0].header("authorization").unwrap().to_owned();
    assert_eq!(header("evt-env-bearer"), format!("Bearer {name}"));
    assert_eq!(header("evt-env-basic"), basic(&name, &version));
    assert_eq!(header("evt-env-password"), basic("u", &version));
}

#[tokio::test]
async fn the_idempotency_header_is_configurable_or_off() {
    let rx = Receiver::start().await;
    attempt(
        &transport(local(&rx, "/i").idempotency_header(Some("X-Request-Id"))),
        &event("evt-custom"),
    )
    .await;
    attempt(&transport(local(&rx, "/i").idempotency_header(None)), &event("evt-off")).await;

    let [custom, off] = <[Received; 2]>::try_from(rx.received()).unwrap();
    assert_eq!(custom.header("x-request-id"), Some("evt-custom"));
    assert_eq!(custom.header("idempotency-key"), None);
    assert_eq!(off.header("idempotency-key"), None);
    assert_eq!(off.header("x-request-id"), None);
}

// ---------------------------------------------------------------------------------------
// What comes back, and what a running port makes of it.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_503_with_retry_after_reports_the_delay() {
    let rx = Receiver::with_script(|_, _| Answer::RetryAfter(503, "7".to_owned())).await;
    let report = attempt(&transport(local(&rx, "/r")), &event("evt-ra")).await;
    assert_eq!(
        report.observation,
        Observation::Http {
            status: 503,
            retry_after: Some(RetryAfter::Delay(Duration::from_secs(7)))
        }
    );
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    let rx = Receiver::start().await;
    let t = transport(local(&rx, "/gone"));
    drop(rx);
    let report = attempt(&t, &event("evt-refused")).await;
    assert_eq!(report.observation, Observation::Network(NetworkError::Connect));
}

#[tokio::test]
async fn the_ssrf_guard_refuses_private_destinations_by_default() {
    let e = ApiConfig::builder("http://127.0.0.1:9/{id}").build().unwrap_err();
    assert_eq!(e.field(), Some("api.url"));
    let t = ApiTransport::new(ApiConfig::builder("http://localhost:9/{id}").build().unwrap()).unwrap();
    let report = attempt(&t, &event("evt-ssrf")).await;
    assert_eq!(
        report.observation,
        Observation::Refused {
            retryable: false,
            reason: "destination_forbidden".to_owned()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attempt_carries_the_idempotency_key_and_the_same_bytes() {
    let rx = Receiver::with_script(|_, n| {
        if n < 2 {
            Answer::Status(503)
        } else {
            Answer::Status(201)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (herald, port) = start(local(&rx, "/orders/{id}").body(Body::Json).build().unwrap(), &dir).await;
    let e = event("evt-retried");
    port.send(e.clone()).await.unwrap();

    assert_eq!(settle(&port, &e).await.status, DeliveryStatus::Delivered);

    let got = rx.received_for("evt-retried");
    assert_eq!(got.len(), 3);
    for r in &got {
        assert_eq!(r.header("idempotency-key"), Some("evt-retried"));
        assert_eq!(r.path, "/orders/evt-retried");
        assert_eq!(r.body, got[0].body, "the same bytes on every attempt");
    }
    herald.shutdown(Duration::from_secs(1)).await;
}

/// Answers `409 Conflict` to `evt-409` and `202 Accepted` to everything else.
fn conflict_409_else_accepted_202(r: &Received, _: usize) -> Answer {
    if r.id == "evt-409" {
        Answer::Status(409)
    } else {
        Answer::Status(202)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_success_code_is_delivered_and_a_2xx_outside_the_set_is_permanent() {
    let rx = Receiver::with_script(conflict_409_else_accepted_202).await;
    let dir = tempfile::tempdir().unwrap();
    let config = local(&rx, "/c/{id}").success_codes([200, 201, 409]).build().unwrap();
    let (herald, port) = start(config, &dir).await;
    let (conflict, accepted) = (event("evt-409"), event("evt-202"));
    port.send(conflict.clone()).await.unwrap();
    port.send(accepted.clone()).await.unwrap();

    let done = settle(&port, &conflict).await;
    assert_eq!(done.status, DeliveryStatus::Delivered, "409 is in the success set");
    assert_eq!(done.attempts_made, 1);
    let done = settle(&port, &accepted).await;
    assert_eq!(done.status, DeliveryStatus::Failed, "202 is a 2xx outside the set");
    assert_eq!(done.attempts_made, 1);
    assert_eq!(done.last_failure.unwrap().code, "http_202");
    assert_eq!(rx.received().len(), 2, "neither is retried");
    herald.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_success_codes_a_409_fails_and_any_2xx_delivers() {
    let rx = Receiver::with_script(conflict_409_else_accepted_202).await;
    let dir = tempfile::tempdir().unwrap();
    let (herald, port) = start(local(&rx, "/c/{id}").build().unwrap(), &dir).await;
    let (conflict, accepted) = (event("evt-409"), event("evt-202"));
    port.send(conflict.clone()).await.unwrap();
    port.send(accepted.clone()).await.unwrap();
    assert_eq!(settle(&port, &conflict).await.status, DeliveryStatus::Failed);
    assert_eq!(settle(&port, &accepted).await.status, DeliveryStatus::Delivered);
    herald.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_delays_the_next_attempt() {
    let rx = Receiver::with_script(|_, n| {
        if n == 0 {
            Answer::RetryAfter(429, "1".to_owned())
        } else {
            Answer::Status(200)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (herald, port) = start(local(&rx, "/ra/{id}").build().unwrap(), &dir).await;
    let e = event("evt-retry-after");
    port.send(e.clone()).await.unwrap();

    assert_eq!(settle(&port, &e).await.status, DeliveryStatus::Delivered);

    let h = port.history(e.id()).await.unwrap().unwrap();
    assert_eq!(h.attempts.len(), 2);
    assert_eq!(h.attempts[0].outcome.code, "http_429");
    let waited = h.attempts[1].started_at.saturating_since(h.attempts[0].finished_at);
    // The policy alone would wait 50 ms.
    assert!(waited >= Duration::from_secs(1), "waited only {waited:?}");
    herald.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_port_works_behind_dyn_integration_port_with_auth_required() {
    let rx = Receiver::start().await;
    rx.require_header("authorization", "Bearer s3cret");
    let dir = tempfile::tempdir().unwrap();
    let (herald, port) = start(local(&rx, "/a/{id}").bearer_token("s3cret").build().unwrap(), &dir).await;
    let dynport: std::sync::Arc<dyn IntegrationPort> = std::sync::Arc::new(port.clone());
    let e = event("evt-dyn");
    dynport.send(e.clone()).await.unwrap();
    assert_eq!(settle(&port, &e).await.status, DeliveryStatus::Delivered);

    // The same receiver refuses a wrong token, and the port records a permanent 401.
    let dir2 = tempfile::tempdir().unwrap();
    let (herald2, wrong) = start(local(&rx, "/a/{id}").bearer_token("wrong").build().unwrap(), &dir2).await;
    let e2 = event("evt-wrong-token");
    wrong.send(e2.clone()).await.unwrap();
    let done = settle(&wrong, &e2).await;
    assert_eq!(
        (done.status, done.last_failure.unwrap().code.as_str()),
        (DeliveryStatus::Failed, "http_401")
    );
    herald.shutdown(Duration::from_secs(1)).await;
    herald2.shutdown(Duration::from_secs(1)).await;
}

// ---------------------------------------------------------------------------------------
// Configuration errors and secrecy.
// ---------------------------------------------------------------------------------------

#[test]
fn configuration_errors_name_the_field() {
    let url = "https://api.example.com/v1/{type}/{id}";
    let cases: Vec<(ApiConfigBuilder, &str, &str)> = vec![
        (
            ApiConfig::builder("https://api.example.com/{foo}"),
            "api.url",
            "unknown placeholder {foo}",
        ),
        (
            ApiConfig::builder("https://api.example.com/{id"),
            "api.url",
            "unbalanced braces",
        ),
        (ApiConfig::builder("https://{id}.example.com/"), "api.url", "host"),
        (
            ApiConfig::builder("ftp://api.example.com/{id}"),
            "api.url",
            "http and https",
        ),
        (
            ApiConfig::builder(url).method(Method::Get).body(Body::Json),
            "api.method",
            "GET cannot carry",
        ),
        (
            ApiConfig::builder(url).header("content-length", "1"),
            "api.headers[0]",
            "set by the transport",
        ),
        (
            ApiConfig::builder(url).bearer_token_env("HERALD_API_TEST_NOT_SET"),
            "api.auth",
            "environment variable HERALD_API_TEST_NOT_SET is not set",
        ),
        (
            ApiConfig::builder(url).basic_auth_env("HERALD_API_TEST_USER_NOT_SET", "CARGO_PKG_NAME"),
            "api.auth",
            "HERALD_API_TEST_USER_NOT_SET",
        ),
        (
            ApiConfig::builder(url).success_codes([200, 100]),
            "api.success_codes",
            "100",
        ),
        (ApiConfig::builder(url).success_codes([]), "api.success_codes", "empty"),
        (
            ApiConfig::builder(url).idempotency_header(Some("bad header")),
            "api.idempotency_header",
            "not a valid header name",
        ),
    ];
    for (builder, field, words) in cases {
        let e = builder.build().expect_err(field);
        assert_eq!(e.field(), Some(field), "{e}");
        assert!(e.to_string().contains(words), "{e}");
    }
    assert_eq!("TRACE".parse::<Method>().unwrap_err().field(), Some("api.method"));
}

#[test]
fn debug_output_holds_no_secret() {
    let config = ApiConfig::builder("https://api.example.com/v1/{id}?api_key=querysecret")
        .bearer_token("bearersecret")
        .header("x-api-key", "headersecret")
        .build()
        .unwrap();
    let basic = ApiConfig::builder("https://api.example.com/v1/{id}")
        .basic_auth("user", "passwordsecret")
        .build()
        .unwrap();
    let texts = [
        format!("{config:?}"),
        format!("{:?}", ApiTransport::new(config.clone()).unwrap()),
        format!("{:?}", PortConfig::api("p", config).unwrap()),
        format!("{basic:?}"),
        format!(
            "{:?}",
            ApiConfig::builder("https://x.example/?k=querysecret")
                .bearer_token("bearersecret")
                .basic_auth("u", "passwordsecret")
        ),
    ];
    for text in &texts {
        for secret in ["querysecret", "bearersecret", "headersecret", "passwordsecret"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    assert!(
        texts[0].contains("x-api-key") && texts[0].contains("bearer [redacted]"),
        "{}",
        texts[0]
    );
}

// ---------------------------------------------------------------------------------------
// The `herald` command with an API port.
// ---------------------------------------------------------------------------------------

#[cfg(feature = "cli")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_herald_command_delivers_to_an_api_port_with_a_token_from_the_environment() {
    let rx = Receiver::with_script(|_, n| {
        if n == 0 {
            Answer::Status(503)
        } else {
            Answer::Status(409)
        }
    })
    .await;
    rx.require_header("authorization", "Bearer from-the-env");
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"store = "herald.redb"

[ports.billing]
kind = "api"
url = "http://127.0.0.1:{port}/v1/{{type}}/{{id}}"
method = "put"
body = "json"
bearer_token_env = "HERALD_API_CLI_TOKEN"
success_codes = [200, 201, 409]
idempotency_header = "X-Request-Id"
headers = {{ "x-tenant" = "acme" }}
allow_private_network = true
timeout = "2s"

[ports.billing.retry]
schedule = ["50ms"]
jitter = "none"
max_attempts = 3
"#,
        port = rx.port()
    );
    std::fs::write(dir.path().join("herald.toml"), config).unwrap();
    let herald = |args: &[&str], token: Option<&str>| {
        let mut c = assert_cmd::Command::cargo_bin("herald").unwrap();
        c.arg("--config")
            .arg(dir.path().join("herald.toml"))
            .args(args)
            .env_remove("HERALD_API_CLI_TOKEN")
            .timeout(Duration::from_secs(60));
        if let Some(t) = token {
            c.env("HERALD_API_CLI_TOKEN", t);
        }
        c
    };

    let line = r#"{"type":"invoice.paid","id":"inv/7","payload":{"amount":7},"occurred_at":"2026-01-02T03:04:05Z"}"#;
    let out = herald(&["deliver"], Some("from-the-env"))
        .write_stdin(line)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("from-the-env"), "the token is never printed: {text}");

    // The receiver files requests by `idempotency-key`; this port sends `x-request-id`.
    let got = rx.received();
    assert_eq!(got.len(), 2, "one 503, then 409 = delivered");
    assert_eq!(got[1].method, "PUT");
    assert_eq!(got[1].path, "/v1/invoice.paid/inv%2F7");
    assert_eq!(got[1].header("x-request-id"), Some("inv/7"));
    assert_eq!(got[1].header("x-tenant"), Some("acme"));
    let v: serde_json::Value = serde_json::from_slice(&got[1].body).unwrap();
    assert_eq!(v["data"], serde_json::json!({"amount": 7}));

    // Without the variable, the configuration is refused naming the key and the variable.
    let out = herald(&["deliver"], None).write_stdin(line).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ports.billing.api.auth"), "{err}");
    assert!(err.contains("HERALD_API_CLI_TOKEN"), "{err}");
}
