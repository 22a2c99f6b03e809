//! Where a command runs, worked out from flags, GitHub Actions' environment, or git.
//!
//! Flags win; under GitHub Actions the event name and payload fill in the rest;
//! in a terminal, git gives the commit and whether the tree is dirty. The
//! deciding logic is a pure function over those inputs ([`resolve`]); [`load`]
//! is the thin wrapper that gathers them.

use clap::{Args, ValueEnum};
use serde_json::Value;

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
    /// A push to main: `latest`, `<sha8>`
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
    /// Commit to tag, as a full SHA [default: the event's commit, or HEAD]
    #[arg(long, value_name = "SHA")]
    pub sha: Option<String>,
    /// Pull request number [default: from the event payload]
    #[arg(long, value_name = "N")]
    pub pr_number: Option<u64>,
    /// Release tag [default: from the event payload]
    #[arg(long, value_name = "TAG")]
    pub release_tag: Option<String>,
}

/// What GitHub Actions tells a step about its run.
#[derive(Clone, Debug, Default)]
pub struct GithubEnv {
    pub event_name: Option<String>,
    pub sha: Option<String>,
    pub event: Value,
}

/// Gather the inputs (environment, event payload, git) and resolve.
pub fn load(args: &ContextArgs, runner: &Runner) -> anyhow::Result<Context> {
    let on_github = std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true");
    let github = on_github.then(read_github_env).transpose()?;
    // git is asked only when nothing else names the commit.
    let needs_git = args.sha.is_none() && (github.is_none() || args.context == Kind::Terminal);
    let head = if needs_git {
        Some(git::head(runner)?)
    } else {
        None
    };
    resolve(args, github.as_ref(), head).map_err(|msg| crate::error::Usage(msg).into())
}

fn read_github_env() -> anyhow::Result<GithubEnv> {
    let event = match std::env::var_os("GITHUB_EVENT_PATH") {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|err| {
                crate::error::Usage(format!(
                    "GITHUB_EVENT_PATH={}: cannot read the event payload: {err}",
                    path.to_string_lossy()
                ))
            })?;
            serde_json::from_str(&text).map_err(|err| {
                crate::error::Usage(format!(
                    "GITHUB_EVENT_PATH={}: not JSON: {err}",
                    path.to_string_lossy()
                ))
            })?
        }
        None => Value::Null,
    };
    Ok(GithubEnv {
        event_name: std::env::var("GITHUB_EVENT_NAME").ok(),
        sha: std::env::var("GITHUB_SHA").ok(),
        event,
    })
}

/// Decide the context. `head` is git's `(HEAD, dirty)`, when it was read.
pub fn resolve(
    args: &ContextArgs,
    github: Option<&GithubEnv>,
    head: Option<(Sha, bool)>,
) -> Result<Context, String> {
    let kind = match args.context {
        Kind::Auto => match github {
            None => Kind::Terminal,
            Some(github) => match github.event_name.as_deref() {
                Some("pull_request" | "pull_request_target") => Kind::Pr,
                Some("push") => Kind::Push,
                Some("workflow_dispatch") => Kind::Dispatch,
                Some("release") => Kind::Release,
                Some(other) => {
                    return Err(format!(
                        "GITHUB_EVENT_NAME={other} has no tags in this pipeline; run on pull_request, push, workflow_dispatch or release, or pass --context"
                    ))
                }
                None => {
                    return Err("GITHUB_ACTIONS=true but GITHUB_EVENT_NAME is not set; pass --context".into())
                }
            },
        },
        kind => kind,
    };
    let event = github.map(|g| &g.event).unwrap_or(&Value::Null);

    // The commit: a flag, else (for a PR) the head commit rather than GitHub's
    // merge commit, else the event's commit, else git's HEAD.
    let sha_text = args
        .sha
        .clone()
        .or_else(|| match kind {
            Kind::Pr => str_at(event, &["pull_request", "head", "sha"]),
            _ => None,
        })
        .or_else(|| {
            if kind == Kind::Terminal {
                None
            } else {
                github.and_then(|g| g.sha.clone())
            }
        });
    let (sha, dirty) = match (sha_text, head) {
        (Some(text), _) => (Sha::parse(&text).map_err(|e| format!("--sha: {e}"))?, false),
        (None, Some((sha, dirty))) => (sha, dirty),
        (None, None) => return Err("no commit to tag: pass --sha <full SHA>".into()),
    };

    Ok(match kind {
        Kind::Auto | Kind::Terminal => Context::Terminal { sha, dirty },
        Kind::Pr => {
            let number = args
                .pr_number
                .or_else(|| {
                    event
                        .pointer("/pull_request/number")
                        .and_then(Value::as_u64)
                })
                .ok_or(
                    "a pull request context needs --pr-number N (or a pull_request event payload)",
                )?;
            Context::PullRequest { number, sha }
        }
        Kind::Push => Context::Push { sha },
        Kind::Dispatch => Context::Dispatch { sha },
        Kind::Release => {
            let tag = args
                .release_tag
                .clone()
                .or_else(|| str_at(event, &["release", "tag_name"]))
                .ok_or("a release context needs --release-tag TAG (or a release event payload)")?;
            validate_release_tag(&tag)?;
            Context::Release { sha, tag }
        }
    })
}

