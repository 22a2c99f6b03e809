//! Which of the engine's BuildKit cache records are this repository's.
//!
//! With the `docker` driver (a developer's terminal) the build cache is the
//! engine's, shared by every project on the machine, and BuildKit labels its
//! records only by what made them: "mount / from exec <command>" for a `RUN`,
//! "fileop target" for a `COPY`, and so on. So a record is recognised as
//! ours by its lineage, read against this repository's Dockerfiles:
//!
//! 1. seeds: `RUN` records whose chain of `RUN`s, from the base image down,
//!    is a stage of one of our Dockerfiles, ending at a `RUN` that comes
//!    after a `COPY`/`ADD` from the build context (so its result depends on
//!    this repository's files, not only on the base image and the commands);
//! 2. every record built on a seed;
//! 3. the `COPY` records just above a seed or above 2., when nothing but our
//!    records is built on them (a `COPY` of our files).
//!
//! A record another project's build also uses (a base image, a `RUN` before
//! any of our files) is not ours and is left alone. Not recognised either,
//! and left: a `COPY --from` straight onto a base image (the runtime stage's
//! copy of the binary) and the build-context uploads, whose records carry
//! nothing to tell one project's from another's.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};
use serde::Deserialize;

/// One record, as `docker system df --verbose --format '{{json .BuildCache}}'`
/// lists it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Record {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Parent", default)]
    pub parent: String,
    #[serde(rename = "Description", default)]
    pub description: String,
}

pub fn parse_records(json: &str) -> Result<Vec<Record>> {
    let json = json.trim();
    if json.is_empty() || json == "null" {
        return Ok(Vec::new());
    }
    let mut records: Vec<Record> = serde_json::from_str(json)
        .context("`docker system df` did not list the build cache as JSON")?;
    // The CLI marks a record in use with a `*` after its ID.
    for record in &mut records {
        record.id.truncate(record.id.trim_end_matches('*').len());
    }
    Ok(records)
}

const EXEC: &str = "mount / from exec ";
const FILEOP: &str = "fileop target";

/// A `RUN` of one stage, in the words BuildKit uses for its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// The command, whitespace collapsed: the shell form's text, or the exec
    /// form's arguments joined by spaces.
    pub command: String,
    /// Whether a `COPY`/`ADD` from the build context came before it in the
    /// stage (or in the stage it is built `FROM`).
    pub after_context: bool,
}

/// Every stage of a Dockerfile, each as its `RUN`s in order (a stage built
/// `FROM` an earlier one starts with that one's).
pub fn stages(dockerfile: &str) -> Vec<Vec<Run>> {
    let mut named: BTreeMap<String, usize> = BTreeMap::new();
    let mut stages: Vec<(Vec<Run>, bool)> = Vec::new();
    for line in logical_lines(dockerfile) {
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let rest = rest.trim();
        match word.to_ascii_uppercase().as_str() {
            "FROM" => {
                let words: Vec<&str> = rest
                    .split_whitespace()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                let base = words
                    .first()
                    .copied()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let inherited = named.get(&base).map(|&i| stages[i].clone());
                if let [_, as_, name] = words[..] {
                    if as_.eq_ignore_ascii_case("as") {
                        named.insert(name.to_ascii_lowercase(), stages.len());
                    }
                }
                stages.push(inherited.unwrap_or_default());
            }
            "COPY" | "ADD" => {
                let from_stage = rest
                    .split_whitespace()
                    .take_while(|w| w.starts_with("--"))
                    .any(|w| w.starts_with("--from="));
                if let Some(stage) = stages.last_mut() {
                    stage.1 |= !from_stage;
                }
            }
            "RUN" => {
                if let Some((runs, after_context)) = stages.last_mut() {
                    runs.push(Run {
                        command: run_command(rest),
                        after_context: *after_context,
                    });
                }
            }
            _ => {}
        }
    }
    stages.into_iter().map(|(runs, _)| runs).collect()
}

