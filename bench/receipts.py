"""How the bounce reader agrees with Sisimai on the real-bounce corpus: the kind of each
file (bounce, delay, delivered, not a bounce), whether each recipient's address is dead
(Sisimai's ``hard``: no such user, no such domain, moved, takes no mail), and, of the
addresses the suppression list would take, the share Sisimai calls soft (a live merchant
suppressed). Beside the baseline measured in the same run: every permanent (5.x.x)
failure taken as a dead address.

Targets (#26): kind ≥ 90 %, hard/soft ≥ 80 %, soft among the suppressed ≤ 2 %.

    .venv/bin/python bench/receipts.py [--corpus ../shared/data/bounces] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dispatcher.receipts import RecipientResult, read_bounce

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "data" / "bounces"


@dataclass
class Score:
    files: int = 0
    kinds: int = 0
    recipients: int = 0
    agree: int = 0
    suppressed: int = 0
    soft_suppressed: int = 0

    def figures(self) -> dict[str, float]:
        return {"kind": self.kinds / self.files, "hard_soft": self.agree / self.recipients,
                "soft_among_suppressed": self.soft_suppressed / max(1, self.suppressed),
                "suppressed": self.suppressed}


def score(corpus: Path, dead: Callable[[RecipientResult], bool]) -> Score:
    expected = json.loads((corpus / "EXPECTED.json").read_text(encoding="utf-8"))["files"]
    result = Score()
    for name, wanted in expected.items():
        reading = read_bounce((corpus / name).read_bytes())
        result.files += 1
        result.kinds += reading.kind.value == wanted["kind"]
        ours = {r.address: r for r in reading.recipients}
        for recipient in wanted["recipients"]:
            found = ours.get(str(recipient["address"]).lower())
            suppressed = found is not None and dead(found)
            result.recipients += 1
            result.agree += suppressed == recipient["hard"]
            result.suppressed += suppressed
            result.soft_suppressed += suppressed and not recipient["hard"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (args.corpus / "EXPECTED.json").is_file():
        sys.exit(f"{args.corpus}: no EXPECTED.json (the shared bounce corpus)")
    ours = score(args.corpus, lambda r: r.dead).figures()
    baseline = score(args.corpus, lambda r: r.hard).figures()
    if args.json:
        print(json.dumps({"dispatcher": ours, "baseline": baseline}))
        return
    print(f"{'':34}{'dispatcher':>12}{'baseline 5.x.x':>16}{'ratio':>8}")
    for key, label in (("kind", "kind agrees with Sisimai"),
                       ("hard_soft", "dead or not agrees"),
                       ("soft_among_suppressed", "Sisimai-soft among suppressed")):
        ratio = ours[key] / baseline[key] if baseline[key] else float("inf")
        print(f"{label:34}{ours[key]:>11.1%}{baseline[key]:>16.1%}{ratio:>8.2f}")
    print(f"{'addresses suppressed':34}{ours['suppressed']:>12.0f}"
          f"{baseline['suppressed']:>16.0f}")


if __name__ == "__main__":
    main()
