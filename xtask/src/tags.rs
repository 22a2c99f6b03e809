//! The one tag grammar: every image tag is `<what>-<arch>-<variant>`.
//!
//! `<what>` depends on where the build runs (the [`Context`]); `<arch>` is
//! `amd64` or `arm64`, never `linux/...`. All functions here are pure, and
//! every tag they return has been validated against the OCI and ECR rules.

use std::fmt;

use crate::arch::{Arch, Variant};

/// A full 40-hex-digit commit SHA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sha(String);

impl Sha {
    pub fn parse(text: &str) -> Result<Sha, String> {
        let text = text.trim();
        if text.len() == 40 && text.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(Sha(text.to_ascii_lowercase()))
        } else {
            Err(format!(
                "\"{text}\" is not a full commit SHA; pass all 40 hex digits (git rev-parse HEAD)"
            ))
        }
    }

    pub fn full(&self) -> &str {
        &self.0
    }

    /// The first 8 hex digits, as tags use it.
    pub fn short(&self) -> &str {
        &self.0[..8]
    }
}

impl fmt::Display for Sha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a build or promotion runs; decides the `<what>` parts of the tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Context {
    /// A developer's terminal (`cargo xtask`, `make`); `dirty` when the tree
    /// has uncommitted changes.
    Terminal { sha: Sha, dirty: bool },
    /// A pull request to main (dev), tagged with its head commit.
    PullRequest { number: u64, sha: Sha },
    /// A push to the default branch (stage).
    Push { sha: Sha },
    /// A manual run (`workflow_dispatch`) of dev, stage or prod.
    Dispatch { sha: Sha },
    /// A published release (prod). A prerelease gets its immutable tags but
    /// never moves `latest-*`: prod's latest stays the last full release.
    Release {
        sha: Sha,
        tag: String,
        prerelease: bool,
    },
}

impl Context {
    pub fn sha(&self) -> &Sha {
        match self {
            Context::Terminal { sha, .. }
            | Context::PullRequest { sha, .. }
            | Context::Push { sha }
            | Context::Dispatch { sha }
            | Context::Release { sha, .. } => sha,
        }
    }

    /// The `<what>` parts, in order: `latest` first (except for a dirty tree
    /// and a prerelease), then the immutable ones.
    pub fn whats(&self) -> Vec<String> {
        let sha8 = self.sha().short().to_string();
        // `latest` is what a job definition runs: never uncommitted code,
        // and in prod never a prerelease.
        let latest = "latest".to_string();
        match self {
            // A dirty tree is not that commit: say so in the tag.
            Context::Terminal { dirty: true, .. } => vec![format!("make-{sha8}-dirty")],
            Context::Terminal { dirty: false, .. } => vec![latest, format!("make-{sha8}")],
            Context::PullRequest { number, .. } => vec![latest, sha8, format!("PR-{number}")],
            Context::Push { .. } => vec![latest, sha8],
            Context::Dispatch { .. } => vec![latest, sha8, "workflow_dispatch".into()],
            Context::Release {
                tag,
                prerelease: true,
                ..
            } => vec![sha8, tag.clone()],
            Context::Release { tag, .. } => vec![latest, sha8, tag.clone()],
        }
    }

    /// The revision label: the full SHA, marked when the tree was dirty.
    pub fn revision(&self) -> String {
        match self {
            Context::Terminal { sha, dirty: true } => format!("{sha}-dirty"),
            _ => self.sha().to_string(),
        }
    }

