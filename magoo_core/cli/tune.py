"""``magoo tune``: how each wake word's threshold trades recall against false wakes, measured on
the user's own recordings, and the threshold to use (written into the profile with ``--write``).

The measurement is :mod:`magoo_core.tune`, the edit of the profile :mod:`magoo_core.tune_write`;
this module runs them and prints. Exit code 0; 1 when a wake word with positives has no threshold
that keeps to the target, or its backend could not start; 2 for a problem with the input.
"""

# No `from __future__ import annotations`: typer reads these signatures at every start, and real
# annotations spare it an eval() of each.

from pathlib import Path
from typing import Annotated, Any

import typer

from .session import EXIT_PROFILE, Session, say

#: false wakes per hour ``magoo tune`` aims at unless told
DEFAULT_TARGET = 0.5
#: less background than this (hours) gives a coarse rate: said once
SHORT_BACKGROUND = 0.5
#: a background file this long (seconds) gets a line of progress when it is scored
LONG_FILE = 300.0


def add_tune_command(app: typer.Typer, session: Session) -> None:
    """Register tune on ``app``."""

    @app.command()
    def tune(
        profile: Annotated[Path, typer.Option("--profile", "-p", metavar="FILE", help="The profile whose [wake] to tune.")],
        positives: Annotated[
            Path,
            typer.Option(
                metavar="DIR",
                help="WAV files that should each wake (with several wake words: a folder or file name per word).",
            ),
        ],
        background: Annotated[
            Path, typer.Option(metavar="FILE_OR_DIR", help="WAV audio that should not wake: hours of the room's usual sound.")
        ],
        target: Annotated[
            float,
            typer.Option("--target-false-wakes-per-hour", min=0.0, help="False wakes per hour to stay at or under."),
        ] = DEFAULT_TARGET,
        write: Annotated[bool, typer.Option("--write", help="Write the suggested thresholds into the profile.")] = False,
    ) -> None:
        """Measure recall and false wakes of each wake word over a range of thresholds; suggest one."""
        from ..tune import TuneError

        loaded = session.load(profile)
        try:
            code = _Tune(loaded, profile, target).run(positives, background, write)
        except TuneError as exc:
            say(str(exc))
            raise typer.Exit(EXIT_PROFILE) from None
        raise typer.Exit(code)


