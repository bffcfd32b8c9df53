//! The construct tree: an arena per stack, scopes with ids and paths, CDK-compatible logical ids,
//! and the synthesis phases build → validate → emit.
//!
//! ```
//! use constructs::tree::*;
//! use constructs::cfn::resources::LogGroup;
//! let mut app = App::new();
//! let mut stack = Stack::new("Demo");
//! {
//!     let mut root = stack.root();
//!     let mut logs = root.construct("Logs", "demo.Logs");
//!     let group = logs.resource("Resource", LogGroup { retention_in_days: Some(30.into()), ..Default::default() });
//!     assert_eq!(group.logical_id(), logical_id_for(&["Logs", "Resource"]));
//! }
//! app.add_stack(stack);
//! let assembly = app.synth().unwrap();
//! assert!(assembly.stacks[0].template["Resources"].as_object().unwrap().len() == 1);
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;

use indexmap::IndexMap;
use md5::{Digest, Md5};
use serde_json::{json, Value as Json};

use crate::cfn::resources::{CustomResource, ResourceProps};
use crate::cfn::{Expr, Output, Parameter, Policy, Pseudo, Resource, Rule, Template, Value};

/// CloudFormation limits checked at synth.
pub const MAX_RESOURCES: usize = 500;
pub const MAX_PARAMETERS: usize = 200;
pub const MAX_OUTPUTS: usize = 200;
/// Largest template CloudFormation accepts from S3.
pub const MAX_TEMPLATE_BYTES: usize = 1_000_000;

/// A node of a stack's arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(usize);

#[derive(Debug, Clone)]
enum NodeKind {
    Stack,
    Construct {
        fqn: String,
    },
    Element {
        logical_id: String,
        kind: &'static str,
        cfn_type: Option<String>,
    },
}

#[derive(Debug, Clone)]
struct Node {
    id: String,
    parent: Option<NodeId>,
    children: IndexMap<String, NodeId>,
    kind: NodeKind,
}

/// A synthesis problem at a construct path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.path, self.message)
    }
}

/// Every problem found while synthesizing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthError(pub Vec<ValidationError>);

impl fmt::Display for SynthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "synthesis failed with {} error(s):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SynthError {}

impl SynthError {
    /// `[path] message` lines.
    pub fn lines(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

/// A file asset the stack needs uploaded (content-addressed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAsset {
    /// SHA-256 (hex) of the content: the asset id and object key stem.
    pub sha256: String,
    /// File name in the assembly directory (e.g. `asset.<sha256>.zip`).
    pub file_name: String,
    /// Extension of the object key, with dot (`.zip`).
    pub extension: String,
    pub display_name: String,
}

impl FileAsset {
    pub fn object_key(&self) -> String {
        format!("{}{}", self.sha256, self.extension)
    }
}

/// The conventional CDK bootstrap bucket (qualifier `hnb659fds`), rendered with pseudo parameters.
pub const ASSET_BUCKET: &str = "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}";

/// Where an asset lands: bucket + key as template values.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetLocation {
    pub bucket: Value<String>,
    pub key: Value<String>,
    pub sha256: String,
}

/// A reference to a resource created in a stack, typed by its property struct.
pub struct Handle<P> {
    logical_id: String,
    path: String,
    _p: PhantomData<fn() -> P>,
}

impl<P> Clone for Handle<P> {
    fn clone(&self) -> Self {
        Handle {
            logical_id: self.logical_id.clone(),
            path: self.path.clone(),
            _p: PhantomData,
        }
    }
}
impl<P> fmt::Debug for Handle<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({} at {})", self.logical_id, self.path)
    }
}

impl<P> Handle<P> {
    pub fn logical_id(&self) -> &str {
        &self.logical_id
    }
    pub fn path(&self) -> &str {
        &self.path
    }
    /// `Ref` (meaning depends on the type: id, name or ARN).
    pub fn reference(&self) -> Value<String> {
        Value::from_expr(Expr::Ref(self.logical_id.clone()))
    }
    /// `Fn::GetAtt` (the attribute is checked at validation).
    pub fn get_att(&self, attr: &str) -> Value<String> {
        Value::from_expr(Expr::GetAtt(self.logical_id.clone(), attr.into()))
    }
    /// An untyped handle (for dependencies between resources of different types).
    pub fn any(&self) -> Handle<()> {
        Handle {
            logical_id: self.logical_id.clone(),
            path: self.path.clone(),
            _p: PhantomData,
        }
    }
}

