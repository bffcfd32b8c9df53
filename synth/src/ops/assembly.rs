//! Reading a cloud assembly (`cdk.out/`, see construct-library-models.md §11): the stack artifact,
//! its template and its asset manifest, and publishing the file assets the way cdk-assets does
//! (placeholders substituted, objects already present skipped, directories zipped).

use super::aws::{describe, Aws};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// CDK's default bootstrap qualifier; the bucket is `cdk-hnb659fds-assets-<account>-<region>`.
pub const BOOTSTRAP_QUALIFIER: &str = "hnb659fds";

/// CloudFormation's inline `TemplateBody` limit (bytes); larger templates go through S3.
pub const TEMPLATE_BODY_LIMIT: usize = 51_200;

pub fn bootstrap_bucket(account: &str, region: &str) -> String {
    format!("cdk-{BOOTSTRAP_QUALIFIER}-assets-{account}-{region}")
}

/// One stack of an assembly, with what deploying it needs.
#[derive(Debug, Clone)]
pub struct StackArtifact {
    pub dir: PathBuf,
    pub artifact_id: String,
    pub template_path: PathBuf,
    pub template: Value,
    /// The artifact's `properties` (parameters, tags, stackTemplateAssetObjectUrl, …).
    pub properties: Value,
    pub asset_manifest: Option<PathBuf>,
}

impl StackArtifact {
    /// Loads the stack artifact from `dir/manifest.json`. With several stacks, the one whose
    /// `stackName` (or id) is `stack_name` is chosen.
    pub fn load(dir: &Path, stack_name: &str) -> Result<StackArtifact, String> {
        let manifest_path = dir.join("manifest.json");
        let manifest = read_json(&manifest_path)?;
        let artifacts = manifest
            .get("artifacts")
            .and_then(Value::as_object)
            .ok_or_else(|| format!("{}: no \"artifacts\"", manifest_path.display()))?;
        if let Some(missing) = manifest.get("missing").and_then(Value::as_array) {
            if !missing.is_empty() {
                return Err(format!(
                    "{}: the assembly has unresolved context lookups ({} missing); it is not deployable",
                    manifest_path.display(),
                    missing.len()
                ));
            }
        }
        let stacks: Vec<(&String, &Value)> = artifacts
            .iter()
            .filter(|(_, a)| {
                a.get("type").and_then(Value::as_str) == Some("aws:cloudformation:stack")
            })
            .collect();
        let chosen = match stacks.as_slice() {
            [] => return Err(format!("{}: no stack artifact", manifest_path.display())),
            [only] => *only,
            many => *many
                .iter()
                .find(|(id, a)| {
                    id.as_str() == stack_name
                        || a.pointer("/properties/stackName").and_then(Value::as_str)
                            == Some(stack_name)
                })
                .ok_or_else(|| {
                    let ids: Vec<&str> = many.iter().map(|(id, _)| id.as_str()).collect();
                    format!(
                        "{}: several stacks ({}) and none is named {stack_name}",
                        manifest_path.display(),
                        ids.join(", ")
                    )
                })?,
        };
        let (artifact_id, artifact) = chosen;
        let properties = artifact.get("properties").cloned().unwrap_or(Value::Null);
        let template_file = properties
            .get("templateFile")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                format!("stack artifact {artifact_id} has no properties.templateFile")
            })?;
        let template_path = dir.join(template_file);
        let template = read_json(&template_path)?;
        // The asset manifest: a cdk:asset-manifest artifact this stack depends on.
        let deps: BTreeSet<&str> = artifact
            .get("dependencies")
            .and_then(Value::as_array)
            .map(|d| d.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let asset_manifest = artifacts
            .iter()
            .filter(|(id, a)| {
                a.get("type").and_then(Value::as_str) == Some("cdk:asset-manifest")
                    && (deps.contains(id.as_str())
                        || id.as_str() == format!("{artifact_id}.assets"))
            })
            .find_map(|(_, a)| a.pointer("/properties/file").and_then(Value::as_str))
            .map(|f| dir.join(f));
        Ok(StackArtifact {
            dir: dir.to_path_buf(),
            artifact_id: artifact_id.clone(),
            template_path,
            template,
            properties,
            asset_manifest,
        })
    }

    /// `properties.stackTemplateAssetObjectUrl`: `s3://bucket/key` (placeholders unresolved).
    pub fn template_asset_url(&self) -> Option<&str> {
        self.properties
            .get("stackTemplateAssetObjectUrl")
            .and_then(Value::as_str)
    }

    /// Parameters the assembly itself fixes (`properties.parameters`).
    pub fn parameters(&self) -> Vec<(String, String)> {
        string_map(self.properties.get("parameters"))
    }

    pub fn tags(&self) -> Vec<(String, String)> {
        string_map(self.properties.get("tags"))
    }
}

