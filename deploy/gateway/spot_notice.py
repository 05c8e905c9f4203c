"""Runs inside the Dask worker process on a spot machine: a `dask worker --preload`, given as
source text by the gateway (`deploy.gateway.vm`); standard library only, as the worker's
environment holds nothing of graticule.

EC2 warns a spot instance two minutes before it reclaims it: the instance metadata item
`/latest/meta-data/spot/instance-action` answers 404 until then, and then
`{"action": "terminate" | "stop" | "hibernate", "time": "2026-12-04T21:30:00Z"}`; AWS
recommends asking every 5 seconds. On a notice the worker retires itself
(`Worker.close_gracefully`: the scheduler first moves the keys it holds to the other
workers, then the worker closes), so no result is lost; the gateway then sees the worker
gone and starts a replacement (`deploy.gateway.vm`, on demand when spot is refused).

Why the worker process and not the machine's launcher (`vm_worker_launcher.py`): only the
worker itself (or a Dask client) can ask the scheduler to retire it, and the launcher has
become `dask worker` by then; a signal would make `dask worker` close at once, and its
data would be lost with it.
"""

import json
import logging
import os
import threading
import urllib.error
import urllib.request

NOTICE = "/latest/meta-data/spot/instance-action"
EVERY_SECONDS = 5.0
TOKEN_TTL_SECONDS = 21600
logger = logging.getLogger("graticule.spot")
_watchers: dict = {}  # id(worker) -> its NoticeWatcher


class NoticeWatcher:
    """Asks the instance metadata service (IMDSv2) for the spot interruption notice."""

    def __init__(self, imds: str, every: float = EVERY_SECONDS) -> None:
        self.imds = imds.rstrip("/")
        self.every = every
        self.stopped = threading.Event()
        self._token = ""
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy

    def _new_token(self) -> str:
        request = urllib.request.Request(self.imds + "/latest/api/token", method="PUT",
                                         headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)})
        with self._opener.open(request, timeout=2) as answer:
            return answer.read().decode()

    def notice(self) -> dict | None:
        """The notice, or None while there is none (or the metadata service cannot be asked)."""
        for _ in range(2):  # a second time with a new token when the old one expired
            try:
                self._token = self._token or self._new_token()
                request = urllib.request.Request(self.imds + NOTICE,
                                                 headers={"X-aws-ec2-metadata-token": self._token})
                with self._opener.open(request, timeout=2) as answer:
                    found = json.loads(answer.read())
                return found if isinstance(found, dict) and found.get("action") else None
            except urllib.error.HTTPError as error:
                if error.code != 401:
                    return None  # 404: no notice
                self._token = ""
            except (OSError, ValueError):
                return None
        return None


def watch(watcher: NoticeWatcher, worker) -> None:
    """Until a notice comes (then retire the worker) or the worker closes."""
    while not watcher.stopped.is_set():
        found = watcher.notice()
        if found is not None:
            reason = f"spot interruption notice: {found.get('action')} at {found.get('time')}"
            logger.warning("%s; retiring this worker, its data moves to the others", reason)
            worker.loop.add_callback(_retire, worker, reason)  # the worker's own event loop
            return
        watcher.stopped.wait(watcher.every)


async def _retire(worker, reason: str) -> None:
    try:
        await worker.close_gracefully(reason=reason)
    except Exception:  # the scheduler gone too: nothing left to save
        logger.exception("retiring the worker after a spot interruption notice failed")


def dask_setup(worker) -> None:
    # The contract's GRATICULE_IMDS_URL (deploy/runtime/env.py): set by tests only.
    watcher = NoticeWatcher(os.environ.get("GRATICULE_IMDS_URL", "http://169.254.169.254"))
    _watchers[id(worker)] = watcher
    threading.Thread(target=watch, args=(watcher, worker), daemon=True, name="graticule-spot-notice").start()


def dask_teardown(worker) -> None:
    watcher = _watchers.pop(id(worker), None)
    if watcher is not None:
        watcher.stopped.set()