/// A template parameter, typed by what `Ref` yields.
pub struct ParamHandle<T> {
    logical_id: String,
    _t: PhantomData<fn() -> T>,
}
impl<T> Clone for ParamHandle<T> {
    fn clone(&self) -> Self {
        ParamHandle {
            logical_id: self.logical_id.clone(),
            _t: PhantomData,
        }
    }
}
impl<T> fmt::Debug for ParamHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Param({})", self.logical_id)
    }
}
impl<T> ParamHandle<T> {
    pub fn logical_id(&self) -> &str {
        &self.logical_id
    }
    pub fn value(&self) -> Value<T> {
        Value::from_expr(Expr::Ref(self.logical_id.clone()))
    }
}

/// A named condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionHandle(String);

impl ConditionHandle {
    pub fn name(&self) -> &str {
        &self.0
    }
    /// `Fn::If(this, then, otherwise)`.
    pub fn if_else<T>(&self, then: Value<T>, otherwise: Value<T>) -> Value<T> {
        Value::if_else(self.0.clone(), then, otherwise)
    }
    /// `Fn::If(this, value, AWS::NoValue)`.
    pub fn if_or_none<T>(&self, then: Value<T>) -> Value<T> {
        Value::if_else(self.0.clone(), then, Value::no_value())
    }
}

/// How a resource is removed: CDK's RemovalPolicy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalPolicy {
    Destroy,
    Retain,
}

/// One CloudFormation stack and its construct tree.
#[derive(Debug, Clone)]
pub struct Stack {
    name: String,
    description: Option<String>,
    nodes: Vec<Node>,
    template: Template,
    /// logical id → (node, type) of every element.
    elements: BTreeMap<String, (NodeId, Option<String>)>,
    attributes: BTreeMap<String, &'static [&'static str]>,
    errors: Vec<ValidationError>,
    assets: Vec<FileAsset>,
    tags: IndexMap<String, String>,
    parameter_values: IndexMap<String, String>,
    /// Logical-id renames (old → new, and whether one was applied).
    renames: BTreeMap<String, (String, bool)>,
}

impl Stack {
    /// A stack named `name` (`^[A-Za-z][A-Za-z0-9-]*$`, ≤ 128 characters).
    pub fn new(name: impl Into<String>) -> Stack {
        let name = name.into();
        let mut s = Stack {
            name: name.clone(),
            description: None,
            nodes: vec![Node {
                id: name.clone(),
                parent: None,
                children: IndexMap::new(),
                kind: NodeKind::Stack,
            }],
            template: Template::default(),
            elements: BTreeMap::new(),
            attributes: BTreeMap::new(),
            errors: Vec::new(),
            assets: Vec::new(),
            tags: IndexMap::new(),
            parameter_values: IndexMap::new(),
            renames: BTreeMap::new(),
        };
        let valid = !name.is_empty()
            && name.len() <= 128
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid {
            s.errors.push(ValidationError {
                path: name.clone(),
                message: format!("stack name `{name}` is invalid: use 1-128 characters, letters, digits and hyphens, starting with a letter"),
            });
        }
        s
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn set_description(&mut self, d: impl Into<String>) {
        self.description = Some(d.into());
    }

    /// Stack tags (applied by the deployer to the stack and propagated by CloudFormation).
    pub fn add_tag(&mut self, k: impl Into<String>, v: impl Into<String>) {
        self.tags.insert(k.into(), v.into());
    }

    pub fn tags(&self) -> &IndexMap<String, String> {
        &self.tags
    }

    /// The root scope: children created here have the stack as parent.
    pub fn root(&mut self) -> Scope<'_> {
        Scope {
            stack: self,
            node: NodeId(0),
        }
    }

    pub fn assets(&self) -> &[FileAsset] {
        &self.assets
    }

    /// Template metadata (e.g. `AWS::CloudFormation::Interface`).
    pub fn set_metadata(&mut self, key: impl Into<String>, v: Json) {
        self.template.metadata.insert(key.into(), v);
    }

