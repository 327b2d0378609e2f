//! The configuration file (TOML): where the store is and which ports deliver where.
//! Every error names the file, the key and what is wrong.
//!
//! ```toml
//! store = "herald.redb"              # relative to this file
//!
//! [ports.orders]
//! kind = "webhook"
//! url = "https://example.com/hooks/orders"
//! secret_env = "ORDERS_WEBHOOK_SECRET"   # or: secret = "whsec_…", secrets = [..]
//! timeout = "10s"
//! max_in_flight = 32
//! payload_limit = 262144
//!
//! [ports.orders.retry]
//! schedule = ["5s", "5m", "30m", "2h"]   # or: exponential = { base = "1s", factor = 2.0, cap = "10m" }
//! jitter = "equal"                       # none | full | equal | decorrelated
//! max_attempts = 5
//! window = "24h"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use herald::core::Jitter;
use herald::transport::webhook::WebhookConfig;
use herald::{ConfigError, PortConfig, RetryPolicy};
use serde::Deserialize;

/// The whole file.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct File {
    store: PathBuf,
    #[serde(default)]
    ports: BTreeMap<String, PortFile>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct PortFile {
    kind: String,
    url: Option<String>,
    secret: Option<String>,
    secret_env: Option<String>,
    #[serde(default)]
    secrets: Vec<String>,
    cloudevents_source: Option<String>,
    #[serde(default)]
    allow_private_network: bool,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    timeout: Option<String>,
    max_in_flight: Option<u32>,
    payload_limit: Option<usize>,
    seed: Option<u64>,
    retry: Option<RetryFile>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RetryFile {
    schedule: Option<Vec<String>>,
    exponential: Option<ExponentialFile>,
    jitter: Option<String>,
    max_attempts: Option<u32>,
    window: Option<String>,
    retry_after_cap: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct ExponentialFile {
    base: String,
    factor: f64,
    cap: String,
}

/// A loaded configuration: the store path and every port, validated.
pub(crate) struct Config {
    pub(crate) store: PathBuf,
    pub(crate) ports: Vec<(String, PortConfig, u32)>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.ports.iter().map(|(n, _, _)| n.as_str()).collect();
        f.debug_struct("Config")
            .field("store", &self.store)
            .field("ports", &names)
            .finish()
    }
}

impl Config {
    /// Reads and validates `path`; secrets may come from the environment.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
        let file: File =
            toml::from_str(&text).map_err(|e| anyhow!("{}: {}", path.display(), e.to_string().trim_end()))?;
        let at = |key: &str, what: String| anyhow!("{}: {key}: {what}", path.display());
        let base = path.parent().unwrap_or(Path::new("."));
        let store = if file.store.is_absolute() {
            file.store
        } else {
            base.join(file.store)
        };
        if file.ports.is_empty() {
            bail!(
                "{}: ports: no port is configured (add a [ports.NAME] table)",
                path.display()
            );
        }
        let mut ports = Vec::new();
        for (name, p) in file.ports {
            let key = |k: &str| format!("ports.{name}.{k}");
            let policy = retry_policy(&p, &key).map_err(|(k, what)| at(&k, what))?;
            let max_attempts = policy.get_max_attempts();
            let port = match p.kind.as_str() {
                "webhook" => {
                    let url = p
                        .url
                        .as_deref()
                        .ok_or_else(|| at(&key("url"), "missing (a webhook needs a url)".into()))?;
                    let mut b = WebhookConfig::builder(url).allow_private_network(p.allow_private_network);
                    let mut secrets = p.secrets.clone();
                    secrets.extend(p.secret.clone());
                    if let Some(var) = &p.secret_env {
                        let v = std::env::var(var)
                            .map_err(|_| at(&key("secret_env"), format!("environment variable {var} is not set")))?;
                        secrets.push(v);
                    }
                    for s in &secrets {
                        b = b.secret(s);
                    }
                    for (h, v) in &p.headers {
                        b = b.header(h, v);
                    }
                    if let Some(source) = &p.cloudevents_source {
                        b = b.cloudevents(source);
                    }
                    let webhook = b.build().map_err(|e| named(path, &name, e))?;
                    PortConfig::webhook(name.clone(), webhook).map_err(|e| named(path, &name, e))?
                }
                "api" | "nats" | "amqp" => {
                    return Err(at(
                        &key("kind"),
                        format!(
                            "{:?} transports are not in this build yet; available: \"webhook\"",
                            p.kind
                        ),
                    ));
                }
                other => {
                    return Err(at(
                        &key("kind"),
                        format!("unknown kind {other:?}; expected \"webhook\""),
                    ));
                }
            };
            let mut port = port.policy(policy);
            if let Some(n) = p.max_in_flight {
                port = port.max_in_flight(n);
            }
            if let Some(n) = p.payload_limit {
                port = port.payload_limit(n);
            }
            if let Some(s) = p.seed {
                port = port.seed(s);
            }
            ports.push((name, port, max_attempts));
        }
        Ok(Config { store, ports })
    }

    /// The policy's max attempts of a port (for attempts-remaining in outputs).
    pub(crate) fn max_attempts(&self, port: &str) -> u32 {
        self.ports
            .iter()
            .find(|(n, _, _)| n == port)
            .map_or(RetryPolicy::default().get_max_attempts(), |(_, _, m)| *m)
    }

    /// The port names, in file order (sorted).
    pub(crate) fn port_names(&self) -> Vec<String> {
        self.ports.iter().map(|(n, _, _)| n.clone()).collect()
    }
}

