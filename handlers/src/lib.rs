//! Lambda steps of the CloudHSM workflows. One binary (`bootstrap`) serves every function; the
//! function's Handler (`_HANDLER`) names its group and the event's `Step` the step
//! (docs/architecture.md, "One Lambda binary").

pub mod acm_pca;
pub mod bridge;
pub mod call;
pub mod clients;
pub mod cluster;
pub mod error;
pub mod event;
pub mod fleet;
pub mod keystore;
pub mod pki;
pub mod poll;
pub mod preflight;
pub mod respond;
pub mod restore;
#[cfg(test)]
mod restore_tests;
#[cfg(test)]
mod steps_tests;
#[cfg(test)]
pub(crate) mod testing;

use serde_json::Value;

use crate::call::Call;
use crate::clients::Clients;
use crate::error::{StepError, StepResult};

/// The function groups and their steps. A group refuses steps of other groups, so its IAM role
/// bounds what it can do.
pub fn group_steps(group: &str) -> Option<&'static [&'static str]> {
    match group {
        "bridge" | "preflight" => Some(&[]),
        "cluster" => Some(cluster::STEPS),
        "keystore" => Some(keystore::STEPS),
        "respond" => Some(&["Respond"]),
        _ => None,
    }
}

/// `_HANDLER` may be `bridge` or a dotted form such as `bootstrap.bridge`.
pub fn group_of(handler: &str) -> &str {
    handler.rsplit('.').next().unwrap_or(handler)
}

/// Route one invocation.
pub async fn dispatch(c: &Clients, handler: &str, payload: Value) -> StepResult<Value> {
    let group = group_of(handler);
    let steps = group_steps(group).ok_or_else(|| {
        StepError::invalid(format!(
            "unknown function group {group:?} (_HANDLER); expected bridge, preflight, cluster, keystore or respond"
        ))
    })?;
    match group {
        "bridge" => return bridge::handle(c, &payload).await,
        "preflight" => return preflight::handle(c, &payload).await,
        _ => {}
    }
    let call = Call::new(&payload);
    let step = call
        .step()
        .ok_or_else(|| StepError::invalid("the event has no Step field"))?;
    if !steps.contains(&step) {
        return Err(StepError::invalid(format!(
            "step {step} does not belong to function group {group}"
        )));
    }
    tracing::info!(group, step, "step start");
    let out = match group {
        "cluster" => cluster::run(c, step, call).await,
        "keystore" => keystore::run(c, step, call).await,
        _ => respond::respond_step(call).await,
    };
    match &out {
        Ok(_) => tracing::info!(group, step, "step done"),
        Err(e) => {
            tracing::warn!(group, step, error_type = e.error_type(), error = %e.message(), "step failed")
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_own_their_steps() {
        assert!(group_steps("cluster").unwrap().contains(&"CreateHsm"));
        assert!(!group_steps("cluster").unwrap().contains(&"CreateKeyStore"));
        assert!(group_steps("keystore").unwrap().contains(&"KeyStoreStatus"));
        assert_eq!(group_steps("respond").unwrap(), &["Respond"]);
        assert!(group_steps("admin").is_none());
        assert_eq!(group_of("bootstrap.keystore"), "keystore");
        assert_eq!(group_of("cluster"), "cluster");
    }
}
