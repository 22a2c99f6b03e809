//! Where a command runs, worked out from flags, GitHub Actions' environment, or git.
//!
//! Flags win; under GitHub Actions the event name and payload fill in the rest;
//! in a terminal, git gives the commit and whether the tree is dirty. The
//! deciding logic is a pure function over those inputs ([`resolve`]); [`load`]
//! is the thin wrapper that gathers them.

use clap::{Args, ValueEnum};
use serde_json::Value;

use crate::cli::{env_var, flag_value};
use crate::error::Usage;
use crate::exec::Runner;
use crate::git;
use crate::tags::{validate_release_tag, Context, Sha};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// GitHub Actions' event when `GITHUB_ACTIONS=true`, else the terminal
    Auto,
    /// A developer's machine: `latest` and `make-<sha8>`
    Terminal,
    /// A pull request: `latest`, `<sha8>`, `PR-<number>`
    Pr,
    /// A push to the default branch: `latest`, `<sha8>`
    Push,
    /// A manual run: `latest`, `<sha8>`, `workflow_dispatch`
    Dispatch,
    /// A published release: `latest`, `<sha8>`, `<release tag>`
    Release,
}

/// The flags every command that computes tags shares.
#[derive(Args, Clone, Debug)]
pub struct ContextArgs {
    /// Where this runs, which decides the tags
    #[arg(long, value_enum, default_value = "auto")]
    pub context: Kind,
    /// Commit to tag, as a full SHA [default: the event's commit, or HEAD; a
    /// build in a terminal takes only HEAD, with a clean tree]
    #[arg(long, value_name = "SHA")]
    pub sha: Option<String>,
    /// Pull request number [default: from the event payload]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub pr_number: Option<u64>,
    /// Release tag [default: from the event payload]
    #[arg(long, value_name = "TAG")]
    pub release_tag: Option<String>,
}

/// What a context is for. A build tags the working tree, so in a terminal
/// the tree must be exactly the commit its tags name; a promotion builds
/// nothing and may name any commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Build,
    Promote,
}

/// What GitHub Actions tells a step about its run.
#[derive(Clone, Debug)]
pub struct GithubEnv {
    pub event_name: Option<String>,
    pub sha: Option<String>,
    /// `GITHUB_EVENT_PATH`, for messages about the payload's fields.
    pub event_path: Option<String>,
    pub event: Value,
}

impl GithubEnv {
    /// A payload field as error messages name it.
    fn field(&self, path: &str) -> String {
        match &self.event_path {
            Some(file) => format!("{path} in the event payload (GITHUB_EVENT_PATH={file})"),
            None => format!("{path} in the event payload (none: GITHUB_EVENT_PATH is not set)"),
        }
    }

    /// The payload's value at a dotted path, e.g. `pull_request.head.sha`;
    /// absent or null on the way is `None`. A parent that is some other
    /// value (`"pull_request": 7`) is an error naming it, not a field
    /// that is absent.
    fn at(&self, path: &str) -> Result<Option<&Value>, String> {
        let keys: Vec<&str> = path.split('.').collect();
        let mut value = &self.event;
        for (depth, key) in keys.iter().enumerate() {
            value = match value {
                Value::Object(fields) if fields.contains_key(*key) => &fields[*key],
                Value::Object(_) | Value::Null => return Ok(None),
                other => {
                    let parent = keys[..depth].join(".");
                    return Err(format!("{} is {other}, not an object", self.field(&parent)));
                }
            };
        }
        Ok(Some(value))
    }

    /// The string at `path`; absent or null is `None`. Any other value is
    /// an error naming the field: a hand-written payload's number must not
    /// read as a missing field, and fall back to another source.
    fn str_at(&self, path: &str) -> Result<Option<String>, String> {
        match self.at(path)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(format!("{} is {other}, not a string", self.field(path))),
        }
    }

    /// The boolean at `path`; absent or null is false. Any other value is an
    /// error naming the field: a hand-written `"true"` must not read as false.
    fn is_true(&self, path: &str) -> Result<bool, String> {
        match self.at(path)? {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(value)) => Ok(*value),
            Some(other) => Err(format!(
                "{} is {other}, not true or false",
                self.field(path)
            )),
        }
    }

    /// The string at `path`, else an error: "<field> is missing" and `why`.
    /// Empty counts as missing.
    fn required(&self, path: &str, why: &str) -> Result<String, String> {
        self.str_at(path)?
            .filter(|value| !value.is_empty())
            .ok_or_else(|| format!("{} is missing{why}", self.field(path)))
    }
}

