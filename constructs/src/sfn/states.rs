//! The state types of ASL (JSONPath query language) and their error handlers.

use serde_json::{json, Map as JsonMap, Value};

use super::Graph;

/// `States.ALL`: matches every error; must be alone and last in `Retry`/`Catch`.
pub const STATES_ALL: &str = "States.ALL";
/// The resource of the optimised Lambda integration.
pub const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";
/// Errors the Lambda service itself raises (not the function); safe to retry.
pub const LAMBDA_SERVICE_ERRORS: [&str; 4] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];

/// Any state.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Task(Task),
    Choice(Choice),
    Wait(Wait),
    Map(Map),
    Parallel(Parallel),
    Pass(Pass),
    Succeed(Succeed),
    Fail(Fail),
}

impl State {
    pub fn name(&self) -> &str {
        match self {
            State::Task(s) => &s.name,
            State::Choice(s) => &s.name,
            State::Wait(s) => &s.name,
            State::Map(s) => &s.name,
            State::Parallel(s) => &s.name,
            State::Pass(s) => &s.name,
            State::Succeed(s) => &s.name,
            State::Fail(s) => &s.name,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            State::Task(_) => "Task",
            State::Choice(_) => "Choice",
            State::Wait(_) => "Wait",
            State::Map(_) => "Map",
            State::Parallel(_) => "Parallel",
            State::Pass(_) => "Pass",
            State::Succeed(_) => "Succeed",
            State::Fail(_) => "Fail",
        }
    }

    /// The `Next` of a state that continues (None means `End: true` for Task/Pass/Wait/Map/Parallel).
    pub fn next(&self) -> Option<&str> {
        match self {
            State::Task(s) => s.next.as_deref(),
            State::Wait(s) => s.next.as_deref(),
            State::Map(s) => s.next.as_deref(),
            State::Parallel(s) => s.next.as_deref(),
            State::Pass(s) => s.next.as_deref(),
            _ => None,
        }
    }

    /// Every state this one can transition to (Next, Choice rules and Default, Catch targets).
    pub fn successors(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.next().into_iter().collect();
        if let State::Choice(c) = self {
            out.extend(c.rules.iter().map(|(_, n)| n.as_str()));
            out.extend(c.default.as_deref());
        }
        out.extend(self.catchers().iter().map(|c| c.next.as_str()));
        out
    }

    pub fn retriers(&self) -> &[Retry] {
        match self {
            State::Task(s) => &s.retry,
            State::Map(s) => &s.retry,
            State::Parallel(s) => &s.retry,
            _ => &[],
        }
    }

    pub fn catchers(&self) -> &[Catch] {
        match self {
            State::Task(s) => &s.catch,
            State::Map(s) => &s.catch,
            State::Parallel(s) => &s.catch,
            _ => &[],
        }
    }

    /// Nested graphs: the branches of a Parallel, the item processor of a Map.
    pub fn sub_graphs(&self) -> Vec<&Graph> {
        match self {
            State::Parallel(p) => p.branches.iter().collect(),
            State::Map(m) => m.item_processor.iter().collect(),
            _ => Vec::new(),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            State::Task(s) => s.to_json(),
            State::Choice(s) => s.to_json(),
            State::Wait(s) => s.to_json(),
            State::Map(s) => s.to_json(),
            State::Parallel(s) => s.to_json(),
            State::Pass(s) => s.to_json(),
            State::Succeed(s) => s.to_json(),
            State::Fail(s) => s.to_json(),
        }
    }
}

macro_rules! into_state {
    ($($t:ident),*) => {$(
        impl From<$t> for State {
            fn from(s: $t) -> State { State::$t(s) }
        }
    )*};
}
into_state!(Task, Choice, Wait, Map, Parallel, Pass, Succeed, Fail);

