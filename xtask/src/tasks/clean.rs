//! `clean`: remove this repository's local images and its build cache, and
//! nothing else.

use std::path::Path;

use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use crate::build_cache;
use crate::cli::CleanArgs;
use crate::docker;
use crate::exec::{require_tools, Runner};

pub fn run(args: CleanArgs, runner: &Runner, root: &Path) -> Result<()> {
    // Read before anything is removed: a Dockerfile that cannot be read
    // stops the run with nothing changed.
    let mut stages = Vec::new();
    for variant in &super::architectures(root)?.variants {
        let path = root.join(variant.dockerfile());
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        stages.extend(build_cache::stages(&text));
    }
    if !runner.dry_run {
        require_tools(&[docker::TOOL])?;
    }
    remove_images(&args, runner)?;
    prune_cache(runner, &stages)
}

fn remove_images(args: &CleanArgs, runner: &Runner) -> Result<()> {
    // Both names a build may have used: in the registry, and local-only.
    let mut names = vec![super::image_name(&args.target, false)?];
    let bare = crate::target::repository_name(
        Some(args.target.env),
        args.target.repository.as_deref(),
        &|k| std::env::var(k).ok(),
    )
    .map_err(crate::error::Usage)?;
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

/// The engine's build cache is every project's: only the records built from
/// this repository's Dockerfiles and files go (see `build_cache`).
fn prune_cache(runner: &Runner, stages: &[Vec<build_cache::Run>]) -> Result<()> {
    // A docker-container builder keeps a cache of its own, out of the
    // engine's reach; it is that builder's to clear.
    if let Some(text) = runner.read("", &docker::builder_inspect())? {
        match docker::builder_driver(&text).as_deref() {
            Some("docker") | None => {}
            Some(driver) => runner.note(
                "",
                &format!(
                    "note: the current buildx builder (driver {driver}) keeps its own build cache, which clean leaves alone: `docker buildx prune` clears that builder's cache, all of it"
                ),
            ),
        }
    }
    let Some(json) = cache_records(runner)? else {
        runner.note(
            "",
            "(dry run) would remove, with `docker builder prune --filter id=...`, the records of that listing which this repository's Dockerfiles made",
        );
        return Ok(());
    };
    let records = build_cache::parse_records(&json)?;
    let ours = build_cache::ours(&records, stages);
    if ours.is_empty() {
        runner.note("", "no build cache of this repository's Dockerfiles");
        return Ok(());
    }
    let ids: Vec<String> = ours.into_iter().collect();
    runner.run("", &docker::prune_build_cache(&ids))?;
    runner.note(
        "",
        &format!(
            "removed {} build-cache records of this repository's Dockerfiles; {} records of other builds left alone",
            ids.len(),
            records.len() - ids.len()
        ),
    );
    Ok(())
}

/// The engine lists its disk usage for one client at a time and refuses the
/// others ("a disk usage operation is already running"): wait for the one
/// running (another `clean`, `docker system df`) rather than fail.
fn cache_records(runner: &Runner) -> Result<Option<String>> {
    let step = docker::build_cache_records();
    for _ in 0..40 {
        match runner.probe("", &step)? {
            None => return Ok(None),
            Some(Ok(json)) => return Ok(Some(json)),
            Some(Err(stderr)) if stderr.contains(BUSY) => {
                std::thread::sleep(Duration::from_millis(250))
            }
            Some(Err(stderr)) => bail!("`{step}` failed: {stderr}"),
        }
    }
    bail!("`{step}`: the engine stayed busy with another disk-usage listing for 10 s; run clean again")
}

const BUSY: &str = "disk usage operation is already running";
