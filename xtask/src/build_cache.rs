//! Which of the engine's BuildKit cache records are this repository's.
//!
//! With the `docker` driver (a developer's terminal) the build cache is the
//! engine's, shared by every project on the machine, and BuildKit labels its
//! records only by what made them: "mount / from exec <command>" for a `RUN`,
//! "fileop target" for a `COPY`, and so on. So a record is recognised as
//! ours by its lineage, read against this repository's Dockerfiles, and by
//! when it was made or used:
//!
//! 1. seeds: `RUN` records whose chain of `RUN`s, from the base image down,
//!    is a stage of one of our Dockerfiles word for word, ending at a `RUN`
//!    that comes after a `COPY`/`ADD` of the build context (so its result
//!    depends on this repository's files, not only on the base image and the
//!    commands), and that were created or last used while `cargo xtask build`
//!    ran in this checkout (it notes each build's start and end): a common
//!    Dockerfile (`COPY . .` then `RUN make`) reads the same in every project,
//!    and only the time tells theirs from ours;
//! 2. every record built on a seed;
//! 3. the `COPY` records just above a seed or above 2., when nothing but our
//!    records is built on them (a `COPY` of our files).
//!
//! A record another project's build also uses (a base image, a `RUN` before
//! any of our files) is not ours and is left alone. Not recognised either,
//! and left: a `COPY --from` straight onto a base image (the runtime stage's
//! copy of the binary), the build-context uploads, whose records carry
//! nothing to tell one project's from another's, anything after a `RUN`
//! with a heredoc or a `COPY --link` (which BuildKit records differently),
//! and cache mounts (`RUN --mount=type=cache`), which every build naming the
//! same mount shares.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use serde::Deserialize;

/// One record, as `docker system df --verbose --format '{{json .BuildCache}}'`
/// lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub id: String,
    pub parents: Vec<String>,
    pub description: String,
    /// Seconds since the epoch; `None` when the engine's form is not known.
    pub created: Option<f64>,
    pub last_used: Option<f64>,
}

#[derive(Deserialize)]
struct Listed {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Parent", default)]
    parent: String,
    #[serde(rename = "Description", default)]
    description: String,
    #[serde(rename = "CreatedAt", default)]
    created: String,
    #[serde(rename = "LastUsedAt", default)]
    last_used: String,
}

pub fn parse_records(json: &str) -> Result<Vec<Record>> {
    let json = json.trim();
    if json.is_empty() || json == "null" {
        return Ok(Vec::new());
    }
    let listed: Vec<Listed> = serde_json::from_str(json)
        .context("`docker system df` did not list the build cache as JSON")?;
    let id = |text: &str| -> Result<String> {
        // The CLI marks a record in use with a `*` after its ID. IDs go into
        // a regular expression (see `docker::prune_build_cache`): only
        // BuildKit's own letters and digits are taken.
        let id = text.trim().trim_end_matches('*');
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            bail!(
                "`docker system df` listed a build-cache record as {text:?}, not as a BuildKit ID"
            );
        }
        Ok(id.to_string())
    };
    listed
        .into_iter()
        .map(|l| {
            Ok(Record {
                id: id(&l.id)?,
                // Newer CLIs list several parents joined by ", ".
                parents: l
                    .parent
                    .split(',')
                    .filter(|p| !p.trim().is_empty())
                    .map(id)
                    .collect::<Result<_>>()?,
                description: l.description,
                created: engine_time(&l.created),
                last_used: engine_time(&l.last_used),
            })
        })
        .collect()
}

/// The engine's time, as the CLI prints it ("2026-11-28 06:11:00.0263 +0000
/// UTC"), in seconds since the epoch.
fn engine_time(text: &str) -> Option<f64> {
    let mut words = text.split_whitespace();
    let (date, time, offset) = (words.next()?, words.next()?, words.next()?);
    let mut ymd = date.splitn(3, '-').map(|n| n.parse::<i64>().ok());
    let (year, month, day) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let mut hms = time.splitn(3, ':');
    let (hours, minutes) = (
        hms.next()?.parse::<f64>().ok()?,
        hms.next()?.parse::<f64>().ok()?,
    );
    let seconds = hms.next()?.parse::<f64>().ok()?;
    let sign = match offset.chars().next()? {
        '+' => 1.0,
        '-' => -1.0,
        _ => return None,
    };
    let digits = offset.get(1..5)?;
    let offset_minutes =
        digits.get(..2)?.parse::<f64>().ok()? * 60.0 + digits.get(2..)?.parse::<f64>().ok()?;
    // Howard Hinnant's days-from-civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(
        days as f64 * 86_400.0 + hours * 3600.0 + minutes * 60.0 + seconds
            - sign * offset_minutes * 60.0,
    )
}