/// Setters shared by the states that have them.
macro_rules! common_setters {
    ($t:ident) => {
        impl $t {
            pub fn comment(mut self, c: impl Into<String>) -> Self {
                self.comment = Some(c.into());
                self
            }
            pub fn input_path(mut self, p: impl Into<String>) -> Self {
                self.input_path = Some(p.into());
                self
            }
            pub fn output_path(mut self, p: impl Into<String>) -> Self {
                self.output_path = Some(p.into());
                self
            }
        }
    };
}
macro_rules! next_setter {
    ($t:ident) => {
        impl $t {
            /// The state that follows; without it the state ends the execution (`End: true`).
            pub fn next(mut self, n: impl Into<String>) -> Self {
                self.next = Some(n.into());
                self
            }
        }
    };
}
macro_rules! result_setters {
    ($t:ident) => {
        impl $t {
            /// Where the result goes in the state's input (e.g. `$.Hsm`).
            pub fn result_path(mut self, p: impl Into<String>) -> Self {
                self.result_path = Some(Value::String(p.into()));
                self
            }
            /// `ResultPath: null`: drop the result, pass the input through.
            pub fn discard_result(mut self) -> Self {
                self.result_path = Some(Value::Null);
                self
            }
        }
    };
}
macro_rules! error_setters {
    ($t:ident) => {
        impl $t {
            /// Appends a retrier (order matters: `States.ALL` goes last).
            pub fn retry(mut self, r: Retry) -> Self {
                self.retry.push(r);
                self
            }
            /// Appends a catcher (order matters: `States.ALL` goes last).
            pub fn catch(mut self, c: Catch) -> Self {
                self.catch.push(c);
                self
            }
        }
    };
}

fn put_str(m: &mut JsonMap<String, Value>, k: &str, v: &Option<String>) {
    if let Some(v) = v {
        m.insert(k.into(), Value::String(v.clone()));
    }
}
fn put_val(m: &mut JsonMap<String, Value>, k: &str, v: &Option<Value>) {
    if let Some(v) = v {
        m.insert(k.into(), v.clone());
    }
}
fn put_next_or_end(m: &mut JsonMap<String, Value>, next: &Option<String>) {
    match next {
        Some(n) => m.insert("Next".into(), Value::String(n.clone())),
        None => m.insert("End".into(), Value::Bool(true)),
    };
}
fn put_errors(m: &mut JsonMap<String, Value>, retry: &[Retry], catch: &[Catch]) {
    if !retry.is_empty() {
        m.insert("Retry".into(), retry.iter().map(Retry::to_json).collect());
    }
    if !catch.is_empty() {
        m.insert("Catch".into(), catch.iter().map(Catch::to_json).collect());
    }
}
fn head(ty: &str, comment: &Option<String>) -> JsonMap<String, Value> {
    let mut m = JsonMap::new();
    m.insert("Type".into(), Value::String(ty.into()));
    put_str(&mut m, "Comment", comment);
    m
}

// ---------------------------------------------------------------------------------------------
// Task

/// A `Task` state.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub name: String,
    pub comment: Option<String>,
    pub resource: String,
    pub input_path: Option<String>,
    pub parameters: Option<Value>,
    pub result_selector: Option<Value>,
    pub result_path: Option<Value>,
    pub output_path: Option<String>,
    pub timeout_seconds: Option<u32>,
    pub heartbeat_seconds: Option<u32>,
    pub retry: Vec<Retry>,
    pub catch: Vec<Catch>,
    pub next: Option<String>,
}

impl Task {
    /// A task calling `resource` (an ARN or a `${Variable}`).
    pub fn new(name: impl Into<String>, resource: impl Into<String>) -> Self {
        Task {
            name: name.into(),
            comment: None,
            resource: resource.into(),
            input_path: None,
            parameters: None,
            result_selector: None,
            result_path: None,
            output_path: None,
            timeout_seconds: None,
            heartbeat_seconds: None,
            retry: Vec::new(),
            catch: Vec::new(),
            next: None,
        }
    }

    /// The optimised Lambda integration (`arn:aws:states:::lambda:invoke`) calling `function_arn`
    /// (an ARN or a `${Variable}` filled by `DefinitionSubstitutions`). The payload defaults to the
    /// whole state input; the Lambda service's own errors are retried (like CDK's LambdaInvoke):
    /// that retrier comes first, before any you add.
    pub fn lambda(name: impl Into<String>, function_arn: impl Into<String>) -> Self {
        let mut t = Task::new(name, LAMBDA_INVOKE);
        t.parameters = Some(json!({"FunctionName": function_arn.into(), "Payload.$": "$"}));
        t.retry.push(Retry::lambda_service());
        t
    }

