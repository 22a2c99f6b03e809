//! Signatures: made at the stage push, checked by the promotion gate before
//! anything is copied, carried to prod with the images and verified there.
//!
//! Only the stage pipeline holds the signing key (in production a KMS key
//! only the stage workflow's role may sign with), so a valid signature says
//! the stage pipeline pushed exactly this digest: anything else that can
//! push to stage can write tags and labels, but not that.

use std::path::Path;

use anyhow::{bail, ensure, Context as _, Result};

use super::build::Outcome;
use super::{message, reason, short};
use crate::arch::Arch;
use crate::cli::SigningArgs;
use crate::cosign::{self, Key, DEFAULT_PUBLIC_KEY};
use crate::error::Usage;
use crate::exec::{concurrently, Reply, Runner};
use crate::target::{Env, Target};
use crate::{github, skopeo};

/// `COSIGN_REPOSITORY` makes cosign keep signatures in another repository,
/// where promotion would neither find nor copy them.
fn check_environment() -> Result<()> {
    ensure!(std::env::var_os("COSIGN_REPOSITORY").is_none(), Usage(
        "COSIGN_REPOSITORY is set: signatures must stay next to the images, where promote finds and copies them; unset it".into(),
    ));
    Ok(())
}

/// The signing key's flag, and the variable behind it.
const SIGNING_FLAG: &str = "--signing-key";
const SIGNING_KEY_VAR: &str = "COSIGN_KEY";

/// Whether `value` came from the variable `var` (a CI job sets it) rather
/// than from its flag: the variable holds that very value.
fn from_variable(var: &str, value: &str) -> bool {
    std::env::var(var).is_ok_and(|set| set == value)
}

/// What supplied a key's `value`, for an error to name: the variable behind
/// `flag`, or the flag.
fn source(flag: &str, var: &str, value: &str) -> String {
    match from_variable(var, value) {
        true => format!("{var} (the variable behind {flag})"),
        false => flag.to_string(),
    }
}

/// The key a push signs with: stage pushes are signed and need one, every
/// other push (dev) is not signed.
pub fn signing_key(args: &SigningArgs, env: Env, push: bool, root: &Path) -> Result<Option<Key>> {
    let given = args.signing_key.as_deref().filter(|key| !key.is_empty());
    if !push || env != Env::Stage {
        // COSIGN_KEY is set for a whole workflow job, every step of which
        // then carries it: only a typed --signing-key is refused.
        if given.is_some_and(|key| !from_variable(SIGNING_KEY_VAR, key)) {
            let why = match push {
                true => "dev pushes are not signed",
                false => "a build without --push pushes nothing",
            };
            bail!(Usage(format!(
                "--signing-key signs stage pushes, and {why}; push with --env stage, or drop --signing-key"
            )));
        }
        return Ok(None);
    }
    check_environment()?;
    let key = given.map(|key| Key(key.to_string())).ok_or_else(|| {
        Usage("stage pushes are signed: pass --signing-key or set COSIGN_KEY (a cosign key file, or awskms:///alias/NAME in CI)".into())
    })?;
    let password_set = std::env::var_os(cosign::PASSWORD_VAR).is_some();
    let named = source(SIGNING_FLAG, SIGNING_KEY_VAR, &key.0);
    cosign::check_signing_key(&key, root, password_set, &named).map_err(Usage)?;
    Ok(Some(key))
}

/// Where [`check_key`] writes the signing key's public half: build verifies
/// a stage image it would reuse against it.
pub const SIGNING_PUBLIC_KEY: &str = "target/xtask/signing.pub";

/// The signing key works, checked before anything is built or pushed:
/// cosign derives its public half and signs that file with the key, which
/// needs what signing an image needs (a private key file and its password,
/// or a KMS signing key these credentials may read and sign with).
/// Unchecked, a public key, a wrong password or a missing `kms:Sign` failed
/// only at `cosign sign`, after the push.
pub fn check_key(runner: &Runner, root: &Path, key: &Key) -> Result<()> {
    if !runner.dry_run {
        let file = root.join(SIGNING_PUBLIC_KEY);
        std::fs::create_dir_all(file.parent().unwrap_or(root))
            .context("cannot create target/xtask")?;
    }
    let steps = [
        cosign::public_key(key, SIGNING_PUBLIC_KEY),
        cosign::sign_blob(key, SIGNING_PUBLIC_KEY),
    ];
    let failed = steps.iter().find_map(|step| match runner.ask("", step) {
        Reply::Failed { why, .. } => Some((step.args[0].clone(), why)),
        Reply::DryRun | Reply::Out(_) => None,
    });
    let Some((command, why)) = failed else {
        return Ok(());
    };
    let answer = reason(&why);
    if key.is_kms() {
        // The service's answer: a missing key, a denied role, no network.
        bail!("cannot use the KMS key {} (cosign {command}: {answer}); check that it is a signing key (SIGN_VERIFY) in this region and that these AWS credentials may use it (kms:GetPublicKey, kms:Sign)", key.0);
    }
    bail!(Usage(format!(
        "{}: cosign cannot sign with {} ({answer}); give the private key file (cosign.key, not cosign.pub) with its password in {}",
        source(SIGNING_FLAG, SIGNING_KEY_VAR, &key.0),
        key.0,
        cosign::PASSWORD_VAR
    )))
}

