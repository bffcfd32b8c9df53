//! Bounded polling state (`$.Poll`), see docs/architecture.md "Polling".
//!
//! A status step reads the previous `$.Poll` from the execution state, counts the attempt and
//! returns the next one: the first wait is the expected duration of the operation, the following
//! ones are short polls, and past `max_attempts` the step raises `WaitTimeout`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{StepError, StepResult};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Poll {
    /// What is being waited for; a different value restarts the count.
    pub r#for: String,
    pub attempt: u32,
    /// Seconds the Wait state sleeps before the next check.
    pub wait: u32,
    pub done: bool,
    /// Nominal seconds waited so far.
    #[serde(default)]
    pub elapsed: u32,
    /// Key store reconnect attempts (disconnect + connect after a transient FAILED).
    #[serde(default)]
    pub reconnects: u32,
    /// The fleet wait asks for a new plan (always present: a Choice reads it).
    #[serde(default)]
    pub replan: bool,
    /// Fleet re-plans so far in this execution.
    #[serde(default)]
    pub replans: u32,
    /// The check that asked for the last re-plan (0: none yet).
    #[serde(default)]
    pub replanned_at: u32,
}

/// How a wait is paced and bounded.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// The first wait: near the expected duration of the operation.
    pub first: u32,
    /// Every later wait.
    pub then: u32,
    /// Checks before `WaitTimeout`.
    pub max_attempts: u32,
}

impl Schedule {
    /// Nominal upper bound of the whole wait, in seconds.
    pub fn bound_seconds(&self) -> u32 {
        self.first + self.then * self.max_attempts.saturating_sub(2)
    }
}

impl Poll {
    /// The poll state for this check: continues `$.Poll` when it waited for the same thing.
    pub fn next(state: &Value, what: &str) -> Poll {
        let prev: Option<Poll> = state
            .get("Poll")
            .and_then(|p| serde_json::from_value(p.clone()).ok());
        match prev {
            Some(p) if p.r#for == what && !p.done => Poll {
                attempt: p.attempt + 1,
                elapsed: p.elapsed + p.wait,
                wait: 0,
                done: false,
                replan: false,
                ..p
            },
            _ => Poll {
                r#for: what.to_string(),
                attempt: 1,
                ..Poll::default()
            },
        }
    }

    pub fn finish(mut self) -> Poll {
        self.done = true;
        self.wait = 0;
        self
    }

    /// Not done: go back to planning now (no wait), counting the re-plan.
    pub fn replan(mut self) -> Poll {
        self.done = false;
        self.wait = 0;
        self.replan = true;
        self.replans += 1;
        self.replanned_at = self.attempt;
        self
    }

    /// Not done yet: schedule the next check, or fail with `WaitTimeout` past the bound.
    /// `status` describes the current state for the timeout message.
    pub fn again(mut self, s: &Schedule, status: &str) -> StepResult<Poll> {
        if self.attempt >= s.max_attempts {
            return Err(StepError::WaitTimeout(format!(
                "gave up waiting for {} after {} checks over about {} s (bound {} s); last state: {status}",
                self.r#for,
                self.attempt,
                self.elapsed,
                s.bound_seconds()
            )));
        }
        self.done = false;
        self.wait = if self.attempt == 1 { s.first } else { s.then };
        Ok(self)
    }

    /// The step result: the poll fields plus details (`ResultPath: $.Poll`).
    pub fn with(self, details: Value) -> Value {
        let mut v = serde_json::to_value(&self).unwrap_or(Value::Null);
        if let (Some(obj), Value::Object(extra)) = (v.as_object_mut(), details) {
            for (k, val) in extra {
                obj.insert(k, val);
            }
        }
        v
    }
}

pub fn obj(pairs: &[(&str, Value)]) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert((*k).to_string(), v.clone());
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const S: Schedule = Schedule {
        first: 300,
        then: 30,
        max_attempts: 4,
    };

    #[test]
    fn first_wait_is_long_then_short_then_timeout() {
        let state = json!({});
        let p = Poll::next(&state, "HsmActive");
        assert_eq!(p.attempt, 1);
        let p = p.again(&S, "CREATE_IN_PROGRESS").unwrap();
        assert_eq!(p.wait, 300);
        let state = json!({"Poll": serde_json::to_value(&p).unwrap()});
        let p = Poll::next(&state, "HsmActive").again(&S, "x").unwrap();
        assert_eq!((p.attempt, p.wait, p.elapsed), (2, 30, 300));
        let state = json!({"Poll": p});
        let p = Poll::next(&state, "HsmActive").again(&S, "x").unwrap();
        let state = json!({"Poll": p});
        let err = Poll::next(&state, "HsmActive")
            .again(&S, "CREATE_IN_PROGRESS")
            .unwrap_err();
        assert!(
            matches!(err, StepError::WaitTimeout(m) if m.contains("HsmActive") && m.contains("CREATE_IN_PROGRESS"))
        );
    }

    #[test]
    fn a_different_wait_or_a_finished_one_restarts_the_count() {
        let state = json!({"Poll": {"For": "HsmActive", "Attempt": 7, "Wait": 30, "Done": false}});
        assert_eq!(Poll::next(&state, "Initialized").attempt, 1);
        let state = json!({"Poll": {"For": "HsmActive", "Attempt": 7, "Wait": 0, "Done": true}});
        assert_eq!(Poll::next(&state, "HsmActive").attempt, 1);
    }

    #[test]
    fn serialized_names_match_the_asl() {
        let v = Poll::next(&json!({}), "X")
            .finish()
            .with(json!({"State": "ACTIVE"}));
        assert_eq!(v["Done"], json!(true));
        assert_eq!(v["Wait"], json!(0));
        assert_eq!(v["For"], json!("X"));
        assert_eq!(v["State"], json!("ACTIVE"));
    }
}
