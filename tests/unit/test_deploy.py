"""The deployment files, checked as far as this machine allows: they parse, use the commands,
flags, settings and ports the services really have, the dashboard only charts metrics the
services export, the compose setup script gives each container only its own secrets, and
``docker-compose config`` accepts the stack where that tool is installed. Containers themselves
cannot run here (see test_the_compose_stack_starts): the sandbox refuses crun's setrlimit."""

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
import yaml

from control_plane.cli import _parser as cp_parser
from control_plane.config import CpSettings
from edge_node.cli import _parser as edge_parser
from edge_node.config import EdgeSettings
from edge_node.metrics import EdgeMetrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
EDGE_VARS = {f"EDGE_{f.name.upper()}" for f in msgspec.structs.fields(EdgeSettings)}
CP_VARS = {f"CP_{f.name.upper()}" for f in msgspec.structs.fields(CpSettings)}


def check_command(argv: list[str]) -> None:
    """The command is one of ours and its flags parse."""
    program, args = Path(argv[0]).name, argv[1:]
    parser = {"edge-node": edge_parser, "control-plane": cp_parser}[program]()
    parser.parse_args(args)


def check_env(names) -> None:
    for name in names:
        if name.startswith("EDGE_"):
            assert name in EDGE_VARS, f"{name} is not an edge setting"
        elif name.startswith("CP_"):
            assert name in CP_VARS, f"{name} is not a control-plane setting"


def dockerfile(name: str) -> dict:
    text = (DEPLOY / "docker" / name).read_text()
    entry = json.loads(re.search(r"^ENTRYPOINT (.+)$", text, re.M).group(1))
    env = dict(re.findall(r"(\w+)=(\S+?)\s*(?:\\|$)", text.split("ENV", 2)[-1].split("EXPOSE")[0]))
    exposed = [int(p) for p in re.search(r"^EXPOSE (.+)$", text, re.M).group(1).split()]
    return {"text": text, "entry": entry, "env": env, "exposed": exposed}


def test_images_run_the_e2e_commands_as_non_root_with_health_checks():
    edge = dockerfile("edge.Dockerfile")
    assert edge["entry"] == ["edge-node", "serve"]
    check_command(edge["entry"])
    check_env(edge["env"])
    assert sorted(edge["exposed"]) == sorted([int(edge["env"]["EDGE_PORT"]), int(edge["env"]["EDGE_ADMIN_PORT"])])
    assert f"127.0.0.1:{edge['env']['EDGE_ADMIN_PORT']}/readyz" in edge["text"]
    cp = dockerfile("control-plane.Dockerfile")
    assert cp["entry"] == ["control-plane", "serve"]
    check_command(cp["entry"])
    check_env(cp["env"])
    assert sorted(cp["exposed"]) == sorted([int(cp["env"]["CP_PORT"]), int(cp["env"]["CP_METRICS_PORT"])])
    for image in (edge, cp):
        assert "USER sentiedge" in image["text"] and "HEALTHCHECK" in image["text"]
        assert image["text"].count("FROM ") == 2  # multi-stage


def test_compose_wires_one_control_plane_and_three_edges():
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    services = compose["services"]
    edges = [n for n in services if n.startswith("edge-")]
    assert len(edges) == 3 and "control-plane" in services
    check_env(services["control-plane"]["environment"])
    for name, service in services.items():
        if name.startswith(("edge-", "control-plane")):
            assert service["ulimits"]["nofile"]["soft"] >= 65536, name
    for name in edges:
        env = services[name]["environment"]
        check_env(env)
        assert env["EDGE_NODE_ID"] == name and env["EDGE_TLS_CERT"].endswith(f"/{name}.crt")
        mounts = [v for v in services[name]["volumes"] if v.startswith("./")]
        assert mounts == [f"./secrets/{name}:/etc/sentiedge:ro"], mounts  # its own secrets, nobody else's
        host, port = env["EDGE_CONTROL_PLANE"].split(":")
        assert host == "control-plane" and port == dockerfile("control-plane.Dockerfile")["env"]["CP_PORT"]
    targets = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
    edge_admin = dockerfile("edge.Dockerfile")["env"]["EDGE_ADMIN_PORT"]
    edge_targets = next(c for c in targets if c["job_name"] == "sentiedge-edge")["static_configs"][0]["targets"]
    assert sorted(edge_targets) == sorted(f"{n}:{edge_admin}" for n in edges)


BUNDLE = Path(__file__).resolve().parents[2] / "models" / "sentiment-cascade"


