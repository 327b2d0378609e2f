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
//! | `ssrf.rs` | the destination guard: [`forbidden_class`] and the filtering resolver |
//! | `observe.rs` | response or error to [`AttemptReport`](herald_core::AttemptReport) facts |
//! | `client.rs` | [`WebhookTransport`]: the reqwest client and the attempt |

mod client;
mod cloudevents;
mod config;
mod observe;
mod request;
mod signature;
mod ssrf;

pub use client::WebhookTransport;
pub use config::{WebhookConfig, WebhookConfigBuilder};
pub use signature::{SecretError, WebhookSecret, sign, signature_header, verify};
pub use ssrf::{AddressClass, ForbiddenDestination, forbidden_class};