fn str_at(value: &Value, path: &[&str]) -> Option<String> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
        .map(str::to_string)
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

    fn github(event_name: &str, event: Value) -> GithubEnv {
        GithubEnv {
            event_name: Some(event_name.into()),
            sha: Some(SHA.into()),
            event,
        }
    }

    fn sha(text: &str) -> Sha {
        Sha::parse(text).unwrap()
    }

    #[test]
    fn terminal_uses_git_and_marks_dirty_trees() {
        let ctx = resolve(&args(Kind::Auto), None, Some((sha(SHA), true))).unwrap();
        assert_eq!(
            ctx,
            Context::Terminal {
                sha: sha(SHA),
                dirty: true
            }
        );
    }

    #[test]
    fn pull_request_uses_the_head_commit_not_the_merge_commit() {
        let event = json!({"pull_request": {"number": 7, "head": {"sha": HEAD_SHA}}});
        let ctx = resolve(
            &args(Kind::Auto),
            Some(&github("pull_request", event)),
            None,
        )
        .unwrap();
        assert_eq!(
            ctx,
            Context::PullRequest {
                number: 7,
                sha: sha(HEAD_SHA)
            }
        );
    }

    #[test]
    fn release_reads_the_tag_and_validates_it() {
        let event = json!({"release": {"tag_name": "v1.0.0", "target_commitish": "main"}});
        let ctx = resolve(&args(Kind::Auto), Some(&github("release", event)), None).unwrap();
        assert_eq!(
            ctx,
            Context::Release {
                sha: sha(SHA),
                tag: "v1.0.0".into()
            }
        );

        let bad = json!({"release": {"tag_name": "release/1.0"}});
        let err = resolve(&args(Kind::Auto), Some(&github("release", bad)), None).unwrap_err();
        assert!(
            err.starts_with("release tag \"release/1.0\" cannot be used"),
            "{err}"
        );
    }

    #[test]
    fn push_and_dispatch_use_github_sha() {
        let push = resolve(&args(Kind::Auto), Some(&github("push", Value::Null)), None).unwrap();
        assert_eq!(push, Context::Push { sha: sha(SHA) });
        let manual = resolve(
            &args(Kind::Auto),
            Some(&github("workflow_dispatch", Value::Null)),
            None,
        )
        .unwrap();
        assert_eq!(manual, Context::Dispatch { sha: sha(SHA) });
    }

    #[test]
    fn flags_override_the_environment() {
        let mut flags = args(Kind::Release);
        flags.sha = Some(HEAD_SHA.into());
        flags.release_tag = Some("v9".into());
        let ctx = resolve(&flags, Some(&github("push", Value::Null)), None).unwrap();
        assert_eq!(
            ctx,
            Context::Release {
                sha: sha(HEAD_SHA),
                tag: "v9".into()
            }
        );
    }

    #[test]
    fn missing_inputs_say_which_flag_to_pass() {
        let mut flags = args(Kind::Pr);
        flags.sha = Some(SHA.into());
        assert_eq!(
            resolve(&flags, None, None).unwrap_err(),
            "a pull request context needs --pr-number N (or a pull_request event payload)"
        );
        assert_eq!(
            resolve(&args(Kind::Auto), Some(&github("schedule", Value::Null)), None).unwrap_err(),
            "GITHUB_EVENT_NAME=schedule has no tags in this pipeline; run on pull_request, push, workflow_dispatch or release, or pass --context"
        );
        let mut short = args(Kind::Push);
        short.sha = Some("abc".into());
        assert!(resolve(&short, None, None)
            .unwrap_err()
            .starts_with("--sha: \"abc\" is not a full commit SHA"));
    }
}
