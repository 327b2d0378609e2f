//! Errors of building and starting Herald. Errors of sending and querying are the core's
//! [`SendError`](herald_core::SendError) and [`QueryError`](herald_core::QueryError).

/// A configuration value that cannot work; `field` names it the way the configuration
/// file does (e.g. `ports.orders.webhook.url`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A value is missing, malformed or out of range.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field at fault.
        field: String,
        /// What is wrong with it (never the value of a secret).
        reason: String,
    },
    /// The retry policy or engine settings are invalid.
    #[error("{field}: {source}")]
    Engine {
        /// The field at fault.
        field: String,
        /// The core's reason.
        #[source]
        source: herald_core::ConfigError,
    },
    /// Two ports have the same name.
    #[error("port {0:?} is configured twice")]
    DuplicatePort(String),
}

impl ConfigError {
    /// An invalid field.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The field at fault, if the error names one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { field, .. } | ConfigError::Engine { field, .. } => Some(field),
            ConfigError::DuplicatePort(_) => None,
        }
    }
}

/// Why Herald could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be opened.
    #[error(transparent)]
    Open(#[from] herald_store::OpenError),
    /// The unfinished deliveries could not be loaded.
    #[error("loading the unfinished deliveries of port {port:?}: {source}")]
    Restore {
        /// The port.
        port: String,
        /// The store's reason.
        #[source]
        source: herald_store::ReadError,
    },
    /// No runtime to start on (e.g. `start_tokio` outside a tokio runtime).
    #[error("no {0} runtime is running in this context")]
    NoRuntime(&'static str),
    /// The driver loop's thread could not be started (the process's thread limit).
    #[error("starting the driver thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Why a redrive did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedriveError {
    /// The port has no delivery of that event.
    #[error("no delivery of event {0} on this port")]
    NotFound(String),
    /// The engine refused (the delivery is not terminal, or shutdown began).
    #[error(transparent)]
    Refused(#[from] herald_core::InputError),
    /// The redrive could not be recorded; it may or may not have happened.
    #[error("the redrive could not be recorded: {0}")]
    Unrecorded(String),
    /// The store could not be read.
    #[error("the delivery store could not be read: {0}")]
    Store(String),
    /// The port's driver has stopped.
    #[error("the port is closed")]
    Closed,
}

/// Why waiting for a terminal result failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// The port has no delivery of that event.
    #[error("no delivery of event {0} on this port")]
    NotFound(String),
    /// The store could not be read.
    #[error("the delivery store could not be read: {0}")]
    Store(String),
    /// The driver stopped before the delivery ended (it resumes on the next start).
    #[error("the port closed before the delivery ended")]
    Closed,
}