    /// Sets the Lambda `Payload` (a JSON object; keys ending in `.$` are paths).
    pub fn payload(mut self, payload: Value) -> Self {
        self.set_payload("Payload", payload);
        self
    }

    /// Sets the Lambda payload to the value at a path (`Payload.$`).
    pub fn payload_path(mut self, path: impl Into<String>) -> Self {
        self.set_payload("Payload.$", Value::String(path.into()));
        self
    }

    fn set_payload(&mut self, key: &str, v: Value) {
        let params = self.parameters.get_or_insert_with(|| json!({}));
        if let Value::Object(m) = params {
            m.remove("Payload");
            m.remove("Payload.$");
            m.insert(key.into(), v);
        }
    }

    /// Removes the default retrier for Lambda service errors.
    pub fn no_service_retry(mut self) -> Self {
        self.retry.retain(|r| r != &Retry::lambda_service());
        self
    }

    pub fn parameters(mut self, p: Value) -> Self {
        self.parameters = Some(p);
        self
    }
    pub fn result_selector(mut self, s: Value) -> Self {
        self.result_selector = Some(s);
        self
    }
    pub fn timeout_seconds(mut self, s: u32) -> Self {
        self.timeout_seconds = Some(s);
        self
    }
    pub fn heartbeat_seconds(mut self, s: u32) -> Self {
        self.heartbeat_seconds = Some(s);
        self
    }

    pub fn to_json(&self) -> Value {
        let mut m = head("Task", &self.comment);
        m.insert("Resource".into(), Value::String(self.resource.clone()));
        put_str(&mut m, "InputPath", &self.input_path);
        put_val(&mut m, "Parameters", &self.parameters);
        put_val(&mut m, "ResultSelector", &self.result_selector);
        put_val(&mut m, "ResultPath", &self.result_path);
        put_str(&mut m, "OutputPath", &self.output_path);
        if let Some(t) = self.timeout_seconds {
            m.insert("TimeoutSeconds".into(), t.into());
        }
        if let Some(t) = self.heartbeat_seconds {
            m.insert("HeartbeatSeconds".into(), t.into());
        }
        put_errors(&mut m, &self.retry, &self.catch);
        put_next_or_end(&mut m, &self.next);
        Value::Object(m)
    }
}
common_setters!(Task);
next_setter!(Task);
result_setters!(Task);
error_setters!(Task);

// ---------------------------------------------------------------------------------------------
// Retry / Catch

/// `JitterStrategy` of a retrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    Full,
    None,
}

/// A retrier.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    pub error_equals: Vec<String>,
    pub interval_seconds: Option<u32>,
    pub max_attempts: Option<u32>,
    pub backoff_rate: Option<f64>,
    pub max_delay_seconds: Option<u32>,
    pub jitter_strategy: Option<Jitter>,
}

impl Retry {
    /// Retries the named errors with the service defaults (1 s, 3 attempts, rate 2).
    pub fn on<I, S>(errors: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Retry {
            error_equals: errors.into_iter().map(Into::into).collect(),
            interval_seconds: None,
            max_attempts: None,
            backoff_rate: None,
            max_delay_seconds: None,
            jitter_strategy: None,
        }
    }

    /// Retries every error (`States.ALL`; must be the last retrier).
    pub fn all() -> Self {
        Retry::on([STATES_ALL])
    }

    /// The project's policy for our `Transient` error type: 2 s, ×2, 6 attempts, ≤ 60 s, full jitter.
    pub fn transient() -> Self {
        Retry::on(["Transient"])
            .interval_seconds(2)
            .backoff_rate(2.0)
            .max_attempts(6)
            .max_delay_seconds(60)
            .jitter(Jitter::Full)
    }

