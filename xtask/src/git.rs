//! git: the queries that decide a plan (the commit to tag, whether the tree
//! is dirty, whether a commit is on the default branch, a commit's own
//! files, where the source lives), read-only and run in dry runs too; the
//! check that a CI checkout is the commit its images name; and the steps
//! the rehearsal makes its clone with.

use anyhow::{bail, Context as _, Result};

use crate::cli::env_var;
use crate::context::Head;
use crate::error::Usage;
use crate::exec::Runner;
use crate::step::Step;
use crate::tags::Sha;

fn git(args: &[&str]) -> Step {
    Step::new("git", args.iter().copied())
}

/// A read-only query's stdout. For the yes/no questions, git answers "no"
/// by failing.
fn query(runner: &Runner, args: &[&str]) -> Result<String> {
    runner.query_local(&git(args))
}

pub fn clone_branch(source: &str, branch: &str, dest: &str) -> Step {
    git(&["clone", "--quiet", "--branch", branch, source, dest])
}

/// The default branch a repository's own clone has: the one its origin
/// calls default (`origin/HEAD`, which `git clone` sets), else `main`, else
/// `master`; only a branch the clone has.
pub fn main_branch(runner: &Runner) -> Option<String> {
    origin_head(runner)
        .into_iter()
        .chain(["main".to_string(), "master".to_string()])
        .find(|branch| has_ref(runner, &format!("refs/heads/{branch}")))
}

pub fn init_bare(dir: &str) -> Step {
    git(&["init", "--quiet", "--bare", dir])
}

pub fn in_repo(dir: &str, args: &[&str]) -> Step {
    git(&[&["-C", dir], args].concat())
}

/// `HEAD` and whether the work tree has uncommitted changes. Read silently:
/// this decides the tags, it is not a pipeline step. Untracked files that
/// are not ignored count: the build context is the whole tree, so a new
/// `app/src/x.rs` is in the image as surely as an edited one.
pub fn head(runner: &Runner) -> Result<Head> {
    Ok(Head {
        sha: head_sha(runner)?,
        dirty: !changes(runner)?.is_empty(),
    })
}

/// `git status --porcelain`'s list of changed and untracked paths, one per
/// line; empty for a clean tree.
pub fn changes(runner: &Runner) -> Result<String> {
    let args = ["status", "--porcelain", "--untracked-files=normal"];
    Ok(query(runner, &args)?.trim_end().to_string())
}

pub fn head_sha(runner: &Runner) -> Result<Sha> {
    let sha =
        query(runner, &["rev-parse", "HEAD"]).context("cannot read the commit to tag from git")?;
    Sha::parse(&sha).map_err(anyhow::Error::msg)
}

/// Under GitHub Actions the event names the commit, but the image is built
/// from the checkout: it must be that commit, unchanged, or a workflow's
/// checkout of another one (a pull request's merge commit, say), or a file
/// an earlier step wrote into it, would be labelled as the named commit.
/// (In a terminal the checkout names the commit, and a change makes the
/// tags `make-<sha8>-dirty`.)
pub fn check_checkout(runner: &Runner, revision: &str) -> Result<()> {
    let named = revision.trim_end_matches("-dirty");
    let head = head_sha(runner).map_err(|err| {
        Usage(format!(
            "{err:#}; a build runs in a git checkout of the commit it tags, {named} (actions/checkout, with git on the runner's PATH)"
        ))
    })?;
    if head.full() != named {
        bail!(Usage(format!(
            "the checkout is at {}, but the tags name commit {named}, so the images would be built from other code than they say; check out {named} first (actions/checkout with ref: set to it)",
            head.short()
        )));
    }
    // A `-dirty` revision (`--context terminal`) already says so in its tags.
    if revision.ends_with("-dirty") {
        return Ok(());
    }
    let changes = changes(runner).context("cannot list the checkout's changes")?;
    if !changes.is_empty() {
        let lines: Vec<&str> = changes.lines().collect();
        let more = match lines.len() {
            n if n > 10 => format!("\n... and {} more", n - 10),
            _ => String::new(),
        };
        bail!(Usage(format!(
            "the checkout of {named} has uncommitted changes (git status --porcelain):\n{}{more}\nso its images would carry that commit's tags without being it; a step before the build changed the tree: commit the change, or write the file outside the checkout (under $RUNNER_TEMP)",
            lines[..lines.len().min(10)].join("\n")
        )));
    }
    Ok(())
}

/// The branch `origin/HEAD` points at (`git clone` sets it to the remote's
/// default branch), if this clone has it.
pub fn origin_head(runner: &Runner) -> Option<String> {
    let args = [
        "symbolic-ref",
        "--quiet",
        "--short",
        "refs/remotes/origin/HEAD",
    ];
    let name = query(runner, &args).ok()?;
    name.trim().strip_prefix("origin/").map(str::to_string)
}

