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
//! real workflow file under act instead.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};

use crate::arch::Arch;
use crate::cli::RehearseArgs;
use crate::exec::{Runner, Step};
use crate::plan::render_table;
use crate::skopeo;
use crate::target::Target;

/// Stand-ins for the Dockerfiles' base images, made by `rig/bases` from
/// Debian packages: no base image can be pulled inside the rig. The build
/// stage runs on the host's architecture and cross-compiles; the runtime base
/// is each variant's own architecture.
const BUILD_ARGS: [&str; 2] = [
    "BUILD_IMAGE=rig/rust:bookworm-cross",
    "RUNTIME_IMAGE=rig/debian:bookworm-{arch}",
];

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
    let was_up = matches!(runner.probe("", &rig(&["status"]))?, Some(Ok(_)));
    for step in [
        rig(&["install"]),
        rig(&["up"]),
        Step::new("rig/bases", ["--cross"]),
    ] {
        runner.run("[rig] ", &step)?;
    }

    let result = (|| {
        let commits = prepare_clone(runner, root, &work, args.broken_release)?;
        let stages = stages(&args, runner, &work, &repository, &release_tag, &commits)?;
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
        closing_table(runner, &repository)
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
/// and merge it into `main`, as a pull request would be.
fn prepare_clone(runner: &Runner, root: &Path, work: &Path, broken: bool) -> Result<Commits> {
    let clone = work.display().to_string();
    let git = |args: &[&str]| {
        let mut all = vec!["-C", clone.as_str()];
        all.extend(args);
        Step::new("git", all)
    };
    let source = root.display().to_string();
    if !runner.dry_run {
        if work.exists() {
            std::fs::remove_dir_all(work).with_context(|| format!("cannot remove {clone}"))?;
        }
        std::fs::create_dir_all(work.parent().unwrap_or(work))?;
    }
    runner.run(
        "[git] ",
        &Step::new(
            "git",
            ["clone", "--quiet", "--branch", "main", &source, &clone],
        ),
    )?;
    // The clone's `origin` is the real repository, whose main has not seen
    // the rehearsal's merge: promotion checks the local main instead.
    for step in [
        git(&["remote", "remove", "origin"]),
        git(&["config", "user.email", "rehearsal@localhost"]),
        git(&["config", "user.name", "rehearsal"]),
        git(&["checkout", "--quiet", "-b", "rehearsal-pr"]),
    ] {
        runner.run("[git] ", &step)?;
    }
    if !runner.dry_run {
        copy_working_tree(runner, root, work)?;
    }
    let head = |runner: &Runner| -> Result<String> {
        Ok(runner
            .read("[git] ", &git(&["rev-parse", "HEAD"]))?
            .map_or("<sha>".into(), |s| s.trim().to_string()))
    };
    for step in [
        git(&["add", "-A"]),
        git(&[
            "commit",
            "--quiet",
            "--allow-empty",
            "-m",
            "rehearsal: the working tree as a pull request",
        ]),
    ] {
        runner.run("[git] ", &step)?;
    }
    let pr_head = head(runner)?;
    for step in [
        git(&["checkout", "--quiet", "main"]),
        git(&[
            "merge",
            "--quiet",
            "--no-ff",
            "-m",
            "rehearsal: merge the pull request",
            "rehearsal-pr",
        ]),
    ] {
        runner.run("[git] ", &step)?;
    }
    let merged = head(runner)?;
    let release = if broken {
        for step in [
            git(&["checkout", "--quiet", "-b", "rehearsal-unmerged"]),
            git(&[
                "commit",
                "--quiet",
                "--allow-empty",
                "-m",
                "rehearsal: a commit that never reached main",
            ]),
        ] {
            runner.run("[git] ", &step)?;
        }
        let unmerged = head(runner)?;
        runner.run("[git] ", &git(&["checkout", "--quiet", "main"]))?;
        unmerged
    } else {
        merged.clone()
    };
    Ok(Commits {
        pr_head,
        merged,
        release,
    })
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

fn stages(
    args: &RehearseArgs,
    runner: &Runner,
    work: &Path,
    repository: &str,
    release_tag: &str,
    commits: &Commits,
) -> Result<Vec<Stage>> {
    let events = work.with_extension("events");
    let payloads = [
        (
            "pull_request",
            serde_json::json!({
                "number": 1,
                "pull_request": {"number": 1, "head": {"sha": commits.pr_head, "ref": "rehearsal-pr"}, "base": {"ref": "main"}, "user": {"login": "rehearsal"}}
            }),
        ),
        (
            "push",
            serde_json::json!({"ref": "refs/heads/main", "after": commits.merged}),
        ),
        (
            "release",
            serde_json::json!({"action": "published", "release": {"tag_name": release_tag, "target_commitish": "main"}}),
        ),
        (
            "workflow_dispatch",
            serde_json::json!({"inputs": {"sha": commits.merged}}),
        ),
    ];
    if !runner.dry_run {
        std::fs::create_dir_all(&events)?;
        for (name, payload) in &payloads {
            std::fs::write(events.join(format!("{name}.json")), payload.to_string())?;
        }
    }
    if args.workflows {
        return Err(crate::error::Usage("--workflows: not available yet".into()).into());
    }
    let xtask = std::env::current_exe()
        .context("cannot find the running xtask binary")?
        .display()
        .to_string();
    let clone = work.display().to_string();
    let github = |event: &str, sha: &str| -> Vec<(&'static str, String)> {
        vec![
            ("GITHUB_ACTIONS", "true".into()),
            ("GITHUB_EVENT_NAME", event.into()),
            (
                "GITHUB_EVENT_PATH",
                events.join(format!("{event}.json")).display().to_string(),
            ),
            ("GITHUB_SHA", sha.into()),
            ("GITHUB_REF", "refs/heads/main".into()),
            (
                "GITHUB_STEP_SUMMARY",
                work.with_extension(format!("{event}.summary.md"))
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
    // The rig's engine has no bridge network, and the stand-in build image
    // already holds everything the RUN steps would download.
    let mut build = vec!["build", "--push", "--smoke", "--network", "none"];
    for arg in BUILD_ARGS {
        build.extend(["--build-arg", arg]);
    }
    let with = |extra: &[&'static str]| -> Vec<&str> {
        let mut all = build.clone();
        all.extend(extra);
        all
    };
    Ok(vec![
        Stage {
            name: "dev",
            title: "pull request #1: both variants built for their platforms and pushed to dev"
                .into(),
            // GitHub's GITHUB_SHA for a pull request is a merge commit; the
            // tags use the PR head from the payload.
            step: in_rig(
                &github("pull_request", &commits.merged),
                xtask_step(&with(&["--env", "dev"])),
            ),
        },
        Stage {
            name: "stage",
            title: "merge to main: built and pushed to stage with the commit's tags".into(),
            step: in_rig(
                &github("push", &commits.merged),
                xtask_step(&with(&["--env", "stage"])),
            ),
        },
        Stage {
            name: "release",
            title: format!(
                "release {release_tag}: gate, digest-preserving copy to prod, verification"
            ),
            step: in_rig(
                &github("release", &commits.release),
                xtask_step(&["promote"]),
            ),
        },
        Stage {
            name: "re-promote",
            title: "manual re-promote (workflow_dispatch): a no-op for tags already in prod".into(),
            step: in_rig(
                &github("workflow_dispatch", &commits.merged),
                xtask_step(&["promote"]),
            ),
        },
    ])
}

/// Every tag in every registry with its digest, and whether prod's digest
/// equals stage's for the same image. Fails unless every prod tag matches.
fn closing_table(runner: &Runner, repository: &str) -> Result<()> {
    // Keyed by the registry's place in the pipeline, so dev, stage, prod
    // print in that order.
    let mut digests: BTreeMap<(usize, &str, String), String> = BTreeMap::new();
    for (order, (env, registry)) in REGISTRIES.into_iter().enumerate() {
        let target = Target {
            registry: registry.into(),
            repository: repository.into(),
        };
        let list = in_rig(
            &[],
            Step::new(
                "skopeo",
                [
                    "list-tags",
                    "--tls-verify=false",
                    &format!("docker://{}", target.image()),
                ],
            ),
        );
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
