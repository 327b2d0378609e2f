//! The REST API transport: sends each event to a URL built from a template, with the
//! method, body, headers and credentials the API expects, and an idempotency header
//! carrying the event id on every attempt.
//!
//! ```no_run
//! # fn main() -> Result<(), herald::ConfigError> {
//! use herald::PortConfig;
//! use herald::transport::api::{ApiConfig, Body, Method};
//!
//! let config = ApiConfig::builder("https://api.example.com/v1/orders/{type}/{id}")
//!     .method(Method::Put)
//!     .body(Body::Json)
//!     .bearer_token_env("BILLING_API_TOKEN")
//!     .header("x-tenant", "acme")
//!     .success_codes([200, 201, 409])
//!     .build()?;
//! let port = PortConfig::api("billing", config)?;
//! # Ok(()) }
//! ```
//!
//! **URL template.** `{id}` and `{type}` may appear in the path and query; values are
//! percent-encoded (everything but `A-Z a-z 0-9 - . _ ~`), so an id holding `/`, `?`, `#` or
//! `%` stays in its place. Placeholders in the scheme, host, port or fragment, unknown
//! placeholders and unbalanced braces are configuration errors (`api.url`). A type that
//! would make a whole path segment `.` or `..` is refused at the attempt (permanent,
//! `invalid_request`) instead of being sent to another path.
//!
//! **Requests.** Method `POST` by default (`PUT`, `PATCH`, `DELETE`, `GET`). Body
//! [`Body::Raw`] (the payload's bytes with the event's content type) by default,
//! [`Body::Json`] (an envelope with id, type, time, metadata and the payload), or
//! [`Body::Empty`]; `GET` sends no body and refuses a body mode. Static headers, and
//! `authorization` from a bearer token or basic credentials given as values or read from
//! environment variables when the configuration is built. Credentials and header values are
//! never logged nor shown by `Debug`; errors name the field and the variable, never a value.
//! The idempotency header (default `Idempotency-Key`, configurable or off) carries the event
//! id, the same on every attempt.
//!
//! **Outcomes.** The same facts as webhooks (status, `Retry-After`, the start of the body;
//! network errors and timeouts), so the same classification and `Retry-After` handling
//! (DESIGN.md §2). Configured success codes change it through the port's classifier
//! ([`ApiConfig::classifier`]): a code in the set is delivered, a 2xx outside it permanent.
//!
//! | file | holds |
//! |---|---|
//! | `config.rs` | [`ApiConfig`], its builder, [`Method`], credentials, success codes |
//! | `template.rs` | URL templates: parsing, checks, rendering with percent-encoding |
//! | `body.rs` | [`Body`] and the JSON envelope |
//! | `client.rs` | [`ApiTransport`]: the reqwest client and the attempt |

mod body;
mod client;
mod config;
mod template;

pub use body::Body;
pub use client::ApiTransport;
pub use config::{ApiConfig, ApiConfigBuilder, AuthKind, DEFAULT_IDEMPOTENCY_HEADER, Method};