fn string_map(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packaging {
    File,
    Zip,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub bucket: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAsset {
    pub id: String,
    pub source: PathBuf,
    pub packaging: Packaging,
    pub destinations: Vec<Destination>,
}

/// Replaces the publisher placeholders in bucket names and keys.
pub fn substitute(text: &str, account: &str, region: &str) -> String {
    let partition = if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    };
    text.replace("${AWS::AccountId}", account)
        .replace("${AWS::Region}", region)
        .replace("${AWS::Partition}", partition)
}

/// The file assets of an asset manifest, placeholders substituted.
pub fn file_assets(
    manifest_path: &Path,
    account: &str,
    region: &str,
) -> Result<Vec<FileAsset>, String> {
    let doc = read_json(manifest_path)?;
    let base = manifest_path.parent().unwrap_or(Path::new("."));
    if doc
        .get("dockerImages")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty())
    {
        return Err(format!(
            "{}: Docker image assets are not supported",
            manifest_path.display()
        ));
    }
    let mut out = Vec::new();
    let files = doc.get("files").and_then(Value::as_object);
    for (id, entry) in files.into_iter().flatten() {
        let source = entry.get("source").unwrap_or(&Value::Null);
        let path = source.get("path").and_then(Value::as_str).ok_or_else(|| {
            format!("asset {id}: only path sources are supported (no \"executable\")")
        })?;
        let packaging = match source
            .get("packaging")
            .and_then(Value::as_str)
            .unwrap_or("file")
        {
            "file" => Packaging::File,
            "zip" => Packaging::Zip,
            other => return Err(format!("asset {id}: unknown packaging {other:?}")),
        };
        let mut destinations = Vec::new();
        for (dest_id, d) in entry
            .get("destinations")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let field = |k: &str| {
                d.get(k)
                    .and_then(Value::as_str)
                    .map(|s| substitute(s, account, region))
                    .ok_or_else(|| format!("asset {id} destination {dest_id}: no {k}"))
            };
            destinations.push(Destination {
                bucket: field("bucketName")?,
                key: field("objectKey")?,
            });
        }
        out.push(FileAsset {
            id: id.clone(),
            source: base.join(path),
            packaging,
            destinations,
        });
    }
    Ok(out)
}

/// The bytes to upload: the file itself, or the directory zipped (sorted entries, fixed
/// timestamps, so the same content always gives the same zip; the exec bit is kept for
/// `bootstrap`).
pub fn asset_bytes(asset: &FileAsset) -> Result<Vec<u8>, String> {
    match asset.packaging {
        Packaging::File => std::fs::read(&asset.source)
            .map_err(|e| format!("asset {}: {}: {e}", asset.id, asset.source.display())),
        Packaging::Zip => {
            if asset.source.is_file() {
                // A prebuilt zip staged as the source.
                return std::fs::read(&asset.source)
                    .map_err(|e| format!("{}: {e}", asset.source.display()));
            }
            zip_dir(&asset.source).map_err(|e| {
                format!(
                    "asset {}: zipping {}: {e}",
                    asset.id,
                    asset.source.display()
                )
            })
        }
    }
}

fn zip_dir(dir: &Path) -> Result<Vec<u8>, String> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let mut files = Vec::new();
    collect_files(dir, dir, &mut files)?;
    files.sort();
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for rel in files {
        let full = dir.join(&rel);
        let mode = std::fs::metadata(&full)
            .map_err(|e| e.to_string())?
            .permissions()
            .mode();
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(if mode & 0o111 != 0 { 0o755 } else { 0o644 });
        writer
            .start_file(rel.clone(), options)
            .map_err(|e| e.to_string())?;
        let data = std::fs::read(&full).map_err(|e| format!("{}: {e}", full.display()))?;
        writer.write_all(&data).map_err(|e| e.to_string())?;
    }
    Ok(writer.finish().map_err(|e| e.to_string())?.into_inner())
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            collect_files(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root).map_err(|e| e.to_string())?;
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// Makes sure an asset bucket exists. On AWS a missing bootstrap bucket is the user's to create
/// (`cdk bootstrap`); on an emulator it is created here.
pub async fn ensure_bucket(aws: &Aws, bucket: &str, account: &str) -> Result<(), String> {
    match aws.s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error().is_some_and(|s| s.is_not_found())
                || e.raw_response().is_some_and(|r| r.status().as_u16() == 404) =>
        {
            if !aws.is_emulator() {
                return Err(format!(
                    "the asset bucket {bucket} does not exist in {}: bootstrap the environment first with \
                     `cdk bootstrap aws://{account}/{}` (CDK's default bootstrap, qualifier {BOOTSTRAP_QUALIFIER})",
                    aws.where_(),
                    aws.region
                ));
            }
            let mut req = aws.s3.create_bucket().bucket(bucket);
            if aws.region != "us-east-1" {
                req = req.create_bucket_configuration(
                    aws_sdk_s3::types::CreateBucketConfiguration::builder()
                        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                            aws.region.as_str(),
                        ))
                        .build(),
                );
            }
            req.send()
                .await
                .map_err(|e| format!("creating bucket {bucket}: {}", describe(&e)))?;
            Ok(())
        }
        Err(e) => Err(format!("checking bucket {bucket}: {}", describe(&e))),
    }
}

