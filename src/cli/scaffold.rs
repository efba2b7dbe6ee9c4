//! The file templates of `mmf generate plugin` and `mmf generate service --type fastapi`,
//! kept as files under `templates/` and embedded in the binary.
//!
//! Placeholders: `{{name}}` (Kubernetes spelling, `loyalty-points`), `{{entry}}` (MMF entry
//! point and Python package, `loyalty_points`), `{{class}}` (`LoyaltyPointsPlugin`),
//! `{{title}}` (`Loyalty Points`) and `{{port}}`.

use std::path::{Path, PathBuf};

/// One template: where it goes (relative; `package/` becomes the Python package) and its text.
type Template = (&'static str, &'static str);

macro_rules! templates {
    ($root:literal: $($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../templates/", $root, "/", $path)))),*]
    };
}

/// The plugin package.
const PLUGIN: &[Template] = templates!("plugin":
    "pyproject.toml",
    "Containerfile",
    ".containerignore",
    "README.md",
    "package/__init__.py",
    "package/plugin.py",
    "package/plugin.yaml",
    "package/config_schema.json",
    "tests/conftest.py",
    "tests/test_plugin.py",
    "tests/standin/marty_msf/__init__.py",
    "tests/standin/marty_msf/framework/__init__.py",
    "tests/standin/marty_msf/framework/plugins.py",
);

/// The FastAPI service skeleton.
const FASTAPI_SERVICE: &[Template] = templates!("service/fastapi":
    "Containerfile",
    "README.md",
    "requirements.txt",
    "requirements-test.txt",
    "pytest.ini",
    "mmf_service/__init__.py",
    "mmf_service/main.py",
    "mmf_service/plugin_manager.py",
    "tests/test_service.py",
);

/// The names a template is filled with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// Kubernetes spelling.
    pub name: String,
    /// Python spelling (entry point, package).
    pub entry: String,
    /// Plugin class name.
    pub class: String,
    /// Words for people.
    pub title: String,
    /// Service port.
    pub port: u16,
}

impl Names {
    /// Derives every spelling from a Kubernetes name such as `loyalty-points`.
    pub fn new(kubernetes_name: &str, port: u16) -> Names {
        let words: Vec<String> = kubernetes_name
            .split('-')
            .filter(|w| !w.is_empty())
            .map(|w| {
                let mut chars = w.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect();
        Names {
            name: kubernetes_name.to_owned(),
            entry: kubernetes_name.replace('-', "_"),
            class: format!("{}Plugin", words.concat()),
            title: words.join(" "),
            port,
        }
    }

    fn fill(&self, text: &str) -> String {
        text.replace("{{name}}", &self.name)
            .replace("{{entry}}", &self.entry)
            .replace("{{class}}", &self.class)
            .replace("{{title}}", &self.title)
            .replace("{{port}}", &self.port.to_string())
    }
}

fn expand(templates: &[Template], names: &Names, dir: &Path) -> Vec<(PathBuf, String)> {
    templates
        .iter()
        .map(|(path, text)| {
            let relative = match path.strip_prefix("package/") {
                Some(rest) => format!("{}/{rest}", names.entry),
                None => (*path).to_owned(),
            };
            (dir.join(relative), names.fill(text))
        })
        .collect()
}

/// The files of a plugin package in `dir`.
pub fn plugin_files(names: &Names, dir: &Path) -> Vec<(PathBuf, String)> {
    expand(PLUGIN, names, dir)
}

/// The files of a FastAPI service skeleton in `dir`.
pub fn fastapi_service_files(names: &Names, dir: &Path) -> Vec<(PathBuf, String)> {
    expand(FASTAPI_SERVICE, names, dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_derived_in_every_spelling() {
        assert_eq!(
            Names::new("loyalty-points", 8080),
            Names {
                name: "loyalty-points".into(),
                entry: "loyalty_points".into(),
                class: "LoyaltyPointsPlugin".into(),
                title: "Loyalty Points".into(),
                port: 8080,
            }
        );
    }

    #[test]
    fn every_placeholder_is_filled_and_the_package_folder_is_renamed() {
        let names = Names::new("loyalty-points", 9000);
        let files = plugin_files(&names, Path::new("out"));
        assert!(files.contains(&(
            PathBuf::from("out/loyalty_points/__init__.py"),
            "\"\"\"The loyalty-points plugin for the Marty Microservices Framework.\"\"\"\n\nfrom .plugin import LoyaltyPointsPlugin\n\n__all__ = [\"LoyaltyPointsPlugin\"]\n".into()
        )));
        for (path, text) in files
            .iter()
            .chain(fastapi_service_files(&names, Path::new("svc")).iter())
        {
            let unfilled = text.split("{{").skip(1).find(|rest| {
                rest.split_once("}}")
                    .is_some_and(|(word, _)| word.chars().all(|c| c.is_ascii_lowercase()))
            });
            assert_eq!(unfilled, None, "{} keeps a placeholder", path.display());
        }
    }
}
