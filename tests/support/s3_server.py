"""moto's S3 server on 127.0.0.1 for object-storage sources, recording every request it serves so a test
can say which objects and prefixes a read listed and fetched.

    with S3Server() as s3:
        monkeypatch.setenv("AWS_ENDPOINT_URL", s3.url)
        s3.client().create_bucket(Bucket="churn")
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import parse_qs, unquote

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

class _Quiet(MotoRequestHandler):
    def log_request(self, *args: object, **kwargs: object) -> None:
        pass  # werkzeug's line per request, on stderr


KEY_ID, SECRET = "testing-key-id", "testing-secret"  # moto takes any; boto3 needs some


@dataclass(frozen=True)
class S3Request:
    method: str
    path: str  # /bucket/key, unquoted
    query: dict[str, list[str]]

    @property
    def listed(self) -> str | None:
        """The prefix a ListObjects asked for (None for any other request)."""
        if self.method != "GET" or self.path.strip("/").count("/") or "list-type" not in self.query \
                and "prefix" not in self.query and "delimiter" not in self.query:
            return None
        return self.query.get("prefix", [""])[0]


class S3Server(ThreadedMotoServer):
    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.requests: list[S3Request] = []
        self._lock = threading.Lock()

    def _server_entry(self) -> None:
        inner = DomainDispatcherApplication(create_backend_app)

        def recording(environ: dict[str, Any], start_response: Any) -> Any:
            request = S3Request(environ["REQUEST_METHOD"], unquote(environ.get("PATH_INFO", "")),
                                parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True))
            with self._lock:
                self.requests.append(request)
            return inner(environ, start_response)

        self._server = make_server(self._ip_address, self._port, recording, True, request_handler=_Quiet)
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

    def client(self) -> Any:
        import boto3
        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=KEY_ID,
                            aws_secret_access_key=SECRET)

    def take(self) -> list[S3Request]:
        """The requests served since the last take."""
        with self._lock:
            taken, self.requests = self.requests, []
        return taken

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
