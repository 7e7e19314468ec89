//! The `cocov` command: the daemon and its operator tools.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cocov::cli::Cli::parse();
    // Inside a sandbox, on its own one-thread runtime, logging nothing of the daemon's.
    if let cocov::cli::Command::CacheRelay { port, command } = &cli.command {
        return cocov::sandbox::relay::main(*port, command);
    }
    cocov::daemon::logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(cocov::cli::run(cli))
}
