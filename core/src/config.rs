//! The engine's settings for one port, checked once when the port is built.

use serde::{Deserialize, Serialize};

use crate::classify::Classifier;
use crate::retry::{PolicyError, RetryPolicy};

/// The settings of one port's engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// When and how often to retry.
    pub policy: RetryPolicy,
    /// What attempt results mean.
    pub classifier: Classifier,
    /// Most attempts in flight at once on this port.
    pub max_in_flight: u32,
    /// Largest payload accepted by `send`, in bytes.
    pub payload_limit: usize,
    /// Seed of the jitter function; the same seed gives the same schedule.
    pub seed: u64,
}

/// An invalid engine configuration; each variant names the setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The retry policy is invalid.
    #[error("retry policy: {0}")]
    Policy(#[from] PolicyError),
    /// `max_in_flight` is 0: nothing could ever be attempted.
    #[error("max_in_flight must be at least 1")]
    ZeroConcurrency,
    /// `payload_limit` is 0: nothing could ever be sent.
    #[error("payload_limit must be at least 1 byte")]
    ZeroPayloadLimit,
}

impl Default for EngineConfig {
    /// The default policy, 64 attempts in flight, a 1 MiB payload limit and seed 0.
    fn default() -> Self {
        EngineConfig {
            policy: RetryPolicy::default(),
            classifier: Classifier::default(),
            max_in_flight: 64,
            payload_limit: 1 << 20,
            seed: 0,
        }
    }
}

impl EngineConfig {
    /// Checks every setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.policy.validate()?;
        if self.max_in_flight == 0 {
            return Err(ConfigError::ZeroConcurrency);
        }
        if self.payload_limit == 0 {
            return Err(ConfigError::ZeroPayloadLimit);
        }
        Ok(())
    }
}
