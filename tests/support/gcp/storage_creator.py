"""gcp-storage-emulator answering uploads as Cloud Storage answers a caller that may create
objects but not replace them (`roles/storage.objectCreator`, the GCP hub's role under
`environments/`: modules.gcp.hub_state). The emulator itself checks no IAM and no
preconditions; this gate in front of its uploads does, as the real API documents:

- an upload with `ifGenerationMatch=0` of a name that exists: 412 conditionNotMet;
- an upload under a create-only prefix of a name that exists: 403 forbidden (replacing
  needs storage.objects.delete). With `precondition_first=False` the 403 comes first even
  with the precondition: which of the two Cloud Storage checks first is not documented.

Checked when an upload is asked (media, multipart, or a resumable upload's start), which
is when the emulator's single request thread creates small objects; everything else is
the emulator's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from http.server import HTTPServer

from gcp_storage_emulator import settings
from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects
from gcp_storage_emulator.server import POST, APIThread, Request, RequestHandler, Response
from gcp_storage_emulator.storage import Storage

_UPLOAD = re.compile(rf"{re.escape(settings.UPLOAD_API_ENDPOINT)}/b/(?P<bucket_name>[-.\w]+)/o")


@dataclass(frozen=True)
class CreateOnly:
    prefixes: tuple[str, ...]
    precondition_first: bool = True


def _error(response: Response, status: HTTPStatus, reason: str, message: str) -> None:
    response.status = status
    response.json({"error": {"code": status.value, "message": message,
                             "errors": [{"domain": "global", "reason": reason, "message": message}]}})


class _GatedHandler(RequestHandler):
    def __init__(self, gate: CreateOnly, *args, **kwargs) -> None:
        self.gate = gate  # before the base class's __init__, which handles the request
        super().__init__(*args, **kwargs)

    def do_POST(self) -> None:
        request = Request(self, POST)
        match = _UPLOAD.fullmatch(request.path)
        if match is None or "upload_id" in request.query or not request.query.get("uploadType"):
            super().do_POST()  # nothing read from the request yet: the emulator's own routing
            return
        request.set_match(match)
        response = Response(self)
        bucket, name = match["bucket_name"], self._name(request)
        refusal = self._refusal(request, bucket, name) if name else None
        if refusal is None:
            objects.insert(request, response, self.storage)
        else:
            _error(response, *refusal)
        response.close()

    @staticmethod
    def _name(request: Request) -> str | None:
        if "name" in request.query:
            return request.query["name"][0]
        data = request.data
        if request.query["uploadType"][0] == "multipart":
            return (data.get("meta") or {}).get("name")
        return data.get("name") if isinstance(data, dict) else None

    def _refusal(self, request: Request, bucket: str, name: str) -> tuple[HTTPStatus, str, str] | None:
        try:
            self.storage.get_file_obj(bucket, name)
        except NotFound:
            return None
        conditional = request.query.get("ifGenerationMatch") == ["0"]
        create_only = name.startswith(self.gate.prefixes)
        if conditional and (self.gate.precondition_first or not create_only):
            return HTTPStatus.PRECONDITION_FAILED, "conditionNotMet", \
                "At least one of the pre-conditions you specified did not hold."
        if create_only:
            return HTTPStatus.FORBIDDEN, "forbidden", \
                f"hub@example.iam.gserviceaccount.com does not have storage.objects.delete access to the Google " \
                f"Cloud Storage object. Permission 'storage.objects.delete' denied on resource {bucket}/{name}."
        return None


class _GatedApi(APIThread):
    def __init__(self, host: str, port: int, storage: Storage, gate: CreateOnly) -> None:
        super().__init__(host, port, storage)
        self._gate = gate

    def run(self) -> None:
        self._httpd = HTTPServer((self._host, self._port), partial(_GatedHandler, self._gate, self._storage))
        self.is_running.set()
        self._httpd.serve_forever()


class CreateOnlyServer:
    """The emulator's Server (start, stop, wipe) with the gate in front of its uploads."""

    def __init__(self, host: str, port: int, gate: CreateOnly) -> None:
        self._storage = Storage(use_memory_fs=True)
        self._api = _GatedApi(host, port, self._storage, gate)

    def start(self) -> None:
        self._api.start()
        self._api.is_running.wait()

    def stop(self) -> None:
        self._api.join(timeout=1)

    def wipe(self) -> None:
        self._storage.wipe()
