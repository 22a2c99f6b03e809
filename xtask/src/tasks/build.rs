//! `build`: every selected variant built concurrently with BuildKit, each for
//! its own platform, checked for its architecture, optionally pushed.

use std::path::Path;
use std::time::Instant;

use anyhow::{ensure, Context, Result};

use super::{rerun, signatures};
use crate::arch::Arch;
use crate::cli::{flag_value, BuildArgs, Cache};
use crate::cosign::Key;
use crate::docker::Output;
use crate::exec::{self, concurrently, Reply, Runner};
use crate::plan::{render_table, Image, REVISION_LABEL};
use crate::target::Target;
use crate::{disk, docker, github, tags};

/// What one variant's build (or push) produced.
pub struct Outcome {
    pub variant: String,
    pub platform: &'static str,
    pub tags: Vec<String>,
    /// The digest; `None` in a dry run, which builds nothing.
    pub result: Result<Option<String>>,
    pub seconds: f64,
    /// The registry already held this commit's image: tagged, not rebuilt.
    pub reused: bool,
}

impl Outcome {
    /// What `work` made of `image`, and how long it took.
    pub fn of(image: &Image, work: impl FnOnce() -> Result<Option<String>>) -> Outcome {
        let started = Instant::now();
        let result = work();
        Outcome {
            variant: image.variant.clone(),
            platform: image.platform,
            tags: image.tags.clone(),
            result,
            seconds: started.elapsed().as_secs_f64(),
            reused: false,
        }
    }
}

pub fn run(args: BuildArgs, runner: &Runner, root: &Path) -> Result<()> {
    let images = &args.images;
    let target = args
        .push
        .then(|| super::push_target(&images.target))
        .transpose()?;
    let image = match &target {
        Some(target) => target.image(),
        None => super::image_name(&images.target)?,
    };
    // The registry the build writes to, images or only the cache; without
    // one a registry cache's name would be a bare repository: Docker Hub's.
    let registry = match &target {
        None if args.cache == Cache::Registry => Some(
            super::push_target(&images.target)
                .context("--cache registry keeps the cache in a registry")?,
        ),
        other => other.clone(),
    };
    match &registry {
        None => super::login::refuse_unused(&images.aws)?,
        Some(registry) => {
            super::login::refuse_beside_no_login(&images.aws, &[])?;
            super::login::check_region(registry, &images.aws, images.target.env)?;
        }
    }
    let plan = super::load_plan(
        runner,
        root,
        &images.variant,
        &images.context,
        &image,
        args.push.then_some(images.target.env),
    )?;
    if github::is_actions() {
        crate::git::check_checkout(runner, &plan.revision)?;
    }
    let signing_key = signatures::signing_key(&images.signing, images.target.env, args.push, root)?;
    let login = registry.is_some() && !images.aws.no_login;
    super::require_push_tools(runner, login, signing_key.is_some())?;
    if let Some(key) = &signing_key {
        signatures::check_key(runner, root, key)?;
    }
    if github::is_actions() {
        report_disk(runner, args.min_free_gb)?;
    }
    let registry_cache = wants_registry_cache(args.cache, args.push, runner)?;
    if let Some(registry) = &registry {
        super::login::login(runner, registry, &images.aws, images.target.env)?;
    }

    // Before the builds remove their earlier metadata files.
    runner.take_turn()?;
    if !runner.dry_run {
        std::fs::create_dir_all(root.join(METADATA_DIR)).context("cannot create target/xtask")?;
    }
    // Stage pushes only: the key, and where the image went.
    let signing = signing_key.as_ref().zip(target.as_ref());
    let what = match &target {
        Some(target) => format!("build and push {} to {}", plan.variants(), target.image()),
        None => format!("build {}", plan.variants()),
    };
    let group = github::group(&format!("{what} ({})", plan.context));
    let outcomes: Vec<Outcome> = concurrently(&plan.images, |image| {
        build_one(runner, root, image, &args, registry_cache, signing)
    });
    drop(group);
    if args.push {
        signatures::push_summary(runner, &outcomes, signing_key.as_ref());
    }
    report(runner, &outcomes, args.push)
}

