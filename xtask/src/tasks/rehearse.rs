//! `rehearse`: the whole pipeline, dev → stage → prod, on the local rig, in
//! one command: a dress rehearsal of what a pull request, a merge, a release
//! and a manual re-promote will do in AWS.
//!
//! It works on a throwaway clone of this repository (with the working tree's
//! changes committed in it), brings the rig up if it is not running (Docker
//! engine, dev/stage/prod registries with logins, the AWS emulator, inside a
//! loopback-only network namespace), then plays each event as the workflows
//! would: the same `cargo xtask` commands with the same GitHub Actions
//! environment and event payloads. With `--workflows`, each stage runs the
//! real workflow file (as it is in the working tree) under act instead, on
//! the clone, through `rig/act-event`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};

use crate::arch::Arch;
use crate::cli::RehearseArgs;
use crate::exec::{Reply, Runner, Step};
use crate::plan::render_table;
use crate::target::Target;
use crate::{git, skopeo};

/// Stand-ins for the Dockerfiles' base images, made by `rig/bases` from
/// Debian packages: no base image can be pulled inside the rig. The build
/// stage runs on the host's architecture and cross-compiles; the runtime base
/// is each variant's own architecture.
const BUILD_ARGS: [&str; 2] = [
    "BUILD_IMAGE=rig/rust:bookworm-cross",
    "RUNTIME_IMAGE=rig/debian:bookworm-{arch}",
];

/// The rig's engine has no bridge network, and the stand-in build image
/// already holds everything the Dockerfiles' RUN steps would download.
const NETWORK: &str = "none";

/// Runs one workflow for one event with act, inside the rig.
const ACT_EVENT: &str = "rig/act-event";

/// The cargo target directory of the workflows' jobs under act.
const WORKFLOW_TARGET_DIR: &str = "target/rehearsal/cargo-target";

/// The rig's registries (ports fixed by `rig/rig`).
const REGISTRIES: [(&str, &str); 3] = [
    ("dev", "127.0.0.1:5001"),
    ("stage", "127.0.0.1:5002"),
    ("prod", "127.0.0.1:5003"),
];

/// One stage of the rehearsal: what it stands for and the one command it runs.
struct Stage {
    name: &'static str,
    title: String,
    step: Step,
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
    let release_tag = format!("v0.0.{stamp}-rehearsal");
    let work = root.join("target/rehearsal").join(&repository);

    announce(runner, "rig", "bring up the rig (installs what is missing)");
    let was_up = matches!(runner.ask("", &rig(&["status"])), Reply::Out(_));
    let mut setup = vec![
        rig(&["install"]),
        rig(&["up"]),
        Step::new("rig/bases", ["--cross"]),
    ];
    if args.workflows {
        // Online, so before anything runs in the rig's namespace.
        setup.push(Step::new(ACT_EVENT, ["install"]));
    }
    for step in setup {
        runner.run("[rig] ", &step)?;
    }

    let result = (|| {
        let Some(commits) = prepare_clone(runner, root, &work, args.broken_release)? else {
            runner.note(
                "",
                "dry run: the stages run on the commits made in the clone, which a dry run does not make; they are not listed",
            );
            return Ok(());
        };
        let events = events(&release_tag, &commits);
        write_payloads(runner, &work, &events)?;
        let stages = if args.workflows {
            // The jobs build xtask offline, in the namespace: its crates
            // must be here first.
            let manifest = work.join("Cargo.toml").display().to_string();
            runner.run(
                "[cargo] ",
                &Step::new("cargo", ["fetch", "--manifest-path", &manifest]),
            )?;
            workflow_stages(root, &work, &repository, events)
        } else {
            command_stages(&work, &repository, events)?
        };
        let total = stages.len();
        for (i, stage) in stages.iter().enumerate() {
            let stage_started = Instant::now();
            announce(
                runner,
                stage.name,
                &format!("[{}/{total}] {}", i + 1, stage.title),
            );
            let prefix = format!("[{}] ", stage.name);
            if let Err(err) = runner.run(&prefix, &stage.step) {
                runner.note(
                    "",
                    &format!(
                        "==> stage {} FAILED after {:.1}s",
                        stage.name,
                        stage_started.elapsed().as_secs_f64()
                    ),
                );
                runner.note("", &format!("    re-run just this stage: {}", stage.step));
                return Err(err.context(format!(
                    "rehearsal failed at stage {}: {}",
                    stage.name, stage.title
                )));
            }
            runner.note(
                "",
                &format!(
                    "==> stage {} held ({:.1}s)",
                    stage.name,
                    stage_started.elapsed().as_secs_f64()
                ),
            );
        }
        closing_table(runner, &work, &repository)
    })();
    if args.keep {
        runner.note("", &format!("the rig keeps running (--keep): try `rig/rig exec skopeo list-tags --tls-verify=false docker://127.0.0.1:5003/{repository}`; `rig/rig down` stops it"));
    } else if !was_up {
        runner.run("[rig] ", &rig(&["down"]))?;
    }
    runner.note(
        "",
        &format!("rehearsal took {:.1}s", started.elapsed().as_secs_f64()),
    );
    result
}

