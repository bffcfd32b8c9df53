//! Typed IAM policy documents, statements and grant helpers scoped to what a construct creates.
//!
//! A statement on `Resource: "*"` can only be written with [`Statement::on_any_resource`], which
//! takes the reason (the action has no resource-level permissions); tests assert every `*` in a
//! synthesized template is one of those documented exceptions.

use indexmap::IndexMap;

use crate::cfn::{Expr, Value};

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// Who a statement applies to (resource and trust policies only).
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    /// A service, e.g. `lambda.amazonaws.com`.
    Service(String),
    /// An AWS principal (account root or role ARN).
    Aws(Expr),
}

impl Principal {
    pub fn service(s: &str) -> Principal {
        Principal::Service(s.into())
    }
    /// The account's root principal (delegates to the account's IAM policies).
    pub fn account_root() -> Principal {
        Principal::Aws(Expr::sub(
            "arn:${AWS::Partition}:iam::${AWS::AccountId}:root",
        ))
    }
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principal: Option<Principal>,
    pub actions: Vec<String>,
    pub resources: Vec<Expr>,
    /// Why the statement is on `*` (None for scoped statements).
    pub any_resource_reason: Option<&'static str>,
    /// operator → key → value(s).
    pub conditions: IndexMap<String, IndexMap<String, Expr>>,
}

impl Statement {
    fn new(effect: Effect, actions: &[&str]) -> Statement {
        Statement {
            sid: None,
            effect,
            principal: None,
            actions: actions.iter().map(|a| a.to_string()).collect(),
            resources: Vec::new(),
            any_resource_reason: None,
            conditions: IndexMap::new(),
        }
    }
    pub fn allow(actions: &[&str]) -> Statement {
        Statement::new(Effect::Allow, actions)
    }
    pub fn deny(actions: &[&str]) -> Statement {
        Statement::new(Effect::Deny, actions)
    }
    pub fn sid(mut self, sid: &str) -> Statement {
        self.sid = Some(sid.into());
        self
    }
    /// Adds a resource ARN (or ARN pattern).
    pub fn on(mut self, arn: impl Into<Expr>) -> Statement {
        self.resources.push(arn.into());
        self
    }
    pub fn on_all<I: IntoIterator<Item = E>, E: Into<Expr>>(mut self, arns: I) -> Statement {
        self.resources.extend(arns.into_iter().map(Into::into));
        self
    }
    /// `Resource: "*"`, allowed only with a reason (the action supports no resource-level
    /// permissions, or this is a key policy where `*` means "this key").
    pub fn on_any_resource(mut self, reason: &'static str) -> Statement {
        self.resources = vec![Expr::str("*")];
        self.any_resource_reason = Some(reason);
        self
    }
    pub fn principal(mut self, p: Principal) -> Statement {
        self.principal = Some(p);
        self
    }
    /// Adds a condition (`StringEquals`, `ArnLike`, …).
    pub fn condition(mut self, operator: &str, key: &str, value: impl Into<Expr>) -> Statement {
        self.conditions
            .entry(operator.into())
            .or_default()
            .insert(key.into(), value.into());
        self
    }

    /// Problems that make the statement invalid or overly broad.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.actions.is_empty() {
            out.push("a statement has no actions".to_string());
        }
        for a in &self.actions {
            let ok = a.split_once(':').is_some_and(|(svc, name)| {
                !svc.is_empty()
                    && svc
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '*')
            });
            if !ok {
                out.push(format!("action `{a}` is not of the form `service:Action`"));
            }
            if a == "*" || a.ends_with(":*") {
                out.push(format!(
                    "action `{a}` grants a whole service; list the actions needed"
                ));
            }
        }
        if self.resources.is_empty() && self.principal.is_none() {
            out.push(format!(
                "the statement for {} has no resources; scope it with `.on(arn)`",
                self.actions.join(", ")
            ));
        }
        if self
            .resources
            .iter()
            .any(|r| r.as_lit().and_then(|v| v.as_str()) == Some("*"))
            && self.any_resource_reason.is_none()
        {
            out.push(format!("the statement for {} is on `*` without a reason; use `.on_any_resource(reason)` or scope it", self.actions.join(", ")));
        }
        out
    }

    pub fn to_expr(&self) -> Expr {
        let mut m: IndexMap<String, Expr> = IndexMap::new();
        if let Some(s) = &self.sid {
            m.insert("Sid".into(), Expr::str(s.clone()));
        }
        m.insert(
            "Effect".into(),
            Expr::str(match self.effect {
                Effect::Allow => "Allow",
                Effect::Deny => "Deny",
            }),
        );
        match &self.principal {
            Some(Principal::Service(s)) => {
                m.insert(
                    "Principal".into(),
                    Expr::object([("Service", Expr::str(s.clone()))]),
                );
            }
            Some(Principal::Aws(e)) => {
                m.insert("Principal".into(), Expr::object([("AWS", e.clone())]));
            }
            None => {}
        }
        let action = if self.actions.len() == 1 {
            Expr::str(self.actions[0].clone())
        } else {
            Expr::lit(self.actions.clone())
        };
        m.insert("Action".into(), action);
        if !self.resources.is_empty() {
            let r = if self.resources.len() == 1 {
                self.resources[0].clone()
            } else {
                Expr::List(self.resources.clone())
            };
            m.insert("Resource".into(), r);
        }
        if !self.conditions.is_empty() {
            let c = self
                .conditions
                .iter()
                .map(|(op, kv)| (op.clone(), Expr::Object(kv.clone())))
                .collect::<IndexMap<_, _>>();
            m.insert("Condition".into(), Expr::Object(c));
        }
        Expr::Object(m)
    }
}

