//! The resource registry: built-in kinds the operator and chart need, plus kinds served from CRDs.

use std::sync::Arc;

use serde_json::Value;

/// A printer column (kubectl `get` output), as in a CRD's `additionalPrinterColumns`.
#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    /// JSONPath-ish expression, or `!data` / `!ready` for computed built-in cells.
    pub json_path: String,
}

/// Everything the server needs to know to serve one group/version/resource.
#[derive(Clone, Debug)]
pub struct ResourceInfo {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status: bool,
    pub columns: Vec<Column>,
    /// `openAPIV3Schema` (CRDs only).
    pub schema: Option<Value>,
    pub crd: bool,
}

/// Storage identity of a resource type: (group, plural). All versions share storage.
pub type TypeKey = (String, String);

impl ResourceInfo {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    pub fn key(&self) -> TypeKey {
        (self.group.clone(), self.plural.clone())
    }
    /// `plural.group` as used in Status messages (`widgets.example.com "x" not found`).
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
    /// `Kind.group` as used in Invalid messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
}

fn age() -> Column {
    col("Age", "date", ".metadata.creationTimestamp")
}

fn col(name: &str, ty: &str, path: &str) -> Column {
    Column {
        name: name.into(),
        type_: ty.into(),
        format: String::new(),
        description: String::new(),
        priority: 0,
        json_path: path.into(),
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    short: &[&str],
    categories: &[&str],
    status: bool,
    mut columns: Vec<Column>,
) -> ResourceInfo {
    columns.push(age());
    ResourceInfo {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: categories.iter().map(|s| s.to_string()).collect(),
        status,
        columns,
        schema: None,
        crd: false,
    }
}

/// All resources currently served, in discovery order.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    pub list: Vec<Arc<ResourceInfo>>,
}

impl Registry {
    pub fn builtin() -> Self {
        let all = &["all"];
        let list = vec![
            builtin(
                "",
                "v1",
                "Namespace",
                "namespaces",
                false,
                &["ns"],
                &[],
                true,
                vec![col("Status", "string", ".status.phase")],
            ),
            builtin(
                "",
                "v1",
                "ConfigMap",
                "configmaps",
                true,
                &["cm"],
                &[],
                false,
                vec![col("Data", "integer", "!data")],
            ),
            builtin(
                "",
                "v1",
                "Secret",
                "secrets",
                true,
                &[],
                &[],
                false,
                vec![
                    col("Type", "string", ".type"),
                    col("Data", "integer", "!data"),
                ],
            ),
            builtin(
                "",
                "v1",
                "Service",
                "services",
                true,
                &["svc"],
                all,
                true,
                vec![
                    col("Type", "string", ".spec.type"),
                    col("Cluster-IP", "string", ".spec.clusterIP"),
                ],
            ),
            builtin(
                "",
                "v1",
                "ServiceAccount",
                "serviceaccounts",
                true,
                &["sa"],
                &[],
                false,
                vec![],
            ),
            builtin(
                "",
                "v1",
                "Event",
                "events",
                true,
                &["ev"],
                &[],
                false,
                vec![
                    col("Reason", "string", ".reason"),
                    col("Object", "string", ".involvedObject.name"),
                    col("Message", "string", ".message"),
                ],
            ),
            builtin(
                "",
                "v1",
                "Pod",
                "pods",
                true,
                &["po"],
                all,
                true,
                vec![col("Status", "string", ".status.phase")],
            ),
            builtin(
                "apps",
                "v1",
                "Deployment",
                "deployments",
                true,
                &["deploy"],
                all,
                true,
                vec![
                    col("Ready", "string", "!ready"),
                    col("Up-to-date", "integer", ".status.updatedReplicas"),
                    col("Available", "integer", ".status.availableReplicas"),
                ],
            ),
            builtin(
                "apps",
                "v1",
                "ReplicaSet",
                "replicasets",
                true,
                &["rs"],
                all,
                true,
                vec![
                    col("Desired", "integer", ".spec.replicas"),
                    col("Current", "integer", ".status.replicas"),
                    col("Ready", "integer", ".status.readyReplicas"),
                ],
            ),
            builtin(
                "events.k8s.io",
                "v1",
                "Event",
                "events",
                true,
                &["ev"],
                &[],
                false,
                vec![
                    col("Reason", "string", ".reason"),
                    col("Note", "string", ".note"),
                ],
            ),
            builtin(
                "coordination.k8s.io",
                "v1",
                "Lease",
                "leases",
                true,
                &[],
                &[],
                false,
                vec![col("Holder", "string", ".spec.holderIdentity")],
            ),
            builtin(
                "rbac.authorization.k8s.io",
                "v1",
                "Role",
                "roles",
                true,
                &[],
                &[],
                false,
                vec![],
            ),
            builtin(
                "rbac.authorization.k8s.io",
                "v1",
                "RoleBinding",
                "rolebindings",
                true,
                &[],
                &[],
                false,
                vec![col("Role", "string", ".roleRef.name")],
            ),
            builtin(
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRole",
                "clusterroles",
                false,
                &[],
                &[],
                false,
                vec![],
            ),
            builtin(
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRoleBinding",
                "clusterrolebindings",
                false,
                &[],
                &[],
                false,
                vec![col("Role", "string", ".roleRef.name")],
            ),
            builtin(
                "policy",
                "v1",
                "PodDisruptionBudget",
                "poddisruptionbudgets",
                true,
                &["pdb"],
                &[],
                true,
                vec![
                    col("Min Available", "string", ".spec.minAvailable"),
                    col("Max Unavailable", "string", ".spec.maxUnavailable"),
                ],
            ),
            builtin(
                "networking.k8s.io",
                "v1",
                "NetworkPolicy",
                "networkpolicies",
                true,
                &["netpol"],
                &[],
                false,
                vec![col("Pod-Selector", "string", ".spec.podSelector")],
            ),
            builtin(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                "customresourcedefinitions",
                false,
                &["crd", "crds"],
                &[],
                true,
                vec![col("Created At", "string", ".metadata.creationTimestamp")],
            ),
            builtin(
                "admissionregistration.k8s.io",
                "v1",
                "ValidatingWebhookConfiguration",
                "validatingwebhookconfigurations",
                false,
                &[],
                &["api-extensions"],
                false,
                vec![col("Webhooks", "integer", "!webhooks")],
            ),
            builtin(
                "admissionregistration.k8s.io",
                "v1",
                "MutatingWebhookConfiguration",
                "mutatingwebhookconfigurations",
                false,
                &[],
                &["api-extensions"],
                false,
                vec![col("Webhooks", "integer", "!webhooks")],
            ),
        ];
        Self {
            list: list.into_iter().map(Arc::new).collect(),
        }
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.list
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .cloned()
    }

