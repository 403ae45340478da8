"""The Kubernetes and KServe manifests render, pass Kubernetes 1.32's schemas, and give the service what it needs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from app import protocols, routes
from app.config import Settings

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
GPU_OVERLAY = KUBERNETES / "overlays" / "gpu"
INFERENCE_SERVICE = ROOT / "deploy" / "kserve" / "inferenceservice.yaml"
KUBERNETES_VERSION = "1.32.0"

# What the image fixes (Dockerfile): the user, the port and where the model cache lives.
IMAGE_USER = 10001
IMAGE_PORT = 8000
CACHE_DIR = "/srv/digitserve/cache"

# Measured with `python -m app` on the shipped model, one worker (deploy/kubernetes/README.md).
SLOWEST_START_S = 13.6  # from process start to a ready /readyz, with an empty cache
LOADED_RSS_MIB = 795  # the most seen under load on ordinary uploads
LARGEST_UPLOAD_MIB = 186  # what each 25-megapixel upload in preprocessing adds
LARGEST_UPLOADS_AT_ONCE = 6  # how many of those the memory limit is to leave room for

# InferenceService fields of a KServe component that are not part of the pod spec beside them.
KSERVE_COMPONENT_FIELDS = {
    "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "containerConcurrency", "timeout",
    "canaryTrafficPercent", "logger", "batcher", "labels", "annotations", "deploymentStrategy",
}  # fmt: skip


def kubectl() -> str:
    """The kubectl that renders kustomize directories; CI machines have it, elsewhere the tests skip."""
    found = shutil.which("kubectl")
    if found is None:
        reason = "kubectl (1.32, with kustomize 5.5) is needed to render deploy/kubernetes"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}, and CI machines have it")
        pytest.skip(reason)
    return found


def render(directory: Path) -> list[dict]:
    """`kubectl kustomize DIRECTORY` as a list of resources."""
    result = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


@pytest.fixture(scope="module")
def base() -> list[dict]:
    """The rendered base, as `kubectl apply -k deploy/kubernetes` sends it."""
    return render(KUBERNETES)


@pytest.fixture(scope="module")
def gpu() -> list[dict]:
    """The rendered GPU overlay."""
    return render(GPU_OVERLAY)


@pytest.fixture(scope="module")
def inference_service() -> dict:
    """The InferenceService, as `kubectl apply -f deploy/kserve/inferenceservice.yaml` sends it."""
    (document,) = yaml.safe_load_all(INFERENCE_SERVICE.read_text())
    return document


def only(resources: list[dict], kind: str) -> dict:
    """The one resource of `kind`."""
    found = [resource for resource in resources if resource["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container(pod_spec: dict, name: str) -> dict:
    """The pod spec's container called `name`."""
    (found,) = [each for each in pod_spec["containers"] if each["name"] == name]
    return found


def server(resources: list[dict]) -> dict:
    """The serving container of the rendered Deployment."""
    return container(only(resources, "Deployment")["spec"]["template"]["spec"], "digitserve")


def effective_security(pod_spec: dict, each: dict) -> dict:
    """A container's security context with the pod's defaults under it, as the kubelet applies them."""
    return {**pod_spec.get("securityContext", {}), **each.get("securityContext", {})}


def port_number(each: dict, port: int | str) -> int:
    """A port of the container by number or by name."""
    if isinstance(port, int):
        return port
    (number,) = [declared["containerPort"] for declared in each["ports"] if declared.get("name") == port]
    return number


def quantity(value: str | int) -> float:
    """A Kubernetes quantity ("1536Mi", "500m", "2") as a number of bytes or cores."""
    units = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    assert match and match[2] in units, f"not a quantity: {value!r}"
    return float(match[1]) * units[match[2]]


def image_name(image: str) -> str:
    """The image without its tag."""
    return image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image


def kserve_pod(inference_service: dict) -> dict:
    """The predictor's pod spec and rollout strategy as a Deployment, for the core schemas to check."""
    predictor = inference_service["spec"]["predictor"]
    labels = predictor["labels"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": inference_service["metadata"]["name"]},
        "spec": {
            "selector": {"matchLabels": labels},
            "strategy": predictor["deploymentStrategy"],
            "template": {
                "metadata": {"labels": labels, "annotations": predictor["annotations"]},
                "spec": {key: value for key, value in predictor.items() if key not in KSERVE_COMPONENT_FIELDS},
            },
        },
    }


@pytest.mark.parametrize("variant", ["base", "gpu"])
def test_renders_every_resource(request, variant):
    kinds = sorted(resource["kind"] for resource in request.getfixturevalue(variant))
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]


@pytest.mark.parametrize("variant", ["base", "gpu"])
def test_rendered_manifests_pass_the_strict_schemas(request, tmp_path, variant):
    resources = request.getfixturevalue(variant)
    rendered = tmp_path / f"{variant}.yaml"
    rendered.write_text(yaml.safe_dump_all(resources))
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", KUBERNETES_VERSION, str(rendered)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Every resource was checked against a schema: none was waved through as unknown.
    assert result.stdout.count(" passed for resource ") == len(resources), result.stdout


