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
    pub fn as_str(self) -> &'static str {
        match self {
            Env::Dev => "dev",
            Env::Stage => "stage",
            Env::Prod => "prod",
        }
    }

    fn upper(self) -> String {
        self.as_str().to_ascii_uppercase()
    }
}

impl fmt::Display for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A registry host and a repository in it.
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

/// Resolve an environment's target from flags first, then the environment.
pub fn resolve(
    env: Env,
    registry: Option<&str>,
    repository: Option<&str>,
    getenv: impl Fn(&str) -> Option<String>,
) -> Result<Target, String> {
    let upper = env.upper();
    let registry_var = format!("ECR_REGISTRY_{upper}");
    let registry = registry
        .map(str::to_string)
        .or_else(|| getenv(&registry_var))
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            format!(
                "no {env} registry: pass --registry or set {registry_var} (e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com)"
            )
        })?;
    if registry.contains('/') || registry.contains("://") {
        return Err(format!(
            "{env} registry \"{registry}\" must be a host[:port] only, without scheme or path (e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com)"
        ));
    }
    let repository = repository_name(Some(env), repository, &getenv)?;
    Ok(Target {
        registry,
        repository,
    })
}

/// The repository when nothing names one: the example application's name,
/// which a team replacing the application changes here (and in ECR).
pub const DEFAULT_REPOSITORY: &str = "batch-probe";

/// The repository name: a flag, else `ECR_REPOSITORY_<ENV>`, else
/// `ECR_REPOSITORY`, else [`DEFAULT_REPOSITORY`].
pub fn repository_name(
    env: Option<Env>,
    flag: Option<&str>,
    getenv: &impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let per_env = env.and_then(|env| getenv(&format!("ECR_REPOSITORY_{}", env.upper())));
    let name = flag
        .map(str::to_string)
        .or(per_env)
        .or_else(|| getenv("ECR_REPOSITORY"))
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| DEFAULT_REPOSITORY.to_string());
    let valid = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric());
    if !valid {
        return Err(format!(
            "repository \"{name}\" is not a valid ECR repository name; use lowercase letters, digits, '.', '_', '-' and '/'"
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn flags_win_over_environment() {
        let vars = [
            ("ECR_REGISTRY_DEV", "1.dkr.ecr.us-east-1.amazonaws.com"),
            ("ECR_REPOSITORY", "app"),
        ];
        let t = resolve(Env::Dev, None, None, env_of(&vars)).unwrap();
        assert_eq!(
            t.reference("latest-amd64-gpu"),
            "1.dkr.ecr.us-east-1.amazonaws.com/app:latest-amd64-gpu"
        );
        assert_eq!(t.ecr_region(), Some("us-east-1"));
        let t = resolve(
            Env::Dev,
            Some("127.0.0.1:5001"),
            Some("other"),
            env_of(&vars),
        )
        .unwrap();
        assert_eq!(t.image(), "127.0.0.1:5001/other");
        assert!(t.is_loopback());
        assert_eq!(t.ecr_region(), None);
    }

    #[test]
    fn per_environment_repository_overrides_the_shared_one() {
        let vars = [
            ("ECR_REGISTRY_PROD", "r"),
            ("ECR_REPOSITORY", "app"),
            ("ECR_REPOSITORY_PROD", "app-prod"),
        ];
        assert_eq!(
            resolve(Env::Prod, None, None, env_of(&vars))
                .unwrap()
                .repository,
            "app-prod"
        );
    }

    #[test]
    fn missing_or_malformed_values_name_the_variable() {
        assert_eq!(
            resolve(Env::Stage, None, Some("app"), env_of(&[])).unwrap_err(),
            "no stage registry: pass --registry or set ECR_REGISTRY_STAGE (e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com)"
        );
        assert!(resolve(Env::Dev, Some("https://x"), Some("app"), env_of(&[])).is_err());
        assert!(resolve(Env::Dev, Some("r"), Some("App"), env_of(&[])).is_err());
        assert_eq!(
            resolve(Env::Dev, Some("r"), None, env_of(&[]))
                .unwrap()
                .repository,
            DEFAULT_REPOSITORY
        );
    }
}
