//! The `herald` binary, run as a user would.

use assert_cmd::Command;

#[test]
fn the_demo_delivers_retries_and_reports_where_its_database_is() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("herald")
        .unwrap()
        .args(["demo", "--events", "300", "--quiet", "--dir"])
        .arg(dir.path())
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand"));
}
