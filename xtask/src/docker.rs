//! The docker CLI: every `docker` command line this project runs is built here,
//! and the JSON it answers with is parsed here.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::cli::{flag_value, Progress};
use crate::plan::Image;
use crate::step::{Step, Tool};

pub const TOOL: Tool = Tool {
    program: "docker",
    install: "install Docker with the buildx plugin: https://docs.docker.com/engine/install/",
};

fn docker(args: impl IntoIterator<Item = impl Into<String>>) -> Step {
    Step::new(TOOL.program, args)
}

/// Where a build's image goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Into the local engine's image store (`--load`).
    Load,
    /// To the registry, every tag (`--push`).
    Push,
    /// Nowhere: the builder's cache keeps every step, for the push's build
    /// to reuse (`--output type=cacheonly`).
    CacheOnly,
}

/// `docker buildx build` for one image: its platform, Dockerfile, tags and
/// labels; the digest is written to `metadata` (never read from log text);
/// the image goes to `output`.
pub fn build(
    image: &Image,
    metadata: &Path,
    output: Output,
    progress: Progress,
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
        "--progress".into(),
        flag_value(progress),
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
    let values = [
        image.variant.as_str(),
        &image.labels[crate::plan::REVISION_LABEL],
        &image.labels[crate::plan::VERSION_LABEL],
    ];
    for (arg, value) in SET_BY_XTASK.into_iter().zip(values) {
        args.extend(["--build-arg".into(), format!("{arg}={value}")]);
    }
    for (key, value) in build_args {
        let value = value.replace("{arch}", image.arch.as_str());
        args.extend(["--build-arg".into(), format!("{key}={value}")]);
    }
    args.extend(cache.iter().cloned());
    let output: &[&str] = match output {
        Output::Load => &["--load"],
        Output::Push => &["--push"],
        Output::CacheOnly => &["--output", "type=cacheonly"],
    };
    args.extend(output.iter().map(|flag| flag.to_string()));
    args.push(".".into());
    docker(args)
}

/// The build arguments every build gets from the image's variant, revision
/// and version, in that order; a user's `--build-arg` cannot set them.
pub const SET_BY_XTASK: [&str; 3] = ["VARIANT", "REVISION", "VERSION"];

/// The registry cache flags for one variant and architecture: never one
/// cache shared by both variants, whose layers have nothing in common. ECR
/// accepts a cache only as an OCI image manifest.
pub fn registry_cache(image: &Image) -> Vec<String> {
    let cache = cache_ref(image);
    vec![
        "--cache-from".into(),
        cache.clone(),
        "--cache-to".into(),
        format!("{cache},mode=max,image-manifest=true,oci-mediatypes=true"),
    ]
}

/// The import half of [`registry_cache`] alone.
pub fn registry_cache_from(image: &Image) -> Vec<String> {
    vec!["--cache-from".into(), cache_ref(image)]
}

fn cache_ref(image: &Image) -> String {
    let tag = crate::tags::cache_tag(image.arch, &image.variant);
    format!("type=registry,ref={}:{tag}", image.image)
}

/// The digests BuildKit wrote to the metadata file (never read from log text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Built {
    /// The image manifest's digest: what the registry serves after a push.
    /// Unknown for `--load` into a classic-store engine, which makes the
    /// manifest only when the image is pushed.
    pub manifest: Option<String>,
    /// The image config's digest: the same on every store, and kept by a push.
    pub config: String,
}

/// `containerimage.digest` means two things: after a push, or a `--load`
/// into a containerd-store engine, the manifest's digest (the config's is
/// then `containerimage.config.digest`); after a `--load` into a classic
/// engine, the config's digest, the image ID.
pub fn metadata_digests(text: &str) -> Result<Built> {
    #[derive(Deserialize)]
    struct Metadata {
        #[serde(rename = "containerimage.digest")]
        digest: Option<String>,
        #[serde(rename = "containerimage.config.digest")]
        config: Option<String>,
    }
    let metadata: Metadata =
        serde_json::from_str(text).context("BuildKit's metadata file is not JSON")?;
    let digest = metadata
        .digest
        .context("BuildKit's metadata file has no containerimage.digest")?;
    let config = metadata.config.unwrap_or_else(|| digest.clone());
    let manifest = (config != digest).then_some(digest);
    Ok(Built { manifest, config })
}

/// `docker buildx inspect`: the current builder, its driver and its workers.
pub fn builder_inspect() -> Step {
    docker(["buildx", "inspect"])
}

