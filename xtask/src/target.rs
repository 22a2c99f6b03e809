//! Where images go: the registry and repository of each environment.
//!
//! Each comes from a flag or from the environment (`ECR_REGISTRY_DEV`,
//! `ECR_REGISTRY_STAGE`, `ECR_REGISTRY_PROD`, `ECR_REPOSITORY`, or
//! `ECR_REPOSITORY_<ENV>` when one environment's repository differs), which the
//! Makefile, the workflows and the test rig set.

use std::fmt;

use clap::ValueEnum;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Env {
    Dev,
    Stage,
    Prod,
}

impl Env {
    fn upper(self) -> String {
        self.to_string().to_ascii_uppercase()
    }
}

impl fmt::Display for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::cli::flag_value(*self))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub registry: String,
    pub repository: String,
}

impl Target {
    /// `<registry>/<repository>`, the image name every tag hangs off.
    pub fn image(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    pub fn reference(&self, tag: &str) -> String {
        format!("{}:{tag}", self.image())
    }

    /// The image by its manifest digest, `<image>@sha256:...`.
    pub fn at(&self, digest: &str) -> String {
        format!("{}@{digest}", self.image())
    }

    /// The AWS region of an ECR registry host
    /// (`<account>.dkr.ecr.<region>.amazonaws.com`), if it is one.
    pub fn ecr_region(&self) -> Option<&str> {
        let host = self.registry.split(':').next()?;
        let rest = host.split_once(".dkr.ecr.")?.1;
        rest.split_once('.').map(|(region, _)| region)
    }

    /// Loopback registries speak plain HTTP; Docker itself treats
    /// `127.0.0.0/8` and `localhost` as insecure registries, and skopeo must
    /// be told the same.
    pub fn is_loopback(&self) -> bool {
        let host = self
            .registry
            .rsplit_once(':')
            .map_or(self.registry.as_str(), |(h, _)| h);
        host == "localhost" || host.starts_with("127.")
    }
}

/// The flags that name a target, and how they are spelled: `--registry`,
/// or with a prefix, `--stage-registry` (promote names two targets).
#[derive(Clone, Copy, Debug, Default)]
pub struct Flags<'a> {
    pub prefix: &'a str,
    pub registry: Option<&'a str>,
    pub repository: Option<&'a str>,
}

/// Resolve an environment's target from flags first, then the environment.
/// `getenv` answers `None` for a variable that is unset or empty.
pub fn resolve(
    env: Env,
    flags: Flags,
    getenv: impl Fn(&str) -> Option<String>,
) -> Result<Target, String> {
    let registry = registry_host(env, flags, &getenv)?.ok_or_else(|| {
        format!(
            "no {env} registry: pass --{}registry or set ECR_REGISTRY_{} (e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com)",
            flags.prefix,
            env.upper()
        )
    })?;
    Ok(Target {
        registry,
        repository: repository_name(env, flags, &getenv)?,
    })
}

/// The image name for a build: `<registry>/<repository>` when a registry is
/// configured, else the bare repository (a local-only build). A malformed
/// value is an error either way.
pub fn image_name(
    env: Env,
    flags: Flags,
    getenv: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let repository = repository_name(env, flags, &getenv)?;
    Ok(match registry_host(env, flags, &getenv)? {
        Some(registry) => format!("{registry}/{repository}"),
        None => repository,
    })
}

/// The registry host, when one is configured: the flag, else
/// `ECR_REGISTRY_<ENV>`; checked as a `host[:port]`.
fn registry_host(
    env: Env,
    flags: Flags,
    getenv: &impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, String> {
    let var = format!("ECR_REGISTRY_{}", env.upper());
    let (host, source) = match (flags.registry, getenv(&var)) {
        (Some(host), _) => (host.to_string(), format!("--{}registry", flags.prefix)),
        (None, Some(host)) => (host, var),
        (None, None) => return Ok(None),
    };
    check_host(&host).map_err(|why| {
        format!(
            "{source} \"{host}\" is not a registry host: {why}; give host[:port] only, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com or 127.0.0.1:5000"
        )
    })?;
    Ok(Some(host))
}

/// `host[:port]`: DNS labels or an IPv4 address, and a port from 1 to 65535.
pub fn check_host(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("it is empty".into());
    }
    if text.contains("://") {
        return Err("it has a scheme".into());
    }
    if let Some(bad) = text
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || ".-:".contains(c)))
    {
        return Err(match bad {
            '/' => "it has a path".into(),
            c if c.is_whitespace() => "it contains a space".into(),
            c => format!("it contains {c:?}"),
        });
    }
    let name = match text.split_once(':') {
        // `parse` would take a leading '+', but the characters above exclude it.
        Some((_, port)) if port.parse::<u16>().unwrap_or(0) == 0 => {
            return Err(format!("port \"{port}\" is not a number from 1 to 65535"));
        }
        Some((name, _)) => name,
        None => text,
    };
    if name.len() > 253 {
        return Err("the host name is longer than 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 || label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "\"{label}\" is not a host name label (1 to 63 letters, digits or '-', not at either end)"
            ));
        }
    }
    Ok(())
}

