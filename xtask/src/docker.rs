//! The docker CLI: every `docker` command line this project runs is built here,
//! and the JSON it answers with is parsed here.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::exec::{Step, Tool};
use crate::plan::Image;

pub const TOOL: Tool = Tool {
    program: "docker",
    install: "install Docker with the buildx plugin: https://docs.docker.com/engine/install/",
};

fn docker<I, S>(args: I) -> Step
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    Step::new(TOOL.program, args)
}

/// Where a build's result goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Into the local engine's image store.
    Load,
    /// Straight to the registry, every tag.
    Push,
}

/// `docker buildx build` for one image: its platform, Dockerfile, tags and
/// labels; the digest is written to `metadata` (never read from log text).
pub fn build(
    image: &Image,
    metadata: &Path,
    output: Output,
    cache: &[String],
    build_args: &[(String, String)],
) -> Step {
    let mut args: Vec<String> = vec![
        "buildx".into(),
        "build".into(),
        "--platform".into(),
        image.platform.into(),
        "--file".into(),
        image.dockerfile.clone(),
        // Line-based progress, so each line can carry its variant's prefix.
        "--progress".into(),
        "plain".into(),
        // A single-platform manifest, not an index with an attestation
        // manifest beside it: what ECR and AWS Batch expect, and what the
        // architecture check reads.
        "--provenance=false".into(),
        "--metadata-file".into(),
        metadata.display().to_string(),
    ];
    for reference in image.references() {
        args.extend(["--tag".into(), reference]);
    }
    for (key, value) in &image.labels {
        args.extend(["--label".into(), format!("{key}={value}")]);
    }
    // The application reports these at run time (`batch-probe check`).
    for (arg, value) in [
        ("VARIANT", image.variant.as_str()),
        ("REVISION", &image.labels[crate::plan::REVISION_LABEL]),
        ("VERSION", &image.labels[crate::plan::VERSION_LABEL]),
    ] {
        args.extend(["--build-arg".into(), format!("{arg}={value}")]);
    }
    for (key, value) in build_args {
        let value = value.replace("{arch}", image.arch.as_str());
        args.extend(["--build-arg".into(), format!("{key}={value}")]);
    }
    args.extend(cache.iter().cloned());
    args.push(match output {
        Output::Load => "--load".into(),
        Output::Push => "--push".into(),
    });
    args.push(".".into());
    docker(args)
}

/// The registry cache flags for one variant and architecture: never one
/// cache shared by both variants, whose layers have nothing in common. ECR
/// accepts a cache only as an OCI image manifest.
pub fn registry_cache(image: &Image) -> Vec<String> {
    let reference = format!("{}:cache-{}-{}", image.image, image.arch, image.variant);
    vec![
        "--cache-from".into(),
        format!("type=registry,ref={reference}"),
        "--cache-to".into(),
        format!("type=registry,ref={reference},mode=max,image-manifest=true,oci-mediatypes=true"),
    ]
}

/// The digest BuildKit wrote to the metadata file.
pub fn metadata_digest(text: &str) -> Result<String> {
    #[derive(Deserialize)]
    struct Metadata {
        #[serde(rename = "containerimage.digest")]
        digest: Option<String>,
    }
    let metadata: Metadata =
        serde_json::from_str(text).context("BuildKit's metadata file is not JSON")?;
    metadata
        .digest
        .context("BuildKit's metadata file has no containerimage.digest")
}

/// `docker buildx inspect`: which driver the current builder uses.
pub fn builder_inspect() -> Step {
    docker(["buildx", "inspect"])
}

/// The driver name from `docker buildx inspect`, which has no JSON output in
/// the buildx versions CI runners carry; its `Driver:` line is stable.
fn builder_driver(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix("Driver:"))
        .map(|driver| driver.trim().to_string())
}

/// The current builder's driver when it keeps a build cache of its own (a
/// docker-container builder, say); `None` for the `docker` driver, whose
/// cache is the engine's, or when `docker buildx inspect` names none.
pub fn own_cache_driver(inspect: &str) -> Option<String> {
    builder_driver(inspect).filter(|driver| driver != "docker")
}

/// The OS and architecture of a local image.
pub fn image_inspect(reference: &str) -> Step {
    docker(["image", "inspect", reference])
}

/// The image config of a pushed image, read from the registry.
pub fn registry_inspect(reference: &str) -> Step {
    docker([
        "buildx",
        "imagetools",
        "inspect",
        reference,
        "--format",
        "{{json .Image}}",
    ])
}

#[derive(Deserialize, Debug, PartialEq, Eq)]
pub struct Platform {
    #[serde(alias = "Os")]
    pub os: String,
    #[serde(alias = "Architecture")]
    pub architecture: String,
}

/// `(os, architecture)` from `docker image inspect` (an array) or from
/// `imagetools inspect --format '{{json .Image}}'` (one config object).
pub fn parse_platform(text: &str) -> Result<Platform> {
    let value: serde_json::Value =
        serde_json::from_str(text).context("image metadata is not JSON")?;
    let config = match value {
        serde_json::Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        serde_json::Value::Array(_) => bail!("no such image"),
        other => other,
    };
    serde_json::from_value(config).context("image metadata has no os/architecture")
}

/// Start the image and run its self-check (`batch-probe check`). A GPU is
/// not required here: this proves the image starts and is the variant and
/// architecture it claims; the GPU itself is checked by the job on AWS Batch.
pub fn run_check(reference: &str, platform: &str) -> Step {
    docker([
        "run",
        "--rm",
        "--platform",
        platform,
        "--env",
        "BATCH_PROBE_ALLOW_NO_GPU=1",
        reference,
        "check",
    ])
}

