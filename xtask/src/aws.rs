//! The aws CLI: the only `aws` command this project runs is the ECR password,
//! which goes straight into `docker login --password-stdin`.

use crate::step::{Step, Tool};

pub const TOOL: Tool = Tool {
    program: "aws",
    install: "install the AWS CLI v2: https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html",
};

/// `aws ecr get-login-password`, with a region and profile only when given:
/// otherwise the aws CLI's own settings (environment, config files, OIDC
/// web identity in CI) apply.
pub fn ecr_password(region: Option<&str>, profile: Option<&str>) -> Step {
    let mut args = vec!["ecr", "get-login-password"];
    if let Some(region) = region {
        args.extend(["--region", region]);
    }
    if let Some(profile) = profile {
        args.extend(["--profile", profile]);
    }
    Step::new(TOOL.program, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_given_options_are_passed() {
        assert_eq!(
            ecr_password(None, None).to_string(),
            "aws ecr get-login-password"
        );
        assert_eq!(
            ecr_password(Some("eu-west-1"), Some("prod")).to_string(),
            "aws ecr get-login-password --region eu-west-1 --profile prod"
        );
    }
}