    /// Groups in discovery order, each with its versions (preferred first).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in &self.list {
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, vs)) => {
                    if !vs.contains(&r.version) {
                        vs.push(r.version.clone());
                    }
                }
                None => out.push((r.group.clone(), vec![r.version.clone()])),
            }
        }
        out
    }

    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceInfo>> {
        self.list
            .iter()
            .filter(|r| r.group == group && r.version == version)
            .cloned()
            .collect()
    }

    /// Starts (or updates) serving the kinds declared by a CRD object.
    pub fn apply_crd(&mut self, crd: &Value) {
        let spec = &crd["spec"];
        let group = spec["group"].as_str().unwrap_or_default().to_string();
        let names = &spec["names"];
        let plural = names["plural"].as_str().unwrap_or_default().to_string();
        self.remove_crd(&group, &plural);
        let strs = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let Some(versions) = spec["versions"].as_array() else {
            return;
        };
        for v in versions {
            if v["served"].as_bool() == Some(false) {
                continue;
            }
            let mut columns: Vec<Column> = v["additionalPrinterColumns"]
                .as_array()
                .map(|cols| {
                    cols.iter()
                        .map(|c| Column {
                            name: c["name"].as_str().unwrap_or_default().into(),
                            type_: c["type"].as_str().unwrap_or("string").into(),
                            format: c["format"].as_str().unwrap_or_default().into(),
                            description: c["description"].as_str().unwrap_or_default().into(),
                            priority: c["priority"].as_i64().unwrap_or(0),
                            json_path: c["jsonPath"].as_str().unwrap_or_default().into(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            if columns.is_empty() {
                columns.push(age());
            }
            let kind = names["kind"].as_str().unwrap_or_default().to_string();
            self.list.push(Arc::new(ResourceInfo {
                group: group.clone(),
                version: v["name"].as_str().unwrap_or_default().into(),
                singular: names["singular"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| kind.to_lowercase()),
                kind,
                plural: plural.clone(),
                namespaced: spec["scope"].as_str() != Some("Cluster"),
                short_names: strs(&names["shortNames"]),
                categories: strs(&names["categories"]),
                status: v["subresources"]["status"].is_object(),
                columns,
                schema: Some(v["schema"]["openAPIV3Schema"].clone()).filter(|s| s.is_object()),
                crd: true,
            }));
        }
    }

    pub fn remove_crd(&mut self, group: &str, plural: &str) {
        self.list
            .retain(|r| !(r.crd && r.group == group && r.plural == plural));
    }
}
