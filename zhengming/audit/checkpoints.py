"""Taking and publishing a signed checkpoint on demand (what the services do periodically)."""

from __future__ import annotations

from shared import checkpoint, settings, signing
from shared.topics import CHECKPOINTS_TOPIC
from zhengming.audit.sources import service_pool


async def publish_checkpoint(service: str) -> checkpoint.Checkpoint:
    """Take and publish a checkpoint now (what the services do periodically)."""
    pool = await service_pool(service)
    producer = checkpoint.make_checkpoint_producer(settings.kafka())
    await producer.start()
    try:
        async with pool.acquire() as conn:
            deployment = settings.services().group_prefix
            key = signing.service_key(service)
            taken = await checkpoint.take(conn, service, key.private, deployment, key.key_id)
        await producer.send_and_wait(
            CHECKPOINTS_TOPIC, taken.model_dump_json().encode(), key=f"{deployment}/{service}".encode()
        )
        return taken
    finally:
        await producer.stop()
        await pool.close()