/// What the image said about itself: the first line of `check` is its report.
#[derive(Deserialize, Debug, PartialEq, Eq)]
pub struct Probe {
    pub variant: Option<String>,
    pub arch: String,
}

pub fn parse_probe(text: &str) -> Result<Probe> {
    let first = text.lines().next().unwrap_or_default();
    serde_json::from_str(first)
        .with_context(|| format!("the image's check printed no report: {first:?}"))
}

/// `docker login` for a registry, the password fed on stdin by `password`.
pub fn login(registry: &str, password: Step) -> Step {
    docker(["login", "--username", "AWS", "--password-stdin", registry]).with_secret_stdin(password)
}

pub fn push(reference: &str) -> Step {
    docker(["push", reference])
}

/// The repo digests the engine recorded for a local image after a push.
pub fn repo_digests(reference: &str) -> Step {
    docker([
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        reference,
    ])
}

/// The digest of `image` (`registry/repo`) among `docker image inspect`'s RepoDigests.
pub fn parse_repo_digest(text: &str, image: &str) -> Result<String> {
    let digests: Vec<String> = serde_json::from_str(text).context("RepoDigests is not JSON")?;
    digests
        .iter()
        .find_map(|d| {
            d.strip_prefix(image)
                .and_then(|rest| rest.strip_prefix('@'))
        })
        .map(str::to_string)
        .with_context(|| format!("the engine recorded no digest for {image}"))
}

/// Image IDs of every local image named `image`, any tag.
pub fn list_images(image: &str) -> Step {
    docker([
        "image",
        "ls",
        "--filter",
        &format!("reference={image}:*"),
        "--format",
        "{{.ID}}",
    ])
}

pub fn remove_images(ids: &[String]) -> Step {
    let mut args = vec!["image".to_string(), "rm".into(), "--force".into()];
    args.extend(ids.iter().cloned());
    docker(args)
}

/// Every record of the engine's build cache, as JSON (the engine's own
/// listing: `docker buildx du` of this buildx has no machine-readable form).
pub fn build_cache_records() -> Step {
    docker([
        "system",
        "df",
        "--verbose",
        "--format",
        "{{json .BuildCache}}",
    ])
}

/// Remove exactly these build-cache records: the engine matches the `id`
/// filter as a regular expression, anchored here to whole IDs.
pub fn prune_build_cache(ids: &[String]) -> Step {
    docker([
        "builder".to_string(),
        "prune".into(),
        "--force".into(),
        "--all".into(),
        "--filter".into(),
        format!("id=^({})$", ids.join("|")),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{Arch, Variant};
    use crate::plan::{plan, rfc3339, Meta};
    use crate::tags::{Context, Sha};

    fn image() -> Image {
        let v = Variant {
            name: "cpu".into(),
            arch: Arch::Arm64,
        };
        let sha = Sha::parse("0123456789abcdef0123456789abcdef01234567").unwrap();
        let meta = Meta {
            source: None,
            created: rfc3339(0),
            title: "app".into(),
        };
        plan(&[&v], &Context::Push { sha }, &meta, "r/app")
            .unwrap()
            .images
            .remove(0)
    }

    #[test]
    fn build_command_snapshot() {
        let step = build(
            &image(),
            Path::new("target/xtask/cpu.json"),
            Output::Push,
            &registry_cache(&image()),
            &[("RUNTIME_IMAGE".into(), "debian:12-{arch}".into())],
        );
        assert_eq!(
            step.to_string(),
            "docker buildx build --platform linux/arm64 --file Dockerfile-cpu --progress plain --provenance=false \
             --metadata-file target/xtask/cpu.json --tag r/app:latest-arm64-cpu --tag r/app:01234567-arm64-cpu \
             --label org.opencontainers.image.created=1970-01-01T00:00:00Z \
             --label org.opencontainers.image.revision=0123456789abcdef0123456789abcdef01234567 \
             --label org.opencontainers.image.title=app-cpu --label org.opencontainers.image.variant=cpu \
             --label org.opencontainers.image.version=01234567 --build-arg VARIANT=cpu \
             --build-arg REVISION=0123456789abcdef0123456789abcdef01234567 --build-arg VERSION=01234567 --build-arg RUNTIME_IMAGE=debian:12-arm64 \
             --cache-from type=registry,ref=r/app:cache-arm64-cpu \
             --cache-to type=registry,ref=r/app:cache-arm64-cpu,mode=max,image-manifest=true,oci-mediatypes=true \
             --push ."
        );
    }

    #[test]
    fn parses_tool_output() {
        assert_eq!(
            metadata_digest(r#"{"containerimage.digest": "sha256:ab"}"#).unwrap(),
            "sha256:ab"
        );
        assert!(metadata_digest("{}").is_err());
        let local = parse_platform(r#"[{"Os": "linux", "Architecture": "arm64"}]"#).unwrap();
        let remote =
            parse_platform(r#"{"os": "linux", "architecture": "arm64", "config": {}}"#).unwrap();
        assert_eq!(local, remote);
        assert_eq!(
            parse_repo_digest(r#"["other/x@sha256:1", "r/app@sha256:2"]"#, "r/app").unwrap(),
            "sha256:2"
        );
        assert_eq!(
            builder_driver("Name: default\nDriver:        docker\n").as_deref(),
            Some("docker")
        );
    }

    #[test]
    fn login_never_carries_the_password() {
        let step = login("r", Step::new("aws", ["ecr", "get-login-password"]));
        assert_eq!(
            step.to_string(),
            "aws ecr get-login-password | docker login --username AWS --password-stdin r"
        );
    }
}
