"""A relay process for the kill probe: `python -m tests.integration.relay_app SCHEMA` publishes the
schema's outbox until SIGTERM (or until the test SIGKILLs it)."""

from __future__ import annotations

import asyncio
import signal
import sys

from shared import settings
from shared.db import create_pool
from shared.logging import configure_logging
from shared.outbox import OutboxRelay
from shared.settings import RelaySettings


async def main(schema: str) -> None:
    configure_logging("test-relay")
    pool = await create_pool(settings.postgres(), schema, min_size=1, max_size=3)
    relay = OutboxRelay(pool, settings.kafka(), schema=schema, settings=RelaySettings(batch_size=10))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("READY", flush=True)
    await relay.run(stop)
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
