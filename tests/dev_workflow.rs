//! The MMF developer workflow end to end (issue 16): every command of the README's walkthrough
//! runs as written in a temp dir, then the generated service runs as its pod would (uvicorn on
//! 127.0.0.1, the rendered ConfigMap's files, the plugin laid out by the init container's own
//! command), once with a healthy plugin and once with one whose `initialize` raises.
//! Needs `.venv-workflow` (`bash .ci/test` creates it); under CI a missing venv fails.
#![allow(clippy::unwrap_used)]

mod workflow_common;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use workflow_common::{documents, of_kind};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The venv's bin directory, or None (skipped; fails under CI).
fn venv_bin() -> Option<PathBuf> {
    let bin = Path::new(ROOT).join(".venv-workflow/bin");
    if bin.join("python").exists() {
        return Some(bin);
    }
    mmf_e2e::tools::missing(
        &bin.join("python").display().to_string(),
        "run `bash .ci/test` once to create .venv-workflow from .ci/requirements-workflow.txt",
    );
    None
}

/// The command lines between the README's dev-workflow markers, comments removed.
fn walkthrough() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let begin = readme
        .find("<!-- dev-workflow:begin -->")
        .expect("no begin marker");
    let end = readme
        .find("<!-- dev-workflow:end -->")
        .expect("no end marker");
    readme[begin..end]
        .lines()
        .filter(|l| !l.starts_with("```") && !l.starts_with("<!--") && !l.trim().is_empty())
        .map(|l| l.split(" # ").next().unwrap().trim().to_owned())
        .collect()
}

struct Shell {
    dir: PathBuf,
    path: std::ffi::OsString,
}

impl Shell {
    fn run(&self, line: &str) -> String {
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", line])
            .current_dir(&self.dir)
            .env("PATH", &self.path)
            .env_remove("MMF_ENVIRONMENT")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "README command failed: {line}\nstdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

fn copy_tree(from: &Path, to: &Path, skip: &[String]) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if skip.iter().any(|pattern| ignored(pattern, &name)) {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target, skip);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The `.containerignore` patterns the scaffold uses: a name, or `*.ext`.
fn ignored(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => name.ends_with(suffix),
        None => pattern.trim_matches('/') == name,
    }
}

/// `podman build -t TAG -f FILE CONTEXT` without a container engine: the Containerfile's COPY
/// lines applied to an empty root (honouring `.containerignore`); returns the root and a digest
/// of its files.
fn build_image(dir: &Path, line: &str) -> (PathBuf, String) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let file = words[words.iter().position(|w| *w == "-f").unwrap() + 1];
    let context = dir.join(words.last().unwrap());
    let containerfile = std::fs::read_to_string(dir.join(file)).unwrap();
    let skip: Vec<String> = std::fs::read_to_string(context.join(".containerignore"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.trim().to_owned())
        .collect();
    let root = dir.join("image-root");
    for copy in containerfile.lines().filter(|l| l.starts_with("COPY ")) {
        let parts: Vec<&str> = copy.split_whitespace().collect();
        let (source, target) = (
            context.join(parts[1]),
            root.join(parts[2].trim_start_matches('/')),
        );
        if source.is_dir() {
            copy_tree(&source, &target, &skip);
        } else {
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(&source, &target).unwrap();
        }
    }
    let mut listing = Vec::new();
    list_files(&root, &root, &mut listing);
    let digest = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(listing.join("\n").as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let digest = String::from_utf8(digest.stdout).unwrap()[..64].to_owned();
    (root, digest)
}

fn list_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            list_files(root, &path, out);
        } else {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            out.push(format!(
                "{} {}",
                path.strip_prefix(root).unwrap().display(),
                text.len()
            ));
            out.push(text);
        }
    }
}

