//! cosign: signs an image by digest at the stage push, and verifies that
//! signature before promotion (in stage) and after it (in prod).
//!
//! Key-based and offline: no transparency log, no service but the registry
//! (and, for a KMS key, the KMS). cosign 2.x stores a signature as the tag
//! `sha256-<hex>.sig` next to the image, which promotion copies like any
//! other manifest; cosign 3.x stores an OCI 1.1 referrer instead, which
//! skopeo cannot copy (README, "Signatures").
//!
//! A key file's password reaches cosign only through `COSIGN_PASSWORD`,
//! which cosign reads from the environment it inherits: xtask never reads,
//! prints or passes the value.

use std::path::Path;

use anyhow::{Context, Result};

use crate::step::{Step, Tool};
use crate::target::Target;

pub const TOOL: Tool = Tool {
    program: "cosign",
    install: "install cosign 2.x: apt-get install cosign (Debian trixie), or https://github.com/sigstore/cosign/releases/tag/v2.5.0",
};

/// Where cosign reads a key file's password from.
pub const PASSWORD_VAR: &str = "COSIGN_PASSWORD";

/// `cosign verify`'s exit codes (cosign's doc/cosign_exit_codes.md) for the
/// two answers about the signatures themselves: the image has none, or none
/// that the key verifies for it. Any other failure (throttling, refused
/// credentials, a registry that did not answer) says nothing about them.
pub const NO_SIGNATURES: i32 = 10;
pub const NO_MATCHING_SIGNATURES: i32 = 12;

/// The public key promote verifies with unless told otherwise: committed at
/// the repository root.
pub const DEFAULT_PUBLIC_KEY: &str = "cosign.pub";

/// A key reference as cosign takes it: a key file, or a KMS URI such as
/// `awskms:///alias/batch-probe-signing`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key(pub String);

impl Key {
    /// A KMS key is named by a URI (`awskms://`, `gcpkms://`, `hashivault://`
    /// ...); anything else is a file.
    pub fn is_kms(&self) -> bool {
        self.0.contains("://")
    }

    /// A key file must exist (relative paths are from the repository root,
    /// where cosign runs); `source` names the flag or variable it came from.
    pub fn check_file(&self, root: &Path, source: &str) -> Result<(), String> {
        if let Some(rest) = self.0.strip_prefix("awskms://") {
            if !aws_kms_key(rest) {
                return Err(format!(
                    "{source}: {} names no KMS key: cosign reads awskms://[ENDPOINT]/KEY, so write awskms:///alias/NAME (three slashes, no endpoint), or a key's ARN or id after the third",
                    self.0
                ));
            }
        }
        if self.is_kms() || root.join(&self.0).is_file() {
            return Ok(());
        }
        // The key itself where its path belongs (a secret pasted into the
        // variable): never repeated in the error.
        if self.0.contains("-----BEGIN") || self.0.contains('\n') {
            return Err(format!(
                "{source} holds key material, not the path of a key file; write the key to a file and pass its path, or a KMS key such as awskms:///alias/NAME"
            ));
        }
        Err(format!(
            "{source}: there is no key file {}; give a cosign key file or a KMS key such as awskms:///alias/NAME",
            root.join(&self.0).display()
        ))
    }
}

