//! The `.aws-architecture` model: which image variants exist and the platform
//! each one is built for.
//!
//! The file is a JSON object, one key per `Dockerfile-<variant>`:
//! `{"gpu": "linux/amd64", "cpu": "linux/arm64"}`. It is parsed here, once, and
//! every command, the Makefile and the workflows read it through this model.
//! Nothing has a default: the version this replaces defaulted a missing file or
//! key to `linux/amd64`, which is how an image gets built for the wrong machine.
//! The file also marks the repository root, which [`project_root`] finds.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Serialize;
use serde_json::Value;

pub const FILE: &str = ".aws-architecture";
const EXAMPLE: &str = r#"{"gpu": "linux/amd64", "cpu": "linux/arm64"}"#;
const ALLOWED: &str = "linux/amd64, linux/arm64";

/// A CPU architecture an image can be built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    pub fn parse_platform(platform: &str) -> Option<Arch> {
        [Arch::Amd64, Arch::Arm64]
            .into_iter()
            .find(|arch| arch.platform() == platform)
    }

    /// The architecture as Docker and the OCI image config spell it; also the
    /// `<arch>` part of every tag (never `linux/...`: `/` is not allowed in a tag).
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    pub fn platform(self) -> &'static str {
        match self {
            Arch::Amd64 => "linux/amd64",
            Arch::Arm64 => "linux/arm64",
        }
    }

    /// The GitHub-hosted runner of this architecture, so Docker always builds
    /// natively instead of emulating the target.
    pub fn runner(self) -> &'static str {
        match self {
            Arch::Amd64 => "ubuntu-latest",
            Arch::Arm64 => "ubuntu-24.04-arm",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One image: a name (the key, and the `Dockerfile-<name>` suffix) and its architecture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    pub name: String,
    pub arch: Arch,
}

impl Variant {
    pub fn dockerfile(&self) -> String {
        format!("Dockerfile-{}", self.name)
    }
}

/// The parsed `.aws-architecture`: variants in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Architectures {
    pub variants: Vec<Variant>,
}

impl Architectures {
    /// Read `.aws-architecture` from `root` and check it against the
    /// `Dockerfile-*` files beside it.
    pub fn load(root: &Path) -> Result<Architectures, String> {
        let path = root.join(FILE);
        let text = std::fs::read_to_string(&path).map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => format!(
                "{FILE}: not found in {}; create it with one key per Dockerfile-<variant>, e.g. {EXAMPLE}",
                root.display()
            ),
            _ => format!("{FILE}: cannot read {}: {err}", path.display()),
        })?;
        let dockerfiles = dockerfile_variants(root)
            .map_err(|err| format!("cannot list Dockerfiles in {}: {err}", root.display()))?;
        parse(&text, &dockerfiles)
    }

    /// The variants selected by `--variant`: one by name, or all of them.
    pub fn select(&self, name: Option<&str>) -> Result<Vec<&Variant>, String> {
        match name {
            None | Some("all") => Ok(self.variants.iter().collect()),
            Some(name) => match self.variants.iter().find(|v| v.name == name) {
                Some(variant) => Ok(vec![variant]),
                None => Err(format!(
                    "--variant {name}: not in {FILE}; use one of: {}, all",
                    self.names().join(", ")
                )),
            },
        }
    }

    pub fn names(&self) -> Vec<&str> {
        self.variants.iter().map(|v| v.name.as_str()).collect()
    }
}

/// The `<variant>` of every `Dockerfile-<variant>` in `root`, sorted.
fn dockerfile_variants(root: &Path) -> std::io::Result<Vec<String>> {
    let entries = std::fs::read_dir(root)?.collect::<std::io::Result<Vec<_>>>()?;
    // A directory named Dockerfile-x is no Dockerfile.
    let files = entries.iter().filter(|entry| !entry.path().is_dir());
    let names = files.map(|entry| entry.file_name().to_string_lossy().into_owned());
    Ok(variants_of_dockerfiles(names))
}

