//! One GitHub event played on one of the workspace's real workflow files by
//! act (through `rig/act-event`, which maps the third-party actions to the
//! stand-ins in `rig/actions/` and gives the workflows the rig's settings as
//! repository variables), inside the rig. `cargo xtask rehearse --workflows`
//! plays its stages this way; so do the rig's workflow tests.

use serde_json::{json, Value};

use super::in_rig;
use super::workspace::Workspace;
use crate::step::Step;

/// Runs one workflow for one event with act, inside the rig.
pub const ACT_EVENT: &str = "rig/act-event";

/// The cargo target directory of the workflows' jobs under act: not the
/// repository's target/, since the jobs build xtask from act's copy of the
/// clone, and that binary must not replace the one running the rehearsal.
/// Shared by every rehearsal and test run, so xtask is compiled once.
pub const JOB_TARGET_DIR: &str = "target/rehearsal/cargo-target";

/// One act run: an event, the workflow that handles it, and the commit it
/// runs on.
#[derive(Clone, Debug)]
pub struct Play {
    /// Names the payload and log files.
    pub name: String,
    /// GitHub's name for the event (`GITHUB_EVENT_NAME`, act's first argument).
    pub event: &'static str,
    /// `.github/workflows/<workflow>.yml`
    pub workflow: &'static str,
    pub payload: Value,
    /// The commit or branch checked out first: act takes `github.sha` from
    /// the working copy's HEAD (for a push, from the payload). For a pull
    /// request GitHub runs the merge commit; for a release, the released one.
    pub checkout: String,
    /// More arguments for act (`--matrix`, `--actor`, `-v`).
    pub act_args: Vec<String>,
}

impl Play {
    pub fn new(
        name: &str,
        event: &'static str,
        workflow: &'static str,
        payload: Value,
        checkout: &str,
    ) -> Play {
        Play {
            name: name.to_string(),
            event,
            workflow,
            payload,
            checkout: checkout.to_string(),
            act_args: Vec::new(),
        }
    }

    pub fn with_act_args(mut self, args: &[&str]) -> Play {
        self.act_args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// The act run, inside the rig with `env` added (the jobs run on the
    /// host and inherit it). Its payload must be written first
    /// ([`write_payload`]).
    pub fn step(&self, workspace: &Workspace, env: &[(&str, String)]) -> Step {
        let mut args = vec![
            "run".to_string(),
            "--repository".into(),
            workspace.repository.clone(),
            "--checkout".into(),
            self.checkout.clone(),
            workspace.clone_dir().display().to_string(),
            self.event.into(),
            self.workflow.into(),
            workspace.payload(&self.name).display().to_string(),
        ];
        args.extend(self.act_args.iter().cloned());
        in_rig(env, Step::new(ACT_EVENT, args))
    }

    /// `GITHUB_EVENT_PATH` for this run.
    pub fn write_payload(&self, workspace: &Workspace) -> anyhow::Result<()> {
        let path = workspace.payload(&self.name);
        std::fs::write(&path, self.payload.to_string())
            .map_err(|err| anyhow::anyhow!("cannot write {}: {err}", path.display()))
    }
}

/// The payloads of the events the pipeline handles, with the fields the
/// workflows and `cargo xtask` read.
pub mod payload {
    use super::*;

    /// What every payload says of the repository, as GitHub's do: the push
    /// check and promote read its default branch.
    fn repository() -> Value {
        json!({"full_name": "octo-org/batch-probe", "default_branch": "main"})
    }

    /// A pull request opened by `user`; the tags use its head commit.
    pub fn pull_request(number: u32, head_sha: &str, head_ref: &str, user: &str) -> Value {
        json!({
            "action": "opened",
            "number": number,
            "pull_request": {
                "number": number,
                "head": {"sha": head_sha, "ref": head_ref, "repo": repository()},
                "base": {"ref": "main"},
                "user": {"login": user},
            },
            "repository": repository(),
        })
    }

    /// A push to main whose new head is `after`.
    pub fn push(after: &str) -> Value {
        json!({
            "ref": "refs/heads/main",
            "before": "0".repeat(40),
            "after": after,
            "head_commit": {"id": after},
            "repository": repository(),
        })
    }

    /// A release published from `commitish`.
    pub fn release(tag: &str, commitish: &str) -> Value {
        json!({
            "action": "published",
            "release": {"tag_name": tag, "name": tag, "target_commitish": commitish},
            "repository": repository(),
        })
    }

    /// A manual run with these inputs.
    pub fn dispatch(inputs: Value) -> Value {
        json!({ "inputs": inputs, "repository": repository() })
    }
}