def test_inference_service_is_validated_as_far_as_the_schemas_go(inference_service):
    # kubernetes-validate has no schema for KServe's CRD: it warns and passes the file...
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", KUBERNETES_VERSION, str(INFERENCE_SERVICE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Couldn't find schema for kind InferenceService" in result.stdout
    # ...so the predictor's pod spec, which is Kubernetes' own, is checked strictly on its own.
    kubernetes_validate.validate(kserve_pod(inference_service), KUBERNETES_VERSION, strict=True)
    assert inference_service["apiVersion"] == "serving.kserve.io/v1beta1"
    assert inference_service["kind"] == "InferenceService"


def test_deployment_runs_at_least_two_replicas_of_the_image(base):
    deployment = only(base, "Deployment")
    assert deployment["spec"]["replicas"] >= 2
    assert image_name(server(base)["image"]) == "digitserve"
    assert port_number(server(base), "http") == IMAGE_PORT


@pytest.mark.parametrize(
    "probe, path",
    [("startupProbe", "/readyz"), ("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")],
)
def test_probes_ask_the_service_routes(base, probe, path):
    check = server(base)[probe]["httpGet"]
    assert check["path"] == path
    assert port_number(server(base), check["port"]) == IMAGE_PORT
    assert path in {route.path for route in routes.router.routes}


def test_startup_probe_waits_well_past_a_cold_start(base):
    probe = server(base)["startupProbe"]
    budget = probe.get("initialDelaySeconds", 0) + probe["periodSeconds"] * probe["failureThreshold"]
    assert budget >= 10 * SLOWEST_START_S


@pytest.mark.parametrize(
    "bound, resource, at_least",
    [
        ("requests", "memory", LOADED_RSS_MIB * 2**20),
        ("limits", "memory", (LOADED_RSS_MIB + LARGEST_UPLOADS_AT_ONCE * LARGEST_UPLOAD_MIB) * 2**20),
        # One server process uses up to about a core under load (the interpreter lock).
        ("limits", "cpu", 1),
    ],
)
def test_resources_cover_what_was_measured(base, bound, resource, at_least):
    resources = server(base)["resources"]
    assert quantity(resources[bound][resource]) >= at_least
    assert quantity(resources["requests"][resource]) <= quantity(resources["limits"][resource])


SECURITY = [
    ("runAsNonRoot", True),
    ("runAsUser", IMAGE_USER),
    ("readOnlyRootFilesystem", True),
    ("allowPrivilegeEscalation", False),
    ("capabilities", {"drop": ["ALL"]}),
    ("seccompProfile", {"type": "RuntimeDefault"}),
]


@pytest.mark.parametrize("field, expected", SECURITY, ids=[field for field, _ in SECURITY])
def test_every_container_is_locked_down(base, field, expected):
    pod_spec = only(base, "Deployment")["spec"]["template"]["spec"]
    for each in pod_spec.get("initContainers", []) + pod_spec["containers"]:
        assert effective_security(pod_spec, each).get(field) == expected, each["name"]


@pytest.mark.parametrize("mount_path", ["/tmp", CACHE_DIR])
def test_writable_paths_are_empty_dirs(base, mount_path):
    pod_spec = only(base, "Deployment")["spec"]["template"]["spec"]
    (mount,) = [mount for mount in server(base)["volumeMounts"] if mount["mountPath"] == mount_path]
    (volume,) = [volume for volume in pod_spec["volumes"] if volume["name"] == mount["name"]]
    assert "emptyDir" in volume
    assert not mount.get("readOnly", False)


def test_cache_is_seeded_with_the_image_own_copy(base, tmp_path):
    pod_spec = only(base, "Deployment")["spec"]["template"]["spec"]
    (seed,) = pod_spec["initContainers"]
    assert seed["image"] == server(base)["image"]
    (cache_mount,) = [mount for mount in server(base)["volumeMounts"] if mount["mountPath"] == CACHE_DIR]
    (seed_mount,) = [mount for mount in seed["volumeMounts"] if mount["name"] == cache_mount["name"]]
    # The seeding command itself, run on a stand-in for the image's cache and the empty volume.
    baked, volume = tmp_path / "baked", tmp_path / "volume"
    baked.mkdir()
    volume.mkdir()
    (baked / "model.tflite").write_bytes(b"flatbuffer")
    (baked / "model.json").write_text("{}")
    program, flag, source = seed["command"]
    assert (program, flag) == ("python", "-c") and CACHE_DIR in source and f"'{seed_mount['mountPath']}'" in source
    source = source.replace(CACHE_DIR, str(baked)).replace(f"'{seed_mount['mountPath']}'", f"'{volume}'")
    subprocess.run([sys.executable, "-c", source], check=True)
    assert sorted(path.name for path in volume.iterdir()) == ["model.json", "model.tflite"]
    assert (volume / "model.tflite").read_bytes() == b"flatbuffer"
    # An image without a cached copy (the GPU image, on the keras backend) seeds nothing and succeeds.
    subprocess.run([sys.executable, "-c", source.replace(str(baked), str(tmp_path / "absent"))], check=True)