    /// The value a literal or a parameter reference has at synth (the literal itself, or the
    /// parameter's default parsed by type); `None` when unknown until deploy.
    pub fn known_value(&self, e: &Expr) -> Option<Json> {
        match e {
            Expr::Lit(v) => Some(v.clone()),
            Expr::Ref(id) => {
                let p = self.template.parameters.get(id)?;
                let d = p.default.as_ref()?;
                Some(if p.type_.is_list() {
                    let items: Vec<&str> = if d.is_empty() {
                        vec![]
                    } else {
                        d.split(',').map(str::trim).collect()
                    };
                    json!(items)
                } else if p.type_ == crate::cfn::ParameterType::Number {
                    d.parse::<f64>()
                        .map(|n| {
                            if n.fract() == 0.0 {
                                json!(n as i64)
                            } else {
                                json!(n)
                            }
                        })
                        .unwrap_or(json!(d))
                } else {
                    json!(d)
                })
            }
            Expr::List(items) => items
                .iter()
                .map(|i| self.known_value(i))
                .collect::<Option<Vec<_>>>()
                .map(Json::Array),
            _ => None,
        }
    }

    /// Changes a parameter's default (e.g. from command-line flags) before synthesis.
    pub fn set_parameter_default(
        &mut self,
        logical_id: &str,
        default: impl Into<String>,
    ) -> Result<(), String> {
        match self.template.parameters.get_mut(logical_id) {
            Some(p) => {
                p.default = Some(default.into());
                Ok(())
            }
            None => Err(format!(
                "stack `{}` has no parameter `{logical_id}`",
                self.name
            )),
        }
    }

    /// Gives the element whose path-derived logical id is `old` the id `new` instead (CDK's
    /// `renameLogicalId`): keeps a deployed resource when its construct moves in the tree. Call it
    /// before the element is created; a rename that matches nothing fails synthesis.
    pub fn rename_logical_id(&mut self, old: &str, new: &str) {
        if new.is_empty() || new.len() > 255 || !new.chars().all(|c| c.is_ascii_alphanumeric()) {
            self.errors.push(ValidationError {
                path: self.name.clone(),
                message: format!(
                    "rename `{old}` → `{new}`: a logical id is 1-255 letters and digits"
                ),
            });
            return;
        }
        self.renames
            .insert(old.to_string(), (new.to_string(), false));
    }

    /// Values passed to parameters at deploy (manifest `parameters`).
    pub fn set_parameter_value(&mut self, logical_id: &str, v: impl Into<String>) {
        self.parameter_values.insert(logical_id.into(), v.into());
    }