/// The public key promote verifies with, checked before anything runs.
/// An empty value (an unset repository variable) means the default.
pub fn verify_key(text: &str, root: &Path) -> Result<Key> {
    check_environment()?;
    if !text.is_empty() && text != DEFAULT_PUBLIC_KEY {
        let key = Key(text.to_string());
        key.check_file(root, &source("--verify-key", "COSIGN_PUBLIC_KEY", text))
            .map_err(Usage)?;
        return Ok(key);
    }
    // Neither given: the default, which the repository commits.
    let key = Key(DEFAULT_PUBLIC_KEY.to_string());
    let source = format!("--verify-key (COSIGN_PUBLIC_KEY; by default {DEFAULT_PUBLIC_KEY})");
    key.check_file(root, &source).map_err(|why| {
        Usage(format!(
            "{why}; commit the stage signing key's public half as {DEFAULT_PUBLIC_KEY} (cosign public-key --key awskms:///alias/NAME > {DEFAULT_PUBLIC_KEY})"
        ))
    })?;
    Ok(key)
}

/// Sign a pushed image by its digest, and say so.
/// A dry run has no digest yet: `<digest>` stands for it.
pub fn sign(
    runner: &Runner,
    prefix: &str,
    target: &Target,
    digest: Option<&str>,
    key: &Key,
) -> Result<()> {
    let digest = digest.unwrap_or(super::DRY_RUN_DIGEST);
    runner
        .run_with_retry(prefix, &cosign::sign(target, digest, key))
        .with_context(|| format!("signing {} failed", target.at(digest)))?;
    if !runner.dry_run {
        eprintln!("{prefix}signed {digest} with {}", key.0);
    }
    Ok(())
}

/// Under GitHub Actions, each pushed variant's signature status.
pub fn push_summary(runner: &Runner, outcomes: &[Outcome], key: Option<&Key>) {
    // Only stage pushes are signed: a dev push's page needs no section.
    let Some(key) = key else { return };
    let mut rows = vec![["variant", "signature"].map(String::from)];
    for outcome in outcomes {
        let status = match &outcome.result {
            Ok(Some(digest)) => format!("signed `{digest}` with `{}`", key.0),
            // `Ok(None)` is a dry run's, and a dry run writes no summary.
            _ => "the variant failed (see the error); a re-run finishes it".to_string(),
        };
        rows.push([outcome.variant.clone(), status]);
    }
    let table = github::markdown_table(&rows);
    github::summary(runner, &format!("### Signatures\n\n{table}"));
}

/// One variant's signature, as the gate found it in stage and prod.
pub struct Signature {
    /// cosign 2's `sha256-<hex>.sig` tag, in stage and in prod.
    pub tag: String,
    /// The digest of stage's signature manifest; `None` in a dry run.
    pub digest: Option<String>,
    /// Prod already has it, at that digest.
    pub done: bool,
}

/// What one read answered: `Err((why, exit code))` when the tool failed.
type Answer = Result<String, (String, Option<i32>)>;

fn answer(reply: Reply) -> Answer {
    match reply {
        Reply::Out(out) => Ok(out),
        Reply::Failed { why, code } => Err((why, code)),
        Reply::DryRun => Err(("dry run".into(), None)),
    }
}

