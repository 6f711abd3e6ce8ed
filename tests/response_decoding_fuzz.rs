//! Random bytes and random JSON fed to every response decoder and to the error-body parser:
//! decoding may fail, but never panics.

use dcs_migration_operator::dcs::error::parse_error_body;
use dcs_migration_operator::dcs::model::*;
use dcs_migration_operator::dcs::scrub::Scrubber;
use proptest::prelude::*;
use serde_json::Value;

fn decode_all(bytes: &[u8]) {
    let _ = serde_json::from_slice::<MigrationTask>(bytes);
    let _ = serde_json::from_slice::<MigrationTaskPage>(bytes);
    let _ = serde_json::from_slice::<MigrationStats>(bytes);
    let _ = serde_json::from_slice::<MigrationLogPage>(bytes);
    let _ = serde_json::from_slice::<BatchResult>(bytes);
    let _ = serde_json::from_slice::<TaskAccepted>(bytes);
    let _ = serde_json::from_slice::<OnlineTaskCreated>(bytes);
    let _ = serde_json::from_slice::<JobInfo>(bytes);
    for status in [400, 401, 429, 500, 502] {
        let e = parse_error_body(status, bytes, None, &Scrubber::new(["password"]));
        assert!(e.message.len() <= 1024 + 4);
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
        prop_oneof![Just("INCRMIGEATING"), Just("status"), Just("error_code"), Just("password")]
            .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let keys = prop_oneof![
            Just("task_id".to_owned()),
            Just("status".to_owned()),
            Just("migration_tasks".to_owned()),
            Just("source_instance".to_owned()),
            Just("password".to_owned()),
            Just("full_migration_progress".to_owned()),
            Just("error".to_owned()),
            Just("error_code".to_owned()),
            Just("count".to_owned()),
            "[a-z_]{1,12}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic_a_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    #[test]
    fn random_json_never_panics_a_decoder(value in json_value()) {
        decode_all(&serde_json::to_vec(&value).unwrap());
    }
}

#[test]
fn deeply_nested_error_body_does_not_overflow_the_stack() {
    let depth = 100_000;
    let body = format!("{}{}", "{\"error\":".repeat(depth), "}".repeat(depth));
    let e = parse_error_body(400, body.as_bytes(), None, &Scrubber::default());
    assert_eq!(e.code, "400");
}