/// When `cargo xtask build` ran, one line per build: start and end, seconds
/// since the epoch.
pub const WINDOWS_FILE: &str = "target/xtask/build-windows";

/// Note a build that ran from `start` to `end` in the checkout at `root`.
pub fn note_window(root: &Path, start: f64, end: f64) -> std::io::Result<()> {
    append_windows(root, &window_line(start, end))
}

fn window_line(start: f64, end: f64) -> String {
    format!("{start:.3} {end:.3}\n")
}

/// This checkout's builds; none when no build has noted one.
pub fn windows(root: &Path) -> Vec<(f64, f64)> {
    parse_windows(&std::fs::read_to_string(root.join(WINDOWS_FILE)).unwrap_or_default())
}

fn parse_windows(text: &str) -> Vec<(f64, f64)> {
    text.lines()
        .filter_map(|line| {
            let (start, end) = line.split_once(' ')?;
            Some((start.parse().ok()?, end.parse().ok()?))
        })
        .collect()
}

/// Add another checkout's build times to `root`'s (a rehearsal's clone).
pub fn adopt_windows(from: &Path, root: &Path) -> std::io::Result<()> {
    match std::fs::read_to_string(from.join(WINDOWS_FILE)) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        text => append_windows(root, &text?),
    }
}

fn append_windows(root: &Path, text: &str) -> std::io::Result<()> {
    let path = root.join(WINDOWS_FILE);
    std::fs::create_dir_all(path.parent().unwrap_or(root))?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(text.as_bytes())
}

const EXEC: &str = "mount / from exec ";
const FILEOP: &str = "fileop target";
/// How far the engine's clock may be from ours (the same machine's, for a
/// local engine) and still date a record inside a build.
const CLOCK_SLACK: f64 = 1.0;

/// A `RUN` of one stage, in the words BuildKit uses for its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// The record's description, whitespace collapsed: `mount / from exec `
    /// and the arguments (the shell's and the command, or the exec form's).
    /// `None` for a form whose record this does not predict (a heredoc).
    pub description: Option<String>,
    /// Whether a `COPY`/`ADD` of the build context came before it in the
    /// stage (or in the stage it is built `FROM`).
    pub after_context: bool,
}

#[derive(Clone)]
struct Stage {
    runs: Vec<Run>,
    after_context: bool,
    shell: Vec<String>,
}

/// Every stage of a Dockerfile, each as its `RUN`s in order (a stage built
/// `FROM` an earlier one starts with that one's).
pub fn stages(dockerfile: &str) -> Vec<Vec<Run>> {
    let mut named: BTreeMap<String, usize> = BTreeMap::new();
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical_lines(dockerfile) {
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let rest = rest.trim();
        let (flags, rest) = split_flags(rest);
        match word.to_ascii_uppercase().as_str() {
            "FROM" => {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let base = words
                    .first()
                    .copied()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if let [_, as_, name] = words[..] {
                    if as_.eq_ignore_ascii_case("as") {
                        named.insert(name.to_ascii_lowercase(), stages.len());
                    }
                }
                let inherited = named
                    .get(&base)
                    .filter(|&&i| i < stages.len())
                    .map(|&i| stages[i].clone());
                stages.push(inherited.unwrap_or_else(|| Stage {
                    runs: Vec::new(),
                    after_context: false,
                    shell: vec!["/bin/sh".into(), "-c".into()],
                }));
            }
            "COPY" | "ADD" => {
                let from_context = !flags.iter().any(|f| f.starts_with("--from="))
                    && sources(rest).iter().any(|s| {
                        !s.starts_with("<<") && !s.contains("://") && !s.starts_with("git@")
                    });
                if let Some(stage) = stages.last_mut() {
                    stage.after_context |= from_context;
                }
            }
            "SHELL" => {
                if let (Some(stage), Ok(shell)) = (stages.last_mut(), serde_json::from_str(rest)) {
                    stage.shell = shell;
                }
            }
            "RUN" => {
                if let Some(stage) = stages.last_mut() {
                    let args = if rest.starts_with('[') {
                        serde_json::from_str::<Vec<String>>(rest).ok()
                    } else if rest.contains("<<") {
                        None
                    } else {
                        Some(
                            stage
                                .shell
                                .iter()
                                .cloned()
                                .chain([rest.to_string()])
                                .collect(),
                        )
                    };
                    stage.runs.push(Run {
                        description: args
                            .map(|a: Vec<String>| collapse(&format!("{EXEC}{}", a.join(" ")))),
                        after_context: stage.after_context,
                    });
                }
            }
            _ => {}
        }
    }
    stages.into_iter().map(|s| s.runs).collect()
}

