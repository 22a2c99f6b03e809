//! skopeo: reads images in a registry and copies them registry to registry,
//! by digest, without pulling layers into local storage.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::arch::Arch;
use crate::step::{Step, Tool};
use crate::target::Target;

pub const TOOL: Tool = Tool {
    program: "skopeo",
    install: "install skopeo: apt-get install skopeo (Debian/Ubuntu), brew install skopeo",
};

/// What promotion needs to know about one tag.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Inspect {
    /// The digest of the manifest the tag points at (an index's own digest
    /// for a multi-platform image).
    pub digest: String,
    pub labels: Option<BTreeMap<String, String>>,
    /// The architecture of the image picked for `--override-arch`: the
    /// rehearsal's read-back shows which image a tag really holds.
    #[serde(default)]
    pub architecture: String,
}

pub fn parse_inspect(text: &str) -> Result<Inspect> {
    serde_json::from_str(text).context("skopeo inspect did not answer with the expected JSON")
}

/// Whether a failed `skopeo inspect` says the tag (or repository) does not
/// exist, as the registry (ECR included) reports it, rather than some other
/// failure.
pub fn is_not_found(stderr: &str) -> bool {
    let stderr = stderr.to_ascii_lowercase();
    stderr.contains("manifest unknown") || stderr.contains("name unknown")
}

fn tls_flag(flag: &str, target: &Target) -> Option<String> {
    target.is_loopback().then(|| format!("--{flag}=false"))
}

/// `skopeo inspect` of one tag. `--override-arch` picks this variant's image
/// out of a multi-platform index, whatever the host's architecture.
pub fn inspect(target: &Target, tag: &str, arch: Arch) -> Step {
    let mut args: Vec<String> = vec![
        "--override-os".into(),
        "linux".into(),
        "--override-arch".into(),
        arch.as_str().into(),
        "inspect".into(),
        // No tag listing: ECR repositories hold thousands of tags, and the
        // list (paged) would cost more than the inspection itself.
        "--no-tags".into(),
    ];
    args.extend(tls_flag("tls-verify", target));
    args.push(format!("docker://{}", target.reference(tag)));
    Step::new(TOOL.program, args)
}

/// Every tag of `target`'s repository, as JSON (`{"Tags": [...]}`).
pub fn list_tags(target: &Target) -> Step {
    let mut args: Vec<String> = vec!["list-tags".into()];
    args.extend(tls_flag("tls-verify", target));
    args.push(format!("docker://{}", target.image()));
    Step::new(TOOL.program, args)
}

/// Copy `source` (`<image>@<digest>` in `from`'s registry) to `to:tag`, byte
/// for byte: `--all` keeps a multi-platform index whole (without it
/// `--preserve-digests` would copy only the host's platform),
/// `--preserve-digests` refuses any change.
pub fn copy(from: &Target, source: &str, to: &Target, tag: &str) -> Step {
    let mut args: Vec<String> = vec!["copy".into(), "--all".into(), "--preserve-digests".into()];
    args.extend(tls_flag("src-tls-verify", from));
    args.extend(tls_flag("dest-tls-verify", to));
    args.push(format!("docker://{source}"));
    args.push(format!("docker://{}", to.reference(tag)));
    Step::new(TOOL.program, args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::tests::app_in as target;

    #[test]
    fn copy_is_by_digest_and_whole() {
        let step = copy(
            &target("1.dkr.ecr.us-east-1.amazonaws.com"),
            "1.dkr.ecr.us-east-1.amazonaws.com/app@sha256:ab",
            &target("127.0.0.1:5003"),
            "v1-amd64-gpu",
        );
        assert_eq!(
            step.to_string(),
            "skopeo copy --all --preserve-digests --dest-tls-verify=false \
             docker://1.dkr.ecr.us-east-1.amazonaws.com/app@sha256:ab docker://127.0.0.1:5003/app:v1-amd64-gpu"
        );
    }

    #[test]
    fn inspect_picks_the_variant_architecture() {
        assert_eq!(
            inspect(&target("localhost:5002"), "latest-arm64-cpu", Arch::Arm64).to_string(),
            "skopeo --override-os linux --override-arch arm64 inspect --no-tags --tls-verify=false docker://localhost:5002/app:latest-arm64-cpu"
        );
        let parsed = parse_inspect(r#"{"Digest": "sha256:1", "Labels": {"a": "b"}, "Architecture": "arm64", "Os": "linux"}"#).unwrap();
        assert_eq!(parsed.digest, "sha256:1");
        assert_eq!(parsed.labels.unwrap()["a"], "b");
    }

    #[test]
    fn only_a_missing_tag_is_not_found() {
        assert!(is_not_found(
            r#"level=fatal msg="Error parsing image name \"docker://r/app:t\": reading manifest t in r/app: manifest unknown: manifest unknown""#
        ));
        assert!(is_not_found(
            "name unknown: The repository with name 'app' does not exist in the registry"
        ));
        assert!(!is_not_found(
            "choosing image instance: no image found in manifest list for architecture amd64"
        ));
        assert!(!is_not_found(
            "pinging container registry r: connect: connection refused"
        ));
        assert!(!is_not_found(
            "reading manifest t in r/app: unauthorized: authentication required"
        ));
    }
}
