//! The conformance suite for the tokio driver with the webhook transport.

use herald::core::BoxFuture;
use herald::transport::webhook::WebhookConfig;
use herald::{Herald, HeraldBuilder, PortConfig, StartError};
use herald_tests::conformance::{Combo, DriverKind, TransportKind};
use herald_tests::receiver::Receiver;

struct Tokio;

impl DriverKind for Tokio {
    fn name(&self) -> &'static str {
        "tokio"
    }
    fn start(&self, builder: HeraldBuilder) -> BoxFuture<'static, Result<Herald, StartError>> {
        Box::pin(builder.start_tokio())
    }
}

struct Webhook;

impl TransportKind for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }
    fn port(&self, name: &str, receiver: &Receiver) -> PortConfig {
        let config = WebhookConfig::builder(&receiver.url())
            .secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
            .allow_private_network(true)
            .build()
            .expect("valid webhook config");
        receiver.verify_with("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
        PortConfig::webhook(name, config).expect("valid port")
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

fn spawn(f: BoxFuture<'static, ()>) {
    drop(tokio::spawn(f));
}

herald_tests::conformance_suite!(Combo::new(Tokio, Webhook), block_on, spawn);
