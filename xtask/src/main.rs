//! `cargo xtask`: build, push and promote this repository's GPU and CPU images.
//!
//! `main` only parses the command line, makes the one `Runner` (which runs
//! every external command in the repository root) and dispatches; every task
//! lives in `tasks/`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use xtask::arch::FILE;
use xtask::{cli, error, exec, github, tasks};

fn main() -> ExitCode {
    cli::unset_empty_flag_variables();
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
    let root = project_root(cli.root, cli::env_var("XTASK_ROOT"), &cwd).map_err(error::Usage)?;
    // A GitHub runner's files go with the job: there, the tools' output
    // belongs in the job's log, folded into its groups.
    let verbose = cli.verbose || github::is_actions();
    let runner = exec::Runner::new(&root, cli.dry_run, verbose);
    tasks::dispatch(cli.command, &runner, &root)
}

/// The repository to work on: `--root`, else `XTASK_ROOT` (unless empty),
/// else the nearest directory from `cwd` upwards that holds
/// `.aws-architecture`. Never the checkout the binary was compiled in: a
/// binary run elsewhere must not quietly plan another repository. Errors
/// name where the value came from.
fn project_root(flag: Option<PathBuf>, var: Option<String>, cwd: &Path) -> Result<PathBuf, String> {
    let (dir, source) = match (flag, var) {
        (Some(dir), _) if dir.as_os_str().is_empty() => {
            return Err("--root is empty; pass the repository root".into())
        }
        (Some(dir), _) => (dir, "--root".to_string()),
        (None, Some(dir)) => (PathBuf::from(&dir), format!("XTASK_ROOT={dir}")),
        (None, None) => {
            let found = cwd.ancestors().find(|dir| dir.join(FILE).is_file());
            return found.map(Path::to_path_buf).ok_or_else(|| {
                format!(
                    "{FILE}: not found in {} or any directory above it; run cargo xtask inside the repository, or pass --root DIR",
                    cwd.display()
                )
            });
        }
    };
    if dir.join(FILE).is_file() {
        return Ok(dir);
    }
    Err(format!(
        "{FILE}: not found in {} (from {source}); point it at the repository root, which holds {FILE}",
        dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use xtask::arch;

    /// Where the root comes from, and errors that name that source.
    #[test]
    fn project_root_table() {
        let repo = std::env::temp_dir().join(format!("xtask-root-{}", std::process::id()));
        let inner = repo.join("app/src");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::write(repo.join(arch::FILE), "{}").unwrap();
        let elsewhere = std::env::temp_dir();
        let var = |dir: &Path| Some(dir.display().to_string());
        assert_eq!(project_root(None, None, &inner), Ok(repo.clone()));
        assert_eq!(
            project_root(Some(repo.clone()), None, &elsewhere),
            Ok(repo.clone())
        );
        assert_eq!(project_root(None, var(&repo), &elsewhere), Ok(repo.clone()));
        assert_eq!(
            project_root(Some(repo.clone()), Some(String::new()), &elsewhere),
            Ok(repo.clone())
        );
        let cases: [(Option<PathBuf>, Option<String>, &str); 4] = [
            (Some(PathBuf::new()), None, "--root is empty"),
            (Some(inner.clone()), None, "(from --root)"),
            (
                None,
                var(&inner),
                &format!("(from XTASK_ROOT={})", inner.display()),
            ),
            (None, None, "or any directory above it"),
        ];
        for (flag, env, want) in cases {
            let cwd = if flag.is_none() && env.is_none() {
                Path::new("/")
            } else {
                elsewhere.as_path()
            };
            let err = project_root(flag.clone(), env.clone(), cwd).unwrap_err();
            assert!(err.contains(want), "{flag:?} {env:?}: {err}");
        }
        std::fs::remove_dir_all(&repo).unwrap();
    }
}