/// The Dockerfile's instructions, continuation lines joined and comments
/// dropped, as BuildKit's parser reads them.
fn logical_lines(dockerfile: &str) -> Vec<String> {
    let mut escape = '\\';
    let mut lines = Vec::new();
    let mut current: Option<String> = None;
    let mut directives = true;
    for raw in dockerfile.lines() {
        let trimmed = raw.trim();
        if directives {
            if let Some(value) = trimmed
                .strip_prefix('#')
                .map(str::trim)
                .and_then(|d| d.strip_prefix("escape="))
            {
                escape = value.trim().chars().next().unwrap_or('\\');
                continue;
            }
            directives = trimmed.starts_with('#') && trimmed.contains('=');
        }
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_some()) {
            continue;
        }
        let mut text = current.take().unwrap_or_default();
        match raw.trim_end().strip_suffix(escape) {
            Some(head) => {
                text.push_str(head);
                current = Some(text);
            }
            None => {
                text.push_str(raw);
                if !text.trim().is_empty() {
                    lines.push(text.trim().to_string());
                }
            }
        }
    }
    lines.extend(current.map(|t| t.trim().to_string()));
    lines
}

/// `RUN`'s command without its flags (`--mount=...`, `--network=...`).
fn run_command(rest: &str) -> String {
    let mut rest = rest.trim_start();
    while rest.starts_with("--") {
        rest = rest
            .split_once(char::is_whitespace)
            .map_or("", |(_, r)| r)
            .trim_start();
    }
    if rest.starts_with('[') {
        if let Ok(args) = serde_json::from_str::<Vec<String>>(rest) {
            return collapse(&args.join(" "));
        }
    }
    collapse(rest)
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The IDs of this repository's records (see the module's documentation),
/// given every stage of its Dockerfiles.
pub fn ours(records: &[Record], stages: &[Vec<Run>]) -> BTreeSet<String> {
    let by_id: BTreeMap<&str, &Record> = records.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in records.iter().filter(|r| !r.parent.is_empty()) {
        children
            .entry(r.parent.as_str())
            .or_default()
            .push(r.id.as_str());
    }
    // The commands of the RUN records from the base down to `record`, or
    // None when the chain reaches a record that is gone.
    let run_chain = |record: &Record| -> Option<Vec<String>> {
        let mut chain = Vec::new();
        let mut at = Some(record);
        while let Some(r) = at {
            if let Some(command) = r.description.strip_prefix(EXEC) {
                chain.push(collapse(command));
            }
            at = match r.parent.as_str() {
                "" => None,
                parent => Some(by_id.get(parent)?),
            };
        }
        chain.reverse();
        Some(chain)
    };
    let is_seed = |record: &Record| {
        record.description.starts_with(EXEC)
            && run_chain(record)
                .is_some_and(|chain| stages.iter().any(|stage| chain_matches(&chain, stage)))
    };

    let mut ours: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<&str> = records
        .iter()
        .filter(|r| is_seed(r))
        .map(|r| r.id.as_str())
        .collect();
    while let Some(id) = todo.pop() {
        if ours.insert(id.to_string()) {
            todo.extend(children.get(id).into_iter().flatten());
        }
    }
    // Climb to the COPY records that only ours are built on.
    loop {
        let climb: Vec<String> = ours
            .iter()
            .filter_map(|id| by_id.get(id.as_str()))
            .map(|r| r.parent.as_str())
            .filter(|p| !p.is_empty() && !ours.contains(*p))
            .filter(|p| by_id.get(p).is_some_and(|r| r.description == FILEOP))
            .filter(|p| children[p].iter().all(|c| ours.contains(*c)))
            .map(String::from)
            .collect();
        if climb.is_empty() {
            return ours;
        }
        ours.extend(climb);
    }
}

/// Whether a record's RUN chain is the start of `stage`, ending at a RUN
/// that depends on the build context.
fn chain_matches(chain: &[String], stage: &[Run]) -> bool {
    let Some(last) = chain.len().checked_sub(1) else {
        return false;
    };
    chain.len() <= stage.len()
        && stage[last].after_context
        && chain
            .iter()
            .zip(stage)
            .all(|(description, run)| ends_with_command(description, &run.command))
}

