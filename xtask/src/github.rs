//! GitHub Actions I/O: step outputs, step summaries, log groups and error
//! annotations. Outside GitHub Actions these are no-ops or plain stderr lines.

use std::fs::OpenOptions;
use std::io::Write;

use anyhow::Result;

use crate::exec::Runner;

pub fn is_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true")
}

pub fn set_output(key: &str, value: &str) -> Result<()> {
    let path = std::env::var_os("GITHUB_OUTPUT").filter(|p| !p.is_empty()).ok_or_else(|| {
        crate::error::Usage(
            "--github-output: GITHUB_OUTPUT is not set; it is set by GitHub Actions (or set it to a file path)".into(),
        )
    })?;
    append(&path, &format!("{key}={value}\n")).map_err(|err| {
        let path = path.to_string_lossy();
        crate::error::Usage(format!(
            "--github-output: cannot write to GITHUB_OUTPUT={path} ({err}); point it at a file that can be written (GitHub Actions sets it to one)"
        ))
        .into()
    })
}

/// Append Markdown to the job summary, when running under GitHub Actions and
/// not in a dry run, which changes nothing. The summary only reports: a file
/// that cannot be written is a warning, never the run's error, which would
/// hide what the run itself found (a failed variant, a failed gate).
pub fn summary(runner: &Runner, markdown: &str) {
    if runner.dry_run {
        return;
    }
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") else {
        return;
    };
    // The page is shown to everyone who can read the repository.
    if let Err(err) = append(&path, &crate::exec::mask(markdown, None)) {
        let path = path.to_string_lossy();
        warning(&format!(
            "cannot write GITHUB_STEP_SUMMARY={path}: {err}; the job summary lacks this section"
        ));
    }
}

/// A warning: an annotation under GitHub Actions, so it shows on the run's
/// page, a plain line elsewhere.
pub fn warning(line: &str) {
    let annotation = if is_actions() { "::warning::" } else { "" };
    eprintln!("{annotation}{line}");
}

/// A Markdown table of `rows`, the first being the header; `|` in a cell
/// is escaped so it stays one cell.
pub fn markdown_table<R: AsRef<[String]>>(rows: &[R]) -> String {
    let line = |cells: &[String]| {
        let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        out += &line(row.as_ref());
        if i == 0 {
            out += &line(&vec!["---".to_string(); row.as_ref().len()]);
        }
    }
    out
}

fn append(path: &std::ffi::OsStr, text: &str) -> std::io::Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(text.as_bytes())
}

/// A collapsible log group (GitHub) or a plain heading (terminal). The
/// group ends when this is dropped, on every path out of the work it folds,
/// so a failure's error is printed after it, never folded inside.
#[must_use = "the group ends when this is dropped"]
pub struct Group;

impl Drop for Group {
    fn drop(&mut self) {
        if is_actions() {
            eprintln!("::endgroup::");
        }
    }
}

pub fn group(title: &str) -> Group {
    let heading = if is_actions() { "::group::" } else { "==> " };
    eprintln!("{heading}{title}");
    Group
}

/// Print the final error: an `::error::` annotation on GitHub, so it shows on
/// the run's summary page, and a plain `error:` line elsewhere.
pub fn report_error(err: &anyhow::Error) {
    let message = crate::exec::mask(&format!("{err:#}"), None);
    if is_actions() {
        // Annotations are one line; `%0A` is GitHub's escaped newline.
        eprintln!(
            "::error::{}",
            message.replace('%', "%25").replace('\n', "%0A")
        );
    } else {
        eprintln!("error: {message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_table_has_a_header_rule_and_escapes_pipes() {
        let rows = [["A", "B"].map(String::from), ["x|y", "z"].map(String::from)];
        assert_eq!(
            markdown_table(&rows),
            "| A | B |\n| --- | --- |\n| x\\|y | z |\n"
        );
    }
}
