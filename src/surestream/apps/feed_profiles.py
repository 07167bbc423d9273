"""The feed profiles surestream ships (``feed_profiles.yaml`` beside this module), and how
``--profile FILE_OR_NAME`` picks one.

The shipped ones are the hardening plan's: ``iso_rt_lmp`` (10 min watermark, 10 min dedup,
1 h state TTL, 1 min idle timeout) for ``hardened_iso_streaming`` and ``vendor_ticks``
(30 s, 1 min, 5 min) for ``vendor_ticks``.
"""

from __future__ import annotations

from pathlib import Path

from surestream.model.feed_profile import FeedProfile, FeedProfileError, load_profiles

SHIPPED_PROFILES = Path(__file__).resolve().parent / "feed_profiles.yaml"


def shipped_profiles() -> dict[str, FeedProfile]:
    """name -> profile, as shipped."""
    return load_profiles(SHIPPED_PROFILES)


def _pick(profiles: dict[str, FeedProfile], wanted: str | None, template: str | None,
          where: str) -> FeedProfile:
    """The named profile; unnamed: the only one, or the only one for ``template``."""
    if wanted is not None:
        if wanted not in profiles:
            raise FeedProfileError(f"{where}: no profile {wanted!r}; it has: "
                                   + ", ".join(profiles))
        return profiles[wanted]
    if len(profiles) == 1:
        return next(iter(profiles.values()))
    fitting = [p for p in profiles.values() if p.template == template]
    if len(fitting) == 1:
        return fitting[0]
    raise FeedProfileError(f"{where} holds several profiles ({', '.join(profiles)}); "
                           f"name one: --profile {where}:NAME")


def resolve_profile(arg: str, template: str | None = None) -> FeedProfile:
    """``FILE`` (one profile, or the one for ``template``), ``FILE:NAME``, or the name of
    a shipped profile."""
    path = Path(arg)
    if path.is_file():
        return _pick(load_profiles(path), None, template, arg)
    file_part, sep, name = arg.rpartition(":")
    if sep and Path(file_part).is_file():
        return _pick(load_profiles(file_part), name, template, file_part)
    shipped = shipped_profiles()
    if arg in shipped:
        return shipped[arg]
    raise FeedProfileError(f"--profile {arg}: neither a file nor a shipped profile (the "
                           "shipped ones: " + ", ".join(shipped) + ")")
