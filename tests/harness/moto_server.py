"""The AWS emulator the tests run: the pinned moto server, with the Auto Scaling operations it
lacks and the operator calls (instance refreshes) filled in the way AWS answers them. Refreshes
complete at once, as everything does in the emulator. Run as `moto_server.py -H HOST -p PORT`."""

import datetime
import sys
import uuid

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult
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


AutoScalingResponse.start_instance_refresh = start_instance_refresh
AutoScalingResponse.describe_instance_refreshes = describe_instance_refreshes

if __name__ == "__main__":
    sys.argv[0] = "moto_server"
    sys.exit(main())
