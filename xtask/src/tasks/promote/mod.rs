//! `promote`: copy a release's images from stage to prod, all variants or none.
//!
//! 1. Gate, before anything is copied: for every variant, stage's `<sha8>` and
//!    `latest` tags exist, point at the same digest (unless an earlier run of
//!    this promotion passed the gate: see `gate`), and carry the release
//!    commit as their revision label; the image carries the stage pipeline's
//!    signature, for that digest; the commit is on the default branch; no
//!    immutable prod tag already points elsewhere.
//! 2. Copy registry to registry by digest with skopeo (nothing pulled, nothing
//!    unpacked, the digest preserved): immutable tags (the release's own
//!    first) and the signature first, `latest` last, once every variant's
//!    immutable tags are in place.
//! 3. Verify every prod tag resolves to the stage digest, and every prod
//!    image's signature verifies with the same key.
//!
//! Tags already in prod at the right digest are skipped, so a re-run after a
//! success changes nothing and a re-run after a failure finishes the job,
//! even once stage's `latest` is another commit's (see `gate`).

mod gate;

use std::path::Path;

use anyhow::{anyhow, bail, ensure, Context as _, Result};

use self::gate::{gate, on_default_branch, Promotion};
use super::{short, signatures};
use crate::arch::{self, Architectures};
use crate::cli::{env_var, PromoteArgs};
use crate::context::{self, Purpose};
use crate::cosign::{self, Key};
use crate::error::Usage;
use crate::exec::{concurrently, Runner};
use crate::plan::render_table;
use crate::tags::{self, Context, Sha};
use crate::target::{self, Env, Target};
use crate::{aws, docker, git, github, skopeo};

