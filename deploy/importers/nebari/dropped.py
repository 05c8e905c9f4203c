"""Every key of the Nebari file the import did not use, one line each, with the reason.

Reasons for what Nebari has and graticule does not (Kubernetes, images, storage sizes,
theme, certificates, DNS, Argo, jhub-apps, overrides, extensions) are listed here by
pattern; a key that matches none is still reported, as having no equivalent.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from deploy.importers.nebari.source import Source
from render.errors import dotted

NO_KUBERNETES = (
    "no Kubernetes here: the platform runs VMs from templates, so there is no cluster to configure or upgrade"
)
OVERRIDES = "Helm/Terraform overrides of Nebari's own charts have no equivalent"

# (pattern over the dotted path, reason); the first match wins.
REASONS: list[tuple[str, str]] = [
    ("*kubernetes_version", NO_KUBERNETES),
    ("*availability_zones", "the platform spreads subnets over cloud.aws.zones zones; GCP instances follow the region"),
    ("azure.*", "an Azure setting: the platform runs on aws or gcp"),
    ("digital_ocean.*", "a DigitalOcean setting: the platform runs on aws or gcp"),
    ("*release_channel", NO_KUBERNETES),
    ("*node_group_image_type", NO_KUBERNETES),
    ("*.node_groups.*.single_subnet", "subnets are the platform's own (private subnets across cloud.aws.zones)"),
    ("*.node_groups.*.labels", "node labels select Kubernetes nodes; here each profile names its machine type"),
    ("*.node_groups.*", "node group not used by any profile or the hub"),
    ("*eks_*", NO_KUBERNETES),
    ("*kube_context", NO_KUBERNETES),
    ("*node_selectors*", NO_KUBERNETES),
    ("*private_cluster_config*", NO_KUBERNETES),
    ("*master_authorized_networks_config*", NO_KUBERNETES),
    ("*ip_allocation_policy*", NO_KUBERNETES),
    ("*networking_mode", NO_KUBERNETES),
    ("*.network", "the platform creates its own network (cloud.*.vpc_cidr)"),
    ("*.subnetwork", "the platform creates its own network (cloud.*.vpc_cidr)"),
    ("*existing_subnet_ids", "the platform creates its own VPC"),
    ("*existing_security_group_id", "the platform creates its own security groups"),
    ("*permissions_boundary", "IAM permission boundaries are not rendered (the roles are least-privilege)"),
    ("*.tags", "resource tags are the platform's own"),
    ("*storage_account_postfix", "Azure storage has no equivalent"),
    ("namespace", NO_KUBERNETES),
    ("prevent_deploy", "deploys happen from CI on merge; protect the branch instead"),
    ("profiles.jupyterlab*kubespawner_override*", "KubeSpawner settings of a pod have no equivalent on a VM"),
    ("profiles.dask_worker*extra_*", "Kubernetes pod and container settings have no equivalent on a VM"),
    ("default_images*", "container images do not exist here: environments are uv package specs"),
    ("storage*", "storage sizes: homes live on the hub's shared file system, sized by the cloud"),
    ("theme*", "the hub's theme is the platform's own"),
    ("certificate*", "TLS is terminated by the load balancer with a managed certificate for hub.domain"),
    ("dns*", "point hub.domain at the load balancer yourself (an output of `platform apply`)"),
    ("ingress*", "the load balancer replaces the Traefik ingress"),
    ("argo_workflows*", "Argo Workflows has no equivalent (run jobs as Dask clusters)"),
    ("jhub_apps*", "jhub-apps (app launcher) has no equivalent"),
    ("*overrides*", OVERRIDES),
    ("tf_extensions*", "Terraform extensions have no equivalent"),
    ("helm_extensions*", "Helm extensions have no equivalent"),
    ("extensions*", "Nebari extensions have no equivalent"),
    ("plugins*", "Nebari plugins have no equivalent"),
    ("monitoring*", "Prometheus/Grafana/Loki are not deployed; logs go to the cloud's log service (integrations.logs)"),
    ("telemetry*", "JupyterLab telemetry has no equivalent"),
    ("conda_store*", "conda-store is replaced by uv environments (`platform lock`)"),
    ("external_container_reg*", "no container registry is used"),
    ("terraform_state*", "state lives in cloud.*.state_bucket (`platform bootstrap` creates it)"),
    ("terraform_modules*", "QHub's Terraform modules have no equivalent"),
    ("ci_cd.*", "the generated GitHub workflows apply from main on merge"),
    ("security.keycloak*", "no Keycloak: users and groups live in platform.yaml"),
    ("security.shared_users_group", "groups share buckets through integrations.storage"),
    ("jupyterlab.idle_culler.*", "kernel and terminal culling: the whole server stops after hub.idle_timeout"),
    ("jupyterlab.*", "JupyterLab settings, gallery and initial repositories are not carried over"),
    ("jupyterhub*", "JupyterHub settings are the platform's own"),
    ("ceph*", "Rook/Ceph storage has no equivalent"),
    ("cdsdashboards*", "CDS Dashboards has no equivalent"),
    ("prefect*", "Prefect has no equivalent"),
    ("clearml*", "ClearML has no equivalent"),
    ("kbatch*", "kbatch has no equivalent"),
    ("dask_worker*", "the platform sizes Dask from profiles"),
    ("local*", NO_KUBERNETES),
    ("existing*", NO_KUBERNETES),
]
UNKNOWN = "no equivalent in graticule (not part of Nebari's core schema either: an extension's setting?)"


def reason_for(path: tuple) -> str:
    text = dotted(path)
    for pattern, reason in REASONS:
        if fnmatchcase(text, pattern):
            return reason
    return UNKNOWN


def unaccounted(src: Source) -> list[tuple[tuple, str]]:
    """(path, reason) for every part of the file the import did not take."""
    found: list[tuple[tuple, str]] = []
    _walk(src, src.data, (), found)
    return found


def _walk(src: Source, node: object, path: tuple, found: list) -> None:
    if path in src.taken:
        return
    if path in src.reasons:
        found.append((path, src.reasons[path]))
        return
    children = list(node.items()) if isinstance(node, dict) else list(enumerate(node)) if isinstance(node, list) else []
    if path and (not children or not _uses_any(src, path)):
        found.append((path, reason_for(path)))
        return
    for key, child in children:
        _walk(src, child, (*path, key), found)


def _uses_any(src: Source, path: tuple) -> bool:
    """Whether the import took or explained anything inside `path`."""
    size = len(path)
    return any(p[:size] == path for p in (*src.taken, *src.reasons))