/// git's view of the working tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub sha: Sha,
    /// Uncommitted changes, untracked files that are not ignored included.
    pub dirty: bool,
}

/// GitHub Actions' description of this run, when running under it.
pub fn github_env() -> anyhow::Result<Option<GithubEnv>> {
    if !crate::github::is_actions() {
        return Ok(None);
    }
    let event_path = env_var("GITHUB_EVENT_PATH");
    let event = match &event_path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|err| {
                Usage(format!(
                    "GITHUB_EVENT_PATH={path}: cannot read the event payload: {err}"
                ))
            })?;
            // An object at the top, as every event's payload is.
            let fields = serde_json::from_str(&text).map_err(|err| {
                Usage(format!(
                    "GITHUB_EVENT_PATH={path}: not a JSON object: {err}"
                ))
            })?;
            Value::Object(fields)
        }
        None => Value::Null,
    };
    Ok(Some(GithubEnv {
        event_name: env_var("GITHUB_EVENT_NAME"),
        sha: env_var("GITHUB_SHA"),
        event_path,
        event,
    }))
}

/// Gather git's answer when it decides, and resolve.
pub fn load(
    args: &ContextArgs,
    github: Option<&GithubEnv>,
    runner: &Runner,
    purpose: Purpose,
) -> anyhow::Result<Context> {
    let git_decides = deciding_event(args, github).is_none();
    let head = if git_decides && (purpose == Purpose::Build || args.sha.is_none()) {
        // Not a git checkout: bad input. A build tags the checked-out
        // commit, so only a promotion can name one with --sha instead.
        let fix = match purpose {
            Purpose::Build => "run it in a git checkout of the repository",
            Purpose::Promote => "run it in a git checkout of the repository, or pass --sha",
        };
        Some(git::head(runner).map_err(|err| Usage(format!("{err:#}; {fix}")))?)
    } else {
        None
    };
    resolve(args, github, head, purpose).map_err(|msg| Usage(msg).into())
}

/// GitHub Actions' event, which names the commit unless told `--context
/// terminal`; without it, git does.
fn deciding_event<'a>(args: &ContextArgs, github: Option<&'a GithubEnv>) -> Option<&'a GithubEnv> {
    github.filter(|_| args.context != Kind::Terminal)
}

/// Decide the context. `head` is git's view of the tree, when it was read.
pub fn resolve(
    args: &ContextArgs,
    github: Option<&GithubEnv>,
    head: Option<Head>,
    purpose: Purpose,
) -> Result<Context, String> {
    let kind = kind(args.context, github)?;
    // A flag for another context would be ignored: its tags never made.
    for (given, flag, wants) in [
        (args.pr_number.is_some(), "--pr-number", Kind::Pr),
        (args.release_tag.is_some(), "--release-tag", Kind::Release),
    ] {
        if given && kind != wants {
            let context = flag_value(kind);
            return Err(format!(
                "{flag} is for --context {}, but this runs as --context {context}, which would ignore it; pass --context {0} too, or leave {flag} out",
                flag_value(wants)
            ));
        }
    }
    let event = deciding_event(args, github);
    let flag = args
        .sha
        .as_deref()
        .map(|text| parse_sha(text, "--sha"))
        .transpose()?;
    let sha = match (event, flag) {
        (Some(_), Some(sha)) => sha,
        (Some(github), None) => event_commit(kind, github)?,
        (None, flag) => terminal_commit(flag, kind, head.as_ref(), purpose)?,
    };
    // The payload's own checks apply when it is that kind of event.
    let event_named = |name: &str| event.filter(|g| g.event_name.as_deref() == Some(name));
    Ok(match kind {
        Kind::Auto | Kind::Terminal => Context::Terminal {
            dirty: purpose == Purpose::Build && head.is_some_and(|h| h.dirty),
            sha,
        },
        Kind::Pr => {
            let payload =
                event_named("pull_request").or_else(|| event_named("pull_request_target"));
            let number = match (args.pr_number, payload) {
                (Some(number), _) => number,
                (None, Some(github)) => github
                    .at("pull_request.number")?
                    .and_then(Value::as_u64)
                    .ok_or_else(|| {
                    format!(
                        "{} is missing or not a whole number; pass --pr-number N",
                        github.field("pull_request.number")
                    )
                })?,
                (None, None) => return Err(
                    "a pull request context needs --pr-number N (or a pull_request event payload)"
                        .into(),
                ),
            };
            Context::PullRequest { number, sha }
        }
        Kind::Push => {
            if let Some(github) = event_named("push") {
                check_push(github)?;
            }
            Context::Push { sha }
        }
        Kind::Dispatch => Context::Dispatch { sha },
        Kind::Release => {
            let release = event_named("release");
            let (event_tag, prerelease) =
                release.map(check_release).transpose()?.unwrap_or_default();
            let (tag, source) =
                match (&args.release_tag, event_tag, release) {
                    (Some(tag), _, _) => (tag.clone(), "--release-tag".into()),
                    (None, Some(tag), Some(github)) => (tag, github.field("release.tag_name")),
                    (None, None, Some(github)) => {
                        return Err(format!(
                            "{} is missing; pass --release-tag TAG",
                            github.field("release.tag_name")
                        ))
                    }
                    _ => return Err(
                        "a release context needs --release-tag TAG (or a release event payload)"
                            .into(),
                    ),
                };
            validate_release_tag(&tag).map_err(|why| format!("{source}: {why}"))?;
            Context::Release {
                sha,
                tag,
                prerelease,
            }
        }
    })
}

