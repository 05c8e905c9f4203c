"""Helpers for tests that drive the simulator: launching, and probing from inside an instance."""

from __future__ import annotations

import time

from .sandbox import Sandbox

# Connect from inside an instance; prints open, refused, timeout or unreachable.
_PROBE = """
import errno, socket, sys
s = socket.socket()
s.settimeout(float(sys.argv[3]))
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("open")
except socket.timeout:
    print("timeout")
except ConnectionRefusedError:
    print("refused")
except OSError as e:
    print("unreachable" if e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH) else f"error {e.errno}")
"""


def first_image(ec2) -> str:
    return ec2.describe_images()["Images"][0]["ImageId"]


def launch(ec2, subnet_id: str, user_data: str = "", group_ids: list[str] | None = None,
           image_id: str | None = None, **extra) -> str:
    """One instance (of moto's first image unless given) in `subnet_id`; returns its id."""
    image = image_id or first_image(ec2)
    kwargs = {"SecurityGroupIds": group_ids} if group_ids else {}
    params = {"InstanceType": "t3.micro", **kwargs, **extra}
    reply = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet_id, UserData=user_data,
                              **params)
    return reply["Instances"][0]["InstanceId"]


def connect(box: Sandbox, host: str, port: int, timeout: float = 3.0) -> str:
    """How a TCP connection from inside `box` to host:port ends."""
    result = box.exec(["python3", "-c", _PROBE, host, str(port), str(timeout)], timeout=timeout + 30)
    if result.returncode != 0:
        raise RuntimeError(f"probe failed in {box.instance_id}: {result.stderr}")
    return result.stdout.strip()


def wait_listening(box: Sandbox, port: int, timeout: float = 60.0) -> None:
    """Until something inside `box` accepts connections on its own port (user data has started it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if connect(box, "127.0.0.1", port, timeout=2) == "open":
            return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port} in {box.instance_id}: {box.console_log.read_text()}")
