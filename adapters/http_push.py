"""HTTP push to an agency endpoint. httpx errors become transient or permanent hub errors here."""

from __future__ import annotations

import httpx
import orjson

from hub.errors import PermanentError, Reached, TransientError
from hub.outbound import Rendered

RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


class Pusher:
    def __init__(self, timeout_seconds: float) -> None:
        self._client = httpx.Client(timeout=timeout_seconds, follow_redirects=False)

    def push(self, url: str, rendered: Rendered, delivery_id: str, message_id: str) -> int:
        try:
            resp = self._client.post(
                url,
                content=orjson.dumps(rendered.document),
                headers={
                    "Content-Type": rendered.content_type,
                    "Idempotency-Key": delivery_id,
                    "X-Hub-Delivery-Id": delivery_id,
                    "X-Hub-Message-Id": message_id,
                },
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransientError(f"recipient endpoint unreachable ({type(exc).__name__})",
                                 Reached.NOT_SENT) from None
        except httpx.TimeoutException:
            raise TransientError("recipient endpoint timed out", Reached.TIMED_OUT) from None
        except httpx.TransportError as exc:
            # The request may have been written before the connection broke: count it as sent.
            raise TransientError(f"recipient endpoint gave no answer ({type(exc).__name__})",
                                 Reached.NO_ANSWER) from None
        if resp.is_success:
            return resp.status_code
        if resp.status_code in RETRYABLE_STATUS or resp.status_code >= 500:
            raise TransientError(f"recipient answered HTTP {resp.status_code}",
                                 Reached.ERROR_ANSWER)
        raise PermanentError(f"recipient refused the delivery with HTTP {resp.status_code}",
                             Reached.REFUSED)

    def close(self) -> None:
        self._client.close()
