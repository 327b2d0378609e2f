//! The webhook transport: POSTs each event to one URL the way Standard Webhooks receivers
//! expect (`webhook-id`, `webhook-timestamp`, `webhook-signature`), optionally with
//! CloudEvents binary-mode headers, and reports the HTTP status, `Retry-After` and the start
//! of the body for the core to classify.
//!
//! | file | holds |
//! |---|---|
//! | `config.rs` | [`WebhookConfig`] and its builder: validation of URL, secrets, headers |
//! | `signature.rs` | [`sign`], [`verify`], [`WebhookSecret`]: Standard Webhooks HMAC |
//! | `cloudevents.rs` | the `ce-*` headers |
//! | `request.rs` | the headers of one attempt |
//! | `client.rs` | [`WebhookTransport`]: the reqwest client and the attempt |
//!
//! The client setup, the SSRF guard ([`forbidden_class`]) and the translation of responses
//! into facts are shared with the API transport (`transport/http/`).

mod client;
mod cloudevents;
mod config;
mod request;
mod signature;

pub use crate::transport::http::ssrf::{AddressClass, ForbiddenDestination, forbidden_class};
pub use client::WebhookTransport;
pub use config::{WebhookConfig, WebhookConfigBuilder};
pub use signature::{SecretError, WebhookSecret, sign, signature_header, verify};
