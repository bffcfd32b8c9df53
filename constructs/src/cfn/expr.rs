//! CloudFormation values: literals and intrinsic functions as a typed expression tree.
//!
//! An [`Expr`] is never formatted into a literal: validation can only look at `Lit` values, and a
//! deploy-time value cannot be measured or pattern-checked by mistake. [`Value<T>`] adds the static
//! type of what the expression evaluates to (`Value<String>`, `Value<Vec<String>>`, `Value<i64>`).

use std::marker::PhantomData;

use indexmap::IndexMap;
use serde::{Serialize, Serializer};
use serde_json::{json, Value as Json};

/// Pseudo parameters (`Ref: AWS::…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pseudo {
    AccountId,
    Region,
    Partition,
    StackName,
    StackId,
    UrlSuffix,
    NotificationArns,
}

impl Pseudo {
    pub fn name(self) -> &'static str {
        match self {
            Pseudo::AccountId => "AWS::AccountId",
            Pseudo::Region => "AWS::Region",
            Pseudo::Partition => "AWS::Partition",
            Pseudo::StackName => "AWS::StackName",
            Pseudo::StackId => "AWS::StackId",
            Pseudo::UrlSuffix => "AWS::URLSuffix",
            Pseudo::NotificationArns => "AWS::NotificationARNs",
        }
    }
}

/// A CloudFormation expression: a literal, a structure holding expressions, or an intrinsic.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal JSON value (no intrinsics inside).
    Lit(Json),
    /// A list whose items may be expressions.
    List(Vec<Expr>),
    /// An object whose values may be expressions (key order kept).
    Object(IndexMap<String, Expr>),
    /// `Ref` to a parameter or resource (by logical id).
    Ref(String),
    Pseudo(Pseudo),
    /// `Ref: AWS::NoValue` — removes the property where it appears.
    NoValue,
    GetAtt(String, String),
    /// `Fn::Sub` with an optional variable map.
    Sub(String, IndexMap<String, Expr>),
    Join(String, Vec<Expr>),
    /// `Fn::If` on a named condition.
    If(String, Box<Expr>, Box<Expr>),
    Select(u32, Box<Expr>),
    Split(String, Box<Expr>),
    Base64(Box<Expr>),
    GetAzs(Box<Expr>),
    ImportValue(Box<Expr>),
    FindInMap(String, Box<Expr>, Box<Expr>),
    // Condition functions (Conditions section, Fn::If, Rules).
    Equals(Box<Expr>, Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// `{"Condition": name}` inside a condition expression.
    Condition(String),
    // Rule-only functions (Rules section).
    Contains(Box<Expr>, Box<Expr>),
    EachMemberEquals(Box<Expr>, Box<Expr>),
    EachMemberIn(Box<Expr>, Box<Expr>),
    /// `Fn::ValueOfAll: [parameter type, attribute]`.
    ValueOfAll(String, String),
}

fn b(e: Expr) -> Box<Expr> {
    Box::new(e)
}