/// The `<variant>` of every `Dockerfile-<variant>` among file names, sorted:
/// a directory's, or a commit's tree's.
pub fn variants_of_dockerfiles(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut variants: Vec<String> = names
        .into_iter()
        // `Dockerfile-gpu.dockerignore` is BuildKit's per-Dockerfile ignore
        // file, not a variant; nor are an editor's backups (`.orig`, `~`).
        .filter_map(|name| name.strip_prefix("Dockerfile-").map(str::to_string))
        .filter(|variant| !variant.is_empty() && !variant.contains('.') && !variant.ends_with('~'))
        .collect();
    variants.sort();
    variants
}

/// Parse the file's text, given the variants that have a Dockerfile. Pure:
/// every error is one line naming the file, the key and what is allowed.
pub fn parse(text: &str, dockerfiles: &[String]) -> Result<Architectures, String> {
    let invalid = |err: serde_json::Error| {
        format!("{FILE}: invalid JSON ({err}); expected an object like {EXAMPLE}")
    };
    // A byte-order mark, which some editors write, is no JSON.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let value: Value = serde_json::from_str(text).map_err(invalid)?;
    if !value.is_object() {
        return Err(format!(
            "{FILE}: expected a JSON object mapping each variant to a platform, like {EXAMPLE}; found {}",
            type_name(&value)
        ));
    }
    // Parsed a second time, in order and keeping duplicates, which a
    // `serde_json::Map` would silently collapse to the last one.
    let entries = serde_json::Deserializer::from_str(text)
        .deserialize_map(Entries)
        .map_err(invalid)?;
    if entries.is_empty() {
        return Err(format!(
            "{FILE}: no variants; add one key per Dockerfile-<variant>, e.g. {EXAMPLE}"
        ));
    }
    let mut variants: Vec<Variant> = Vec::new();
    for (name, value) in entries {
        if variants.iter().any(|v| v.name == name) {
            return Err(format!(
                "{FILE}: key \"{name}\" appears twice; keep one entry per variant"
            ));
        }
        if !is_valid_variant_name(&name) {
            return Err(format!(
                "{FILE}: key \"{name}\" is not a valid variant name; use lowercase letters and digits (it becomes part of image tags and of the Dockerfile-<variant> name)"
            ));
        }
        if name == "all" {
            return Err(format!(
                "{FILE}: key \"all\" is reserved: `--variant all` means every variant, so this one could never be picked alone; rename it (and its Dockerfile-all)"
            ));
        }
        let Value::String(platform) = &value else {
            return Err(format!(
                "{FILE}: key \"{name}\" must be a string, one of {ALLOWED}; found {}",
                type_name(&value)
            ));
        };
        let Some(arch) = Arch::parse_platform(platform) else {
            let hint = match platform.as_str() {
                "amd64" | "arm64" => format!(" (did you mean \"linux/{platform}\"?)"),
                _ => String::new(),
            };
            return Err(format!(
                "{FILE}: key \"{name}\" has platform \"{platform}\"{hint}; allowed: {ALLOWED}"
            ));
        };
        if name == "gpu" && arch == Arch::Arm64 {
            return Err(format!(
                "{FILE}: key \"gpu\" is linux/arm64, but AWS Batch GPU compute environments are amd64-only; use \"linux/amd64\""
            ));
        }
        if !dockerfiles.contains(&name) {
            return Err(format!(
                "{FILE}: key \"{name}\" has no Dockerfile-{name} beside it; add Dockerfile-{name} or remove the key (Dockerfiles found: {})",
                list_or_none(dockerfiles)
            ));
        }
        variants.push(Variant { name, arch });
    }
    if let Some(orphan) = dockerfiles
        .iter()
        .find(|d| !variants.iter().any(|v| &v.name == *d))
    {
        if !is_valid_variant_name(orphan) {
            return Err(format!(
                "{FILE}: Dockerfile-{orphan} is beside it, but \"{orphan}\" is not a valid variant name; rename the file to Dockerfile-<at most 32 lowercase letters and digits> and add that key"
            ));
        }
        return Err(format!(
            "{FILE}: Dockerfile-{orphan} has no key \"{orphan}\"; add \"{orphan}\": \"linux/amd64\" or \"linux/arm64\" (there is no default platform)"
        ));
    }
    Ok(Architectures { variants })
}

