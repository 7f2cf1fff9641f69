"""The billing service, on faust-streaming, as its documentation writes one: an app named
after the team's group, a topic of JSON orders, an agent that adds up each order. Run it with
`python service.py worker`."""

from typing import Any

import faust

app = faust.App("billing", broker="kafka://kafka.billing.internal:9092", value_serializer="json")
orders = app.topic("orders")


@app.agent(orders)
async def bill(stream: Any) -> None:
    """Charge each order (here: add up its items)."""
    async for order in stream:
        sum(item["qty"] * item["price_cents"] for item in order.get("items", []))


if __name__ == "__main__":
    app.main()
