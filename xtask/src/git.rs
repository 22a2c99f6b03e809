//! The git queries: the commit to tag, whether the tree is dirty, whether a
//! commit is on the default branch, and where the source lives.

use anyhow::{Context as _, Result};

use crate::exec::{Runner, Step, Tool};
use crate::tags::Sha;

pub const TOOL: Tool = Tool {
    program: "git",
    install: "install git: apt-get install git",
};

fn git(args: &[&str]) -> Step {
    Step::new(TOOL.program, args.iter().copied())
}

/// Clone `source`'s `main` into `dest`.
pub fn clone_main(source: &str, dest: &str) -> Step {
    git(&["clone", "--quiet", "--branch", "main", source, dest])
}

/// A git command run in `dir`.
pub fn in_repo(dir: &str, args: &[&str]) -> Step {
    let mut all = vec!["-C", dir];
    all.extend(args);
    git(&all)
}

/// `HEAD` and whether the work tree has uncommitted changes. Read silently:
/// this decides the tags, it is not a pipeline step.
pub fn head(runner: &Runner) -> Result<(Sha, bool)> {
    let sha = runner.query_local(&git(&["rev-parse", "HEAD"])).context(
        "cannot read the commit to tag from git; run inside the repository, or pass --sha",
    )?;
    let sha = Sha::parse(&sha).map_err(anyhow::Error::msg)?;
    let status = runner.query_local(&git(&["status", "--porcelain", "--untracked-files=no"]))?;
    Ok((sha, !status.trim().is_empty()))
}

/// The step that succeeds when `sha` is an ancestor of (or equal to) `branch`.
pub fn is_ancestor(sha: &Sha, branch: &str) -> Step {
    git(&["merge-base", "--is-ancestor", sha.full(), branch])
}

/// The ref to compare against for "on the default branch": the remote's
/// branch when there is one (a CI checkout), else the local branch.
pub fn default_branch_ref(runner: &Runner, branch: &str) -> String {
    let remote = format!("refs/remotes/origin/{branch}");
    match runner.query_local(&git(&["rev-parse", "--verify", "--quiet", &remote])) {
        Ok(_) => format!("origin/{branch}"),
        Err(_) => branch.to_string(),
    }
}

/// The web address of the source, for the `org.opencontainers.image.source` label.
pub fn source_url(runner: &Runner) -> Option<String> {
    if let (Ok(server), Ok(repo)) = (
        std::env::var("GITHUB_SERVER_URL"),
        std::env::var("GITHUB_REPOSITORY"),
    ) {
        return Some(format!("{server}/{repo}"));
    }
    let url = runner
        .query_local(&git(&["remote", "get-url", "origin"]))
        .ok()?;
    Some(web_url(url.trim()))
}

/// `git@github.com:o/r.git` and `https://github.com/o/r.git` both become
/// `https://github.com/o/r`.
pub fn web_url(remote: &str) -> String {
    let url = match remote
        .strip_prefix("git@")
        .and_then(|rest| rest.split_once(':'))
    {
        Some((host, path)) => format!("https://{host}/{path}"),
        None => remote.to_string(),
    };
    url.strip_suffix(".git").unwrap_or(&url).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_urls_become_web_urls() {
        assert_eq!(
            web_url("git@github.com:org/app.git"),
            "https://github.com/org/app"
        );
        assert_eq!(
            web_url("https://github.com/org/app.git"),
            "https://github.com/org/app"
        );
        assert_eq!(
            web_url("https://github.com/org/app"),
            "https://github.com/org/app"
        );
    }
}