/// The worker label a `docker` driver carries when the engine keeps images
/// in containerd (the containerd image store): buildx's own test for whether
/// that driver can export a cache (`driver/docker/driver.go`, `Features()`).
pub const SNAPSHOTTER_LABEL: &str = "org.mobyproject.buildkit.worker.snapshotter";

/// What `docker buildx inspect` says about the current builder. buildx
/// prints no JSON for it in the versions CI runners and Debian carry, but
/// its `Name:`/`Driver:` lines and the `Labels:` block are stable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Builder {
    pub name: String,
    pub driver: String,
    /// The value of [`SNAPSHOTTER_LABEL`] on a node, when one carries it.
    pub snapshotter: Option<String>,
}

impl Builder {
    pub fn parse(text: &str) -> Result<Builder> {
        // The first `key: value` line; a label line is one too, indented
        // under `Labels:`.
        let field = |key: &str| {
            text.lines().find_map(|line| {
                let rest = line.trim_start().strip_prefix(key)?;
                Some(rest.trim_start().strip_prefix(':')?.trim().to_string())
            })
        };
        let driver = field("Driver")
            .filter(|d| !d.is_empty())
            .context("`docker buildx inspect` names no driver")?;
        Ok(Builder {
            name: field("Name").unwrap_or_default(),
            driver,
            // A classic engine prints a `Labels:` block too (host-gateway-ip),
            // so the label itself counts.
            snapshotter: field(SNAPSHOTTER_LABEL),
        })
    }

    /// The rule buildx itself applies: every driver but `docker` can export
    /// a build cache, and `docker` only on a containerd-store engine.
    pub fn can_export_cache(&self) -> bool {
        self.driver != "docker" || self.snapshotter.is_some()
    }

    /// One line for a build that wanted a registry cache and cannot have one.
    pub fn cannot_export_note(&self) -> String {
        format!(
            "note: builder `{}` (driver docker, classic image store) cannot export a build cache, so this build uses no registry cache; \
             for one, use a docker-container builder (`docker buildx create --use --driver docker-container`; in CI, docker/setup-buildx-action) \
             or turn on the engine's containerd image store",
            self.name
        )
    }
}

/// Where the engine keeps its data (images, build cache, and the volumes of
/// a docker-container builder's BuildKit): `docker info`'s `DockerRootDir`.
pub fn data_root() -> Step {
    docker(["info", "--format", "{{json .DockerRootDir}}"])
}

pub fn parse_data_root(text: &str) -> Result<String> {
    let root: String =
        serde_json::from_str(text.trim()).context("`docker info` answered no DockerRootDir")?;
    if root.is_empty() {
        bail!("`docker info` answered an empty DockerRootDir");
    }
    Ok(root)
}

/// The OS and architecture of a local image.
pub fn image_inspect(reference: &str) -> Step {
    docker(["image", "inspect", reference])
}

/// The ID of each local image `references` name, one per line; an error
/// naming any that is not there.
pub fn local_ids(references: &[String]) -> Step {
    let mut args = vec!["image", "inspect", "--format", "{{.Id}}"];
    args.extend(references.iter().map(String::as_str));
    docker(args)
}

/// The image config of a pushed image, read from the registry.
pub fn registry_inspect(reference: &str) -> Step {
    imagetools_inspect(reference, "{{json .Image}}")
}

/// A pushed image's manifest digest and config, read from the registry.
pub fn registry_describe(reference: &str) -> Step {
    imagetools_inspect(reference, "{{json .}}")
}

fn imagetools_inspect(reference: &str, format: &str) -> Step {
    docker([
        "buildx",
        "imagetools",
        "inspect",
        reference,
        "--format",
        format,
    ])
}

/// What [`registry_describe`] answers for a single-platform image.
#[derive(Debug, PartialEq, Eq)]
pub struct Pushed {
    pub digest: String,
    pub platform: String,
    pub revision: Option<String>,
}

pub fn parse_pushed(text: &str) -> Result<Pushed> {
    #[derive(Deserialize)]
    struct Described {
        manifest: Descriptor,
        image: Config,
    }
    #[derive(Deserialize)]
    struct Descriptor {
        #[serde(rename = "mediaType")]
        media_type: String,
        digest: String,
    }
    #[derive(Deserialize)]
    struct Config {
        #[serde(flatten)]
        platform: Platform,
        #[serde(default)]
        config: Labels,
    }
    #[derive(Deserialize, Default)]
    struct Labels {
        #[serde(rename = "Labels", default)]
        labels: BTreeMap<String, String>,
    }
    let mut described: Described =
        serde_json::from_str(text).context("not one image's manifest and config")?;
    // One image, as `build` pushes it (`--provenance=false`), never an index.
    let kind = &described.manifest.media_type;
    if !kind.ends_with("image.manifest.v1+json") && !kind.ends_with("manifest.v2+json") {
        bail!("a {kind}, not a single image's manifest");
    }
    let Platform { os, architecture } = described.image.platform;
    Ok(Pushed {
        digest: described.manifest.digest,
        platform: format!("{os}/{architecture}"),
        revision: described
            .image
            .config
            .labels
            .remove(crate::plan::REVISION_LABEL),
    })
}

