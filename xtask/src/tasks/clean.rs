//! `clean`: remove this repository's local images, and nothing else.

use anyhow::Result;

use crate::cli::CleanArgs;
use crate::docker;
use crate::exec::{require_tools, Runner};

pub fn run(args: CleanArgs, runner: &Runner) -> Result<()> {
    if !runner.dry_run {
        require_tools(&[docker::TOOL])?;
    }
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
    // BuildKit's cache is shared by every project on the engine and cannot be
    // filtered by repository; removing the images frees their layers, and the
    // rest is left alone rather than pruning other projects' cache.
    runner.note("", "BuildKit's cache is shared with other projects and was left alone; `docker buildx prune` clears all of it");
    Ok(())
}
