//! A typed builder for Amazon States Language (ASL) definitions, JSONPath flavour only.
//!
//! States are plain structs built with chained setters; a definition is assembled with
//! [`StateMachineDefinition::builder`] and checked by [`DefinitionBuilder::build`], which reports
//! every problem at once (unknown `Next` targets, duplicate or unreachable states, a `Choice`
//! without `Default`, `States.ALL` not last, malformed paths). Serialization is deterministic:
//! states and keys come out in the order they were added.
//!
//! ```
//! use constructs::sfn::*;
//! use serde_json::json;
//! let def = StateMachineDefinition::builder("CreateHsm")
//!     .state(
//!         Task::lambda("CreateHsm", "${ClusterFunctionArn}")
//!             .payload(json!({"Step": "CreateHsm", "Event.$": "$.Event"}))
//!             .result_path("$.Hsm")
//!             .retry(Retry::transient())
//!             .catch(Catch::all("Failed"))
//!             .next("Done"),
//!     )
//!     .state(Succeed::new("Done"))
//!     .state(Fail::new("Failed").error_path("$.Error.Error").cause_path("$.Error.Cause"))
//!     .build()
//!     .unwrap();
//! assert_eq!(def.to_json()["StartAt"], "CreateHsm");
//! ```

mod states;
mod validate;

pub use states::*;
pub use validate::{SfnError, SfnErrors};

use serde_json::{Map as JsonMap, Value};

/// A set of states with a start state: the top level of a machine, a `Parallel` branch or a
/// `Map` item processor.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub start_at: String,
    pub states: Vec<State>,
}

impl Graph {
    pub fn new(start_at: impl Into<String>) -> Self {
        Graph {
            start_at: start_at.into(),
            states: Vec::new(),
        }
    }

    /// Adds a state (order of insertion is the order of serialization).
    pub fn state(mut self, state: impl Into<State>) -> Self {
        self.states.push(state.into());
        self
    }

    pub(crate) fn to_json_fields(&self, out: &mut JsonMap<String, Value>) {
        out.insert("StartAt".into(), Value::String(self.start_at.clone()));
        let mut states = JsonMap::new();
        for s in &self.states {
            states.insert(s.name().to_string(), s.to_json());
        }
        out.insert("States".into(), Value::Object(states));
    }

    pub fn to_json(&self) -> Value {
        let mut m = JsonMap::new();
        self.to_json_fields(&mut m);
        Value::Object(m)
    }
}

/// A complete, validated state machine definition.
#[derive(Debug, Clone, PartialEq)]
pub struct StateMachineDefinition {
    pub comment: Option<String>,
    pub start_at: String,
    pub states: Vec<State>,
    pub timeout_seconds: Option<u32>,
}

impl StateMachineDefinition {
    pub fn builder(start_at: impl Into<String>) -> DefinitionBuilder {
        DefinitionBuilder {
            comment: None,
            graph: Graph::new(start_at),
            timeout_seconds: None,
        }
    }

    /// Checks the definition (the builder does this; call it again after editing fields directly).
    pub fn validate(&self) -> Result<(), SfnErrors> {
        validate::validate(&self.as_graph(), self.timeout_seconds)
    }

    fn as_graph(&self) -> Graph {
        Graph {
            start_at: self.start_at.clone(),
            states: self.states.clone(),
        }
    }

    /// The ASL document: `Comment`, `StartAt`, `States`, `TimeoutSeconds`.
    pub fn to_json(&self) -> Value {
        let mut m = JsonMap::new();
        if let Some(c) = &self.comment {
            m.insert("Comment".into(), Value::String(c.clone()));
        }
        self.as_graph().to_json_fields(&mut m);
        if let Some(t) = self.timeout_seconds {
            m.insert("TimeoutSeconds".into(), Value::from(t));
        }
        Value::Object(m)
    }

    /// The names of every `${Name}` substitution variable used anywhere in the definition, sorted.
    pub fn substitution_variables(&self) -> Vec<String> {
        let text = self.to_json().to_string();
        let mut vars = std::collections::BTreeSet::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            match after.find('}') {
                Some(end) => {
                    let name = &after[..end];
                    if !name.is_empty()
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                    {
                        vars.insert(name.to_string());
                    }
                    rest = &after[end + 1..];
                }
                None => break,
            }
        }
        vars.into_iter().collect()
    }

    /// Looks a state up by name, at any depth (branches and item processors included).
    pub fn find_state(&self, name: &str) -> Option<&State> {
        fn find<'a>(states: &'a [State], name: &str) -> Option<&'a State> {
            for s in states {
                if s.name() == name {
                    return Some(s);
                }
                for g in s.sub_graphs() {
                    if let Some(found) = find(&g.states, name) {
                        return Some(found);
                    }
                }
            }
            None
        }
        find(&self.states, name)
    }
}

/// Builder for [`StateMachineDefinition`]; `build` validates.
#[derive(Debug, Clone)]
pub struct DefinitionBuilder {
    comment: Option<String>,
    graph: Graph,
    timeout_seconds: Option<u32>,
}

impl DefinitionBuilder {
    pub fn comment(mut self, c: impl Into<String>) -> Self {
        self.comment = Some(c.into());
        self
    }

    /// Maximum run time of an execution (keep it under the 1 h custom-resource limit).
    pub fn timeout_seconds(mut self, s: u32) -> Self {
        self.timeout_seconds = Some(s);
        self
    }

    pub fn state(mut self, state: impl Into<State>) -> Self {
        self.graph = self.graph.state(state);
        self
    }

    pub fn states(mut self, states: impl IntoIterator<Item = State>) -> Self {
        for s in states {
            self.graph = self.graph.state(s);
        }
        self
    }

    pub fn build(self) -> Result<StateMachineDefinition, SfnErrors> {
        let def = StateMachineDefinition {
            comment: self.comment,
            start_at: self.graph.start_at,
            states: self.graph.states,
            timeout_seconds: self.timeout_seconds,
        };
        def.validate()?;
        Ok(def)
    }
}
