//! `cargo xtask`: build, push and promote this repository's GPU and CPU images.
//!
//! `main` only parses the command line, makes the one `Runner` (which runs
//! every external command in the repository root) and dispatches; every task
//! lives in `tasks/`.

use std::process::ExitCode;
use std::time::Duration;

use xtask::{arch, cli, error, exec, github, tasks};

fn main() -> ExitCode {
    cli::normalize_flag_variables();
    match cli::parse().map_err(anyhow::Error::from).and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            github::report_error(&err);
            ExitCode::from(error::exit_code(&err))
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<()> {
    let cwd = std::env::current_dir()?;
    let root =
        arch::project_root(cli.root, cli::env_var("XTASK_ROOT"), &cwd).map_err(error::Usage)?;
    // A GitHub runner's files go with the job: there, the tools' output
    // belongs in the job's log, folded into its groups.
    let verbose = cli.verbose || github::is_actions();
    let runner = exec::Runner::new(&root, cli.dry_run, verbose)
        .with_read_timeout(Duration::from_secs(cli.read_timeout));
    tasks::dispatch(cli.command, &runner, &root)
}