/// Tag the image `image@digest` already in the registry with `tags`,
/// manifest only: `--prefer-index=false` keeps a single image as it is,
/// where `imagetools create` would otherwise wrap it in a new index (a new
/// digest).
pub fn retag(image: &str, digest: &str, tags: &[String]) -> Step {
    let mut step = docker(["buildx", "imagetools", "create", "--prefer-index=false"]);
    for tag in tags {
        step.args.extend(["--tag".into(), format!("{image}:{tag}")]);
    }
    step.args.push(format!("{image}@{digest}"));
    step
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
/// Unbounded: a pushed image is pulled first, minutes for a GPU image.
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
    .unbounded()
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
        .find_map(|d| d.strip_prefix(image)?.strip_prefix('@'))
        .map(str::to_string)
        .with_context(|| format!("the engine recorded no digest for {image}"))
}

/// Every local image named `image`, any tag, as `name:tag` references.
pub fn list_images(image: &str) -> Step {
    docker([
        "image",
        "ls",
        "--filter",
        &format!("reference={image}:*"),
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ])
}

/// Remove images by reference: an image that another name shares (the same
/// layers built by another project, say) keeps that name, and so stays.
pub fn remove_images(references: &[String]) -> Step {
    let mut args = vec!["image", "rm", "--force"];
    args.extend(references.iter().map(String::as_str));
    docker(args)
}

