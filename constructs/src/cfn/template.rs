//! The template document: parameters, rules, mappings, conditions, resources, outputs.
//!
//! Everything is kept in insertion order (the construct tree's order), so the same program always
//! writes the same bytes.

use indexmap::IndexMap;
use serde_json::{json, Map as JsonMap, Value as Json};

use super::expr::Expr;

/// The type of a parameter, AWS-specific types included (validated by CloudFormation at deploy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParameterType {
    String,
    Number,
    NumberList,
    CommaDelimitedList,
    /// An AWS-specific type such as `AWS::EC2::VPC::Id`.
    Aws(String),
    /// `List<AWS::…>`, e.g. `List<AWS::EC2::Subnet::Id>`.
    AwsList(String),
    /// `AWS::SSM::Parameter::Value<T>`: the value is read from SSM at deploy.
    SsmValue(String),
}

impl ParameterType {
    pub fn vpc_id() -> Self {
        ParameterType::Aws("AWS::EC2::VPC::Id".into())
    }
    pub fn subnet_id() -> Self {
        ParameterType::Aws("AWS::EC2::Subnet::Id".into())
    }
    pub fn subnet_ids() -> Self {
        ParameterType::AwsList("AWS::EC2::Subnet::Id".into())
    }
    /// An AMI id read from an SSM parameter (e.g. the AL2023 public parameter).
    pub fn ssm_image_id() -> Self {
        ParameterType::SsmValue("AWS::EC2::Image::Id".into())
    }

    pub fn as_str(&self) -> String {
        match self {
            ParameterType::String => "String".into(),
            ParameterType::Number => "Number".into(),
            ParameterType::NumberList => "List<Number>".into(),
            ParameterType::CommaDelimitedList => "CommaDelimitedList".into(),
            ParameterType::Aws(t) => t.clone(),
            ParameterType::AwsList(t) => format!("List<{t}>"),
            ParameterType::SsmValue(t) => format!("AWS::SSM::Parameter::Value<{t}>"),
        }
    }

    /// Whether `Ref` yields a list.
    pub fn is_list(&self) -> bool {
        matches!(
            self,
            ParameterType::NumberList
                | ParameterType::CommaDelimitedList
                | ParameterType::AwsList(_)
        )
    }
}

/// A template parameter with its constraints.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    pub type_: ParameterType,
    pub description: Option<String>,
    /// Rendered as a string (CloudFormation's representation of every default).
    pub default: Option<String>,
    pub allowed_values: Vec<String>,
    pub allowed_pattern: Option<String>,
    pub min_length: Option<u32>,
    pub max_length: Option<u32>,
    pub min_value: Option<f64>,
    pub max_value: Option<f64>,
    pub constraint_description: Option<String>,
    pub no_echo: bool,
}

impl Parameter {
    pub fn new(type_: ParameterType) -> Self {
        Parameter {
            type_,
            description: None,
            default: None,
            allowed_values: Vec::new(),
            allowed_pattern: None,
            min_length: None,
            max_length: None,
            min_value: None,
            max_value: None,
            constraint_description: None,
            no_echo: false,
        }
    }
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }
    pub fn default(mut self, d: impl Into<String>) -> Self {
        self.default = Some(d.into());
        self
    }
    pub fn allowed_values<I: IntoIterator<Item = S>, S: Into<String>>(mut self, v: I) -> Self {
        self.allowed_values = v.into_iter().map(Into::into).collect();
        self
    }
    pub fn allowed_pattern(mut self, p: impl Into<String>) -> Self {
        self.allowed_pattern = Some(p.into());
        self
    }
    pub fn length(mut self, min: Option<u32>, max: Option<u32>) -> Self {
        self.min_length = min;
        self.max_length = max;
        self
    }
    pub fn min_value(mut self, v: f64) -> Self {
        self.min_value = Some(v);
        self
    }
    pub fn max_value(mut self, v: f64) -> Self {
        self.max_value = Some(v);
        self
    }
    pub fn constraint_description(mut self, d: impl Into<String>) -> Self {
        self.constraint_description = Some(d.into());
        self
    }

    pub fn to_json(&self) -> Json {
        let mut m = JsonMap::new();
        m.insert("Type".into(), self.type_.as_str().into());
        if let Some(d) = &self.description {
            m.insert("Description".into(), d.clone().into());
        }
        if let Some(d) = &self.default {
            m.insert("Default".into(), d.clone().into());
        }
        if !self.allowed_values.is_empty() {
            m.insert("AllowedValues".into(), json!(self.allowed_values));
        }
        if let Some(p) = &self.allowed_pattern {
            m.insert("AllowedPattern".into(), p.clone().into());
        }
        if let Some(v) = self.min_length {
            m.insert("MinLength".into(), v.into());
        }
        if let Some(v) = self.max_length {
            m.insert("MaxLength".into(), v.into());
        }
        if let Some(v) = self.min_value {
            m.insert("MinValue".into(), num(v));
        }
        if let Some(v) = self.max_value {
            m.insert("MaxValue".into(), num(v));
        }
        if let Some(d) = &self.constraint_description {
            m.insert("ConstraintDescription".into(), d.clone().into());
        }
        if self.no_echo {
            m.insert("NoEcho".into(), true.into());
        }
        Json::Object(m)
    }
}

