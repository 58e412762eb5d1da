//! The generated requests are realistic for the default requirements: allowed (every
//! enforced check passes) with the warn-level findings a real workload tends to have.

use podguard_bench::requests::Workload;

#[test]
fn every_request_is_allowed_by_the_default_requirements() {
    for workload in Workload::ALL {
        let response = podguard_policy::validate_payload(&workload.validate_payload("{}"));
        assert!(
            response.accepted,
            "{}: {:?}",
            workload.name(),
            response.message
        );
        let warnings = response.warnings.unwrap_or_default();
        match workload {
            Workload::SmallPod => assert!(warnings.is_empty(), "{warnings:?}"),
            Workload::Deployment | Workload::Pod30 => {
                assert!(!warnings.is_empty(), "{}: no warnings", workload.name());
                assert!(
                    warnings
                        .iter()
                        .all(|w| w.starts_with("read-only-root-filesystem")
                            || w.starts_with("image-tag-pinned")),
                    "{warnings:?}"
                );
            }
        }
    }
}