/// BuildKit's description is the whole argument list: the shell (`/bin/sh
/// -c`, or the Dockerfile's SHELL) and the command.
fn ends_with_command(description: &str, command: &str) -> bool {
    description == command || description.ends_with(&format!(" {command}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKERFILE: &str = r#"# escape=\
ARG BASE=debian
FROM --platform=$BUILDPLATFORM ${BASE} AS build
WORKDIR /src
# a comment
RUN set -eu; \
    # a comment inside the command
    echo generic

COPY app/Cargo.toml app/
RUN --mount=type=cache,target=/root/.cargo \
    cargo build \
      --release
COPY app/src app/src
RUN ["cargo", "build", "--offline"]

FROM build AS test
RUN cargo test

FROM debian
COPY --from=build /bin/app /usr/local/bin/app
RUN echo runtime
"#;

    fn run(command: &str, after_context: bool) -> Run {
        Run {
            command: command.into(),
            after_context,
        }
    }

    #[test]
    fn stages_list_their_runs_as_buildkit_describes_them() {
        let build = vec![
            run("set -eu; echo generic", false),
            run("cargo build --release", true),
            run("cargo build --offline", true),
        ];
        let mut test = build.clone();
        test.push(run("cargo test", true));
        assert_eq!(
            stages(DOCKERFILE),
            vec![build, test, vec![run("echo runtime", false)]]
        );
    }

    fn record(id: &str, parent: &str, description: &str) -> Record {
        Record {
            id: id.into(),
            parent: parent.into(),
            description: description.into(),
        }
    }

    fn exec(command: &str) -> String {
        format!("mount / from exec /bin/sh -c {command}")
    }

    #[test]
    fn ours_is_the_lineage_of_our_runs_after_our_files() {
        let generic = exec("set -eu;     echo generic");
        let records = vec![
            record("base", "", "pulled from docker.io/library/debian"),
            record("workdir", "base", FILEOP),
            record("generic", "workdir", &generic),
            // Our COPY of Cargo.toml, then our build, then everything on it.
            record("copy-toml", "generic", FILEOP),
            record("deps", "copy-toml", &exec("cargo build  --release")),
            record("copy-src", "deps", FILEOP),
            record("app", "copy-src", "mount / from exec cargo build --offline"),
            record("tests", "app", &exec("cargo test")),
            // Another project: the same base and generic RUN (shared), its
            // own COPY, and a RUN that happens to read like ours but sits on
            // another chain.
            record("their-copy", "generic", FILEOP),
            record("their-build", "their-copy", &exec("make")),
            record("their-copy-2", "their-build", FILEOP),
            record(
                "their-lookalike",
                "their-copy-2",
                &exec("cargo build --release"),
            ),
            // A COPY on which both they and we build is not ours alone.
            record("shared-copy", "generic", FILEOP),
            record(
                "our-on-shared",
                "shared-copy",
                &exec("cargo build --release"),
            ),
            record("their-on-shared", "shared-copy", &exec("make")),
            // Runtime stage: a COPY --from onto the base, not recognisable.
            record("runtime-copy", "base", FILEOP),
            record("context", "", "local source for context"),
        ];
        let found = ours(&records, &stages(DOCKERFILE));
        let want: BTreeSet<String> = [
            "copy-toml",
            "deps",
            "copy-src",
            "app",
            "tests",
            "our-on-shared",
        ]
        .map(String::from)
        .into();
        assert_eq!(found, want);
    }

    #[test]
    fn a_run_before_any_of_our_files_is_never_ours() {
        let records = vec![
            record("base", "", "pulled from debian"),
            record("generic", "base", &exec("set -eu; echo generic")),
        ];
        assert!(ours(&records, &stages(DOCKERFILE)).is_empty());
    }

    #[test]
    fn records_parse_from_docker_system_df() {
        let json = r#"[{"CacheType":"regular","Description":"fileop target","ID":"abc*","InUse":"true","Parent":"def","Shared":"true","Size":"392kB"}]"#;
        assert_eq!(
            parse_records(json).unwrap(),
            vec![Record {
                id: "abc".into(),
                parent: "def".into(),
                description: "fileop target".into(),
            }]
        );
        assert!(parse_records("null\n").unwrap().is_empty());
        assert!(parse_records("not json").is_err());
    }
}
