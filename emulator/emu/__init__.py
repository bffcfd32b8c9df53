"""A local AWS for the CloudHSM construct library: moto plus CloudHSM, the HSM side, SSM Run
Command, KMS custom key stores, Rust Lambda functions, one scaled clock and fault injection."""
