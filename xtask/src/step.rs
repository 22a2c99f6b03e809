//! Commands as data: every external command is first built as a [`Step`],
//! a program, its arguments and, for a password, the step whose output feeds
//! its stdin; [`crate::exec`] runs them. Printed, a step is the shell command
//! a user can paste, never with a secret's value.

use std::fmt;

/// One external command, as plain data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub program: String,
    pub args: Vec<String>,
    /// A step whose stdout is a secret that becomes this step's stdin; it is
    /// run silently and its output never printed or logged.
    pub secret_stdin: Option<Box<Step>>,
    /// Whether a read of it may take as long as it needs, past the read
    /// timeout: a pushed image's smoke check pulls the image first, which
    /// for a GPU image takes minutes.
    pub unbounded: bool,
}

impl Step {
    pub fn new(program: &str, args: impl IntoIterator<Item = impl Into<String>>) -> Step {
        Step {
            program: program.to_string(),
            args: args.into_iter().map(Into::into).collect(),
            secret_stdin: None,
            unbounded: false,
        }
    }

    /// Let a read of this step take as long as it needs.
    pub fn unbounded(mut self) -> Step {
        self.unbounded = true;
        self
    }

    /// Feed `source`'s stdout into this step's stdin, as `source | self` would,
    /// without the value ever being printed.
    pub fn with_secret_stdin(mut self, source: Step) -> Step {
        self.secret_stdin = Some(Box::new(source));
        self
    }

    /// The step as an error names it: cut after its first 100 characters
    /// (a build's flags fill a screen), so the tool's answer that follows
    /// stays in view. The whole command was printed when it ran.
    pub fn brief(&self) -> String {
        let text = self.to_string();
        match text.char_indices().nth(100) {
            Some((at, _)) => format!("{}…", &text[..at]),
            None => text,
        }
    }
}

impl fmt::Display for Step {
    /// Shell-quoted, so a printed step can be pasted into a terminal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(source) = &self.secret_stdin {
            write!(f, "{source} | ")?;
        }
        f.write_str(&quote(&self.program))?;
        for arg in &self.args {
            write!(f, " {}", quote(arg))?;
        }
        Ok(())
    }
}

/// Quote an argument for a POSIX shell, only when it needs it.
fn quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// An external program, and how to install it when it is missing.
#[derive(Clone, Copy, Debug)]
pub struct Tool {
    pub program: &'static str,
    pub install: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_needs_it() {
        let step = Step::new("docker", ["build", "--label", "a=b c", "it's", "."]);
        assert_eq!(
            step.to_string(),
            r#"docker build --label 'a=b c' 'it'\''s' ."#
        );
    }

    #[test]
    fn display_shows_pipe_never_a_value() {
        let login = Step::new(
            "docker",
            ["login", "--username", "AWS", "--password-stdin", "r"],
        )
        .with_secret_stdin(Step::new("aws", ["ecr", "get-login-password"]));
        assert_eq!(
            login.to_string(),
            "aws ecr get-login-password | docker login --username AWS --password-stdin r"
        );
    }
}