/// A policy document (version 2012-10-17).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyDocument {
    pub statements: Vec<Statement>,
}

impl PolicyDocument {
    pub fn new(statements: Vec<Statement>) -> Self {
        PolicyDocument { statements }
    }

    /// Trust policy letting a service assume a role.
    pub fn assume_role(service: &str) -> Self {
        PolicyDocument::new(vec![
            Statement::allow(&["sts:AssumeRole"]).principal(Principal::service(service))
        ])
    }

    pub fn add(&mut self, s: Statement) {
        self.statements.push(s);
    }

    pub fn problems(&self) -> Vec<String> {
        self.statements
            .iter()
            .flat_map(Statement::problems)
            .collect()
    }

    pub fn to_expr(&self) -> Expr {
        Expr::object([
            ("Version", Expr::str("2012-10-17")),
            (
                "Statement",
                Expr::List(self.statements.iter().map(Statement::to_expr).collect()),
            ),
        ])
    }
}

/// An ARN in this stack's partition, region and account: `arn:${AWS::Partition}:<service>:${AWS::Region}:${AWS::AccountId}:<resource>`.
/// `resource` may contain further `${…}` references.
pub fn arn(service: &str, resource: &str) -> Expr {
    Expr::sub(format!(
        "arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{resource}"
    ))
}

/// An ARN built around a value known only at deploy (e.g. an instance id from `Ref`).
pub fn arn_with(service: &str, resource_prefix: &str, value: Value<String>) -> Expr {
    Expr::sub_with(
        format!("arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{resource_prefix}${{Value}}"),
        [("Value", value.into_expr())],
    )
}

/// An AWS managed policy ARN.
pub fn managed_policy(name: &str) -> Value<String> {
    Value::sub(format!("arn:${{AWS::Partition}}:iam::aws:policy/{name}"))
}

// ---------------------------------------------------------------------------------------------
// Grants: statements scoped to the given ARNs.

/// Read a secret's value (and metadata).
pub fn grant_secret_read(secret_arns: &[Value<String>]) -> Statement {
    Statement::allow(&[
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
    ])
    .on_all(secret_arns.iter().cloned().map(Value::into_expr))
}

/// Write a secret's value.
pub fn grant_secret_write(secret_arns: &[Value<String>]) -> Statement {
    Statement::allow(&[
        "secretsmanager:PutSecretValue",
        "secretsmanager:DescribeSecret",
    ])
    .on_all(secret_arns.iter().cloned().map(Value::into_expr))
}

/// Decrypt through one service with a customer-managed key (`kms:ViaService`).
pub fn grant_key_use_via(key_arn: Value<String>, service: &str, actions: &[&str]) -> Statement {
    Statement::allow(actions).on(key_arn).condition(
        "StringEquals",
        "kms:ViaService",
        Expr::sub(format!("{service}.${{AWS::Region}}.amazonaws.com")),
    )
}

/// Start executions of the given state machines.
pub fn grant_start_execution(state_machine_arns: &[Value<String>]) -> Statement {
    Statement::allow(&["states:StartExecution"])
        .on_all(state_machine_arns.iter().cloned().map(Value::into_expr))
}

/// Invoke the given functions (and their versions/aliases).
pub fn grant_invoke(function_arns: &[Value<String>]) -> Statement {
    let mut s = Statement::allow(&["lambda:InvokeFunction"]);
    for a in function_arns {
        s = s.on(a.clone());
        s = s.on(Expr::sub_with("${Arn}:*", [("Arn", a.expr().clone())]));
    }
    s
}

/// Write to the given log groups (`GetAtt Arn` of a log group ends in `:*`, covering its streams).
pub fn grant_log_write(log_group_arns: &[Value<String>]) -> Statement {
    Statement::allow(&["logs:CreateLogStream", "logs:PutLogEvents"])
        .on_all(log_group_arns.iter().cloned().map(Value::into_expr))
}