fn announce(runner: &Runner, stage: &str, what: &str) {
    crate::github::end_group();
    runner.note("", &format!("\n==> {stage}: {what}"));
}

fn rig(args: &[&str]) -> Step {
    Step::new("rig/rig", args.iter().copied())
}

/// A step run inside the rig's namespace, with its environment.
fn in_rig(env: &[(&str, String)], step: Step) -> Step {
    let mut args: Vec<String> = vec!["exec".into(), "env".into()];
    args.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
    args.push(step.program);
    args.extend(step.args);
    Step::new("rig/rig", args)
}

/// The commits the events refer to.
struct Commits {
    /// The pull request's head, on branch `rehearsal-pr`.
    pr_head: String,
    /// `main` after merging the pull request.
    merged: String,
    /// The commit the release points at: the merge, or with
    /// `--broken-release` a commit that never reached main.
    release: String,
}

/// Clone this repository, commit the working tree's changes on a PR branch,
/// and merge it into `main`, as a pull request would be. `None` in a dry
/// run, which makes no commits.
fn prepare_clone(
    runner: &Runner,
    root: &Path,
    work: &Path,
    broken: bool,
) -> Result<Option<Commits>> {
    let clone = work.display().to_string();
    let git = |args: &[&str]| git::in_repo(&clone, args);
    let run_git = |steps: &[Step]| steps.iter().try_for_each(|step| runner.run("[git] ", step));
    let source = root.display().to_string();
    if !runner.dry_run {
        if work.exists() {
            std::fs::remove_dir_all(work).with_context(|| format!("cannot remove {clone}"))?;
        }
        std::fs::create_dir_all(work.parent().unwrap_or(work))?;
    }
    runner.run("[git] ", &git::clone_main(&source, &clone))?;
    // The clone's `origin` is the real repository, whose main has not seen
    // the rehearsal's merge: promotion checks the local main instead.
    run_git(&[
        git(&["remote", "remove", "origin"]),
        git(&["config", "user.email", "rehearsal@localhost"]),
        git(&["config", "user.name", "rehearsal"]),
        git(&["checkout", "--quiet", "-b", "rehearsal-pr"]),
    ])?;
    if !runner.dry_run {
        copy_working_tree(runner, root, work)?;
    }
    let head = |runner: &Runner| -> Result<Option<String>> {
        Ok(runner
            .read("[git] ", &git(&["rev-parse", "HEAD"]))?
            .map(|sha| sha.trim().to_string()))
    };
    run_git(&[
        git(&["add", "-A"]),
        git(&[
            "commit",
            "--quiet",
            "--allow-empty",
            "-m",
            "rehearsal: the working tree as a pull request",
        ]),
    ])?;
    let pr_head = head(runner)?;
    run_git(&[
        git(&["checkout", "--quiet", "main"]),
        git(&[
            "merge",
            "--quiet",
            "--no-ff",
            "-m",
            "rehearsal: merge the pull request",
            "rehearsal-pr",
        ]),
    ])?;
    let merged = head(runner)?;
    let release = if broken {
        run_git(&[
            git(&["checkout", "--quiet", "-b", "rehearsal-unmerged"]),
            git(&[
                "commit",
                "--quiet",
                "--allow-empty",
                "-m",
                "rehearsal: a commit that never reached main",
            ]),
        ])?;
        let unmerged = head(runner)?;
        runner.run("[git] ", &git(&["checkout", "--quiet", "main"]))?;
        unmerged
    } else {
        merged.clone()
    };
    Ok(pr_head
        .zip(merged)
        .zip(release)
        .map(|((pr_head, merged), release)| Commits {
            pr_head,
            merged,
            release,
        }))
}

