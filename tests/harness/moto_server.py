"""The AWS emulator the tests run: the pinned moto server, with what it lacks and the operator
relies on filled in the way AWS behaves, at the emulator's pace (everything completes at once):
- Auto Scaling instance refreshes (moto answers HTTP 500): started, complete, listed;
- ElastiCache replication groups that finish deleting (moto keeps them `deleting` for good),
  and cache subnet groups that can be deleted (moto lacks the operation);
- CloudWatch in the protocol the AWS SDK for Rust speaks (Smithy RPC v2 CBOR; moto serves
  only JSON 1.0 and query): requests are translated to JSON 1.0 and the answers back to CBOR,
  typed by botocore's model of the service;
- S3's GetBucketVersioning answered under the root element AWS uses (`VersioningConfiguration`;
  moto writes `GetBucketVersioningResponse`, which the AWS SDK for Rust refuses to parse).
Run as `moto_server.py -H HOST -p PORT`."""

import base64
import datetime
import io
import json
import re
import sys
import uuid

import cbor2
import moto.server
from botocore.session import get_session

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult, EmptyResult
from moto.elasticache.exceptions import CacheSubnetGroupNotFound, ElastiCacheException
from moto.elasticache.models import ElastiCacheBackend
from moto.elasticache.responses import ElastiCacheResponse
from moto.s3.responses import S3Response
from moto.server import main


def _refreshes(backend):
    return backend.__dict__.setdefault("webstack_instance_refreshes", {})


def start_instance_refresh(self):
    name = self._get_param("AutoScalingGroupName")
    if not self.autoscaling_backend.describe_auto_scaling_groups([name]):
        raise ValidationError(f"AutoScalingGroup name not found - {name}")
    now = datetime.datetime.now(datetime.timezone.utc)
    refresh = {
        "InstanceRefreshId": str(uuid.uuid4()),
        "AutoScalingGroupName": name,
        "Status": "Successful",
        "StartTime": now,
        "EndTime": now,
        "PercentageComplete": 100,
        "InstancesToUpdate": 0,
        "Strategy": self._get_param("Strategy") or "Rolling",
        "Preferences": self._get_param("Preferences", {}),
    }
    _refreshes(self.autoscaling_backend).setdefault(name, []).insert(0, refresh)
    return ActionResult({"InstanceRefreshId": refresh["InstanceRefreshId"]})


def describe_instance_refreshes(self):
    name = self._get_param("AutoScalingGroupName")
    ids = self._get_param("InstanceRefreshIds", [])
    found = [
        r
        for r in _refreshes(self.autoscaling_backend).get(name, [])
        if not ids or r["InstanceRefreshId"] in ids
    ]
    return ActionResult({"InstanceRefreshes": found})


_delete_replication_group = ElastiCacheBackend.delete_replication_group


def delete_replication_group(self, replication_group_id, retain_primary_cluster):
    # Answered as AWS does (`deleting`), then gone, as the group would be minutes later.
    group = _delete_replication_group(self, replication_group_id, retain_primary_cluster)
    self.replication_groups.pop(replication_group_id, None)
    self.tagging_service.delete_all_tags_for_resource(group.arn)
    return group


class CacheSubnetGroupInUse(ElastiCacheException):
    code = "CacheSubnetGroupInUse"


def delete_cache_subnet_group(self):
    name = self._get_param("CacheSubnetGroupName")
    backend = self.elasticache_backend
    group = backend.cache_subnet_groups.get(name)
    if group is None:
        raise CacheSubnetGroupNotFound(name)
    users = list(backend.replication_groups.values()) + list(backend.cache_clusters.values())
    if any(getattr(u, "cache_subnet_group_name", None) == name for u in users):
        raise CacheSubnetGroupInUse(f"Cache subnet group {name} is currently in use.")
    backend.cache_subnet_groups.pop(name)
    backend.tagging_service.delete_all_tags_for_resource(group.arn)
    return EmptyResult()


_get_bucket_versioning = S3Response.get_bucket_versioning


def get_bucket_versioning(self):
    status, headers, body = _get_bucket_versioning(self)
    if isinstance(body, bytes):
        body = body.decode()
    return status, headers, body.replace("GetBucketVersioningResponse", "VersioningConfiguration")


