//! A CDK-style construct library for CloudFormation, in Rust.
//!
//! - [`sfn`]: typed Step Functions (ASL) definitions.
//! - [`cloudhsm`]: the CloudHSM constructs and their workflows.

pub mod cloudhsm;
pub mod sfn;