/// The repository when nothing names one: the example application's name,
/// which a team replacing the application changes here (and in ECR).
pub const DEFAULT_REPOSITORY: &str = "batch-probe";

/// The repository name: a flag, else `ECR_REPOSITORY_<ENV>`, else
/// `ECR_REPOSITORY`, else [`DEFAULT_REPOSITORY`]; checked by ECR's grammar.
pub fn repository_name(
    env: Env,
    flags: Flags,
    getenv: &impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let per_env = format!("ECR_REPOSITORY_{}", env.upper());
    let (name, source) = match (flags.repository, getenv(&per_env), getenv("ECR_REPOSITORY")) {
        (Some(name), _, _) => (name.to_string(), format!("--{}repository", flags.prefix)),
        (None, Some(name), _) => (name, per_env),
        (None, None, Some(name)) => (name, "ECR_REPOSITORY".into()),
        (None, None, None) => return Ok(DEFAULT_REPOSITORY.to_string()),
    };
    check_repository(&name).map_err(|why| {
        format!(
            "{source} \"{name}\" is not an ECR repository name: {why}; use lowercase path components separated by '/', each letters and digits joined by single '.', '_' or '-' (e.g. team/batch-probe)"
        )
    })?;
    Ok(name)
}

/// ECR's repository grammar: `[a-z0-9]+([._-][a-z0-9]+)*` components
/// separated by `/`, 2 to 256 characters in all.
pub fn check_repository(name: &str) -> Result<(), String> {
    if !(2..=256).contains(&name.len()) {
        let plural = if name.len() == 1 { "" } else { "s" };
        return Err(format!(
            "it is {} character{plural}; ECR allows 2 to 256",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c)))
    {
        return Err(format!("it contains {bad:?}"));
    }
    for component in name.split('/') {
        let alnum = |c: char| c.is_ascii_alphanumeric();
        let doubled = component
            .as_bytes()
            .windows(2)
            .any(|pair| pair.iter().all(|b| b"._-".contains(b)));
        if !component.starts_with(alnum) || !component.ends_with(alnum) || doubled {
            return Err(format!(
                "component \"{component}\" must start and end with a letter or digit, with one separator at a time"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The repository `app` in `registry`, for the tool modules' tests.
    pub(crate) fn app_in(registry: &str) -> Target {
        Target {
            registry: registry.into(),
            repository: "app".into(),
        }
    }

    /// The environment as the tasks see it: set-but-empty counts as unset.
    fn env_of<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |key| {
            let value = pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string());
            crate::cli::non_empty(value)
        }
    }

    fn flags<'a>(registry: Option<&'a str>, repository: Option<&'a str>) -> Flags<'a> {
        Flags {
            prefix: "",
            registry,
            repository,
        }
    }

    #[test]
    fn flags_win_over_environment() {
        let vars = [
            ("ECR_REGISTRY_DEV", "1.dkr.ecr.us-east-1.amazonaws.com"),
            ("ECR_REPOSITORY", "app"),
        ];
        let t = resolve(Env::Dev, flags(None, None), env_of(&vars)).unwrap();
        assert_eq!(
            t.reference("latest-amd64-gpu"),
            "1.dkr.ecr.us-east-1.amazonaws.com/app:latest-amd64-gpu"
        );
        assert_eq!(t.ecr_region(), Some("us-east-1"));
        let t = resolve(
            Env::Dev,
            flags(Some("127.0.0.1:5001"), Some("other")),
            env_of(&vars),
        )
        .unwrap();
        assert_eq!(t.image(), "127.0.0.1:5001/other");
        assert!(t.is_loopback());
        assert_eq!(t.ecr_region(), None);
    }

    #[test]
    fn registry_hosts_table() {
        let good = [
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "127.0.0.1:5001",
            "localhost:5000",
            "localhost",
            "registry-1.example.com:443",
            "r",
        ];
        for host in good {
            assert_eq!(check_host(host), Ok(()), "{host}");
        }
        let bad = [
            ("", "it is empty"),
            ("https://x", "it has a scheme"),
            ("x/y", "it has a path"),
            ("my registry", "it contains a space"),
            ("host ", "it contains a space"),
            ("127.0.0.1:", "port \"\" is not a number"),
            ("127.0.0.1:0", "port \"0\""),
            ("127.0.0.1:65536", "port \"65536\""),
            ("127.0.0.1:+80", "it contains '+'"),
            ("127.0.0.1:50:01", "port \"50:01\""),
            ("-x.example.com", "\"-x\" is not a host name label"),
            ("a..b", "\"\" is not a host name label"),
            ("x.example.com.", "\"\" is not a host name label"),
            ("reg_istry", "it contains '_'"),
        ];
        for (host, why) in bad {
            let err = check_host(host).unwrap_err();
            assert!(err.starts_with(why), "{host}: {err}");
        }
    }

    #[test]
    fn repository_names_table() {
        let good = [
            "batch-probe",
            "ab",
            "team/batch-probe",
            "a.b_c-d/e1/f2",
            &"a".repeat(256),
        ];
        for name in good {
            assert_eq!(check_repository(name), Ok(()), "{name}");
        }
        let long = "a".repeat(257);
        let bad = [
            ("a", "it is 1 character;"),
            (long.as_str(), "it is 257 characters"),
            ("App", "it contains 'A'"),
            ("my app", "it contains ' '"),
            ("app:tag", "it contains ':'"),
            ("/app", "component \"\""),
            ("app/", "component \"\""),
            ("team//app", "component \"\""),
            ("-app", "component \"-app\""),
            ("app-", "component \"app-\""),
            ("a..b", "component \"a..b\""),
            ("a-_b", "component \"a-_b\""),
            ("team/.app", "component \".app\""),
        ];
        for (name, why) in bad {
            let err = check_repository(name).unwrap_err();
            assert!(err.starts_with(why), "{name}: {err}");
        }
    }

    /// An empty variable is unset: the next source applies, never "".
    #[test]
    fn empty_variables_table() {
        type Vars<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(Vars, Env, Result<&str, &str>)] = &[
            (
                &[
                    ("ECR_REGISTRY_PROD", "r:1"),
                    ("ECR_REPOSITORY", "app"),
                    ("ECR_REPOSITORY_PROD", ""),
                ],
                Env::Prod,
                Ok("r:1/app"),
            ),
            (
                &[
                    ("ECR_REGISTRY_PROD", "r:1"),
                    ("ECR_REPOSITORY", ""),
                    ("ECR_REPOSITORY_PROD", ""),
                ],
                Env::Prod,
                Ok("r:1/batch-probe"),
            ),
            (
                &[
                    ("ECR_REGISTRY_PROD", "r:1"),
                    ("ECR_REPOSITORY", "app"),
                    ("ECR_REPOSITORY_PROD", "app-prod"),
                ],
                Env::Prod,
                Ok("r:1/app-prod"),
            ),
            (
                &[("ECR_REGISTRY_STAGE", ""), ("ECR_REPOSITORY", "app")],
                Env::Stage,
                Err("no stage registry: pass --registry or set ECR_REGISTRY_STAGE"),
            ),
            (
                &[("ECR_REGISTRY_DEV", " "), ("ECR_REPOSITORY", "app")],
                Env::Dev,
                Err("ECR_REGISTRY_DEV \" \" is not a registry host: it contains a space"),
            ),
            (
                &[("ECR_REGISTRY_DEV", "r:1"), ("ECR_REPOSITORY_DEV", "App")],
                Env::Dev,
                Err("ECR_REPOSITORY_DEV \"App\" is not an ECR repository name"),
            ),
        ];
        for (vars, env, expected) in cases {
            let got = resolve(*env, flags(None, None), env_of(vars)).map(|t| t.image());
            match (got, expected) {
                (Ok(image), Ok(want)) => assert_eq!(image, *want, "{vars:?}"),
                (Err(err), Err(want)) => assert!(err.starts_with(want), "{vars:?}: {err}"),
                (got, _) => panic!("{vars:?}: {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn errors_name_the_flag_that_supplied_the_value() {
        let promote = Flags {
            prefix: "stage-",
            registry: Some("https://x"),
            repository: None,
        };
        assert!(resolve(Env::Stage, promote, env_of(&[]))
            .unwrap_err()
            .starts_with("--stage-registry \"https://x\" is not a registry host: it has a scheme"));
        assert!(
            resolve(Env::Dev, flags(Some("r"), Some("App")), env_of(&[]))
                .unwrap_err()
                .starts_with("--repository \"App\" is not an ECR repository name")
        );
        assert_eq!(
            resolve(Env::Stage, Flags { prefix: "stage-", ..Flags::default() }, env_of(&[])).unwrap_err(),
            "no stage registry: pass --stage-registry or set ECR_REGISTRY_STAGE (e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com)"
        );
    }

    #[test]
    fn a_local_build_needs_no_registry_but_a_bad_one_is_still_an_error() {
        assert_eq!(
            image_name(Env::Dev, flags(None, None), env_of(&[])).unwrap(),
            DEFAULT_REPOSITORY
        );
        assert_eq!(
            image_name(
                Env::Dev,
                flags(None, None),
                env_of(&[("ECR_REGISTRY_DEV", "r:1")])
            )
            .unwrap(),
            "r:1/batch-probe"
        );
        assert!(image_name(
            Env::Dev,
            flags(None, None),
            env_of(&[("ECR_REGISTRY_DEV", "r:x")])
        )
        .is_err());
    }
}