    fn path_of(&self, id: NodeId) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = Some(id);
        while let Some(c) = cur {
            let n = &self.nodes[c.0];
            out.push(n.id.clone());
            cur = n.parent;
        }
        out.reverse();
        out
    }

    fn path_string(&self, id: NodeId) -> String {
        self.path_of(id).join("/")
    }

    fn add_node(&mut self, parent: NodeId, id: &str, kind: NodeKind) -> NodeId {
        let clean = if id.contains('/') {
            id.replace('/', "--")
        } else {
            id.to_string()
        };
        let mut key = clean.clone();
        if clean.is_empty() {
            let p = self.path_string(parent);
            self.errors.push(ValidationError {
                path: p,
                message: "a construct id is empty; give every construct a non-empty id".into(),
            });
            key = format!("(empty-{})", self.nodes.len());
        } else if self.nodes[parent.0].children.contains_key(&clean) {
            let p = format!("{}/{}", self.path_string(parent), clean);
            self.errors.push(ValidationError {
                path: p,
                message: format!("there is already a construct with id `{clean}` in this scope; ids must be unique among siblings"),
            });
            key = format!("{clean}(duplicate-{})", self.nodes.len());
        }
        let nid = NodeId(self.nodes.len());
        self.nodes.push(Node {
            id: key.clone(),
            parent: Some(parent),
            children: IndexMap::new(),
            kind,
        });
        self.nodes[parent.0].children.insert(key, nid);
        nid
    }

    fn register_element(&mut self, node: NodeId, logical_id: String, cfn_type: Option<String>) {
        if let Some((other, _)) = self.elements.get(&logical_id) {
            let other = self.path_string(*other);
            self.errors.push(ValidationError {
                path: self.path_string(node),
                message: format!("logical id `{logical_id}` is already used by `{other}`; rename one of the constructs"),
            });
            return;
        }
        self.elements.insert(logical_id, (node, cfn_type));
    }

    /// Replaces a resource's properties (for resources whose properties depend on resources
    /// created after them, e.g. a role whose policy names them).
    pub fn replace_properties<P: ResourceProps>(&mut self, handle: &Handle<P>, props: &P) {
        self.resource_mut(&handle.logical_id).properties =
            serde_json::to_value(props).expect("resource properties serialize");
    }

    fn resource_mut(&mut self, logical_id: &str) -> &mut Resource {
        self.template
            .resources
            .get_mut(logical_id)
            .expect("handle of this stack")
    }

    /// Validate phase: every reference resolves, limits hold; plus errors recorded while building.
    pub fn validate(&self) -> Result<(), SynthError> {
        let mut errors = self.errors.clone();
        let t = &self.template;
        let path_of = |id: &str| {
            self.elements
                .get(id)
                .map(|(n, _)| self.path_string(*n))
                .unwrap_or_else(|| self.name.clone())
        };
        let known_ref = |id: &str| {
            id.starts_with("AWS::") || t.parameters.contains_key(id) || t.resources.contains_key(id)
        };
        for (id, r) in &t.resources {
            let mut refs = Vec::new();
            let mut atts = Vec::new();
            let mut conds = Vec::new();
            collect_json_refs(&r.properties, &mut refs, &mut atts, &mut conds);
            for target in refs.iter().chain(r.refs.iter()) {
                if !known_ref(target) {
                    errors.push(ValidationError { path: path_of(id), message: format!("references `{target}`, which is neither a parameter nor a resource of this stack") });
                }
            }
            for (target, attr) in &atts {
                match self.attributes.get(target) {
                    None if !t.resources.contains_key(target) => errors.push(ValidationError { path: path_of(id), message: format!("Fn::GetAtt on `{target}`, which is not a resource of this stack") }),
                    Some(allowed) if !allowed.is_empty() && !allowed.contains(&attr.as_str()) => errors.push(ValidationError {
                        path: path_of(id),
                        message: format!("Fn::GetAtt `{target}.{attr}`: `{attr}` is not an attribute of that resource (known: {})", allowed.join(", ")),
                    }),
                    _ => {}
                }
            }
            for d in &r.depends_on {
                if !t.resources.contains_key(d) {
                    errors.push(ValidationError {
                        path: path_of(id),
                        message: format!("DependsOn `{d}`, which is not a resource of this stack"),
                    });
                }
            }
            for c in r
                .condition
                .iter()
                .chain(conds.iter())
                .chain(r.conditions_used.iter())
            {
                if !t.conditions.contains_key(c) {
                    errors.push(ValidationError { path: path_of(id), message: format!("uses condition `{c}`, which is not defined; add it with `scope.condition(..)`") });
                }
            }
        }
        for (id, o) in &t.outputs {
            let mut refs = Vec::new();
            o.value.references(&mut refs);
            for target in refs {
                if !known_ref(&target) {
                    errors.push(ValidationError { path: path_of(id), message: format!("output references `{target}`, which is neither a parameter nor a resource of this stack") });
                }
            }
        }
        let checks = [
            ("resources", t.resources.len(), MAX_RESOURCES),
            ("parameters", t.parameters.len(), MAX_PARAMETERS),
            ("outputs", t.outputs.len(), MAX_OUTPUTS),
        ];
        for (what, n, max) in checks {
            if n > max {
                let mut detail = String::new();
                if what == "resources" {
                    let mut by_type: BTreeMap<&str, usize> = BTreeMap::new();
                    for r in t.resources.values() {
                        *by_type.entry(r.type_.as_str()).or_default() += 1;
                    }
                    detail = format!(
                        " ({})",
                        by_type
                            .iter()
                            .map(|(k, v)| format!("{k}: {v}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                errors.push(ValidationError { path: self.name.clone(), message: format!("{n} {what} exceed CloudFormation's limit of {max}{detail}; split the stack") });
            }
        }
        for (old, (new, used)) in &self.renames {
            if !used {
                errors.push(ValidationError {
                    path: self.name.clone(),
                    message: format!("the rename `{old}` → `{new}` matched no element; remove it or fix the old id"),
                });
            }
        }
        let size = self.render_template().to_string().len();
        if size > MAX_TEMPLATE_BYTES {
            errors.push(ValidationError { path: self.name.clone(), message: format!("the template is {size} bytes, over CloudFormation's {MAX_TEMPLATE_BYTES}; split the stack") });
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(SynthError(errors))
        }
    }

    fn render_template(&self) -> Json {
        let mut t = self.template.clone();
        if t.description.is_none() {
            t.description.clone_from(&self.description);
        }
        t.to_json()
    }

    /// The template after validation.
    pub fn synth_template(&self) -> Result<Template, SynthError> {
        self.validate()?;
        let mut t = self.template.clone();
        if t.description.is_none() {
            t.description.clone_from(&self.description);
        }
        Ok(t)
    }

    /// The construct tree as CDK's `tree.json` node.
    pub fn tree_json(&self) -> Json {
        self.tree_node(NodeId(0))
    }

    fn tree_node(&self, id: NodeId) -> Json {
        let n = &self.nodes[id.0];
        let mut m = serde_json::Map::new();
        m.insert("id".into(), n.id.clone().into());
        m.insert("path".into(), self.path_string(id).into());
        if !n.children.is_empty() {
            let children: serde_json::Map<String, Json> = n
                .children
                .iter()
                .map(|(k, c)| (k.clone(), self.tree_node(*c)))
                .collect();
            m.insert("children".into(), Json::Object(children));
        }
        let (fqn, attrs) = match &n.kind {
            NodeKind::Stack => ("constructs.Stack".to_string(), None),
            NodeKind::Construct { fqn } => (fqn.clone(), None),
            NodeKind::Element {
                logical_id,
                kind,
                cfn_type,
            } => {
                let mut a = serde_json::Map::new();
                a.insert("aws:cdk:logicalId".into(), logical_id.clone().into());
                if let Some(t) = cfn_type {
                    a.insert("aws:cdk:cloudformation:type".into(), t.clone().into());
                }
                (format!("constructs.cfn.{kind}"), Some(a))
            }
        };
        if let Some(a) = attrs {
            m.insert("attributes".into(), Json::Object(a));
        }
        m.insert(
            "constructInfo".into(),
            json!({"fqn": fqn, "version": env!("CARGO_PKG_VERSION")}),
        );
        Json::Object(m)
    }

    /// Every resource's logical id → construct path (for stability tests and reports).
    pub fn logical_ids(&self) -> BTreeMap<String, String> {
        self.elements
            .iter()
            .map(|(k, (n, _))| (k.clone(), self.path_string(*n)))
            .collect()
    }

    pub fn parameter_values(&self) -> &IndexMap<String, String> {
        &self.parameter_values
    }
}

fn collect_json_refs(
    v: &Json,
    refs: &mut Vec<String>,
    atts: &mut Vec<(String, String)>,
    conds: &mut Vec<String>,
) {
    match v {
        Json::Object(m) => {
            if m.len() == 1 {
                if let Some(Json::String(r)) = m.get("Ref") {
                    refs.push(r.clone());
                    return;
                }
                if let Some(Json::Array(a)) = m.get("Fn::GetAtt") {
                    if let (Some(Json::String(id)), Some(Json::String(attr))) =
                        (a.first(), a.get(1))
                    {
                        atts.push((id.clone(), attr.clone()));
                    }
                    return;
                }
                if let Some(Json::Array(a)) = m.get("Fn::If") {
                    if let Some(Json::String(c)) = a.first() {
                        conds.push(c.clone());
                    }
                    for x in a.iter().skip(1) {
                        collect_json_refs(x, refs, atts, conds);
                    }
                    return;
                }
                let sub = match m.get("Fn::Sub") {
                    Some(Json::String(s)) => Some((s.clone(), serde_json::Map::new())),
                    Some(Json::Array(a)) => match (a.first(), a.get(1)) {
                        (Some(Json::String(s)), Some(Json::Object(vars))) => {
                            Some((s.clone(), vars.clone()))
                        }
                        _ => None,
                    },
                    _ => None,
                };
                if let Some((text, vars)) = sub {
                    for name in crate::cfn::sub_variables(&text) {
                        let mut parts = name.splitn(2, '.');
                        let base = parts.next().unwrap_or_default().to_string();
                        if vars.contains_key(&base) || base.starts_with("AWS::") {
                            continue;
                        }
                        match parts.next() {
                            Some(attr) => atts.push((base, attr.to_string())),
                            None => refs.push(base),
                        }
                    }
                    for x in vars.values() {
                        collect_json_refs(x, refs, atts, conds);
                    }
                    return;
                }
            }
            for x in m.values() {
                collect_json_refs(x, refs, atts, conds);
            }
        }
        Json::Array(a) => a
            .iter()
            .for_each(|x| collect_json_refs(x, refs, atts, conds)),
        _ => {}
    }
}

/// CDK's logical id for a path below the stack (see `constructs/src/private/uniqueid.ts`):
/// `Default` components are invisible; one component is used as is (alphanumerics only);
/// otherwise the human part (consecutive duplicates and `Resource` removed) + the first 8 hex
/// digits, upper-case, of MD5 over the components joined by `/`.
pub fn logical_id_for(components: &[&str]) -> String {
    let comps: Vec<&str> = components
        .iter()
        .copied()
        .filter(|c| *c != "Default")
        .collect();
    let alnum = |s: &str| {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
    };
    if comps.len() == 1 {
        let c = alnum(comps[0]);
        if c.len() <= 255 {
            return c;
        }
    }
    let digest = Md5::digest(comps.join("/").as_bytes());
    let hash: String = digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<String>()[..8]
        .to_string();
    let mut deduped: Vec<&str> = Vec::new();
    for c in &comps {
        if deduped.last().is_none_or(|last| !last.ends_with(c)) {
            deduped.push(c);
        }
    }
    let human: String = deduped
        .iter()
        .filter(|c| **c != "Resource")
        .map(|c| alnum(c))
        .collect();
    let human: String = human.chars().take(240).collect();
    format!("{human}{hash}")
}

/// A position in a stack's tree where constructs and elements are added.
pub struct Scope<'s> {
    stack: &'s mut Stack,
    node: NodeId,
}

impl<'s> Scope<'s> {
    /// The stack this scope belongs to.
    pub fn stack(&mut self) -> &mut Stack {
        self.stack
    }
    pub fn stack_name(&self) -> &str {
        &self.stack.name
    }

    /// The path of this scope (`Stack/A/B`).
    pub fn path(&self) -> String {
        self.stack.path_string(self.node)
    }

    /// A child construct (a grouping node, like a CDK L2 or L3).
    pub fn construct(&mut self, id: &str, fqn: &str) -> Scope<'_> {
        let node = self
            .stack
            .add_node(self.node, id, NodeKind::Construct { fqn: fqn.into() });
        Scope {
            stack: self.stack,
            node,
        }
    }

    /// Records a validation error at this scope's path (reported with all others at synth).
    pub fn error(&mut self, message: impl Into<String>) {
        let path = self.path();
        self.stack.errors.push(ValidationError {
            path,
            message: message.into(),
        });
    }

    fn element(
        &mut self,
        id: &str,
        kind: &'static str,
        cfn_type: Option<String>,
    ) -> (NodeId, String) {
        let node = self.stack.add_node(
            self.node,
            id,
            NodeKind::Element {
                logical_id: String::new(),
                kind,
                cfn_type: cfn_type.clone(),
            },
        );
        let comps = self.stack.path_of(node);
        let refs: Vec<&str> = comps.iter().skip(1).map(String::as_str).collect();
        let mut logical_id = logical_id_for(&refs);
        if let Some((new, used)) = self.stack.renames.get_mut(&logical_id) {
            *used = true;
            logical_id.clone_from(new);
        }
        if let NodeKind::Element { logical_id: l, .. } = &mut self.stack.nodes[node.0].kind {
            l.clone_from(&logical_id);
        }
        self.stack
            .register_element(node, logical_id.clone(), cfn_type);
        (node, logical_id)
    }

    /// Adds a typed resource; its logical id derives from the path.
    pub fn resource<P: ResourceProps>(&mut self, id: &str, props: P) -> Handle<P> {
        let properties = serde_json::to_value(&props).expect("resource properties serialize");
        self.raw_resource(id, P::TYPE, properties, P::ATTRIBUTES)
    }

    /// Adds a custom resource.
    pub fn custom_resource(&mut self, id: &str, cr: CustomResource) -> Handle<CustomResource> {
        if !(cr.resource_type.starts_with("Custom::")
            || cr.resource_type == "AWS::CloudFormation::CustomResource")
        {
            self.error(format!(
                "custom resource type `{}` must start with `Custom::`",
                cr.resource_type
            ));
        }
        if let Some(t) = cr.service_timeout {
            if !(1..=3600).contains(&t) {
                self.error(format!(
                    "ServiceTimeout {t} must be between 1 and 3600 seconds"
                ));
            }
        }
        let props = cr.render();
        self.raw_resource(id, &cr.resource_type.clone(), props, &[])
    }

    fn raw_resource<P>(
        &mut self,
        id: &str,
        cfn_type: &str,
        properties: Json,
        attrs: &'static [&'static str],
    ) -> Handle<P> {
        let (node, logical_id) = self.element(id, "CfnResource", Some(cfn_type.into()));
        let path = self.stack.path_string(node);
        let mut metadata = IndexMap::new();
        metadata.insert("aws:cdk:path".to_string(), Json::String(path.clone()));
        self.stack.template.resources.insert(
            logical_id.clone(),
            Resource {
                type_: cfn_type.into(),
                properties,
                depends_on: Vec::new(),
                condition: None,
                deletion_policy: None,
                update_replace_policy: None,
                metadata,
                refs: Vec::new(),
                conditions_used: Vec::new(),
            },
        );
        self.stack.attributes.insert(logical_id.clone(), attrs);
        Handle {
            logical_id,
            path,
            _p: PhantomData,
        }
    }

    /// Makes `resource` wait for `on` (`DependsOn`, rendered sorted).
    pub fn add_dependency<A, B>(&mut self, resource: &Handle<A>, on: &Handle<B>) {
        self.stack
            .resource_mut(&resource.logical_id)
            .depends_on
            .push(on.logical_id.clone());
    }

    /// Creates the resource only when `condition` holds.
    pub fn set_condition<A>(&mut self, resource: &Handle<A>, condition: &ConditionHandle) {
        self.stack.resource_mut(&resource.logical_id).condition = Some(condition.0.clone());
    }

    /// CDK's RemovalPolicy: sets DeletionPolicy and UpdateReplacePolicy together.
    pub fn set_removal_policy<A>(&mut self, resource: &Handle<A>, policy: RemovalPolicy) {
        let p = match policy {
            RemovalPolicy::Destroy => Policy::Delete,
            RemovalPolicy::Retain => Policy::Retain,
        };
        let r = self.stack.resource_mut(&resource.logical_id);
        r.deletion_policy = Some(p);
        r.update_replace_policy = Some(p);
    }

    /// Adds a metadata entry to a resource.
    pub fn add_metadata<A>(&mut self, resource: &Handle<A>, key: &str, v: Json) {
        self.stack
            .resource_mut(&resource.logical_id)
            .metadata
            .insert(key.into(), v);
    }

    /// Escape hatch: sets a property path (dot-separated) on a rendered resource.
    pub fn add_property_override<A>(&mut self, resource: &Handle<A>, path: &str, v: Json) {
        let r = self.stack.resource_mut(&resource.logical_id);
        let mut cur = &mut r.properties;
        let parts: Vec<&str> = path.split('.').collect();
        for (i, p) in parts.iter().enumerate() {
            if !cur.is_object() {
                *cur = json!({});
            }
            let obj = cur.as_object_mut().expect("object");
            if i + 1 == parts.len() {
                obj.insert((*p).into(), v);
                return;
            }
            cur = obj.entry(p.to_string()).or_insert_with(|| json!({}));
        }
    }

    /// A template parameter. At the stack root its logical id is exactly `id`.
    pub fn parameter<T>(&mut self, id: &str, p: Parameter) -> ParamHandle<T> {
        let (_, logical_id) = self.element(id, "CfnParameter", None);
        self.stack.template.parameters.insert(logical_id.clone(), p);
        ParamHandle {
            logical_id,
            _t: PhantomData,
        }
    }

    /// A named condition (`Fn::Equals`/`And`/`Or`/`Not` expression).
    pub fn condition(&mut self, id: &str, expr: Expr) -> ConditionHandle {
        let (_, logical_id) = self.element(id, "CfnCondition", None);
        self.stack
            .template
            .conditions
            .insert(logical_id.clone(), expr);
        ConditionHandle(logical_id)
    }

    /// A template rule.
    pub fn rule(&mut self, id: &str, rule: Rule) {
        let (_, logical_id) = self.element(id, "CfnRule", None);
        self.stack.template.rules.insert(logical_id, rule);
    }

    /// An output. At the stack root its logical id is exactly `id`.
    pub fn output(
        &mut self,
        id: &str,
        value: impl Into<Expr>,
        description: &str,
        condition: Option<&ConditionHandle>,
    ) {
        let (_, logical_id) = self.element(id, "CfnOutput", None);
        self.stack.template.outputs.insert(
            logical_id,
            Output {
                value: value.into(),
                description: Some(description.into()),
                export_name: None,
                condition: condition.map(|c| c.0.clone()),
            },
        );
    }

    /// Registers a file asset (content-addressed) and returns where it will be in S3.
    pub fn file_asset(&mut self, asset: FileAsset) -> AssetLocation {
        let loc = AssetLocation {
            bucket: Value::sub(ASSET_BUCKET),
            key: Value::from(asset.object_key()),
            sha256: asset.sha256.clone(),
        };
        if !self.stack.assets.iter().any(|a| a.sha256 == asset.sha256) {
            self.stack.assets.push(asset);
        }
        loc
    }

    /// The value of a literal or of a parameter's default, for synth-time checks.
    pub fn known_value(&self, e: &Expr) -> Option<Json> {
        self.stack.known_value(e)
    }

    /// A pseudo parameter.
    pub fn pseudo(&self, p: Pseudo) -> Value<String> {
        Value::pseudo(p)
    }
}