/// The ref to compare against for "on the default branch": the remote's
/// branch when the checkout has it (a CI checkout), else the local branch,
/// else `None`: the branch was not fetched.
pub fn branch_ref(runner: &Runner, branch: &str) -> Option<String> {
    if has_ref(runner, &format!("refs/remotes/origin/{branch}")) {
        Some(format!("origin/{branch}"))
    } else if has_ref(runner, &format!("refs/heads/{branch}")) {
        Some(branch.to_string())
    } else {
        None
    }
}

/// Whether the reference (`refs/heads/main`...) exists.
fn has_ref(runner: &Runner, full: &str) -> bool {
    query(runner, &["rev-parse", "--verify", "--quiet", full]).is_ok()
}

pub fn has_commit(runner: &Runner, sha: &Sha) -> bool {
    let object = format!("{}^{{commit}}", sha.full());
    query(runner, &["cat-file", "-e", &object]).is_ok()
}

/// Whether the checkout is shallow: its history stops somewhere, so "not an
/// ancestor" cannot be told from "not fetched".
pub fn is_shallow(runner: &Runner) -> bool {
    query(runner, &["rev-parse", "--is-shallow-repository"])
        .is_ok_and(|answer| answer.trim() == "true")
}

/// Whether `sha` is an ancestor of (or equal to) `branch`; both must exist
/// (see [`has_commit`] and [`branch_ref`]), so a failure means "no".
pub fn is_ancestor(runner: &Runner, sha: &Sha, branch: &str) -> bool {
    query(runner, &["merge-base", "--is-ancestor", sha.full(), branch]).is_ok()
}

/// A file's content at a commit, as git stores it.
pub fn show(runner: &Runner, sha: &Sha, path: &str) -> Result<String> {
    query(runner, &["show", &format!("{}:{path}", sha.full())])
}

pub fn top_level_files(runner: &Runner, sha: &Sha) -> Result<Vec<String>> {
    let listing = query(runner, &["ls-tree", "--name-only", sha.full()])?;
    Ok(listing.lines().map(str::to_string).collect())
}

/// The web address of the source, for the `org.opencontainers.image.source` label.
pub fn source_url(runner: &Runner) -> Option<String> {
    // Set but empty counts as unset, as for every variable xtask reads.
    let server = env_var("GITHUB_SERVER_URL");
    if let (Some(server), Some(repo)) = (server, env_var("GITHUB_REPOSITORY")) {
        return Some(format!("{server}/{repo}"));
    }
    let url = query(runner, &["remote", "get-url", "origin"]).ok()?;
    web_url(url.trim())
}

/// The web address of a remote: `git@github.com:o/r.git`,
/// `ssh://git@github.com/o/r.git` and `https://github.com/o/r.git` all become
/// `https://github.com/o/r`. Credentials in the URL (a CI token, in the
/// userinfo or the query) are dropped: the label is stored with the image.
/// `None` for a remote that is no web address (a local path).
pub fn web_url(remote: &str) -> Option<String> {
    let (scheme, rest) = match remote.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        // scp-like `host:path`, never a local `dir/x:y`.
        None => ("ssh".to_string(), remote),
    };
    let web = match scheme.as_str() {
        "https" | "http" => scheme.as_str(),
        "ssh" | "git" | "git+ssh" => "https",
        _ => return None,
    };
    let rest = rest.split(['?', '#']).next()?;
    let (host, path) = if remote.contains("://") {
        rest.split_once('/')?
    } else {
        rest.split_once(':')
            .filter(|(host, _)| !host.contains('/'))?
    };
    // `user:token@host:port`: without the userinfo, and without the port of
    // a protocol that is not the web's.
    let host = host.rsplit('@').next()?;
    let host = if web == scheme {
        host
    } else if host.starts_with('[') {
        host.split_inclusive(']').next()?
    } else {
        host.split(':').next()?
    };
    let path = path.trim_end_matches('/');
    let path = path
        .strip_suffix(".git")
        .unwrap_or(path)
        .trim_end_matches('/');
    (!host.is_empty() && !path.is_empty()).then(|| format!("{web}://{host}/{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_urls_become_web_urls() {
        for remote in [
            "git@github.com:org/app.git",
            "https://github.com/org/app.git",
            "https://github.com/org/app",
            "ssh://git@github.com/org/app.git",
            // A CI token in the URL never reaches the label.
            "https://x-access-token:ghp_SECRET@github.com/org/app.git",
            "https://github.com/org/app.git?token=SECRET",
            "HTTPS://github.com/org/app/",
            "git://github.com/org/app.git",
            "git+ssh://git@github.com:22/org/app.git",
            "git@github.com:org/app.git/",
        ] {
            assert_eq!(
                web_url(remote).as_deref(),
                Some("https://github.com/org/app"),
                "{remote}"
            );
        }
        assert_eq!(
            web_url("https://git.example:8443/org/app").as_deref(),
            Some("https://git.example:8443/org/app")
        );
        assert_eq!(
            web_url("http://git.example/org/app").as_deref(),
            Some("http://git.example/org/app")
        );
        assert_eq!(
            web_url("ssh://git@[::1]:22/org/app").as_deref(),
            Some("https://[::1]/org/app")
        );
        for local in ["/work/app", "../app", "file:///work/app"] {
            assert_eq!(web_url(local), None, "{local}");
        }
    }
}
