//! `rehearse`: the whole pipeline, dev → stage → prod, on the local rig, in
//! one command: a dress rehearsal of what a pull request, a merge, a release
//! and a manual re-promote will do in AWS.
//!
//! It brings the rig up if it is not running (Docker engine, dev/stage/prod
//! registries with logins, the AWS emulator, inside a loopback-only network
//! namespace), commits the working tree in a throwaway clone as a pull
//! request and merges it ([`workspace`]), then plays each event as the
//! workflows would: the same `cargo xtask` commands with the same GitHub
//! Actions environment and event payloads, or with `--workflows` the real
//! workflow files under act ([`act`]). Last it reads the registries back
//! ([`registries`]). The rig's workflow tests use the same pieces.
//!
//! Quiet by default: each stage prints its commands and its result; the
//! runner keeps the tools' output in the stage's log file
//! (`target/xtask/logs/<stage>.log`) and prints a failure's last lines.

pub mod act;
pub mod registries;
mod stages;
pub mod workspace;

pub use stages::pipeline;

use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result};

use self::stages::{command_step, workflow_env};
use self::workspace::Workspace;
use crate::cli::RehearseArgs;
use crate::error::Usage;
use crate::exec::{self, Reply, Runner};
use crate::step::Step;
use crate::target;

/// The rig: install, up, down, and `exec` to run a command inside it.
const RIG: &str = "rig/rig";

/// A step run inside the rig's namespace, with the rig's environment and
/// `env` added. A secret's source runs there too.
pub fn in_rig(env: &[(&str, String)], step: Step) -> Step {
    let mut args: Vec<String> = vec!["exec".into(), "env".into()];
    args.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
    args.push(step.program);
    args.extend(step.args);
    let wrapped = Step::new(RIG, args);
    match step.secret_stdin {
        Some(source) => wrapped.with_secret_stdin(in_rig(&[], *source)),
        None => wrapped,
    }
}

/// Announce a stage, and start its clock.
fn announce(stage: &str, what: &str) -> Instant {
    eprintln!("\n==> {stage}: {what}");
    Instant::now()
}

fn result(stage: &str, verdict: &str, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    eprintln!("==> {stage} {verdict} ({secs:.1}s)");
}

pub fn run(args: RehearseArgs, runner: &Runner, root: &Path) -> Result<()> {
    let started = Instant::now();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let repository = args
        .repository
        .clone()
        .unwrap_or_else(|| format!("rehearsal-{stamp}"));
    // It names the workspace directory, which is emptied first: only a
    // repository name, never a path out of target/rehearsal/.
    target::check_repository(&repository).map_err(|why| {
        Usage(format!(
            "--repository \"{repository}\" is not a repository name: {why}; use lowercase letters, digits and single '.', '_', '-' or '/' between them (e.g. rehearsal-1)"
        ))
    })?;
    // Before the rig comes up, which takes minutes on a fresh machine.
    let branch = crate::git::main_branch(runner).ok_or_else(|| {
        Usage(format!(
            "rehearse starts from the default branch (origin/HEAD's, else main or master), but {} has none of them; create one (git branch main)",
            root.display()
        ))
    })?;
    let release_tag = format!("v0.0.{stamp}-rehearsal");
    let workspace = Workspace::new(root, &repository);
    workspace.create(runner)?;

    let rig_started = announce("rig", "bring up the rig (installs what is missing)");
    let was_up = matches!(runner.ask("", &Step::new(RIG, ["status"])), Reply::Out(_));
    let mut setup = vec![
        Step::new(RIG, ["install"]),
        Step::new(RIG, ["up"]),
        Step::new("rig/bases", ["--cross"]),
    ];
    if args.workflows {
        // Online, so before anything runs in the rig's namespace.
        setup.push(Step::new(act::ACT_EVENT, ["install"]));
    }
    for step in setup {
        runner.run("[rig] ", &step)?;
    }
    result("rig", "up", rig_started);

    let rehearsed = rehearse(&args, runner, root, &workspace, &branch, &release_tag);
    if args.keep {
        eprintln!("the rig keeps running (--keep): try `rig/rig exec skopeo list-tags --tls-verify=false docker://127.0.0.1:5003/{repository}`; `rig/rig down` stops it");
    } else if !was_up {
        runner.run("[rig] ", &Step::new(RIG, ["down"]))?;
    }
    eprintln!("rehearsal took {:.1}s", started.elapsed().as_secs_f64());
    rehearsed
}

