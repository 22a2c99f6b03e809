//! A re-run for the same commit: the registry may hold this commit's image
//! already, which the build then only tags (README, "A re-run for the same
//! commit"); and the tag moves that follow a push.

use anyhow::{bail, Context, Result};

use super::{reason, short, signatures, unanswered};
use crate::cosign::{self, Key};
use crate::docker;
use crate::exec::{Reply, Runner};
use crate::plan::{Image, REVISION_LABEL};
use crate::tags;
use crate::target::Target;

/// Point `tags` of `image` at the pushed `digest`, in the registry.
pub fn retag(
    runner: &Runner,
    prefix: &str,
    image: &Image,
    digest: &str,
    tags: &[String],
) -> Result<()> {
    if tags.is_empty() {
        return Ok(());
    }
    runner
        .run_with_retry(prefix, &docker::retag(&image.image, digest, tags))
        .with_context(|| format!("tagging {} in {} failed", short(digest), image.image))
}

/// The digest of this commit's image for `image`'s platform when the
/// registry already holds it under the commit's own tag (a re-run of the
/// job): the build then only tags it. Building it again would push another
/// digest under that tag (an image is dated by its build), and once prod
/// holds the first, promote would refuse the commit for good. On stage the
/// image must also carry a signature the signing key verifies: anything
/// that can push to stage can write the tag and the label, and must not get
/// its image signed by a re-run. A read that fails other than "not found"
/// is an error: building then would move the tag.
pub fn already_pushed(
    runner: &Runner,
    prefix: &str,
    image: &Image,
    signing: Option<(&Key, &Target)>,
) -> Result<Option<String>> {
    let revision = &image.labels[REVISION_LABEL];
    let Some(tag) = commit_tag(image) else {
        return Ok(None);
    };
    let reference = format!("{}:{tag}", image.image);
    let found = match runner.ask(prefix, &docker::registry_describe(&reference)) {
        Reply::DryRun => {
            eprintln!("{prefix}dry run: when {reference} is already this commit's image, a real run tags it instead of building");
            return Ok(None);
        }
        Reply::Failed { why, .. } if why.contains(": not found") => Err("not in the registry".to_string()),
        Reply::Failed { why, .. } => bail!(
            "cannot tell whether {reference} is already this commit's image (docker buildx imagetools inspect: {}); {}",
            reason(&why),
            unanswered(&why, "building would move the tag, so re-run when the registry answers")
        ),
        Reply::Out(text) => docker::parse_pushed(&text).map_err(|err| format!("{err:#}")),
    };
    let why = match found {
        Err(why) => why,
        Ok(found)
            if found.revision.as_ref() != Some(revision) || found.platform != image.platform =>
        {
            let revision = found.revision.as_deref().unwrap_or("(no label)");
            format!("it is revision {revision} for {}", found.platform)
        }
        Ok(found) => match signing.map(|s| unsigned(runner, prefix, s, &found.digest)) {
            Some(Err(why)) => bail!(
                "cannot tell whether {reference} is signed (cosign verify: {}); {}",
                reason(&why),
                unanswered(&why, "building would move the tag to a new image, which prod may already hold as this commit's, so re-run when the registry answers")
            ),
            Some(Ok(Some(why))) => why,
            Some(Ok(None)) | None => {
                eprintln!("{prefix}{reference} is already this commit's image ({}): tagging it, not building", short(&found.digest));
                return Ok(Some(found.digest));
            }
        },
    };
    eprintln!("{prefix}building: {reference} cannot be reused ({why})");
    Ok(None)
}

/// Why no signature on `digest` verifies with the signing key's public half
/// (cosign verifies with a public key, which `check_key` wrote), or `None`
/// when one does. `Err` when cosign could not tell (a registry that did not
/// answer, throttling): that is no reason to build a new image.
fn unsigned(
    runner: &Runner,
    prefix: &str,
    (key, target): (&Key, &Target),
    digest: &str,
) -> Result<Option<String>, String> {
    let public = Key(signatures::SIGNING_PUBLIC_KEY.to_string());
    let verified = runner.ask(prefix, &cosign::verify(target, digest, &public, true));
    let Reply::Failed { why, code } = verified else {
        return Ok(None);
    };
    match code {
        // Never promoted, then: the gate takes only signed images.
        Some(cosign::NO_SIGNATURES) => Ok(Some(
            "unsigned: an earlier run stopped before signing it, or it was pushed past the pipeline"
                .into(),
        )),
        Some(cosign::NO_MATCHING_SIGNATURES) => Ok(Some(format!(
            "no signature on it verifies with {} ({})",
            key.0,
            reason(&why)
        ))),
        _ => Err(why),
    }
}

/// The commit's own tag of `image` (`<sha8>-…`, `make-<sha8>-…`), which no
/// other commit's build moves, as `latest-*` may be moved.
pub fn commit_tag(image: &Image) -> Option<&String> {
    image.tags.iter().find(|t| tags::is_immutable(t))
}