/// The gate's signature check for stage's image `digest` (`None` in a dry
/// run): a signature `key` verifies, made for this digest. The reason when
/// not: unsigned, signed with another key, or a signature for another digest.
pub fn check(
    runner: &Runner,
    prefix: &str,
    (stage, prod): (&Target, &Target),
    arch: Arch,
    digest: Option<&str>,
    key: &Key,
) -> Result<Signature, String> {
    // A dry run prints the same three reads, of the digest it did not read.
    let tag = cosign::signature_tag(digest.unwrap_or("sha256:<stage digest>"));
    let steps = [
        cosign::verify(stage, digest.unwrap_or("<stage digest>"), key, true),
        skopeo::inspect(stage, &tag, arch),
        skopeo::inspect(prod, &tag, arch),
    ];
    let replies = concurrently(&steps, |step| answer(runner.ask(prefix, step)));
    let Some(digest) = digest else {
        return Ok(Signature {
            tag,
            digest: None,
            done: false,
        });
    };
    let [verified, in_stage, in_prod] = replies.try_into().expect("one reply per step");
    let loose = || answer(runner.ask(prefix, &cosign::verify(stage, digest, key, false)));
    let sig_digest = judge(digest, &tag, key, verified, in_stage, loose)?;
    let done = in_prod
        .is_ok_and(|text| skopeo::parse_inspect(&text).is_ok_and(|i| i.digest == sig_digest));
    Ok(Signature {
        tag,
        digest: Some(sig_digest),
        done,
    })
}

/// The verdict on stage's signature of `digest` from cosign's verification
/// (`verified`), the read of the signature tag (`in_stage`), and, only when
/// the verification failed over a signature that is there, a verification
/// of the signature alone (`loose`). Returns the signature manifest's digest.
fn judge(
    digest: &str,
    tag: &str,
    key: &Key,
    verified: Answer,
    in_stage: Answer,
    loose: impl FnOnce() -> Answer,
) -> Result<String, String> {
    let this = short(digest);
    match (verified, in_stage) {
        (Ok(out), Ok(sig)) => {
            let signed = cosign::signed_digests(&out).map_err(message)?;
            if !signed.iter().any(|d| d == digest) {
                return Err(format!(
                    "cosign verified signatures for {}, not for {this}",
                    signed.join(", ")
                ));
            }
            skopeo::parse_inspect(&sig)
                .map(|i| i.digest)
                .map_err(message)
        }
        (Err(_), Err((stderr, _))) if skopeo::is_not_found(&stderr) => Err(format!(
            "unsigned: stage has no signature for {this} (no tag {tag}); only images the stage pipeline pushed and signed are promoted"
        )),
        (_, Err((stderr, _))) => Err(format!(
            "cannot read stage's signature {tag}: {}",
            reason(&stderr)
        )),
        // Only cosign's own verdict says the signature does not verify; any
        // other failure (throttling, refused credentials) leaves it unknown.
        (Err((why, code)), Ok(_)) if code != Some(cosign::NO_MATCHING_SIGNATURES) => {
            Err(cannot_verify(tag, &why))
        }
        (Err((why, _)), Ok(_)) => match loose() {
            Ok(out) => {
                let signed = cosign::signed_digests(&out).map_err(message)?;
                let others: Vec<&str> = signed.iter().map(|d| short(d)).collect();
                Err(format!(
                    "a signature for another digest: {tag} holds the key's signature for {}, not for {this}; stage's tags were moved to another image after signing",
                    others.join(", ")
                ))
            }
            Err((_, Some(cosign::NO_MATCHING_SIGNATURES))) => Err(format!(
                "signed with another key: no signature on {this} verifies with {} (cosign: {})",
                key.0,
                reason(&why)
            )),
            Err((why, _)) => Err(cannot_verify(tag, &why)),
        },
    }
}

/// A verification that got no verdict: cosign's reason, and what to do.
fn cannot_verify(tag: &str, why: &str) -> String {
    format!(
        "cannot verify stage's signature {tag} (cosign: {}); {}",
        reason(why),
        super::unanswered(why, "re-run promote when the registry answers")
    )
}