/// The kind of run: a flag, else the event GitHub Actions names, else the terminal.
fn kind(flag: Kind, github: Option<&GithubEnv>) -> Result<Kind, String> {
    let github = match (flag, github) {
        (Kind::Auto, Some(github)) => github,
        (Kind::Auto, None) => return Ok(Kind::Terminal),
        (flag, _) => return Ok(flag),
    };
    match github.event_name.as_deref() {
        Some("pull_request" | "pull_request_target") => Ok(Kind::Pr),
        Some("push") => Ok(Kind::Push),
        Some("workflow_dispatch") => Ok(Kind::Dispatch),
        Some("release") => Ok(Kind::Release),
        Some(other) => Err(format!(
            "GITHUB_EVENT_NAME={other} has no tags in this pipeline; run on pull_request, push, workflow_dispatch or release, or pass --context"
        )),
        None => Err("GITHUB_ACTIONS=true but GITHUB_EVENT_NAME is not set; pass --context".into()),
    }
}

/// A SHA, its error named by where it came from.
fn parse_sha(text: &str, source: &str) -> Result<Sha, String> {
    Sha::parse(text).map_err(|e| format!("{source}: {e}"))
}

/// The commit GitHub Actions names when `--sha` does not: for a pull request
/// its head (never `GITHUB_SHA`, GitHub's merge commit, which the tags do not
/// describe), for a manual run its `sha` input when given, else `GITHUB_SHA`.
fn event_commit(kind: Kind, github: &GithubEnv) -> Result<Sha, String> {
    let input = github.str_at("inputs.sha")?.filter(|s| !s.is_empty());
    match (kind, input, &github.sha) {
        (Kind::Pr, _, _) => {
            let head = "pull_request.head.sha";
            let text = github.required(
                head,
                ": a pull request's tags name its head commit, and GITHUB_SHA is GitHub's merge commit, not that; pass --sha with the head commit",
            )?;
            parse_sha(&text, &github.field(head))
        }
        (Kind::Dispatch, Some(text), _) => parse_sha(&text, &github.field("inputs.sha")),
        (_, _, Some(text)) => parse_sha(text, "GITHUB_SHA"),
        (_, _, None) => {
            Err("GITHUB_SHA is not set (GitHub Actions sets it); pass --sha <full SHA>".into())
        }
    }
}

