"""The deployment files cannot be run here (no container engine); check what can be checked:
they parse, use the commands, flags, settings and ports the services really have, and the
dashboard only charts metrics the services export."""

import json
import re
import shlex
from pathlib import Path

import msgspec
import pytest
import yaml

from control_plane.cli import _parser as cp_parser
from control_plane.config import CpSettings
from edge_node.cli import _parser as edge_parser
from edge_node.config import EdgeSettings
from edge_node.metrics import EdgeMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
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
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
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
        host, port = env["EDGE_CONTROL_PLANE"].split(":")
        assert host == "control-plane" and port == dockerfile("control-plane.Dockerfile")["env"]["CP_PORT"]
    targets = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
    edge_admin = dockerfile("edge.Dockerfile")["env"]["EDGE_ADMIN_PORT"]
    edge_targets = next(c for c in targets if c["job_name"] == "sentiedge-edge")["static_configs"][0]["targets"]
    assert sorted(edge_targets) == sorted(f"{n}:{edge_admin}" for n in edges)


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
    for topic in ("model version", "sync state", "staleness", "completion time", "latency", "batch size", "drift"):
        assert topic in titles, topic