    /// The Lambda service's own errors (throttling, service faults): 2 s, ×2, 6 attempts, jitter.
    pub fn lambda_service() -> Self {
        Retry::on(LAMBDA_SERVICE_ERRORS)
            .interval_seconds(2)
            .backoff_rate(2.0)
            .max_attempts(6)
            .max_delay_seconds(60)
            .jitter(Jitter::Full)
    }

    pub fn interval_seconds(mut self, s: u32) -> Self {
        self.interval_seconds = Some(s);
        self
    }
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }
    pub fn backoff_rate(mut self, r: f64) -> Self {
        self.backoff_rate = Some(r);
        self
    }
    pub fn max_delay_seconds(mut self, s: u32) -> Self {
        self.max_delay_seconds = Some(s);
        self
    }
    pub fn jitter(mut self, j: Jitter) -> Self {
        self.jitter_strategy = Some(j);
        self
    }

    pub fn to_json(&self) -> Value {
        let mut m = JsonMap::new();
        m.insert("ErrorEquals".into(), json!(self.error_equals));
        if let Some(v) = self.interval_seconds {
            m.insert("IntervalSeconds".into(), v.into());
        }
        if let Some(v) = self.max_attempts {
            m.insert("MaxAttempts".into(), v.into());
        }
        if let Some(v) = self.backoff_rate {
            m.insert("BackoffRate".into(), number(v));
        }
        if let Some(v) = self.max_delay_seconds {
            m.insert("MaxDelaySeconds".into(), v.into());
        }
        if let Some(j) = self.jitter_strategy {
            let s = match j {
                Jitter::Full => "FULL",
                Jitter::None => "NONE",
            };
            m.insert("JitterStrategy".into(), s.into());
        }
        Value::Object(m)
    }
}

/// Whole floats are written as integers (`2` rather than `2.0`), as hand-written ASL does.
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        Value::from(v as i64)
    } else {
        Value::from(v)
    }
}

/// A catcher. `ResultPath` defaults to `$.Error`, the project convention (the ASL default `$`
/// would replace the whole input, losing `$.Event`).
#[derive(Debug, Clone, PartialEq)]
pub struct Catch {
    pub error_equals: Vec<String>,
    pub result_path: Option<Value>,
    pub next: String,
}

impl Catch {
    pub fn on<I, S>(errors: I, next: impl Into<String>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Catch {
            error_equals: errors.into_iter().map(Into::into).collect(),
            result_path: Some(Value::String("$.Error".into())),
            next: next.into(),
        }
    }

    /// Catches every error (`States.ALL`; must be the last catcher).
    pub fn all(next: impl Into<String>) -> Self {
        Catch::on([STATES_ALL], next)
    }

    pub fn result_path(mut self, p: impl Into<String>) -> Self {
        self.result_path = Some(Value::String(p.into()));
        self
    }
    pub fn discard_result(mut self) -> Self {
        self.result_path = Some(Value::Null);
        self
    }

    pub fn to_json(&self) -> Value {
        let mut m = JsonMap::new();
        m.insert("ErrorEquals".into(), json!(self.error_equals));
        put_val(&mut m, "ResultPath", &self.result_path);
        m.insert("Next".into(), Value::String(self.next.clone()));
        Value::Object(m)
    }
}

// ---------------------------------------------------------------------------------------------
// Choice

/// A typed Choice rule condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    StringEquals(String, String),
    StringEqualsPath(String, String),
    StringMatches(String, String),
    BooleanEquals(String, bool),
    NumericEquals(String, f64),
    NumericGreaterThan(String, f64),
    NumericGreaterThanEquals(String, f64),
    NumericLessThan(String, f64),
    NumericLessThanEquals(String, f64),
    IsPresent(String, bool),
    IsNull(String, bool),
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
}

