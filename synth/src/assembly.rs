//! Writing a CDK cloud assembly (`cdk.out/`): `manifest.json` (schema 36.0.0), one
//! `<Stack>.template.json` and `<Stack>.assets.json` per stack, `tree.json`, the `cdk.out` version
//! file and the staged assets. Only keys of schema 36 are written (the CDK CLI rejects unknown
//! keys). Style: CliCredentials (no bootstrap roles, no version rule; assets go to the
//! conventional bootstrap bucket `cdk-hnb659fds-assets-<account>-<region>`).

use std::fs;
use std::path::{Path, PathBuf};

use constructs::tree::{Synthesized, ASSET_BUCKET};
use serde_json::{json, Map, Value};

use crate::assets::sha256_hex;

pub const MANIFEST_VERSION: &str = "36.0.0";

/// What was written for one stack.
#[derive(Debug, Clone)]
pub struct WrittenStack {
    pub artifact_id: String,
    pub template_file: PathBuf,
    pub assets_file: PathBuf,
    pub template_sha256: String,
    pub template_bytes: usize,
}

/// The documents of an assembly, before they are written (pure; tested without I/O).
#[derive(Debug, Clone)]
pub struct AssemblyDocs {
    pub manifest: Value,
    /// file name → content.
    pub files: Vec<(String, String)>,
    pub stacks: Vec<WrittenStack>,
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("JSON serializes");
    s.push('\n');
    s
}

/// Builds manifest.json, templates, asset manifests and tree.json.
pub fn documents(synth: &Synthesized, out_dir: &Path) -> AssemblyDocs {
    let mut artifacts = Map::new();
    let mut files = Vec::new();
    let mut stacks = Vec::new();
    for s in &synth.stacks {
        let id = s.name.clone();
        let template_file = format!("{id}.template.json");
        let assets_file = format!("{id}.assets.json");
        let template_text = pretty(&s.template);
        let template_sha = sha256_hex(template_text.as_bytes());
        let destination = |key: String| json!({"current_account-current_region": {"bucketName": ASSET_BUCKET, "objectKey": key}});
        let mut asset_files = Map::new();
        for a in &s.assets {
            asset_files.insert(
                a.sha256.clone(),
                json!({"source": {"path": a.file_name, "packaging": "file"}, "destinations": destination(a.object_key())}),
            );
        }
        asset_files.insert(
            template_sha.clone(),
            json!({"source": {"path": template_file, "packaging": "file"}, "destinations": destination(format!("{template_sha}.json"))}),
        );
        let asset_manifest =
            json!({"version": MANIFEST_VERSION, "files": asset_files, "dockerImages": {}});

        let mut properties = Map::new();
        properties.insert("templateFile".into(), template_file.clone().into());
        properties.insert(
            "stackTemplateAssetObjectUrl".into(),
            format!("s3://{ASSET_BUCKET}/{template_sha}.json").into(),
        );
        if !s.tags.is_empty() {
            properties.insert("tags".into(), json!(s.tags));
        }
        if !s.parameter_values.is_empty() {
            properties.insert("parameters".into(), json!(s.parameter_values));
        }
        let mut metadata = Map::new();
        for (logical_id, path) in &s.logical_ids {
            metadata.insert(
                format!("/{path}"),
                json!([{"type": "aws:cdk:logicalId", "data": logical_id}]),
            );
        }
        let assets_id = format!("{id}.assets");
        artifacts.insert(
            assets_id.clone(),
            json!({"type": "cdk:asset-manifest", "properties": {"file": assets_file}}),
        );
        artifacts.insert(
            id.clone(),
            json!({
                "type": "aws:cloudformation:stack",
                "environment": "aws://unknown-account/unknown-region",
                "properties": properties,
                "dependencies": [assets_id],
                "metadata": metadata,
            }),
        );
        stacks.push(WrittenStack {
            artifact_id: id.clone(),
            template_file: out_dir.join(&template_file),
            assets_file: out_dir.join(&assets_file),
            template_sha256: template_sha,
            template_bytes: template_text.len(),
        });
        files.push((template_file, template_text));
        files.push((assets_file, pretty(&asset_manifest)));
    }
    artifacts.insert(
        "Tree".into(),
        json!({"type": "cdk:tree", "properties": {"file": "tree.json"}}),
    );
    files.push(("tree.json".into(), pretty(&synth.tree)));
    let manifest = json!({"version": MANIFEST_VERSION, "artifacts": artifacts});
    files.push(("manifest.json".into(), pretty(&manifest)));
    files.push((
        "cdk.out".into(),
        pretty(&json!({"version": MANIFEST_VERSION})),
    ));
    AssemblyDocs {
        manifest,
        files,
        stacks,
    }
}

/// Writes the assembly into `out_dir` (created if needed). Staged assets are copied from
/// `asset_sources` (asset file name → source path). Files of earlier runs that this run does not
/// produce (`*.template.json`, `*.assets.json`, `asset.*`) are removed; anything else (the CDK
/// CLI's lock files, README.md) is left alone.
pub fn write(
    synth: &Synthesized,
    out_dir: &Path,
    asset_sources: &[(String, PathBuf)],
) -> Result<AssemblyDocs, String> {
    fs::create_dir_all(out_dir).map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let docs = documents(synth, out_dir);
    let mut keep: Vec<String> = docs.files.iter().map(|(n, _)| n.clone()).collect();
    for (name, src) in asset_sources {
        let dest = out_dir.join(name);
        if !dest.exists() {
            fs::copy(src, &dest)
                .map_err(|e| format!("cannot copy {} to {}: {e}", src.display(), dest.display()))?;
        }
        keep.push(name.clone());
    }
    if let Ok(entries) = fs::read_dir(out_dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let ours = name.ends_with(".template.json")
                || name.ends_with(".assets.json")
                || name.starts_with("asset.");
            if ours && !keep.contains(&name) {
                let p = e.path();
                let _ = if p.is_dir() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
            }
        }
    }
    for (name, text) in &docs.files {
        let p = out_dir.join(name);
        // Same bytes → leave the file untouched (stable mtimes for tools that watch cdk.out).
        if fs::read_to_string(&p).ok().as_deref() != Some(text.as_str()) {
            fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        }
    }
    Ok(docs)
}
