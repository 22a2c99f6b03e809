//! The promotion gate: everything checked before anything is copied. Its
//! verdicts are the table promote prints, one row per variant, and the
//! commit's own line.

use anyhow::{bail, ensure, Result};

use super::super::signatures::{self, Signature};
use super::super::{message, reason, short};
use crate::arch::Variant;
use crate::cosign::Key;
use crate::error::Usage;
use crate::exec::{self, concurrently, Reply, Runner};
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
    /// Prod tags in write order (immutable first, `latest` last), each with
    /// whether prod already has it at the stage digest.
    pub(super) tags: Vec<(String, bool)>,
    /// Why each `latest` tag left out of `tags` stays as prod has it.
    pub(super) left: Vec<String>,
    pub(super) signature: Signature,
}

impl Promotion {
    pub(super) fn prefix(&self) -> String {
        exec::prefix(&self.variant.name)
    }
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
    ensure!(git::has_commit(runner, sha), Usage(format!(
        "commit {sha} is not in this checkout, so whether it is on {branch} cannot be checked; {fetch}"
    )));
    let Some(reference) = git::branch_ref(runner, branch) else {
        bail!(Usage(format!(
            "the default branch {branch} ({source}) is not in this checkout: neither origin/{branch} nor {branch} exists; {fetch}"
        )));
    };
    if git::is_ancestor(runner, sha, &reference) {
        return Ok(Ok(format!(
            "commit {} is on {reference} ({source})",
            sha.short()
        )));
    }
    ensure!(!git::is_shallow(runner), Usage(format!(
        "commit {} is not in the history of {reference} as far as this shallow checkout reaches; fetch the whole history (git fetch --unshallow, or actions/checkout with fetch-depth: 0)",
        sha.short()
    )));
    // A remote branch is as last fetched: a merge since is not in it yet.
    let stale = match reference.starts_with("origin/") {
        true => format!(" ({reference} as this checkout last fetched it: if the commit was merged since, git fetch origin and re-run)"),
        false => String::new(),
    };
    Ok(Err(format!(
        "commit {} is not on {reference}: only commits merged to {branch} ({source}) are promoted to prod{stale}",
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
    targets: (&Target, &Target),
    key: &Key,
) -> Result<Vec<Promotion>> {
    let sha = context.sha();
    // Every read of every variant, stage and prod, in one round at once; the
    // verdicts are taken afterwards, in order.
    let checks = concurrently(variants, |variant| {
        let stage_tags =
            [sha.short(), "latest"].map(|what| tags::tag(what, variant.arch, &variant.name));
        let check = check(runner, context, variant, targets, key, &stage_tags);
        (stage_tags.join(", "), check)
    });
    // Prod holds this release's own tag (`v1.2.3-*`, each variant's first
    // copy) at stage's digest only if an earlier run passed the whole gate,
    // since copies start after it. That promotion is finished even when
    // stage's `latest` has moved to another commit since.
    let resumed = checks.iter().any(|(_, check)| {
        check.as_ref().is_ok_and(|(p, _)| {
            let sha_tag = tags::tag(sha.short(), p.variant.arch, &p.variant.name);
            p.tags
                .iter()
                .any(|(tag, done)| *done && tags::is_immutable(tag) && *tag != sha_tag)
        })
    });
    let mut rows = vec![["VARIANT", "STAGE TAGS", "DIGEST", "GATE"].map(String::from)];
    let mut promotions = Vec::new();
    // Every reason at once, the commit's first: one re-run can follow all.
    let mut failures: Vec<String> = on_branch.as_ref().err().cloned().into_iter().collect();
    let mut moved = false;
    for (variant, (stage_tags, check)) in variants.iter().zip(checks) {
        moved |= !resumed && check.as_ref().is_ok_and(|(_, moved_on)| moved_on.is_some());
        let check = check.and_then(|(promotion, moved_on)| match moved_on {
            Some(why) if !resumed => Err(why),
            Some(_) => Ok((promotion, "ok: finishing an earlier run's promotion, though stage's latest is another commit's")),
            None => Ok((promotion, "ok")),
        });
        let (digest, verdict) = match &check {
            Ok((promotion, ok)) => match &promotion.digest {
                Some(digest) => (digest.clone(), ok.to_string()),
                None => ("-".to_string(), "(dry run: not checked)".to_string()),
            },
            Err(why) => ("-".to_string(), format!("FAILED: {why}")),
        };
        rows.push([variant.name.clone(), stage_tags, digest, verdict]);
        match check {
            Ok((promotion, _)) => promotions.push(promotion),
            Err(why) => failures.push(format!("{}: {why}", variant.name)),
        }
    }
    let table = render_table(&rows);
    eprint!("gate for {} ({sha}):\n{table}", context.describe());
    let commit = match &on_branch {
        Ok(fact) => format!("commit: ok: {fact}"),
        Err(why) => format!("commit: FAILED: {why}"),
    };
    eprintln!("{commit}");
    // Each variant's verdict, signatures included, and the commit's, on the
    // run's page.
    let title = format!("### Promotion gate for {}\n\n", context.describe());
    let table = github::markdown_table(&rows);
    github::summary(runner, &format!("{title}{table}\n{commit}\n"));
    // A run that failed before its first copy left no proof behind.
    let hint = if moved {
        format!("\n(stage's latest is another commit's: to promote {} after all, re-run stage's run for it (Re-run all jobs), which tags its images latest again without building, then re-run this)", sha.short())
    } else {
        String::new()
    };
    ensure!(
        failures.is_empty(),
        "promotion gate failed, nothing was copied to prod:\n  {}{hint}",
        failures.join("\n  ")
    );
    Ok(promotions)
}

/// One variant's verdict from all its reads at once: stage's `<sha8>` and
/// `latest` tags (`stage_tags`), then its signature, then what prod holds;
/// with why stage's `latest` is another commit's, when it is.
fn check(
    runner: &Runner,
    context: &Context,
    variant: &Variant,
    (stage, prod): (&Target, &Target),
    key: &Key,
    [sha_tag, latest_tag]: &[String; 2],
) -> Result<(Promotion, Option<String>), String> {
    let prefix = exec::prefix(&variant.name);
    let mut prod_tags = tags::image_tags(context, variant)?;
    // The release's own tag first, which marks a promotion begun (see
    // `gate`); the moving tags (`latest-*`) last.
    prod_tags.sort_by_key(|tag| (!tags::is_immutable(tag), tag == sha_tag));
    let reads: Vec<(&Target, &str)> = [(stage, sha_tag), (stage, latest_tag)]
        .into_iter()
        .chain(prod_tags.iter().map(|tag| (prod, tag)))
        .map(|(target, tag)| (target, tag.as_str()))
        .collect();
    let mut answers = concurrently(&reads, |(target, tag)| {
        runner.ask(&prefix, &skopeo::inspect(target, tag, variant.arch))
    });
    let in_prod = answers.split_off(2);
    let [by_sha, latest] = answers.try_into().expect("one answer per read");
    let Staged { digest, moved_on } =
        check_stage(by_sha, latest, sha_tag, latest_tag, context.sha())?;
    // Whether the image is the stage pipeline's comes before what prod
    // holds: a foreign image is refused as such.
    let signature = signatures::check(
        runner,
        &prefix,
        (stage, prod),
        variant.arch,
        digest.as_deref(),
        key,
    )?;
    let judged = judge_prod(prod_tags, &in_prod, digest.as_deref(), sha_tag)?;
    let (mut tags, mut left) = (Vec::new(), Vec::new());
    // A release never moves prod's `latest` back (a manual re-promote, a
    // rollback, may): not when it finishes an earlier run (see `gate`), nor
    // when stage's `latest` was tagged again for an older release.
    let finishing = moved_on.is_some();
    let guarded = finishing || matches!(context, Context::Release { .. });
    for ((tag, done), reply) in judged.into_iter().zip(&in_prod) {
        let moving = guarded && !tags::is_immutable(&tag);
        match moving
            .then(|| kept(runner, reply, context.sha(), finishing))
            .flatten()
        {
            Some(why) => left.push(format!("{tag}: {why}; left as it is")),
            None => tags.push((tag, done)),
        }
    }
    let promotion = Promotion {
        variant: variant.clone(),
        digest,
        tags,
        left,
        signature,
    };
    Ok((promotion, moved_on))
}

/// Why a prod `latest` tag, read as `reply`, stays as it is when a release
/// of `sha` would move it. Finishing an earlier run's promotion, unless its
/// image is of `sha` or a commit before it: a later release may have been
/// promoted since, and one that cannot be read is never overwritten unseen.
/// Otherwise only when its image is of a later commit (git says so): one
/// pushed past the pipeline, or of a commit this checkout lacks (a
/// force-pushed branch), must not keep `latest` from moving for good.
fn kept(runner: &Runner, reply: &Reply, sha: &Sha, finishing: bool) -> Option<String> {
    match reply {
        Reply::Out(text) => {
            let revision = skopeo::parse_inspect(text)
                .ok()?
                .labels?
                .remove(REVISION_LABEL)?;
            let rev = Sha::parse(&revision).ok();
            let before = |a: &Sha, b: &Sha| git::is_ancestor(runner, a, b.full());
            if finishing {
                let older = rev.is_some_and(|rev| before(&rev, sha));
                return (!older).then(|| {
                    format!("prod's is commit {revision}, which is neither this release's commit nor one before it in this checkout")
                });
            }
            let later = rev.is_some_and(|rev| rev != *sha && before(sha, &rev));
            later.then(|| format!("prod's is commit {revision}, a later one than this release's"))
        }
        Reply::Failed { why: stderr, .. } if finishing && !skopeo::is_not_found(stderr) => {
            Some(format!("prod's cannot be read ({})", reason(stderr)))
        }
        _ => None,
    }
}

/// Stage's image of the release: its digest (`None` in a dry run), and why
/// stage's `latest` is not it, when it is another commit's.
#[derive(Default)]
struct Staged {
    digest: Option<String>,
    moved_on: Option<String>,
}

/// Stage's image of the release from the reads of its two tags: both
/// present and labelled with the release commit.
fn check_stage(
    by_sha: Reply,
    latest: Reply,
    sha_tag: &str,
    latest_tag: &str,
    sha: &Sha,
) -> Result<Staged, String> {
    let parse = |reply: Reply, tag: &str| -> Result<Option<Inspect>, String> {
        match reply {
            Reply::DryRun => Ok(None),
            Reply::Out(text) => skopeo::parse_inspect(&text).map(Some).map_err(message),
            Reply::Failed { why: stderr, .. } if skopeo::is_not_found(&stderr) => {
                Err(format!("{tag} not found in stage"))
            }
            Reply::Failed { why: stderr, .. } => {
                Err(format!("cannot read {tag} in stage: {}", reason(&stderr)))
            }
        }
    };
    let (Some(by_sha), Some(latest)) = (parse(by_sha, sha_tag)?, parse(latest, latest_tag)?) else {
        return Ok(Staged::default());
    };
    let moved_on = (by_sha.digest != latest.digest).then(|| {
        format!(
            "stage {latest_tag} is {} but {sha_tag} is {}: stage's latest is not this release's commit",
            short(&latest.digest),
            short(&by_sha.digest)
        )
    });
    let labels = by_sha.labels.unwrap_or_default();
    let revision = labels.get(REVISION_LABEL).map_or("(none)", String::as_str);
    if revision != sha.full() {
        return Err(format!(
            "{sha_tag} has {REVISION_LABEL}={revision}, expected {}",
            sha.full()
        ));
    }
    Ok(Staged {
        digest: Some(by_sha.digest),
        moved_on,
    })
}

/// The prod tags in write order, each marked done when prod already has it
/// at `digest`, from the reads of each. An immutable tag at another digest
/// stops the promotion, saying why it may be: prod's `sha_tag` elsewhere
/// means stage rebuilt the commit after prod got it; else the release tag
/// was used before.
fn judge_prod(
    tags: Vec<String>,
    answers: &[Reply],
    digest: Option<&str>,
    sha_tag: &str,
) -> Result<Vec<(String, bool)>, String> {
    let rebuilt = tags
        .iter()
        .zip(answers)
        .find(|(tag, _)| *tag == sha_tag)
        .and_then(|(_, reply)| match reply {
            Reply::Out(text) => skopeo::parse_inspect(text).ok(),
            _ => None,
        })
        .is_some_and(|have| Some(have.digest.as_str()) != digest);
    let mut out = Vec::new();
    for (tag, answer) in tags.iter().cloned().zip(answers) {
        let done = match (digest, answer) {
            (Some(want), Reply::Out(text)) => {
                let have = skopeo::parse_inspect(text).map_err(message)?.digest;
                if have != want && tags::is_immutable(&tag) {
                    let why = match rebuilt {
                        true => format!("stage's image of this commit was built again after prod got {sha_tag}; release a newer commit, or first point stage's tags back at {} while stage still holds it (docker buildx imagetools create --prefer-index=false)", short(&have)),
                        false => "the release tag already names another image in prod; release under a new tag".to_string(),
                    };
                    return Err(format!(
                        "prod already has {tag} at {}, not {}; immutable tags are never overwritten: {why}",
                        short(&have),
                        short(want)
                    ));
                }
                have == want
            }
            // Only "not there" means free to write: an immutable tag that
            // cannot be read (an index without this architecture, a
            // registry error) may point elsewhere and must not be overwritten.
            (Some(_), Reply::Failed { why: stderr, .. })
                if tags::is_immutable(&tag) && !skopeo::is_not_found(stderr) =>
            {
                return Err(format!(
                    "cannot read prod {tag} ({}); an immutable tag is never overwritten unseen",
                    reason(stderr)
                ));
            }
            _ => false,
        };
        out.push((tag, done));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An immutable prod tag at another digest stops the promotion, and
    /// says which of its two causes it is.
    #[test]
    fn an_immutable_prod_tag_elsewhere_names_its_cause() {
        let at = |digest: &str| {
            Reply::Out(format!(
                r#"{{"Digest": "{digest}", "Labels": null, "Architecture": "amd64"}}"#
            ))
        };
        let absent = || Reply::Failed {
            why: "manifest unknown".into(),
            code: Some(1),
        };
        let (stage, other) = ("sha256:aaaa", "sha256:bbbb");
        let tags = || vec!["v1-amd64-gpu".to_string(), "aaaaaaaa-amd64-gpu".to_string()];
        let judge = |answers: &[Reply]| {
            judge_prod(tags(), answers, Some(stage), "aaaaaaaa-amd64-gpu").unwrap_err()
        };
        let rebuilt = judge(&[at(other), at(other)]);
        assert!(rebuilt.starts_with("prod already has v1-amd64-gpu at sha256:bbbb, not sha256:aaaa; immutable tags are never overwritten: stage's image of this commit was built again after prod got aaaaaaaa-amd64-gpu; release a newer commit"), "{rebuilt}");
        let reused = judge(&[at(other), absent()]);
        assert!(
            reused.ends_with(
                ": the release tag already names another image in prod; release under a new tag"
            ),
            "{reused}"
        );
        let reused = judge(&[at(other), at(stage)]);
        assert!(reused.ends_with("release under a new tag"), "{reused}");
        let done = judge_prod(
            tags(),
            &[at(stage), absent()],
            Some(stage),
            "aaaaaaaa-amd64-gpu",
        );
        assert_eq!(
            done,
            Ok(vec![
                ("v1-amd64-gpu".into(), true),
                ("aaaaaaaa-amd64-gpu".into(), false)
            ])
        );
    }

    /// Finishing an earlier run never writes over a prod `latest` it cannot
    /// read; one that is not there is written.
    #[test]
    fn a_prod_latest_that_cannot_be_read_is_kept() {
        let runner = Runner::new(&std::env::temp_dir(), false, false);
        let sha = Sha::parse(&"a".repeat(40)).unwrap();
        let kept = |why: &str| {
            let reply = Reply::Failed {
                why: why.into(),
                code: Some(1),
            };
            kept(&runner, &reply, &sha, true)
        };
        assert_eq!(
            kept("dial tcp 127.0.0.1:5003: connection refused").as_deref(),
            Some("prod's cannot be read (dial tcp 127.0.0.1:5003: connection refused)")
        );
        assert_eq!(kept("manifest unknown"), None);
        assert_eq!(super::kept(&runner, &Reply::DryRun, &sha, true), None);
        // A new release (not finishing an earlier run) writes it, as it
        // always did.
        let refused = Reply::Failed {
            why: "dial tcp 127.0.0.1:5003: connection refused".into(),
            code: Some(1),
        };
        assert_eq!(super::kept(&runner, &refused, &sha, false), None);
    }
}