impl Expr {
    pub fn lit(v: impl Into<Json>) -> Expr {
        Expr::Lit(v.into())
    }
    pub fn str(s: impl Into<String>) -> Expr {
        Expr::Lit(Json::String(s.into()))
    }
    pub fn reference(logical_id: impl Into<String>) -> Expr {
        Expr::Ref(logical_id.into())
    }
    pub fn get_att(logical_id: impl Into<String>, attr: impl Into<String>) -> Expr {
        Expr::GetAtt(logical_id.into(), attr.into())
    }
    /// `Fn::Sub` without a variable map (`${Param}`, `${Res.Attr}`, `${AWS::Region}`).
    pub fn sub(text: impl Into<String>) -> Expr {
        Expr::Sub(text.into(), IndexMap::new())
    }
    pub fn sub_with<K: Into<String>>(
        text: impl Into<String>,
        vars: impl IntoIterator<Item = (K, Expr)>,
    ) -> Expr {
        Expr::Sub(
            text.into(),
            vars.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        )
    }
    pub fn join(delim: impl Into<String>, parts: impl IntoIterator<Item = Expr>) -> Expr {
        Expr::Join(delim.into(), parts.into_iter().collect())
    }
    /// Concatenation with the shortest rendering: adjacent literals merged, one part returned bare,
    /// otherwise `Fn::Join` with `""`.
    pub fn concat(parts: impl IntoIterator<Item = Expr>) -> Expr {
        let mut out: Vec<Expr> = Vec::new();
        for p in parts {
            let p = match p {
                Expr::Join(d, inner) if d.is_empty() => {
                    out.extend(inner);
                    continue;
                }
                p => p,
            };
            match (out.last_mut(), &p) {
                (Some(Expr::Lit(Json::String(a))), Expr::Lit(Json::String(bs))) => a.push_str(bs),
                _ => out.push(p),
            }
        }
        match out.len() {
            0 => Expr::str(""),
            1 => out.pop().expect("one"),
            _ => Expr::Join(String::new(), out),
        }
    }
    pub fn if_(condition: impl Into<String>, then: Expr, otherwise: Expr) -> Expr {
        Expr::If(condition.into(), b(then), b(otherwise))
    }
    pub fn select(index: u32, list: Expr) -> Expr {
        Expr::Select(index, b(list))
    }
    pub fn split(delim: impl Into<String>, text: Expr) -> Expr {
        Expr::Split(delim.into(), b(text))
    }
    pub fn base64(e: Expr) -> Expr {
        Expr::Base64(b(e))
    }
    pub fn get_azs(region: Expr) -> Expr {
        Expr::GetAzs(b(region))
    }
    pub fn import_value(name: Expr) -> Expr {
        Expr::ImportValue(b(name))
    }
    pub fn find_in_map(map: impl Into<String>, top: Expr, second: Expr) -> Expr {
        Expr::FindInMap(map.into(), b(top), b(second))
    }
    pub fn equals(a: Expr, bb: Expr) -> Expr {
        Expr::Equals(b(a), b(bb))
    }
    pub fn and(items: impl IntoIterator<Item = Expr>) -> Expr {
        Expr::And(items.into_iter().collect())
    }
    pub fn or(items: impl IntoIterator<Item = Expr>) -> Expr {
        Expr::Or(items.into_iter().collect())
    }
    #[allow(clippy::should_implement_trait)]
    pub fn not(e: Expr) -> Expr {
        Expr::Not(b(e))
    }
    pub fn contains(list: Expr, value: Expr) -> Expr {
        Expr::Contains(b(list), b(value))
    }
    pub fn each_member_equals(list: Expr, value: Expr) -> Expr {
        Expr::EachMemberEquals(b(list), b(value))
    }
    pub fn each_member_in(list: Expr, allowed: Expr) -> Expr {
        Expr::EachMemberIn(b(list), b(allowed))
    }
    pub fn object<K: Into<String>>(entries: impl IntoIterator<Item = (K, Expr)>) -> Expr {
        Expr::Object(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
    pub fn list(items: impl IntoIterator<Item = Expr>) -> Expr {
        Expr::List(items.into_iter().collect())
    }

    /// The literal, if this is one.
    pub fn as_lit(&self) -> Option<&Json> {
        match self {
            Expr::Lit(v) => Some(v),
            _ => None,
        }
    }

    /// Every logical id referenced by `Ref`/`GetAtt`/`${X}`/`${X.Attr}` (for validation and renames).
    pub fn references(&self, out: &mut Vec<String>) {
        match self {
            Expr::Lit(_)
            | Expr::Pseudo(_)
            | Expr::NoValue
            | Expr::Condition(_)
            | Expr::ValueOfAll(..) => {}
            Expr::List(items) | Expr::And(items) | Expr::Or(items) | Expr::Join(_, items) => {
                items.iter().for_each(|i| i.references(out))
            }
            Expr::Object(m) => m.values().for_each(|i| i.references(out)),
            Expr::Ref(id) => out.push(id.clone()),
            Expr::GetAtt(id, _) => out.push(id.clone()),
            Expr::Sub(text, vars) => {
                for name in sub_variables(text) {
                    let base = name.split('.').next().unwrap_or(&name).to_string();
                    if !vars.contains_key(&base) && !base.starts_with("AWS::") {
                        out.push(base);
                    }
                }
                vars.values().for_each(|v| v.references(out));
            }
            Expr::If(_, a, c)
            | Expr::Equals(a, c)
            | Expr::FindInMap(_, a, c)
            | Expr::Contains(a, c)
            | Expr::EachMemberEquals(a, c)
            | Expr::EachMemberIn(a, c) => {
                a.references(out);
                c.references(out);
            }
            Expr::Select(_, e)
            | Expr::Split(_, e)
            | Expr::Base64(e)
            | Expr::GetAzs(e)
            | Expr::ImportValue(e)
            | Expr::Not(e) => e.references(out),
        }
    }

    /// Every condition name used by `Fn::If`/`Condition` (for validation).
    pub fn condition_names(&self, out: &mut Vec<String>) {
        match self {
            Expr::If(c, a, e) => {
                out.push(c.clone());
                a.condition_names(out);
                e.condition_names(out);
            }
            Expr::Condition(c) => out.push(c.clone()),
            Expr::List(items) | Expr::And(items) | Expr::Or(items) | Expr::Join(_, items) => {
                items.iter().for_each(|i| i.condition_names(out))
            }
            Expr::Object(m) => m.values().for_each(|i| i.condition_names(out)),
            Expr::Sub(_, vars) => vars.values().for_each(|v| v.condition_names(out)),
            Expr::Equals(a, c)
            | Expr::FindInMap(_, a, c)
            | Expr::Contains(a, c)
            | Expr::EachMemberEquals(a, c)
            | Expr::EachMemberIn(a, c) => {
                a.condition_names(out);
                c.condition_names(out);
            }
            Expr::Select(_, e)
            | Expr::Split(_, e)
            | Expr::Base64(e)
            | Expr::GetAzs(e)
            | Expr::ImportValue(e)
            | Expr::Not(e) => e.condition_names(out),
            _ => {}
        }
    }

    /// The CloudFormation JSON.
    pub fn to_json(&self) -> Json {
        match self {
            Expr::Lit(v) => v.clone(),
            Expr::List(items) => Json::Array(items.iter().map(Expr::to_json).collect()),
            Expr::Object(m) => {
                Json::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
            Expr::Ref(id) => json!({"Ref": id}),
            Expr::Pseudo(p) => json!({"Ref": p.name()}),
            Expr::NoValue => json!({"Ref": "AWS::NoValue"}),
            Expr::GetAtt(id, attr) => json!({"Fn::GetAtt": [id, attr]}),
            Expr::Sub(text, vars) if vars.is_empty() => json!({"Fn::Sub": text}),
            Expr::Sub(text, vars) => {
                let vars: serde_json::Map<String, Json> =
                    vars.iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
                json!({"Fn::Sub": [text, vars]})
            }
            Expr::Join(d, parts) => {
                json!({"Fn::Join": [d, parts.iter().map(Expr::to_json).collect::<Vec<_>>()]})
            }
            Expr::If(c, a, e) => json!({"Fn::If": [c, a.to_json(), e.to_json()]}),
            Expr::Select(i, l) => json!({"Fn::Select": [i.to_string(), l.to_json()]}),
            Expr::Split(d, t) => json!({"Fn::Split": [d, t.to_json()]}),
            Expr::Base64(e) => json!({"Fn::Base64": e.to_json()}),
            Expr::GetAzs(e) => json!({"Fn::GetAZs": e.to_json()}),
            Expr::ImportValue(e) => json!({"Fn::ImportValue": e.to_json()}),
            Expr::FindInMap(m, a, c) => json!({"Fn::FindInMap": [m, a.to_json(), c.to_json()]}),
            Expr::Equals(a, c) => json!({"Fn::Equals": [a.to_json(), c.to_json()]}),
            Expr::And(items) => {
                json!({"Fn::And": items.iter().map(Expr::to_json).collect::<Vec<_>>()})
            }
            Expr::Or(items) => {
                json!({"Fn::Or": items.iter().map(Expr::to_json).collect::<Vec<_>>()})
            }
            Expr::Not(e) => json!({"Fn::Not": [e.to_json()]}),
            Expr::Condition(c) => json!({"Condition": c}),
            Expr::Contains(a, c) => json!({"Fn::Contains": [a.to_json(), c.to_json()]}),
            Expr::EachMemberEquals(a, c) => {
                json!({"Fn::EachMemberEquals": [a.to_json(), c.to_json()]})
            }
            Expr::EachMemberIn(a, c) => json!({"Fn::EachMemberIn": [a.to_json(), c.to_json()]}),
            Expr::ValueOfAll(t, a) => json!({"Fn::ValueOfAll": [t, a]}),
        }
    }
}

/// The `${Name}` variables of a `Fn::Sub` text (`${!Literal}` skipped).
pub fn sub_variables(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                if !name.starts_with('!') {
                    out.push(name.to_string());
                }
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl From<&str> for Expr {
    fn from(s: &str) -> Expr {
        Expr::str(s)
    }
}
impl From<String> for Expr {
    fn from(s: String) -> Expr {
        Expr::str(s)
    }
}
impl From<Json> for Expr {
    fn from(v: Json) -> Expr {
        Expr::Lit(v)
    }
}
impl From<Pseudo> for Expr {
    fn from(p: Pseudo) -> Expr {
        Expr::Pseudo(p)
    }
}

/// A JSON document type (policy documents, ASL, SSM content).
pub type JsonDoc = Json;

/// An expression of static type `T`.
pub struct Value<T> {
    expr: Expr,
    _t: PhantomData<fn() -> T>,
}

impl<T> Value<T> {
    /// Wraps an expression the caller knows to evaluate to a `T`.
    pub fn from_expr(expr: Expr) -> Self {
        Value {
            expr,
            _t: PhantomData,
        }
    }
    pub fn expr(&self) -> &Expr {
        &self.expr
    }
    pub fn into_expr(self) -> Expr {
        self.expr
    }
    pub fn as_lit(&self) -> Option<&Json> {
        self.expr.as_lit()
    }
    /// `Fn::If(condition, self, otherwise)`.
    pub fn if_else(condition: impl Into<String>, then: Value<T>, otherwise: Value<T>) -> Value<T> {
        Value::from_expr(Expr::if_(condition, then.expr, otherwise.expr))
    }
    /// `AWS::NoValue`: removes the property.
    pub fn no_value() -> Self {
        Value::from_expr(Expr::NoValue)
    }
}

impl Value<String> {
    /// `Fn::Sub` text.
    pub fn sub(text: impl Into<String>) -> Self {
        Value::from_expr(Expr::sub(text))
    }
    pub fn pseudo(p: Pseudo) -> Self {
        Value::from_expr(Expr::Pseudo(p))
    }
    /// Minimal concatenation of string values.
    pub fn concat(parts: impl IntoIterator<Item = Value<String>>) -> Self {
        Value::from_expr(Expr::concat(parts.into_iter().map(Value::into_expr)))
    }
    /// A one-element list.
    pub fn to_list(self) -> Value<Vec<String>> {
        Value::from_expr(Expr::List(vec![self.expr]))
    }
}

impl Value<Vec<String>> {
    pub fn select(&self, index: u32) -> Value<String> {
        Value::from_expr(Expr::select(index, self.expr.clone()))
    }
    pub fn join(&self, delim: &str) -> Value<String> {
        Value::from_expr(Expr::join(delim, [self.expr.clone()]))
    }
}

impl<T> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value::from_expr(self.expr.clone())
    }
}
impl<T> std::fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.expr.fmt(f)
    }
}
impl<T> PartialEq for Value<T> {
    fn eq(&self, o: &Self) -> bool {
        self.expr == o.expr
    }
}
impl<T> Serialize for Value<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.expr.serialize(s)
    }
}
impl<T> From<Value<T>> for Expr {
    fn from(v: Value<T>) -> Expr {
        v.expr
    }
}

