//! The rig's registries read back: every tag of a repository in dev, stage
//! and prod, with the digest, architecture and revision label of its image.
//! The rehearsal's closing table is made from it, and the workflow tests
//! assert on it.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context as _, Result};

use super::in_rig;
use crate::arch::Arch;
use crate::exec::{concurrently, Reply, Runner};
use crate::plan::{render_table, REVISION_LABEL};
use crate::target::Target;
use crate::tasks::login::login_step;
use crate::{skopeo, tags};

/// The rig's registries, in the pipeline's order (ports fixed by `rig/rig`).
pub const REGISTRIES: [(&str, &str); 3] = [
    ("dev", "127.0.0.1:5001"),
    ("stage", "127.0.0.1:5002"),
    ("prod", "127.0.0.1:5003"),
];

/// One tag's image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// The digest of the manifest the tag points at.
    pub digest: String,
    pub architecture: String,
    /// The `org.opencontainers.image.revision` label.
    pub revision: Option<String>,
}

/// What the registries hold for one repository.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Keyed by environment (`dev`, `stage`, `prod`) and tag.
    pub images: BTreeMap<(String, String), Image>,
    /// The build cache's tags (`cache-*`), by environment: not images.
    pub caches: BTreeSet<(String, String)>,
}

impl Snapshot {
    pub fn image(&self, env: &str, tag: &str) -> Option<&Image> {
        self.images.get(&(env.to_string(), tag.to_string()))
    }

    pub fn has(&self, env: &str, tag: &str) -> bool {
        self.image(env, tag).is_some()
    }

    pub fn digest(&self, env: &str, tag: &str) -> Option<&str> {
        self.image(env, tag).map(|image| image.digest.as_str())
    }

    /// The tags of one environment, sorted.
    pub fn tags(&self, env: &str) -> Vec<&str> {
        self.images
            .keys()
            .filter(|(e, _)| e == env)
            .map(|(_, tag)| tag.as_str())
            .collect()
    }
}

fn target(registry: &str, repository: &str) -> Target {
    Target {
        registry: registry.into(),
        repository: repository.into(),
    }
}

/// Log the rig's own Docker config in to every registry (the workflows under
/// act log in to a config of their own), with the emulator's ECR password.
pub fn login(runner: &Runner, repository: &str) -> Result<()> {
    for (_, registry) in REGISTRIES {
        let step = login_step(&target(registry, repository), None, None);
        runner.run("[registries] ", &in_rig(&[], step))?;
    }
    Ok(())
}

/// Every tag of `repository` in every registry, and its image. A registry
/// that does not know the repository yet holds no tags; any other failure
/// is an error, so that a missing tag is never a registry that could not be
/// read. The build cache's tags (`cache-*`) are only listed.
pub fn read(runner: &Runner, repository: &str) -> Result<Snapshot> {
    let mut snapshot = Snapshot::default();
    for (env, registry) in REGISTRIES {
        let target = target(registry, repository);
        let text = match runner.ask("", &in_rig(&[], skopeo::list_tags(&target))) {
            Reply::Out(text) => text,
            Reply::DryRun => continue,
            Reply::Failed { why, .. } if skopeo::is_not_found(&why) || why.contains("404") => {
                continue
            }
            Reply::Failed { why, .. } => bail!("cannot list the tags of {}: {why}", target.image()),
        };
        let listed: serde_json::Value =
            serde_json::from_str(&text).context("skopeo list-tags answered no JSON")?;
        let (caches, tags): (Vec<String>, Vec<String>) = listed["Tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str())
            .map(String::from)
            .partition(|t| t.starts_with(&format!("{}-", tags::CACHE)));
        let env_of = |tag| (env.to_string(), tag);
        snapshot.caches.extend(caches.into_iter().map(env_of));
        let images = concurrently(&tags, |tag| {
            let arch = if tag.contains("-arm64-") {
                Arch::Arm64
            } else {
                Arch::Amd64
            };
            let text = runner.read("", &in_rig(&[], skopeo::inspect(&target, tag, arch)))?;
            text.map(|text| skopeo::parse_inspect(&text)).transpose()
        });
        for (tag, image) in tags.into_iter().zip(images) {
            let Some(inspect) = image? else { continue };
            let revision = inspect.labels.and_then(|mut l| l.remove(REVISION_LABEL));
            let image = Image {
                digest: inspect.digest,
                architecture: inspect.architecture,
                revision,
            };
            snapshot.images.insert(env_of(tag), image);
        }
    }
    Ok(snapshot)
}

/// `-<arch>-<variant>` of a tag.
pub fn variant_suffix(tag: &str) -> Option<&str> {
    ["-amd64-", "-arm64-"]
        .iter()
        .find_map(|arch| tag.rfind(arch).map(|i| &tag[i..]))
}

/// Prod's tags are stage's `<sha8>` image, copied: the digest of stage's
/// tag of the same variant that is not `latest-*`. A signature tag
/// (`sha256-<hex>.sig`) names its image: stage's tag of the same name.
fn stage_digest<'a>(snapshot: &'a Snapshot, prod_tag: &str) -> Option<&'a str> {
    if prod_tag.ends_with(".sig") {
        return snapshot.digest("stage", prod_tag);
    }
    let suffix = variant_suffix(prod_tag)?;
    snapshot
        .tags("stage")
        .into_iter()
        .find(|tag| !tag.starts_with("latest-") && tag.ends_with(suffix))
        .and_then(|tag| snapshot.digest("stage", tag))
}

