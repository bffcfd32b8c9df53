//! Whole-definition checks; every problem is reported, each naming the state and the fix.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use serde_json::Value;

use super::states::*;
use super::Graph;

/// One problem in a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfnError {
    /// The state concerned (None: the definition as a whole).
    pub state: Option<String>,
    pub message: String,
}

impl fmt::Display for SfnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            Some(s) => write!(f, "state `{s}`: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

/// All problems found in a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfnErrors(pub Vec<SfnError>);

impl fmt::Display for SfnErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invalid state machine definition ({} problem(s)):",
            self.0.len()
        )?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SfnErrors {}

impl SfnErrors {
    /// The messages as `state `X`: …` lines (handy in tests).
    pub fn lines(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

struct Checker {
    errors: Vec<SfnError>,
}

impl Checker {
    fn err(&mut self, state: Option<&str>, message: impl Into<String>) {
        self.errors.push(SfnError {
            state: state.map(str::to_string),
            message: message.into(),
        });
    }

    fn path(&mut self, state: &str, field: &str, p: &str) {
        if !p.starts_with('$') {
            self.err(
                Some(state),
                format!("{field} `{p}` is not a JSONPath; start it with `$` (e.g. `$.{p}`)"),
            );
        }
    }

    fn opt_path(&mut self, state: &str, field: &str, p: &Option<String>) {
        if let Some(p) = p {
            self.path(state, field, p);
        }
    }

    fn result_path(&mut self, state: &str, p: &Option<Value>) {
        if let Some(Value::String(s)) = p {
            self.path(state, "ResultPath", s);
            if s.starts_with("$$") {
                self.err(
                    Some(state),
                    "ResultPath cannot write to the context object (`$$`); use a path under `$`",
                );
            }
        }
    }

    /// Keys ending in `.$` must hold a path or an intrinsic; a literal `$.x` under a plain key is a
    /// forgotten `.$`.
    fn payload_template(&mut self, state: &str, field: &str, v: &Value) {
        match v {
            Value::Object(m) => {
                for (k, val) in m {
                    if let Some(base) = k.strip_suffix(".$") {
                        match val {
                            Value::String(s) if s.starts_with('$') || s.starts_with("States.") => {}
                            _ => self.err(
                                Some(state),
                                format!("{field}: `{k}` ends in `.$` so its value must be a path or intrinsic (`$.…`, `$$.…`, `States.…`), got {val}; drop the `.$` to pass a literal (`{base}`)"),
                            ),
                        }
                    } else {
                        if let Value::String(s) = val {
                            if s.starts_with("$.") || s.starts_with("$$.") || s == "$" {
                                self.err(
                                    Some(state),
                                    format!("{field}: `{k}` holds the path `{s}` as a literal string; rename the key to `{k}.$` to read the path"),
                                );
                            }
                        }
                        self.payload_template(state, field, val);
                    }
                }
            }
            Value::Array(items) => {
                for i in items {
                    self.payload_template(state, field, i);
                }
            }
            _ => {}
        }
    }

    fn error_handlers(&mut self, state: &str, retry: &[Retry], catch: &[Catch]) {
        for (kind, lists) in [
            (
                "Retry",
                retry.iter().map(|r| &r.error_equals).collect::<Vec<_>>(),
            ),
            (
                "Catch",
                catch.iter().map(|c| &c.error_equals).collect::<Vec<_>>(),
            ),
        ] {
            let n = lists.len();
            for (i, errs) in lists.iter().enumerate() {
                if errs.is_empty() {
                    self.err(Some(state), format!("{kind}[{i}] has an empty ErrorEquals; name at least one error (or `States.ALL`)"));
                }
                if errs.iter().any(|e| e == STATES_ALL) {
                    if errs.len() > 1 {
                        self.err(Some(state), format!("{kind}[{i}]: `States.ALL` must appear alone in ErrorEquals; move the other errors to an earlier {kind} entry"));
                    }
                    if i + 1 != n {
                        self.err(Some(state), format!("{kind}[{i}] uses `States.ALL` but is not the last {kind} entry; move it to the end"));
                    }
                }
            }
        }
        for (i, r) in retry.iter().enumerate() {
            if let Some(b) = r.backoff_rate {
                if b < 1.0 {
                    self.err(
                        Some(state),
                        format!("Retry[{i}]: BackoffRate {b} is below 1.0; use 1.0 or more"),
                    );
                }
            }
            if r.interval_seconds == Some(0) {
                self.err(
                    Some(state),
                    format!("Retry[{i}]: IntervalSeconds must be at least 1"),
                );
            }
            if let Some(d) = r.max_delay_seconds {
                if d == 0 || d > 31_622_400 {
                    self.err(
                        Some(state),
                        format!("Retry[{i}]: MaxDelaySeconds {d} must be between 1 and 31622400"),
                    );
                }
            }
        }
        for c in catch {
            self.result_path(state, &c.result_path);
        }
    }

    fn state(&mut self, s: &State) {
        let name = s.name();
        if name.is_empty() || name.chars().count() > 80 {
            self.err(Some(name), "state names must be 1 to 80 characters long");
        }
        match s {
            State::Task(t) => {
                if t.resource.is_empty() {
                    self.err(
                        Some(name),
                        "Task has an empty Resource; give an ARN or a `${Variable}`",
                    );
                }
                self.opt_path(name, "InputPath", &t.input_path);
                self.opt_path(name, "OutputPath", &t.output_path);
                self.result_path(name, &t.result_path);
                if let Some(p) = &t.parameters {
                    self.payload_template(name, "Parameters", p);
                }
                if let Some(p) = &t.result_selector {
                    self.payload_template(name, "ResultSelector", p);
                }
                if t.timeout_seconds == Some(0) {
                    self.err(Some(name), "TimeoutSeconds must be at least 1");
                }
                if let (Some(h), Some(to)) = (t.heartbeat_seconds, t.timeout_seconds) {
                    if h >= to {
                        self.err(
                            Some(name),
                            format!(
                                "HeartbeatSeconds ({h}) must be smaller than TimeoutSeconds ({to})"
                            ),
                        );
                    }
                }
                self.error_handlers(name, &t.retry, &t.catch);
            }
            State::Choice(c) => {
                self.opt_path(name, "InputPath", &c.input_path);
                self.opt_path(name, "OutputPath", &c.output_path);
                if c.rules.is_empty() {
                    self.err(
                        Some(name),
                        "Choice has no rules; add `.when(condition, next)`",
                    );
                }
                for (cond, _) in &c.rules {
                    for p in cond.paths() {
                        self.path(name, "Variable", p);
                    }
                    check_condition(self, name, cond);
                }
                if c.default.is_none() && !exhaustive(&c.rules) {
                    self.err(Some(name), "Choice has no Default and its rules are not exhaustive (an unmatched input fails the execution with States.NoChoiceMatched); add `.default(\"<state>\")`");
                }
            }
            State::Wait(w) => {
                self.opt_path(name, "InputPath", &w.input_path);
                self.opt_path(name, "OutputPath", &w.output_path);
                match &w.wait_for {
                    WaitFor::SecondsPath(p) => self.path(name, "SecondsPath", p),
                    WaitFor::TimestampPath(p) => self.path(name, "TimestampPath", p),
                    WaitFor::Timestamp(t) => {
                        if !t.contains('T') || !(t.ends_with('Z') || t.contains('+')) {
                            self.err(
                                Some(name),
                                format!(
                                    "Timestamp `{t}` is not RFC 3339 (e.g. `2026-01-01T00:00:00Z`)"
                                ),
                            );
                        }
                    }
                    WaitFor::Seconds(_) => {}
                }
            }
            State::Map(m) => {
                self.opt_path(name, "InputPath", &m.input_path);
                self.opt_path(name, "ItemsPath", &m.items_path);
                self.opt_path(name, "OutputPath", &m.output_path);
                self.result_path(name, &m.result_path);
                if let Some(p) = &m.item_selector {
                    self.payload_template(name, "ItemSelector", p);
                }
                if let Some(p) = &m.result_selector {
                    self.payload_template(name, "ResultSelector", p);
                }
                if m.item_processor.is_none() {
                    self.err(
                        Some(name),
                        "Map has no ItemProcessor; add `.item_processor(Graph::new(..).state(..))`",
                    );
                }
                self.error_handlers(name, &m.retry, &m.catch);
            }
            State::Parallel(p) => {
                self.opt_path(name, "InputPath", &p.input_path);
                self.opt_path(name, "OutputPath", &p.output_path);
                self.result_path(name, &p.result_path);
                if let Some(v) = &p.parameters {
                    self.payload_template(name, "Parameters", v);
                }
                if let Some(v) = &p.result_selector {
                    self.payload_template(name, "ResultSelector", v);
                }
                if p.branches.is_empty() {
                    self.err(
                        Some(name),
                        "Parallel has no branches; add `.branch(Graph::new(..).state(..))`",
                    );
                }
                self.error_handlers(name, &p.retry, &p.catch);
            }
            State::Pass(p) => {
                self.opt_path(name, "InputPath", &p.input_path);
                self.opt_path(name, "OutputPath", &p.output_path);
                self.result_path(name, &p.result_path);
                if let Some(v) = &p.parameters {
                    self.payload_template(name, "Parameters", v);
                }
            }
            State::Succeed(s) => {
                self.opt_path(name, "InputPath", &s.input_path);
                self.opt_path(name, "OutputPath", &s.output_path);
            }
            State::Fail(f) => {
                if f.error.is_some() && f.error_path.is_some() {
                    self.err(Some(name), "Fail has both Error and ErrorPath; keep one");
                }
                if f.cause.is_some() && f.cause_path.is_some() {
                    self.err(Some(name), "Fail has both Cause and CausePath; keep one");
                }
                self.opt_path(name, "ErrorPath", &f.error_path);
                self.opt_path(name, "CausePath", &f.cause_path);
            }
        }
    }

    /// Checks one graph (targets, reachability) and recurses into nested graphs.
    fn graph(&mut self, g: &Graph, where_: &str) {
        let names: BTreeSet<&str> = g.states.iter().map(State::name).collect();
        if !names.contains(g.start_at.as_str()) {
            self.err(None, format!("StartAt `{}` of {where_} is not a state of {where_}; add a state with that name or fix StartAt", g.start_at));
        }
        for s in &g.states {
            self.state(s);
            for target in s.successors() {
                if !names.contains(target) {
                    self.err(Some(s.name()), format!("transition to `{target}`, which is not a state of {where_} (transitions cannot leave a branch or item processor); add a state named `{target}` or fix the name"));
                }
            }
            match s {
                State::Parallel(p) => {
                    for (i, b) in p.branches.iter().enumerate() {
                        self.graph(b, &format!("branch {i} of `{}`", p.name));
                    }
                }
                State::Map(m) => {
                    if let Some(b) = &m.item_processor {
                        self.graph(b, &format!("the item processor of `{}`", m.name));
                    }
                }
                _ => {}
            }
        }
        // Reachability from StartAt.
        let by_name: BTreeMap<&str, &State> = g.states.iter().map(|s| (s.name(), s)).collect();
        let mut seen = BTreeSet::new();
        let mut queue: VecDeque<&str> = VecDeque::from([g.start_at.as_str()]);
        while let Some(n) = queue.pop_front() {
            if !seen.insert(n) {
                continue;
            }
            if let Some(s) = by_name.get(n) {
                queue.extend(s.successors());
            }
        }
        for s in &g.states {
            if !seen.contains(s.name()) {
                self.err(Some(s.name()), format!("unreachable from StartAt `{}` of {where_}; remove it or add a transition to it", g.start_at));
            }
        }
    }
}

fn check_condition(c: &mut Checker, state: &str, cond: &Condition) {
    match cond {
        Condition::And(cs) | Condition::Or(cs) if cs.is_empty() => c.err(
            Some(state),
            "an And/Or rule has no operands; give it at least one condition",
        ),
        Condition::And(cs) | Condition::Or(cs) => {
            for x in cs {
                check_condition(c, state, x);
            }
        }
        Condition::Not(x) => check_condition(c, state, x),
        _ => {}
    }
}

/// A Choice is exhaustive when a variable is tested for both `true` and `false` (BooleanEquals,
/// IsPresent or IsNull) by top-level rules.
fn exhaustive(rules: &[(Condition, String)]) -> bool {
    let mut seen: BTreeSet<(&str, &str, bool)> = BTreeSet::new();
    for (c, _) in rules {
        let (op, var, v) = match c {
            Condition::BooleanEquals(var, v) => ("bool", var.as_str(), *v),
            Condition::IsPresent(var, v) => ("present", var.as_str(), *v),
            Condition::IsNull(var, v) => ("null", var.as_str(), *v),
            _ => continue,
        };
        if seen.contains(&(op, var, !v)) {
            return true;
        }
        seen.insert((op, var, v));
    }
    false
}

fn collect_names<'a>(states: &'a [State], out: &mut BTreeMap<&'a str, usize>) {
    for s in states {
        *out.entry(s.name()).or_default() += 1;
        for g in s.sub_graphs() {
            collect_names(&g.states, out);
        }
    }
}

pub(crate) fn validate(g: &Graph, timeout_seconds: Option<u32>) -> Result<(), SfnErrors> {
    let mut c = Checker { errors: Vec::new() };
    if g.states.is_empty() {
        c.err(
            None,
            "the definition has no states; add at least one with `.state(..)`",
        );
    }
    if timeout_seconds == Some(0) {
        c.err(None, "TimeoutSeconds must be at least 1");
    }
    let mut counts = BTreeMap::new();
    collect_names(&g.states, &mut counts);
    for (name, n) in counts {
        if n > 1 {
            c.err(Some(name), format!("the name is used by {n} states; state names must be unique across the whole machine, branches and item processors included — rename all but one"));
        }
    }
    c.graph(g, "the state machine");
    if c.errors.is_empty() {
        Ok(())
    } else {
        Err(SfnErrors(c.errors))
    }
}