impl Condition {
    pub fn string_equals(var: impl Into<String>, v: impl Into<String>) -> Self {
        Condition::StringEquals(var.into(), v.into())
    }
    pub fn string_equals_path(var: impl Into<String>, path: impl Into<String>) -> Self {
        Condition::StringEqualsPath(var.into(), path.into())
    }
    /// `*` is the only wildcard; `\*` is a literal star.
    pub fn string_matches(var: impl Into<String>, pattern: impl Into<String>) -> Self {
        Condition::StringMatches(var.into(), pattern.into())
    }
    pub fn boolean_equals(var: impl Into<String>, v: bool) -> Self {
        Condition::BooleanEquals(var.into(), v)
    }
    pub fn numeric_equals(var: impl Into<String>, v: f64) -> Self {
        Condition::NumericEquals(var.into(), v)
    }
    pub fn numeric_greater_than(var: impl Into<String>, v: f64) -> Self {
        Condition::NumericGreaterThan(var.into(), v)
    }
    pub fn numeric_greater_than_equals(var: impl Into<String>, v: f64) -> Self {
        Condition::NumericGreaterThanEquals(var.into(), v)
    }
    pub fn numeric_less_than(var: impl Into<String>, v: f64) -> Self {
        Condition::NumericLessThan(var.into(), v)
    }
    pub fn numeric_less_than_equals(var: impl Into<String>, v: f64) -> Self {
        Condition::NumericLessThanEquals(var.into(), v)
    }
    pub fn is_present(var: impl Into<String>, v: bool) -> Self {
        Condition::IsPresent(var.into(), v)
    }
    pub fn is_null(var: impl Into<String>, v: bool) -> Self {
        Condition::IsNull(var.into(), v)
    }
    pub fn and(cs: impl IntoIterator<Item = Condition>) -> Self {
        Condition::And(cs.into_iter().collect())
    }
    pub fn or(cs: impl IntoIterator<Item = Condition>) -> Self {
        Condition::Or(cs.into_iter().collect())
    }
    #[allow(clippy::should_implement_trait)]
    pub fn not(c: Condition) -> Self {
        Condition::Not(Box::new(c))
    }

    /// The variables (paths) the condition reads, for validation.
    pub(crate) fn paths(&self) -> Vec<&str> {
        use Condition::*;
        match self {
            StringEquals(v, _)
            | StringMatches(v, _)
            | BooleanEquals(v, _)
            | IsPresent(v, _)
            | IsNull(v, _) => vec![v.as_str()],
            NumericEquals(v, _)
            | NumericGreaterThan(v, _)
            | NumericGreaterThanEquals(v, _)
            | NumericLessThan(v, _)
            | NumericLessThanEquals(v, _) => vec![v.as_str()],
            StringEqualsPath(v, p) => vec![v.as_str(), p.as_str()],
            And(cs) | Or(cs) => cs.iter().flat_map(|c| c.paths()).collect(),
            Not(c) => c.paths(),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut m = JsonMap::new();
        self.write(&mut m);
        Value::Object(m)
    }

    fn write(&self, m: &mut JsonMap<String, Value>) {
        use Condition::*;
        let mut leaf = |var: &str, op: &str, v: Value| {
            m.insert("Variable".into(), Value::String(var.into()));
            m.insert(op.into(), v);
        };
        match self {
            StringEquals(var, v) => leaf(var, "StringEquals", v.clone().into()),
            StringEqualsPath(var, v) => leaf(var, "StringEqualsPath", v.clone().into()),
            StringMatches(var, v) => leaf(var, "StringMatches", v.clone().into()),
            BooleanEquals(var, v) => leaf(var, "BooleanEquals", (*v).into()),
            NumericEquals(var, v) => leaf(var, "NumericEquals", number(*v)),
            NumericGreaterThan(var, v) => leaf(var, "NumericGreaterThan", number(*v)),
            NumericGreaterThanEquals(var, v) => leaf(var, "NumericGreaterThanEquals", number(*v)),
            NumericLessThan(var, v) => leaf(var, "NumericLessThan", number(*v)),
            NumericLessThanEquals(var, v) => leaf(var, "NumericLessThanEquals", number(*v)),
            IsPresent(var, v) => leaf(var, "IsPresent", (*v).into()),
            IsNull(var, v) => leaf(var, "IsNull", (*v).into()),
            And(cs) => {
                m.insert("And".into(), cs.iter().map(Condition::to_json).collect());
            }
            Or(cs) => {
                m.insert("Or".into(), cs.iter().map(Condition::to_json).collect());
            }
            Not(c) => {
                m.insert("Not".into(), c.to_json());
            }
        }
    }
}

/// A `Choice` state: rules in order, then `Default`.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub name: String,
    pub comment: Option<String>,
    pub input_path: Option<String>,
    pub output_path: Option<String>,
    pub rules: Vec<(Condition, String)>,
    pub default: Option<String>,
}

