//! `promote`: copy a release's images from stage to prod, all variants or none.
//!
//! 1. Gate, before anything is copied: for every variant, stage's `<sha8>` and
//!    `latest` tags exist, point at the same digest, and carry the release
//!    commit as their revision label; the commit is on the default branch; no
//!    immutable prod tag already points elsewhere.
//! 2. Copy registry to registry by digest with skopeo (nothing pulled, nothing
//!    unpacked, the digest preserved): immutable tags first, `latest` last,
//!    once every variant's immutable tags are in place.
//! 3. Verify every prod tag resolves to the stage digest.
//!
//! Tags already in prod at the right digest are skipped, so a re-run after a
//! success changes nothing and a re-run after a failure finishes the job.

use std::path::Path;

use anyhow::{bail, Context as _, Result};

use super::signatures::{self, Signature};
use crate::arch::{self, Architectures, Variant};
use crate::cli::{env_var, PromoteArgs};
use crate::context::{self, Purpose};
use crate::cosign::{self, Key};
use crate::error::Usage;
use crate::exec::{concurrently, require_tools, Reply, Runner};
use crate::plan::{render_table, REVISION_LABEL};
use crate::skopeo::{self, Inspect};
use crate::tags::{self, Context, Sha};
use crate::target::{self, Env, Target};
use crate::{aws, docker, git, github};

/// One variant's promotion, worked out by the gate.
struct Promotion {
    variant: Variant,
    /// Stage's digest for the release commit; `None` in a dry run.
    digest: Option<String>,
    /// What is copied: stage's image at that digest. A dry run, which read
    /// nothing, names the stage tag whose digest a real run copies.
    source: String,
    /// Prod tags in write order (immutable first, `latest` last), each with
    /// whether prod already has it at the stage digest.
    tags: Vec<(String, bool)>,
    signature: Signature,
}

/// `root` is where a relative `--verify-key` file is found.
pub fn run(args: PromoteArgs, runner: &Runner, root: &Path) -> Result<()> {
    let github = context::github_env()?;
    let context = context::load(&args.context, github.as_ref(), runner, Purpose::Promote)?;
    if !matches!(context, Context::Release { .. } | Context::Dispatch { .. }) {
        return Err(Usage(format!(
            "promote runs for a release or a manual re-promote, not a {}; pass --context release --release-tag TAG, or --context dispatch",
            context.describe()
        ))
        .into());
    }
    let [stage, prod] = [Env::Stage, Env::Prod]
        .map(|env| target::resolve(env, args.flags(env), env_var).map_err(Usage));
    let (stage, prod) = (stage?, prod?);
    if stage == prod {
        return Err(Usage(format!(
            "stage and prod are both {}: promote copies from one to the other; point ECR_REGISTRY_PROD (--prod-registry) or ECR_REPOSITORY_PROD (--prod-repository) at prod",
            stage.image()
        ))
        .into());
    }
    // The commit and its own files decide, not the checkout: a manual
    // re-promote checks out a branch head, which may list other variants.
    let (branch, source) =
        context::default_branch(args.default_branch.as_deref(), github.as_ref(), || {
            git::origin_head(runner)
        })
        .map_err(Usage)?;
    let on_branch = on_default_branch(runner, context.sha(), &branch, &source)?;
    let architectures = architectures_at(runner, context.sha())?;
    // Every tag is computed, and so validated, before anything runs.
    for variant in &architectures.variants {
        tags::image_tags(&context, variant).map_err(Usage)?;
    }
    let key = signatures::verify_key(&args.verify_key, root)?;
    if !runner.dry_run {
        let mut tools = vec![skopeo::TOOL, cosign::TOOL];
        if !args.aws.no_login {
            tools.extend([docker::TOOL, aws::TOOL]);
        }
        require_tools(&tools)?;
    }

    github::group(&format!(
        "promote {} from {} to {}",
        context.describe(),
        stage.image(),
        prod.image()
    ));
    // Both logins at once: each is mostly the aws CLI starting up.
    let logins = [(&stage, Env::Stage), (&prod, Env::Prod)];
    for result in concurrently(&logins, |(target, env)| {
        super::login::login(runner, target, &args.aws(*env), env.as_str())
    }) {
        result?;
    }
    let promotions = gate(
        runner,
        &context,
        on_branch,
        &architectures.variants,
        (&stage, &prod),
        &key,
    )?;
    copy(runner, &promotions, &stage, &prod)?;
    verify(runner, &promotions, &prod, &key)?;
    github::end_group();
    report(runner, &context, &promotions, &prod, &key)
}

