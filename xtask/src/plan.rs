//! The plan: for each selected variant, its platform, runner, Dockerfile,
//! tags and OCI labels. Pure; `plan`, `build` and `push` all start from it,
//! so what is printed is what is built.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use crate::arch::{Arch, Variant};
use crate::tags::{image_tags, Context};

/// Facts about the source that go into the labels.
#[derive(Clone, Debug)]
pub struct Meta {
    /// `org.opencontainers.image.source`, when known.
    pub source: Option<String>,
    /// `org.opencontainers.image.created`, RFC 3339.
    pub created: String,
    /// `org.opencontainers.image.title`.
    pub title: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Image {
    pub variant: String,
    pub platform: &'static str,
    pub arch: Arch,
    pub runner: &'static str,
    pub dockerfile: String,
    /// The image name the tags hang off: `<registry>/<repository>`, or the
    /// bare repository for a local-only build.
    pub image: String,
    pub tags: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

impl Image {
    pub fn references(&self) -> Vec<String> {
        self.tags
            .iter()
            .map(|tag| format!("{}:{tag}", self.image))
            .collect()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub context: String,
    pub revision: String,
    pub images: Vec<Image>,
}

/// The label naming the variant, as the image's own record of what it is.
pub const VARIANT_LABEL: &str = "org.opencontainers.image.variant";
pub const REVISION_LABEL: &str = "org.opencontainers.image.revision";
pub const VERSION_LABEL: &str = "org.opencontainers.image.version";

pub fn plan(
    variants: &[&Variant],
    context: &Context,
    meta: &Meta,
    image: &str,
) -> Result<Plan, String> {
    let images = variants
        .iter()
        .map(|variant| {
            Ok(Image {
                variant: variant.name.clone(),
                platform: variant.arch.platform(),
                arch: variant.arch,
                runner: variant.arch.runner(),
                dockerfile: variant.dockerfile(),
                image: image.to_string(),
                tags: image_tags(context, variant)?,
                labels: labels(context, meta, variant),
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(Plan {
        context: context.describe(),
        revision: context.revision(),
        images,
    })
}

fn labels(context: &Context, meta: &Meta, variant: &Variant) -> BTreeMap<String, String> {
    let oci = |key: &str| format!("org.opencontainers.image.{key}");
    let mut labels = BTreeMap::from([
        (oci("revision"), context.revision()),
        (oci("created"), meta.created.clone()),
        (oci("version"), context.version()),
        (oci("title"), format!("{}-{}", meta.title, variant.name)),
        (VARIANT_LABEL.to_string(), variant.name.clone()),
    ]);
    if let Some(source) = &meta.source {
        labels.insert(oci("source"), source.clone());
    }
    labels
}

/// The GitHub Actions matrix: one leg per variant, on the runner of its architecture.
pub fn matrix(variants: &[Variant]) -> serde_json::Value {
    let include: Vec<_> = variants
        .iter()
        .map(|v| {
            json!({
                "variant": v.name,
                "platform": v.arch.platform(),
                "arch": v.arch.as_str(),
                "runner": v.arch.runner(),
            })
        })
        .collect();
    json!({ "include": include })
}

impl Plan {
    /// The variants it builds, as a log line names them: `gpu, cpu`.
    pub fn variants(&self) -> String {
        let names: Vec<&str> = self.images.iter().map(|i| i.variant.as_str()).collect();
        names.join(", ")
    }

    /// The plan as an aligned table, one row per tag, for people.
    pub fn table(&self) -> String {
        let mut rows =
            vec![["VARIANT", "PLATFORM", "RUNNER", "DOCKERFILE", "TAGS"].map(String::from)];
        for image in &self.images {
            for (i, reference) in image.references().into_iter().enumerate() {
                let first = |s: &str| if i == 0 { s.to_string() } else { String::new() };
                rows.push([
                    first(&image.variant),
                    first(image.platform),
                    first(image.runner),
                    first(&image.dockerfile),
                    reference,
                ]);
            }
        }
        let mut out = format!("context: {}\n", self.context);
        out += &render_table(&rows);
        if let Some(image) = self.images.first() {
            out += "labels:\n";
            for (key, value) in &image.labels {
                let per_variant = key == VARIANT_LABEL || key.ends_with(".title");
                let value = if per_variant { "<per variant>" } else { value };
                out += &format!("  {key}={value}\n");
            }
        }
        out
    }
}

/// Left-aligned columns, two spaces apart, no trailing spaces.
pub fn render_table<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out += line.join("  ").trim_end();
        out += "\n";
    }
    out
}

/// Seconds since the Unix epoch as RFC 3339 UTC (`2026-11-28T05:52:36Z`).
pub fn rfc3339(secs: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::tests::shipped;
    use crate::tags::Sha;

    fn meta() -> Meta {
        Meta {
            source: Some("https://github.com/org/app".into()),
            created: rfc3339(0),
            title: "app".into(),
        }
    }

    fn sample() -> Plan {
        let v = shipped();
        let sha = Sha::parse("0123456789abcdef0123456789abcdef01234567").unwrap();
        plan(
            &[&v[0], &v[1]],
            &Context::PullRequest { number: 42, sha },
            &meta(),
            "r/app",
        )
        .unwrap()
    }

    #[test]
    fn json_snapshot() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(
            json["images"][0],
            json!({
                "variant": "gpu", "platform": "linux/amd64", "arch": "amd64", "runner": "ubuntu-latest",
                "dockerfile": "Dockerfile-gpu", "image": "r/app",
                "tags": ["latest-amd64-gpu", "01234567-amd64-gpu", "PR-42-amd64-gpu"],
                "labels": {
                    "org.opencontainers.image.created": "1970-01-01T00:00:00Z",
                    "org.opencontainers.image.revision": "0123456789abcdef0123456789abcdef01234567",
                    "org.opencontainers.image.source": "https://github.com/org/app",
                    "org.opencontainers.image.title": "app-gpu",
                    "org.opencontainers.image.variant": "gpu",
                    "org.opencontainers.image.version": "01234567",
                }
            })
        );
        assert_eq!(json["images"][1]["runner"], "ubuntu-24.04-arm");
    }

    #[test]
    fn table_snapshot() {
        assert_eq!(
            sample().table(),
            "\
context: pull request #42
VARIANT  PLATFORM     RUNNER            DOCKERFILE      TAGS
gpu      linux/amd64  ubuntu-latest     Dockerfile-gpu  r/app:latest-amd64-gpu
                                                        r/app:01234567-amd64-gpu
                                                        r/app:PR-42-amd64-gpu
cpu      linux/arm64  ubuntu-24.04-arm  Dockerfile-cpu  r/app:latest-arm64-cpu
                                                        r/app:01234567-arm64-cpu
                                                        r/app:PR-42-arm64-cpu
labels:
  org.opencontainers.image.created=1970-01-01T00:00:00Z
  org.opencontainers.image.revision=0123456789abcdef0123456789abcdef01234567
  org.opencontainers.image.source=https://github.com/org/app
  org.opencontainers.image.title=<per variant>
  org.opencontainers.image.variant=<per variant>
  org.opencontainers.image.version=01234567
"
        );
    }

    #[test]
    fn matrix_snapshot() {
        let v = shipped();
        assert_eq!(
            matrix(&v[..2]).to_string(),
            r#"{"include":[{"arch":"amd64","platform":"linux/amd64","runner":"ubuntu-latest","variant":"gpu"},{"arch":"arm64","platform":"linux/arm64","runner":"ubuntu-24.04-arm","variant":"cpu"}]}"#
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_845_156), "2026-11-28T05:52:36Z");
    }
}
