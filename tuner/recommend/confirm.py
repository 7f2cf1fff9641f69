"""Confirmation runs: the recommendation against the defaults, side by side, capacity-bound.

The runs are interleaved, each round starting one candidate later (best, java, aiokafka; java,
aiokafka, best; …), so drift hits every configuration alike and no candidate always runs in the
same place (a study of a SQLite handler measured its unchanged recommendation 15% faster than
the same settings run right after it, every round, in a fixed order). They run on a bench
(`tuner.recommend.bench`): a backlog topic of their own, sized from the study's fastest trial,
so each fresh group is measured on records it cannot run out of.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tuner.config import SettingValue
from tuner.recommend.bench import Bench
from tuner.recommend.confirmation import Candidate, Confirmation, candidates, label
from tuner.recommend.measured import MeasuredClient
from tuner.trial.result import TrialResult

OnRun = Callable[[int, int, str, TrialResult], None]


def confirm_on(
    bench: Bench, best: Mapping[str, SettingValue], *, on_run: OnRun | None = None
) -> Confirmation:
    """Run best, Java defaults and the client's own defaults `confirm.repeats` times, interleaved
    and rotated.

    `on_run(done, total, label, result)` hears each finished run (`label`: the candidate as a
    reader sees it, the baseline named after the measured client). A run whose backlog still ran
    out is kept as it is (`backlog_emptied`): the report refuses to compare it.
    """
    measured = MeasuredClient.of_consumer(bench.spec.consumer)
    runs: dict[Candidate, list[TrialResult]] = {name: [] for name in Candidate}
    repeats = bench.spec.confirm.repeats
    total = repeats * len(Candidate)
    configurations = candidates(best, bench.spec.consumer.settings)
    order = list(configurations.items())
    for repeat in range(repeats):
        start = repeat % len(order)
        for name, settings in order[start:] + order[:start]:
            result = bench.run(settings, f"c{repeat}.{name.slug}")
            runs[name].append(result)
            if on_run is not None:
                on_run(sum(map(len, runs.values())), total, label(name, measured), result)
    return Confirmation(
        runs={k: tuple(v) for k, v in runs.items()},
        objective=bench.spec.objective,
        settings=dict(best),
        measured=measured,
        unchanged=configurations[Candidate.BEST] == configurations[Candidate.AIOKAFKA_DEFAULTS],
    )