/// The commit in a terminal: `--sha` (`flag`), else `HEAD`. A build tags the
/// working tree, so a build's tree must be that commit, unchanged, before any
/// tag other than `make-<sha8>-dirty` may name it.
fn terminal_commit(
    flag: Option<Sha>,
    kind: Kind,
    head: Option<&Head>,
    purpose: Purpose,
) -> Result<Sha, String> {
    let no_commit = "no commit: pass --sha <full SHA>";
    if purpose == Purpose::Promote {
        return flag
            .or_else(|| head.map(|head| head.sha.clone()))
            .ok_or_else(|| no_commit.into());
    }
    let head = head.ok_or(no_commit)?;
    // `kind` is resolved: never `Auto`.
    let claims_commit = flag.is_some() || kind != Kind::Terminal;
    if head.dirty && claims_commit {
        let what = match &flag {
            Some(_) => "--sha".to_string(),
            None => format!("--context {}", flag_value(kind)),
        };
        return Err(format!(
            "{what}: the working tree has uncommitted changes (see git status), so its images are not commit {}; commit or stash them, or build without {what} to get make-<sha8>-dirty tags",
            head.sha.short()
        ));
    }
    match flag {
        Some(sha) if sha != head.sha => Err(format!(
            "--sha {sha}: the working tree is at {}, and a build tags what is checked out; check out {} first, or leave out --sha",
            head.sha,
            sha.short()
        )),
        _ => Ok(head.sha.clone()),
    }
}

/// Only a push that moves the default branch gets stage tags. A deleting
/// push names no commit to build; a push to another branch or a tag is not
/// what stage holds. Both are refused, never built under the wrong tags.
fn check_push(github: &GithubEnv) -> Result<(), String> {
    let zeros = github
        .str_at("after")?
        .filter(|after| !after.is_empty() && after.chars().all(|c| c == '0'));
    let deleted = if github.is_true("deleted")? {
        Some(format!("{} is true", github.field("deleted")))
    } else {
        zeros.map(|after| format!("{} is {after}", github.field("after")))
    };
    if let Some(deleted) = deleted {
        return Err(format!(
            "{deleted}: this push deletes {}, so there is no commit to build; stage builds only pushes that move the default branch",
            github.str_at("ref")?.as_deref().unwrap_or("a ref")
        ));
    }
    let git_ref = github.required("ref", "; a push event always has one")?;
    let branch = github.required(
        "repository.default_branch",
        ", so a push to it cannot be told from a push elsewhere; pass --context push only for a push to the default branch",
    )?;
    if git_ref != format!("refs/heads/{branch}") {
        return Err(format!(
            "the push is to {git_ref}, not to the default branch {branch} ({}); only the default branch gets stage tags: trigger stage on it alone, or use a manual run (workflow_dispatch)",
            github.field("repository.default_branch")
        ));
    }
    Ok(())
}

/// A tag of `context` that cannot be made, as bad input. In a release that
/// is the release tag's fault (too long for a variant's tag), so the error
/// names where the tag came from: `--release-tag`, else the payload's field.
pub fn tag_error(
    context: &Context,
    args: &ContextArgs,
    github: Option<&GithubEnv>,
    why: String,
) -> Usage {
    let source = match (context, &args.release_tag, github) {
        (Context::Release { .. }, None, Some(github)) => github.field("release.tag_name"),
        (Context::Release { .. }, _, _) => "--release-tag".to_string(),
        _ => return Usage(why),
    };
    Usage(format!("{source}: {why}"))
}

/// A release event's tag and whether it is a prerelease; a draft is refused.
fn check_release(github: &GithubEnv) -> Result<(Option<String>, bool), String> {
    if github.is_true("release.draft")? {
        return Err(format!(
            "{} is true: a draft release is never promoted; publish the release first",
            github.field("release.draft")
        ));
    }
    // prod.yml runs on `published` only; any other action reaching xtask
    // (unpublished, deleted, edited) is a trigger that must not promote.
    if let Some(action) = github.str_at("action")?.filter(|a| a != "published") {
        return Err(format!(
            "{} is \"{action}\": only a published release is promoted; trigger prod on `release: types: [published]`",
            github.field("action")
        ));
    }
    let prerelease = github.is_true("release.prerelease")?;
    Ok((github.str_at("release.tag_name")?, prerelease))
}

