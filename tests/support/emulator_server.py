"""Serve the Cloud Eye emulator over a real socket for end-to-end tests.

    server = EmulatorServer().start()        # 127.0.0.1, a free port, a background thread
    server.base_url                          # "http://127.0.0.1:54321" -> CLOUDEYE_ENDPOINT
    server.set_faults(status=503, count=2)   # POST /_emulator/faults
    server.stored_events()                   # what Cloud Eye holds, as raw dicts
    server.stop()

In tests use the ``emulator`` (session) / ``cloudeye`` (per test, reset) fixtures from
``tests/conftest.py`` rather than starting servers yourself.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.support.environ import preserved
from tests.support.wsgi_thread import AppServer, Reply, ServedApp

ROOT = Path(__file__).resolve().parents[2]
EMULATOR_SOURCE = ROOT / "emulator" / "main.py"

DEFAULT_ACCESS_KEY = "test-emulator-ak"
DEFAULT_SECRET_KEY = "test-emulator-sk"
DEFAULT_PROJECT_ID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"


_FF_VARIABLES = ("FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE", "FUNCTION_SOURCE")


def load_emulator_app() -> Any:
    """``functions_framework.create_app(target="cloudeye", source="emulator/main.py")``, leaving
    the process as it was: functions-framework records its target in ``os.environ``, registers
    the source as ``sys.modules["main"]`` (which ``function/main.py`` also claims) and appends
    ``emulator/`` to ``sys.path``. The app keeps working without any of them."""
    import functions_framework

    saved_main = sys.modules.get("main")
    saved_path = list(sys.path)
    try:
        with preserved(_FF_VARIABLES):
            return functions_framework.create_app(target="cloudeye", source=str(EMULATOR_SOURCE))
    finally:
        if saved_main is None:
            sys.modules.pop("main", None)
        else:
            sys.modules["main"] = saved_main
        emulator_dir = str(EMULATOR_SOURCE.parent)
        if emulator_dir not in saved_path:
            while emulator_dir in sys.path:
                sys.path.remove(emulator_dir)


class EmulatorServer(AppServer):
    """The emulator app (``emulator/main.py``, target ``cloudeye``) on a loopback port.

    ``access_key`` / ``secret_key`` are the keys it accepts (pinned in-process, so tests that
    isolate ``os.environ`` do not change them); ``project_id`` is the default project the
    helpers use.
    """

    request_timeout_s = 30

    def __init__(
        self,
        *,
        access_key: str = DEFAULT_ACCESS_KEY,
        secret_key: str = DEFAULT_SECRET_KEY,
        project_id: str = DEFAULT_PROJECT_ID,
        host: str = "127.0.0.1",
    ) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.project_id = project_id
        self.host = host
        self.port: int | None = None
        self._served = ServedApp(host, name="cloudeye-emulator")

    # lifecycle -----------------------------------------------------------------------------

    def start(self) -> EmulatorServer:
        """Load the app with functions-framework and serve it on a free port; returns self."""
        from emulator import auth

        auth.pin(access_key=self.access_key, secret_key=self.secret_key)
        self._served.start(load_emulator_app())
        self.port = self._served.port
        return self

    def stop(self) -> None:
        """Stop serving and forget the pinned keys."""
        from emulator import auth

        self._served.stop()
        auth.unpin()

    # addresses -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: the endpoint to give clients (no trailing slash)."""
        if self.port is None:
            raise RuntimeError("the emulator is not started")
        return f"http://{self.host}:{self.port}"

    url = base_url

    def events_path(self, project_id: str | None = None) -> str:
        return f"/V1.0/{project_id or self.project_id}/events"

    def forwarder_env(self, **extra: str) -> dict[str, str]:
        """Environment for ``forwarder.Settings.from_env(environ=...)`` pointing at this server."""
        return {
            "CLOUDEYE_ENDPOINT": self.base_url,
            "HUAWEICLOUD_SDK_AK": self.access_key,
            "HUAWEICLOUD_SDK_SK": self.secret_key,
            "HUAWEICLOUD_SDK_PROJECT_ID": self.project_id,
            **extra,
        }

    # control endpoints ---------------------------------------------------------------------

    def reset(self) -> None:
        """Empty events, faults, rate limits, counters and the clock override."""
        self._control("POST", "/_emulator/reset")

    def set_faults(self, plan: Mapping[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """Replace the fault plan: ``set_faults(status=503, count=2, retry_after=1)``,
        ``set_faults(delay_ms=50)``, ``set_faults(max_concurrent=4)``,
        ``set_faults(faults=[{"kind": "drop"}, {"status": 500}])``; ``append=True`` adds instead.
        Returns the plan now in force."""
        return self._control("POST", "/_emulator/faults", {**(plan or {}), **fields})

    def clear_faults(self) -> None:
        self._control("DELETE", "/_emulator/faults")

    def fault_plan(self) -> dict[str, Any]:
        return self._control("GET", "/_emulator/faults")

    def set_resource_groups(self, group_ids: list[str]) -> list[str]:
        """``PUT /_emulator/resource-groups``: the groups that exist become exactly ``group_ids``."""
        return self._control("PUT", "/_emulator/resource-groups", {"group_ids": list(group_ids)})["group_ids"]

    def resource_groups(self) -> list[str]:
        return self._control("GET", "/_emulator/resource-groups")["group_ids"]

    def stored_events(self, project_id: str | None = None) -> list[dict[str, Any]]:
        """The events Cloud Eye holds (``{"event_id", "project_id", "received_at", "event"}``),
        oldest first, for one project or all."""
        query = f"?{urlencode({'project_id': project_id})}" if project_id else ""
        return self._control("GET", f"/_emulator/events{query}")["events"]

    def stored_metrics(self, project_id: str | None = None) -> list[dict[str, Any]]:
        """The custom metric data Cloud Eye holds (each item as posted plus ``project_id`` and
        ``received_at``), oldest first, for one project or all."""
        query = f"?{urlencode({'project_id': project_id})}" if project_id else ""
        return self._control("GET", f"/_emulator/metrics{query}")["metrics"]

    def post_metric_data(self, items: Any, *, project_id: str | None = None, **options: Any) -> Reply:
        """``POST /V1.0/{project}/metric-data``, signed like ``post_events`` (same options)."""
        body = items if isinstance(items, bytes) else json.dumps(items).encode("utf-8")
        path = f"/V1.0/{project_id or self.project_id}/metric-data"
        return self.call("POST", path, body=body, project_id=project_id, **options)

    def stats(self) -> dict[str, Any]:
        """Counters: ``posts_received``, ``events_stored``, ``duplicates``, ``throttled``,
        ``faults_injected``, ``dropped``, ``requests``, ``responses`` (by status), ``in_flight``,
        ``peak_in_flight``, ``projects``."""
        return self._control("GET", "/_emulator/stats")

    def requests_log(self) -> list[dict[str, Any]]:
        """Recent API requests: ``{"request_id", "method", "path", "status", "events", "at"}``."""
        return self._control("GET", "/_emulator/requests")["requests"]

    def set_clock(self, *, now_ms: int | None = None, offset_ms: int | None = None) -> int:
        """Freeze the emulator's clock at ``now_ms`` or shift it by ``offset_ms``; neither: real
        time. Returns the emulator's now."""
        payload = {"now_ms": now_ms} if now_ms is not None else {}
        if offset_ms is not None:
            payload = {"offset_ms": offset_ms}
        return self._control("POST", "/_emulator/clock", payload)["now_ms"]

    def page(self) -> Reply:
        """``GET /_emulator/`` (the HTML view)."""
        return self.request("GET", "/_emulator/")

    # Cloud Eye API -------------------------------------------------------------------------

    def post_events(
        self,
        events: Any,
        *,
        project_id: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        moment: datetime | None = None,
        headers: Mapping[str, str] | None = None,
        sign: bool = True,
    ) -> Reply:
        """``POST /V1.0/{project}/events`` signed like Cloud Eye's clients (``forwarder.signer``).

        ``events`` is JSON-encoded unless it is already ``bytes``/``str``; ``moment`` sets the
        ``X-Sdk-Date``; ``sign=False`` sends it without any authentication.
        """
        if isinstance(events, bytes | str):
            body = events.encode("utf-8") if isinstance(events, str) else events
        else:
            body = json.dumps(events).encode("utf-8")
        return self.call(
            "POST",
            self.events_path(project_id),
            body=body,
            access_key=access_key,
            secret_key=secret_key,
            moment=moment,
            headers=headers,
            sign=sign,
            project_id=project_id,
        )

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: bytes = b"",
        access_key: str | None = None,
        secret_key: str | None = None,
        moment: datetime | None = None,
        headers: Mapping[str, str] | None = None,
        sign: bool = True,
        project_id: str | None = None,
    ) -> Reply:
        """Any Cloud Eye API request, signed with this server's keys unless told otherwise."""
        from forwarder import signer

        pairs = [(k, str(v)) for k, v in (query or {}).items()]
        all_headers = {
            "Host": f"{self.host}:{self.port}",
            "Content-Type": "application/json;charset=UTF-8",
            "X-Project-Id": project_id or self.project_id,
            **(headers or {}),
        }
        if sign:
            all_headers = signer.sign(
                method,
                path,
                pairs,
                all_headers,
                body,
                access_key or self.access_key,
                secret_key or self.secret_key,
                moment=moment,
            )
        target = path + (f"?{urlencode(pairs)}" if pairs else "")
        return self.request(method, target, body=body, headers=all_headers)

    def sdk_signed_headers(self, method: str, path: str, body: bytes = b"", **headers: str) -> dict[str, str]:
        """The headers the official SDK's own signer makes for this request with this server's
        keys (``Content-Type: application/json;charset=UTF-8`` plus ``headers``)."""
        from huaweicloudsdkcore.auth.credentials import BasicCredentials
        from huaweicloudsdkcore.sdk_request import SdkRequest
        from huaweicloudsdkcore.signer.signer import Signer

        request = SdkRequest(
            method=method,
            schema="http",
            host=f"{self.host}:{self.port}",
            resource_path=path,
            uri=path,
            query_params=[],
            header_params={"Content-Type": "application/json;charset=UTF-8", **headers},
            body=body,
        )
        return dict(Signer(BasicCredentials(self.access_key, self.secret_key)).sign(request).header_params)

    def sdk_client(self, *, access_key: str | None = None, secret_key: str | None = None) -> Any:
        """The official ``huaweicloudsdkces`` v1 ``CesClient`` pointed at this server."""
        from huaweicloudsdkces.v1 import CesClient
        from huaweicloudsdkcore.auth.credentials import BasicCredentials
        from huaweicloudsdkcore.http.http_config import HttpConfig

        config = HttpConfig.get_default_config()
        config.timeout = (5, 30)
        credentials = BasicCredentials(
            access_key or self.access_key, secret_key or self.secret_key, self.project_id
        )
        return (
            CesClient.new_builder()
            .with_http_config(config)
            .with_credentials(credentials)
            .with_endpoint(self.base_url)
            .build()
        )

    # internals -----------------------------------------------------------------------------

    def _control(self, method: str, path: str, payload: Any = None) -> Any:
        body = b"" if payload is None else json.dumps(payload).encode("utf-8")
        reply = self.request(method, path, body=body, headers={"Content-Type": "application/json"})
        if reply.status != 200:
            raise RuntimeError(f"{method} {path} -> {reply.status}: {reply.text}")
        return reply.json()