/// `root` is where a relative `--verify-key` file is found.
pub fn run(args: PromoteArgs, runner: &Runner, root: &Path) -> Result<()> {
    let github = context::github_env()?;
    let context = context::load(&args.context, github.as_ref(), runner, Purpose::Promote)?;
    ensure!(matches!(context, Context::Release { .. } | Context::Dispatch { .. }), Usage(format!(
        "promote runs for a release or a manual re-promote, not a {}; pass --context release --release-tag TAG, or --context dispatch",
        context.describe()
    )));
    let [stage, prod] = [Env::Stage, Env::Prod]
        .map(|env| target::resolve(env, args.flags(env), env_var).map_err(Usage));
    let (stage, prod) = (stage?, prod?);
    // Host names are case-insensitive: R.example is r.example.
    if stage.registry.eq_ignore_ascii_case(&prod.registry) && stage.repository == prod.repository {
        bail!(Usage(format!(
            "stage and prod are both {}: promote copies from one to the other; point the side that is wrong elsewhere: stage with --stage-registry (ECR_REGISTRY_STAGE) or --stage-repository (ECR_REPOSITORY_STAGE), prod with --prod-registry (ECR_REGISTRY_PROD) or --prod-repository (ECR_REPOSITORY_PROD)",
            stage.image()
        )));
    }
    // The login flags of both, so a bad one runs neither login.
    let profiles = [
        ("--stage-profile", &args.stage_profile),
        ("--prod-profile", &args.prod_profile),
    ];
    super::login::refuse_beside_no_login(&args.aws, &profiles)?;
    for (target, env) in [(&stage, Env::Stage), (&prod, Env::Prod)] {
        super::login::check_region(target, &args.aws(env), env)?;
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
        tags::image_tags(&context, variant)
            .map_err(|why| context::tag_error(&context, &args.context, github.as_ref(), why))?;
    }
    let key = signatures::verify_key(&args.verify_key, root)?;
    let mut tools = vec![skopeo::TOOL, cosign::TOOL];
    if !args.aws.no_login {
        tools.extend([docker::TOOL, aws::TOOL]);
    }
    runner.require_tools(&tools)?;

    let group = github::group(&format!(
        "promote {} from {} to {}",
        context.describe(),
        stage.image(),
        prod.image()
    ));
    // Both logins at once: each is mostly the aws CLI starting up.
    let logins = [(&stage, Env::Stage), (&prod, Env::Prod)];
    let mut failed = concurrently(&logins, |(target, env)| {
        super::login::login(runner, target, &args.aws(*env), *env)
    })
    .into_iter()
    .filter_map(Result::err);
    if let Some(first) = failed.next() {
        // Two accounts: say both, so one re-run can follow both fixes.
        return Err(match failed.next() {
            Some(second) => anyhow!("both logins failed: {first:#}; and {second:#}"),
            None => first,
        });
    }
    let promotions = gate(
        runner,
        &context,
        on_branch,
        &architectures.variants,
        (&stage, &prod),
        &key,
    )?;
    let promoted = copy(runner, &promotions, &stage, &prod)
        .and_then(|()| verify(runner, &promotions, &prod, &key));
    drop(group);
    if let Err(err) = promoted {
        // The run's page says so below the gate's table, which passed.
        let failed = format!(
            "\n### Promotion to {} failed\n\n```\n{err:#}\n```\n",
            prod.image()
        );
        github::summary(runner, &failed);
        return Err(err);
    }
    report(runner, &context, &promotions, &prod, &key)
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

/// Immutable tags of every variant, then the `latest` tags. The immutable
/// tags go variant after variant, so a failure leaves whole variants behind
/// it; within one, the first tag moves the layers and the others, which only
/// add a manifest, follow together. The `latest` tags, manifests only, all
/// go together once every variant is in place.
fn copy(runner: &Runner, promotions: &[Promotion], stage: &Target, prod: &Target) -> Result<()> {
    // The tags of one kind prod lacks; those it has are said to be skipped.
    let todo = |promotion: &Promotion, immutable: bool| -> Vec<String> {
        let (mut todo, digest) = (Vec::new(), promotion.digest.as_deref());
        for (tag, done) in &promotion.tags {
            if tags::is_immutable(tag) != immutable {
                continue;
            }
            if *done {
                skipped(&promotion.prefix(), tag, digest);
            } else {
                todo.push(tag.clone());
            }
        }
        todo
    };
    // `what` names the copy in its error: the variant, or its signature.
    let copy = |promotion: &Promotion, source: &str, what: &str, tag: &str| {
        runner
            .run_with_retry(&promotion.prefix(), &skopeo::copy(stage, source, prod, tag))
            .with_context(|| {
                format!(
                    "copy of {what} {tag} to prod failed; fix the cause and re-run promote: it resumes where this stopped"
                )
            })
    };
    // A dry run read no digest: its copy shows where the digest goes.
    let copy_one = |p: &Promotion, tag: &str| {
        let source = stage.at(p.digest.as_deref().unwrap_or("<stage digest>"));
        copy(p, &source, &p.variant.name, tag)
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
        let sig = &promotion.signature;
        if sig.done {
            skipped(&promotion.prefix(), &sig.tag, sig.digest.as_deref());
        } else {
            let source = stage.at(sig.digest.as_deref().unwrap_or("<signature digest>"));
            let what = format!("{}'s signature", promotion.variant.name);
            copy(promotion, &source, &what, &sig.tag)?;
        }
    }
    for promotion in promotions {
        for why in &promotion.left {
            eprintln!("{}{why}", promotion.prefix());
        }
    }
    let latest: Vec<(&Promotion, String)> = promotions
        .iter()
        .flat_map(|p| todo(p, false).into_iter().map(move |tag| (p, tag)))
        .collect();
    concurrently(&latest, |(promotion, tag)| copy_one(promotion, tag))
        .into_iter()
        .collect()
}

/// The note for a tag prod already has at `digest`.
fn skipped(prefix: &str, tag: &str, digest: Option<&str>) {
    let digest = short(digest.unwrap_or_default());
    eprintln!("{prefix}{tag}: already in prod at {digest}, skipped");
}

/// Every prod tag resolves to the stage digest, and every prod image
/// verifies with the same key as in stage: all checked at once.
fn verify(runner: &Runner, promotions: &[Promotion], prod: &Target, key: &Key) -> Result<()> {
    // Each check is of a tag (at the stage digest?) or, `None`, of a signature.
    let checks: Vec<(&Promotion, Option<&str>)> = promotions
        .iter()
        .flat_map(|p| p.tags.iter().map(move |(tag, _)| (p, Some(tag.as_str()))))
        .chain(promotions.iter().map(|p| (p, None)))
        .collect();
    let results = concurrently(&checks, |(promotion, check)| -> Result<()> {
        let prefix = promotion.prefix();
        let digest = promotion.digest.as_deref();
        let Some(tag) = check else {
            return signatures::verify_in_prod(runner, &prefix, prod, digest, key)
                .with_context(|| format!("{} in prod", promotion.variant.name));
        };
        let read = runner
            .read(&prefix, &skopeo::inspect(prod, tag, promotion.variant.arch))
            .and_then(|text| text.map(|t| skopeo::parse_inspect(&t)).transpose());
        let Some(have) = read.with_context(|| {
            format!(
                "verification of prod {tag} ({}) after the copy failed; the copies are done: re-run promote, which skips what prod already holds and verifies again",
                promotion.variant.name
            )
        })?
        else {
            return Ok(());
        };
        let want = digest.unwrap_or_default();
        ensure!(
            have.digest == want,
            "verification failed: prod {tag} ({}) is {} but stage is {}",
            promotion.variant.name,
            short(&have.digest),
            short(want)
        );
        Ok(())
    });
    // Every failed check is said, not only the first: one re-run then
    // follows every fix.
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(Result::err)
        .map(super::message)
        .collect();
    match failed.as_slice() {
        [] => Ok(()),
        [one] => bail!("{one}"),
        many => bail!(
            "{} of {} checks of prod failed after the copy:\n  {}",
            many.len(),
            checks.len(),
            many.join("\n  ")
        ),
    }
}

fn report(
    runner: &Runner,
    context: &Context,
    promotions: &[Promotion],
    prod: &Target,
    key: &Key,
) -> Result<()> {
    let mut rows = vec![["VARIANT", "DIGEST", "PROD TAGS"].map(String::from)];
    for p in promotions {
        let digest = p.digest.as_deref().unwrap_or("not read (dry run)");
        let tags: Vec<&str> = p.tags.iter().map(|(tag, _)| tag.as_str()).collect();
        rows.push([p.variant.name.clone(), digest.to_string(), tags.join(", ")]);
    }
    super::print_out(&render_table(&rows))?;
    // The page's table is the terminal's, with each signature's verdict.
    let signature = format!("verified with `{}` in stage and prod", key.0);
    let mut page = vec![["variant", "digest", "tags", "signature"].map(String::from)];
    page.extend(rows[1..].iter().map(|[name, digest, tags]| {
        [
            name.clone(),
            format!("`{digest}`"),
            tags.clone(),
            signature.clone(),
        ]
    }));
    let mut summary = format!(
        "### Promoted to {}\n\n{}",
        prod.image(),
        github::markdown_table(&page)
    );
    if let Context::Release {
        tag,
        prerelease: true,
        ..
    } = context
    {
        let note = format!("{tag} is a prerelease: prod's latest-* tags were not moved");
        eprintln!("{note}");
        summary += &format!("\n{note}.\n");
    }
    github::summary(runner, &summary);
    Ok(())
}
