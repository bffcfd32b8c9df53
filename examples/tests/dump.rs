mod common;
#[test]
fn dump() {
    for app in examples::APPS {
        let t = common::synth(app);
        std::fs::write(
            format!("/tmp/{app}.template.json"),
            serde_json::to_string_pretty(&t).unwrap(),
        )
        .unwrap();
    }
}