/// An instruction's leading `--flag` words, and the rest.
fn split_flags(mut rest: &str) -> (Vec<&str>, &str) {
    let mut flags = Vec::new();
    while rest.starts_with("--") {
        let (flag, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        flags.push(flag);
        rest = tail.trim_start();
    }
    (flags, rest)
}

/// A `COPY`/`ADD`'s sources: every argument but the last.
fn sources(rest: &str) -> Vec<String> {
    let mut args: Vec<String> = if rest.starts_with('[') {
        serde_json::from_str(rest).unwrap_or_default()
    } else {
        rest.split_whitespace().map(String::from).collect()
    };
    args.pop();
    args
}

/// The Dockerfile's instructions, continuation lines joined, comments and
/// heredoc bodies dropped, as BuildKit's parser reads them.
fn logical_lines(dockerfile: &str) -> Vec<String> {
    let mut escape = '\\';
    let mut lines = Vec::new();
    let mut current: Option<String> = None;
    let mut directives = true;
    let mut heredocs: Vec<(String, bool)> = Vec::new();
    for raw in dockerfile.lines() {
        let trimmed = raw.trim();
        if let Some((end, strip_tabs)) = heredocs.first() {
            let line = if *strip_tabs {
                raw.trim_start_matches('\t')
            } else {
                raw
            };
            if line == end {
                heredocs.remove(0);
            }
            continue;
        }
        if directives {
            // Parser directives: `# key=value` lines at the very top.
            let directive = trimmed
                .strip_prefix('#')
                .and_then(|d| d.split_once('='))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()));
            match directive {
                Some((key, value)) if !key.is_empty() && !key.contains(char::is_whitespace) => {
                    if key == "escape" {
                        escape = value.chars().next().unwrap_or('\\');
                    }
                    continue;
                }
                _ => directives = false,
            }
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
                    heredocs = heredoc_ends(&text);
                    lines.push(text.trim().to_string());
                }
            }
        }
    }
    lines.extend(current.map(|t| t.trim().to_string()));
    lines
}

/// The terminators of an instruction's heredocs (`<<EOF`, `<<-"EOF"`), in
/// order, each with whether its body's leading tabs are stripped.
fn heredoc_ends(instruction: &str) -> Vec<(String, bool)> {
    let mut ends = Vec::new();
    let mut rest = instruction;
    while let Some(at) = rest.find("<<") {
        rest = &rest[at + 2..];
        let strip_tabs = rest.starts_with('-');
        let word = rest.trim_start_matches('-').trim_start_matches(['"', '\'']);
        let end: String = word
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !end.is_empty() {
            ends.push((end, strip_tabs));
        }
    }
    ends
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The IDs of this repository's records (see the module's documentation),
/// given every stage of its Dockerfiles and when its builds ran.
pub fn ours(records: &[Record], stages: &[Vec<Run>], windows: &[(f64, f64)]) -> BTreeSet<String> {
    let by_id: BTreeMap<&str, &Record> = records.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in records {
        for parent in &r.parents {
            children
                .entry(parent.as_str())
                .or_default()
                .push(r.id.as_str());
        }
    }
    // The descriptions of the RUN records from the base down to `record`;
    // `None` when the chain forks (a merge) or reaches a record that is gone.
    let run_chain = |record: &Record| -> Option<Vec<String>> {
        let mut chain = Vec::new();
        let mut at = record;
        // Bounded by the record count: a listing with a cycle ends too.
        for _ in 0..=records.len() {
            if at.description.starts_with(EXEC) {
                chain.push(collapse(&at.description));
            }
            match &at.parents[..] {
                [] => {
                    chain.reverse();
                    return Some(chain);
                }
                [parent] => at = by_id.get(parent.as_str())?,
                _ => return None,
            }
        }
        None
    };
    let during_a_build = |record: &Record| {
        [record.created, record.last_used]
            .into_iter()
            .flatten()
            .any(|t| {
                windows
                    .iter()
                    .any(|(start, end)| t >= start - CLOCK_SLACK && t <= end + CLOCK_SLACK)
            })
    };
    let is_seed = |record: &Record| {
        record.description.starts_with(EXEC)
            && during_a_build(record)
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
        let climb: BTreeSet<String> = ours
            .iter()
            .filter_map(|id| by_id.get(id.as_str()))
            .filter_map(|r| match &r.parents[..] {
                [parent] => Some(parent.as_str()),
                _ => None,
            })
            .filter(|p| !ours.contains(*p))
            .filter(|p| by_id.get(p).is_some_and(|r| r.description == FILEOP))
            .filter(|p| {
                children
                    .get(p)
                    .is_some_and(|c| c.iter().all(|c| ours.contains(*c)))
            })
            .map(String::from)
            .collect();
        if climb.is_empty() {
            return ours;
        }
        ours.extend(climb);
    }
}