impl From<&str> for Value<String> {
    fn from(s: &str) -> Self {
        Value::from_expr(Expr::str(s))
    }
}
impl From<String> for Value<String> {
    fn from(s: String) -> Self {
        Value::from_expr(Expr::str(s))
    }
}
impl From<&String> for Value<String> {
    fn from(s: &String) -> Self {
        Value::from_expr(Expr::str(s.clone()))
    }
}
impl From<i64> for Value<i64> {
    fn from(n: i64) -> Self {
        Value::from_expr(Expr::lit(n))
    }
}
impl From<bool> for Value<bool> {
    fn from(v: bool) -> Self {
        Value::from_expr(Expr::lit(v))
    }
}
impl From<Json> for Value<Json> {
    fn from(v: Json) -> Self {
        Value::from_expr(Expr::Lit(v))
    }
}
impl From<Vec<&str>> for Value<Vec<String>> {
    fn from(v: Vec<&str>) -> Self {
        Value::from_expr(Expr::lit(v))
    }
}
impl From<Vec<String>> for Value<Vec<String>> {
    fn from(v: Vec<String>) -> Self {
        Value::from_expr(Expr::lit(v))
    }
}
impl From<Vec<Value<String>>> for Value<Vec<String>> {
    fn from(v: Vec<Value<String>>) -> Self {
        Value::from_expr(Expr::List(v.into_iter().map(Value::into_expr).collect()))
    }
}