/// The clone, every stage in order (stopping at the first that fails), and
/// the closing table.
fn rehearse(
    args: &RehearseArgs,
    runner: &Runner,
    root: &Path,
    workspace: &Workspace,
    branch: &str,
    release_tag: &str,
) -> Result<()> {
    let clone_started = announce(
        "clone",
        "the working tree, committed as a pull request and merged",
    );
    workspace.clone_tree(runner, root, branch)?;
    let commits = workspace.pull_request(runner)?;
    let release_sha = if args.broken_release {
        workspace.side_commit(runner, "rehearsal-unmerged")?
    } else {
        commits.as_ref().map(|c| c.merged.clone())
    };
    let (Some(commits), Some(release_sha)) = (commits, release_sha) else {
        eprintln!("dry run: the stages run on the commits made in the clone, which a dry run does not make; they are not listed");
        return Ok(());
    };
    if args.workflows {
        // The jobs build xtask offline, in the namespace: its crates must
        // be here first.
        let manifest = workspace.clone_dir().join("Cargo.toml");
        let manifest = manifest.display().to_string();
        let fetch = Step::new("cargo", ["fetch", "--manifest-path", &manifest]);
        runner.run("[clone] ", &fetch)?;
    }
    result("clone", "ready", clone_started);

    let xtask = std::env::current_exe()
        .context("cannot find the running xtask binary")?
        .display()
        .to_string();
    let env = workflow_env(root);
    let stages = pipeline(&commits, release_tag, &release_sha);
    for (i, stage) in stages.iter().enumerate() {
        let name = stage.play.name.as_str();
        let (title, step) = if args.workflows {
            let title = format!(
                "{} (.github/workflows/{}.yml under act)",
                stage.title, stage.play.workflow
            );
            (title, stage.play.step(workspace, &env))
        } else {
            (stage.title.clone(), command_step(workspace, stage, &xtask))
        };
        let stage_started = announce(name, &format!("[{}/{}] {title}", i + 1, stages.len()));
        stage.play.write_payload(workspace)?;
        // What the workflow's checkout step does (under act, it does).
        let checkout = (!args.workflows).then(|| workspace.checkout(&stage.checkout));
        if let Some(checkout) = &checkout {
            runner.run("[git] ", checkout)?;
        }
        if let Err(err) = runner.run(&exec::prefix(name), &step) {
            result(&format!("stage {name}"), "FAILED", stage_started);
            let again = match &checkout {
                Some(checkout) => format!("{checkout} && {step}"),
                None => step.to_string(),
            };
            eprintln!("    re-run just this stage: {again}");
            return Err(err.context(format!("rehearsal failed at stage {name}: {title}")));
        }
        result(&format!("stage {name}"), "held", stage_started);
    }

    announce(
        "registries",
        "every tag, and prod's digests against stage's",
    );
    registries::login(runner, &workspace.repository)?;
    let snapshot = registries::read(runner, &workspace.repository)?;
    super::print_out(&format!("\n{}\n", registries::closing_table(&snapshot)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_source_runs_in_the_rig_too() {
        let login = Step::new("docker", ["login", "--password-stdin", "r"])
            .with_secret_stdin(Step::new("aws", ["ecr", "get-login-password"]));
        assert_eq!(
            in_rig(&[], login).to_string(),
            "rig/rig exec env aws ecr get-login-password | rig/rig exec env docker login --password-stdin r"
        );
    }
}