fn named(path: &Path, port: &str, e: ConfigError) -> anyhow::Error {
    match e {
        ConfigError::Invalid { field, reason } => anyhow!("{}: ports.{port}.{field}: {reason}", path.display()),
        other => anyhow!("{}: ports.{port}: {other}", path.display()),
    }
}

fn duration(key: String, text: &str) -> Result<Duration, (String, String)> {
    humantime::parse_duration(text)
        .map_err(|e| (key, format!("{text:?} is not a duration ({e}); e.g. \"30s\", \"5m\"")))
}

fn retry_policy(p: &PortFile, key: &dyn Fn(&str) -> String) -> Result<RetryPolicy, (String, String)> {
    let r = p.retry.as_ref();
    let mut policy = match (
        r.and_then(|r| r.schedule.as_ref()),
        r.and_then(|r| r.exponential.as_ref()),
    ) {
        (Some(_), Some(_)) => {
            return Err((key("retry"), "set either schedule or exponential, not both".into()));
        }
        (Some(s), None) => {
            let steps = s
                .iter()
                .enumerate()
                .map(|(i, t)| duration(key(&format!("retry.schedule[{i}]")), t))
                .collect::<Result<Vec<_>, _>>()?;
            RetryPolicy::fixed(steps)
        }
        (None, Some(e)) => RetryPolicy::exponential(
            duration(key("retry.exponential.base"), &e.base)?,
            e.factor,
            duration(key("retry.exponential.cap"), &e.cap)?,
        ),
        (None, None) => RetryPolicy::default(),
    };
    if let Some(r) = r {
        if let Some(j) = &r.jitter {
            policy = policy.jitter(match j.as_str() {
                "none" => Jitter::None,
                "full" => Jitter::Full,
                "equal" => Jitter::Equal,
                "decorrelated" => Jitter::Decorrelated,
                other => {
                    return Err((
                        key("retry.jitter"),
                        format!("unknown jitter {other:?}; expected none, full, equal or decorrelated"),
                    ));
                }
            });
        }
        if let Some(n) = r.max_attempts {
            policy = policy.max_attempts(n);
        }
        if let Some(w) = &r.window {
            policy = policy.retry_window(Some(duration(key("retry.window"), w)?));
        }
        if let Some(c) = &r.retry_after_cap {
            policy = policy.retry_after_cap(duration(key("retry.retry_after_cap"), c)?);
        }
    }
    if let Some(t) = &p.timeout {
        policy = policy.attempt_timeout(duration(key("timeout"), t)?);
    }
    policy.validate().map_err(|e| (key("retry"), e.to_string()))?;
    Ok(policy)
}