fn is_valid_variant_name(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=32).contains(&name.len()) && name.chars().all(allowed)
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn list_or_none(items: &[String]) -> String {
    let files: Vec<String> = items.iter().map(|v| format!("Dockerfile-{v}")).collect();
    if files.is_empty() {
        return "none".to_string();
    }
    files.join(", ")
}

/// Collects the top-level object's entries in file order, duplicates included.
struct Entries;

impl<'de> Visitor<'de> for Entries {
    type Value = Vec<(String, Value)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(entries)
    }
}

/// The repository to work on: `--root`, else `XTASK_ROOT` (unless empty),
/// else the nearest directory from `cwd` upwards that holds
/// `.aws-architecture`. Never the checkout the binary was compiled in: a
/// binary run elsewhere must not quietly plan another repository. Errors
/// name where the value came from.
pub fn project_root(
    flag: Option<PathBuf>,
    var: Option<String>,
    cwd: &Path,
) -> Result<PathBuf, String> {
    let (dir, source) = match (flag, var) {
        (Some(dir), _) if dir.as_os_str().is_empty() => {
            return Err("--root is empty; pass the repository root".into())
        }
        (Some(dir), _) => (dir, "--root".to_string()),
        (None, Some(dir)) => (PathBuf::from(&dir), format!("XTASK_ROOT={dir}")),
        (None, None) => {
            let found = cwd.ancestors().find(|dir| dir.join(FILE).is_file());
            return found.map(Path::to_path_buf).ok_or_else(|| {
                format!(
                    "{FILE}: not found in {} or any directory above it; run cargo xtask inside the repository, or pass --root DIR",
                    cwd.display()
                )
            });
        }
    };
    if dir.join(FILE).is_file() {
        return Ok(dir);
    }
    if !dir.is_dir() {
        return Err(format!(
            "{source}: {} is not a directory; point it at the repository root, which holds {FILE}",
            dir.display()
        ));
    }
    Err(format!(
        "{FILE}: not found in {} (from {source}); point it at the repository root, which holds {FILE}",
        dir.display()
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The shipped variants: gpu on amd64, cpu on arm64.
    pub(crate) fn shipped() -> [Variant; 2] {
        [
            Variant {
                name: "gpu".into(),
                arch: Arch::Amd64,
            },
            Variant {
                name: "cpu".into(),
                arch: Arch::Arm64,
            },
        ]
    }

    fn both() -> Vec<String> {
        vec!["cpu".into(), "gpu".into()]
    }

    #[test]
    fn parses_the_shipped_file_in_order() {
        let arch = parse(r#"{"gpu": "linux/amd64", "cpu": "linux/arm64"}"#, &both()).unwrap();
        assert_eq!(
            arch.variants,
            vec![
                Variant {
                    name: "gpu".into(),
                    arch: Arch::Amd64
                },
                Variant {
                    name: "cpu".into(),
                    arch: Arch::Arm64
                },
            ]
        );
    }

    #[test]
    fn variants_are_not_limited_to_two() {
        let files = vec!["cpu".into(), "gpu".into(), "tiny".into()];
        let arch = parse(
            r#"{"gpu": "linux/amd64", "cpu": "linux/arm64", "tiny": "linux/amd64"}"#,
            &files,
        )
        .unwrap();
        assert_eq!(arch.names(), ["gpu", "cpu", "tiny"]);
        let one = parse(r#"{"cpu": "linux/amd64"}"#, &["cpu".into()]).unwrap();
        assert_eq!(one.names(), ["cpu"]);
    }

    /// Every malformed input, and the exact one-line error it gets.
    #[test]
    fn malformed_inputs_get_exact_errors() {
        let cases: &[(&str, &str)] = &[
            (
                "",
                r#".aws-architecture: invalid JSON (EOF while parsing a value at line 1 column 0); expected an object like {"gpu": "linux/amd64", "cpu": "linux/arm64"}"#,
            ),
            (
                "{",
                r#".aws-architecture: invalid JSON (EOF while parsing an object at line 1 column 1); expected an object like {"gpu": "linux/amd64", "cpu": "linux/arm64"}"#,
            ),
            (
                r#"{"gpu": "linux/amd64",}"#,
                r#".aws-architecture: invalid JSON (trailing comma at line 1 column 23); expected an object like {"gpu": "linux/amd64", "cpu": "linux/arm64"}"#,
            ),
            (
                r#"{gpu: "linux/amd64"}"#,
                r#".aws-architecture: invalid JSON (key must be a string at line 1 column 2); expected an object like {"gpu": "linux/amd64", "cpu": "linux/arm64"}"#,
            ),
            (
                r#"{"gpu": "linux/amd64"} {}"#,
                r#".aws-architecture: invalid JSON (trailing characters at line 1 column 24); expected an object like {"gpu": "linux/amd64", "cpu": "linux/arm64"}"#,
            ),
            (
                r#"["linux/amd64"]"#,
                r#".aws-architecture: expected a JSON object mapping each variant to a platform, like {"gpu": "linux/amd64", "cpu": "linux/arm64"}; found an array"#,
            ),
            (
                r#""linux/amd64""#,
                r#".aws-architecture: expected a JSON object mapping each variant to a platform, like {"gpu": "linux/amd64", "cpu": "linux/arm64"}; found a string"#,
            ),
            (
                "null",
                r#".aws-architecture: expected a JSON object mapping each variant to a platform, like {"gpu": "linux/amd64", "cpu": "linux/arm64"}; found null"#,
            ),
            (
                "42",
                r#".aws-architecture: expected a JSON object mapping each variant to a platform, like {"gpu": "linux/amd64", "cpu": "linux/arm64"}; found a number"#,
            ),
            (
                "{}",
                r#".aws-architecture: no variants; add one key per Dockerfile-<variant>, e.g. {"gpu": "linux/amd64", "cpu": "linux/arm64"}"#,
            ),
            (
                r#"{"gpu": 1, "cpu": "linux/arm64"}"#,
                r#".aws-architecture: key "gpu" must be a string, one of linux/amd64, linux/arm64; found a number"#,
            ),
            (
                r#"{"gpu": null, "cpu": "linux/arm64"}"#,
                r#".aws-architecture: key "gpu" must be a string, one of linux/amd64, linux/arm64; found null"#,
            ),
            (
                r#"{"gpu": ["linux/amd64"], "cpu": "linux/arm64"}"#,
                r#".aws-architecture: key "gpu" must be a string, one of linux/amd64, linux/arm64; found an array"#,
            ),
            (
                r#"{"gpu": {"platform": "linux/amd64"}, "cpu": "linux/arm64"}"#,
                r#".aws-architecture: key "gpu" must be a string, one of linux/amd64, linux/arm64; found an object"#,
            ),
            (
                r#"{"gpu": true, "cpu": "linux/arm64"}"#,
                r#".aws-architecture: key "gpu" must be a string, one of linux/amd64, linux/arm64; found a boolean"#,
            ),
            (
                r#"{"gpu": "linux/386", "cpu": "linux/arm64"}"#,
                r#".aws-architecture: key "gpu" has platform "linux/386"; allowed: linux/amd64, linux/arm64"#,
            ),
            (
                r#"{"gpu": "amd64", "cpu": "linux/arm64"}"#,
                r#".aws-architecture: key "gpu" has platform "amd64" (did you mean "linux/amd64"?); allowed: linux/amd64, linux/arm64"#,
            ),
            (
                r#"{"gpu": "linux/amd64", "cpu": "linux/arm64/v8"}"#,
                r#".aws-architecture: key "cpu" has platform "linux/arm64/v8"; allowed: linux/amd64, linux/arm64"#,
            ),
            (
                r#"{"gpu": "LINUX/AMD64", "cpu": "linux/arm64"}"#,
                r#".aws-architecture: key "gpu" has platform "LINUX/AMD64"; allowed: linux/amd64, linux/arm64"#,
            ),
            (
                r#"{"gpu": " linux/amd64", "cpu": "linux/arm64"}"#,
                r#".aws-architecture: key "gpu" has platform " linux/amd64"; allowed: linux/amd64, linux/arm64"#,
            ),
            (
                r#"{"gpu": "", "cpu": "linux/arm64"}"#,
                r#".aws-architecture: key "gpu" has platform ""; allowed: linux/amd64, linux/arm64"#,
            ),
            (
                r#"{"gpu": "windows/amd64", "cpu": "linux/arm64"}"#,
                r#".aws-architecture: key "gpu" has platform "windows/amd64"; allowed: linux/amd64, linux/arm64"#,
            ),
            (
                r#"{"gpu": "linux/arm64", "cpu": "linux/arm64"}"#,
                r#".aws-architecture: key "gpu" is linux/arm64, but AWS Batch GPU compute environments are amd64-only; use "linux/amd64""#,
            ),
            (
                r#"{"gpu": "linux/amd64"}"#,
                r#".aws-architecture: Dockerfile-cpu has no key "cpu"; add "cpu": "linux/amd64" or "linux/arm64" (there is no default platform)"#,
            ),
            (
                r#"{"gpu": "linux/amd64", "cpu": "linux/arm64", "tpu": "linux/amd64"}"#,
                r#".aws-architecture: key "tpu" has no Dockerfile-tpu beside it; add Dockerfile-tpu or remove the key (Dockerfiles found: Dockerfile-cpu, Dockerfile-gpu)"#,
            ),
            (
                r#"{"gpu": "linux/amd64", "gpu": "linux/amd64", "cpu": "linux/arm64"}"#,
                r#".aws-architecture: key "gpu" appears twice; keep one entry per variant"#,
            ),
            (
                r#"{"GPU": "linux/amd64", "cpu": "linux/arm64"}"#,
                r#".aws-architecture: key "GPU" is not a valid variant name; use lowercase letters and digits (it becomes part of image tags and of the Dockerfile-<variant> name)"#,
            ),
            (
                r#"{"": "linux/amd64"}"#,
                r#".aws-architecture: key "" is not a valid variant name; use lowercase letters and digits (it becomes part of image tags and of the Dockerfile-<variant> name)"#,
            ),
            (
                r#"{"g/pu": "linux/amd64"}"#,
                r#".aws-architecture: key "g/pu" is not a valid variant name; use lowercase letters and digits (it becomes part of image tags and of the Dockerfile-<variant> name)"#,
            ),
            (
                r#"{"all": "linux/amd64", "cpu": "linux/arm64"}"#,
                r#".aws-architecture: key "all" is reserved: `--variant all` means every variant, so this one could never be picked alone; rename it (and its Dockerfile-all)"#,
            ),
        ];
        assert!(cases.len() >= 20);
        for (input, expected) in cases {
            let got = parse(input, &both()).expect_err(input);
            assert_eq!(&got, expected, "input: {input}");
            assert!(!got.contains('\n'), "one line: {got}");
        }
    }

    /// What is beside the file, as a directory lists it: a directory named
    /// Dockerfile-x, a bare `Dockerfile-` and an editor's backup are no
    /// Dockerfiles; a Dockerfile whose name can be no variant says to rename
    /// it; a BOM, which some editors write, is not JSON's problem.
    #[test]
    fn what_is_beside_the_file_is_read_as_a_person_meant_it() {
        let dir = std::env::temp_dir().join(format!("xtask-arch-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("Dockerfile-dir")).unwrap();
        std::fs::write(dir.join("Dockerfile-gpu"), "FROM scratch\n").unwrap();
        std::fs::write(dir.join("Dockerfile-"), "FROM scratch\n").unwrap();
        std::fs::write(dir.join("Dockerfile-gpu~"), "FROM scratch\n").unwrap();
        std::fs::write(dir.join("Dockerfile-gpu.orig"), "FROM scratch\n").unwrap();
        std::fs::write(dir.join(FILE), "\u{feff}{\"gpu\": \"linux/amd64\"}").unwrap();
        let loaded = Architectures::load(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(loaded.unwrap().names(), ["gpu"]);
        let files = vec!["GPU2".into(), "gpu".into()];
        let err = parse(r#"{"gpu": "linux/amd64"}"#, &files).unwrap_err();
        assert_eq!(
            err,
            ".aws-architecture: Dockerfile-GPU2 is beside it, but \"GPU2\" is not a valid variant name; rename the file to Dockerfile-<at most 32 lowercase letters and digits> and add that key"
        );
    }

    #[test]
    fn no_dockerfiles_at_all_is_named() {
        let err = parse(r#"{"cpu": "linux/arm64"}"#, &[]).unwrap_err();
        assert!(err.ends_with("(Dockerfiles found: none)"), "{err}");
    }

    #[test]
    fn select_by_name_or_all() {
        let arch = parse(r#"{"gpu": "linux/amd64", "cpu": "linux/arm64"}"#, &both()).unwrap();
        assert_eq!(arch.select(None).unwrap().len(), 2);
        assert_eq!(arch.select(Some("all")).unwrap().len(), 2);
        assert_eq!(arch.select(Some("cpu")).unwrap()[0].arch, Arch::Arm64);
        assert_eq!(
            arch.select(Some("tpu")).unwrap_err(),
            "--variant tpu: not in .aws-architecture; use one of: gpu, cpu, all"
        );
    }

    /// Where the root comes from, and errors that name that source.
    #[test]
    fn project_root_table() {
        let repo = std::env::temp_dir().join(format!("xtask-root-{}", std::process::id()));
        let inner = repo.join("app/src");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::write(repo.join(FILE), "{}").unwrap();
        let elsewhere = std::env::temp_dir();
        let var = |dir: &Path| Some(dir.display().to_string());
        assert_eq!(project_root(None, None, &inner), Ok(repo.clone()));
        assert_eq!(
            project_root(Some(repo.clone()), None, &elsewhere),
            Ok(repo.clone())
        );
        assert_eq!(project_root(None, var(&repo), &elsewhere), Ok(repo.clone()));
        assert_eq!(
            project_root(Some(repo.clone()), Some(String::new()), &elsewhere),
            Ok(repo.clone())
        );
        let missing = repo.join("no-such-dir");
        let cases: [(Option<PathBuf>, Option<String>, &str); 6] = [
            (Some(PathBuf::new()), None, "--root is empty"),
            (
                Some(missing.clone()),
                None,
                &format!("--root: {} is not a directory", missing.display()),
            ),
            (
                None,
                var(&missing),
                &format!("XTASK_ROOT={0}: {0} is not a directory", missing.display()),
            ),
            (Some(inner.clone()), None, "(from --root)"),
            (
                None,
                var(&inner),
                &format!("(from XTASK_ROOT={})", inner.display()),
            ),
            (None, None, "or any directory above it"),
        ];
        for (flag, env, want) in cases {
            let cwd = if flag.is_none() && env.is_none() {
                Path::new("/")
            } else {
                elsewhere.as_path()
            };
            let err = project_root(flag.clone(), env.clone(), cwd).unwrap_err();
            assert!(err.contains(want), "{flag:?} {env:?}: {err}");
        }
        std::fs::remove_dir_all(&repo).unwrap();
    }
}
