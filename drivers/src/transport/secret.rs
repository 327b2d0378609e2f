//! Credentials given in the configuration or read from the environment when it is built.
//! Errors name the field and the variable, never a value.

use crate::error::ConfigError;

/// Where a credential comes from.
#[derive(Clone)]
pub(crate) enum Source {
    /// Given in the configuration.
    Value(String),
    /// Read from this environment variable when the configuration is built.
    Env(String),
}

/// Reads a credential (or a URL that may hold one). Errors name `field` and the variable,
/// never a value.
pub(crate) fn resolve(field: &str, source: &Source, what: &str) -> Result<String, ConfigError> {
    let bad = |reason: String| ConfigError::invalid(field, reason);
    let value = match source {
        Source::Value(v) => v.clone(),
        Source::Env(var) => {
            if var.is_empty() || var.contains(['=', '\0']) {
                return Err(bad(format!(
                    "{var:?} is not a valid environment variable name (for the {what})"
                )));
            }
            match std::env::var(var) {
                Ok(v) => v,
                Err(std::env::VarError::NotPresent) => {
                    return Err(bad(format!(
                        "environment variable {var} is not set (it should hold the {what})"
                    )));
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(bad(format!(
                        "environment variable {var} is not valid UTF-8 (it should hold the {what})"
                    )));
                }
            }
        }
    };
    if value.is_empty() {
        let from = match source {
            Source::Value(_) => String::new(),
            Source::Env(var) => format!(" (from environment variable {var})"),
        };
        return Err(bad(format!("the {what} is empty{from}")));
    }
    Ok(value)
}
