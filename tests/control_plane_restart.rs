//! `scripts/control-plane restart` (for fault tests): etcd and kube-apiserver come back on the same port with the
//! same certificates, data and service-account signing key. A binary of its own, because a restart is an outage
//! for every test sharing the control plane.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{ObjectMeta, PostParams},
};

#[tokio::test]
async fn restart_keeps_port_certificates_data_and_tokens() {
    let cp = support::control_plane();
    let ns = support::fresh_namespace("restart").await;
    let admin = support::admin_client().await;
    let sa = support::service_account_client(&ns, "survivor").await;
    let kubeconfig_before = std::fs::read_to_string(cp.kubeconfig()).unwrap();
    let pids_before = std::fs::read_to_string(cp.dir().join("pids")).unwrap();

    let cm = ConfigMap {
        metadata: ObjectMeta { name: Some("kept".into()), ..Default::default() },
        data: Some([("k".to_string(), "v".to_string())].into()),
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(admin.clone(), &ns).create(&PostParams::default(), &cm).await.unwrap();

    cp.restart();

    let pids_after = std::fs::read_to_string(cp.dir().join("pids")).unwrap();
    assert_ne!(pids_before, pids_after, "new processes after a restart");
    assert_eq!(kubeconfig_before, std::fs::read_to_string(cp.kubeconfig()).unwrap(), "same port, CA and admin token");
    // The client made before the restart reconnects (its pooled connection died with the old process).
    let configmaps = Api::<ConfigMap>::namespaced(admin, &ns);
    let kept = support::eventually("the old client to reconnect", Duration::from_secs(10), || {
        let configmaps = configmaps.clone();
        async move { configmaps.get("kept").await.ok() }
    })
    .await;
    assert_eq!(kept.data.unwrap()["k"], "v", "etcd data survives");

    // A token minted before the restart is still valid: same service-account signing key. RBAC is the default
    // here (no Role), so the answer is a 403 naming the ServiceAccount, not a 401.
    let err = Api::<ConfigMap>::namespaced(sa, &ns).get("kept").await.unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 403, "{s:?}");
            assert!(s.message.contains(&format!("system:serviceaccount:{ns}:survivor")), "{}", s.message);
        }
        other => panic!("expected a 403, got {other:?}"),
    }
}
