"""The AWS emulator the tests run: the pinned moto server, with what it lacks and the operator
relies on filled in the way AWS behaves, at the emulator's pace (everything completes at once):
- Auto Scaling instance refreshes (moto answers HTTP 500): started, complete, listed;
- ElastiCache replication groups that finish deleting (moto keeps them `deleting` for good),
  and cache subnet groups that can be deleted (moto lacks the operation).
Run as `moto_server.py -H HOST -p PORT`."""

import datetime
import sys
import uuid

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult, EmptyResult
from moto.elasticache.exceptions import CacheSubnetGroupNotFound, ElastiCacheException
from moto.elasticache.models import ElastiCacheBackend
from moto.elasticache.responses import ElastiCacheResponse
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


ElastiCacheBackend.delete_replication_group = delete_replication_group
ElastiCacheResponse.delete_cache_subnet_group = delete_cache_subnet_group
AutoScalingResponse.start_instance_refresh = start_instance_refresh
AutoScalingResponse.describe_instance_refreshes = describe_instance_refreshes

if __name__ == "__main__":
    sys.argv[0] = "moto_server"
    sys.exit(main())