/// Where BuildKit writes each variant's metadata file, under `root`.
const METADATA_DIR: &str = "target/xtask";

/// Registry caching applies to pushed CI builds (or when asked for), and
/// only where the builder can export a cache: see [`docker::Builder`].
fn wants_registry_cache(cache: Cache, push: bool, runner: &Runner) -> Result<bool> {
    let wanted = match cache {
        Cache::Registry => true,
        Cache::Auto => push && github::is_actions(),
        Cache::Local | Cache::None => false,
    };
    if !wanted {
        return Ok(false);
    }
    let Some(text) = runner.read("", &docker::builder_inspect())? else {
        eprintln!("dry run: the registry cache flags below apply if that builder can export a cache; a real run reads its answer");
        return Ok(true);
    };
    let builder = docker::Builder::parse(&text)?;
    if !builder.can_export_cache() {
        github::warning(&builder.cannot_export_note());
    }
    Ok(builder.can_export_cache())
}

/// Under GitHub Actions, the free space where the builder keeps its data,
/// before anything is built; a warning when it is short. Never fatal: a
/// remote engine's data root is not on this machine's disks.
fn report_disk(runner: &Runner, min_free_gb: u64) -> Result<()> {
    // A dry run read no data root: its df shows where the answer goes.
    let root = match runner.read("", &docker::data_root())? {
        Some(text) => docker::parse_data_root(&text)?,
        None => "<DockerRootDir>".to_string(),
    };
    let available = match runner.ask("", &disk::free_space(&root)) {
        Reply::Out(text) => disk::parse_available(&text).map_err(super::message),
        Reply::Failed { why: err, .. } => Err(err),
        Reply::DryRun => return Ok(()),
    };
    match available {
        Ok(available) => match disk::report(&root, available, min_free_gb) {
            (line, true) => github::warning(&line),
            (line, false) => eprintln!("{line}"),
        },
        Err(err) => eprintln!("disk: cannot read the free space in {root}, the engine's data root ({err}); is the engine remote?"),
    }
    Ok(())
}

