//! `herald`: run Herald from the command line.
//!
//! `herald demo` shows it working with no configuration: a local receiver that fails
//! transiently, a few thousand signed webhooks, retries, and a table of what happened.

mod demo;
mod demo_receiver;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Deliver events to webhooks, REST APIs and message queues at least once.
#[derive(Parser, Debug)]
#[command(name = "herald", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Deliver a few thousand events to a local receiver that fails transiently, and show
    /// what happened (no configuration needed).
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("herald: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("herald: {e:#}");
            ExitCode::from(2)
        }
    }
}
