"""Optional coverage-guided fuzzing with atheris (libFuzzer), for longer runs than CI's.

    .venv/bin/python -m pip install atheris                  # not a dependency of make test
    .venv/bin/python -m tests.reliability.atheris_fuzz http -atheris_runs=200000
    .venv/bin/python -m tests.reliability.atheris_fuzz mq -max_total_time=600 crashes/

The first argument is a target of ``tests/reliability/fuzz.py`` (apig, mq, smn, dis, pubsub, direct,
http, cloudevent); the rest go to libFuzzer. Same checks as the hypothesis run; the ``http`` target
also sends libFuzzer's bytes as they are, as the body. A failing input is written by libFuzzer
(``crash-...``) and replays with the same command plus its file name.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    import forwarder.events
    import forwarder.http_ingest
    import forwarder.intake
    import forwarder.pipeline
    import forwarder.queue_ingest
    import forwarder.triggers  # noqa: F401  (instrumented for coverage feedback)

from tests.reliability import fuzz


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in fuzz.ENTRIES:
        targets = ",".join(fuzz.ENTRIES)
        raise SystemExit(f"usage: python -m tests.reliability.atheris_fuzz {{{targets}}} [libFuzzer options]")
    name = sys.argv.pop(1)
    _, _, check = fuzz.ENTRIES[name]
    build = {
        "apig": fuzz.Maker.apig,
        "mq": fuzz.Maker.mq,
        "smn": fuzz.Maker.smn,
        "dis": fuzz.Maker.dis,
        "pubsub": fuzz.Maker.pubsub,
        "direct": fuzz.Maker.direct,
        "http": fuzz.Maker.http,
        "cloudevent": fuzz.Maker.cloud_event,
    }[name]

    def one(data: bytes) -> None:
        fuzz.COUNTS[name] += 1
        provider = atheris.FuzzedDataProvider(data)
        atoms = (
            provider.ConsumeUnicode(16),
            provider.ConsumeBytes(32),
            provider.ConsumeInt(8),
            provider.ConsumeRegularFloat(),
        )
        seed_value = provider.ConsumeIntInRange(0, 2**32 - 1)
        if name == "http" and provider.ConsumeBool():
            check(
                (
                    provider.ConsumeBytes(provider.remaining_bytes()),
                    "application/json",
                    None,
                    fuzz.AUTHORIZATIONS[0],
                )
            )
            return
        check(build(fuzz.Maker(seed_value, atoms)))

    with fuzz.fuzz_environment():
        atheris.Setup(sys.argv, one)
        try:
            atheris.Fuzz()
        finally:
            print(f"{fuzz.COUNTS[name]} inputs through {fuzz.ENTRIES[name][0]}", file=sys.stderr)


if __name__ == "__main__":
    main()