impl Choice {
    pub fn new(name: impl Into<String>) -> Self {
        Choice {
            name: name.into(),
            comment: None,
            input_path: None,
            output_path: None,
            rules: Vec::new(),
            default: None,
        }
    }
    /// Adds a rule: when `cond` holds, go to `next`.
    pub fn when(mut self, cond: Condition, next: impl Into<String>) -> Self {
        self.rules.push((cond, next.into()));
        self
    }
    /// Where to go when no rule matches.
    pub fn default(mut self, next: impl Into<String>) -> Self {
        self.default = Some(next.into());
        self
    }

    pub fn to_json(&self) -> Value {
        let mut m = head("Choice", &self.comment);
        put_str(&mut m, "InputPath", &self.input_path);
        put_str(&mut m, "OutputPath", &self.output_path);
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|(c, n)| {
                let mut r = JsonMap::new();
                c.write(&mut r);
                r.insert("Next".into(), Value::String(n.clone()));
                Value::Object(r)
            })
            .collect();
        m.insert("Choices".into(), Value::Array(rules));
        put_str(&mut m, "Default", &self.default);
        Value::Object(m)
    }
}
common_setters!(Choice);

// ---------------------------------------------------------------------------------------------
// Wait

/// How long a `Wait` state waits.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitFor {
    Seconds(u32),
    SecondsPath(String),
    Timestamp(String),
    TimestampPath(String),
}

/// A `Wait` state.
#[derive(Debug, Clone, PartialEq)]
pub struct Wait {
    pub name: String,
    pub comment: Option<String>,
    pub input_path: Option<String>,
    pub output_path: Option<String>,
    pub wait_for: WaitFor,
    pub next: Option<String>,
}

impl Wait {
    pub fn new(name: impl Into<String>, wait_for: WaitFor) -> Self {
        Wait {
            name: name.into(),
            comment: None,
            input_path: None,
            output_path: None,
            wait_for,
            next: None,
        }
    }
    pub fn seconds(name: impl Into<String>, s: u32) -> Self {
        Wait::new(name, WaitFor::Seconds(s))
    }
    pub fn seconds_path(name: impl Into<String>, p: impl Into<String>) -> Self {
        Wait::new(name, WaitFor::SecondsPath(p.into()))
    }
    /// An RFC 3339 timestamp such as `2026-01-01T00:00:00Z`.
    pub fn timestamp(name: impl Into<String>, t: impl Into<String>) -> Self {
        Wait::new(name, WaitFor::Timestamp(t.into()))
    }
    pub fn timestamp_path(name: impl Into<String>, p: impl Into<String>) -> Self {
        Wait::new(name, WaitFor::TimestampPath(p.into()))
    }

    pub fn to_json(&self) -> Value {
        let mut m = head("Wait", &self.comment);
        put_str(&mut m, "InputPath", &self.input_path);
        match &self.wait_for {
            WaitFor::Seconds(s) => m.insert("Seconds".into(), (*s).into()),
            WaitFor::SecondsPath(p) => m.insert("SecondsPath".into(), p.clone().into()),
            WaitFor::Timestamp(t) => m.insert("Timestamp".into(), t.clone().into()),
            WaitFor::TimestampPath(p) => m.insert("TimestampPath".into(), p.clone().into()),
        };
        put_str(&mut m, "OutputPath", &self.output_path);
        put_next_or_end(&mut m, &self.next);
        Value::Object(m)
    }
}
common_setters!(Wait);
next_setter!(Wait);

// ---------------------------------------------------------------------------------------------
// Map