fn num(v: f64) -> Json {
    if v.fract() == 0.0 {
        Json::from(v as i64)
    } else {
        Json::from(v)
    }
}

/// `DeletionPolicy` / `UpdateReplacePolicy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Delete,
    Retain,
    RetainExceptOnCreate,
    Snapshot,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Delete => "Delete",
            Policy::Retain => "Retain",
            Policy::RetainExceptOnCreate => "RetainExceptOnCreate",
            Policy::Snapshot => "Snapshot",
        }
    }
}

/// A resource entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub type_: String,
    /// Rendered properties (a JSON object; intrinsics already in CloudFormation form).
    pub properties: Json,
    /// Logical ids this resource waits for (rendered sorted, without duplicates).
    pub depends_on: Vec<String>,
    pub condition: Option<String>,
    pub deletion_policy: Option<Policy>,
    pub update_replace_policy: Option<Policy>,
    pub metadata: IndexMap<String, Json>,
    /// Expressions used by the properties, kept for reference validation.
    pub(crate) refs: Vec<String>,
    pub(crate) conditions_used: Vec<String>,
}

impl Resource {
    pub fn to_json(&self) -> Json {
        let mut m = JsonMap::new();
        m.insert("Type".into(), self.type_.clone().into());
        if let Some(c) = &self.condition {
            m.insert("Condition".into(), c.clone().into());
        }
        if self.properties.as_object().is_some_and(|o| !o.is_empty()) {
            m.insert("Properties".into(), self.properties.clone());
        }
        if !self.depends_on.is_empty() {
            let mut d = self.depends_on.clone();
            d.sort();
            d.dedup();
            m.insert("DependsOn".into(), json!(d));
        }
        if let Some(p) = self.deletion_policy {
            m.insert("DeletionPolicy".into(), p.as_str().into());
        }
        if let Some(p) = self.update_replace_policy {
            m.insert("UpdateReplacePolicy".into(), p.as_str().into());
        }
        if !self.metadata.is_empty() {
            m.insert(
                "Metadata".into(),
                Json::Object(self.metadata.clone().into_iter().collect()),
            );
        }
        Json::Object(m)
    }
}

/// An output.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub value: Expr,
    pub description: Option<String>,
    pub export_name: Option<Expr>,
    pub condition: Option<String>,
}

impl Output {
    pub fn to_json(&self) -> Json {
        let mut m = JsonMap::new();
        if let Some(d) = &self.description {
            m.insert("Description".into(), d.clone().into());
        }
        m.insert("Value".into(), self.value.to_json());
        if let Some(e) = &self.export_name {
            m.insert("Export".into(), json!({"Name": e.to_json()}));
        }
        if let Some(c) = &self.condition {
            m.insert("Condition".into(), c.clone().into());
        }
        Json::Object(m)
    }
}

/// A template rule: when `condition` holds (or always), every assertion must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub condition: Option<Expr>,
    pub assertions: Vec<(Expr, String)>,
}

impl Rule {
    pub fn to_json(&self) -> Json {
        let mut m = JsonMap::new();
        if let Some(c) = &self.condition {
            m.insert("RuleCondition".into(), c.to_json());
        }
        let a: Vec<Json> = self
            .assertions
            .iter()
            .map(|(e, d)| json!({"Assert": e.to_json(), "AssertDescription": d}))
            .collect();
        m.insert("Assertions".into(), Json::Array(a));
        Json::Object(m)
    }
}

/// A whole template.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Template {
    pub description: Option<String>,
    pub metadata: IndexMap<String, Json>,
    pub parameters: IndexMap<String, Parameter>,
    pub rules: IndexMap<String, Rule>,
    pub mappings: IndexMap<String, IndexMap<String, IndexMap<String, Json>>>,
    pub conditions: IndexMap<String, Expr>,
    pub resources: IndexMap<String, Resource>,
    pub outputs: IndexMap<String, Output>,
}

impl Template {
    pub fn to_json(&self) -> Json {
        let mut m = JsonMap::new();
        m.insert("AWSTemplateFormatVersion".into(), "2010-09-09".into());
        if let Some(d) = &self.description {
            m.insert("Description".into(), d.clone().into());
        }
        if !self.metadata.is_empty() {
            m.insert(
                "Metadata".into(),
                Json::Object(self.metadata.clone().into_iter().collect()),
            );
        }
        let section = |m: &mut JsonMap<String, Json>, name: &str, entries: Vec<(String, Json)>| {
            if !entries.is_empty() {
                m.insert(name.into(), Json::Object(entries.into_iter().collect()));
            }
        };
        section(
            &mut m,
            "Parameters",
            self.parameters
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        );
        section(
            &mut m,
            "Rules",
            self.rules
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        );
        section(
            &mut m,
            "Mappings",
            self.mappings
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect(),
        );
        section(
            &mut m,
            "Conditions",
            self.conditions
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        );
        section(
            &mut m,
            "Resources",
            self.resources
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        );
        section(
            &mut m,
            "Outputs",
            self.outputs
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        );
        Json::Object(m)
    }

    /// Pretty JSON with a trailing newline (CDK writes 1-space indentation; we use serde's 2).
    pub fn to_json_string(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.to_json()).expect("template serializes");
        s.push('\n');
        s
    }

    pub fn to_yaml_string(&self) -> String {
        serde_yaml::to_string(&self.to_json()).expect("template serializes to YAML")
    }
}