/// The branch a release commit must be on, and where that was read: the
/// flag, else under GitHub Actions the payload's `repository.default_branch`,
/// else the clone's `origin/HEAD`, as `origin_head` reads it.
pub fn default_branch(
    flag: Option<&str>,
    github: Option<&GithubEnv>,
    origin_head: impl FnOnce() -> Option<String>,
) -> Result<(String, String), String> {
    match (flag, github) {
        (Some(""), _) => {
            Err("--default-branch is empty; name the branch releases are cut from".into())
        }
        (Some(branch), _) => Ok((branch.to_string(), "--default-branch".into())),
        (None, Some(github)) => github
            .required(
                "repository.default_branch",
                ", so the branch a release must be on is unknown; pass --default-branch BRANCH",
            )
            .map(|branch| (branch, github.field("repository.default_branch"))),
        (None, None) => origin_head()
            .map(|branch| (branch, "origin/HEAD".into()))
            .ok_or_else(|| "cannot tell the default branch: this clone has no origin/HEAD; run `git remote set-head origin --auto`, or pass --default-branch BRANCH".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
    const HEAD_SHA: &str = "fedcba9876543210fedcba9876543210fedcba98";

    fn args(context: Kind) -> ContextArgs {
        ContextArgs {
            context,
            sha: None,
            pr_number: None,
            release_tag: None,
        }
    }

    /// The context a pull_request event with this payload gives, run in CI.
    fn pull_request(event: Value) -> Result<Context, String> {
        let github = github("pull_request", event);
        build(&args(Kind::Auto), Some(&github), None)
    }

    fn github(event_name: &str, event: Value) -> GithubEnv {
        GithubEnv {
            event_name: Some(event_name.into()),
            sha: Some(SHA.into()),
            event_path: Some("/e.json".into()),
            event,
        }
    }

    fn sha(text: &str) -> Sha {
        Sha::parse(text).unwrap()
    }

    fn head(dirty: bool) -> Option<Head> {
        Some(Head {
            sha: sha(SHA),
            dirty,
        })
    }

    fn build(
        args: &ContextArgs,
        github: Option<&GithubEnv>,
        head: Option<Head>,
    ) -> Result<Context, String> {
        resolve(args, github, head, Purpose::Build)
    }

    /// A payload whose field is missing, empty or of the wrong type is
    /// named as that field of that file, never as a missing flag or as
    /// another field.
    #[test]
    fn a_bad_payload_field_is_named_as_itself() {
        let repository = json!({"default_branch": "main"});
        let cases = [
            (
                "pull_request",
                json!({"pull_request": {"number": "7", "head": {"sha": HEAD_SHA}}}),
                "pull_request.number in the event payload (GITHUB_EVENT_PATH=/e.json) is missing or not a whole number; pass --pr-number N",
            ),
            (
                "release",
                json!({"action": "unpublished", "release": {"tag_name": "v1.0.0"}, "repository": repository}),
                "action in the event payload (GITHUB_EVENT_PATH=/e.json) is \"unpublished\": only a published release is promoted",
            ),
            (
                "release",
                json!({"release": {"draft": false}, "repository": repository}),
                "release.tag_name in the event payload (GITHUB_EVENT_PATH=/e.json) is missing; pass --release-tag TAG",
            ),
            (
                "push",
                json!({"ref": "refs/heads/main", "after": "", "repository": {"default_branch": ""}}),
                "repository.default_branch in the event payload (GITHUB_EVENT_PATH=/e.json) is missing, so",
            ),
            (
                "push",
                json!({"ref": "refs/heads/main", "after": "0000000000000000000000000000000000000000", "repository": repository}),
                "after in the event payload (GITHUB_EVENT_PATH=/e.json) is 0000000000000000000000000000000000000000: this push deletes refs/heads/main",
            ),
        ];
        for (event, payload, expected) in cases {
            let github = github(event, payload);
            let err = build(&args(Kind::Auto), Some(&github), None).unwrap_err();
            assert!(err.starts_with(expected), "{event}: {err}");
        }
    }

    /// `--pr-number` and `--release-tag` outside their contexts would be
    /// ignored, and the images tagged as another context's: bad input.
    #[test]
    fn a_flag_of_another_context_is_refused() {
        let cases = [
            (Kind::Auto, None, Some("v1.2.3"), "--release-tag is for --context release, but this runs as --context terminal, which would ignore it; pass --context release too, or leave --release-tag out"),
            (Kind::Push, Some(3), None, "--pr-number is for --context pr, but this runs as --context push, which would ignore it; pass --context pr too, or leave --pr-number out"),
            (Kind::Pr, Some(3), Some("v1"), "--release-tag is for --context release, but this runs as --context pr"),
        ];
        for (kind, pr_number, release_tag, want) in cases {
            let args = ContextArgs {
                pr_number,
                release_tag: release_tag.map(str::to_string),
                ..args(kind)
            };
            let err = build(&args, None, head(false)).unwrap_err();
            assert!(err.starts_with(want), "{kind:?}: {err}");
        }
        // Under GitHub Actions, the event decides the context.
        let release = github("release", json!({"release": {"tag_name": "v2"}}));
        let args = ContextArgs {
            pr_number: Some(3),
            ..args(Kind::Auto)
        };
        let err = build(&args, Some(&release), None).unwrap_err();
        assert!(err.contains("but this runs as --context release"), "{err}");
    }

    #[test]
    fn terminal_uses_git_and_marks_dirty_trees() {
        let ctx = build(&args(Kind::Auto), None, head(true)).unwrap();
        assert_eq!(
            ctx,
            Context::Terminal {
                sha: sha(SHA),
                dirty: true
            }
        );
    }

    /// A dirty tree, or a `--sha` other than HEAD, never gets a commit's
    /// clean tags in a terminal build; a promotion builds nothing.
    #[test]
    fn a_terminal_build_claims_a_commit_only_with_a_clean_tree_at_it() {
        let with = |kind: Kind, sha_flag: Option<&str>| ContextArgs {
            sha: sha_flag.map(str::to_string),
            pr_number: (kind == Kind::Pr).then_some(1),
            release_tag: (kind == Kind::Release).then(|| "v1".into()),
            ..args(kind)
        };
        for kind in [Kind::Pr, Kind::Push, Kind::Dispatch, Kind::Release] {
            let err = build(&with(kind, None), None, head(true)).unwrap_err();
            assert!(
                err.contains("the working tree has uncommitted changes"),
                "{kind:?}: {err}"
            );
            assert!(
                build(&with(kind, None), None, head(false)).is_ok(),
                "{kind:?}"
            );
        }
        let err = build(&with(Kind::Auto, Some(SHA)), None, head(true)).unwrap_err();
        assert!(
            err.starts_with("--sha: the working tree has uncommitted changes"),
            "{err}"
        );
        let err = build(&with(Kind::Push, Some(HEAD_SHA)), None, head(false)).unwrap_err();
        assert!(
            err.starts_with(&format!("--sha {HEAD_SHA}: the working tree is at {SHA}")),
            "{err}"
        );
        assert_eq!(
            build(&with(Kind::Auto, Some(SHA)), None, head(false)).unwrap(),
            Context::Terminal {
                sha: sha(SHA),
                dirty: false
            }
        );
        let promote = resolve(
            &with(Kind::Release, Some(HEAD_SHA)),
            None,
            head(true),
            Purpose::Promote,
        );
        assert_eq!(promote.unwrap().sha(), &sha(HEAD_SHA));
    }

    #[test]
    fn pull_request_uses_the_head_commit_not_the_merge_commit() {
        let event = json!({"pull_request": {"number": 7, "head": {"sha": HEAD_SHA}}});
        let ctx = pull_request(event).unwrap();
        assert_eq!(
            ctx,
            Context::PullRequest {
                number: 7,
                sha: sha(HEAD_SHA)
            }
        );
        // No head.sha: an error, never GITHUB_SHA (the merge commit).
        let event = json!({"pull_request": {"number": 7, "head": {"ref": "x"}}});
        let err = pull_request(event).unwrap_err();
        assert!(
            err.starts_with(
                "pull_request.head.sha in the event payload (GITHUB_EVENT_PATH=/e.json) is missing"
            ),
            "{err}"
        );
    }

    #[test]
    fn release_reads_the_tag_and_validates_it() {
        let event = json!({"release": {"tag_name": "v1.0.0", "target_commitish": "main"}});
        let ctx = build(&args(Kind::Auto), Some(&github("release", event)), None).unwrap();
        assert_eq!(
            ctx,
            Context::Release {
                sha: sha(SHA),
                tag: "v1.0.0".into(),
                prerelease: false,
            }
        );

        let bad = json!({"release": {"tag_name": "release/1.0"}});
        let err = build(&args(Kind::Auto), Some(&github("release", bad)), None).unwrap_err();
        assert!(
            err.starts_with("release.tag_name in the event payload (GITHUB_EVENT_PATH=/e.json): release tag \"release/1.0\" cannot be used"),
            "{err}"
        );
        let pre = json!({"release": {"tag_name": "v2.0.0-rc.1", "prerelease": true}});
        let ctx = build(&args(Kind::Auto), Some(&github("release", pre)), None).unwrap();
        assert!(
            matches!(
                ctx,
                Context::Release {
                    prerelease: true,
                    ..
                }
            ),
            "{ctx:?}"
        );
        let draft = json!({"release": {"tag_name": "v3", "draft": true}});
        let err = build(&args(Kind::Auto), Some(&github("release", draft)), None).unwrap_err();
        assert!(err.contains("a draft release is never promoted"), "{err}");
    }

    #[test]
    fn push_and_dispatch_use_github_sha() {
        let to_main = json!({"ref": "refs/heads/main", "after": SHA, "repository": {"default_branch": "main"}});
        let push = build(&args(Kind::Auto), Some(&github("push", to_main)), None).unwrap();
        assert_eq!(push, Context::Push { sha: sha(SHA) });
        let manual = build(
            &args(Kind::Auto),
            Some(&github("workflow_dispatch", json!({"inputs": {"sha": ""}}))),
            None,
        )
        .unwrap();
        assert_eq!(manual, Context::Dispatch { sha: sha(SHA) });
        let named = build(
            &args(Kind::Auto),
            Some(&github(
                "workflow_dispatch",
                json!({"inputs": {"sha": HEAD_SHA}}),
            )),
            None,
        )
        .unwrap();
        assert_eq!(named, Context::Dispatch { sha: sha(HEAD_SHA) });
    }

    /// A payload value of the wrong JSON type is named as itself: it used
    /// to read as absent, so a draft `"true"` was promoted as no draft and
    /// a numeric `inputs.sha` fell back to GITHUB_SHA.
    #[test]
    fn payload_values_of_the_wrong_type_are_errors() {
        let cases = [
            ("release", json!({"release": {"tag_name": "v3", "draft": "true"}}), "release.draft in the event payload (GITHUB_EVENT_PATH=/e.json) is \"true\", not true or false"),
            ("workflow_dispatch", json!({"inputs": {"sha": 123}}), "inputs.sha in the event payload (GITHUB_EVENT_PATH=/e.json) is 123, not a string"),
            ("release", json!({"release": {"tag_name": 3}}), "release.tag_name in the event payload (GITHUB_EVENT_PATH=/e.json) is 3, not a string"),
            ("pull_request", json!({"pull_request": 7}), "pull_request in the event payload (GITHUB_EVENT_PATH=/e.json) is 7, not an object"),
            ("workflow_dispatch", json!({"inputs": "abc"}), "inputs in the event payload (GITHUB_EVENT_PATH=/e.json) is \"abc\", not an object"),
            ("push", json!({"ref": "refs/heads/main", "after": SHA, "repository": []}), "repository in the event payload (GITHUB_EVENT_PATH=/e.json) is [], not an object"),
        ];
        for (name, event, want) in cases {
            let err = build(&args(Kind::Auto), Some(&github(name, event)), None).unwrap_err();
            assert_eq!(err, want);
        }
    }

    /// Pushes that are not a new commit on the default branch get no tags.
    #[test]
    fn pushes_table() {
        let cases = [
            (json!({"ref": "refs/heads/master", "after": SHA, "repository": {"default_branch": "master"}}), None),
            (json!({"ref": "refs/heads/main", "after": SHA, "repository": {"default_branch": "master"}}),
                Some("the push is to refs/heads/main, not to the default branch master")),
            (json!({"ref": "refs/heads/feature", "after": SHA, "repository": {"default_branch": "main"}}),
                Some("the push is to refs/heads/feature, not to the default branch main")),
            (json!({"ref": "refs/tags/v1", "after": SHA, "repository": {"default_branch": "main"}}),
                Some("the push is to refs/tags/v1")),
            (json!({"ref": "refs/heads/main", "deleted": true, "after": "0".repeat(40), "repository": {"default_branch": "main"}}),
                Some("deleted in the event payload (GITHUB_EVENT_PATH=/e.json) is true: this push deletes refs/heads/main")),
            (json!({"ref": "refs/heads/main", "after": SHA}),
                Some("repository.default_branch in the event payload (GITHUB_EVENT_PATH=/e.json) is missing")),
        ];
        for (event, refused) in cases {
            let got = build(
                &args(Kind::Auto),
                Some(&github("push", event.clone())),
                None,
            );
            match (got, refused) {
                (Ok(ctx), None) => assert_eq!(ctx, Context::Push { sha: sha(SHA) }),
                (Err(err), Some(why)) => assert!(err.starts_with(why), "{event}: {err}"),
                (got, _) => panic!("{event}: {got:?}"),
            }
        }
    }

    #[test]
    fn flags_override_the_environment() {
        let mut flags = args(Kind::Release);
        flags.sha = Some(HEAD_SHA.into());
        flags.release_tag = Some("v9".into());
        let ctx = build(&flags, Some(&github("push", Value::Null)), None).unwrap();
        assert_eq!(
            ctx,
            Context::Release {
                sha: sha(HEAD_SHA),
                tag: "v9".into(),
                prerelease: false,
            }
        );
    }

    /// Each bad value is reported under the name of what supplied it.
    #[test]
    fn errors_name_the_source_of_the_value() {
        let mut short = github(
            "push",
            json!({"ref": "refs/heads/main", "repository": {"default_branch": "main"}}),
        );
        short.sha = Some("abc".into());
        let err = build(&args(Kind::Auto), Some(&short), None).unwrap_err();
        assert!(
            err.starts_with("GITHUB_SHA: \"abc\" is not a full commit SHA"),
            "{err}"
        );
        let mut flag = args(Kind::Push);
        flag.sha = Some("abc".into());
        let err = build(&flag, Some(&short), None).unwrap_err();
        assert!(err.starts_with("--sha: \"abc\""), "{err}");
        let event = json!({"pull_request": {"number": 1, "head": {"sha": "abc"}}});
        let err = pull_request(event).unwrap_err();
        assert!(
            err.starts_with(
                "pull_request.head.sha in the event payload (GITHUB_EVENT_PATH=/e.json): \"abc\""
            ),
            "{err}"
        );
        let event = json!({"inputs": {"sha": "abc"}});
        let err = build(
            &args(Kind::Auto),
            Some(&github("workflow_dispatch", event)),
            None,
        )
        .unwrap_err();
        assert!(
            err.starts_with("inputs.sha in the event payload (GITHUB_EVENT_PATH=/e.json): \"abc\""),
            "{err}"
        );
        let mut unset = github("workflow_dispatch", Value::Null);
        unset.sha = None;
        let err = build(&args(Kind::Auto), Some(&unset), None).unwrap_err();
        assert!(err.starts_with("GITHUB_SHA is not set"), "{err}");
    }

    #[test]
    fn missing_inputs_say_which_flag_to_pass() {
        let mut flags = args(Kind::Pr);
        flags.sha = Some(SHA.into());
        assert_eq!(
            build(&flags, None, head(false)).unwrap_err(),
            "a pull request context needs --pr-number N (or a pull_request event payload)"
        );
        assert_eq!(
            build(&args(Kind::Auto), Some(&github("schedule", Value::Null)), None).unwrap_err(),
            "GITHUB_EVENT_NAME=schedule has no tags in this pipeline; run on pull_request, push, workflow_dispatch or release, or pass --context"
        );
        let mut short = args(Kind::Push);
        short.sha = Some("abc".into());
        assert!(build(&short, None, head(false))
            .unwrap_err()
            .starts_with("--sha: \"abc\" is not a full commit SHA"));
    }

    #[test]
    fn default_branch_table() {
        let repo =
            |branch: &str| github("release", json!({"repository": {"default_branch": branch}}));
        let none = || None;
        let origin = || Some("trunk".to_string());
        assert_eq!(
            default_branch(Some("dev"), Some(&repo("master")), origin),
            Ok(("dev".into(), "--default-branch".into()))
        );
        assert_eq!(
            default_branch(None, Some(&repo("master")), origin),
            Ok((
                "master".into(),
                "repository.default_branch in the event payload (GITHUB_EVENT_PATH=/e.json)".into()
            ))
        );
        assert!(default_branch(None, Some(&github("release", Value::Null)), origin)
            .unwrap_err()
            .starts_with("repository.default_branch in the event payload (GITHUB_EVENT_PATH=/e.json) is missing"));
        assert_eq!(
            default_branch(None, None, origin),
            Ok(("trunk".into(), "origin/HEAD".into()))
        );
        assert!(default_branch(None, None, none)
            .unwrap_err()
            .contains("git remote set-head origin --auto"));
        assert!(default_branch(Some(""), None, origin).is_err());
    }
}