/// Whether a record's RUN chain is the start of `stage`, word for word,
/// ending at a RUN that depends on the build context.
fn chain_matches(chain: &[String], stage: &[Run]) -> bool {
    let Some(last) = chain.len().checked_sub(1) else {
        return false;
    };
    chain.len() <= stage.len()
        && stage[last].after_context
        && chain
            .iter()
            .zip(stage)
            .all(|(description, run)| run.description.as_deref() == Some(description.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKERFILE: &str = r#"# ESCAPE = \
# check=skip=all
ARG BASE=debian
FROM --platform=$BUILDPLATFORM ${BASE} AS build
WORKDIR /src
# a comment
RUN set -eu; \
    # a comment inside the command
    echo generic

ADD https://example.com/tool.tar.gz /opt/
RUN echo still generic
COPY <<EOF /etc/note
FROM evil AS fake
EOF
RUN echo generic to the end
COPY app/Cargo.toml app/
RUN --mount=type=cache,target=/root/.cargo \
    cargo build \
      --release
COPY app/src app/src
RUN ["cargo", "build", "--offline"]
RUN <<EOF
echo a heredoc
EOF

FROM build AS test
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN cargo test | tee log

FROM debian
COPY --from=build /bin/app /usr/local/bin/app
RUN echo runtime
"#;

    fn run(description: &str, after_context: bool) -> Run {
        Run {
            description: Some(description.into()),
            after_context,
        }
    }

    #[test]
    fn stages_list_their_runs_as_buildkit_describes_them() {
        let build = vec![
            run("mount / from exec /bin/sh -c set -eu; echo generic", false),
            run("mount / from exec /bin/sh -c echo still generic", false),
            run(
                "mount / from exec /bin/sh -c echo generic to the end",
                false,
            ),
            run("mount / from exec /bin/sh -c cargo build --release", true),
            run("mount / from exec cargo build --offline", true),
            Run {
                description: None,
                after_context: true,
            },
        ];
        let mut test = build.clone();
        test.push(run(
            "mount / from exec /bin/bash -o pipefail -c cargo test | tee log",
            true,
        ));
        assert_eq!(
            stages(DOCKERFILE),
            vec![
                build,
                test,
                vec![run("mount / from exec /bin/sh -c echo runtime", false)]
            ]
        );
    }

    #[test]
    fn the_escape_directive_changes_the_continuation() {
        let runs = stages("# escape=`\nFROM x\nCOPY . .\nRUN a `\n  b\n");
        assert_eq!(
            runs,
            vec![vec![run("mount / from exec /bin/sh -c a b", true)]]
        );
    }

    fn record(id: &str, parent: &str, description: &str) -> Record {
        Record {
            id: id.into(),
            parents: if parent.is_empty() {
                vec![]
            } else {
                vec![parent.into()]
            },
            description: description.into(),
            created: Some(100.0),
            last_used: Some(100.0),
        }
    }

    fn exec(command: &str) -> String {
        format!("mount / from exec /bin/sh -c {command}")
    }

    const SIMPLE: &str = "FROM debian\nRUN echo generic\nCOPY app/Cargo.toml app/\nRUN cargo build --release\nCOPY app/src app/src\nRUN [\"cargo\", \"build\", \"--offline\"]\n\nFROM debian\nCOPY --from=0 /app /app\n";

    #[test]
    fn ours_is_the_lineage_of_our_runs_after_our_files() {
        let records = vec![
            record("base", "", "pulled from docker.io/library/debian"),
            record("generic", "base", &exec("echo   generic")),
            // Our COPY of Cargo.toml, then our build, then everything on it.
            record("copy-toml", "generic", FILEOP),
            record("deps", "copy-toml", &exec("cargo build  --release")),
            record("copy-src", "deps", FILEOP),
            record("app", "copy-src", "mount / from exec cargo build --offline"),
            record("on-app", "app", FILEOP),
            // Another project: the same base and generic RUN (shared), its
            // own COPY, and a RUN that reads like ours on another chain.
            record("their-copy", "generic", FILEOP),
            record("their-build", "their-copy", &exec("make")),
            record("their-copy-2", "their-build", FILEOP),
            record(
                "their-lookalike",
                "their-copy-2",
                &exec("cargo build --release"),
            ),
            // A RUN that only ends like ours.
            record("their-suffix-copy", "generic", FILEOP),
            record(
                "their-suffix",
                "their-suffix-copy",
                &exec("cd x && cargo build --release"),
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
        let found = ours(&records, &stages(SIMPLE), &[(99.0, 101.0)]);
        let want: BTreeSet<String> = [
            "copy-toml",
            "deps",
            "copy-src",
            "app",
            "on-app",
            "our-on-shared",
        ]
        .map(String::from)
        .into();
        assert_eq!(found, want);
    }

    #[test]
    fn only_records_made_or_used_while_our_builds_ran_are_seeds() {
        let mut theirs = record("theirs", "copy", &exec("cargo build --release"));
        theirs.created = Some(500.0);
        theirs.last_used = Some(510.0);
        let records = vec![
            record("base", "", "pulled from debian"),
            record("generic", "base", &exec("echo generic")),
            record("copy", "generic", FILEOP),
            theirs,
        ];
        let stages = stages(SIMPLE);
        assert!(ours(&records, &stages, &[(99.0, 101.0)]).is_empty());
        assert!(ours(&records, &stages, &[]).is_empty());
        assert_eq!(
            ours(&records, &stages, &[(505.0, 509.0)]),
            ["copy", "theirs"].map(String::from).into()
        );
    }

    #[test]
    fn a_run_before_any_of_our_files_is_never_ours() {
        let records = vec![
            record("base", "", "pulled from debian"),
            record("generic", "base", &exec("echo generic")),
        ];
        assert!(ours(&records, &stages(SIMPLE), &[(0.0, 1e12)]).is_empty());
    }

    #[test]
    fn a_cycle_in_the_listing_ends() {
        let records = vec![
            record("a", "b", &exec("cargo build --release")),
            record("b", "a", FILEOP),
        ];
        assert!(ours(&records, &stages(SIMPLE), &[(0.0, 1e12)]).is_empty());
    }

    #[test]
    fn records_parse_from_docker_system_df() {
        let json = r#"[{"CacheType":"regular","CreatedAt":"2026-11-28 06:11:00.5 +0000 UTC","Description":"fileop target","ID":"abc*","InUse":"true","LastUsedAt":"2026-11-28 07:11:00 +0100 CET","Parent":"def, ghi","Shared":"true","Size":"392kB"}]"#;
        assert_eq!(
            parse_records(json).unwrap(),
            vec![Record {
                id: "abc".into(),
                parents: vec!["def".into(), "ghi".into()],
                description: "fileop target".into(),
                created: Some(1_795_846_260.5),
                last_used: Some(1_795_846_260.0),
            }]
        );
        assert!(parse_records("null\n").unwrap().is_empty());
        assert!(parse_records("not json").is_err());
        assert!(parse_records(r#"[{"ID":"a|b"}]"#).is_err());
    }

    #[test]
    fn a_rehearsal_clones_builds_join_the_checkouts() {
        let base = std::env::temp_dir().join(format!("xtask-windows-{}", std::process::id()));
        let (clone, root) = (base.join("clone"), base.join("root"));
        note_window(&clone, 1.0, 2.0).unwrap();
        note_window(&root, 3.0, 4.0).unwrap();
        adopt_windows(&clone, &root).unwrap();
        adopt_windows(&base.join("no-builds"), &root).unwrap();
        let text = std::fs::read_to_string(root.join(WINDOWS_FILE)).unwrap();
        assert_eq!(parse_windows(&text), vec![(3.0, 4.0), (1.0, 2.0)]);
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn windows_round_trip() {
        let text = window_line(1.5, 2.25) + &window_line(10.0, 11.0) + "garbage\n";
        assert_eq!(parse_windows(&text), vec![(1.5, 2.25), (10.0, 11.0)]);
    }
}
