//! `herald`: run Herald from the command line.
//!
//! `herald demo` shows it working with no configuration; the other commands work on the
//! ports and store of a configuration file (see `config.rs` and the README). Exit codes:
//! 0 all delivered / done; 1 some deliveries failed, were exhausted or invalid (or the
//! thing asked for was not found); 2 usage or configuration error.

mod config;
mod deliver;
mod demo;
mod demo_receiver;
mod inspect;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use herald::DeliveryStatus;

/// Deliver events to webhooks, REST APIs and message queues at least once.
#[derive(Parser, Debug)]
#[command(name = "herald", version, about)]
struct Cli {
    /// The configuration file (TOML).
    #[arg(long, global = true, default_value = "herald.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Deliver a few thousand events to a local receiver that fails transiently, and show
    /// what happened (no configuration needed).
    Demo(demo::DemoArgs),
    /// Read events as JSON lines and deliver each to every selected port.
    Deliver {
        /// The input file; `-` or nothing for standard input.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Only these ports (repeatable; default: all).
        #[arg(long = "port")]
        ports: Vec<String>,
        /// Return once every event is accepted, without waiting for delivery.
        #[arg(long)]
        no_wait: bool,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Keep delivering pending and retrying work until interrupted.
    Serve,
    /// The status of one event's delivery.
    Status {
        /// The event id.
        id: String,
        /// Only this port.
        #[arg(long = "port")]
        ports: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The status and every attempt of one event's delivery.
    History {
        /// The event id.
        id: String,
        /// Only this port.
        #[arg(long = "port")]
        ports: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List deliveries, optionally in one status.
    List {
        /// Only deliveries in this status.
        #[arg(long)]
        status: Option<DeliveryStatus>,
        /// Only this port.
        #[arg(long = "port")]
        ports: Vec<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Continue after this cursor (printed by the previous page).
        #[arg(long)]
        after: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Deliver a failed or exhausted event again (a new recorded cycle), on the next
    /// `serve` or `deliver`.
    Redrive {
        /// The event id.
        #[arg(required_unless_present = "status")]
        id: Option<String>,
        /// Every delivery in this status instead (failed or exhausted).
        #[arg(long, conflicts_with = "id")]
        status: Option<DeliveryStatus>,
        /// Only this port.
        #[arg(long = "port")]
        ports: Vec<String>,
    },
    /// Delete finished deliveries last changed longer ago than this (e.g. `30d`).
    Prune {
        /// Age, e.g. `7d`, `12h`.
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: std::time::Duration,
    },
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
    let result = runtime.block_on(run(cli));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("herald: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Demo(args) = cli.command {
        return demo::run(args).await;
    }
    let config = config::Config::load(&cli.config)?;
    match cli.command {
        Command::Demo(_) => unreachable!("handled above"),
        Command::Deliver {
            input,
            ports,
            no_wait,
            json,
        } => deliver::deliver(config, input, ports, no_wait, json).await,
        Command::Serve => deliver::serve(config).await,
        Command::Status { id, ports, json } => inspect::status(&config, &id, &ports, json),
        Command::History { id, ports, json } => inspect::history(&config, &id, &ports, json),
        Command::List {
            status,
            ports,
            limit,
            after,
            json,
        } => inspect::list(&config, status, &ports, limit, after.as_deref(), json),
        Command::Redrive { id, status, ports } => inspect::redrive(&config, id.as_deref(), status, &ports),
        Command::Prune { older_than } => inspect::prune(&config, older_than),
    }
}