    /// The version label: the release tag for a release, else the commit.
    pub fn version(&self) -> String {
        match self {
            Context::Release { tag, .. } => tag.clone(),
            Context::Terminal { sha, dirty: true } => format!("{}-dirty", sha.short()),
            _ => self.sha().short().to_string(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Context::Terminal { dirty: false, .. } => "terminal".into(),
            Context::Terminal { dirty: true, .. } => "terminal (uncommitted changes)".into(),
            Context::PullRequest { number, .. } => format!("pull request #{number}"),
            Context::Push { .. } => "push to the default branch".into(),
            Context::Dispatch { .. } => "manual run (workflow_dispatch)".into(),
            Context::Release {
                tag,
                prerelease: true,
                ..
            } => format!("prerelease {tag}"),
            Context::Release { tag, .. } => format!("release {tag}"),
        }
    }
}

/// `<what>-<arch>-<variant>`.
pub fn tag(what: &str, arch: Arch, variant: &str) -> String {
    format!("{what}-{arch}-{variant}")
}

/// The `<what>` of the registry cache's tags. ECR's tag immutability
/// excludes `cache-*`, so no release tag may read as one (see
/// [`validate_release_tag`]).
pub const CACHE: &str = "cache";

/// The registry cache's tag for one variant and architecture: each has its
/// own, so building cpu never overwrites gpu's cache. Never an image tag: no
/// context makes `cache` a `<what>` (a release cannot be called that), so it
/// is never promoted and the gate never reads it.
pub fn cache_tag(arch: Arch, variant: &str) -> String {
    tag(CACHE, arch, variant)
}

/// Every tag of `variant` in `context`, in order (`latest-*` first), each validated.
pub fn image_tags(context: &Context, variant: &Variant) -> Result<Vec<String>, String> {
    // A release tag becomes `<release>-<arch>-<variant>`, so its own limit is
    // the image tag's 128 characters less that suffix: said in those terms, not
    // as the length of an image tag the user never wrote.
    if let Context::Release { tag: release, .. } = context {
        let suffix = format!("-{}-{}", variant.arch, variant.name);
        let limit = MAX_TAG - suffix.len();
        if release.len() > limit {
            return Err(format!(
                "release tag \"{release}\" is {} characters; the limit is {limit}, since every image tag ({suffix} added for variant {}) must fit in {MAX_TAG}; publish the release under a shorter tag",
                release.len(),
                variant.name
            ));
        }
    }
    context
        .whats()
        .iter()
        .map(|what| {
            let tag = tag(what, variant.arch, &variant.name);
            validate(&tag).map(|()| tag)
        })
        .collect()
}

/// The tags that never move once written (everything but `latest-*` and
/// `workflow_dispatch-*`): promotion refuses to overwrite them.
pub fn is_immutable(tag: &str) -> bool {
    !(tag.starts_with("latest-") || tag.starts_with("workflow_dispatch-"))
}

/// OCI's limit on a tag's length; ECR's is longer.
const MAX_TAG: usize = 128;

/// Check a tag against both grammars: OCI's `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
/// and ECR's `[a-zA-Z0-9-_.]{1,300}` (so, in effect, OCI's).
pub fn validate(tag: &str) -> Result<(), String> {
    check_characters(tag)?;
    if tag.len() > MAX_TAG {
        return Err(format!(
            "image tag \"{tag}\" is {} characters; the limit is {MAX_TAG}",
            tag.len()
        ));
    }
    Ok(())
}

/// Everything [`validate`] checks but the length.
fn check_characters(tag: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
    if tag.is_empty() {
        return Err("an image tag cannot be empty".into());
    }
    if let Some(bad) = tag.chars().find(|&c| !allowed(c)) {
        return Err(format!(
            "image tag \"{tag}\" contains {bad:?}; tags allow only letters, digits, '_', '.' and '-'"
        ));
    }
    if tag.starts_with(['.', '-']) {
        return Err(format!(
            "image tag \"{tag}\" must start with a letter, digit or '_'"
        ));
    }
    Ok(())
}

/// Check a release tag before anything runs: it becomes part of an image tag,
/// and is an error rather than something silently rewritten. Its length
/// limit depends on the variant and is checked with the variant's tags, so
/// that it is said in one way however long the tag is.
pub fn validate_release_tag(release: &str) -> Result<(), String> {
    check_characters(release).map_err(|why| {
        format!(
            "release tag \"{release}\" cannot be used in image tags ({why}); publish the release under a tag such as v1.2.3"
        )
    })?;
    match reserved_reading(release) {
        Some(reading) => Err(format!(
            "release tag \"{release}\" reads as {reading}, a name the tag grammar uses itself, so its images would be taken for that; publish the release under a tag such as v1.2.3"
        )),
        None => Ok(()),
    }
}

/// What a release tag would be mistaken for, if it reads as a `<what>` of
/// the grammar: `latest`, `workflow_dispatch`, a cache tag, a `<sha8>`, a
/// `PR-<n>` or a `make-...` tag. Compared without case, by what comes before
/// the first `-`, since `<what>-<arch>-<variant>` is read from the left.
fn reserved_reading(release: &str) -> Option<&'static str> {
    let lower = release.to_ascii_lowercase();
    let mut parts = lower.split('-');
    let first = parts.next().unwrap_or_default();
    let sha8 = first.len() == 8 && first.chars().all(|c| c.is_ascii_hexdigit());
    let number = |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit());
    match first {
        "latest" => Some("the moving latest-<arch>-<variant> tag"),
        "workflow_dispatch" => Some("a manual run's workflow_dispatch tag"),
        CACHE => Some("a registry cache tag (cache-<arch>-<variant>)"),
        _ if sha8 => Some("a commit's <sha8> tag"),
        "pr" if parts.next().is_some_and(number) => Some("a pull request's PR-<number> tag"),
        "make" => Some("a terminal build's make-<sha8> tag"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::tests::shipped;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn sha() -> Sha {
        Sha::parse(SHA).unwrap()
    }

    fn all_tags(context: &Context) -> Vec<String> {
        shipped()
            .iter()
            .flat_map(|v| image_tags(context, v).unwrap())
            .collect()
    }

    /// The grammar for every context, as snapshots.
    #[test]
    fn tags_for_every_context() {
        let cases: Vec<(Context, &[&str])> = vec![
            (
                Context::Terminal {
                    sha: sha(),
                    dirty: false,
                },
                &[
                    "latest-amd64-gpu",
                    "make-01234567-amd64-gpu",
                    "latest-arm64-cpu",
                    "make-01234567-arm64-cpu",
                ],
            ),
            (
                Context::Terminal {
                    sha: sha(),
                    dirty: true,
                },
                &[
                    "make-01234567-dirty-amd64-gpu",
                    "make-01234567-dirty-arm64-cpu",
                ],
            ),
            (
                Context::PullRequest {
                    number: 42,
                    sha: sha(),
                },
                &[
                    "latest-amd64-gpu",
                    "01234567-amd64-gpu",
                    "PR-42-amd64-gpu",
                    "latest-arm64-cpu",
                    "01234567-arm64-cpu",
                    "PR-42-arm64-cpu",
                ],
            ),
            (
                Context::Dispatch { sha: sha() },
                &[
                    "latest-amd64-gpu",
                    "01234567-amd64-gpu",
                    "workflow_dispatch-amd64-gpu",
                    "latest-arm64-cpu",
                    "01234567-arm64-cpu",
                    "workflow_dispatch-arm64-cpu",
                ],
            ),
            (
                Context::Push { sha: sha() },
                &[
                    "latest-amd64-gpu",
                    "01234567-amd64-gpu",
                    "latest-arm64-cpu",
                    "01234567-arm64-cpu",
                ],
            ),
            (
                Context::Release {
                    sha: sha(),
                    tag: "v1.2.3".into(),
                    prerelease: false,
                },
                &[
                    "latest-amd64-gpu",
                    "01234567-amd64-gpu",
                    "v1.2.3-amd64-gpu",
                    "latest-arm64-cpu",
                    "01234567-arm64-cpu",
                    "v1.2.3-arm64-cpu",
                ],
            ),
            (
                Context::Release {
                    sha: sha(),
                    tag: "v2.0.0-rc.1".into(),
                    prerelease: true,
                },
                &[
                    "01234567-amd64-gpu",
                    "v2.0.0-rc.1-amd64-gpu",
                    "01234567-arm64-cpu",
                    "v2.0.0-rc.1-arm64-cpu",
                ],
            ),
        ];
        for (context, expected) in cases {
            assert_eq!(all_tags(&context), expected, "{context:?}");
        }
    }

    #[test]
    fn labels_follow_the_context() {
        let dirty = Context::Terminal {
            sha: sha(),
            dirty: true,
        };
        assert_eq!(dirty.revision(), format!("{SHA}-dirty"));
        assert_eq!(dirty.version(), "01234567-dirty");
        let release = Context::Release {
            sha: sha(),
            tag: "v2.0.0".into(),
            prerelease: false,
        };
        assert_eq!(release.revision(), SHA);
        assert_eq!(release.version(), "v2.0.0");
    }

    #[test]
    fn sha_must_be_full() {
        assert_eq!(Sha::parse(&SHA.to_uppercase()).unwrap().full(), SHA);
        assert!(Sha::parse("01234567").is_err());
        assert!(Sha::parse(&SHA.replace('0', "g")).is_err());
    }

    #[test]
    fn validation_matches_oci_and_ecr() {
        for good in [
            "latest-amd64-gpu",
            "_x",
            "v1.2.3-rc.1-arm64-cpu",
            &"a".repeat(128),
        ] {
            assert_eq!(validate(good), Ok(()), "{good}");
        }
        assert_eq!(
            validate("linux/arm64-cpu"),
            Err("image tag \"linux/arm64-cpu\" contains '/'; tags allow only letters, digits, '_', '.' and '-'".into())
        );
        assert!(validate(".hidden").is_err());
        assert!(validate("-x").is_err());
        assert!(validate("").is_err());
        assert!(validate(&"a".repeat(129)).is_err());
        assert!(validate("v1+build").is_err());
    }

    #[test]
    fn bad_release_tags_are_errors_not_rewrites() {
        assert_eq!(
            validate_release_tag("release/1.0"),
            Err("release tag \"release/1.0\" cannot be used in image tags (image tag \"release/1.0\" contains '/'; tags allow only letters, digits, '_', '.' and '-'); publish the release under a tag such as v1.2.3".into())
        );
    }

    /// Release tags: the grammar's own names are refused whatever their case
    /// or suffix; ordinary version tags pass.
    #[test]
    fn release_tags_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("v1.2.3", None),
            ("1.2.3", None),
            ("v2.0.0-rc.1", None),
            ("2026.12.01", None),
            ("release_7", None),
            ("latest_build", None),
            ("deadbeefcafe", None),
            ("PR7", None),
            ("pr-x", None),
            ("maker-1", None),
            ("cachet", None),
            ("latest", Some("latest-<arch>-<variant>")),
            ("LATEST", Some("latest-<arch>-<variant>")),
            ("latest-2", Some("latest-<arch>-<variant>")),
            ("workflow_dispatch", Some("workflow_dispatch tag")),
            ("cache", Some("cache tag")),
            ("cache-v1", Some("cache tag")),
            ("Cache-amd64-gpu", Some("cache tag")),
            ("deadbeef", Some("<sha8> tag")),
            ("01234567-hotfix", Some("<sha8> tag")),
            ("DEADBEEF", Some("<sha8> tag")),
            ("20261201", Some("<sha8> tag")),
            ("PR-12", Some("PR-<number> tag")),
            ("pr-3-fix", Some("PR-<number> tag")),
            ("make", Some("make-<sha8> tag")),
            ("make-01234567", Some("make-<sha8> tag")),
            ("release/1.0", Some("contains '/'")),
            (".v1", Some("must start with")),
            ("", Some("cannot be empty")),
        ];
        for (release, refused) in cases {
            match (validate_release_tag(release), refused) {
                (Ok(()), None) => {}
                (Err(err), Some(why)) => {
                    assert!(
                        err.starts_with(&format!("release tag \"{release}\" "))
                            && err.contains(why),
                        "{release}: {err}"
                    )
                }
                (result, _) => panic!("{release}: {result:?}, expected {refused:?}"),
            }
        }
    }

    #[test]
    fn a_release_tag_too_long_is_told_its_own_limit() {
        let release = |tag: String| Context::Release {
            sha: sha(),
            tag,
            prerelease: false,
        };
        // -amd64-gpu is 10 characters: 118 fit, 119 do not.
        assert!(image_tags(&release("v".repeat(118)), &shipped()[0]).is_ok());
        assert_eq!(
            image_tags(&release("v".repeat(120)), &shipped()[0]).unwrap_err(),
            format!("release tag \"{}\" is 120 characters; the limit is 118, since every image tag (-amd64-gpu added for variant gpu) must fit in 128; publish the release under a shorter tag", "v".repeat(120))
        );
        // Past an image tag's own 128 too, the limit is said the same way:
        // cut to 128, the tag would still be refused.
        let long = "v".repeat(200);
        assert_eq!(validate_release_tag(&long), Ok(()));
        let err = image_tags(&release(long), &shipped()[0]).unwrap_err();
        assert!(
            err.contains("is 200 characters; the limit is 118,"),
            "{err}"
        );
    }

    #[test]
    fn the_cache_tags_are_never_image_tags() {
        assert_eq!(cache_tag(Arch::Amd64, "gpu"), "cache-amd64-gpu");
        assert_ne!(cache_tag(Arch::Amd64, "gpu"), cache_tag(Arch::Arm64, "gpu"));
        assert_ne!(cache_tag(Arch::Amd64, "gpu"), cache_tag(Arch::Amd64, "cpu"));
        let contexts = [
            Context::Terminal {
                sha: sha(),
                dirty: false,
            },
            Context::Terminal {
                sha: sha(),
                dirty: true,
            },
            Context::PullRequest {
                number: 1,
                sha: sha(),
            },
            Context::Push { sha: sha() },
            Context::Dispatch { sha: sha() },
            Context::Release {
                sha: sha(),
                tag: "v1.2.3".into(),
                prerelease: false,
            },
        ];
        for context in &contexts {
            assert!(
                all_tags(context).iter().all(|t| !t.starts_with("cache-")),
                "{context:?}"
            );
        }
        assert!(validate_release_tag("cache")
            .unwrap_err()
            .contains("registry cache"));
    }

    #[test]
    fn latest_and_dispatch_tags_move_the_rest_do_not() {
        assert!(!is_immutable("latest-amd64-gpu"));
        assert!(!is_immutable("workflow_dispatch-amd64-gpu"));
        assert!(is_immutable("01234567-amd64-gpu"));
        assert!(is_immutable("v1.2.3-amd64-gpu"));
    }
}