fn build_one(
    runner: &Runner,
    root: &Path,
    image: &Image,
    args: &BuildArgs,
    registry_cache: bool,
    signing: Option<(&Key, &Target)>,
) -> Outcome {
    let prefix = exec::prefix(&image.variant);
    let metadata = Path::new(METADATA_DIR).join(format!("{}-metadata.json", image.variant));
    // The push imports the registry cache too: where the build found every
    // step there, it only marked them (BuildKit loads a cached layer
    // lazily), and without the import the push would run them again. It
    // exports nothing: the build wrote the cache already.
    let (build_cache, push_cache) = match args.cache {
        Cache::None => (vec!["--no-cache".to_string()], Vec::new()),
        _ if registry_cache => (
            docker::registry_cache(image),
            docker::registry_cache_from(image),
        ),
        _ => (Vec::new(), Vec::new()),
    };
    // On stage the build pushes only the tags that never move; the others
    // (`latest-*`) follow once the image is signed, so a failed signature
    // leaves them at the last signed image.
    let mut built = image.clone();
    let mut moving = Vec::new();
    if signing.is_some() {
        (built.tags, moving) = image
            .tags
            .iter()
            .cloned()
            .partition(|t| tags::is_immutable(t));
    }
    let build = |output, mut cache: Vec<String>| {
        if let Some(network) = args.network {
            cache.extend(["--network".to_string(), flag_value(network)]);
        }
        docker::build(
            &built,
            &metadata,
            output,
            args.progress,
            &cache,
            &args.build_args,
        )
    };
    // With --push: the build, then the push, which builds again with every
    // step cached (no --no-cache, no cache export) and uploads.
    let (build_step, push_step) = match args.push {
        true => (
            build(Output::CacheOnly, build_cache),
            Some(build(Output::Push, push_cache)),
        ),
        false => (build(Output::Load, build_cache), None),
    };
    // Only a commit's clean tree, built as it always is: `--smoke` runs the
    // local image, which a reused one is not; build arguments may differ
    // from the first run's; `--cache none` asks for everything again.
    let reusable = args.push
        && !image.labels[REVISION_LABEL].ends_with("-dirty")
        && !args.smoke
        && args.build_args.is_empty()
        && args.cache != Cache::None;
    let mut reused = false;
    let mut outcome = Outcome::of(image, || {
        if reusable {
            if let Some(digest) = rerun::already_pushed(runner, &prefix, image, signing)? {
                // Not the commit's own tag, just read there: an immutable
                // repository refuses to write even the same digest again.
                let read = rerun::commit_tag(image);
                let others: Vec<String> = image
                    .tags
                    .iter()
                    .filter(|t| Some(*t) != read)
                    .cloned()
                    .collect();
                rerun::retag(runner, &prefix, image, &digest, &others)?;
                reused = true;
                return Ok(Some(digest));
            }
        }
        // An earlier build's file would pass for this one's if BuildKit
        // wrote none: its digest reported, and on stage signed.
        if !runner.dry_run {
            match std::fs::remove_file(root.join(&metadata)) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    return Err(err).context("cannot remove the earlier build's metadata file");
                }
                _ => {}
            }
        }
        // The build runs once: a Dockerfile error or a failing compile fails
        // the same way each time, and `--cache none` would start it from
        // nothing again. The push is retried, its build all cached: BuildKit
        // retries an upload itself only on some errors (5xx, resets, broken
        // pipes: util/resolver/retryhandler), not on throttling (429) or a
        // refused connection. A failed push leaves the registry cache the
        // build wrote, for a re-run to start from.
        runner
            .run(&prefix, &build_step)
            .with_context(|| format!("build of {} for {} failed", image.variant, image.platform))?;
        if let Some(push) = &push_step {
            runner.run_with_retry(&prefix, push).with_context(|| {
                format!(
                    "push of {} for {} to {} failed (the build succeeded)",
                    image.variant, image.platform, image.image
                )
            })?;
        }
        // A dry run builds nothing, so it has no metadata file to read.
        let digest = if runner.dry_run {
            None
        } else {
            let text = std::fs::read_to_string(root.join(&metadata)).with_context(|| {
                format!("BuildKit wrote no metadata file {}", metadata.display())
            })?;
            let built = docker::metadata_digests(&text)?;
            Some(if args.push {
                // A pushed image is named by its manifest digest, which
                // the registry serves.
                built
                    .manifest
                    .context("BuildKit's metadata file names no manifest digest after a push")?
            } else {
                // A loaded image by its config digest: the one digest that
                // means the same on the classic and the containerd store.
                built.config
            })
        };
        check_platform(runner, &prefix, image, args.push)?;
        // A pushed image is named by its digest, which a dry run has not read.
        let pushed = digest.as_deref().unwrap_or(super::DRY_RUN_DIGEST);
        // Before the signature, which makes a stage image promotable: an
        // image that fails its check stays unsigned.
        if args.smoke {
            smoke(runner, &prefix, image, args.push.then_some(pushed))?;
        }
        if let Some((key, target)) = signing {
            signatures::sign(runner, &prefix, target, digest.as_deref(), key)?;
            rerun::retag(runner, &prefix, image, pushed, &moving)?;
        }
        Ok(digest)
    });
    outcome.reused = reused;
    outcome
}

/// The built image must be for the platform asked for: the legacy builder,
/// for one, silently reuses a cached image of another architecture.
fn check_platform(runner: &Runner, prefix: &str, image: &Image, pushed: bool) -> Result<()> {
    let variant = &image.variant;
    let query = if pushed {
        // By the commit's own tag, which no other commit's build moves (as
        // `latest-*` may be): known before the build, so a dry run prints
        // this very command.
        let tag = rerun::commit_tag(image).unwrap_or(&image.tags[0]);
        docker::registry_inspect(&format!("{}:{tag}", image.image))
    } else {
        docker::image_inspect(&image.references()[0])
    };
    let Some(text) = runner.read(prefix, &query)? else {
        return Ok(());
    };
    let found = docker::parse_platform(&text)
        .with_context(|| format!("cannot read the architecture of the {variant} image"))?;
    let found = format!("{}/{}", found.os, found.architecture);
    ensure!(
        found == image.platform,
        "the {variant} image is {found}, but .aws-architecture asks for {}; build with BuildKit (docker buildx), which honours --platform",
        image.platform
    );
    eprintln!("{prefix}architecture check: {found}, as asked");
    Ok(())
}

