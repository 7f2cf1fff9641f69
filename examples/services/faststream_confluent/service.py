"""The billing service, on FastStream with confluent-kafka, as FastStream's documentation
writes one: a broker, an app, and a batch subscriber of the team's group. Run it with
`faststream run service:app`; it knows nothing of the tuner."""

from typing import Any

from faststream import FastStream, Logger
from faststream.confluent import KafkaBroker

broker = KafkaBroker("kafka.billing.internal:9092")
app = FastStream(broker)


@broker.subscriber("orders", group_id="billing", batch=True, max_records=100)
async def bill(orders: list[dict[str, Any]], logger: Logger) -> None:
    """Charge each order of the batch (here: add up its items)."""
    total = sum(
        item["qty"] * item["price_cents"] for order in orders for item in order.get("items", [])
    )
    if total < 0:
        logger.warning("negative batch total %s", total)