/// Copy tracked and untracked (not ignored) files, so uncommitted changes,
/// a workflow edit say, are rehearsed too.
fn copy_working_tree(runner: &Runner, root: &Path, work: &Path) -> Result<()> {
    let listing = runner.query_local(&Step::new(
        "git",
        [
            "-C",
            &root.display().to_string(),
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
    ))?;
    for file in listing.split('\0').filter(|f| !f.is_empty()) {
        let from = root.join(file);
        let to = work.join(file);
        if from.is_file() {
            std::fs::create_dir_all(to.parent().unwrap_or(work))?;
            std::fs::copy(&from, &to).with_context(|| format!("cannot copy {file}"))?;
        } else if !from.exists() && to.exists() {
            std::fs::remove_file(&to)?;
        }
    }
    Ok(())
}

/// What each stage plays: a GitHub event, the workflow file that handles it,
/// and the job that workflow runs.
struct Event {
    stage: &'static str,
    title: String,
    /// GitHub's name for the event (`GITHUB_EVENT_NAME`, act's first argument).
    name: &'static str,
    payload: serde_json::Value,
    /// The commit GitHub runs the workflow on (`GITHUB_SHA`): for a pull
    /// request its merge commit, for a release the released commit.
    sha: String,
    workflow: &'static str,
    job: Job,
}

/// The `cargo xtask` command a workflow's job runs.
enum Job {
    /// `build --push --env <env>`
    Build(&'static str),
    Promote,
}

/// The four events of the pipeline, in order: a pull request, its merge, a
/// release, and a manual re-promote of the merged commit.
fn events(release_tag: &str, commits: &Commits) -> Vec<Event> {
    vec![
        Event {
            stage: "dev",
            title: "pull request #1: both variants built for their platforms and pushed to dev"
                .into(),
            name: "pull_request",
            // The tags use the PR head from the payload, not GITHUB_SHA.
            payload: serde_json::json!({
                "number": 1,
                "pull_request": {"number": 1, "head": {"sha": commits.pr_head, "ref": "rehearsal-pr"}, "base": {"ref": "main"}, "user": {"login": "rehearsal"}}
            }),
            sha: commits.merged.clone(),
            workflow: "dev",
            job: Job::Build("dev"),
        },
        Event {
            stage: "stage",
            title: "merge to main: built and pushed to stage with the commit's tags".into(),
            name: "push",
            payload: serde_json::json!({"ref": "refs/heads/main", "after": commits.merged}),
            sha: commits.merged.clone(),
            workflow: "stage",
            job: Job::Build("stage"),
        },
        Event {
            stage: "release",
            title: format!(
                "release {release_tag}: gate, digest-preserving copy to prod, verification"
            ),
            name: "release",
            payload: serde_json::json!({"action": "published", "release": {"tag_name": release_tag, "target_commitish": "main"}}),
            sha: commits.release.clone(),
            workflow: "prod",
            job: Job::Promote,
        },
        Event {
            stage: "re-promote",
            title: "manual re-promote (workflow_dispatch): a no-op for tags already in prod".into(),
            name: "workflow_dispatch",
            payload: serde_json::json!({"inputs": {"sha": commits.merged}}),
            sha: commits.merged.clone(),
            workflow: "prod",
            job: Job::Promote,
        },
    ]
}

/// Write each event's payload to `<work>.events/<event>.json`, the
/// `GITHUB_EVENT_PATH` of its stage.
fn write_payloads(runner: &Runner, work: &Path, events: &[Event]) -> Result<()> {
    if runner.dry_run {
        return Ok(());
    }
    let dir = payloads_dir(work);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for event in events {
        let path = payload_path(work, event);
        std::fs::write(&path, event.payload.to_string())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn payloads_dir(work: &Path) -> std::path::PathBuf {
    work.with_extension("events")
}

fn payload_path(work: &Path, event: &Event) -> std::path::PathBuf {
    payloads_dir(work).join(format!("{}.json", event.name))
}

/// The running xtask, which the stages without `--workflows` and the closing
/// table's logins call.
fn xtask_exe() -> Result<String> {
    Ok(std::env::current_exe()
        .context("cannot find the running xtask binary")?
        .display()
        .to_string())
}

/// Each event played by the `cargo xtask` command its workflow runs, with
/// the GitHub Actions environment the workflow would give it.
fn command_stages(work: &Path, repository: &str, events: Vec<Event>) -> Result<Vec<Stage>> {
    let xtask = xtask_exe()?;
    let clone = work.display().to_string();
    let github = |event: &Event| -> Vec<(&'static str, String)> {
        vec![
            ("GITHUB_ACTIONS", "true".into()),
            ("GITHUB_EVENT_NAME", event.name.into()),
            (
                "GITHUB_EVENT_PATH",
                payload_path(work, event).display().to_string(),
            ),
            ("GITHUB_SHA", event.sha.clone()),
            ("GITHUB_REF", "refs/heads/main".into()),
            (
                "GITHUB_STEP_SUMMARY",
                work.with_extension(format!("{}.summary.md", event.name))
                    .display()
                    .to_string(),
            ),
            ("ECR_REPOSITORY", repository.into()),
        ]
    };
    let xtask_step = |args: &[&str]| {
        let mut all = vec!["--root", clone.as_str()];
        all.extend(args);
        Step::new(&xtask, all)
    };
    let mut build = vec!["build", "--push", "--smoke", "--network", NETWORK];
    for arg in BUILD_ARGS {
        build.extend(["--build-arg", arg]);
    }
    Ok(events
        .into_iter()
        .map(|event| {
            let args = match event.job {
                Job::Build(env) => [build.as_slice(), &["--env", env]].concat(),
                Job::Promote => vec!["promote"],
            };
            Stage {
                name: event.stage,
                step: in_rig(&github(&event), xtask_step(&args)),
                title: event.title,
            }
        })
        .collect())
}

/// Each event played on its real workflow file by act (`rig/act-event`), in
/// the clone as act's working directory, so the workflows as they are in the
/// working tree are what runs. The jobs run on the host and inherit act's
/// environment: that is how the workflows' `cargo xtask build` gets the
/// stand-in bases, through the `XTASK_*` variables its flags read.
fn workflow_stages(root: &Path, work: &Path, repository: &str, events: Vec<Event>) -> Vec<Stage> {
    let clone = work.display().to_string();
    let env = vec![
        ("XTASK_BUILD_ARGS", BUILD_ARGS.join("\n")),
        ("XTASK_NETWORK", NETWORK.to_string()),
        ("XTASK_SMOKE", "true".to_string()),
        // Not the repository's target/: the jobs build xtask from act's
        // copy of the clone, and that binary must not replace the one
        // running this rehearsal.
        (
            "CARGO_TARGET_DIR",
            root.join(WORKFLOW_TARGET_DIR).display().to_string(),
        ),
    ];
    events
        .into_iter()
        .map(|event| {
            let payload = payload_path(work, &event).display().to_string();
            let act = Step::new(
                ACT_EVENT,
                [
                    "run",
                    "--repository",
                    repository,
                    // act takes GITHUB_SHA from the checkout (for a push,
                    // from the payload).
                    "--checkout",
                    &event.sha,
                    &clone,
                    event.name,
                    event.workflow,
                    &payload,
                ],
            );
            Stage {
                name: event.stage,
                title: format!(
                    "{} (.github/workflows/{}.yml under act)",
                    event.title, event.workflow
                ),
                step: in_rig(&env, act),
            }
        })
        .collect()
}

/// Every tag in every registry with its digest, and whether prod's digest
/// equals stage's for the same image. Fails unless every prod tag matches.
fn closing_table(runner: &Runner, work: &Path, repository: &str) -> Result<()> {
    // The rig's own Docker config reads the registries: the workflows under
    // act log in to a config of their own.
    let xtask = xtask_exe()?;
    let clone = work.display().to_string();
    for (env, _) in REGISTRIES {
        let login = Step::new(&xtask, ["--root", clone.as_str(), "login", "--env", env]);
        runner.run("[table] ", &in_rig(&[], login))?;
    }
    // Keyed by the registry's place in the pipeline, so dev, stage, prod
    // print in that order.
    let mut digests: BTreeMap<(usize, &str, String), String> = BTreeMap::new();
    for (order, (env, registry)) in REGISTRIES.into_iter().enumerate() {
        let target = Target {
            registry: registry.into(),
            repository: repository.into(),
        };
        let list = in_rig(&[], skopeo::list_tags(&target));
        let Some(text) = runner.read("", &list)? else {
            continue;
        };
        let tags: serde_json::Value =
            serde_json::from_str(&text).context("skopeo list-tags answered no JSON")?;
        for tag in tags["Tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str())
        {
            if tag.starts_with("cache-") {
                continue;
            }
            let arch = if tag.contains("-arm64-") {
                Arch::Arm64
            } else {
                Arch::Amd64
            };
            let text = runner
                .read("", &in_rig(&[], skopeo::inspect(&target, tag, arch)))?
                .unwrap_or_default();
            digests.insert(
                (order, env, tag.to_string()),
                skopeo::parse_inspect(&text)?.digest,
            );
        }
    }
    if runner.dry_run {
        return Ok(());
    }
    // Prod's tags are stage's `<sha8>` tag's image, copied: compare by variant.
    let stage_digest = |tag: &str| {
        let suffix = variant_suffix(tag)?;
        digests
            .iter()
            .find(|((_, env, t), _)| {
                *env == "stage" && !t.starts_with("latest-") && t.ends_with(&suffix)
            })
            .map(|(_, d)| d.clone())
    };
    let mut rows = vec![["REGISTRY", "TAG", "DIGEST", "PROD = STAGE"].map(String::from)];
    let mut mismatches = 0;
    let mut prod_tags = 0;
    for ((_, env, tag), digest) in &digests {
        let same = if *env == "prod" {
            prod_tags += 1;
            let same = stage_digest(tag).as_deref() == Some(digest.as_str());
            mismatches += usize::from(!same);
            if same {
                "yes"
            } else {
                "NO"
            }
        } else {
            ""
        };
        rows.push([
            env.to_string(),
            tag.clone(),
            digest.clone(),
            same.to_string(),
        ]);
    }
    println!("\n{}", render_table(&rows));
    if prod_tags == 0 || mismatches > 0 {
        bail!("rehearsal: prod has {prod_tags} tags, {mismatches} of them not at stage's digest");
    }
    Ok(())
}

/// `-<arch>-<variant>` of a tag.
fn variant_suffix(tag: &str) -> Option<String> {
    ["-amd64-", "-arm64-"]
        .iter()
        .find_map(|arch| tag.rfind(arch).map(|i| tag[i..].to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commits() -> Commits {
        Commits {
            pr_head: "1".repeat(40),
            merged: "2".repeat(40),
            release: "3".repeat(40),
        }
    }

    /// Each stage's act-event run: the commit it checks out, the event and
    /// the workflow.
    fn plays(stages: &[Stage]) -> Vec<[&str; 4]> {
        stages
            .iter()
            .map(|stage| {
                let args = &stage.step.args;
                let at = |flag: &str| {
                    let i = args.iter().position(|a| a == flag).unwrap();
                    args[i + 1].as_str()
                };
                let checkout = at("--checkout");
                let workdir = args.iter().position(|a| a == checkout).unwrap() + 1;
                [
                    stage.name,
                    &checkout[..1],
                    &args[workdir + 1],
                    &args[workdir + 2],
                ]
            })
            .collect()
    }

    #[test]
    fn each_event_runs_its_workflow_on_its_commit() {
        let work = Path::new("/repo/target/rehearsal/r");
        let stages = workflow_stages(Path::new("/repo"), work, "r", events("v1", &commits()));
        // The commits by their first digit: 2 merged, 3 released.
        assert_eq!(
            plays(&stages),
            [
                ["dev", "2", "pull_request", "dev"],
                ["stage", "2", "push", "stage"],
                ["release", "3", "release", "prod"],
                ["re-promote", "2", "workflow_dispatch", "prod"],
            ]
        );
    }

    #[test]
    fn workflow_builds_get_the_stand_in_bases_from_the_environment() {
        let work = Path::new("/repo/target/rehearsal/r");
        let stages = workflow_stages(Path::new("/repo"), work, "r", events("v1", &commits()));
        assert_eq!(
            stages[0].step.to_string(),
            "rig/rig exec env 'XTASK_BUILD_ARGS=BUILD_IMAGE=rig/rust:bookworm-cross\n\
             RUNTIME_IMAGE=rig/debian:bookworm-{arch}' XTASK_NETWORK=none XTASK_SMOKE=true \
             CARGO_TARGET_DIR=/repo/target/rehearsal/cargo-target \
             rig/act-event run --repository r --checkout 2222222222222222222222222222222222222222 \
             /repo/target/rehearsal/r pull_request dev /repo/target/rehearsal/r.events/pull_request.json"
        );
    }

    #[test]
    fn payloads_name_the_commits_the_tags_come_from() {
        let events = events("v1", &commits());
        assert_eq!(
            events[0].payload["pull_request"]["head"]["sha"],
            "1".repeat(40)
        );
        assert_eq!(events[1].payload["after"], "2".repeat(40));
        assert_eq!(events[2].payload["release"]["tag_name"], "v1");
        assert_eq!(events[3].payload["inputs"]["sha"], "2".repeat(40));
    }
}