/// Whether the release commit is on the default branch: `Ok(Err(why))` is
/// the gate's verdict. A checkout that cannot tell (the commit or the branch
/// not fetched, a shallow history) is bad input, said with how to fetch.
fn on_default_branch(
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

/// `.aws-architecture` and the Dockerfiles as they are in the commit.
fn architectures_at(runner: &Runner, sha: &Sha) -> Result<Architectures> {
    let file = arch::FILE;
    let text = git::show(runner, sha, file).map_err(|_| {
        Usage(format!(
            "{file}: not in commit {}, so which variants it built is unknown; promote a commit that has one",
            sha.short()
        ))
    })?;
    let dockerfiles = arch::variants_of_dockerfiles(git::top_level_files(runner, sha)?);
    arch::parse(&text, &dockerfiles)
        .map_err(|msg| Usage(format!("{msg} (as of commit {})", sha.short())).into())
}

/// Check everything before copying anything; print a per-variant table and
/// fail if any variant, or the commit, is not fit for prod.
fn gate(
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

/// Immutable tags of every variant, then the `latest` tags. The immutable
/// tags go variant after variant, so a failure leaves whole variants behind
/// it; within one, the first tag moves the layers and the others, which only
/// add a manifest, follow together. The `latest` tags, manifests only, all
/// go together once every variant is in place.
fn copy(runner: &Runner, promotions: &[Promotion], stage: &Target, prod: &Target) -> Result<()> {
    let todo = |promotion: &Promotion, immutable: bool| -> Vec<String> {
        let prefix = format!("[{}] ", promotion.variant.name);
        let mut todo = Vec::new();
        for (tag, done) in &promotion.tags {
            if tags::is_immutable(tag) != immutable {
                continue;
            }
            if *done {
                let digest = promotion.digest.as_deref().unwrap_or_default();
                let note = format!("{tag}: already in prod at {}, skipped", short(digest));
                runner.note(&prefix, &note);
            } else {
                todo.push(tag.clone());
            }
        }
        todo
    };
    let copy_one = |promotion: &Promotion, tag: &str| {
        let prefix = format!("[{}] ", promotion.variant.name);
        let step = skopeo::copy(stage, &promotion.source, prod, tag);
        runner
            .run_with_retry(&prefix, &step, super::build::PUSH_ATTEMPTS)
            .with_context(|| {
                format!(
                    "copy of {} {tag} to prod failed; fix the cause and re-run promote: it resumes where this stopped",
                    promotion.variant.name
                )
            })
    };
    for promotion in promotions {
        if let Some((first, rest)) = todo(promotion, true).split_first() {
            copy_one(promotion, first)?;
            concurrently(rest, |tag| copy_one(promotion, tag))
                .into_iter()
                .collect::<Result<()>>()?;
        }
        // The signature goes with the variant's immutable tags, before any
        // `latest` tag points at the image.
        let prefix = format!("[{}] ", promotion.variant.name);
        signatures::copy(runner, &prefix, (stage, prod), &promotion.signature)?;
    }
    let latest: Vec<(&Promotion, String)> = promotions
        .iter()
        .flat_map(|p| todo(p, false).into_iter().map(move |tag| (p, tag)))
        .collect();
    concurrently(&latest, |(promotion, tag)| copy_one(promotion, tag))
        .into_iter()
        .collect()
}

/// Every prod tag resolves to the stage digest, and every prod image
/// verifies with the same key as in stage.
fn verify(runner: &Runner, promotions: &[Promotion], prod: &Target, key: &Key) -> Result<()> {
    let checks: Vec<(&Promotion, &str)> = promotions
        .iter()
        .flat_map(|p| p.tags.iter().map(move |(tag, _)| (p, tag.as_str())))
        .collect();
    let results = concurrently(&checks, |(promotion, tag)| -> Result<()> {
        let prefix = format!("[{}] ", promotion.variant.name);
        let step = skopeo::inspect(prod, tag, promotion.variant.arch);
        let Some(text) = runner.read(&prefix, &step)? else {
            return Ok(());
        };
        let have = skopeo::parse_inspect(&text)?.digest;
        let want = promotion.digest.as_deref().unwrap_or_default();
        if have != want {
            bail!(
                "verification failed: prod {tag} ({}) is {} but stage is {}",
                promotion.variant.name,
                short(&have),
                short(want)
            );
        }
        Ok(())
    });
    let signed = concurrently(promotions, |p| {
        let prefix = format!("[{}] ", p.variant.name);
        signatures::verify_in_prod(runner, &prefix, prod, p.digest.as_deref(), key)
            .with_context(|| format!("{} in prod", p.variant.name))
    });
    results.into_iter().chain(signed).collect()
}

fn report(
    runner: &Runner,
    context: &Context,
    promotions: &[Promotion],
    prod: &Target,
    key: &Key,
) -> Result<()> {
    let mut rows = vec![["VARIANT", "DIGEST", "PROD TAGS"].map(String::from)];
    let mut summary = format!(
        "### Promoted to {}\n\n| variant | digest | tags | signature |\n|---|---|---|---|\n",
        prod.image()
    );
    for p in promotions {
        let digest = p.digest.as_deref().unwrap_or("not read (dry run)");
        let tags = p
            .tags
            .iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let signature = format!("verified with `{}` in stage and prod", key.0);
        summary += &format!(
            "| {} | `{digest}` | {tags} | {signature} |\n",
            p.variant.name
        );
        rows.push([p.variant.name.clone(), digest.to_string(), tags]);
    }
    print!("{}", render_table(&rows));
    if let Context::Release {
        tag,
        prerelease: true,
        ..
    } = context
    {
        let note = format!("{tag} is a prerelease: prod's latest-* tags were not moved");
        runner.note("", &note);
        summary += &format!("\n{note}.\n");
    }
    if !runner.dry_run {
        github::summary(&summary)?;
    }
    Ok(())
}

fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// The line of a tool's stderr that says why it failed: the last one that
/// is not blank, as skopeo logs any warnings before its fatal error.
fn reason(stderr: &str) -> &str {
    stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::reason;

    #[test]
    fn the_reason_is_the_fatal_line_after_any_warnings() {
        let stderr = "level=warning msg=\"no creds\"\nlevel=fatal msg=\"unauthorized\"\n\n";
        assert_eq!(reason(stderr), "level=fatal msg=\"unauthorized\"");
        assert_eq!(reason(""), "");
    }
}