@pytest.fixture(scope="module")
def compose_secrets(tmp_path_factory):
    """Run deploy/compose/setup.sh as an operator would, on a copy of the bundle."""
    tmp = tmp_path_factory.mktemp("compose")
    shutil.copytree(BUNDLE, tmp / "bundle")
    env = {**os.environ, "OUT": str(tmp / "out"), "BUNDLE": str(tmp / "bundle"),
           "CONTROL_PLANE": str(Path(sys.executable).parent / "control-plane")}
    run = subprocess.run([str(DEPLOY / "compose" / "setup.sh")], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    again = subprocess.run([str(DEPLOY / "compose" / "setup.sh")], env=env, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0, again.stderr  # safe to run twice
    return tmp


def test_compose_setup_gives_each_container_only_what_it_needs(compose_secrets):
    from cryptography import x509

    out = compose_secrets / "out"
    services = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())["services"]
    mounted = {name: sorted(p.name for p in (out / "secrets" / name).iterdir())
               for name in services if name != "prometheus"}
    assert mounted["control-plane"] == ["ca.crt", "control-plane.crt", "control-plane.key"]
    for edge in ("edge-1", "edge-2", "edge-3"):
        assert mounted[edge] == ["ca.crt", f"{edge}.crt", f"{edge}.key"]
        cert = x509.load_pem_x509_certificate((out / "secrets" / edge / f"{edge}.crt").read_bytes())
        assert cert.subject.rfc4514_string() == f"CN={edge}"  # the control plane binds node id to it
    for name in mounted:  # the images' uid 10001 owns them; nobody else reads them
        directory = out / "secrets" / name
        assert directory.stat().st_uid == 10001, name
        for f in directory.iterdir():
            assert f.stat().st_uid == 10001 and stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f
    secrets_tree = {p.name for p in (out / "secrets").rglob("*")}
    assert "ca.key" not in secrets_tree and "release" not in secrets_tree  # CA and signing keys mounted nowhere
    assert (out / "ca" / "ca.key").exists() and (out / "signing" / "release").exists()
    env = dict(line.split("=", 1) for line in (out / ".env").read_text().splitlines())
    assert set(env) == {"SENTIEDGE_ADMIN_TOKENS", "SENTIEDGE_PSEUDONYM_KEY", "SENTIEDGE_TRUSTED_KEY",
                        "COMPOSE_PROJECT_NAME"}
    assert env["SENTIEDGE_ADMIN_TOKENS"] == "ops:" + (out / "secrets" / "ops" / "admin-token").read_text().strip()
    assert (compose_secrets / "bundle" / "signature.json").exists()  # the bundle the images ship is signed
    from sentiedge_core import signing

    signing.verify(compose_secrets / "bundle", signing.trusted_keys(env["SENTIEDGE_TRUSTED_KEY"]))


@pytest.mark.skipif(shutil.which("docker-compose") is None,
                    reason="docker-compose is not installed (apt-get install docker-compose validates the stack)")
def test_docker_compose_accepts_the_stack(compose_secrets):
    out = subprocess.run(["docker-compose", "--env-file", str(compose_secrets / "out" / ".env"), "-f",
                          str(DEPLOY / "compose" / "compose.yaml"), "config"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    config = yaml.safe_load(out.stdout)
    assert sorted(config["services"]) == ["control-plane", "edge-1", "edge-2", "edge-3", "prometheus"]
    assert config["services"]["edge-2"]["environment"]["EDGE_PSEUDONYM_KEY"]  # filled from .env


def _containers_run() -> str:
    """Why containers cannot run here ("" when they can)."""
    if shutil.which("podman") is None:
        return "no container engine installed (apt-get install podman)"
    probe = subprocess.run(["podman", "run", "--rm", "--network", "none", "--rootfs", "/", "true"],
                           capture_output=True, text=True, timeout=120)
    return "" if probe.returncode == 0 else f"podman cannot start a container here: {probe.stderr.strip()[-200:]}"


def test_the_compose_stack_starts():
    reason = _containers_run()
    if reason:
        pytest.skip(reason)
    # Reaching here needs an engine that also builds from python:3.11-slim, i.e. a registry.
    out = subprocess.run(["podman", "image", "exists", "python:3.11-slim"], capture_output=True)
    if out.returncode != 0:
        pytest.skip("containers run, but the base image python:3.11-slim is not available offline")
    up = subprocess.run(["podman", "compose", "-f", str(DEPLOY / "compose" / "compose.yaml"), "up", "-d", "--build"],
                        capture_output=True, text=True, timeout=900)
    assert up.returncode == 0, up.stderr


def k8s(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()) if d]


def containers(docs, kind):
    return next(d for d in docs if d["kind"] == kind)["spec"]["template"]["spec"]["containers"]


def test_kubernetes_control_plane_statefulset_and_edge_daemonset():
    cp_docs = k8s("control-plane.yaml")
    assert {d["kind"] for d in cp_docs} == {"Service", "StatefulSet"}
    statefulset = next(d for d in cp_docs if d["kind"] == "StatefulSet")
    assert statefulset["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    (cp,) = containers(cp_docs, "StatefulSet")
    check_command(["control-plane", "serve", *cp["args"]])
    check_env(e["name"] for e in cp["env"])
    ports = {p["name"]: p["containerPort"] for p in cp["ports"]}
    assert cp["args"] == ["--port", str(ports["grpc"]), "--metrics-port", str(ports["metrics"])]
    (edge,) = containers(k8s("edge.yaml"), "DaemonSet")
    check_command(["edge-node", "serve", *edge["args"]])
    check_env(e["name"] for e in edge["env"])
    ports = {p["name"]: p["containerPort"] for p in edge["ports"]}
    assert edge["args"] == ["--port", str(ports["http"]), "--admin-port", str(ports["admin"])]
    assert edge["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert edge["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert any(e["name"] == "EDGE_CONTROL_PLANE" and e["value"].endswith(":50051") for e in edge["env"])


def test_every_kubernetes_edge_gets_its_own_certificate():
    daemonset = next(d for d in k8s("edge.yaml") if d["kind"] == "DaemonSet")
    pod = daemonset["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    script = " ".join(init["args"])
    assert 'control-plane certs issue "$NODE_NAME"' in script
    check_command(["control-plane", "certs", "issue", "node-a", "--dir", "/work"])
    assert any(e["name"] == "NODE_NAME" and e["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
               for e in init["env"])
    (edge,) = pod["containers"]
    env = {e["name"]: e for e in edge["env"]}
    assert env["EDGE_NODE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert env["EDGE_TLS_CERT"]["value"] == "/etc/sentiedge/tls/$(EDGE_NODE_ID).crt"  # not one shared node.crt
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tls"]["emptyDir"]["medium"] == "Memory"
    edge_mounts = {m["name"] for m in edge["volumeMounts"]}
    assert "ca" not in edge_mounts and "ca" in {m["name"] for m in init["volumeMounts"]}  # the CA key: init only


@pytest.mark.parametrize("unit", ["sentiedge-edge.service", "sentiedge-control-plane.service"])
def test_systemd_units_start_our_commands(unit):
    text = (DEPLOY / "systemd" / unit).read_text()
    exec_start = re.search(r"^ExecStart=(.+)$", text, re.M).group(1)
    check_command(shlex.split(exec_start))
    assert "KillSignal=SIGTERM" in text and "User=sentiedge" in text
    # systemd's default of 1,024 descriptors is what a slow-client flood exhausted.
    assert int(re.search(r"^LimitNOFILE=(\d+)$", text, re.M).group(1)) >= 65536
    assert re.search(r"^UMask=0077$", text, re.M)
    check_env(re.findall(r"^Environment=(\w+)=", text, re.M))


def exported_metric_names(tmp_path) -> set[str]:
    from prometheus_client import generate_latest

    from control_plane.config import load_settings
    from control_plane.state import ControlPlane
    from control_plane.store import Node

    edge = EdgeMetrics(low_confidence=0.6)
    cp = ControlPlane(load_settings({"CP_DATA_DIR": str(tmp_path), "CP_ADMIN_TOKENS": "t:12345678"}))
    cp.store.upsert_node(Node(node_id="n", registered_at=1.0))
    text = (generate_latest(edge.registry) + generate_latest(cp.metrics.registry)).decode()
    cp.close()
    names = set(re.findall(r"^# TYPE (\w+) ", text, re.M))
    for name in list(names):
        names |= {name + suffix for suffix in ("_bucket", "_sum", "_count", "_total", "_info")}
    return names


def test_the_dashboard_charts_only_metrics_the_services_export(tmp_path):
    dashboard = json.loads((DEPLOY / "grafana" / "sentiedge.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\bsentiedge_\w+", e)}
    missing = used - exported_metric_names(tmp_path)
    assert not missing, missing
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ("model version", "sync state", "staleness", "completion time", "latency", "batch size", "drift",
                  "topic trends", "exposure", "gini", "exploration", "click-through"):
        assert topic in titles, topic


def test_bare_host_install_creates_what_the_units_read():
    install = (DEPLOY / "systemd" / "install.sh").read_text()
    assert "useradd --system" in install and "/opt/sentiedge" in install and "/etc/sentiedge" in install
    for unit in ("sentiedge-edge.service", "sentiedge-control-plane.service"):
        text = (DEPLOY / "systemd" / unit).read_text()
        assert "pip install sentiedge" not in text and "install.sh" in text  # no such distribution on an index
        env_file = re.search(r"^EnvironmentFile=/etc/sentiedge/(\S+)$", text, re.M).group(1)
        example = DEPLOY / "systemd" / (env_file + ".example")
        names = re.findall(r"^#?(\w+)=", example.read_text(), re.M)
        assert names, example
        check_env(names)  # every variable the example sets is a real setting


def test_make_run_serves_without_the_test_toolchain_and_make_run_edge_has_its_own_data():
    dry = subprocess.run(["make", "-n", "-B", "run", "run-edge", "reset"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert dry.returncode == 0, dry.stderr
    install_lines = [line for line in dry.stdout.splitlines() if "pip install" in line and " -e " in line]
    assert install_lines and all("[test" not in line for line in install_lines), install_lines
    assert "apt-get" not in dry.stdout  # no system package, no sudo, for serving
    assert "--data-dir var/edge-standalone" in dry.stdout and "EDGE_PSEUDONYM_KEY" in dry.stdout
    assert "EDGE_ENROLLMENT_TOKEN" in dry.stdout and "apps configure dev --origin http://localhost:8080" in dry.stdout
    assert "rm -rf var" in dry.stdout
