//! The rehearsal's workspace, `target/rehearsal/<repository>/`: a clone of
//! this repository (`repo/`) whose `main` has merged the working tree as a
//! pull request, a bare `origin.git` that has seen the merge (as a CI
//! checkout's `origin/main` has) and the event payloads (`events/`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::exec::Runner;

use crate::git;
use crate::step::Step;

/// The branch the working tree is committed on, as a pull request's head.
pub const PR_BRANCH: &str = "rehearsal-pr";

pub struct Workspace {
    pub dir: PathBuf,
    /// The repository the images go to in the rig's registries.
    pub repository: String,
}

/// The commits the events refer to.
#[derive(Clone, Debug)]
pub struct Commits {
    /// The pull request's head, on [`PR_BRANCH`].
    pub pr_head: String,
    /// `main` after merging the pull request.
    pub merged: String,
}

impl Workspace {
    pub fn new(root: &Path, repository: &str) -> Workspace {
        Workspace {
            dir: root.join("target/rehearsal").join(repository),
            repository: repository.to_string(),
        }
    }

    /// The clone: act's working directory, and the `--root` of the stages'
    /// `cargo xtask` commands.
    pub fn clone_dir(&self) -> PathBuf {
        self.dir.join("repo")
    }

    /// The event payload of one act run (`GITHUB_EVENT_PATH`).
    pub fn payload(&self, name: &str) -> PathBuf {
        self.dir.join("events").join(format!("{name}.json"))
    }

    /// Start afresh: an earlier rehearsal of the same repository name is removed.
    pub fn create(&self, runner: &Runner) -> Result<()> {
        if runner.dry_run {
            return Ok(());
        }
        runner.take_turn()?;
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir)
                .with_context(|| format!("cannot remove {}", self.dir.display()))?;
        }
        let events = self.dir.join("events");
        std::fs::create_dir_all(&events)
            .with_context(|| format!("cannot create {}", events.display()))
    }

    fn git(&self, args: &[&str]) -> Step {
        git::in_repo(&self.clone_dir().display().to_string(), args)
    }

    fn run_git(&self, runner: &Runner, args: &[&str]) -> Result<()> {
        runner.run("[git] ", &self.git(args))
    }

    /// Empty is fine: a clean working tree is rehearsed too.
    fn commit(&self, runner: &Runner, message: &str) -> Result<()> {
        self.run_git(
            runner,
            &["commit", "--quiet", "--allow-empty", "-m", message],
        )
    }

    /// Clone `root`'s `branch` (its `main` or `master`), then copy the
    /// working tree over it, tracked and untracked (not ignored) files, so
    /// uncommitted changes (a workflow edit, say) are rehearsed too. Nothing
    /// is committed yet: the caller may change the tree before
    /// [`Workspace::pull_request`].
    pub fn clone_tree(&self, runner: &Runner, root: &Path, branch: &str) -> Result<()> {
        let clone = self.clone_dir().display().to_string();
        let origin = self.dir.join("origin.git").display().to_string();
        let source = root.display().to_string();
        runner.run("[git] ", &git::clone_branch(&source, branch, &clone))?;
        if branch != "main" {
            // The rehearsal's stand-in GitHub calls its default branch
            // main, in every payload: a name only, the commits are the same.
            self.run_git(runner, &["branch", "--move", branch, "main"])?;
        }
        runner.run("[git] ", &git::init_bare(&origin))?;
        // The clone's own origin is the real repository, whose main never
        // sees the rehearsal's merge: a throwaway one stands in for GitHub.
        self.run_git(runner, &["remote", "set-url", "origin", &origin])?;
        self.run_git(runner, &["config", "user.email", "rehearsal@localhost"])?;
        self.run_git(runner, &["config", "user.name", "rehearsal"])?;
        self.run_git(runner, &["checkout", "--quiet", "-b", PR_BRANCH])?;
        if !runner.dry_run {
            copy_working_tree(runner, root, &self.clone_dir())?;
        }
        Ok(())
    }

    /// Commit the tree on [`PR_BRANCH`] and merge it into `main`, as a pull
    /// request would be; `origin` gets the merged `main`. `None` in a dry
    /// run, which makes no commits.
    pub fn pull_request(&self, runner: &Runner) -> Result<Option<Commits>> {
        self.run_git(runner, &["add", "-A"])?;
        self.commit(runner, "rehearsal: the working tree as a pull request")?;
        let pr_head = self.head(runner)?;
        self.run_git(runner, &["checkout", "--quiet", "main"])?;
        let message = "rehearsal: merge the pull request";
        self.run_git(
            runner,
            &["merge", "--quiet", "--no-ff", "-m", message, PR_BRANCH],
        )?;
        self.run_git(runner, &["push", "--quiet", "origin", "main"])?;
        let merged = self.head(runner)?;
        Ok(pr_head
            .zip(merged)
            .map(|(pr_head, merged)| Commits { pr_head, merged }))
    }

    /// A commit on `branch`, off `main`, that never reaches main (`origin`
    /// has the branch); `main` is checked out again afterwards. `None` in a
    /// dry run.
    pub fn side_commit(&self, runner: &Runner, branch: &str) -> Result<Option<String>> {
        self.run_git(runner, &["checkout", "--quiet", "-b", branch, "main"])?;
        self.commit(runner, "rehearsal: a commit that never reached main")?;
        self.run_git(runner, &["push", "--quiet", "origin", branch])?;
        let sha = self.head(runner)?;
        self.run_git(runner, &["checkout", "--quiet", "main"])?;
        Ok(sha)
    }

    pub fn checkout(&self, commit: &str) -> Step {
        self.git(&["checkout", "--quiet", "--detach", commit])
    }

    fn head(&self, runner: &Runner) -> Result<Option<String>> {
        Ok(runner
            .read("[git] ", &self.git(&["rev-parse", "HEAD"]))?
            .map(|sha| sha.trim().to_string()))
    }
}

/// Make the clone's files those of the working tree: every file `main`
/// tracks is removed first, so a file deleted or moved in the working tree
/// is gone from the clone too.
fn copy_working_tree(runner: &Runner, root: &Path, work: &Path) -> Result<()> {
    let files = |dir: &Path, extra: &[&str]| -> Result<Vec<String>> {
        let mut args = vec!["ls-files", "-z"];
        args.extend(extra);
        let git = git::in_repo(&dir.display().to_string(), &args);
        let listing = runner.query_local(&git)?;
        Ok(listing.split_terminator('\0').map(String::from).collect())
    };
    for file in files(work, &[])? {
        let path = work.join(&file);
        if path.is_file() {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {file} from the clone"))?;
        }
    }
    for file in files(root, &["--cached", "--others", "--exclude-standard"])? {
        let from = root.join(&file);
        // A file deleted but not yet staged is still listed: it stays deleted.
        if from.is_file() {
            let to = work.join(&file);
            std::fs::create_dir_all(to.parent().unwrap_or(work))?;
            std::fs::copy(&from, &to).with_context(|| format!("cannot copy {file}"))?;
        }
    }
    Ok(())
}
