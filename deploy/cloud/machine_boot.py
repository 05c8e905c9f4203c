"""User data of a launched machine on AWS (Dask scheduler or worker, notebook server): a
POSIX sh script with no secret in it, built by `deploy.cloud.machine_boot_script` from the
steps every cloud shares and AWS's own:

Like the hub's (`modules/aws/user_data.py`): the instance role's credentials from IMDSv2,
curl's SigV4 signing, nothing but the VPC endpoints needed (`egress: none`). It reads the
machine's secret from Secrets Manager, retrying while access is denied (the gateway
`allow`s the machine just after launching it), and the artifacts bucket's objects from S3.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from deploy.cloud.machine_boot_script import (  # noqa: F401  (PYTHON and the layout: known by this name)
    CACHE_DIR,
    ENVS_DIR,
    PLATFORM_VENV,
    PYTHON,
    WORKDIR,
    CloudSteps,
    boot_script,
)
from deploy.runtime import env as contract


@dataclass(frozen=True)
class MachineBoot:
    platform: str
    region: str
    bucket: str  # the artifacts bucket
    secret: str  # the secret's name: its JSON is {"env": {...}, "files": {path: content}}
    command: list[str]  # run last (exec), with env applied
    environment: str | None = None  # the environment's wheel-cache key (build_key); None: none
    env: Mapping[str, str] = field(default_factory=dict)  # non-secret environment
    platform_software: bool = False  # also install the hub's wheelhouse (graticule[platform,aws])


_SETTINGS = """REGION=__REGION__
BUCKET=__BUCKET__
SECRET=__SECRET__
"""

_SERVICES = """IMDS=${__IMDS_URL__:-http://169.254.169.254}
export AWS_DEFAULT_REGION="$REGION" AWS_REGION="$REGION"
"""

_ACCESS = r"""if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
    object_url() { echo "${AWS_ENDPOINT_URL%/}/$BUCKET/$1"; }
    secrets_url="${AWS_ENDPOINT_URL%/}/"
else
    object_url() { echo "https://$BUCKET.s3.$REGION.amazonaws.com/$1"; }
    secrets_url="https://secretsmanager.$REGION.amazonaws.com/"
fi
credentials() {
    token=$(curl -fsS -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 3600" "$IMDS/latest/api/token") || return 1
    imds="$IMDS/latest/meta-data/iam/security-credentials"
    role=$(curl -fsS -H "X-aws-ec2-metadata-token: $token" "$imds/") || return 1
    role=$(echo "$role" | head -n 1)
    curl -fsS -H "X-aws-ec2-metadata-token: $token" "$imds/$role" > "$RUN/credentials.json" || return 1
    KEY_ID=$(field "$RUN/credentials.json" AccessKeyId)
    SECRET_KEY=$(field "$RUN/credentials.json" SecretAccessKey)
    SESSION=$(field "$RUN/credentials.json" Token)
    rm -f "$RUN/credentials.json"
}
signed() {  # SERVICE [CURL OPTIONS]
    service=$1
    shift
    curl -fsS --aws-sigv4 "aws:amz:$REGION:$service" --user "$KEY_ID:$SECRET_KEY" \
        -H "x-amz-security-token: $SESSION" "$@"
}
fetch() {  # [CURL OPTIONS]: from the artifacts bucket, each transfer signed on its own
    signed s3 -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}
read_secret() {
    signed secretsmanager -X POST -H "X-Amz-Target: secretsmanager.GetSecretValue" \
        -H "Content-Type: application/x-amz-json-1.1" --data "{\"SecretId\": \"$SECRET\"}" \
        -o "$RUN/secret.json" "$secrets_url"
}
until credentials 2>/dev/null; do echo "graticule: waiting for the instance role"; sleep 1; done
phase secret
# Denied until the platform allows this instance, just after launching it.
tries=0
until read_secret 2>/dev/null; do
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || { echo "graticule: secret $SECRET unreadable after $tries tries" >&2; exit 1; }
    sleep 1
    credentials 2>/dev/null || true
done
"""


def machine_user_data(boot: MachineBoot) -> str:
    """The script: the same bytes for the same MachineBoot."""
    steps = CloudSteps(
        cloud="", settings=_SETTINGS, services=_SERVICES, access=_ACCESS,
        secret_document='json.loads(json.load(open(answer))["SecretString"])',
        values={"__REGION__": shlex.quote(boot.region), "__BUCKET__": shlex.quote(boot.bucket),
                "__SECRET__": shlex.quote(boot.secret), "__IMDS_URL__": contract.IMDS_URL},
    )
    return boot_script(steps, boot.command, environment=boot.environment, env=boot.env,
                       platform_software=boot.platform_software)