def test_settings_come_from_the_config_map(base):
    config_map = only(base, "ConfigMap")
    assert server(base)["envFrom"] == [{"configMapRef": {"name": config_map["metadata"]["name"]}}]
    assert config_map["data"]["DIGITSERVE_CACHE_DIR"] == CACHE_DIR


@pytest.mark.parametrize("variant", ["base", "gpu"])
def test_config_map_holds_real_settings_with_valid_values(request, monkeypatch, variant):
    data = only(request.getfixturevalue(variant), "ConfigMap")["data"]
    unknown = [key for key in data if not key.startswith("DIGITSERVE_") or key.removeprefix("DIGITSERVE_").lower() not in Settings.model_fields]
    assert not unknown, f"not settings of app/config.py: {unknown}"
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.port == IMAGE_PORT and str(settings.cache_dir) == CACHE_DIR
    # One process a pod: the default would count the node's cores, not the pod's.
    assert settings.workers == 1


def test_service_links_cannot_shadow_the_port_setting(base):
    # A Service named digitserve makes Kubernetes set DIGITSERVE_PORT=tcp://IP:PORT in every pod.
    assert only(base, "Deployment")["spec"]["template"]["spec"]["enableServiceLinks"] is False


def test_service_sends_traffic_to_the_pods_on_the_service_port(base):
    service = only(base, "Service")
    labels = only(base, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert port_number(server(base), port["targetPort"]) == IMAGE_PORT


def test_autoscaler_scales_the_deployment_on_cpu(base):
    autoscaler, deployment = only(base, "HorizontalPodAutoscaler"), only(base, "Deployment")
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", deployment["metadata"]["name"])
    assert autoscaler["apiVersion"] == "autoscaling/v2"
    assert 2 <= autoscaler["spec"]["minReplicas"] <= autoscaler["spec"]["maxReplicas"]
    (metric,) = autoscaler["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"


def test_disruption_budget_covers_the_pods(base):
    budget = only(base, "PodDisruptionBudget")
    labels = only(base, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert budget["apiVersion"] == "policy/v1"
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # With two replicas, a budget of one unavailable pod still lets a node drain.
    assert budget["spec"].get("maxUnavailable") == 1 or budget["spec"].get("minAvailable") == 1


def test_gpu_overlay_asks_for_a_gpu_and_runs_the_gpu_image(gpu):
    serving = server(gpu)
    assert serving["image"] == "digitserve:gpu"
    assert str(serving["resources"]["limits"]["nvidia.com/gpu"]) == "1"
    assert only(gpu, "ConfigMap")["data"]["DIGITSERVE_BACKEND"] == "keras"
    # Only the image and the GPU change: the probes and the locked-down container stay the base's.
    assert serving["securityContext"]["readOnlyRootFilesystem"] is True
    assert serving["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_base_stays_on_the_cpu(base):
    assert "nvidia.com/gpu" not in server(base)["resources"]["limits"]
    assert only(base, "ConfigMap")["data"]["DIGITSERVE_BACKEND"] == "litert"


def kserve_container(inference_service: dict) -> dict:
    """The predictor's serving container."""
    return container(inference_service["spec"]["predictor"], "kserve-container")


def test_inference_service_speaks_v2_on_the_service_port(inference_service):
    serving = kserve_container(inference_service)
    env = {variable["name"]: variable["value"] for variable in serving["env"]}
    assert env["PROTOCOL"] == "v2"
    assert [port["containerPort"] for port in serving["ports"]] == [IMAGE_PORT]
    assert image_name(serving["image"]) == "digitserve"
    assert inference_service["spec"]["predictor"]["minReplicas"] >= 2


@pytest.mark.parametrize(
    "probe, path",
    [("startupProbe", "/v2/health/ready"), ("readinessProbe", "/v2/health/ready"), ("livenessProbe", "/v2/health/live")],
)
def test_inference_service_probes_ask_the_protocol_routes(inference_service, probe, path):
    check = kserve_container(inference_service)[probe]["httpGet"]
    assert (check["path"], check["port"]) == (path, IMAGE_PORT)
    assert path in {route.path for route in protocols.router.routes}


def test_inference_service_matches_the_deployment(base, inference_service):
    predictor, serving = inference_service["spec"]["predictor"], kserve_container(inference_service)
    pod_spec = only(base, "Deployment")["spec"]["template"]["spec"]
    assert effective_security(predictor, serving) == effective_security(pod_spec, server(base))
    assert serving["resources"] == server(base)["resources"]
    env = {variable["name"]: variable["value"] for variable in serving["env"] if variable["name"] != "PROTOCOL"}
    assert env == only(base, "ConfigMap")["data"]
    assert predictor["enableServiceLinks"] is False
    for mount_path in ("/tmp", CACHE_DIR):
        (mount,) = [mount for mount in serving["volumeMounts"] if mount["mountPath"] == mount_path]
        (volume,) = [volume for volume in predictor["volumes"] if volume["name"] == mount["name"]]
        assert "emptyDir" in volume