/// Uploads `bytes` unless the object exists (keys are content hashes). Returns true if uploaded.
pub async fn put_if_missing(
    aws: &Aws,
    bucket: &str,
    key: &str,
    bytes: Vec<u8>,
) -> Result<bool, String> {
    match aws.s3.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => return Ok(false),
        Err(e)
            if e.as_service_error().is_some_and(|s| s.is_not_found())
                || e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {}
        Err(e) => return Err(format!("checking s3://{bucket}/{key}: {}", describe(&e))),
    }
    aws.s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from(bytes))
        .send()
        .await
        .map_err(|e| format!("uploading s3://{bucket}/{key}: {}", describe(&e)))?;
    Ok(true)
}

/// The HTTPS URL CloudFormation takes as `TemplateURL` for an object (path style, which the
/// emulator also resolves to its own S3).
pub fn template_url(region: &str, bucket: &str, key: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://s3.{region}.{suffix}/{bucket}/{key}")
}

/// Splits `s3://bucket/key`.
pub fn split_s3_url(url: &str) -> Option<(&str, &str)> {
    url.strip_prefix("s3://")?.split_once('/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(dir: &Path, name: &str, v: &Value) {
        std::fs::write(dir.join(name), serde_json::to_vec_pretty(v).unwrap()).unwrap();
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("synth-ops-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn loads_stack_template_and_assets() {
        let dir = scratch("assembly");
        write(
            &dir,
            "manifest.json",
            &json!({"version": "36.0.0", "artifacts": {
                "Hsm.assets": {"type": "cdk:asset-manifest", "properties": {"file": "Hsm.assets.json"}},
                "Hsm": {"type": "aws:cloudformation:stack", "environment": "aws://unknown-account/unknown-region",
                        "properties": {"templateFile": "Hsm.template.json", "tags": {"team": "pki"}},
                        "dependencies": ["Hsm.assets"]}
            }}),
        );
        write(&dir, "Hsm.template.json", &json!({"Resources": {}}));
        std::fs::create_dir_all(dir.join("asset.abc")).unwrap();
        std::fs::write(dir.join("asset.abc/bootstrap"), b"binary").unwrap();
        write(
            &dir,
            "Hsm.assets.json",
            &json!({"version": "36.0.0", "files": {"abc": {
            "source": {"path": "asset.abc", "packaging": "zip"},
            "destinations": {"current_account-current_region": {
                "bucketName": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}", "objectKey": "abc.zip"}}}}}),
        );

        let stack = StackArtifact::load(&dir, "anything").unwrap();
        assert_eq!(stack.artifact_id, "Hsm");
        assert_eq!(stack.tags(), vec![("team".to_string(), "pki".to_string())]);
        let assets = file_assets(
            stack.asset_manifest.as_ref().unwrap(),
            "123456789012",
            "eu-west-1",
        )
        .unwrap();
        assert_eq!(assets.len(), 1);
        assert_eq!(
            assets[0].destinations,
            vec![Destination {
                bucket: "cdk-hnb659fds-assets-123456789012-eu-west-1".into(),
                key: "abc.zip".into()
            }]
        );
        let zip1 = asset_bytes(&assets[0]).unwrap();
        let zip2 = asset_bytes(&assets[0]).unwrap();
        assert_eq!(zip1, zip2, "zips are reproducible");
        let archive = zip::ZipArchive::new(std::io::Cursor::new(zip1)).unwrap();
        let mut archive = archive;
        assert_eq!(archive.len(), 1);
        let entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name().unwrap(), "bootstrap");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn urls_and_placeholders() {
        assert_eq!(
            template_url("us-east-1", "b", "k.json"),
            "https://s3.us-east-1.amazonaws.com/b/k.json"
        );
        assert_eq!(split_s3_url("s3://b/dir/k.json"), Some(("b", "dir/k.json")));
        assert_eq!(
            substitute("arn:${AWS::Partition}:x:${AWS::Region}", "1", "cn-north-1"),
            "arn:aws-cn:x:cn-north-1"
        );
        assert_eq!(bootstrap_bucket("1", "r"), "cdk-hnb659fds-assets-1-r");
    }
}
