"""A fake AWS Price List (Pricing) API on 127.0.0.1 for the price-table refresh tests.

A fake because moto implements no Pricing API and nothing else real serves it offline.
It speaks the service's wire protocol (JSON 1.1: POST /, `X-Amz-Target:
AWSPriceListService.GetProducts`, SigV4 signed for `pricing`), checks every request against
botocore's own service model (required members, unknown members, types, enums, ranges),
applies TERM_MATCH filters to product attributes as the service does, pages with
NextToken, and answers priceList items as JSON strings in the documented product shape
(product.attributes, terms.OnDemand.<offer>.priceDimensions.<rate>.pricePerUnit.USD).
It runs in a thread of the test process; the fixture shuts it down.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import botocore.loaders

from tests.support.http_server import BurstHTTPServer

TARGET_PREFIX = "AWSPriceListService."
MODEL = botocore.loaders.Loader().load_service_model("pricing", "service-2")
LOCATIONS = {"us-east-1": "US East (N. Virginia)", "us-west-2": "US West (Oregon)", "eu-west-1": "EU (Ireland)"}


def product(region: str, instance_type: str, usd: str, **attributes: str) -> str:
    """One priceList item as the API sends it: a JSON document in a string."""
    sku = f"{zlib.crc32(repr((region, instance_type, usd, sorted(attributes.items()))).encode()):08X}SKU"
    offer, rate = f"{sku}.JRTCKXETXF", f"{sku}.JRTCKXETXF.6YS6EN2CT7"
    document = {
        "product": {
            "productFamily": "Compute Instance",
            "attributes": {
                "servicecode": "AmazonEC2",
                "location": LOCATIONS.get(region, region),
                "locationType": "AWS Region",
                "regionCode": region,
                "instanceType": instance_type,
                "operatingSystem": "Linux",
                "licenseModel": "No License required",
                "tenancy": "Shared",
                "preInstalledSw": "NA",
                "capacitystatus": "Used",
                "usagetype": f"BoxUsage:{instance_type}",
                "operation": "RunInstances",
                **attributes,
            },
            "sku": sku,
        },
        "serviceCode": "AmazonEC2",
        "terms": {
            "OnDemand": {
                offer: {
                    "priceDimensions": {
                        rate: {
                            "unit": "Hrs",
                            "endRange": "Inf",
                            "description": f"${usd} per On Demand Linux {instance_type} Instance Hour",
                            "appliesTo": [],
                            "rateCode": rate,
                            "beginRange": "0",
                            "pricePerUnit": {"USD": usd},
                        }
                    },
                    "sku": sku,
                    "effectiveDate": "2026-11-01T00:00:00Z",
                    "offerTermCode": "JRTCKXETXF",
                    "termAttributes": {},
                }
            },
            # reserved terms ride along in every real answer; a refresh of on-demand prices skips them
            "Reserved": {
                f"{sku}.38NPMPTW36": {
                    "priceDimensions": {
                        f"{sku}.38NPMPTW36.6YS6EN2CT7": {"unit": "Hrs", "pricePerUnit": {"USD": "0.0210000000"}},
                        f"{sku}.38NPMPTW36.2TG2D8R56U": {"unit": "Quantity", "pricePerUnit": {"USD": "190"}},
                    },
                    "sku": sku,
                    "offerTermCode": "38NPMPTW36",
                    "termAttributes": {"LeaseContractLength": "1yr", "PurchaseOption": "Partial Upfront"},
                }
            },
        },
        "version": "20261101000000",
        "publicationDate": "2026-11-01T00:00:00Z",
    }
    return json.dumps(document)


def validate(shape_name: str, value: object, path: str = "input") -> list[str]:
    """Problems of `value` against the botocore shape `shape_name` (empty when valid)."""
    shape = MODEL["shapes"][shape_name]
    kind = shape["type"]
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected an object"]
        problems = [f"{path}.{name}: required" for name in shape.get("required", []) if name not in value]
        for name, member in value.items():
            if name not in shape["members"]:
                problems.append(f"{path}.{name}: unknown member")
            else:
                problems += validate(shape["members"][name]["shape"], member, f"{path}.{name}")
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [
            problem
            for i, item in enumerate(value)
            for problem in validate(shape["member"]["shape"], item, f"{path}[{i}]")
        ]
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected a string"]
        if "enum" in shape and value not in shape["enum"]:
            return [f"{path}: {value!r} not one of {shape['enum']}"]
        if not shape.get("min", 0) <= len(value) <= shape.get("max", len(value)):
            return [f"{path}: length out of range"]
        return []
    if kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{path}: expected an integer"]
        if not shape.get("min", value) <= value <= shape.get("max", value):
            return [f"{path}: {value} out of range"]
        return []
    return [f"{path}: shape type {kind} not handled by the fake"]


@dataclass
class FakePricing:
    url: str
    products: list[str]
    page_size: int
    requests: list[dict] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def answer(self, request: dict) -> dict:
        wanted = {"servicecode": request["ServiceCode"]}
        wanted |= {term["Field"].lower(): term["Value"] for term in request.get("Filters", [])}
        matching = [item for item in self.products if _matches(item, wanted)]
        start = int(request.get("NextToken", "0"))
        size = min(request.get("MaxResults", 100), self.page_size)
        page = {"FormatVersion": "aws_v1", "PriceList": matching[start : start + size]}
        if start + size < len(matching):
            page["NextToken"] = str(start + size)
        return page


def _matches(item: str, wanted: dict[str, str]) -> bool:
    try:
        attributes = {name.lower(): value for name, value in json.loads(item)["product"]["attributes"].items()}
    except (ValueError, KeyError, TypeError):
        return True  # a deliberately broken item: hand it out so the client has to cope
    return all(attributes.get(name) == value for name, value in wanted.items())


def _handler(fake: FakePricing) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            problems = self._protocol_problems()
            request: object = None
            if not problems:
                try:
                    request = json.loads(body or b"{}")
                except ValueError:
                    problems = ["body is not JSON"]
            if not problems:
                problems = validate(MODEL["operations"]["GetProducts"]["input"]["shape"], request)
            if problems:
                fake.rejected.extend(problems)
                self._send(400, {"__type": "InvalidParameterException", "Message": "; ".join(problems)})
                return
            assert isinstance(request, dict)
            fake.requests.append(request)
            self._send(200, fake.answer(request))

        def _protocol_problems(self) -> list[str]:
            problems = []
            if self.path != "/":
                problems.append(f"path {self.path!r} is not /")
            if self.headers.get("X-Amz-Target") != TARGET_PREFIX + "GetProducts":
                problems.append(f"X-Amz-Target {self.headers.get('X-Amz-Target')!r}: this fake answers GetProducts")
            if self.headers.get("Content-Type") != "application/x-amz-json-1.1":
                problems.append(f"Content-Type {self.headers.get('Content-Type')!r}")
            if "/pricing/aws4_request" not in self.headers.get("Authorization", ""):
                problems.append("not SigV4-signed for the pricing service")
            return problems

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:  # quiet
            pass

    return Handler


@contextmanager
def running_fake_pricing(products: list[str], page_size: int = 25) -> Iterator[FakePricing]:
    """The fake on a free loopback port, shut down on exit even when the test fails."""
    fake = FakePricing("", products, page_size)
    server = BurstHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)
