"""Command line: ``python -m emu --port P --time-scale S [--durations JSON] [--seed N]``."""

from __future__ import annotations

import argparse
import json


def main() -> None:
    parser = argparse.ArgumentParser(prog="emulator/serve", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--time-scale", type=float, default=1.0,
        help="multiplies every emulated duration (0.01 = a hundred times faster than AWS)",
    )
    parser.add_argument(
        "--durations", default=None,
        help='JSON object of nominal durations to override, e.g. {"cloudhsm.hsm_create": 60}',
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for fault probabilities")
    args = parser.parse_args()
    durations = json.loads(args.durations) if args.durations else None

    from emu import server  # imported late: it sets the environment moto reads at import

    server.serve(args.host, args.port, args.time_scale, durations, args.seed)


if __name__ == "__main__":
    main()
