"""Load shapes for the Kafka producer (step, spike), loaded beside the user class:
`locust -f locustfiles/kafka_producer.py,locustfiles/shapes.py --shape step`.

Kept apart from the user class: Locust uses a shape whenever its file is loaded, and a
constant load needs none (then `-u`, `-r` and `-t` apply as usual).
"""

from __future__ import annotations

from locust import LoadTestShape


class KafkaLoadShape(LoadTestShape):
    """`--shape constant|step|spike`, on top of Locust's own users / spawn rate / run time."""

    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        opts = self.runner.environment.parsed_options if self.runner else None
        if opts is None:
            return None
        run_time = self.get_run_time()
        if opts.run_time and run_time > opts.run_time:
            return None
        users, rate = int(opts.num_users or 1), float(opts.spawn_rate or 1)
        if opts.shape == "step":
            steps = int(run_time // opts.step_every_s)
            return users + steps * opts.step_users, rate
        if (
            opts.shape == "spike"
            and opts.spike_at_s <= run_time < opts.spike_at_s + opts.spike_for_s
        ):
            return users + opts.spike_users, max(rate, float(opts.spike_users))
        return users, rate