/// Start the image and run its `check`: it must start, and say it is the
/// variant and architecture it was built as. A pushed image runs by its
/// `digest`, which no other run's push can move.
fn smoke(runner: &Runner, prefix: &str, image: &Image, digest: Option<&str>) -> Result<()> {
    let variant = &image.variant;
    if let Some(why) = cannot_run(image.arch) {
        eprintln!("{prefix}smoke check skipped: {why}");
        return Ok(());
    }
    let reference = &match digest {
        Some(digest) => format!("{}@{digest}", image.image),
        None => image.references()[0].clone(),
    };
    let Some(text) = runner
        .read(prefix, &docker::run_check(reference, image.platform))
        .with_context(|| format!("smoke check of the {variant} image failed"))?
    else {
        return Ok(());
    };
    let probe = docker::parse_probe(&text)?;
    ensure!(
        probe.variant.as_ref() == Some(variant) && probe.arch == image.arch.as_str(),
        "smoke check: the {variant} image reports variant {:?} on {}, expected {variant} on {}",
        probe.variant.unwrap_or_default(),
        probe.arch,
        image.arch
    );
    let arch = probe.arch;
    eprintln!("{prefix}smoke check: {reference} starts and reports {variant} on {arch}");
    Ok(())
}

/// Why an image of `arch` cannot run on this machine, if it cannot: neither
/// native nor emulated through a qemu binfmt handler.
fn cannot_run(arch: Arch) -> Option<String> {
    // The kernel's name for it: what Rust reports as the host's, and what
    // qemu's binfmt handler is named after.
    let machine = match arch {
        Arch::Amd64 => "x86_64",
        Arch::Arm64 => "aarch64",
    };
    if std::env::consts::ARCH == machine {
        return None;
    }
    let handler = format!("qemu-{machine}");
    match std::fs::read_to_string(format!("/proc/sys/fs/binfmt_misc/{handler}")) {
        Ok(state) if state.starts_with("enabled") => None,
        _ => Some(format!(
            "{} cannot run here: no {handler} binfmt handler (apt-get install qemu-user-static binfmt-support)",
            arch.platform()
        )),
    }
}

/// The closing table (stdout), the GitHub step summary, and one error naming
/// every variant that failed: one failure never hides another's result.
pub fn report(runner: &Runner, outcomes: &[Outcome], pushed: bool) -> Result<()> {
    // A loaded image is named by its config digest (see `build_one`).
    let (verb, digest) = if pushed {
        ("pushed", "DIGEST")
    } else {
        ("built", "CONFIG DIGEST")
    };
    let mut rows =
        vec![["VARIANT", "PLATFORM", "RESULT", digest, "TIME", "TAGS"].map(String::from)];
    let mut failures = Vec::new();
    for outcome in outcomes {
        let (result, digest) = match &outcome.result {
            Ok(Some(digest)) if outcome.reused => ("reused", digest.as_str()),
            Ok(Some(digest)) => ("ok", digest.as_str()),
            Ok(None) => ("dry run", "-"),
            Err(err) => {
                failures.push(format!("{}: {err:#}", outcome.variant));
                ("FAILED", "-")
            }
        };
        rows.push([
            outcome.variant.clone(),
            outcome.platform.to_string(),
            result.to_string(),
            digest.to_string(),
            format!("{:.1}s", outcome.seconds),
            outcome.tags.join(", "),
        ]);
    }
    super::print_out(&render_table(&rows))?;
    // The same table on the run's page, failures included.
    let summary = format!("### Images {verb}\n\n{}", github::markdown_table(&rows));
    github::summary(runner, &summary);
    ensure!(
        failures.is_empty(),
        "{} of {} variants failed:\n  {}",
        failures.len(),
        outcomes.len(),
        failures.join("\n  ")
    );
    Ok(())
}