/// An inline `Map` state.
#[derive(Debug, Clone, PartialEq)]
pub struct Map {
    pub name: String,
    pub comment: Option<String>,
    pub input_path: Option<String>,
    pub items_path: Option<String>,
    pub item_selector: Option<Value>,
    pub item_processor: Option<Graph>,
    pub max_concurrency: Option<u32>,
    pub result_selector: Option<Value>,
    pub result_path: Option<Value>,
    pub output_path: Option<String>,
    pub retry: Vec<Retry>,
    pub catch: Vec<Catch>,
    pub next: Option<String>,
}

impl Map {
    pub fn new(name: impl Into<String>) -> Self {
        Map {
            name: name.into(),
            comment: None,
            input_path: None,
            items_path: None,
            item_selector: None,
            item_processor: None,
            max_concurrency: None,
            result_selector: None,
            result_path: None,
            output_path: None,
            retry: Vec::new(),
            catch: Vec::new(),
            next: None,
        }
    }
    pub fn items_path(mut self, p: impl Into<String>) -> Self {
        self.items_path = Some(p.into());
        self
    }
    /// The input of each iteration (`$$.Map.Item.Value` is the item).
    pub fn item_selector(mut self, s: Value) -> Self {
        self.item_selector = Some(s);
        self
    }
    pub fn item_processor(mut self, g: Graph) -> Self {
        self.item_processor = Some(g);
        self
    }
    /// 0 = as many as possible.
    pub fn max_concurrency(mut self, n: u32) -> Self {
        self.max_concurrency = Some(n);
        self
    }
    pub fn result_selector(mut self, s: Value) -> Self {
        self.result_selector = Some(s);
        self
    }

    pub fn to_json(&self) -> Value {
        let mut m = head("Map", &self.comment);
        put_str(&mut m, "InputPath", &self.input_path);
        put_str(&mut m, "ItemsPath", &self.items_path);
        put_val(&mut m, "ItemSelector", &self.item_selector);
        if let Some(g) = &self.item_processor {
            let mut p = JsonMap::new();
            p.insert("ProcessorConfig".into(), json!({"Mode": "INLINE"}));
            g.to_json_fields(&mut p);
            m.insert("ItemProcessor".into(), Value::Object(p));
        }
        if let Some(n) = self.max_concurrency {
            m.insert("MaxConcurrency".into(), n.into());
        }
        put_val(&mut m, "ResultSelector", &self.result_selector);
        put_val(&mut m, "ResultPath", &self.result_path);
        put_str(&mut m, "OutputPath", &self.output_path);
        put_errors(&mut m, &self.retry, &self.catch);
        put_next_or_end(&mut m, &self.next);
        Value::Object(m)
    }
}
common_setters!(Map);
next_setter!(Map);
result_setters!(Map);
error_setters!(Map);

// ---------------------------------------------------------------------------------------------
// Parallel

/// A `Parallel` state; its result is the array of the branches' outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Parallel {
    pub name: String,
    pub comment: Option<String>,
    pub input_path: Option<String>,
    pub parameters: Option<Value>,
    pub branches: Vec<Graph>,
    pub result_selector: Option<Value>,
    pub result_path: Option<Value>,
    pub output_path: Option<String>,
    pub retry: Vec<Retry>,
    pub catch: Vec<Catch>,
    pub next: Option<String>,
}

impl Parallel {
    pub fn new(name: impl Into<String>) -> Self {
        Parallel {
            name: name.into(),
            comment: None,
            input_path: None,
            parameters: None,
            branches: Vec::new(),
            result_selector: None,
            result_path: None,
            output_path: None,
            retry: Vec::new(),
            catch: Vec::new(),
            next: None,
        }
    }
    pub fn branch(mut self, g: Graph) -> Self {
        self.branches.push(g);
        self
    }
    pub fn parameters(mut self, p: Value) -> Self {
        self.parameters = Some(p);
        self
    }
    pub fn result_selector(mut self, s: Value) -> Self {
        self.result_selector = Some(s);
        self
    }

