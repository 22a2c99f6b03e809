//! `cargo xtask`: build, push and promote this repository's GPU and CPU images.
//!
//! `main` only parses the command line, makes the one `Runner` (which runs
//! every external command in the repository root) and dispatches; every task
//! lives in `tasks/`.

use std::process::ExitCode;

use clap::Parser;
use xtask::{arch, cli, error, exec, github, tasks};

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
    let root = cli.root.unwrap_or_else(project_root);
    // A GitHub runner's files go with the job: there, the tools' output
    // belongs in the job's log, folded into its groups.
    let verbose = cli.verbose || github::is_actions();
    let runner = exec::Runner::new(&root, cli.dry_run, verbose);
    tasks::dispatch(cli.command, &runner, &root)
}

/// The workspace root: `cargo run` (so `cargo xtask`) names the manifest it
/// runs; a binary started directly looks upwards from the current directory
/// for `.aws-architecture`. The path compiled in comes last: a target
/// directory shared by several checkouts may hold a binary built in another.
fn project_root() -> std::path::PathBuf {
    if let Some(manifest) = std::env::var_os("CARGO_MANIFEST_DIR") {
        let manifest = std::path::PathBuf::from(manifest);
        return manifest.parent().unwrap_or(&manifest).to_path_buf();
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    if let Some(root) = cwd.ancestors().find(|dir| dir.join(arch::FILE).is_file()) {
        return root.to_path_buf();
    }
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}