/// An application: one or more stacks, synthesized together.
#[derive(Debug, Default)]
pub struct App {
    stacks: Vec<Stack>,
}

/// The synthesized output of one stack.
#[derive(Debug, Clone)]
pub struct SynthesizedStack {
    pub name: String,
    pub template: Json,
    pub template_yaml: String,
    pub assets: Vec<FileAsset>,
    pub tags: IndexMap<String, String>,
    pub parameter_values: IndexMap<String, String>,
    pub logical_ids: BTreeMap<String, String>,
}

/// The result of [`App::synth`]: templates, assets and the construct tree, ready to be written.
#[derive(Debug, Clone)]
pub struct Synthesized {
    pub stacks: Vec<SynthesizedStack>,
    pub tree: Json,
}

impl App {
    pub fn new() -> App {
        App::default()
    }

    pub fn add_stack(&mut self, stack: Stack) {
        self.stacks.push(stack);
    }

    pub fn stacks(&self) -> &[Stack] {
        &self.stacks
    }

    pub fn stack_mut(&mut self, name: &str) -> Option<&mut Stack> {
        self.stacks.iter_mut().find(|s| s.name == name)
    }

    /// Validate every stack (all errors of all stacks together), then emit.
    pub fn synth(&self) -> Result<Synthesized, SynthError> {
        let mut errors = Vec::new();
        let mut names = BTreeSet::new();
        for s in &self.stacks {
            if !names.insert(s.name.clone()) {
                errors.push(ValidationError {
                    path: s.name.clone(),
                    message: "two stacks have this name; stack names must be unique in an app"
                        .into(),
                });
            }
            if let Err(e) = s.validate() {
                errors.extend(e.0);
            }
        }
        if !errors.is_empty() {
            return Err(SynthError(errors));
        }
        let mut stacks = Vec::new();
        let mut children = serde_json::Map::new();
        for s in &self.stacks {
            let t = s.synth_template()?;
            children.insert(s.name.clone(), s.tree_json());
            stacks.push(SynthesizedStack {
                name: s.name.clone(),
                template: t.to_json(),
                template_yaml: t.to_yaml_string(),
                assets: s.assets.clone(),
                tags: s.tags.clone(),
                parameter_values: s.parameter_values.clone(),
                logical_ids: s.logical_ids(),
            });
        }
        let tree = json!({
            "version": "tree-0.1",
            "tree": {"id": "App", "path": "", "children": children,
                     "constructInfo": {"fqn": "constructs.App", "version": env!("CARGO_PKG_VERSION")}}
        });
        Ok(Synthesized { stacks, tree })
    }
}