class _Tune:
    """One ``magoo tune`` command: score, sweep, print, write."""

    def __init__(self, profile: Any, path: Path, target: float) -> None:
        from ..tune import TuneError

        self.profile, self.path, self.target = profile, path, target
        spec = profile.wake
        if spec is None:
            raise TuneError(f"{path} has no [wake] section: there is no wake word to tune")
        if spec.service is not None:
            raise TuneError(f"{path}: [wake] is served by [services.{spec.service}]; magoo tune runs a [wake] backend of its own")
        self.spec = spec
        self.name = f"{spec.section} {spec.backend}"

    def run(self, positives: Path, background: Path, write: bool) -> int:
        import asyncio

        from ..tune import PAD, TuneError, check_wavs, owner, wav_files

        positive_files = wav_files(positives, "--positives")
        background_files = wav_files(background, "--background")
        check_wavs([*positive_files, *background_files])
        labels = self._labels()
        owners = {}
        for path in positive_files:
            owners[path] = owner(path, positives, labels) if labels else None
            if labels and owners[path] is None:
                raise TuneError(
                    f"{path}: which wake word is it? With several models, name each positive's folder or file"
                    f" after its wake word ({', '.join(labels)}), e.g. {labels[0]}/1.wav"
                )
        say(f"scoring {len(positive_files)} positives and {len(background_files)} background files with {self.name} ...")
        scored_positives, scored_background = asyncio.run(self._score(positive_files, background_files, PAD))
        labels = labels or sorted({label for scored in scored_positives for label in scored.scores})
        if len(labels) == 1:
            owners = dict.fromkeys(positive_files, labels[0])
        hours = sum(scored.seconds for scored in scored_background) / 3600
        if hours < SHORT_BACKGROUND:
            say(
                f"note: {hours * 60:.1f} minutes of background: one false wake in it is {1 / hours:.0f} per hour;"
                " an hour or more of the room's usual sound (talk, radio, TV) gives a useful rate"
            )
        frame = (scored_background or scored_positives)[0].frame
        chosen: dict[str, float] = {}
        missing = False
        for label in labels:
            mine = [s.scores.get(label) for s in scored_positives if owners[s.path] == label]
            suggestion = self._report(label, [m for m in mine if m is not None], scored_background, hours, frame)
            if suggestion is not None:
                chosen[label] = suggestion
            elif mine:
                missing = True
        if write and chosen:
            self._write(labels, chosen)
        elif chosen:
            print("--write puts the suggested thresholds into the profile")
        return 1 if missing else 0

    # ---- the detector ---------------------------------------------------------------------------

    def _labels(self) -> list[str]:
        labels = getattr(self.spec.info.cls, "labels", None)
        found = labels(self.spec.config) if callable(labels) else None
        return list(found) if found else []

    async def _score(self, positives: list[Path], background: list[Path], pad: float) -> tuple[list, list]:
        from ..errors import MagooError
        from ..tune import Scorer, TuneError, never_firing

        detector = self.spec.info.cls(never_firing(self.spec.backend, self.spec.config))
        try:
            await detector.__aenter__()
        except MagooError as exc:
            say(f"{self.name}: could not start: {exc}")
            raise typer.Exit(1) from None
        try:
            scorer = Scorer(detector, self.name)
            scored_positives = [scorer.score(p, pad=pad) for p in positives]
            scored_background = []
            for number, path in enumerate(background, 1):
                scored_background.append(scorer.score(path))
                if scored_background[-1].seconds >= LONG_FILE:  # hours of audio: say how far it got
                    say(f"  background {number}/{len(background)}: {path.name} ({scored_background[-1].seconds / 60:.1f} min)")
            return scored_positives, scored_background
        except ValueError as exc:  # audio magoo cannot convert
            raise TuneError(str(exc)) from None
        finally:
            await detector.__aexit__(None, None, None)

    def _thresholds(self) -> dict[str, float | None]:
        """Each label's threshold in the profile (None: the model's own, unknown before it loads)."""
        from ..tune import TUNABLE

        tunable = TUNABLE.get(self.spec.backend)
        models = getattr(self.spec.config, "models", None)
        labels = self._labels()
        if tunable is not None and isinstance(models, list) and len(labels) == len(models):
            return {label: getattr(model, tunable.key, None) for label, model in zip(labels, models, strict=True)}
        try:
            return dict(getattr(self.spec.info.cls(self.spec.config), "thresholds", None) or {})
        except Exception:
            return {}

    # ---- the table ----------------------------------------------------------------------------

    def _report(self, label: str, positives: list, background: list, hours: float, frame: float) -> float | None:
        from ..tune import SHOWN, THRESHOLDS, suggest, sweep

        config = self.spec.config
        trigger, refractory = int(getattr(config, "trigger_level", 1)), float(getattr(config, "refractory", 0.0))
        now = self._thresholds().get(label)
        grid = sorted({*THRESHOLDS, *([round(now, 4)] if now is not None else [])})
        rows = sweep(
            positives, [s.scores.get(label) for s in background if label in s.scores],
            background_hours=hours, frame=frame, trigger=trigger, refractory=refractory, thresholds=grid,
        )
        best = suggest(rows, self.target)
        print()
        shown_now = "the model's own" if now is None else f"{now:g}"
        print(
            f"{label} ({self.name}, trigger_level {trigger}, refractory {refractory:g} s, threshold now {shown_now}):"
            f" {len(positives)} positives, {hours:.2f} h of background"
        )
        print(f"  {'threshold':>9}  {'recall':<12}  {'false wakes':>11}  {'per hour':>8}")
        for row in rows:
            marks = [m for m, on in (("now", row.threshold == now), ("suggested", best is row)) if on]
            if row.threshold not in SHOWN and not marks:
                continue
            recall = f"{row.hits}/{row.positives} {row.recall:>4.0%}" if row.positives else "-"
            mark = f"  <- {', '.join(marks)}" if marks else ""
            print(f"  {row.threshold:>9.2f}  {recall:<12}  {row.false_wakes:>11}  {row.per_hour:>8.2f}{mark}")
        if not positives:
            print(f"no positives for {label}: put its recordings in a folder named {label}/ (or name the files after it)")
            return None
        if best is None:
            fewest = min(rows, key=lambda row: (row.per_hour, -row.threshold))
            print(
                f"no threshold keeps {label} at or under {self.target:g} false wakes per hour (the fewest:"
                f" {fewest.per_hour:.2f} at {fewest.threshold:.2f}); record more varied positives, or try another wake word"
            )
            return None
        alike = [row.threshold for row in rows if row.hits == best.hits and row.per_hour <= self.target]
        span = f"; {min(alike):.2f} to {max(alike):.2f} do as well" if len(alike) > 1 else "; no other threshold does as well"
        print(
            f"suggested: {label} threshold {best.threshold:.2f}: recall {best.recall:.0%} ({best.hits}/{best.positives}),"
            f" {best.per_hour:.2f} false wakes per hour (target {self.target:g}){span}"
        )
        return best.threshold

    # ---- --write ------------------------------------------------------------------------------

    def _write(self, labels: list[str], chosen: dict[str, float]) -> None:
        from ..output_files import write_atomically
        from ..profile_file import read_text
        from ..tune import TUNABLE, TuneError
        from ..tune_write import set_threshold

        tunable = TUNABLE.get(self.spec.backend)
        if tunable is None:
            known = " and ".join(TUNABLE)
            raise TuneError(f"magoo tune writes the thresholds of {known} only; set those of {self.name} by hand")
        path = self.path.resolve()  # a profile that is a link: its target is edited
        text = read_text(path)
        models = list(getattr(self.spec.config, "models", []))
        defaults = [str(getattr(m, "name", None) or getattr(m, "path", "")) for m in models]
        for label, value in chosen.items():
            text = set_threshold(text, labels.index(label), value, tunable, defaults)
        write_atomically(path, text.encode())
        for label, value in chosen.items():
            print(f"wrote {tunable.key} = {value:.2f} for {label} into {self.path} ([wake] models #{labels.index(label) + 1})")
