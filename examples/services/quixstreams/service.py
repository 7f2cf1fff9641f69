"""The billing service, on Quix Streams, as its documentation writes one: an Application of
the team's consumer group, a topic of JSON orders, a dataframe that adds up each order."""

from typing import Any

from quixstreams import Application

app = Application(
    broker_address="kafka.billing.internal:9092",
    consumer_group="billing",
    auto_offset_reset="earliest",
)
orders = app.topic("orders", value_deserializer="json")


def total(order: dict[str, Any]) -> int:
    """What the order charges, in cents."""
    return sum(item["qty"] * item["price_cents"] for item in order.get("items", []))


sdf = app.dataframe(orders)
sdf = sdf.apply(total)

if __name__ == "__main__":
    app.run()