    pub fn to_json(&self) -> Value {
        let mut m = head("Parallel", &self.comment);
        put_str(&mut m, "InputPath", &self.input_path);
        put_val(&mut m, "Parameters", &self.parameters);
        m.insert(
            "Branches".into(),
            self.branches.iter().map(Graph::to_json).collect(),
        );
        put_val(&mut m, "ResultSelector", &self.result_selector);
        put_val(&mut m, "ResultPath", &self.result_path);
        put_str(&mut m, "OutputPath", &self.output_path);
        put_errors(&mut m, &self.retry, &self.catch);
        put_next_or_end(&mut m, &self.next);
        Value::Object(m)
    }
}
common_setters!(Parallel);
next_setter!(Parallel);
result_setters!(Parallel);
error_setters!(Parallel);

// ---------------------------------------------------------------------------------------------
// Pass, Succeed, Fail

/// A `Pass` state.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    pub name: String,
    pub comment: Option<String>,
    pub input_path: Option<String>,
    pub parameters: Option<Value>,
    pub result: Option<Value>,
    pub result_path: Option<Value>,
    pub output_path: Option<String>,
    pub next: Option<String>,
}

impl Pass {
    pub fn new(name: impl Into<String>) -> Self {
        Pass {
            name: name.into(),
            comment: None,
            input_path: None,
            parameters: None,
            result: None,
            result_path: None,
            output_path: None,
            next: None,
        }
    }
    pub fn result(mut self, r: Value) -> Self {
        self.result = Some(r);
        self
    }
    pub fn parameters(mut self, p: Value) -> Self {
        self.parameters = Some(p);
        self
    }

    pub fn to_json(&self) -> Value {
        let mut m = head("Pass", &self.comment);
        put_str(&mut m, "InputPath", &self.input_path);
        put_val(&mut m, "Parameters", &self.parameters);
        put_val(&mut m, "Result", &self.result);
        put_val(&mut m, "ResultPath", &self.result_path);
        put_str(&mut m, "OutputPath", &self.output_path);
        put_next_or_end(&mut m, &self.next);
        Value::Object(m)
    }
}
common_setters!(Pass);
next_setter!(Pass);
result_setters!(Pass);

/// A `Succeed` state.
#[derive(Debug, Clone, PartialEq)]
pub struct Succeed {
    pub name: String,
    pub comment: Option<String>,
    pub input_path: Option<String>,
    pub output_path: Option<String>,
}

impl Succeed {
    pub fn new(name: impl Into<String>) -> Self {
        Succeed {
            name: name.into(),
            comment: None,
            input_path: None,
            output_path: None,
        }
    }
    pub fn to_json(&self) -> Value {
        let mut m = head("Succeed", &self.comment);
        put_str(&mut m, "InputPath", &self.input_path);
        put_str(&mut m, "OutputPath", &self.output_path);
        Value::Object(m)
    }
}
common_setters!(Succeed);

/// A `Fail` state: `Error`/`ErrorPath` and `Cause`/`CausePath` (one of each pair at most).
#[derive(Debug, Clone, PartialEq)]
pub struct Fail {
    pub name: String,
    pub comment: Option<String>,
    pub error: Option<String>,
    pub error_path: Option<String>,
    pub cause: Option<String>,
    pub cause_path: Option<String>,
}

impl Fail {
    pub fn new(name: impl Into<String>) -> Self {
        Fail {
            name: name.into(),
            comment: None,
            error: None,
            error_path: None,
            cause: None,
            cause_path: None,
        }
    }
    pub fn comment(mut self, c: impl Into<String>) -> Self {
        self.comment = Some(c.into());
        self
    }
    pub fn error(mut self, e: impl Into<String>) -> Self {
        self.error = Some(e.into());
        self
    }
    pub fn error_path(mut self, p: impl Into<String>) -> Self {
        self.error_path = Some(p.into());
        self
    }
    pub fn cause(mut self, c: impl Into<String>) -> Self {
        self.cause = Some(c.into());
        self
    }
    pub fn cause_path(mut self, p: impl Into<String>) -> Self {
        self.cause_path = Some(p.into());
        self
    }
    pub fn to_json(&self) -> Value {
        let mut m = head("Fail", &self.comment);
        put_str(&mut m, "Error", &self.error);
        put_str(&mut m, "ErrorPath", &self.error_path);
        put_str(&mut m, "Cause", &self.cause);
        put_str(&mut m, "CausePath", &self.cause_path);
        Value::Object(m)
    }
}
