//! `cargo xtask`: build, push and promote this repository's GPU and CPU images.
//!
//! `main` only parses the command line, makes the one `Shell`, moves to the
//! repository root and dispatches; every task lives in `tasks/`.

mod arch;
mod aws;
mod cli;
mod context;
mod docker;
mod error;
mod exec;
mod git;
mod github;
mod plan;
mod skopeo;
mod tags;
mod target;
mod tasks;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = error::exit_code(&err);
            github::report_error(&err);
            ExitCode::from(code)
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<()> {
    let sh = xshell::Shell::new()?;
    let root = cli.root.unwrap_or_else(project_root);
    sh.change_dir(&root);
    let runner = exec::Runner::new(sh, cli.dry_run);
    tasks::dispatch(cli.command, &runner, &root)
}

/// The workspace root: `xtask/` lives one level below it. `cargo run` names
/// the manifest of the checkout it runs from; the path compiled in is only a
/// fallback, since a binary in a target directory shared by several checkouts
/// (`CARGO_TARGET_DIR`) may have been compiled in another one.
fn project_root() -> std::path::PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    manifest.parent().unwrap_or(&manifest).to_path_buf()
}