/// Inserts the `- id: ...` entry `mmf keygen` printed under `trusted_keys:` of the policy.
fn trust_key(policy: &Path, keygen_stdout: &str) {
    let start = keygen_stdout
        .find("    trusted_keys:\n")
        .expect("keygen printed no snippet");
    let entry: String = keygen_stdout[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(entry.starts_with("      - id: team-2026\n"), "{entry}");
    let text = std::fs::read_to_string(policy).unwrap();
    let text = text.replacen(
        "    trusted_keys:\n",
        &format!("    trusted_keys:\n{entry}"),
        1,
    );
    std::fs::write(policy, text).unwrap();
}

/// A pod's volumes on disk: the ConfigMap's files, and empty dirs.
struct Pod {
    volumes: BTreeMap<String, PathBuf>,
}

impl Pod {
    fn lay_out(
        dir: &Path,
        deployment: &Value,
        config_map: &Value,
        images: &BTreeMap<String, PathBuf>,
    ) -> Pod {
        let spec = &deployment["spec"]["template"]["spec"];
        let mut volumes = BTreeMap::new();
        for volume in spec["volumes"].as_array().unwrap() {
            let name = volume["name"].as_str().unwrap().to_owned();
            let path = dir.join("volumes").join(&name);
            std::fs::create_dir_all(&path).unwrap();
            if let Some(cm) = volume.get("configMap") {
                assert_eq!(cm["name"], config_map["metadata"]["name"]);
                for (file, text) in config_map["data"].as_object().unwrap() {
                    std::fs::write(path.join(file), text.as_str().unwrap()).unwrap();
                }
            }
            volumes.insert(name, path);
        }
        let pod = Pod { volumes };
        // The init containers' own commands, their paths mapped to the volumes and the image.
        for init in spec["initContainers"].as_array().unwrap() {
            let image = init["image"].as_str().unwrap();
            let root = images
                .get(image)
                .unwrap_or_else(|| panic!("{image} was not built"));
            let args: Vec<String> = init["command"]
                .as_array()
                .unwrap()
                .iter()
                .chain(init["args"].as_array().into_iter().flatten())
                .map(|a| a.as_str().unwrap().to_owned())
                .collect();
            assert_eq!(args[0], "cp", "init container {}: {args:?}", init["name"]);
            let mapped: Vec<String> = args[1..]
                .iter()
                .map(|a| {
                    if a.starts_with('/') {
                        pod.host_path(init, root, a)
                    } else {
                        a.clone()
                    }
                })
                .collect();
            let status = Command::new("cp").args(&mapped).status().unwrap();
            assert!(status.success(), "cp {mapped:?}");
        }
        pod
    }

    /// Where a container path is on disk: under a volume mount, else in the image's root.
    fn host_path(&self, container: &Value, image_root: &Path, path: &str) -> String {
        let mount = container["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| path.starts_with(m["mountPath"].as_str().unwrap()))
            .max_by_key(|m| m["mountPath"].as_str().unwrap().len());
        match mount {
            Some(m) => {
                let rest = &path[m["mountPath"].as_str().unwrap().len()..];
                let mut volume = self.volumes[m["name"].as_str().unwrap()].clone();
                if let Some(sub) = m["subPath"].as_str() {
                    volume = volume.join(sub);
                    std::fs::create_dir_all(&volume).unwrap();
                }
                format!("{}{rest}", volume.display())
            }
            None => format!("{}{path}", image_root.display()),
        }
    }
}

/// The service process; killed when dropped.
struct Service {
    child: Child,
    port: u16,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the Containerfile's CMD in `app` on 127.0.0.1 with the container's environment.
fn start_service(venv: &Path, app: &Path, deployment: &Value, pod: &Pod) -> Service {
    let containerfile = std::fs::read_to_string(app.join("Containerfile")).unwrap();
    let cmd = containerfile
        .lines()
        .find_map(|l| l.strip_prefix("CMD "))
        .unwrap();
    let mut cmd: Vec<String> = serde_json::from_str(cmd).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = cmd.iter().position(|w| w == "--host").unwrap();
    cmd[host + 1] = "127.0.0.1".into();
    let port_at = cmd.iter().position(|w| w == "--port").unwrap();
    cmd[port_at + 1] = port.to_string();
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let mut command = Command::new(venv.join(&cmd[0]));
    command
        .args(&cmd[1..])
        .current_dir(app)
        .env_clear()
        .env("PATH", venv)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // The service image provides marty_msf (RUNTIME.md); here the plugin scaffold's STAND-IN of
    // its plugin API does, as in the plugin's own tests.
    let standin = app.join("../../loyalty-points/tests/standin");
    assert!(standin.join("marty_msf/__init__.py").is_file());
    command.env("PYTHONPATH", standin);
    for env in containerfile.lines().filter_map(|l| l.strip_prefix("ENV ")) {
        for pair in env.split_whitespace() {
            let (k, v) = pair.split_once('=').unwrap();
            command.env(k, v);
        }
    }
    for env in container["env"].as_array().unwrap() {
        let value = env["value"].as_str().unwrap_or_default();
        let value = if value.starts_with('/') {
            pod.host_path(container, Path::new("/"), value)
        } else {
            value.to_owned()
        };
        command.env(env["name"].as_str().unwrap(), value);
    }
    Service {
        child: command.spawn().unwrap(),
        port,
    }
}

/// GET over HTTP/1.1: status and body.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// Waits until the startup probe answers 200 (plugin loading finished).
fn wait_started(service: &mut Service, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((200, _)) = get(service.port, path) {
            return;
        }
        assert!(
            service.child.try_wait().unwrap().is_none(),
            "the service exited"
        );
        assert!(
            Instant::now() < deadline,
            "the service did not start within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn probe_path(deployment: &Value, probe: &str) -> String {
    deployment["spec"]["template"]["spec"]["containers"][0][probe]["httpGet"]["path"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_readme_workflow_runs_and_the_generated_service_reports_its_plugin() {
    let Some(venv) = venv_bin() else { return };
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().to_owned();
    copy_tree(&Path::new(ROOT).join("config"), &dir.join("config"), &[]);
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(assert_cmd::cargo::cargo_bin("mmf"), bin.join("mmf")).unwrap();
    let path = std::env::join_paths([bin, venv.clone()].into_iter().chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let shell = Shell {
        dir: dir.clone(),
        path,
    };

    let mut images = BTreeMap::new();
    let mut digest: Option<String> = None;
    let (mut rendered, mut dev_output): (Option<String>, Option<String>) = (None, None);
    let mut ran = Vec::new();
    for line in walkthrough() {
        let line = match &digest {
            Some(d) => line.replace("<digest>", d.as_str()),
            None => line,
        };
        let program = line
            .trim_start_matches('(')
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        ran.push(program.clone());
        if program == "podman build" {
            let (root, d) = build_image(&dir, &line);
            let tag = line
                .split_whitespace()
                .skip_while(|w| *w != "-t")
                .nth(1)
                .unwrap();
            let repository = tag.rsplit_once(':').unwrap().0;
            images.insert(format!("{repository}@sha256:{d}"), root);
            digest = Some(d);
            continue;
        }
        assert!(!line.contains('<'), "unfilled placeholder in {line}");
        let stdout = shell.run(&line);
        match program.as_str() {
            "mmf keygen" => trust_key(&dir.join("config/production.yaml"), &stdout),
            "mmf render" => rendered = Some(stdout),
            "mmf dev" => dev_output = Some(stdout),
            _ => {}
        }
    }
    assert_eq!(
        ran,
        [
            "mmf generate",
            "cd loyalty-points",
            "podman build",
            "mmf plugin",
            "mmf keygen",
            "mmf sign",
            "mmf generate",
            "cd deploy/rewards-service",
            "mmf check",
            "mmf render",
            "mmf dev"
        ]
    );
    let dev_output = dev_output.unwrap();
    for line in [
        "MmfPlugin/loyalty-points 0.1.0",
        "  SignatureVerified=True (Verified)",
        "MmfService/rewards-service replicas 1/1 plugins [loyalty-points]",
        "  Ready=True (Ready)",
    ] {
        assert!(
            dev_output.lines().any(|l| l == line),
            "{line:?} not in:\n{dev_output}"
        );
    }

    let docs = documents(&rendered.unwrap());
    let (deployment, config_map) = (
        of_kind(&docs, "Deployment").clone(),
        of_kind(&docs, "ConfigMap").clone(),
    );
    let app = dir.join("deploy/rewards-service");
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    let metrics_path = annotations["prometheus.io/path"]
        .as_str()
        .unwrap()
        .to_owned();
    let (startup, ready, live) = (
        probe_path(&deployment, "startupProbe"),
        probe_path(&deployment, "readinessProbe"),
        probe_path(&deployment, "livenessProbe"),
    );
    let greeting =
        documents(config_map["data"]["loyalty-points.yaml"].as_str().unwrap())[0]["greeting"]
            .clone();
    assert_eq!(greeting, "Hello from loyalty-points");

    // A healthy plugin: ready, its route served, its metrics exported.
    let pod = Pod::lay_out(&dir.join("pod-ok"), &deployment, &config_map, &images);
    let mut service = start_service(&venv, &app, &deployment, &pod);
    wait_started(&mut service, &startup);
    let (status, body) = get(service.port, &ready).unwrap();
    assert_eq!(
        (status, serde_json::from_str::<Value>(&body).unwrap()),
        (
            200,
            json!({"status": "ready", "environment": "production",
                     "plugins": [{"name": "loyalty-points", "state": "loaded", "version": "0.1.0", "reason": ""}]})
        )
    );
    let (status, body) = get(service.port, "/loyalty-points/hello").unwrap();
    assert_eq!(
        (status, serde_json::from_str::<Value>(&body).unwrap()),
        (
            200,
            json!({"plugin": "loyalty-points", "greeting": greeting})
        )
    );
    assert_eq!(get(service.port, &live).unwrap().0, 200);
    let (status, metrics) = get(service.port, &metrics_path).unwrap();
    assert_eq!(status, 200);
    for line in [
        "mmf_plugin_up{plugin=\"loyalty-points\",version=\"0.1.0\"} 1",
        "mmf_plugin_requests_total{plugin=\"loyalty-points\",method=\"GET\",route=\"/loyalty-points/hello\",code=\"200\"} 1",
        "mmf_plugin_metric{plugin=\"loyalty-points\",metric=\"greetings_total\"} 1.0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line:?} not in:\n{metrics}"
        );
    }
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("mmf_plugin_load_seconds{plugin=\"loyalty-points\"} ")),
        "{metrics}"
    );
    drop(service);
    let plugin_copy = pod.volumes["plugins"].join("loyalty-points");
    assert!(plugin_copy.join("loyalty_points/plugin.py").is_file());
    assert!(
        !plugin_copy.join("loyalty_points/__pycache__").exists(),
        "bytecode written into the plugin dir"
    );

    // The same plugin whose initialize raises: not ready, naming the plugin and why.
    let (image, root) = images
        .iter()
        .next()
        .map(|(i, r)| (i.clone(), r.clone()))
        .unwrap();
    let plugin_py = root.join("plugin/loyalty_points/plugin.py");
    let code = std::fs::read_to_string(&plugin_py).unwrap();
    let line = "        self.settings = dict(self.context.config or {})\n";
    assert!(code.contains(line), "plugin.py changed: update this test");
    std::fs::write(
        &plugin_py,
        code.replacen(
            line,
            "        raise RuntimeError(\"cannot reach the points ledger\")\n",
            1,
        ),
    )
    .unwrap();
    let images = BTreeMap::from([(image, root)]);
    let pod = Pod::lay_out(&dir.join("pod-failing"), &deployment, &config_map, &images);
    let mut service = start_service(&venv, &app, &deployment, &pod);
    wait_started(&mut service, &startup);
    let (status, body) = get(service.port, &ready).unwrap();
    assert_eq!(
        (status, serde_json::from_str::<Value>(&body).unwrap()),
        (
            503,
            json!({"status": "not ready", "environment": "production",
                     "plugins": [{"name": "loyalty-points", "state": "failed", "version": "0.1.0",
                                  "reason": "RuntimeError: cannot reach the points ledger"}]})
        )
    );
    assert_eq!(get(service.port, &live).unwrap().0, 200);
    assert_eq!(get(service.port, "/loyalty-points/hello").unwrap().0, 404);
    let metrics = get(service.port, &metrics_path).unwrap().1;
    assert!(
        metrics
            .lines()
            .any(|l| l == "mmf_plugin_up{plugin=\"loyalty-points\",version=\"0.1.0\"} 0"),
        "{metrics}"
    );
}

#[test]
fn the_workflow_venv_pins_what_the_generated_service_installs() {
    let pins = |path: &str| -> Vec<String> {
        let mut pins: Vec<String> = std::fs::read_to_string(Path::new(ROOT).join(path))
            .unwrap()
            .lines()
            .filter(|l| l.contains("=="))
            .map(|l| l.trim().to_lowercase())
            .collect();
        pins.sort();
        pins
    };
    let mut service = pins("templates/service/fastapi/requirements.txt");
    service.extend(pins("templates/service/fastapi/requirements-test.txt"));
    service.sort();
    assert_eq!(pins(".ci/requirements-workflow.txt"), service);
}