S3Response.get_bucket_versioning = get_bucket_versioning
ElastiCacheBackend.delete_replication_group = delete_replication_group
ElastiCacheResponse.delete_cache_subnet_group = delete_cache_subnet_group
AutoScalingResponse.start_instance_refresh = start_instance_refresh
AutoScalingResponse.describe_instance_refreshes = describe_instance_refreshes

CBOR_PATH = "/service/GraniteServiceVersion20100801/operation/"
_MODELS = {}


def _cloudwatch_model():
    if "cloudwatch" not in _MODELS:
        _MODELS["cloudwatch"] = get_session().get_service_model("cloudwatch")
    return _MODELS["cloudwatch"]


def _to_json(value):
    """A decoded CBOR request as JSON 1.0 parameters."""
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    return value


def _to_cbor(value, shape):
    """A JSON 1.0 answer as the CBOR the model types it as."""
    if value is None or shape is None:
        return value
    kind = shape.type_name
    if kind == "structure":
        return {
            k: _to_cbor(v, shape.members[k])
            for k, v in value.items()
            if k in shape.members and v is not None
        }
    if kind == "list":
        return [_to_cbor(v, shape.member) for v in value]
    if kind == "map":
        return {k: _to_cbor(v, shape.value) for k, v in value.items()}
    if kind == "timestamp":
        if isinstance(value, str):
            value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        return cbor2.CBORTag(1, float(value))
    if kind in ("double", "float"):
        return float(value)
    if kind in ("integer", "long"):
        return int(value)
    if kind == "blob":
        return base64.b64decode(value) if isinstance(value, str) else value
    if kind == "boolean":
        return bool(value)
    return value


def _error(answer):
    """The code and message of an error answer, in JSON or XML."""
    try:
        body = json.loads(answer)
        code = body.get("__type") or body.get("code") or "InternalFailure"
        message = body.get("message") or body.get("Message") or ""
    except ValueError:
        text = answer.decode(errors="replace")
        found = re.search(r"<Code>(.*?)</Code>", text)
        code = found.group(1) if found else "InternalFailure"
        found = re.search(r"<Message>(.*?)</Message>", text, re.S)
        message = found.group(1) if found else text
    return {"__type": code.split("#")[-1], "message": message}


class CborBridge:
    """WSGI middleware: CloudWatch's CBOR requests through moto's JSON 1.0 handlers."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(CBOR_PATH):
            return self.app(environ, start_response)
        operation = path[len(CBOR_PATH):]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        body = json.dumps(_to_json(cbor2.loads(raw)) if raw else {}).encode()
        inner = dict(environ)
        inner.pop("HTTP_SMITHY_PROTOCOL", None)
        inner.update(
            {
                "PATH_INFO": "/",
                "REQUEST_METHOD": "POST",
                "CONTENT_TYPE": "application/x-amz-json-1.0",
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_X_AMZ_TARGET": f"GraniteServiceVersion20100801.{operation}",
                "wsgi.input": io.BytesIO(body),
            }
        )
        captured = {}
        chunks = []

        def capture(status, headers, exc_info=None):
            captured["status"] = status
            captured["headers"] = headers
            return chunks.append

        result = self.app(inner, capture)
        try:
            chunks.extend(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        answer = b"".join(chunks)
        status = captured["status"]
        if int(status.split()[0]) >= 300:
            payload = _error(answer)
        else:
            shape = _cloudwatch_model().operation_model(operation).output_shape
            payload = _to_cbor(json.loads(answer) if answer.strip() else {}, shape) or {}
        out = cbor2.dumps(payload)
        headers = [
            ("Content-Type", "application/cbor"),
            ("smithy-protocol", "rpc-v2-cbor"),
            ("Content-Length", str(len(out))),
        ]
        headers += [(k, v) for k, v in captured["headers"] if k.lower() == "x-amzn-requestid"]
        start_response(status, headers)
        return [out]


_run_simple = moto.server.run_simple


def run_simple(host, port, app, **options):
    _run_simple(host, port, CborBridge(app), **options)


moto.server.run_simple = run_simple

if __name__ == "__main__":
    sys.argv[0] = "moto_server"
    sys.exit(main())