/// Prod's image `digest` verifies with `key`, for that digest: the signature
/// arrived whole.
pub fn verify_in_prod(
    runner: &Runner,
    prefix: &str,
    prod: &Target,
    digest: Option<&str>,
    key: &Key,
) -> Result<()> {
    let want = digest.unwrap_or("<stage digest>");
    let out = match runner.ask(prefix, &cosign::verify(prod, want, key, true)) {
        Reply::Out(out) => out,
        Reply::DryRun => return Ok(()),
        Reply::Failed { why, .. } => bail!(
            "verification failed: prod's image {} has no signature that {} verifies (cosign: {}); re-run promote, which copies what prod lacks",
            short(want),
            key.0,
            reason(&why)
        ),
    };
    let signed = cosign::signed_digests(&out)?;
    ensure!(
        signed.iter().any(|d| d == want),
        "verification failed: prod's signatures are for {}, not for {}",
        signed.join(", "),
        short(want)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const OTHER: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const SIG: &str = r#"{"Digest": "sha256:5151", "Labels": null, "Architecture": ""}"#;

    fn payload(digest: &str) -> String {
        format!(
            r#"[{{"critical":{{"identity":{{"docker-reference":"r/app"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}]"#
        )
    }

    fn verdict(verified: Answer, in_stage: Answer, loose: Answer) -> Result<String, String> {
        let key = Key("cosign.pub".into());
        judge(
            DIGEST,
            &cosign::signature_tag(DIGEST),
            &key,
            verified,
            in_stage,
            || loose,
        )
    }

    fn no_call() -> Answer {
        Err(("not asked".into(), None))
    }

    /// A failure with cosign's (or skopeo's) exit code.
    fn failed(why: &str, code: i32) -> Answer {
        Err((why.into(), Some(code)))
    }

    #[test]
    fn a_valid_signature_passes_with_its_manifest_digest() {
        assert_eq!(
            verdict(Ok(payload(DIGEST)), Ok(SIG.into()), no_call()),
            Ok("sha256:5151".into())
        );
    }

    #[test]
    fn no_signature_tag_is_unsigned() {
        let why = verdict(
            failed("Error: no signatures found", 10),
            failed(
                "reading manifest sha256-bb.sig in r/app: manifest unknown: manifest unknown",
                1,
            ),
            no_call(),
        )
        .unwrap_err();
        assert!(
            why.starts_with("unsigned: stage has no signature for sha256:bbbbbbbbbbb"),
            "{why}"
        );
    }

    #[test]
    fn a_signature_the_key_does_not_verify_is_another_key() {
        let why = verdict(
            failed("Error: no matching signatures: invalid signature when validating ASN.1 encoded signature", 12),
            Ok(SIG.into()),
            failed("Error: no matching signatures: invalid signature", 12),
        )
        .unwrap_err();
        assert!(why.starts_with("signed with another key: no signature on sha256:bbbbbbbbbbbb verifies with cosign.pub (cosign: Error: no matching signatures: invalid signature when validating"), "{why}");
    }

    #[test]
    fn the_keys_signature_of_another_digest_says_so() {
        let why = verdict(
            failed(
                "Error: no matching signatures: invalid or missing digest in claim",
                12,
            ),
            Ok(SIG.into()),
            Ok(payload(OTHER)),
        )
        .unwrap_err();
        assert!(
            why.starts_with("a signature for another digest: sha256-bbbb"),
            "{why}"
        );
        assert!(
            why.contains("signature for sha256:aaaaaaaaaaaa, not for sha256:bbbbbbbbbbbb;"),
            "{why}"
        );
    }

    #[test]
    fn a_registry_error_is_not_called_unsigned() {
        let why = verdict(
            failed("Error: GET ...: connection refused", 1),
            failed(
                "pinging container registry r: connect: connection refused",
                1,
            ),
            no_call(),
        )
        .unwrap_err();
        assert!(
            why.starts_with("cannot read stage's signature sha256-bbbb"),
            "{why}"
        );
    }

    /// Throttling or refused credentials at cosign's verification, or at the
    /// second one, are no verdict on the key: "signed with another key"
    /// would send the engineer after the wrong problem.
    #[test]
    fn a_verification_without_a_verdict_is_not_called_another_key() {
        let throttled =
            "Error: GET https://r/v2/app/manifests/sha256-bb.sig: TOOMANYREQUESTS: Rate exceeded";
        let refused = "Error: GET https://r/v2/app/manifests/sha256-bb.sig: UNAUTHORIZED: authentication required";
        for (verified, loose) in [
            (failed(throttled, 1), no_call()),
            (failed(refused, 1), no_call()),
            (
                failed("Error: no matching signatures: invalid signature", 12),
                failed(throttled, 1),
            ),
        ] {
            let why = verdict(verified, Ok(SIG.into()), loose).unwrap_err();
            assert!(
                why.starts_with("cannot verify stage's signature sha256-bbbb"),
                "{why}"
            );
            assert!(!why.contains("another key"), "{why}");
        }
        let why = verdict(failed(refused, 1), Ok(SIG.into()), no_call()).unwrap_err();
        assert!(
            why.contains("the registry refused the credentials: check the login"),
            "{why}"
        );
        let why = verdict(failed(throttled, 1), Ok(SIG.into()), no_call()).unwrap_err();
        assert!(
            why.ends_with("re-run promote when the registry answers"),
            "{why}"
        );
    }

    #[test]
    fn a_verification_that_names_another_digest_fails() {
        let why = verdict(Ok(payload(OTHER)), Ok(SIG.into()), no_call()).unwrap_err();
        assert!(why.contains("not for sha256:bbbbbbbbbbb"), "{why}");
    }
}
