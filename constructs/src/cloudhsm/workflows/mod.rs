//! The three workflows started by the custom resources.
// placeholder: the handlers helper replaces this module

use crate::sfn::{Pass, StateMachineDefinition, Succeed};

fn placeholder(comment: &str) -> StateMachineDefinition {
    StateMachineDefinition::builder("Start")
        .comment(comment)
        .state(Pass::new("Start").next("Done"))
        .state(Succeed::new("Done"))
        .build()
        .expect("placeholder definition is valid")
}

/// Cluster initialization (Custom::ClusterInitialization).
pub fn initialization() -> StateMachineDefinition {
    placeholder("Cluster initialization (placeholder)")
}

/// HSM fleet alignment (Custom::HsmFleet).
pub fn hsm_fleet() -> StateMachineDefinition {
    placeholder("HSM fleet (placeholder)")
}

/// KMS custom key store (Custom::KeyStore).
pub fn key_store() -> StateMachineDefinition {
    placeholder("Key store (placeholder)")
}
