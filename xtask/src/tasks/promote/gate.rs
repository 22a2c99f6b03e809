//! The promotion gate: everything checked before anything is copied. Its
//! verdicts are the table promote prints, one row per variant, and the
//! commit's own line.

use anyhow::{bail, Result};

use super::super::signatures::{self, Signature};
use super::super::{reason, short};
use crate::arch::Variant;
use crate::cosign::Key;
use crate::error::Usage;
use crate::exec::{concurrently, Reply, Runner};
use crate::plan::{render_table, REVISION_LABEL};
use crate::skopeo::{self, Inspect};
use crate::tags::{self, Context, Sha};
use crate::target::Target;
use crate::{git, github};

/// One variant's promotion, worked out by the gate.
pub(super) struct Promotion {
    pub(super) variant: Variant,
    /// Stage's digest for the release commit; `None` in a dry run.
    pub(super) digest: Option<String>,
    /// What is copied: stage's image at that digest. A dry run, which read
    /// nothing, names the stage tag whose digest a real run copies.
    pub(super) source: String,
    /// Prod tags in write order (immutable first, `latest` last), each with
    /// whether prod already has it at the stage digest.
    pub(super) tags: Vec<(String, bool)>,
    pub(super) signature: Signature,
}

/// Whether the release commit is on the default branch: `Ok(Err(why))` is
/// the gate's verdict. A checkout that cannot tell (the commit or the branch
/// not fetched, a shallow history) is bad input, said with how to fetch.
pub(super) fn on_default_branch(
    runner: &Runner,
    sha: &Sha,
    branch: &str,
    source: &str,
) -> Result<Result<String, String>> {
    let fetch = "fetch it (git fetch origin, or actions/checkout with fetch-depth: 0)";
    if !git::has_commit(runner, sha) {
        return Err(Usage(format!(
            "commit {sha} is not in this checkout, so whether it is on {branch} cannot be checked; {fetch}"
        ))
        .into());
    }
    let Some(reference) = git::branch_ref(runner, branch) else {
        return Err(Usage(format!(
            "the default branch {branch} ({source}) is not in this checkout: neither origin/{branch} nor {branch} exists; {fetch}"
        ))
        .into());
    };
    if git::is_ancestor(runner, sha, &reference) {
        return Ok(Ok(format!(
            "commit {} is on {reference} ({source})",
            sha.short()
        )));
    }
    if git::is_shallow(runner) {
        return Err(Usage(format!(
            "commit {} is not in the history of {reference} as far as this shallow checkout reaches; fetch the whole history (git fetch --unshallow, or actions/checkout with fetch-depth: 0)",
            sha.short()
        ))
        .into());
    }
    Ok(Err(format!(
        "commit {} is not on {reference}: only commits merged to {branch} ({source}) are promoted to prod",
        sha.short()
    )))
}

/// Check everything before copying anything; print a per-variant table and
/// fail if any variant, or the commit, is not fit for prod.
pub(super) fn gate(
    runner: &Runner,
    context: &Context,
    on_branch: Result<String, String>,
    variants: &[Variant],
    (stage, prod): (&Target, &Target),
    key: &Key,
) -> Result<Vec<Promotion>> {
    let sha = context.sha();
    let mut rows = vec![["VARIANT", "STAGE TAGS", "DIGEST", "GATE"].map(String::from)];
    let mut promotions = Vec::new();
    let mut failed = on_branch.is_err();
    // Every read of every variant, stage and prod, in one round at once; the
    // verdicts are taken afterwards, in order.
    let checks = concurrently(variants, |variant| {
        let prefix = format!("[{}] ", variant.name);
        let sha_tag = tags::tag(sha.short(), variant.arch, &variant.name);
        let latest_tag = tags::tag("latest", variant.arch, &variant.name);
        let result = tags::image_tags(context, variant).and_then(|mut prod_tags| {
            // The moving tags (`latest-*`) are written last.
            prod_tags.sort_by_key(|tag| !tags::is_immutable(tag));
            let reads: Vec<(&Target, &str)> = [(stage, sha_tag.as_str()), (stage, &latest_tag)]
                .into_iter()
                .chain(prod_tags.iter().map(|tag| (prod, tag.as_str())))
                .collect();
            let mut answers = concurrently(&reads, |(target, tag)| {
                runner.ask(&prefix, &skopeo::inspect(target, tag, variant.arch))
            })
            .into_iter();
            let mut next = || answers.next().expect("one answer per read");
            let digest = check_stage(next(), next(), &sha_tag, &latest_tag, sha)?;
            let prod_answers: Vec<_> = answers.collect();
            // Whether the image is the stage pipeline's comes before what
            // prod holds: a foreign image is refused as such.
            let targets = (stage, prod);
            let signature = signatures::check(
                runner,
                &prefix,
                targets,
                variant.arch,
                digest.as_deref(),
                key,
            )?;
            let tags = judge_prod(prod_tags, prod_answers, digest.as_deref())?;
            Ok((digest, tags, signature))
        });
        (sha_tag, latest_tag, result)
    });
    for (variant, (sha_tag, latest_tag, result)) in variants.iter().zip(checks) {
        let (digest, verdict) = match result {
            Ok((digest, tags, signature)) => {
                let verdict = match &digest {
                    None => "(dry run: not checked)".to_string(),
                    Some(_) => "ok".to_string(),
                };
                let source = match &digest {
                    Some(digest) => format!("{}@{digest}", stage.image()),
                    None => stage.reference(&sha_tag),
                };
                promotions.push(Promotion {
                    variant: variant.clone(),
                    digest: digest.clone(),
                    source,
                    tags,
                    signature,
                });
                (digest.unwrap_or_else(|| "-".into()), verdict)
            }
            Err(why) => {
                failed = true;
                ("-".to_string(), format!("FAILED: {why}"))
            }
        };
        rows.push([
            variant.name.clone(),
            format!("{sha_tag}, {latest_tag}"),
            digest,
            verdict,
        ]);
    }
    eprint!(
        "gate for {} ({}):\n{}",
        context.describe(),
        sha,
        render_table(&rows)
    );
    match &on_branch {
        Ok(fact) => eprintln!("commit: ok: {fact}"),
        Err(why) => eprintln!("commit: FAILED: {why}"),
    }
    if !runner.dry_run {
        // Each variant's verdict, signatures included, on the run's page.
        let title = format!("### Promotion gate for {}\n\n", context.describe());
        github::summary(&(title + &github::markdown_table(&rows)))?;
    }
    if failed {
        let first = on_branch.err().or_else(|| {
            rows.iter()
                .skip(1)
                .find(|r| r[3].starts_with("FAILED"))
                .map(|r| format!("{}: {}", r[0], r[3]))
        });
        bail!(
            "promotion gate failed, nothing was copied to prod: {}",
            first.unwrap_or_default()
        );
    }
    Ok(promotions)
}