/// Whether `rest` (after `awskms://`) is `[ENDPOINT]/KEY` with KEY an alias,
/// an ARN or a key id, as cosign's own patterns read it: in the common
/// slip `awskms://alias/NAME`, `alias` is taken for the endpoint.
fn aws_kms_key(rest: &str) -> bool {
    let Some((_endpoint, key)) = rest.split_once('/') else {
        return false;
    };
    // A key id: 32 hex digits, dashes between the groups optional, after an
    // optional `mrk` (a multi-region key).
    let id = key.strip_prefix("mrk").unwrap_or(key).replace('-', "");
    key.starts_with("alias/")
        || key.starts_with("arn:")
        || (id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Checks before a signing run: the key exists, and a key file's password is
/// in the environment (cosign would otherwise ask on a terminal there is not).
pub fn check_signing_key(
    key: &Key,
    root: &Path,
    password_set: bool,
    source: &str,
) -> Result<(), String> {
    key.check_file(root, source)?;
    if !key.is_kms() && !password_set {
        return Err(format!(
            "{source}: the key file {} needs its password in {PASSWORD_VAR} (in the environment, never on a command line; empty for a key without one)",
            key.0
        ));
    }
    Ok(())
}

/// The tag cosign 2.x stores the signatures of `digest` under
/// (`sha256:ab..` -> `sha256-ab...sig`), as `cosign triangulate` prints it.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replace(':', "-"))
}

/// `cosign <args>` on the manifest `digest` in `target`. Loopback registries
/// speak plain HTTP; cosign must be told, and only there.
fn on_image(target: &Target, digest: &str, mut args: Vec<&str>) -> Step {
    let image = target.at(digest);
    args.extend(target.is_loopback().then_some("--allow-http-registry"));
    Step::new(TOOL.program, args.into_iter().chain([image.as_str()]))
}

/// Sign the manifest `digest` in `target` with `key` and push the signature
/// next to it. By digest, so what is signed is what was pushed, whatever
/// the tags do afterwards; no transparency log upload.
pub fn sign(target: &Target, digest: &str, key: &Key) -> Step {
    let args = vec!["sign", "--key", &key.0, "--tlog-upload=false", "--yes"];
    on_image(target, digest, args)
}

/// Write the public half of the signing `key` (a key file, its password
/// from `COSIGN_PASSWORD` as for signing, or a KMS key) to `outfile`.
pub fn public_key(key: &Key, outfile: &str) -> Step {
    let args = ["public-key", "--key", &key.0, "--outfile", outfile];
    Step::new(TOOL.program, args)
}

/// Sign the file `blob` with `key`, offline, printing the signature: what
/// proves a key can sign (a KMS key's `kms:Sign`, a key file's password)
/// without touching a registry.
pub fn sign_blob(key: &Key, blob: &str) -> Step {
    let args = [
        "sign-blob",
        "--key",
        &key.0,
        "--tlog-upload=false",
        "--yes",
        blob,
    ];
    Step::new(TOOL.program, args)
}

/// Verify that the manifest `digest` in `target` carries a signature `key`
/// verifies, for that digest. With `check_claims` false cosign checks only
/// the signature, not what it signs: how the gate tells "signed for another
/// digest" from "signed with another key".
pub fn verify(target: &Target, digest: &str, key: &Key, check_claims: bool) -> Step {
    // Key-based signatures made without the log (see `sign`).
    let mut args = vec!["verify", "--key", &key.0, "--insecure-ignore-tlog=true"];
    if !check_claims {
        args.push("--check-claims=false");
    }
    on_image(target, digest, args)
}

/// The digests the verified signatures sign, from `cosign verify`'s JSON
/// (one simple-signing payload per signature).
pub fn signed_digests(stdout: &str) -> Result<Vec<String>> {
    let payloads: Vec<serde_json::Value> = serde_json::from_str(stdout.trim())
        .context("cosign verify did not answer with the expected JSON")?;
    let digest = |p: &serde_json::Value| {
        let digest = p.pointer("/critical/image/docker-manifest-digest")?;
        digest.as_str().map(String::from)
    };
    payloads
        .iter()
        .map(digest)
        .collect::<Option<_>>()
        .context("a cosign verify payload has no critical.image.docker-manifest-digest")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::tests::app_in as target;

    #[test]
    fn signs_by_digest_without_the_log() {
        let key = Key("awskms:///alias/stage-signing".into());
        assert_eq!(
            sign(&target("1.dkr.ecr.us-east-1.amazonaws.com"), "sha256:ab", &key).to_string(),
            "cosign sign --key awskms:///alias/stage-signing --tlog-upload=false --yes 1.dkr.ecr.us-east-1.amazonaws.com/app@sha256:ab"
        );
        // Plain HTTP only for loopback registries.
        assert_eq!(
            sign(&target("127.0.0.1:5002"), "sha256:ab", &Key("k.key".into())).to_string(),
            "cosign sign --key k.key --tlog-upload=false --yes --allow-http-registry 127.0.0.1:5002/app@sha256:ab"
        );
    }

    #[test]
    fn verifies_by_digest_with_or_without_claims() {
        let key = Key("cosign.pub".into());
        assert_eq!(
            verify(&target("127.0.0.1:5003"), "sha256:ab", &key, true).to_string(),
            "cosign verify --key cosign.pub --insecure-ignore-tlog=true --allow-http-registry 127.0.0.1:5003/app@sha256:ab"
        );
        assert_eq!(
            verify(&target("r.example"), "sha256:ab", &key, false).to_string(),
            "cosign verify --key cosign.pub --insecure-ignore-tlog=true --check-claims=false r.example/app@sha256:ab"
        );
    }

    #[test]
    fn signature_tag_is_cosign_2s() {
        assert_eq!(signature_tag("sha256:0a1b"), "sha256-0a1b.sig");
    }

    #[test]
    fn reads_what_each_signature_signs() {
        let out = r#"[{"critical":{"identity":{"docker-reference":"127.0.0.1:5002/kmstest"},"image":{"docker-manifest-digest":"sha256:cfd8"},"type":"cosign container image signature"},"optional":null}]"#;
        assert_eq!(signed_digests(out).unwrap(), ["sha256:cfd8"]);
        assert!(signed_digests("Verification for ...").is_err());
    }

    #[test]
    fn key_checks_name_the_source_and_the_fix() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let kms = Key("awskms:///alias/x".into());
        assert!(kms.is_kms());
        for good in [
            "awskms://127.0.0.1:4566/alias/x",
            "awskms:///arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "awskms:///1234abcd-12ab-34cd-56ef-1234567890ab",
            "awskms:///mrk-1234abcd12ab34cd56ef1234567890ab",
            "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k",
        ] {
            assert_eq!(
                Key(good.into()).check_file(root, "--signing-key"),
                Ok(()),
                "{good}"
            );
        }
        // Two slashes: `alias` is read as the endpoint, and cosign fails
        // only when it signs, after the push.
        for bad in [
            "awskms://alias/x",
            "awskms://alias/cafe",
            "awskms://x",
            "awskms:///",
            "awskms:///abc",
        ] {
            let err = Key(bad.into())
                .check_file(root, "--signing-key")
                .unwrap_err();
            assert_eq!(
                err,
                format!("--signing-key: {bad} names no KMS key: cosign reads awskms://[ENDPOINT]/KEY, so write awskms:///alias/NAME (three slashes, no endpoint), or a key's ARN or id after the third")
            );
        }
        assert_eq!(
            check_signing_key(&kms, root, false, "--signing-key"),
            Ok(())
        );
        let missing = Key("no-such.key".into());
        let err = check_signing_key(&missing, root, true, "--signing-key").unwrap_err();
        let want = format!(
            "--signing-key: there is no key file {}; give a cosign key file or a KMS key such as awskms:///alias/NAME",
            root.join("no-such.key").display()
        );
        assert_eq!(err, want);
        // A file that exists, without its password in the environment.
        let file = Key("Cargo.toml".into());
        let err = check_signing_key(&file, root, false, "COSIGN_KEY").unwrap_err();
        assert!(
            err.contains("needs its password in COSIGN_PASSWORD"),
            "{err}"
        );
        assert_eq!(check_signing_key(&file, root, true, "COSIGN_KEY"), Ok(()));
    }
}