/// The command that empties the build cache of the current builder, every
/// project's records with this repository's: `clean` prints it, never runs it.
pub fn prune_build_cache() -> Step {
    docker(["builder", "prune", "--all"])
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
            Progress::Plain,
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
        let local = parse_platform(r#"[{"Os": "linux", "Architecture": "arm64"}]"#).unwrap();
        let remote =
            parse_platform(r#"{"os": "linux", "architecture": "arm64", "config": {}}"#).unwrap();
        assert_eq!(local, remote);
        assert_eq!(
            parse_repo_digest(r#"["other/x@sha256:1", "r/app@sha256:2"]"#, "r/app").unwrap(),
            "sha256:2"
        );
    }

    /// `imagetools inspect --format '{{json .}}'` as buildx 0.29 prints it
    /// for a pushed single-platform image (cut to what is read).
    #[test]
    fn reads_a_pushed_image_and_tags_it_by_digest() {
        let text = r#"{
  "name": "127.0.0.1:5001/itest:t1",
  "manifest": {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": "sha256:dbe1", "size": 497},
  "image": {"created": "2026-12-02T02:45:09Z", "architecture": "amd64", "os": "linux",
            "config": {"WorkingDir": "/", "Labels": {"org.opencontainers.image.revision": "abc"}}}
}"#;
        let pushed = Pushed {
            digest: "sha256:dbe1".into(),
            platform: "linux/amd64".into(),
            revision: Some("abc".into()),
        };
        assert_eq!(parse_pushed(text).unwrap(), pushed);
        let unlabelled = text.replace(
            r#", "Labels": {"org.opencontainers.image.revision": "abc"}"#,
            "",
        );
        assert_eq!(parse_pushed(&unlabelled).unwrap().revision, None);
        // An index (several platforms) has no single config to read; one of
        // a single platform has, and is still no single image.
        assert!(parse_pushed(r#"{"manifest": {"digest": "sha256:1"}, "image": {}}"#).is_err());
        let index = text.replace(
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.oci.image.index.v1+json",
        );
        let err = parse_pushed(&index).unwrap_err().to_string();
        assert_eq!(
            err,
            "a application/vnd.oci.image.index.v1+json, not a single image's manifest"
        );
        let oci = text.replace(
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.oci.image.manifest.v1+json",
        );
        assert_eq!(parse_pushed(&oci).unwrap(), pushed);
        let tags = [
            "0123abcd-amd64-gpu".to_string(),
            "latest-amd64-gpu".to_string(),
        ];
        assert_eq!(
            retag("r/app", "sha256:dbe1", &tags).to_string(),
            "docker buildx imagetools create --prefer-index=false --tag r/app:0123abcd-amd64-gpu --tag r/app:latest-amd64-gpu r/app@sha256:dbe1"
        );
    }

    /// `docker buildx inspect` of a docker-driver builder, with `labels`.
    fn inspect_text(driver: &str, labels: &str) -> String {
        format!(
            "Name:          default\nDriver:        {driver}\nLast Activity: 2026-12-01 07:00:00 +0000 UTC\n\n\
             Nodes:\nName:             default\nEndpoint:         default\nStatus:           running\n\
             BuildKit version: v0.25.2\nPlatforms:        linux/amd64, linux/arm64\n{labels}\
             GC Policy rule#0:\n  All:            false\n"
        )
    }

    #[test]
    fn cache_export_follows_buildx_own_rule() {
        let classic = inspect_text(
            "docker",
            "Labels:\n org.mobyproject.buildkit.worker.moby.host-gateway-ip: 172.17.0.1\n",
        );
        let containerd = inspect_text(
            "docker",
            "Labels:\n org.mobyproject.buildkit.worker.moby.host-gateway-ip: 172.17.0.1\n \
             org.mobyproject.buildkit.worker.snapshotter:          overlayfs\n",
        );
        let container = inspect_text(
            "docker-container",
            "Labels:\n org.mobyproject.buildkit.worker.executor: oci\n",
        );
        let classic = Builder::parse(&classic).unwrap();
        assert_eq!(
            (classic.name.as_str(), classic.driver.as_str()),
            ("default", "docker")
        );
        assert_eq!(classic.snapshotter, None);
        assert!(!classic.can_export_cache());
        let containerd = Builder::parse(&containerd).unwrap();
        assert_eq!(containerd.snapshotter.as_deref(), Some("overlayfs"));
        assert!(containerd.can_export_cache());
        let container = Builder::parse(&container).unwrap();
        assert!(container.can_export_cache());
        assert!(Builder::parse("Name: x\n").is_err());
    }

    /// The real `docker buildx inspect` of the rig's two engines (Docker 28.5,
    /// buildx 0.29): see tests/fixtures/README.md.
    #[test]
    fn the_rule_on_real_output_of_both_engines() {
        let containerd = Builder::parse(include_str!(
            "../tests/fixtures/buildx-inspect-containerd.txt"
        ))
        .unwrap();
        assert_eq!(
            (containerd.name.as_str(), containerd.driver.as_str()),
            ("default", "docker")
        );
        assert_eq!(containerd.snapshotter.as_deref(), Some("overlayfs"));
        assert!(containerd.can_export_cache());
        let classic =
            Builder::parse(include_str!("../tests/fixtures/buildx-inspect-classic.txt")).unwrap();
        assert_eq!(
            (classic.name.as_str(), classic.driver.as_str()),
            ("default", "docker")
        );
        assert_eq!(classic.snapshotter, None);
        assert!(!classic.can_export_cache());
    }

    #[test]
    fn the_fallback_note_is_one_line_and_names_the_builders_to_use() {
        let builder = Builder::parse(&inspect_text("docker", "")).unwrap();
        let note = builder.cannot_export_note();
        assert!(!note.contains('\n'));
        assert!(note.contains("builder `default`"));
        assert!(note.contains("docker buildx create --use --driver docker-container"));
        assert!(note.contains("containerd image store"));
    }

    #[test]
    fn metadata_digests_mean_the_same_on_both_stores() {
        // --push (either store) or --load into a containerd-store engine.
        let pushed =
            r#"{"containerimage.digest": "sha256:m", "containerimage.config.digest": "sha256:c"}"#;
        assert_eq!(
            metadata_digests(pushed).unwrap(),
            Built {
                manifest: Some("sha256:m".into()),
                config: "sha256:c".into()
            }
        );
        // --load into a classic engine: the digest is the config's.
        for classic in [
            r#"{"containerimage.digest": "sha256:c"}"#,
            r#"{"containerimage.digest": "sha256:c", "containerimage.config.digest": "sha256:c"}"#,
        ] {
            assert_eq!(
                metadata_digests(classic).unwrap(),
                Built {
                    manifest: None,
                    config: "sha256:c".into()
                }
            );
        }
        assert!(metadata_digests("{}").is_err());
        assert!(metadata_digests("no").is_err());
    }

    #[test]
    fn reads_the_data_root() {
        assert_eq!(
            parse_data_root("\"/var/lib/docker\"\n").unwrap(),
            "/var/lib/docker"
        );
        assert!(parse_data_root("\"\"").is_err());
        assert!(parse_data_root("").is_err());
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