/// Stage's digest for the release from the reads of its two tags: both
/// present, equal, and labelled with the release commit. `Ok(None)` in a
/// dry run.
fn check_stage(
    by_sha: Reply,
    latest: Reply,
    sha_tag: &str,
    latest_tag: &str,
    sha: &Sha,
) -> Result<Option<String>, String> {
    let parse = |reply: Reply, tag: &str| -> Result<Option<Inspect>, String> {
        match reply {
            Reply::DryRun => Ok(None),
            Reply::Out(text) => skopeo::parse_inspect(&text)
                .map(Some)
                .map_err(|e| format!("{e:#}")),
            Reply::Failed(stderr) if skopeo::is_not_found(&stderr) => {
                Err(format!("{tag} not found in stage"))
            }
            Reply::Failed(stderr) => {
                Err(format!("cannot read {tag} in stage: {}", reason(&stderr)))
            }
        }
    };
    let (by_sha, latest) = (parse(by_sha, sha_tag), parse(latest, latest_tag));
    let (Some(by_sha), Some(latest)) = (by_sha?, latest?) else {
        return Ok(None);
    };
    if by_sha.digest != latest.digest {
        return Err(format!(
            "stage {latest_tag} is {} but {sha_tag} is {}: stage's latest is not this release's commit",
            short(&latest.digest),
            short(&by_sha.digest)
        ));
    }
    let revision = by_sha
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_LABEL))
        .cloned();
    if revision.as_deref() != Some(sha.full()) {
        return Err(format!(
            "{sha_tag} has {REVISION_LABEL}={}, expected {}",
            revision.unwrap_or_else(|| "(none)".into()),
            sha.full()
        ));
    }
    Ok(Some(by_sha.digest))
}

/// The prod tags in write order, each marked done when prod already has it
/// at `digest`, from the reads of each. An immutable tag at another digest
/// stops the promotion.
fn judge_prod(
    tags: Vec<String>,
    answers: Vec<Reply>,
    digest: Option<&str>,
) -> Result<Vec<(String, bool)>, String> {
    let mut out = Vec::new();
    for (tag, answer) in tags.into_iter().zip(answers) {
        let done = match (digest, answer) {
            (Some(want), Reply::Out(text)) => {
                let have = skopeo::parse_inspect(&text)
                    .map_err(|e| format!("{e:#}"))?
                    .digest;
                if have != want && tags::is_immutable(&tag) {
                    return Err(format!(
                        "prod already has {tag} at {}, not {}; immutable tags are never overwritten",
                        short(&have),
                        short(want)
                    ));
                }
                have == want
            }
            // Only "not there" means free to write: an immutable tag that
            // cannot be read (an index without this architecture, a
            // registry error) may point elsewhere and must not be overwritten.
            (Some(_), Reply::Failed(stderr))
                if tags::is_immutable(&tag) && !skopeo::is_not_found(&stderr) =>
            {
                return Err(format!(
                    "cannot read prod {tag} ({}); an immutable tag is never overwritten unseen",
                    reason(&stderr)
                ));
            }
            _ => false,
        };
        out.push((tag, done));
    }
    Ok(out)
}
