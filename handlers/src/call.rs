//! The payload a state machine sends to a step:
//! `{"Step": "<name>", "Input": <execution state>, ...step arguments}`.
//! The execution state holds `Event` (the CloudFormation event) and earlier steps' results.

use serde_json::Value;

use crate::error::{StepError, StepResult};
use crate::event::{CfnEvent, Props};

#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub payload: &'a Value,
    pub state: &'a Value,
}

impl<'a> Call<'a> {
    pub fn new(payload: &'a Value) -> Self {
        let state = payload.get("Input").unwrap_or(payload);
        Call { payload, state }
    }

    pub fn step(&self) -> Option<&'a str> {
        self.payload.get("Step").and_then(Value::as_str)
    }

    pub fn event(&self) -> StepResult<CfnEvent<'a>> {
        let raw = self
            .state
            .get("Event")
            .ok_or_else(|| StepError::invalid("the step input has no Event"))?;
        CfnEvent::new(raw)
    }

    pub fn props(&self) -> StepResult<Props<'a>> {
        Ok(self.event()?.props())
    }

    /// A step argument (top level of the payload).
    pub fn arg(&self, name: &str) -> StepResult<&'a str> {
        self.payload
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| StepError::invalid(format!("step argument {name} is missing")))
    }

    /// A value from the execution state by a dotted path, e.g. `Signed.TrustAnchor`.
    pub fn state_at(&self, path: &str) -> Option<&'a Value> {
        path.split('.').try_fold(self.state, |v, k| v.get(k))
    }

    pub fn state_str(&self, path: &str) -> Option<&'a str> {
        self.state_at(path)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The Map item (`$.Item`) of a Map iteration.
    pub fn item<T: serde::de::DeserializeOwned>(&self) -> StepResult<T> {
        let v = self
            .state
            .get("Item")
            .ok_or_else(|| StepError::invalid("the step input has no Item (Map iteration)"))?;
        serde_json::from_value(v.clone())
            .map_err(|e| StepError::invalid(format!("the Map item is malformed: {e}")))
    }
}
