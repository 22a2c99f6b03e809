//! `clean`: remove this repository's local images and its build cache, and
//! nothing else.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::build_cache::{self, Record, Run};
use crate::cli::CleanArgs;
use crate::docker;
use crate::error::Usage;
use crate::exec::{require_tools, Runner, Step};

pub fn run(args: CleanArgs, runner: &Runner, root: &Path) -> Result<()> {
    // Read before anything is removed: a Dockerfile that cannot be read
    // stops the run with nothing changed.
    let mut stages = Vec::new();
    for variant in &super::architectures(root)?.variants {
        let path = root.join(variant.dockerfile());
        let text = std::fs::read_to_string(&path).map_err(|err| {
            Usage(format!(
                "cannot read {} ({err}), the Dockerfile of variant {} in .aws-architecture: restore it, or remove the variant",
                path.display(),
                variant.name
            ))
        })?;
        stages.extend(build_cache::stages(&text));
    }
    let windows = build_cache::windows(root);
    if !runner.dry_run {
        require_tools(&[docker::TOOL])?;
    }
    remove_images(&args, runner)?;
    prune_cache(runner, &stages, &windows)
}

fn remove_images(args: &CleanArgs, runner: &Runner) -> Result<()> {
    // Both names a build may have used: in the registry, and local-only.
    let mut names = vec![super::image_name(&args.target, false)?];
    let bare = crate::target::repository_name(
        Some(args.target.env),
        args.target.repository.as_deref(),
        &|k| std::env::var(k).ok(),
    )
    .map_err(Usage)?;
    if !names.contains(&bare) {
        names.push(bare);
    }
    for name in names {
        let Some(ids) = runner.read("", &docker::list_images(&name))? else {
            runner.note(
                "",
                &format!("(dry run) would remove every image listed above for {name}"),
            );
            continue;
        };
        let mut ids: Vec<String> = ids
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            runner.note("", &format!("no local images named {name}"));
            continue;
        }
        runner.run("", &docker::remove_images(&ids))?;
    }
    Ok(())
}

/// The engine's build cache is every project's: only the records this
/// repository's builds made go (see `build_cache`).
fn prune_cache(runner: &Runner, stages: &[Vec<Run>], windows: &[(f64, f64)]) -> Result<()> {
    // A docker-container builder keeps a cache of its own, out of the
    // engine's reach; it is that builder's to clear. Only a note hangs on
    // this, so a failed inspect is no reason to stop.
    if let Some(Ok(text)) = runner.probe("", &docker::builder_inspect())? {
        if let Some(driver) = docker::own_cache_driver(&text) {
            runner.note(
                "",
                &format!(
                    "note: the current buildx builder (driver {driver}) keeps its own build cache, which clean leaves alone: `docker buildx prune` clears that builder's cache, all of it"
                ),
            );
        }
    }
    let Some(records) = cache_records(runner)? else {
        runner.note(
            "",
            "(dry run) would remove, with `docker builder prune --filter id=...`, the records of that listing which this repository's builds made",
        );
        return Ok(());
    };
    if windows.is_empty() {
        runner.note(
            "",
            &format!(
                "no `cargo xtask build` is on record in this checkout ({}), so no build cache is recognised as its own; left alone",
                build_cache::WINDOWS_FILE
            ),
        );
        return Ok(());
    }
    let ours: Vec<String> = build_cache::ours(&records, stages, windows)
        .into_iter()
        .collect();
    if ours.is_empty() {
        runner.note("", "no build cache of this repository's builds");
        return Ok(());
    }
    // One argument per batch: a whole engine's worth of IDs in one regular
    // expression could pass the kernel's limit on one argument's length.
    for batch in ours.chunks(PRUNE_BATCH) {
        runner.run("", &docker::prune_build_cache(batch))?;
    }
    let left = cache_records(runner)?
        .unwrap_or_default()
        .iter()
        .filter(|r| ours.contains(&r.id))
        .count();
    let kept = records.len() - ours.len();
    let mut note = format!(
        "removed {} build-cache records of this repository's builds; {kept} records of other builds left alone",
        ours.len() - left
    );
    if left > 0 {
        note += &format!(
            "; {left} of ours are in use by a running build and stay (run clean again after it)"
        );
    }
    runner.note("", &note);
    Ok(())
}

const PRUNE_BATCH: usize = 500;

/// The engine lists its disk usage for one client at a time and refuses the
/// others ("a disk usage operation is already running"): wait for the one
/// running (another `clean`, `docker system df`) rather than fail.
fn cache_records(runner: &Runner) -> Result<Option<Vec<Record>>> {
    let step = docker::build_cache_records();
    let Some(mut answer) = runner.probe("", &step)? else {
        return Ok(None);
    };
    for _ in 0..40 {
        match answer {
            Ok(json) => return build_cache::parse_records(&json).map(Some),
            Err(stderr) if stderr.contains(BUSY) => {
                std::thread::sleep(Duration::from_millis(250));
                answer = again(runner, &step)?;
            }
            Err(stderr) => {
                bail!("`{step}` failed: {stderr}; is the Docker engine running (`docker info`)?")
            }
        }
    }
    bail!("`{step}`: the engine stayed busy with another disk-usage listing for 10 s; run clean again when it is done")
}

/// The same listing again, not printed a second time.
fn again(runner: &Runner, step: &Step) -> Result<Result<String, String>> {
    Ok(match runner.query_local(step) {
        Ok(text) => Ok(text),
        Err(err) => Err(format!("{err:#}")),
    })
}

const BUSY: &str = "disk usage operation is already running";
