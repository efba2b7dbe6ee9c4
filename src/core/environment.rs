//! Which environment applies to an object: its namespace's `mmf.marty.dev/environment` label,
//! else the operator's default. Objects cannot choose for themselves.

use std::collections::BTreeMap;

use crate::api::ENVIRONMENT_LABEL;

/// The environment name for a namespace with `labels` (None when the namespace is unknown).
pub fn environment_for(labels: Option<&BTreeMap<String, String>>, default: &str) -> String {
    labels
        .and_then(|labels| labels.get(ENVIRONMENT_LABEL))
        .map(|value| value.trim())
        .filter(|value| !value.is_empty())
        .unwrap_or(default)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_label_wins_over_the_default() {
        let labels = BTreeMap::from([(ENVIRONMENT_LABEL.to_owned(), "production".to_owned())]);
        assert_eq!(environment_for(Some(&labels), "development"), "production");
    }

    #[test]
    fn an_unlabelled_or_unknown_namespace_gets_the_default() {
        assert_eq!(
            environment_for(Some(&BTreeMap::new()), "development"),
            "development"
        );
        assert_eq!(environment_for(None, "development"), "development");
    }
}
