//! The `herald` binary, run as a user would, against a local receiver.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;
use herald_tests::receiver::{Answer, Receiver};

/// A configuration file and its store in a temporary folder.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(receiver: &Receiver, max_attempts: u32) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            r#"store = "herald.redb"

[ports.hooks]
kind = "webhook"
url = "{url}"
secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
allow_private_network = true
timeout = "2s"

[ports.hooks.retry]
schedule = ["50ms"]
jitter = "none"
max_attempts = {max_attempts}
"#,
            url = receiver.url()
        );
        std::fs::write(dir.path().join("herald.toml"), config).unwrap();
        Setup { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("herald.toml")
    }

    fn herald(&self) -> Command {
        let mut c = Command::cargo_bin("herald").unwrap();
        c.arg("--config").arg(self.config()).timeout(Duration::from_secs(60));
        c
    }

    fn deliver(&self, lines: &str) -> Output {
        self.herald()
            .arg("deliver")
            .write_stdin(lines.to_owned())
            .output()
            .unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.herald().args(args).output().unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn events(ids: std::ops::Range<u32>) -> String {
    ids.map(|i| format!(r#"{{"type":"order.created","id":"evt-{i}","payload":{{"order":{i}}},"occurred_at":"2026-01-02T03:04:05Z"}}"#))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliver_with_transient_failures_exits_0_and_status_says_delivered() {
    let receiver = Receiver::with_script(|_, n| {
        if n == 0 {
            Answer::Status(503)
        } else {
            Answer::Status(204)
        }
    })
    .await;
    receiver.verify_with("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
    let s = Setup::new(&receiver, 5);
    let out = s.deliver(&events(0..20));
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stdout).contains("hooks        delivered  20"),
        "{}",
        text(&out.stdout)
    );
    let out = s.run(&["status", "evt-3", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["status"], "delivered");
    assert_eq!(v[0]["attempts_made"], 2);
    assert_eq!(receiver.received_for("evt-3").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_400_exits_1_with_the_reason() {
    let receiver = Receiver::with_script(|_, _| Answer::Status(400)).await;
    let s = Setup::new(&receiver, 5);
    let out = s.deliver(&events(0..1));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("hooks        failed     1"),
        "{}",
        text(&out.stdout)
    );
    let out = s.run(&["status", "evt-0"]);
    assert!(
        text(&out.stdout).contains("HTTP 400 Bad Request (http_400)"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_lines_are_reported_by_number_and_the_rest_still_go_out() {
    let receiver = Receiver::start().await;
    let s = Setup::new(&receiver, 5);
    let input = format!("{}\nnot json\n{{\"payload\":1}}\n{}", events(0..1), events(1..2));
    let out = s.deliver(&input);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("line 2: expected ident"), "{err}");
    assert!(err.contains("line 3: missing field `type`"), "{err}");
    assert!(
        text(&out.stdout).contains("2 events read, 2 invalid lines"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_and_missing_database_are_clear_errors_with_exit_2() {
    let receiver = Receiver::start().await;
    let s = Setup::new(&receiver, 5);
    let out = s.run(&["status", "evt-0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("herald.redb: no database here"),
        "{}",
        text(&out.stderr)
    );

    let config = std::fs::read_to_string(s.config())
        .unwrap()
        .replace("max_attempts = 5", "max_attempts = 0");
    std::fs::write(s.config(), config).unwrap();
    let out = s.run(&["serve"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("herald.toml: ports.hooks.retry: max_attempts must be at least 1"),
        "{err}"
    );

    std::fs::write(
        s.config(),
        "store = 'x.redb'\n[ports.a]\nkind = 'webhook'\nurll = 'http://x'\n",
    )
    .unwrap();
    let err = text(&s.run(&["serve"]).stderr);
    assert!(
        err.contains("herald.toml") && err.contains("unknown field `urll`"),
        "{err}"
    );
    assert!(err.contains("line 4"), "{err}");

    std::fs::write(
        s.config(),
        "store = 'x.redb'\n[ports.a]\nkind = 'webhook'\nurl = 'ftp://x'\n",
    )
    .unwrap();
    let err = text(&s.run(&["serve"]).stderr);
    assert!(err.contains("herald.toml: ports.a.webhook.url"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_sends_an_exhausted_event_again() {
    let receiver = Receiver::with_script(|_, _| Answer::Status(503)).await;
    let s = Setup::new(&receiver, 2);
    let out = s.deliver(&events(0..1));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(receiver.received_for("evt-0").len(), 2);
    let out = s.run(&["redrive", "--status", "exhausted"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    receiver.set_script(|_, _| Answer::Status(200));
    let out = s.deliver("");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = s.run(&["history", "evt-0", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["status"], "delivered");
    assert_eq!(v[0]["cycle"], 1);
    assert_eq!(v[0]["attempts"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_deliver_is_finished_by_the_next_run() {
    let receiver = Receiver::with_script(|_, _| Answer::Hang).await;
    let s = Setup::new(&receiver, 5);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("herald"))
        .arg("--config")
        .arg(s.config())
        .args(["deliver", "--input"])
        .arg(write_input(s.dir.path(), &events(0..30)))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..500 {
        if receiver.received().len() >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let accepted = receiver.received().len();
    assert!(accepted >= 10, "attempts were in flight when killed ({accepted})");
    receiver.set_script(|_, _| Answer::Status(200));
    // `serve` resumes what the killed process had accepted: every event whose attempt
    // was cut is delivered without being sent again.
    let seen: std::collections::BTreeSet<String> = receiver.received().into_iter().map(|r| r.id).collect();
    let mut serve = std::process::Command::new(assert_cmd::cargo::cargo_bin("herald"))
        .arg("--config")
        .arg(s.config())
        .arg("serve")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let delivered = |id: &str| {
        receiver
            .received_for(id)
            .iter()
            .any(|r| matches!(r.answer, Answer::Status(200)))
    };
    for _ in 0..2000 {
        if seen.iter().all(|id| delivered(id)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    serve.kill().unwrap();
    serve.wait().unwrap();
    let missing: Vec<&String> = seen.iter().filter(|id| !delivered(id)).collect();
    assert!(missing.is_empty(), "serve did not resume {missing:?}");
    // Sending the whole input again is harmless: re-sends are idempotent.
    let out = s.deliver(&events(0..30));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("hooks        delivered  30"),
        "{}",
        text(&out.stdout)
    );
}

fn write_input(dir: &Path, lines: &str) -> PathBuf {
    let p = dir.join("events.jsonl");
    std::fs::write(&p, lines).unwrap();
    p
}

#[test]
fn the_demo_delivers_retries_and_reports_where_its_database_is() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("herald")
        .unwrap()
        .args(["demo", "--events", "300", "--quiet", "--dir"])
        .arg(dir.path())
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "demo failed: {stdout}\n{}", text(&out.stderr));
    // Events 20, 120 and 220 are the receiver's permanent 400s; all others are delivered.
    let row = |status: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(status))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<u64>().ok())
    };
    assert_eq!(row("delivered"), Some(297), "{stdout}");
    assert_eq!(row("failed"), Some(3), "{stdout}");
    assert!(
        stdout.contains("http_503") && stdout.contains("http_429") && stdout.contains("timeout"),
        "{stdout}"
    );
    assert!(stdout.contains("signatures rejected by the receiver: 0"), "{stdout}");
    let db = dir.path().join("herald-demo.redb");
    assert!(stdout.contains(&format!("database: {}", db.display())), "{stdout}");
    assert!(db.exists());
}

#[test]
fn an_unknown_command_is_a_usage_error() {
    let out = Command::cargo_bin("herald")
        .unwrap()
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unrecognized subcommand"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_history_and_list_outputs_are_stable() {
    let receiver = Receiver::with_script(|r, n| match (r.id.as_str(), n) {
        ("evt-0", 0) => Answer::RetryAfter(503, "0".into()),
        ("evt-1", _) => Answer::Status(400),
        _ => Answer::Status(204),
    })
    .await;
    let s = Setup::new(&receiver, 5);
    assert_eq!(s.deliver(&events(0..2)).status.code(), Some(1));
    let filters = vec![
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", "[time]"),
        (r"\s+\d+ ms", " [n] ms"),
        (r#""duration_ms": \d+"#, r#""duration_ms": "[n]""#),
    ];
    let out = |args: &[&str]| text(&s.run(args).stdout);
    insta::with_settings!({ filters => filters }, {
        insta::assert_snapshot!("status", out(&["status", "evt-0"]));
        insta::assert_snapshot!("history", out(&["history", "evt-0"]));
        insta::assert_snapshot!("list_failed", out(&["list", "--status", "failed"]));
        insta::assert_snapshot!("history_json", out(&["history", "evt-1", "--json"]));
        insta::assert_snapshot!("list_json", out(&["list", "--json"]));
    });
}

/// Writes `text` as the configuration and returns what `herald serve` printed to stderr.
fn config_error(s: &Setup, text: &str) -> String {
    std::fs::write(s.config(), text).unwrap();
    let out = s.run(&["serve"]);
    assert_eq!(out.status.code(), Some(2), "a configuration error exits 2");
    self::text(&out.stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_port_settings_are_checked_and_each_error_names_its_key() {
    let receiver = Receiver::start().await;
    let s = Setup::new(&receiver, 5);
    let head = "store = 'x.redb'\n[ports.a]\nkind = 'nats'\nurl = 'nats://127.0.0.1:4222'\n";

    let err = config_error(&s, head);
    assert!(err.contains("herald.toml: ports.a.subject: missing"), "{err}");
    let err = config_error(&s, &format!("{head}subject = 'events.>'\n"));
    assert!(
        err.contains("ports.a.nats.subject") && err.contains("wildcard"),
        "{err}"
    );
    let err = config_error(
        &s,
        &format!("{head}subject = 'e'\ntoken_env = 'HERALD_CLI_TEST_UNSET'\n"),
    );
    assert!(
        err.contains("ports.a.nats.token") && err.contains("HERALD_CLI_TEST_UNSET"),
        "{err}"
    );
    let err = config_error(&s, &format!("{head}subject = 'e'\npassword = 'pw'\n"));
    assert!(err.contains("ports.a.user: missing"), "{err}");
    assert!(!err.contains("pw'"), "no secret in errors: {err}");
    let err = config_error(&s, &format!("{head}subject = 'e'\nsecret = 'whsec_x'\n"));
    assert!(
        err.contains("ports.a.secret: only read on kind = \"webhook\" ports"),
        "{err}"
    );
    let err = config_error(
        &s,
        "store = 'x.redb'\n[ports.a]\nkind = 'webhook'\nurl = 'http://x'\nsubject = 'e'\n",
    );
    assert!(
        err.contains("ports.a.subject: only read on kind = \"nats\" ports"),
        "{err}"
    );
    let err = config_error(
        &s,
        "store = 'x.redb'\n[ports.a]\nkind = 'webhook'\nurl = 'http://x'\npassword_env = 'P'\n",
    );
    assert!(
        err.contains("ports.a.password_env: only read on kind = \"nats\" or kind = \"amqp\" ports"),
        "a key two kinds read names both: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliver_publishes_every_line_to_a_jetstream_stream() {
    let Some(_) = herald_tests::brokers::require("NATS", herald_tests::brokers::NATS) else {
        return;
    };
    let client = async_nats::connect(herald_tests::brokers::NATS).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let name = herald_tests::brokers::unique("herald_cli").replace('-', "_");
    js.create_stream(async_nats::jetstream::stream::Config {
        name: name.clone(),
        subjects: vec![format!("{name}.>")],
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = Setup { dir };
    std::fs::write(
        s.config(),
        format!("store = 'h.redb'\n[ports.stream]\nkind = 'nats'\nurl = 'nats://127.0.0.1:4222'\nsubject = '{name}.{{type}}'\n"),
    )
    .unwrap();

    let out = s.deliver(&events(0..3));

    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut stream = js.get_stream(&name).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 3);
    let status = s.run(&["status", "evt-2"]);
    assert!(text(&status.stdout).contains("delivered"), "{}", text(&status.stdout));
    let _ = js.delete_stream(&name).await;
}

/// Runs `herald serve` (which starts by loading the configuration) on `config` and returns
/// the exit code and stderr, the file's folder shown as `[dir]`.
fn serve_with(config: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("herald.toml"), config).unwrap();
    let out = Command::cargo_bin("herald")
        .unwrap()
        .arg("--config")
        .arg(dir.path().join("herald.toml"))
        .arg("serve")
        .env_remove("HERALD_CLI_AMQP_PASSWORD_UNSET")
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let err = text(&out.stderr).replace(&dir.path().display().to_string(), "[dir]");
    (out.status.code(), err)
}

#[test]
fn amqp_port_errors_name_the_port_and_the_field() {
    let amqp = |extra: &str| {
        format!("store = 'x.redb'\n[ports.events]\nkind = 'amqp'\nurl = 'amqp://guest:guest@127.0.0.1/%2f'\n{extra}\n")
    };
    let cases = [
        amqp("routing_key = 'orders.{tenant}'"),
        amqp("exchange = 'has space'"),
        "store = 'x.redb'\n[ports.events]\nkind = 'amqp'\nurl = 'amqp://guest@127.0.0.1/%2f'\npassword_env = \
         'HERALD_CLI_AMQP_PASSWORD_UNSET'\n"
            .to_owned(),
        amqp("url_env = 'AMQP_URL'"),
        amqp("secret = 'whsec_x'"),
        "store = 'x.redb'\n[ports.hooks]\nkind = 'webhook'\nurl = 'https://example.com/h'\nexchange = 'orders'\n"
            .to_owned(),
    ];
    let mut errors = Vec::new();
    for config in &cases {
        let (code, err) = serve_with(config);
        assert_eq!(code, Some(2), "{err}");
        errors.push(err.trim_end().to_owned());
    }
    insta::assert_snapshot!("amqp_config_errors", errors.join("\n"));
}

#[test]
fn an_amqp_port_from_the_config_file_publishes_to_rabbitmq() {
    use herald_tests::brokers;
    use herald_tests::rabbitmq::{self, Routed};
    if brokers::require("RabbitMQ", brokers::RABBITMQ).is_none() {
        return;
    }
    let routed = futures_lite::future::block_on(Routed::declare("herald-cli", Default::default()));
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "store = 'herald.redb'\n[ports.events]\nkind = 'amqp'\nurl_env = 'HERALD_CLI_AMQP_URL'\nexchange = '{}'\n\
         routing_key = 'cli.{{type}}'\ntimeout = '2s'\n",
        routed.exchange
    );
    std::fs::write(dir.path().join("herald.toml"), config).unwrap();
    let herald = |args: &[&str]| {
        let mut c = Command::cargo_bin("herald").unwrap();
        c.arg("--config")
            .arg(dir.path().join("herald.toml"))
            .args(args)
            .env("HERALD_CLI_AMQP_URL", rabbitmq::url())
            .timeout(Duration::from_secs(60));
        c
    };

    let out = herald(&["deliver"]).write_stdin(events(0..1)).output().unwrap();

    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let message = futures_lite::future::block_on(routed.next(Duration::from_secs(5))).expect("the event in the queue");
    assert_eq!(message.delivery.routing_key.as_str(), "cli.order.created");
    let id = message.delivery.properties.message_id().clone().map(String::from);
    assert_eq!(id.as_deref(), Some("evt-0"));
    assert_eq!(message.delivery.data, br#"{"order":0}"#);
    let status = text(&herald(&["status", "evt-0"]).output().unwrap().stdout);
    assert!(status.contains("delivered"), "{status}");
    assert!(!status.contains("guest"), "no credential in the output: {status}");
}

/// The configuration example in README.md, as a newcomer would copy it.
fn readme_config() -> String {
    let readme = include_str!("../../README.md");
    let start = readme.find("```toml\n").expect("a toml block in the README") + "```toml\n".len();
    let end = start + readme[start..].find("```").expect("the block's end");
    readme[start..end].to_owned()
}

#[test]
fn the_readme_configuration_example_is_valid_and_names_every_kind() {
    let config = readme_config();
    for kind in ["webhook", "api", "nats", "amqp"] {
        assert!(
            config.contains(&format!("kind = \"{kind}\"")),
            "the example shows kind {kind}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("herald.toml"), &config).unwrap();

    let out = Command::cargo_bin("herald")
        .unwrap()
        .arg("--config")
        .arg(dir.path().join("herald.toml"))
        .args(["status", "evt-0"])
        .env("ORDERS_WEBHOOK_SECRET", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
        .env("BILLING_TOKEN", "t0ken")
        .env("NATS_TOKEN", "t0ken")
        .env("RABBITMQ_PASSWORD", "pw")
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();

    // The configuration loads; what stops the command is the store it names, not yet made.
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("herald.redb: no database here"), "{err}");
}