/// Every tag in every registry with its digest, and whether prod's digest
/// equals stage's for the same image; an error unless every prod tag does.
pub fn closing_table(snapshot: &Snapshot) -> Result<String> {
    let mut rows = vec![["REGISTRY", "TAG", "DIGEST", "PROD = STAGE"].map(String::from)];
    let mut mismatches = 0;
    for (env, _) in REGISTRIES {
        for tag in snapshot.tags(env) {
            let digest = snapshot.digest(env, tag).unwrap_or_default();
            let same = if env != "prod" {
                ""
            } else if stage_digest(snapshot, tag) == Some(digest) {
                "yes"
            } else {
                mismatches += 1;
                "NO"
            };
            rows.push([env, tag, digest, same].map(String::from));
        }
    }
    let table = render_table(&rows);
    let prod_tags = snapshot.tags("prod").len();
    if prod_tags == 0 || mismatches > 0 {
        bail!("{table}\nrehearsal: prod has {prod_tags} tags, {mismatches} of them not at stage's digest");
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(digest: &str) -> Image {
        Image {
            digest: digest.into(),
            architecture: "amd64".into(),
            revision: None,
        }
    }

    fn snapshot(images: &[(&str, &str, &str)]) -> Snapshot {
        Snapshot {
            images: images
                .iter()
                .map(|(env, tag, digest)| ((env.to_string(), tag.to_string()), image(digest)))
                .collect(),
            caches: Default::default(),
        }
    }

    #[test]
    fn prod_tags_are_compared_with_stages_sha_tag_of_the_same_variant() {
        let good = snapshot(&[
            ("stage", "latest-amd64-gpu", "sha256:old"),
            ("stage", "12345678-amd64-gpu", "sha256:a"),
            ("stage", "12345678-arm64-cpu", "sha256:b"),
            ("prod", "v1-amd64-gpu", "sha256:a"),
            ("prod", "v1-arm64-cpu", "sha256:b"),
        ]);
        let table = closing_table(&good).unwrap();
        assert_eq!(
            table
                .lines()
                .filter(|l| l.trim_end().ends_with("yes"))
                .count(),
            2,
            "{table}"
        );
        assert!(
            table.lines().nth(1).unwrap().starts_with("stage"),
            "{table}"
        );

        let bad = snapshot(&[
            ("stage", "12345678-amd64-gpu", "sha256:a"),
            ("prod", "v1-amd64-gpu", "sha256:other"),
        ]);
        let err = closing_table(&bad).unwrap_err().to_string();
        assert!(
            err.contains("prod has 1 tags, 1 of them not at stage's digest"),
            "{err}"
        );
        assert!(
            closing_table(&snapshot(&[])).is_err(),
            "an empty prod is no rehearsal"
        );
    }

    #[test]
    fn variant_suffix_is_arch_and_variant() {
        assert_eq!(variant_suffix("v1.2.3-arm64-cpu"), Some("-arm64-cpu"));
        assert_eq!(variant_suffix("latest-amd64-gpu"), Some("-amd64-gpu"));
        assert_eq!(variant_suffix("cache"), None);
    }
}
